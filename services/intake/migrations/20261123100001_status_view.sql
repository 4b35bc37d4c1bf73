-- Intake keeps each complaint's public status current from every service's events.
ALTER TABLE complaints
    ADD COLUMN nature            text NOT NULL DEFAULT '',
    ADD COLUMN category          text NOT NULL DEFAULT '',
    ADD COLUMN severity          text NOT NULL DEFAULT '',
    ADD COLUMN urgency           text NOT NULL DEFAULT '',
    ADD COLUMN department        text NOT NULL DEFAULT '',
    ADD COLUMN round             integer NOT NULL DEFAULT 1,
    -- Version of the newest work change applied: older ones arriving late change nothing.
    ADD COLUMN work_version      bigint NOT NULL DEFAULT 0,
    ADD COLUMN approval          text NOT NULL DEFAULT 'none',
    -- Proposal the approval column is about (UUIDv7, so later proposals sort later).
    ADD COLUMN approval_proposal text NOT NULL DEFAULT '',
    ADD COLUMN survey            text NOT NULL DEFAULT 'none',
    ADD COLUMN survey_round      integer NOT NULL DEFAULT 0,
    ADD COLUMN escalation_level  integer NOT NULL DEFAULT 0;

CREATE TABLE deadlines (
    complaint_id uuid NOT NULL REFERENCES complaints (id),
    round        integer NOT NULL,
    name         text NOT NULL,
    due_at       timestamptz,
    -- redress.v1.DeadlineState; met and breached are final.
    state        smallint NOT NULL,
    limit_text   text NOT NULL DEFAULT '',
    calendar     text NOT NULL DEFAULT '',
    settled_at   timestamptz,
    PRIMARY KEY (complaint_id, round, name)
);
