-- One work item per complaint: the department's handling of it, through every round.
CREATE TABLE work_items (
    work_id            uuid PRIMARY KEY,
    complaint_id       uuid NOT NULL UNIQUE,
    ticket             text NOT NULL UNIQUE,
    playbook           text NOT NULL,
    correlation_id     text NOT NULL,
    department         text NOT NULL,
    -- redress.v1.WorkState
    state              smallint NOT NULL,
    round              integer NOT NULL DEFAULT 1,
    -- +1 on every change, so consumers can keep the newest view whatever the order.
    version            bigint NOT NULL DEFAULT 1,
    nature             text NOT NULL,
    category           text NOT NULL,
    severity           smallint NOT NULL,
    urgency            smallint NOT NULL,
    channel            text NOT NULL,
    external_id        text NOT NULL,
    body               text NOT NULL,
    routing_rule       text NOT NULL,
    assigned_at        timestamptz NOT NULL,
    accepted_by        text,
    proposal_id        text,
    responsibility     smallint,
    remedy             text,
    compensation_minor bigint,
    currency           text,
    proposed_by        text,
    reply              text,
    escalation_level   integer NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL
);

CREATE INDEX work_items_by_department ON work_items (department, state, assigned_at);

-- What happened to each work item, in order.
CREATE TABLE transitions (
    work_id  uuid NOT NULL REFERENCES work_items (work_id),
    version  bigint NOT NULL,
    change   text NOT NULL,
    actor    text NOT NULL,
    note     text NOT NULL DEFAULT '',
    at       timestamptz NOT NULL,
    PRIMARY KEY (work_id, version)
);

-- One escalation per breached deadline, however often the breach is delivered.
CREATE TABLE escalations (
    work_id   uuid NOT NULL REFERENCES work_items (work_id),
    round     integer NOT NULL,
    deadline  text NOT NULL,
    level     integer NOT NULL,
    escalated_to text NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (work_id, round, deadline)
);
