-- The round's requests for evidence (an encoded redress.v1.EvidencePauses): what was asked,
-- when, and when and how each wait ended.
ALTER TABLE work_items ADD COLUMN evidence bytea NOT NULL DEFAULT '';
