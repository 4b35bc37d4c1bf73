-- One row per complaint: where it came from, how it was classified, how it ended. Each
-- column is filled by the event that tells it, in any order; times keep the earliest told.
CREATE TABLE complaints (
    complaint_id uuid PRIMARY KEY,
    ticket       text NOT NULL DEFAULT '',
    playbook     text NOT NULL DEFAULT '',
    channel      text NOT NULL DEFAULT '',
    received_at  timestamptz,
    repeat       boolean NOT NULL DEFAULT false,
    nature       text NOT NULL DEFAULT '',
    category     text NOT NULL DEFAULT '',
    severity     text NOT NULL DEFAULT '',
    urgency      text NOT NULL DEFAULT '',
    closed_at    timestamptz,
    no_response  boolean NOT NULL DEFAULT false,
    withdrawn_at timestamptz,
    merged_at    timestamptz,
    -- The highest round a reopening started.
    reopened_to  integer NOT NULL DEFAULT 1
);
CREATE INDEX complaints_by_playbook ON complaints (playbook, received_at);

-- One row per handling round.
CREATE TABLE rounds (
    complaint_id          uuid NOT NULL,
    round                 integer NOT NULL,
    work_id               uuid,
    -- The department as the newest work version tells it.
    department            text NOT NULL DEFAULT '',
    work_version          bigint NOT NULL DEFAULT 0,
    assigned_at           timestamptz,
    accepted_at           timestamptz,
    replied_at            timestamptz,
    resolved_at           timestamptz,
    compensation_minor    bigint NOT NULL DEFAULT 0,
    currency              text NOT NULL DEFAULT '',
    overall               smallint,
    speed                 smallint,
    effectiveness         smallint,
    attitude              smallint,
    transparency          smallint,
    satisfied             boolean,
    PRIMARY KEY (complaint_id, round)
);

-- Each deadline's outcome: met, breached or cancelled win over armed; a retracted breach is
-- met after all.
CREATE TABLE deadlines (
    complaint_id uuid NOT NULL,
    round        integer NOT NULL,
    name         text NOT NULL,
    due_at       timestamptz,
    state        text NOT NULL,
    rank         smallint NOT NULL,
    settled_at   timestamptz,
    PRIMARY KEY (complaint_id, round, name)
);

-- Each approval asked of a person: when asked (its first step) and decided.
CREATE TABLE approvals (
    approval_id  text PRIMARY KEY,
    complaint_id uuid NOT NULL,
    round        integer NOT NULL DEFAULT 1,
    asked_at     timestamptz,
    decided_at   timestamptz,
    approved     boolean
);

CREATE TABLE escalations (
    complaint_id uuid NOT NULL,
    round        integer NOT NULL,
    deadline     text NOT NULL,
    level        integer NOT NULL,
    PRIMARY KEY (complaint_id, round, deadline, level)
);
