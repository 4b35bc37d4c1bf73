-- One survey per handling round of a work item: the unique key is what makes a redelivered
-- or duplicated "resolved" change send no second survey.
CREATE TABLE surveys (
    survey_id     uuid PRIMARY KEY,
    complaint_id  uuid NOT NULL,
    ticket        text NOT NULL,
    work_id       text NOT NULL,
    round         integer NOT NULL CHECK (round >= 1),
    channel       text NOT NULL,
    external_id   text NOT NULL,
    playbook      text NOT NULL,
    state         text NOT NULL CHECK (state IN ('sent', 'answered')),
    sent_at       timestamptz NOT NULL,
    -- The work change that led to the survey.
    caused_by     text NOT NULL,
    -- Filled when answered; scores of optional dimensions are 0 when not given.
    answered_at   timestamptz,
    answer_command_id text,
    overall       smallint CHECK (overall BETWEEN 1 AND 5),
    speed         smallint NOT NULL DEFAULT 0 CHECK (speed BETWEEN 0 AND 5),
    effectiveness smallint NOT NULL DEFAULT 0 CHECK (effectiveness BETWEEN 0 AND 5),
    attitude      smallint NOT NULL DEFAULT 0 CHECK (attitude BETWEEN 0 AND 5),
    transparency  smallint NOT NULL DEFAULT 0 CHECK (transparency BETWEEN 0 AND 5),
    comment       text NOT NULL DEFAULT '',
    satisfied     boolean,
    UNIQUE (work_id, round),
    CHECK ((state = 'answered') = (answered_at IS NOT NULL AND overall IS NOT NULL AND satisfied IS NOT NULL))
);

-- The answer command names a ticket; its latest survey is the one answered.
CREATE INDEX surveys_by_ticket ON surveys (ticket, round DESC, sent_at DESC, survey_id DESC);
