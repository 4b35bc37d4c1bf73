-- The work version whose plan the round's open deadlines follow (a correction, a restarting
-- transfer): an older plan read later changes nothing.
ALTER TABLE progress ADD COLUMN plan_version bigint NOT NULL DEFAULT 0;
