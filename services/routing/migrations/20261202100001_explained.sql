-- The round was answered with an explanation, not a proposal (the playbook may close such
-- rounds without a survey).
ALTER TABLE work_items ADD COLUMN explained boolean NOT NULL DEFAULT false;
