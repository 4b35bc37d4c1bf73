-- While a deadline's clock is stopped (evidence owed), the time it had left, in seconds.
ALTER TABLE deadlines ADD COLUMN remaining_secs bigint;
