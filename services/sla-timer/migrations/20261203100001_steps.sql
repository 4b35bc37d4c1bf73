-- When each round first took each lifecycle step (received, assigned, accepted, investigated,
-- proposed, approved …), as far as the work events read so far tell: the earliest time told
-- wins, so events read in any order or twice leave the same record. Clocks start at one step
-- and are met by another, both named by the playbook.
CREATE TABLE steps (
    work_id uuid NOT NULL,
    round   integer NOT NULL,
    step    text NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (work_id, round, step)
);

INSERT INTO steps (work_id, round, step, at)
SELECT work_id, round, 'accepted', accepted_at FROM progress WHERE accepted_at IS NOT NULL
UNION ALL
SELECT work_id, round, 'replied', replied_at FROM progress WHERE replied_at IS NOT NULL
UNION ALL
SELECT work_id, round, 'resolved', resolved_at FROM progress WHERE resolved_at IS NOT NULL;

ALTER TABLE progress DROP COLUMN accepted_at, DROP COLUMN replied_at, DROP COLUMN resolved_at;

-- Any step after the clock's start may meet a deadline.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_met_by_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_met_by_check
    CHECK (met_by IN ('assigned', 'accepted', 'transferred', 'evidence_requested',
                      'evidence_supplied', 'investigated', 'proposed', 'approved', 'replied',
                      'resolved', 'committed', 'progress', 'closed', 'evidence'));
