-- Clocks stop while the complainant owes evidence: a paused deadline is neither armed (the
-- timer skips it) nor settled. `base_due_at` is the due time before any pause, from which
-- every resumption is computed again, so the order in which pauses are learnt of does not
-- matter.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_state_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_state_check
    CHECK (state IN ('armed', 'met', 'breached', 'cancelled', 'paused'));
ALTER TABLE deadlines ADD COLUMN base_due_at timestamptz;
ALTER TABLE deadlines ADD COLUMN paused_at timestamptz;

-- The evidence requests of each round as the work items told them.
CREATE TABLE pauses (
    work_id uuid NOT NULL,
    round integer NOT NULL,
    seq integer NOT NULL,
    requested_at timestamptz NOT NULL,
    ended_at timestamptz,
    supplied boolean NOT NULL DEFAULT false,
    PRIMARY KEY (work_id, round, seq)
);

-- An evidence request's deadlines are met by the complainant's evidence (answer) or settled
-- when the request is made (request).
ALTER TABLE deadlines DROP CONSTRAINT deadlines_met_by_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_met_by_check
    CHECK (met_by IN ('accepted', 'replied', 'resolved', 'evidence'));

-- A paused deadline is open, like an armed one.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_check
    CHECK ((state IN ('armed', 'paused')) = (settled_at IS NULL));
