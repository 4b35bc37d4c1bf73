//! The submission validator fuzzed with proptest: whatever bytes or fields arrive, parsing
//! never panics, and what it accepts is something the database stores and registration can
//! compute with (no stray control characters, a date inside the window, capped sizes).

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use prost::Message as _;
use redress_intake::domain::submission::{Limits, ValidSubmission};
use redress_proto::v1::{Attachment, Complainant, Contact, ContactKind, SubmitComplaint};

/// Cases per property; docs/benchmarks.md quotes the totals.
const CASES: u32 = 2_000;

fn limits() -> Limits {
    Limits {
        max_text_bytes: 8 * 1024,
        max_attachments: 10,
        default_playbook: "default".into(),
        channel_playbooks: Default::default(),
        playbooks: ["default".to_string()].into(),
        max_received_age: Duration::days(366),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap()
}

fn stray_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
}

/// What every accepted submission must satisfy.
fn holds(v: &ValidSubmission, limits: &Limits) -> Result<(), TestCaseError> {
    for (field, value) in [
        ("channel", &v.channel),
        ("external_id", &v.external_id),
        ("name", &v.name),
        ("text", &v.text),
        ("playbook", &v.playbook),
        ("reference", &v.reference),
        ("referred_by", &v.referred_by),
    ] {
        prop_assert!(!stray_control(value), "{field} kept a control character");
    }
    prop_assert!(v.text.len() <= limits.max_text_bytes);
    prop_assert!(!v.text.trim().is_empty());
    prop_assert!(v.attachments.len() <= limits.max_attachments);
    for a in &v.attachments {
        prop_assert!(a.media_type.len() <= 127);
        prop_assert!(!stray_control(&a.uri) && !stray_control(&a.media_type));
    }
    prop_assert!(v.received_at >= now() - limits.max_received_age);
    prop_assert!(v.received_at <= now() + Duration::minutes(5));
    // Registration subtracts the repeat window: it must not overflow.
    prop_assert!(
        v.received_at
            .checked_sub_signed(Duration::days(90))
            .is_some()
    );
    Ok(())
}

/// Strings that mix ordinary text, Chinese, controls (U+0000 among them) and long runs.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,20}",
        "[\u{4e00}-\u{4e20}]{1,30}",
        "[\u{0}-\u{1f}\u{7f}a-z]{0,12}",
        ".{0,40}",
        (1usize..20_000).prop_map(|n| "长".repeat(n)),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<redress_proto::time::Timestamp>> {
    prop_oneof![
        3 => Just(None),
        1 => (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Some(redress_proto::time::Timestamp { seconds, nanos })),
        2 => (-400i64 * 86_400..86_400).prop_map(|back| Some(redress_proto::time::Timestamp {
            seconds: now().timestamp() + back,
            nanos: 0,
        })),
    ]
}

fn submission() -> impl Strategy<Value = SubmitComplaint> {
    (
        prop_oneof![3 => Just("web".to_string()), 1 => nasty_string()],
        prop_oneof![3 => "[a-z0-9-]{1,20}", 1 => nasty_string()],
        prop_oneof![3 => "[\u{4e00}-\u{4e20}]{2,4}", 1 => nasty_string()],
        prop_oneof![3 => Just("13800001234".to_string()), 1 => nasty_string()],
        0i32..6,
        prop_oneof![3 => "[\u{4e00}-\u{4e20}\n ]{1,60}", 1 => nasty_string()],
        prop_oneof![
            3 => proptest::collection::vec((Just("s3://b/k.jpg".to_string()), Just("image/jpeg".to_string())), 0..3),
            1 => proptest::collection::vec(
                (
                    prop_oneof![3 => Just("s3://b/k.jpg".to_string()), 1 => nasty_string()],
                    prop_oneof![3 => Just("image/jpeg".to_string()), 1 => nasty_string()],
                ),
                0..13,
            ),
        ],
        timestamp(),
        prop_oneof![3 => Just(String::new()), 1 => nasty_string()],
    )
        .prop_map(
            |(
                channel,
                external_id,
                name,
                contact,
                kind,
                text,
                attachments,
                received_at,
                playbook,
            )| {
                SubmitComplaint {
                    channel,
                    external_id,
                    complainant: Some(Complainant {
                        name,
                        contact: Some(Contact {
                            kind: kind % 4,
                            value: contact,
                        }),
                    }),
                    text,
                    attachments: attachments
                        .into_iter()
                        .map(|(uri, media_type)| Attachment {
                            uri,
                            media_type,
                            ..Default::default()
                        })
                        .collect(),
                    received_at,
                    playbook,
                    ..Default::default()
                }
            },
        )
}

/// A generator that only makes rubbish would prove nothing about what is accepted.
#[test]
fn the_generator_makes_valid_submissions_too() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(500));
    let limits = limits();
    let mut accepted = 0;
    for _ in 0..500 {
        let msg = submission().new_tree(&mut runner).unwrap().current();
        if ValidSubmission::parse(msg, Some("web"), &limits, now()).is_ok() {
            accepted += 1;
        }
    }
    assert!(
        accepted >= 25,
        "only {accepted} of 500 generated submissions were valid"
    );
    println!("{accepted} of 500 generated submissions were valid");
}

fn valid_bytes() -> Vec<u8> {
    SubmitComplaint {
        channel: "web".into(),
        external_id: "w-1".into(),
        complainant: Some(Complainant {
            name: "王芳".into(),
            contact: Some(Contact {
                kind: ContactKind::Phone as i32,
                value: "13800001234".into(),
            }),
        }),
        text: "快递丢件，要求赔偿".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Field by field: never a panic; what passes holds the invariants.
    #[test]
    fn any_fields_are_refused_or_safe(msg in submission(), by_stream in any::<bool>()) {
        let limits = limits();
        let channel = by_stream.then_some("web");
        if let Ok(v) = ValidSubmission::parse(msg, channel, &limits, now()) {
            holds(&v, &limits)?;
        }
    }

    /// Byte by byte (flips, cuts, insertions into a valid message, or noise): decoding and
    /// parsing never panic; what passes holds the invariants.
    #[test]
    fn any_bytes_are_refused_or_safe(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
        noise in proptest::collection::vec(any::<u8>(), 0..300),
        use_noise in any::<bool>(),
    ) {
        let mut bytes = if use_noise { noise } else { valid_bytes() };
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] ^= byte,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
        }
        if let Ok(msg) = SubmitComplaint::decode(bytes.as_slice()) {
            let limits = limits();
            if let Ok(v) = ValidSubmission::parse(msg, Some("web"), &limits, now()) {
                holds(&v, &limits)?;
            }
        }
    }
}
