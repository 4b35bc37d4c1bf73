//! A submission that passed every check. Parsing is the only way to get one, so the rest of
//! intake never handles an unchecked field.

use chrono::{DateTime, Duration, Utc};
use redress_proto::subjects::CHANNELS;
use redress_proto::v1::{Attachment, SubmitComplaint, SubmitErrorCode};

use super::contact::{Contact, ContactError};

/// What is wrong with a submission: the code, the dotted path of the field, a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub code: SubmitErrorCode,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(
        code: SubmitErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `code` as the short name used in counters and logs.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            SubmitErrorCode::Missing => "missing",
            SubmitErrorCode::Malformed => "malformed",
            SubmitErrorCode::TooLong => "too_long",
            SubmitErrorCode::UnknownChannel => "unknown_channel",
            SubmitErrorCode::ChannelMismatch => "channel_mismatch",
            SubmitErrorCode::Undecodable => "undecodable",
            SubmitErrorCode::Internal => "internal",
            SubmitErrorCode::NotFound => "not_found",
            SubmitErrorCode::Unspecified => "unspecified",
        }
    }
}

/// Limits a submission is held to.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_text_bytes: usize,
    pub max_attachments: usize,
    pub default_playbook: String,
    /// The playbook of a channel's submissions that name none.
    pub channel_playbooks: std::collections::BTreeMap<String, String>,
    /// The playbooks the stack serves (their keys): a submission naming another is refused
    /// before it gets a ticket. Empty: not checked (a test's own limits).
    pub playbooks: std::collections::BTreeSet<String>,
    /// How long ago a complaint may say it was received (older is a mistake or an attack:
    /// deadlines and repeat windows are computed from it).
    pub max_received_age: Duration,
}

/// Control characters other than newline and tab have no place in a complaint (U+0000 cannot
/// even be stored in PostgreSQL text).
pub(crate) fn has_stray_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
}

#[derive(Debug, Clone)]
pub struct ValidSubmission {
    pub channel: String,
    pub external_id: String,
    pub name: String,
    pub contact: Contact,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub playbook: String,
    pub received_at: DateTime<Utc>,
    pub reference: String,
    pub referred_by: String,
    /// Solved where it was made: by whom, and what was done.
    pub solved: Option<(String, String)>,
}

const MAX_SHORT: usize = 200;

fn short(field: &str, value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    if v.chars().count() > MAX_SHORT {
        return Err(FieldError::new(
            SubmitErrorCode::TooLong,
            field,
            format!("at most {MAX_SHORT} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            SubmitErrorCode::Malformed,
            field,
            "control characters are not allowed",
        ));
    }
    Ok(v.to_string())
}

/// A required key-like value (a ticket, a person): trimmed, at most `max` bytes, no spaces or
/// control characters; `missing` says what is required.
pub(crate) fn required_key<'a>(
    field: &str,
    raw: &'a str,
    max: usize,
    missing: &str,
) -> Result<&'a str, FieldError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(FieldError::new(SubmitErrorCode::Missing, field, missing));
    }
    if v.len() > max || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(FieldError::new(
            SubmitErrorCode::Malformed,
            field,
            format!("at most {max} bytes, no spaces or control characters"),
        ));
    }
    Ok(v)
}

/// A complaint solved on the spot names who did it and what they did.
fn check_solved(s: redress_proto::v1::SolvedOnTheSpot) -> Result<(String, String), FieldError> {
    use SubmitErrorCode as C;
    let by = required_key(
        "solved.by",
        &s.by,
        100,
        "who solved it on the spot is required",
    )?;
    let what = s.what_was_done.trim();
    if what.is_empty() {
        return Err(FieldError::new(
            C::Missing,
            "solved.what_was_done",
            "what was done on the spot is required",
        ));
    }
    if what.len() > 16 * 1024 {
        return Err(FieldError::new(
            C::TooLong,
            "solved.what_was_done",
            "at most 16 KiB",
        ));
    }
    if has_stray_control(what) {
        return Err(FieldError::new(
            C::Malformed,
            "solved.what_was_done",
            "control characters other than newline and tab are not allowed",
        ));
    }
    Ok((by.to_string(), what.to_string()))
}

