-- What the kit test's handler applied.
CREATE TABLE seen (
    event_id text PRIMARY KEY,
    note     text NOT NULL
);
