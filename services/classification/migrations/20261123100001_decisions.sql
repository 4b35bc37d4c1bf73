-- One classification decision per complaint: the primary key is what makes a redelivered or
-- duplicated complaint.received produce no second decision and no second event.
CREATE TABLE decisions (
    complaint_id     uuid PRIMARY KEY,
    ticket           text NOT NULL,
    playbook         text NOT NULL,
    -- Content hash of the playbook whose rules decided.
    rule_set_version text NOT NULL,
    nature           text NOT NULL,
    category         text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('general', 'major')),
    urgency          text NOT NULL CHECK (urgency IN ('normal', 'urgent', 'emergency')),
    confidence       double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    -- [{"rule": "...", "matched": "..."}], one entry per rule that fired.
    hits             jsonb NOT NULL DEFAULT '[]',
    -- The complaint.classified event this decision was published as.
    event_id         uuid NOT NULL,
    -- The complaint.received event that led to it.
    caused_by        text NOT NULL,
    decided_at       timestamptz NOT NULL
);

CREATE INDEX decisions_by_ticket ON decisions (ticket);