/// The channel's own id of what it sends: required, at most 200 bytes, one token.
pub(crate) fn check_external_id(raw: &str) -> Result<&str, FieldError> {
    use SubmitErrorCode as C;
    let external_id = raw.trim();
    if external_id.is_empty() {
        return Err(FieldError::new(
            C::Missing,
            "external_id",
            "the channel's id of the message is required",
        ));
    }
    if external_id.len() > MAX_SHORT {
        return Err(FieldError::new(
            C::TooLong,
            "external_id",
            format!("at most {MAX_SHORT} bytes"),
        ));
    }
    if external_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(FieldError::new(
            C::Malformed,
            "external_id",
            "no spaces or control characters",
        ));
    }
    Ok(external_id)
}

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(crate) fn check_attachment(i: usize, a: &Attachment) -> Result<(), FieldError> {
    let field = |name: &str| format!("attachments[{i}].{name}");
    let uri = a.uri.trim();
    if uri.is_empty() {
        return Err(FieldError::new(
            SubmitErrorCode::Missing,
            field("uri"),
            "an attachment needs a URI",
        ));
    }
    let well_formed = uri.len() <= 2048
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
        && match uri.split_once("://") {
            Some((scheme, rest)) => {
                !rest.is_empty()
                    && scheme.starts_with(|c: char| c.is_ascii_lowercase())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
            }
            None => false,
        };
    if !well_formed {
        return Err(FieldError::new(
            SubmitErrorCode::Malformed,
            field("uri"),
            "an attachment URI looks like https://host/path or s3://bucket/key",
        ));
    }
    if a.media_type.len() > 127 {
        return Err(FieldError::new(
            SubmitErrorCode::TooLong,
            field("media_type"),
            "at most 127 bytes",
        ));
    }
    if !a.media_type.is_empty()
        && !a
            .media_type
            .split_once('/')
            .is_some_and(|(t, s)| token_ok(t) && token_ok(s))
    {
        return Err(FieldError::new(
            SubmitErrorCode::Malformed,
            field("media_type"),
            "a media type looks like image/jpeg",
        ));
    }
    let sha_ok = a.sha256.len() == 64 && a.sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !a.sha256.is_empty() && !sha_ok {
        return Err(FieldError::new(
            SubmitErrorCode::Malformed,
            field("sha256"),
            "64 hexadecimal characters",
        ));
    }
    short(&field("file_name"), &a.file_name)?;
    Ok(())
}

