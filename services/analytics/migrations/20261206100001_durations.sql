-- What a report reads, kept where one pass over one table finds it.
--
-- Durations, in calendar and business milliseconds (business time by the calendar of the
-- complaint's playbook), measured by the facts handler whenever either end is told: a
-- report sorts stored numbers instead of walking the calendar for every complaint (and
-- PostgreSQL sorts integers faster than floating point). NULL until both ends are known.
--
-- The first round's department and first response, on the complaint: the report of a
-- period reads the complaints alone.
ALTER TABLE complaints
    -- The day of the reception in the zone of the playbook's calendar: a report counts by
    -- day without converting a million times.
    ADD COLUMN received_day           date,
    -- The department of the first round, as its newest work version tells it.
    ADD COLUMN department             text NOT NULL DEFAULT '',
    -- The first round's assignment to its acceptance.
    ADD COLUMN first_response_ms          bigint,
    ADD COLUMN first_response_business_ms bigint,
    -- Reception to the first round's resolution.
    ADD COLUMN resolution_ms              bigint,
    ADD COLUMN resolution_business_ms     bigint;

-- Asked to decided.
ALTER TABLE approvals
    ADD COLUMN turnaround_ms          bigint,
    ADD COLUMN turnaround_business_ms bigint;

-- Each round carries what a report counts of it: its deadlines met or breached (one
-- "state:name" line each, sorted, so that a report groups rounds by a handful of distinct
-- values instead of reading every deadline) and how many escalations it had.
ALTER TABLE rounds
    ADD COLUMN settled     text NOT NULL DEFAULT '',
    ADD COLUMN escalations integer NOT NULL DEFAULT 0;

-- Rounds and approvals carry their complaint's playbook and reception (the period key), so
-- that a report reads those of its period by range instead of joining a million of them to
-- their complaints. Written with the fact, and again when the reception is told.
ALTER TABLE rounds
    ADD COLUMN playbook    text NOT NULL DEFAULT '',
    ADD COLUMN received_at timestamptz;
ALTER TABLE approvals
    ADD COLUMN playbook    text NOT NULL DEFAULT '',
    ADD COLUMN received_at timestamptz;

CREATE INDEX rounds_by_period ON rounds (playbook, received_at);
CREATE INDEX approvals_by_period ON approvals (playbook, received_at);
-- Restamping a complaint's approvals looks them up by complaint.
CREATE INDEX approvals_by_complaint ON approvals (complaint_id);

-- Facts recorded before: what SQL alone can tell (the durations and days need the
-- calendar, and are measured when the service starts).
UPDATE complaints c SET department = r.department
FROM rounds r WHERE r.complaint_id = c.complaint_id AND r.round = 1;
INSERT INTO rounds (complaint_id, round)
SELECT DISTINCT complaint_id, round FROM deadlines
UNION SELECT DISTINCT complaint_id, round FROM escalations
ON CONFLICT DO NOTHING;
UPDATE rounds r SET settled = s.settled
FROM (SELECT complaint_id, round,
             string_agg(state || ':' || name, E'\n' ORDER BY state, name) AS settled
      FROM deadlines WHERE state IN ('met', 'breached') GROUP BY complaint_id, round) s
WHERE s.complaint_id = r.complaint_id AND s.round = r.round;
UPDATE rounds r SET escalations = s.n
FROM (SELECT complaint_id, round, count(*) AS n FROM escalations GROUP BY complaint_id, round) s
WHERE s.complaint_id = r.complaint_id AND s.round = r.round;
UPDATE rounds t SET playbook = c.playbook, received_at = c.received_at
FROM complaints c WHERE c.complaint_id = t.complaint_id;
UPDATE approvals t SET playbook = c.playbook, received_at = c.received_at
FROM complaints c WHERE c.complaint_id = t.complaint_id;

-- Their durations and days are measured by the service when it starts, which empties this
-- list.
CREATE TABLE unmeasured (
    kind text NOT NULL,
    key  text NOT NULL,
    PRIMARY KEY (kind, key)
);
INSERT INTO unmeasured (kind, key) SELECT 'complaint', complaint_id::text FROM complaints;
INSERT INTO unmeasured (kind, key) SELECT 'approval', approval_id FROM approvals;
