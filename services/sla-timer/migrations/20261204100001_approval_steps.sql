-- Each step of an approval chain has its own clock (sla.deadlines with starts =
-- "step_asked"): when each step was asked and when the approval ended are kept apart from
-- the deadlines, so that the events telling them may arrive in any order.
CREATE TABLE approval_steps (
    approval_id uuid NOT NULL,
    step        integer NOT NULL,
    asked_at    timestamptz NOT NULL,
    PRIMARY KEY (approval_id, step)
);

CREATE TABLE approval_ends (
    approval_id uuid PRIMARY KEY,
    decided_at  timestamptz NOT NULL
);

ALTER TABLE deadlines ADD COLUMN approval_id uuid;
ALTER TABLE deadlines ADD COLUMN approval_step integer;
CREATE INDEX deadlines_by_approval ON deadlines (approval_id) WHERE approval_id IS NOT NULL;

ALTER TABLE deadlines DROP CONSTRAINT deadlines_met_by_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_met_by_check
    CHECK (met_by IN ('assigned', 'accepted', 'transferred', 'evidence_requested',
                      'evidence_supplied', 'investigated', 'proposed', 'approved', 'replied',
                      'resolved', 'committed', 'progress', 'closed', 'evidence',
                      'step_decided'));
