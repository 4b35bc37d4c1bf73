-- The complaint's attachments (references: URI, media type, size, name) as a redress.v1.FileRefs
-- message, for the department.
ALTER TABLE work_items ADD COLUMN attachments bytea NOT NULL DEFAULT '';
