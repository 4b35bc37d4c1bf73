-- When the current round reached each step; consumers (sla-timer) need the exact times even
-- when they see only a later event.
ALTER TABLE work_items
    ADD COLUMN accepted_at timestamptz,
    ADD COLUMN replied_at  timestamptz,
    ADD COLUMN resolved_at timestamptz;
