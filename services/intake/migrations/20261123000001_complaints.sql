-- Ticket numbers come from one sequence, so they are unique across every instance.
CREATE SEQUENCE ticket_seq;

CREATE TABLE complaints (
    id               uuid PRIMARY KEY,
    ticket           text NOT NULL UNIQUE,
    channel          text NOT NULL,
    external_id      text NOT NULL,
    playbook         text NOT NULL,
    body             text NOT NULL,
    reference        text NOT NULL DEFAULT '',
    referred_by      text NOT NULL DEFAULT '',
    attachments      jsonb NOT NULL DEFAULT '[]',
    -- AES-256-GCM: version byte, nonce, ciphertext and tag; the complaint id is the AAD.
    complainant_name bytea NOT NULL,
    contact_kind     smallint NOT NULL,
    contact          bytea NOT NULL,
    -- Keyed hash of the normalised contact: finds earlier complaints of the same person.
    complainant_ref  text NOT NULL,
    repeat           boolean NOT NULL DEFAULT false,
    earlier_tickets  text[] NOT NULL DEFAULT '{}',
    received_at      timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'received',
    updated_at       timestamptz NOT NULL,
    -- One complaint per channel and channel id, however often it is sent.
    UNIQUE (channel, external_id)
);

CREATE INDEX complaints_by_complainant ON complaints (complainant_ref, received_at DESC);

CREATE TABLE history (
    seq          bigserial PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES complaints (id),
    at           timestamptz NOT NULL,
    event        text NOT NULL,
    detail       text NOT NULL DEFAULT ''
);

CREATE INDEX history_by_complaint ON history (complaint_id, at, seq);
