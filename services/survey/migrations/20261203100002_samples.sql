-- A sample of closed complaints is surveyed again later (the playbook's survey.resample):
-- a second survey of the same round, which closes and reopens nothing.
ALTER TABLE surveys ADD COLUMN sample boolean NOT NULL DEFAULT false;
ALTER TABLE surveys DROP CONSTRAINT surveys_work_id_round_key;
ALTER TABLE surveys ADD CONSTRAINT surveys_work_id_round_sample_key UNIQUE (work_id, round, sample);
