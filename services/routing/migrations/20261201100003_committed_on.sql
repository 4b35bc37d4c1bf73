-- The completion date the department committed to in the current round.
ALTER TABLE work_items ADD COLUMN committed_on date;
