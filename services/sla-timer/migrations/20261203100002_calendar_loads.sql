-- Each calendar set applied to the open deadlines (its fingerprint), so that a change made
-- while no instance ran is applied at the next start.
CREATE TABLE calendar_loads (
    fingerprint text NOT NULL,
    applied_at  timestamptz NOT NULL,
    moved       bigint NOT NULL
);
CREATE INDEX calendar_loads_latest ON calendar_loads (applied_at DESC);

-- The work version of the last pause, resumption or re-plan told of a deadline: a later
-- move by a calendar change is told with it, so a consumer that keeps the newest clock
-- change by work version takes the move as no older than what it has.
ALTER TABLE deadlines ADD COLUMN told_version bigint NOT NULL DEFAULT 0;
