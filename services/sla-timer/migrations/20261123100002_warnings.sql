-- Warnings before a breach: when to warn (none if the playbook gives no percentage) and
-- whether it was done.
ALTER TABLE deadlines
    ADD COLUMN warn_at   timestamptz,
    ADD COLUMN warned_at timestamptz;

CREATE INDEX deadlines_to_warn ON deadlines (warn_at) WHERE state = 'armed' AND warned_at IS NULL;
