-- When a breach decided too early (its step was on its way, in time) was retracted.
ALTER TABLE deadlines ADD COLUMN retracted_at timestamptz;
