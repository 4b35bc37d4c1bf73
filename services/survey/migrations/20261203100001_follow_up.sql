-- Follow-up in a window (the playbook's survey.send_after, remind_after, expire_after): a
-- survey may wait to be sent ('scheduled', until `send_at`), be reminded once, and expire
-- unanswered ('expired', closed as no response).
ALTER TABLE surveys DROP CONSTRAINT surveys_state_check;
ALTER TABLE surveys ADD CONSTRAINT surveys_state_check
    CHECK (state IN ('scheduled', 'sent', 'answered', 'expired'));
ALTER TABLE surveys ADD COLUMN send_at timestamptz;
ALTER TABLE surveys ADD COLUMN remind_at timestamptz;
ALTER TABLE surveys ADD COLUMN reminded_at timestamptz;
ALTER TABLE surveys ADD COLUMN expire_at timestamptz;
ALTER TABLE surveys ADD COLUMN expired_at timestamptz;
-- The department that handled the round (whose members may record a follow-up they made),
-- and how the answer came: by the complainant's token, or recorded by that member.
ALTER TABLE surveys ADD COLUMN department text NOT NULL DEFAULT '';
ALTER TABLE surveys ADD COLUMN answered_via text;
ALTER TABLE surveys ADD COLUMN recorded_by text;
-- The SHA-256 of the reminder's token: either token answers.
ALTER TABLE surveys ADD COLUMN reminder_token_hash bytea;

CREATE INDEX surveys_to_send ON surveys (send_at) WHERE state = 'scheduled';
CREATE INDEX surveys_to_remind ON surveys (remind_at) WHERE state = 'sent' AND reminded_at IS NULL;
CREATE INDEX surveys_to_expire ON surveys (expire_at) WHERE state = 'sent';
