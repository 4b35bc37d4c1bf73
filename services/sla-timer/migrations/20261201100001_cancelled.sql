-- A withdrawn complaint's open deadlines are cancelled: neither met nor breached.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_state_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_state_check
    CHECK (state IN ('armed', 'met', 'breached', 'cancelled'));
