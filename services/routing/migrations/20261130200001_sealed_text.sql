-- The complaint text as it travels on the event stream: sealed with the complaint's text key,
-- which erasure destroys. `body` holds text in clear only for work assigned before sealing.
ALTER TABLE work_items ADD COLUMN sealed_body bytea NOT NULL DEFAULT ''::bytea;
-- The department's reply, sealed under the same key; `reply` holds it in clear only for work
-- replied to before sealing.
ALTER TABLE work_items ADD COLUMN sealed_reply bytea NOT NULL DEFAULT ''::bytea;