impl ValidSubmission {
    /// Checks every field. `subject_channel` is the channel named by the subject the message
    /// arrived on, when it came through the stream.
    pub fn parse(
        msg: SubmitComplaint,
        subject_channel: Option<&str>,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<Self, FieldError> {
        use SubmitErrorCode as C;
        let channel = match (msg.channel.trim(), subject_channel) {
            ("", Some(s)) => s.to_string(),
            ("", None) => {
                return Err(FieldError::new(
                    C::Missing,
                    "channel",
                    "the channel is required",
                ));
            }
            (c, Some(s)) if c != s => {
                return Err(FieldError::new(
                    C::ChannelMismatch,
                    "channel",
                    format!("published on the {s} subject but says channel {c}"),
                ));
            }
            (c, _) => c.to_string(),
        };
        if !CHANNELS.contains(&channel.as_str()) {
            return Err(FieldError::new(
                C::UnknownChannel,
                "channel",
                format!(
                    "unknown channel {channel:?}; known: {}",
                    CHANNELS.join(", ")
                ),
            ));
        }

        let external_id = check_external_id(&msg.external_id)?;

        if msg.text.trim().is_empty() {
            return Err(FieldError::new(
                C::Missing,
                "text",
                "the complaint's text is required",
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
                format!(
                    "at most {} bytes of UTF-8, got {}",
                    limits.max_text_bytes,
                    msg.text.len()
                ),
            ));
        }

        let complainant = msg.complainant.unwrap_or_default();
        let name = short("complainant.name", &complainant.name)?;
        let raw_contact = complainant.contact.unwrap_or_default();
        let kind = raw_contact.kind();
        let contact = Contact::parse(kind, &raw_contact.value).map_err(|e| match e {
            ContactError::Missing => FieldError::new(
                C::Missing,
                "complainant.contact.value",
                "a way to reach the complainant is required",
            ),
            ContactError::Malformed(why) => {
                FieldError::new(C::Malformed, "complainant.contact.value", why)
            }
        })?;

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

        let playbook = match msg.playbook.trim() {
            "" => limits
                .channel_playbooks
                .get(msg.channel.trim())
                .unwrap_or(&limits.default_playbook)
                .clone(),
            p if p.len() <= 64
                && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
            {
                p.to_string()
            }
            _ => {
                return Err(FieldError::new(
                    C::Malformed,
                    "playbook",
                    "a playbook key is lowercase letters, digits and -",
                ));
            }
        };
        if !limits.playbooks.is_empty() && !limits.playbooks.contains(&playbook) {
            return Err(FieldError::new(
                C::NotFound,
                "playbook",
                format!(
                    "{playbook:?} is not a playbook of this stack ({})",
                    limits
                        .playbooks
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }

        let received_at = match msg.received_at {
            None => now,
            Some(ts) => {
                let at = DateTime::from_timestamp_micros(redress_proto::time::to_unix_micros(&ts))
                    .ok_or_else(|| {
                        FieldError::new(C::Malformed, "received_at", "not a valid time")
                    })?;
                if at > now + Duration::minutes(5) {
                    return Err(FieldError::new(
                        C::Malformed,
                        "received_at",
                        "lies in the future",
                    ));
                }
                if at < now - limits.max_received_age {
                    return Err(FieldError::new(
                        C::Malformed,
                        "received_at",
                        format!("more than {} days ago", limits.max_received_age.num_days()),
                    ));
                }
                at
            }
        };

        Ok(Self {
            channel,
            external_id: external_id.to_string(),
            name,
            contact,
            text: msg.text,
            attachments: msg.attachments,
            playbook,
            received_at,
            reference: short("reference", &msg.reference)?,
            referred_by: short("referred_by", &msg.referred_by)?,
            solved: match msg.solved {
                None => None,
                Some(s) => Some(check_solved(s)?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_proto::v1::{Complainant, Contact as PContact, ContactKind};

    fn limits() -> Limits {
        Limits {
            max_text_bytes: 65_536,
            max_attachments: 20,
            default_playbook: "default".into(),
            channel_playbooks: [("phone".to_string(), "express".to_string())].into(),
            playbooks: ["default".to_string(), "express".to_string()].into(),
            max_received_age: Duration::days(366),
        }
    }

    fn good() -> SubmitComplaint {
        SubmitComplaint {
            channel: "sms".into(),
            external_id: "m-1".into(),
            complainant: Some(Complainant {
                name: "张三".into(),
                contact: Some(PContact {
                    kind: ContactKind::Phone as i32,
                    value: "13800138000".into(),
                }),
            }),
            text: "快递三天没有送到".into(),
            ..Default::default()
        }
    }

    fn err(m: SubmitComplaint, subject: Option<&str>) -> (SubmitErrorCode, String) {
        let e = ValidSubmission::parse(m, subject, &limits(), Utc::now()).unwrap_err();
        (e.code, e.field)
    }

    #[test]
    fn a_good_submission_parses_with_defaults() {
        let v = ValidSubmission::parse(good(), Some("sms"), &limits(), Utc::now()).unwrap();
        assert_eq!(v.playbook, "default");
        assert_eq!(v.contact.value(), "13800138000");
    }

    #[test]
    fn each_bad_field_is_named() {
        use SubmitErrorCode as C;
        let mut m = good();
        m.channel = "fax".into();
        assert_eq!(err(m, None), (C::UnknownChannel, "channel".into()));
        assert_eq!(
            err(good(), Some("email")),
            (C::ChannelMismatch, "channel".into())
        );
        let mut m = good();
        m.channel.clear();
        assert_eq!(err(m, None), (C::Missing, "channel".into()));
        let mut m = good();
        m.text = "  \n".into();
        assert_eq!(err(m, None), (C::Missing, "text".into()));
        let mut m = good();
        m.text = "字".repeat(30_000);
        assert_eq!(err(m, None), (C::TooLong, "text".into()));
        let mut m = good();
        m.complainant.as_mut().unwrap().contact = None;
        assert_eq!(
            err(m, None),
            (C::Missing, "complainant.contact.value".into())
        );
        let mut m = good();
        m.complainant.as_mut().unwrap().contact = Some(PContact {
            kind: ContactKind::Email as i32,
            value: "not-an-address".into(),
        });
        assert_eq!(
            err(m, None),
            (C::Malformed, "complainant.contact.value".into())
        );
        let mut m = good();
        m.attachments = vec![
            Attachment {
                uri: "https://x/a.jpg".into(),
                ..Default::default()
            },
            Attachment {
                uri: "photo.jpg".into(),
                ..Default::default()
            },
        ];
        assert_eq!(err(m, None), (C::Malformed, "attachments[1].uri".into()));
        let mut m = good();
        m.attachments = vec![Attachment {
            uri: "s3://b/k".into(),
            sha256: "abc".into(),
            ..Default::default()
        }];
        assert_eq!(err(m, None), (C::Malformed, "attachments[0].sha256".into()));
        let mut m = good();
        m.external_id = "has space".into();
        assert_eq!(err(m, None), (C::Malformed, "external_id".into()));
        let mut m = good();
        m.playbook = "Bad Key".into();
        assert_eq!(err(m, None), (C::Malformed, "playbook".into()));
        // A well-formed key the stack does not serve: refused before any ticket.
        let mut m = good();
        m.playbook = "laboratory".into();
        assert_eq!(err(m, None), (C::NotFound, "playbook".into()));
        let mut m = good();
        m.playbook = "express".into();
        assert!(ValidSubmission::parse(m, None, &limits(), Utc::now()).is_ok());
        // None named: the channel's binding, else the default.
        let mut m = good();
        m.channel = "phone".into();
        let v = ValidSubmission::parse(m, None, &limits(), Utc::now()).unwrap();
        assert_eq!(v.playbook, "express");
        let v = ValidSubmission::parse(good(), None, &limits(), Utc::now()).unwrap();
        assert_eq!(v.playbook, "default");
        // What a database would refuse or a date that would overflow arithmetic.
        let mut m = good();
        m.text = "bad\u{0}byte".into();
        assert_eq!(err(m, None), (C::Malformed, "text".into()));
        let mut m = good();
        m.text = "a bell\u{7}".into();
        assert_eq!(err(m, None), (C::Malformed, "text".into()));
        let mut m = good();
        m.received_at = Some(redress_proto::time::Timestamp {
            seconds: -8_272_000_000_000,
            nanos: 0,
        });
        assert_eq!(err(m, None), (C::Malformed, "received_at".into()));
        let mut m = good();
        m.received_at = Some(redress_proto::time::from_unix_micros(
            -62_135_596_800_000_000,
        ));
        assert_eq!(err(m, None), (C::Malformed, "received_at".into()));
        let mut m = good();
        m.attachments = vec![Attachment {
            uri: "s3://b/k".into(),
            media_type: format!("image/{}", "x".repeat(300)),
            ..Default::default()
        }];
        assert_eq!(
            err(m, None),
            (C::TooLong, "attachments[0].media_type".into())
        );
        // Newlines and tabs are part of ordinary text.
        let mut m = good();
        m.text = "第一行\n\t第二行".into();
        assert!(ValidSubmission::parse(m, None, &limits(), Utc::now()).is_ok());
    }

    #[test]
    fn text_of_exactly_the_limit_is_accepted() {
        let mut m = good();
        m.text = "a".repeat(65_536);
        assert!(ValidSubmission::parse(m, None, &limits(), Utc::now()).is_ok());
    }
}
