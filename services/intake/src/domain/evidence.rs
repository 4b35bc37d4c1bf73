//! A complainant's answer to an evidence request that passed every check: the channel's id
//! of the message, the ticket, the request's token, and something to show (text, files).

use redress_proto::v1::{Attachment, SubmitErrorCode as C, SupplyEvidence};

use super::submission::{
    FieldError, Limits, check_attachment, check_external_id, has_stray_control, required_key,
};

#[derive(Debug, Clone)]
pub struct ValidEvidence {
    pub channel: String,
    pub external_id: String,
    pub ticket: String,
    pub token: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
}

impl ValidEvidence {
    /// Checks `msg`, which arrived on the evidence subject of `channel`.
    pub fn parse(msg: SupplyEvidence, channel: &str, limits: &Limits) -> Result<Self, FieldError> {
        if !msg.channel.trim().is_empty() && msg.channel.trim() != channel {
            return Err(FieldError::new(
                C::ChannelMismatch,
                "channel",
                format!("{:?} sent on the subject of {channel}", msg.channel.trim()),
            ));
        }
        let external_id = check_external_id(&msg.external_id)?.to_string();
        let ticket = required_key("ticket", &msg.ticket, 64, "the ticket is required")?;
        let token = msg.token.trim();
        if token.is_empty() {
            return Err(FieldError::new(
                C::Missing,
                "token",
                "the token of the evidence request is required",
            ));
        }
        if token.len() > redress_platform::tokens::MAX_TOKEN_BYTES {
            return Err(FieldError::new(C::TooLong, "token", "not a token"));
        }
        if msg.text.trim().is_empty() && msg.attachments.is_empty() {
            return Err(FieldError::new(
                C::Missing,
                "text",
                "evidence needs a text or at least one attachment",
            ));
        }
        if has_stray_control(&msg.text) {
            return Err(FieldError::new(
                C::Malformed,
                "text",
                "control characters other than newline and tab are not allowed",
            ));
        }
        if msg.text.len() > limits.max_text_bytes {
            return Err(FieldError::new(
                C::TooLong,
                "text",
                format!("at most {} bytes of UTF-8", limits.max_text_bytes),
            ));
        }
        if msg.attachments.len() > limits.max_attachments {
            return Err(FieldError::new(
                C::TooLong,
                "attachments",
                format!("at most {} attachments", limits.max_attachments),
            ));
        }
        for (i, a) in msg.attachments.iter().enumerate() {
            check_attachment(i, a)?;
        }
        Ok(Self {
            channel: channel.to_string(),
            external_id,
            ticket: ticket.to_string(),
            token: token.to_string(),
            text: msg.text.trim().to_string(),
            attachments: msg.attachments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_text_bytes: 100,
            max_attachments: 2,
            default_playbook: "default".into(),
            channel_playbooks: Default::default(),
            playbooks: Default::default(),
            max_received_age: chrono::Duration::days(30),
        }
    }

    fn valid() -> SupplyEvidence {
        SupplyEvidence {
            channel: "web".into(),
            external_id: "ev-1".into(),
            ticket: "RD-20261130-000001".into(),
            token: "ab".repeat(32),
            text: "签收单照片见附件".into(),
            attachments: vec![Attachment {
                uri: "https://files.example/receipt.jpg".into(),
                media_type: "image/jpeg".into(),
                size_bytes: 2048,
                ..Default::default()
            }],
        }
    }

    fn field(m: SupplyEvidence) -> (C, String) {
        let e = ValidEvidence::parse(m, "web", &limits()).unwrap_err();
        (e.code, e.field)
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(ValidEvidence::parse(valid(), "web", &limits()).is_ok());
        let mut m = valid();
        m.channel = "sms".into();
        assert_eq!(field(m), (C::ChannelMismatch, "channel".into()));
        let mut m = valid();
        m.external_id = " ".into();
        assert_eq!(field(m), (C::Missing, "external_id".into()));
        let mut m = valid();
        m.ticket.clear();
        assert_eq!(field(m), (C::Missing, "ticket".into()));
        let mut m = valid();
        m.token.clear();
        assert_eq!(field(m), (C::Missing, "token".into()));
        let mut m = valid();
        m.token = "x".repeat(500);
        assert_eq!(field(m), (C::TooLong, "token".into()));
        let mut m = valid();
        m.text.clear();
        m.attachments.clear();
        assert_eq!(field(m), (C::Missing, "text".into()));
        let mut m = valid();
        m.text = "a\u{0}b".into();
        assert_eq!(field(m), (C::Malformed, "text".into()));
        let mut m = valid();
        m.text = "长".repeat(50);
        assert_eq!(field(m), (C::TooLong, "text".into()));
        let mut m = valid();
        m.attachments[0].uri = "receipt.jpg".into();
        assert_eq!(field(m), (C::Malformed, "attachments[0].uri".into()));
        let mut m = valid();
        m.attachments = vec![m.attachments[0].clone(); 3];
        assert_eq!(field(m), (C::TooLong, "attachments".into()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Any fields, and byte-level damage to a valid message: the check never panics, and
        /// what passes is an answer intake can store and publish.
        #[test]
        fn any_evidence_is_refused_or_sound(
            external_id in ".{0,220}",
            ticket in ".{0,80}",
            token in proptest::prop_oneof![proptest::strategy::Just("ab".repeat(32)), ".{0,140}"],
            text in proptest::prop_oneof![".{0,120}", "[\u{0}-\u{1f}a]{0,8}"],
            uri in proptest::prop_oneof![
                proptest::strategy::Just("https://files.example/p.jpg".to_string()),
                ".{0,40}"
            ],
            files in 0usize..4,
            edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..6),
        ) {
            use prost::Message as _;
            let mut m = valid();
            m.external_id = external_id;
            m.ticket = ticket;
            m.token = token;
            m.text = text;
            m.attachments = vec![Attachment { uri, ..Default::default() }; files];
            let mut bytes = m.encode_to_vec();
            for (at, b) in edits {
                if let Some(x) = bytes.get_mut(at) {
                    *x ^= b;
                }
            }
            let Ok(m) = SupplyEvidence::decode(bytes.as_slice()) else {
                return Ok(());
            };
            if let Ok(e) = ValidEvidence::parse(m, "web", &limits()) {
                proptest::prop_assert!(!e.external_id.is_empty() && e.external_id.len() <= 200);
                proptest::prop_assert!(!e.external_id.chars().any(char::is_whitespace));
                proptest::prop_assert!(!e.ticket.is_empty() && e.ticket.len() <= 64);
                proptest::prop_assert!(!e.token.is_empty() && e.token.len() <= 128);
                proptest::prop_assert!(e.text.len() <= 100 && !has_stray_control(&e.text));
                proptest::prop_assert!(!e.text.is_empty() || !e.attachments.is_empty());
                proptest::prop_assert!(e.attachments.len() <= 2);
            }
        }
    }
}
