-- Each complaint's own data key, sealed with the master contact key (the id of which is
-- stored, so that rotation knows what to re-seal). The complaint's name and contact are
-- sealed with this key; erasing the complaint deletes the row, after which no copy of them
-- can be opened. Kept apart from `complaints` so that deleting it is the whole erasure.
CREATE TABLE complaint_keys (
    complaint_id uuid PRIMARY KEY REFERENCES complaints (id),
    key_id       integer NOT NULL,
    wrapped      bytea NOT NULL
);

-- When the complainant's personal data was erased (PIPL deletion); the complaint's facts
-- (category, dates, outcome) stay for statistics.
ALTER TABLE complaints ADD COLUMN erased_at timestamptz;
