-- Deadlines that start again each time they end (a progress report every N working days):
-- `repeat_of` names the policy, `instance` counts from 1 (the name of instance k > 1 is
-- "<repeat_of>_<k>"). Met by a progress report as well as by the states.
ALTER TABLE deadlines ADD COLUMN repeat_of text;
ALTER TABLE deadlines ADD COLUMN instance integer NOT NULL DEFAULT 1;
ALTER TABLE deadlines DROP CONSTRAINT deadlines_met_by_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_met_by_check
    CHECK (met_by IN ('accepted', 'replied', 'resolved', 'evidence', 'progress'));
