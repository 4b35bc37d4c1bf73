-- One row per deadline of one handling round of one work item. Timers are rows: a restart
-- loses none, and several instances share them through FOR UPDATE SKIP LOCKED.
CREATE TABLE deadlines (
    id               uuid PRIMARY KEY,
    work_id          text NOT NULL,
    round            integer NOT NULL,
    name             text NOT NULL,
    -- What the breach event needs to travel in the complaint's envelope without its cause.
    complaint_id     uuid NOT NULL,
    correlation_id   text NOT NULL,
    playbook         text NOT NULL,
    playbook_version text NOT NULL,
    ticket           text NOT NULL,
    department       text NOT NULL,
    -- The limit as the playbook states it, e.g. "3 working days".
    limit_text       text NOT NULL,
    calendar         text NOT NULL,
    -- accepted, replied or resolved: the work state that meets it.
    met_by           text NOT NULL CHECK (met_by IN ('accepted', 'replied', 'resolved')),
    started_at       timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    state            text NOT NULL CHECK (state IN ('armed', 'met', 'breached')),
    settled_at       timestamptz,
    armed_at         timestamptz NOT NULL,
    UNIQUE (work_id, round, name),
    CHECK ((state = 'armed') = (settled_at IS NULL))
);

-- The timer's scan: armed deadlines by due time.
CREATE INDEX deadlines_armed_due ON deadlines (due_at) WHERE state = 'armed';

-- What is known of one round of one work item, whatever order its events arrived in: when
-- it first reached each state that meets deadlines (the earliest event seen at or beyond
-- it), and whether its deadlines are armed. Every event of a round locks this row first, so
-- instances handling events of the same round take turns.
CREATE TABLE progress (
    work_id     text NOT NULL,
    round       integer NOT NULL,
    accepted_at timestamptz,
    replied_at  timestamptz,
    resolved_at timestamptz,
    armed_at    timestamptz,
    PRIMARY KEY (work_id, round)
);
