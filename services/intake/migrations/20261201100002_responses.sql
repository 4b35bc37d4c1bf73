-- The complainant's answer to the reply of work version `responded_version`: each reply is
-- answered once (the same answer again is told "already").
ALTER TABLE complaints
    ADD COLUMN responded_version bigint,
    ADD COLUMN responded_at timestamptz,
    ADD COLUMN responded_accept boolean NOT NULL DEFAULT false;
