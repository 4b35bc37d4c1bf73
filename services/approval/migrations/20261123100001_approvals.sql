-- One approval per proposal, however often the proposal is told.
CREATE TABLE approvals (
    approval_id        uuid PRIMARY KEY,
    proposal_id        text NOT NULL UNIQUE,
    complaint_id       uuid NOT NULL,
    ticket             text NOT NULL,
    work_id            text NOT NULL,
    department         text NOT NULL,
    round              integer NOT NULL,
    -- The work item's version when proposed: a ticket's latest proposal has the highest.
    work_version       bigint NOT NULL,
    severity           smallint NOT NULL,
    playbook           text NOT NULL,
    playbook_version   text NOT NULL,
    responsibility     smallint NOT NULL,
    remedy             text NOT NULL,
    compensation_minor bigint NOT NULL,
    -- ISO 4217; the playbook's currency when the proposal named none.
    currency           text NOT NULL,
    proposed_by        text NOT NULL,
    -- Why a person must decide, or why the policy decided itself.
    reason             text NOT NULL,
    approver_role      text NOT NULL,
    state              text NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    automatic          boolean NOT NULL,
    decided_by         text NOT NULL DEFAULT '',
    note               text NOT NULL DEFAULT '',
    requested_at       timestamptz NOT NULL,
    decided_at         timestamptz,
    CHECK ((state = 'pending') = (decided_at IS NULL))
);

CREATE INDEX approvals_by_ticket ON approvals (ticket, work_version DESC);
CREATE INDEX approvals_pending ON approvals (requested_at, approval_id) WHERE state = 'pending';
