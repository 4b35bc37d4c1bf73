//! Classification against a real nats-server with JetStream and a real PostgreSQL, with
//! intake played by the test.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::{Clock as _, ManualClock};
use redress_playbook::Playbooks;
use redress_proto::subjects::Stream;
use redress_proto::time::from_unix_micros;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    ComplaintClassified, ComplaintReceived, DeadLetter, Envelope, RuleHit, Severity, SurveySent,
    Urgency,
};
use redress_testkit::{RunningService, TestEnv, eventually, playbooks_dir};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

async fn start(env: &TestEnv, clock: Arc<ManualClock>) -> RunningService {
    env.start_service("classification", clock, redress_classification::run)
        .await
        .expect("classification starts")
}

struct Complaint<'a> {
    id: Uuid,
    ticket: &'a str,
    channel: &'a str,
    text: &'a str,
    referred_by: &'a str,
    playbook: &'a str,
}

impl<'a> Complaint<'a> {
    fn new(ticket: &'a str, channel: &'a str, text: &'a str) -> Self {
        Self {
            id: Uuid::now_v7(),
            ticket,
            channel,
            text,
            referred_by: "",
            playbook: "default",
        }
    }

    /// A complaint.received envelope as intake publishes it (a fresh event id each call).
    fn received(&self) -> Envelope {
        new_event(
            "intake",
            &Cause {
                complaint_id: self.id,
                ticket: self.ticket.into(),
                causation_id: format!("{}:{}", self.channel, self.ticket),
                correlation_id: self.id.to_string(),
                playbook: self.playbook.to_string(),
            },
            t0(),
            Payload::ComplaintReceived(ComplaintReceived {
                ticket: self.ticket.into(),
                channel: self.channel.into(),
                external_id: format!("ext-{}", self.ticket),
                text: self.text.into(),
                received_at: Some(from_unix_micros(t0().timestamp_micros() - 5_000_000)),
                reference: "SF1234567890".into(),
                referred_by: self.referred_by.into(),
                complainant_ref: "ab12cd34".into(),
                ..Default::default()
            }),
        )
    }
}

fn classified_subject(env: &TestEnv) -> String {
    env.subjects()
        .event(redress_proto::EventKind::ComplaintClassified.name())
}

async fn classified(env: &TestEnv) -> Vec<(Envelope, ComplaintClassified)> {
    env.events(classified_subject(env))
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.payload.clone() {
            Some(Payload::ComplaintClassified(c)) => (e, c),
            other => panic!("not a ComplaintClassified: {other:?}"),
        })
        .collect()
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Until the service's consumer has handled (and acknowledged) everything on the stream and
/// its outbox is published, so that "still one" is asserted after the copies were seen.
async fn settled(env: &TestEnv, pool: &sqlx::PgPool) {
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    let stream = js
        .get_stream(env.subjects().stream_name(Stream::Events))
        .await
        .unwrap();
    eventually(
        "the consumer to drain and the outbox to empty",
        WAIT,
        || {
            let stream = stream.clone();
            async move {
                let mut consumer = stream
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                        &redress_platform::events::Filter::Kinds(vec![
                            redress_proto::EventKind::ComplaintReceived,
                        ])
                        .consumers("classification", &env.subjects())[0]
                            .0,
                    )
                    .await
                    .unwrap();
                let info = consumer.info().await.unwrap();
                info.num_pending == 0
                    && info.num_ack_pending == 0
                    && count(pool, "SELECT count(*) FROM classification.outbox").await == 0
            }
        },
    )
    .await;
}

