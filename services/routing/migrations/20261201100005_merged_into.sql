-- The ticket a duplicate was merged into.
ALTER TABLE work_items ADD COLUMN merged_into text;
