use serde::{Deserialize, Serialize};

/// The `[intake]` section of the configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IntakeSettings {
    /// 32-byte key (64 hex characters) that encrypts contact details and keys the
    /// complainant hash. Changing it makes earlier contacts unreadable and unmatched.
    pub contact_key: Option<String>,
    /// The id of `contact_key`, stored with every value it seals. Rotating: give the new key
    /// a new id and keep the old one in `retired_contact_keys` until `redress ops rekey`
    /// has re-sealed everything.
    pub contact_key_id: u16,
    /// Earlier keys by id (`"0" = "<hex>"`), still read.
    pub retired_contact_keys: std::collections::BTreeMap<String, String>,
    /// The id of the key the complainant hash and the status secrets derive from: keep it
    /// when rotating, or repeat matching and the secrets already given change.
    pub ref_key_id: u16,
    /// A complaint from the same complainant within this many days is flagged as a repeat.
    pub repeat_window_days: u32,
    pub default_playbook: String,
    /// The playbook of a channel's submissions that name none (e.g. `phone = "express"`);
    /// a channel not listed gets `default_playbook`.
    pub channel_playbooks: std::collections::BTreeMap<String, String>,
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

impl IntakeSettings {
    /// The contact cipher these settings describe; refuses the well-known test key unless
    /// `allow_test_key`.
    pub fn cipher(&self) -> anyhow::Result<crate::domain::crypto::ContactCipher> {
        use anyhow::Context as _;
        let key = self.contact_key.as_deref().context(
            "intake.contact_key is not set (64 hex characters; REDRESS_INTAKE__CONTACT_KEY)",
        )?;
        anyhow::ensure!(
            self.allow_test_key
                || !key.eq_ignore_ascii_case(crate::domain::crypto::WELL_KNOWN_TEST_KEY),
            "intake.contact_key is the well-known test key, which anyone can use to read \
             contacts: set a key of your own (64 random hex characters)"
        );
        let mut retired = std::collections::BTreeMap::new();
        for (id, hex_key) in &self.retired_contact_keys {
            let id: u16 = id
                .parse()
                .with_context(|| format!("intake.retired_contact_keys: {id:?} is not a key id"))?;
            retired.insert(id, hex_key.clone());
        }
        crate::domain::crypto::ContactCipher::with_keys(
            self.contact_key_id,
            key,
            &retired,
            self.ref_key_id,
        )
        .with_context(|| {
            format!(
                "intake.contact_key (id {}) with retired keys {:?} and ref_key_id {}",
                self.contact_key_id,
                retired.keys().collect::<Vec<_>>(),
                self.ref_key_id
            )
        })
    }
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            contact_key: None,
            contact_key_id: 0,
            retired_contact_keys: Default::default(),
            ref_key_id: 0,
            repeat_window_days: 90,
            default_playbook: "default".into(),
            channel_playbooks: Default::default(),
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
            .field("contact_key_id", &self.contact_key_id)
            .field(
                "retired_contact_keys",
                &self.retired_contact_keys.keys().collect::<Vec<_>>(),
            )
            .field("ref_key_id", &self.ref_key_id)
            .field("repeat_window_days", &self.repeat_window_days)
            .field("default_playbook", &self.default_playbook)
            .field("channel_playbooks", &self.channel_playbooks)
            .field("ticket_prefix", &self.ticket_prefix)
            .field("timezone", &self.timezone)
            .finish()
    }
}
