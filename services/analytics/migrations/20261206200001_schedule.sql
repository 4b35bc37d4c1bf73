-- The schema's origin: when its timer first looked at the clock (no report is made for an
-- earlier instant) and how far it has looked since (what fell due while the service was
-- down is made when it comes back). One row.
CREATE TABLE origin (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    started_at    timestamptz NOT NULL,
    handled_until timestamptz NOT NULL
);

-- Reports made on schedule, with the figures as they stood (an encoded Kpis message).
CREATE TABLE reports (
    report_id uuid PRIMARY KEY,
    playbook  text NOT NULL,
    kind      text NOT NULL,
    period    text NOT NULL,
    due_at    timestamptz NOT NULL,
    made_at   timestamptz NOT NULL,
    kpis      bytea NOT NULL,
    UNIQUE (playbook, kind, period)
);

-- Days whose spike check ran, so that each is checked (and its warnings told) once.
CREATE TABLE spike_checks (
    playbook   text NOT NULL,
    day        text NOT NULL,
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (playbook, day)
);

-- Spike warnings told (an encoded SpikeDetected each).
CREATE TABLE spikes (
    spike_id   uuid PRIMARY KEY,
    playbook   text NOT NULL,
    category   text NOT NULL,
    day        text NOT NULL,
    window_end timestamptz NOT NULL,
    detail     bytea NOT NULL,
    UNIQUE (playbook, category, day)
);
CREATE INDEX spikes_by_playbook ON spikes (playbook, window_end);
