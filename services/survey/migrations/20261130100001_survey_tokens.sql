-- The SHA-256 of the token sent with the invitation: an answer must present the token, so
-- knowing a ticket number is not enough to close or reopen a complaint. Surveys sent before
-- tokens existed have none and cannot be answered by token.
ALTER TABLE surveys ADD COLUMN token_hash bytea;
