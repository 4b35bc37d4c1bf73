-- The work version of the classification shown (0: the classifier's decision; a
-- department's correction carries the version of its work event), and of the last change to
-- a deadline's clock (a pause, a resumption, a new plan), so that events read out of order
-- cannot put an older state back.
ALTER TABLE complaints ADD COLUMN classification_version bigint NOT NULL DEFAULT 0;
ALTER TABLE deadlines ADD COLUMN work_version bigint NOT NULL DEFAULT 0;
