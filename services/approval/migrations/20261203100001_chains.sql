-- Chains of sign-off (the playbook's approval.chains): the steps as they stood when the
-- approval opened (each step's role and how many of its approvers must approve), the step
-- now deciding, and every decision made at each step.
ALTER TABLE approvals ADD COLUMN chain text NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN step_roles text[] NOT NULL DEFAULT '{}';
ALTER TABLE approvals ADD COLUMN step_needs int4[] NOT NULL DEFAULT '{}';
ALTER TABLE approvals ADD COLUMN step integer NOT NULL DEFAULT 0;

-- An approval opened before chains is one step of its approver role.
UPDATE approvals SET step_roles = ARRAY[approver_role], step_needs = ARRAY[1]
WHERE cardinality(step_roles) = 0;

CREATE TABLE approval_decisions (
    approval_id uuid NOT NULL REFERENCES approvals (approval_id),
    step        integer NOT NULL,
    approver    text NOT NULL,
    approve     boolean NOT NULL,
    note        text NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (approval_id, step, approver)
);

-- Holiday cover: an approver's approvals decided by another person for a range of days (in
-- the playbook calendar's zone), recorded once per command.
CREATE TABLE delegations (
    command_id  text PRIMARY KEY,
    playbook    text NOT NULL,
    delegator   text NOT NULL,
    delegate    text NOT NULL,
    from_day    date NOT NULL,
    until_day   date NOT NULL,
    recorded_at timestamptz NOT NULL,
    CHECK (from_day <= until_day),
    CHECK (delegator <> delegate)
);
CREATE INDEX delegations_by_delegate ON delegations (delegate, from_day);

-- Who decided for the approver, when a delegate did.
ALTER TABLE approval_decisions ADD COLUMN delegate text;

-- What the proposal is (redress.v1.ProposalKind), which chains may be chosen by; and the
-- work's category, for the same.
ALTER TABLE approvals ADD COLUMN kind smallint NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN category text NOT NULL DEFAULT '';
