-- The investigation record of each work item: one row per entry (notes, cause, responsibility,
-- corrective and preventive actions, file references), the entry kept as the redress.v1
-- Investigate message it was recorded as.
CREATE TABLE investigations (
    work_id      uuid NOT NULL REFERENCES work_items (work_id),
    version      bigint NOT NULL,
    recorded_by  text NOT NULL,
    at           timestamptz NOT NULL,
    cause        text NOT NULL,
    entry        bytea NOT NULL,
    PRIMARY KEY (work_id, version)
);
