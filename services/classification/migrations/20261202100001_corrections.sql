-- Corrections departments made to decisions (`work.reclassified`): what the rules decided
-- and what it should have been, with who and why, for tuning the rules and training any
-- model. One row per correcting event.
CREATE TABLE corrections (
    event_id      uuid PRIMARY KEY,
    complaint_id  uuid NOT NULL,
    ticket        text NOT NULL,
    playbook      text NOT NULL,
    from_nature   text NOT NULL,
    from_category text NOT NULL,
    from_severity text NOT NULL,
    from_urgency  text NOT NULL,
    to_nature     text NOT NULL,
    to_category   text NOT NULL,
    to_severity   text NOT NULL,
    to_urgency    text NOT NULL,
    reason        text NOT NULL,
    corrected_by  text NOT NULL,
    department    text NOT NULL,
    corrected_at  timestamptz NOT NULL
);
CREATE INDEX corrections_by_complaint ON corrections (complaint_id);
