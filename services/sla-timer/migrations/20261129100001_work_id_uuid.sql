-- Work ids are UUIDs (routing issues them) in every schema.
ALTER TABLE deadlines ALTER COLUMN work_id TYPE uuid USING work_id::uuid;
ALTER TABLE progress ALTER COLUMN work_id TYPE uuid USING work_id::uuid;
