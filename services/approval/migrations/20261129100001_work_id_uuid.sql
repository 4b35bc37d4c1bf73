-- Work ids are UUIDs (routing issues them) in every schema.
ALTER TABLE approvals ALTER COLUMN work_id TYPE uuid USING work_id::uuid;
