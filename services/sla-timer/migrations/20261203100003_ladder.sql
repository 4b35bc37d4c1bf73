-- The escalation ladder (the playbook's sla.ladder): how many of a deadline's rungs were
-- reached, and when the timer looks at the next one (NULL: none left). Any change of the
-- due time sets `ladder_at` back to a past instant, so the timer computes the next rung
-- again from the row as it stands.
ALTER TABLE deadlines ADD COLUMN ladder_next integer NOT NULL DEFAULT 0;
ALTER TABLE deadlines ADD COLUMN ladder_at timestamptz;
-- Emergency work: reminders and warnings do not wait for working hours.
ALTER TABLE deadlines ADD COLUMN at_once boolean NOT NULL DEFAULT false;
CREATE INDEX deadlines_ladder_due ON deadlines (ladder_at)
    WHERE ladder_at IS NOT NULL AND state IN ('armed', 'breached');

-- Who took the round's work on (the work item's accepted_by), whom "handler" rungs tell.
ALTER TABLE progress ADD COLUMN handler text;