fn hit(rule: &str, matched: &str) -> RuleHit {
    RuleHit {
        rule: rule.into(),
        matched: matched.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_received_complaint_is_classified_stored_and_published_once() {
    let env = TestEnv::start().await.unwrap();
    // The first start creates the streams and the durable consumer; the events below are
    // published while the service is down and handled when it comes back.
    start(&env, ManualClock::new(t0()))
        .await
        .stop()
        .await
        .unwrap();
    let complaint = Complaint::new(
        "RD-20261123-000001",
        "sms",
        "快递丢件，要求赔偿，请尽快处理",
    );
    let received = complaint.received();
    env.publish_event(env.subjects().complaint_received(), &received)
        .await
        .unwrap();
    // Another service's event: acknowledged and ignored.
    let other = new_event(
        "survey",
        &Cause {
            complaint_id: complaint.id,
            ticket: complaint.ticket.into(),
            causation_id: "x".into(),
            correlation_id: complaint.id.to_string(),
            playbook: "default".into(),
        },
        t0(),
        Payload::SurveySent(SurveySent::default()),
    );
    env.publish_event(
        env.subjects()
            .event(redress_proto::EventKind::SurveySent.name()),
        &other,
    )
    .await
    .unwrap();
    let clock = ManualClock::new(t0() + chrono::Duration::seconds(3));
    let service = start(&env, clock.clone()).await;

    eventually("complaint.classified", WAIT, || async {
        !classified(&env).await.is_empty()
    })
    .await;
    let pool = env.admin_pool().await.unwrap();
    settled(&env, &pool).await;
    let all = classified(&env).await;
    assert_eq!(all.len(), 1);
    let (envelope, c) = &all[0];

    let version = Playbooks::load_dir(playbooks_dir().as_ref())
        .unwrap()
        .get("default")
        .unwrap()
        .version
        .clone();
    assert_eq!(c.category, "delivery");
    assert_eq!(c.nature, "valid");
    assert_eq!(c.severity(), Severity::Major);
    assert_eq!(c.urgency(), Urgency::Urgent);
    assert_eq!(c.confidence, 1.0);
    assert_eq!(c.rule_set_version, version);
    assert_eq!(
        c.hits,
        vec![
            hit("category.delivery", "快递"),
            hit("major.compensation", "赔偿"),
            hit("urgency.urgent", "尽快"),
        ]
    );
    let Some(Payload::ComplaintReceived(r)) = received.payload.clone() else {
        unreachable!()
    };
    assert_eq!(c.ticket, r.ticket);
    assert_eq!(c.channel, r.channel);
    assert_eq!(c.external_id, r.external_id);
    assert_eq!(c.text, r.text);
    assert_eq!(c.received_at, r.received_at);
    assert_eq!(c.reference, r.reference);
    assert_eq!(c.complainant_ref, r.complainant_ref);

    assert_eq!(envelope.producer, "classification");
    assert_eq!(envelope.complaint_id, complaint.id.to_string());
    assert_eq!(envelope.causation_id, received.event_id);
    assert_eq!(envelope.correlation_id, received.correlation_id);
    assert_eq!(envelope.playbook, "default");
    assert_eq!(
        envelope.occurred_at,
        Some(from_unix_micros(clock.now().timestamp_micros()))
    );

    let row: (
        String,
        String,
        String,
        String,
        String,
        f64,
        serde_json::Value,
        DateTime<Utc>,
        Uuid,
    ) = sqlx::query_as(
        "SELECT ticket, category, severity, urgency, rule_set_version, confidence, hits,
                    decided_at, event_id
             FROM classification.decisions WHERE complaint_id = $1",
    )
    .bind(complaint.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.0, complaint.ticket);
    assert_eq!(
        (row.1.as_str(), row.2.as_str(), row.3.as_str()),
        ("delivery", "major", "urgent")
    );
    assert_eq!(row.4, version);
    assert_eq!(row.5, 1.0);
    assert_eq!(
        row.6,
        serde_json::json!([
            {"rule": "category.delivery", "matched": "快递"},
            {"rule": "major.compensation", "matched": "赔偿"},
            {"rule": "urgency.urgent", "matched": "尽快"},
        ])
    );
    assert_eq!(row.7, t0() + chrono::Duration::seconds(3));
    assert_eq!(row.8.to_string(), envelope.event_id);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM classification.decisions").await,
        1
    );
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_or_republished_complaint_is_decided_once() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let complaint = Complaint::new("RD-20261123-000002", "web", "The parcel arrived damaged");
    let first = complaint.received();
    env.publish_event(env.subjects().complaint_received(), &first)
        .await
        .unwrap();
    // The same event again without a Nats-Msg-Id, so the broker's duplicate window does not
    // drop it and the service's inbox has to.
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    js.publish(
        env.subjects().complaint_received(),
        first.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // The same event id through the broker's duplicate window too.
    env.publish_event(env.subjects().complaint_received(), &first)
        .await
        .unwrap();
    // The same complaint under another event id (intake republishing after a crash).
    let second = complaint.received();
    assert_ne!(first.event_id, second.event_id);
    env.publish_event(env.subjects().complaint_received(), &second)
        .await
        .unwrap();

    let pool = env.admin_pool().await.unwrap();
    eventually("the decision", WAIT, || async {
        count(&pool, "SELECT count(*) FROM classification.decisions").await == 1
    })
    .await;
    settled(&env, &pool).await;
    let all = classified(&env).await;
    assert_eq!(all.len(), 1, "one complaint.classified");
    assert_eq!(all[0].1.category, "delivery");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM classification.decisions").await,
        1
    );
    // Both event ids were seen and recorded.
    let seen: i64 =
        sqlx::query_scalar("SELECT count(*) FROM classification.inbox WHERE message_id = ANY($1)")
            .bind(vec![first.event_id.clone(), second.event_id.clone()])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(seen, 2);
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_referral_by_the_consumer_association_is_major() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let mut complaint = Complaint::new("RD-20261123-000003", "referral", "消费者反映客服态度恶劣");
    complaint.referred_by = "消费者协会";
    env.publish_event(env.subjects().complaint_received(), &complaint.received())
        .await
        .unwrap();
    eventually("complaint.classified", WAIT, || async {
        !classified(&env).await.is_empty()
    })
    .await;
    let (_, c) = classified(&env).await.remove(0);
    assert_eq!(c.severity(), Severity::Major);
    assert_eq!(c.category, "service_attitude");
    assert_eq!(c.urgency(), Urgency::Normal);
    assert!(
        c.hits.contains(&hit("major.channel", "channel=referral")),
        "{:?}",
        c.hits
    );
    assert!(
        c.hits
            .contains(&hit("major.referred", "referred_by=消费者协会")),
        "{:?}",
        c.hits
    );
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_complaint_is_general_and_an_unmatched_one_falls_back() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let plain = Complaint::new("RD-20261123-000004", "email", "The kettle is broken");
    let vague = Complaint::new("RD-20261123-000005", "email", "I am not happy with you");
    for c in [&plain, &vague] {
        env.publish_event(env.subjects().complaint_received(), &c.received())
            .await
            .unwrap();
    }
    eventually("two classifications", WAIT, || async {
        classified(&env).await.len() == 2
    })
    .await;
    let all = classified(&env).await;
    let by_ticket = |t: &str| all.iter().find(|(_, c)| c.ticket == t).unwrap().1.clone();
    let p = by_ticket(plain.ticket);
    assert_eq!(p.category, "product_quality");
    assert_eq!(p.severity(), Severity::General);
    assert_eq!(p.urgency(), Urgency::Normal);
    let v = by_ticket(vague.ticket);
    assert_eq!(v.category, "other");
    assert_eq!(v.nature, "valid");
    assert_eq!(v.severity(), Severity::General);
    assert!(v.hits.is_empty());
    assert!(
        v.confidence < p.confidence,
        "{} < {}",
        v.confidence,
        p.confidence
    );
    service.stop().await.unwrap();
}

async fn dead_letters(env: &TestEnv) -> Vec<DeadLetter> {
    env.stream_messages(
        Stream::DeadLetter,
        env.subjects().dead_letter("classification"),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|m| DeadLetter::decode(m.payload.clone()).unwrap())
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_event_is_dead_lettered_and_the_next_is_handled() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    js.publish(
        env.subjects().complaint_received(),
        vec![0xff, 0xff, 0xff, 0x01].into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let good = Complaint::new("RD-20261123-000006", "phone", "配送员态度很差");
    env.publish_event(env.subjects().complaint_received(), &good.received())
        .await
        .unwrap();

    eventually("the dead letter", WAIT, || async {
        !dead_letters(&env).await.is_empty()
    })
    .await;
    eventually("the good event classified", WAIT, || async {
        classified(&env).await.len() == 1
    })
    .await;
    let letters = dead_letters(&env).await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("not an Envelope"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].payload, vec![0xff, 0xff, 0xff, 0x01]);
    assert_eq!(
        letters[0].original_subject,
        env.subjects().complaint_received()
    );
    assert_eq!(classified(&env).await[0].1.ticket, good.ticket);
    assert_eq!(service.metrics.get("classification_dead_letters_total"), 1);
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complaint_of_an_unknown_playbook_is_dead_lettered_with_the_reason() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let mut stray = Complaint::new("RD-20261123-000007", "web", "快递没收到");
    stray.playbook = "no-such-playbook";
    env.publish_event(env.subjects().complaint_received(), &stray.received())
        .await
        .unwrap();
    eventually("the dead letter", WAIT, || async {
        !dead_letters(&env).await.is_empty()
    })
    .await;
    let letters = dead_letters(&env).await;
    assert!(
        letters[0].reason.contains("no-such-playbook"),
        "{}",
        letters[0].reason
    );
    let pool = env.admin_pool().await.unwrap();
    assert_eq!(
        count(&pool, "SELECT count(*) FROM classification.decisions").await,
        0
    );
    assert!(classified(&env).await.is_empty());
    service.stop().await.unwrap();
}

/// The text arrives sealed; its key comes through intake's outbox just before the event, so
/// classification can overtake it. Such a complaint waits (retried, never dead-lettered) and
/// is classified on its text once the key is there. A complaint erased before it was
/// classified is classified on no text at all: its facts still count.
#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_text_waits_for_its_key_and_an_erased_one_is_classified_without_it() {
    use redress_platform::sealed::{TextKey, TextKeys};
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let s = env.subjects();
    let put_key = |id: Uuid, key: [u8; 32]| {
        let env = &env;
        async move { env.put_text_key(id, key).await.unwrap() }
    };
    let sealed_received = |c: &Complaint, key: &[u8; 32]| {
        let mut e = c.received();
        if let Some(Payload::ComplaintReceived(r)) = e.payload.as_mut() {
            r.sealed_text = TextKey::from_bytes(key).unwrap().seal(&r.text, &c.id);
            r.text.clear();
        }
        e
    };

    let late = Complaint::new("RD-20261123-000010", "phone", "The kettle is broken");
    let late_key = [3u8; 32];
    let late_event = sealed_received(&late, &late_key);
    env.publish_event(s.complaint_received(), &late_event)
        .await
        .unwrap();
    eventually("a retry while the key is missing", WAIT, || async {
        service.metrics.get("classification_retries_total") >= 1
    })
    .await;
    assert!(classified(&env).await.is_empty());
    put_key(late.id, late_key).await;
    eventually("classified once the key is there", WAIT, || async {
        classified(&env).await.len() == 1
    })
    .await;
    let (_, c) = classified(&env).await.remove(0);
    assert_eq!(c.category, "product_quality", "classified on its text");
    assert!(c.text.is_empty());
    let Some(Payload::ComplaintReceived(r)) = late_event.payload else {
        unreachable!()
    };
    assert_eq!(c.sealed_text, r.sealed_text, "passed on sealed, as it came");

    let erased = Complaint::new("RD-20261123-000011", "phone", "The kettle is broken");
    let erased_key = [4u8; 32];
    put_key(erased.id, erased_key).await;
    TextKeys::new(env.nats_client().await.unwrap(), &s)
        .purge(&erased.id)
        .await
        .unwrap();
    env.publish_event(
        s.complaint_received(),
        &sealed_received(&erased, &erased_key),
    )
    .await
    .unwrap();
    eventually("the erased one classified", WAIT, || async {
        classified(&env).await.len() == 2
    })
    .await;
    let all = classified(&env).await;
    let e = &all
        .iter()
        .find(|(_, c)| c.ticket == erased.ticket)
        .unwrap()
        .1;
    assert_eq!(e.category, "other", "nothing left to read");
    assert!(dead_letters(&env).await.is_empty());

    // A text sealed under another key (forged, or damaged on the way) never opens: refused
    // with the reason, not retried.
    let forged = Complaint::new("RD-20261123-000012", "phone", "The kettle is broken");
    put_key(forged.id, [5u8; 32]).await;
    env.publish_event(
        s.complaint_received(),
        &sealed_received(&forged, &[6u8; 32]),
    )
    .await
    .unwrap();
    eventually("the forged one dead-lettered", WAIT, || async {
        !dead_letters(&env).await.is_empty()
    })
    .await;
    let letters = dead_letters(&env).await;
    assert!(
        letters[0].reason.contains("does not open"),
        "{}",
        letters[0].reason
    );
    assert_eq!(classified(&env).await.len(), 2);
    service.stop().await.unwrap();
}
