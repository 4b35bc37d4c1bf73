-- Each duration a report ranks, kept beside the facts it is measured between, in calendar
-- and in business seconds (by the calendar of the complaint's playbook). The facts handler
-- measures it again whenever either end is told, so that a report over a million complaints
-- sorts stored numbers instead of walking the calendar for every row. NULL until both ends
-- are known.

-- Assignment to acceptance of each round (the first response).
ALTER TABLE rounds
    ADD COLUMN first_response_secs          double precision,
    ADD COLUMN first_response_business_secs double precision;

-- Reception to the resolution of the first round.
ALTER TABLE complaints
    ADD COLUMN resolution_secs          double precision,
    ADD COLUMN resolution_business_secs double precision;

-- Asked to decided.
ALTER TABLE approvals
    ADD COLUMN turnaround_secs          double precision,
    ADD COLUMN turnaround_business_secs double precision;

-- A report joins approvals to the complaints of its period.
CREATE INDEX approvals_by_complaint ON approvals (complaint_id);
