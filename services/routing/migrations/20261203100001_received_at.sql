-- When the complaint reached intake, for clocks that start at receipt.
ALTER TABLE work_items ADD COLUMN received_at timestamptz;
