-- The department holding the round's work, as the newest work version told it: open
-- deadlines follow the work when it moves, so that reminders and escalations reach the
-- department that has it now.
ALTER TABLE progress ADD COLUMN department text;
ALTER TABLE progress ADD COLUMN department_version bigint NOT NULL DEFAULT 0;
