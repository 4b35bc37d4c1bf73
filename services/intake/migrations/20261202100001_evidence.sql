-- Requests for evidence routing made (one per round and number), with the hash of the token
-- the complainant must present; `closed_at` once the department stopped waiting for it.
CREATE TABLE evidence_requests (
    complaint_id uuid NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    round integer NOT NULL,
    seq integer NOT NULL,
    token_sha256 bytea NOT NULL,
    requested_at timestamptz NOT NULL,
    closed_at timestamptz,
    answered_at timestamptz,
    PRIMARY KEY (complaint_id, round, seq)
);

-- What complainants supplied, one row per message of their channel (the key deduplicates a
-- resend). The text is sealed like the complaint's.
CREATE TABLE evidence (
    channel text NOT NULL,
    external_id text NOT NULL,
    complaint_id uuid NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    round integer NOT NULL,
    seq integer NOT NULL,
    sealed_text bytea NOT NULL,
    files bytea NOT NULL,
    supplied_at timestamptz NOT NULL,
    PRIMARY KEY (channel, external_id)
);
CREATE INDEX evidence_by_complaint ON evidence (complaint_id);
