use serde::{Deserialize, Serialize};

/// The `[intake]` section of the configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IntakeSettings {
    /// 32-byte key (64 hex characters) that encrypts contact details and keys the
    /// complainant hash. Changing it makes earlier contacts unreadable and unmatched.
    pub contact_key: Option<String>,
    /// A complaint from the same complainant within this many days is flagged as a repeat.
    pub repeat_window_days: u32,
    pub default_playbook: String,
    pub ticket_prefix: String,
    /// Zone whose calendar date appears in ticket numbers.
    pub timezone: String,
    pub max_text_bytes: usize,
    pub max_attachments: usize,
    /// A submission saying it was received longer ago than this is refused (`received_at`).
    pub max_received_age_days: u32,
    /// Accept the well-known test key as `contact_key` (the test harness sets it; nothing
    /// else should: anyone can read contacts sealed with it).
    pub allow_test_key: bool,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            contact_key: None,
            repeat_window_days: 90,
            default_playbook: "default".into(),
            ticket_prefix: "RD".into(),
            timezone: "Asia/Shanghai".into(),
            max_text_bytes: 64 * 1024,
            max_attachments: 20,
            max_received_age_days: 366,
            allow_test_key: false,
        }
    }
}

// The key must never reach a log line.
impl std::fmt::Debug for IntakeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeSettings")
            .field(
                "contact_key",
                &self.contact_key.as_ref().map(|_| "<secret>"),
            )
            .field("repeat_window_days", &self.repeat_window_days)
            .field("default_playbook", &self.default_playbook)
            .field("ticket_prefix", &self.ticket_prefix)
            .field("timezone", &self.timezone)
            .finish()
    }
}
