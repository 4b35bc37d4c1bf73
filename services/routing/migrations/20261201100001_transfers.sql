-- Departments that held the work before the one holding it (oldest first): a transfer back
-- to one of them needs the holding department's manager. Contests count how often the
-- complainant rejected a reply in the current round.
ALTER TABLE work_items
    ADD COLUMN previous_departments text[] NOT NULL DEFAULT '{}',
    ADD COLUMN contests integer NOT NULL DEFAULT 0;

-- Every hop of misrouted work between departments, with what the sender understood of it:
-- sealed with the complaint's text key like the complaint (it retells it), in clear only for
-- work from before sealing.
CREATE TABLE transfers (
    work_id          uuid NOT NULL REFERENCES work_items (work_id),
    version          bigint NOT NULL,
    from_department  text NOT NULL,
    to_department    text NOT NULL,
    reason           text NOT NULL,
    understood       text NOT NULL,
    sealed_understood bytea NOT NULL,
    transferred_by   text NOT NULL,
    sent_back        boolean NOT NULL,
    at               timestamptz NOT NULL,
    PRIMARY KEY (work_id, version)
);
