-- When the complainant withdrew the complaint: from then on its status stays "withdrawn"
-- whatever work events still arrive.
ALTER TABLE complaints ADD COLUMN withdrawn_at timestamptz;
