//! Intake against a real nats-server with JetStream and a real PostgreSQL.

use std::time::Duration;

use prost::Message as _;
use redress_client::{Client, ClientError};
use redress_platform::clock;
use redress_platform::sealed::{KeysError, Opened};
use redress_proto::subjects::Stream;
use redress_proto::v1::{
    Acknowledgement, Attachment, Complainant, Contact, ContactKind, DeadLetter, Envelope,
    SubmissionRejected, SubmitComplaint, SubmitErrorCode, envelope::Payload,
};
use redress_testkit::{RunningService, TestEnv};

async fn start(env: &TestEnv) -> RunningService {
    env.start_service("intake", clock::system(), redress_intake::run)
        .await
        .expect("intake starts")
}

async fn client(env: &TestEnv) -> Client {
    env.client().await.unwrap()
}

fn complaint(channel: &str, external_id: &str, contact: &str) -> SubmitComplaint {
    SubmitComplaint {
        channel: channel.into(),
        external_id: external_id.into(),
        complainant: Some(Complainant {
            name: "王芳".into(),
            contact: Some(Contact {
                kind: ContactKind::Unspecified as i32,
                value: contact.into(),
            }),
        }),
        text: "快递丢件，要求赔偿".into(),
        reference: "SF1234567890".into(),
        ..Default::default()
    }
}

/// Every message currently stored on `subject`, in order.
async fn messages_on(
    env: &TestEnv,
    stream: Stream,
    subject: String,
) -> Vec<async_nats::jetstream::Message> {
    env.stream_messages(stream, subject).await.unwrap()
}

/// Waits for intake's one dead letter and returns it.
async fn the_one_dead_letter(env: &TestEnv) -> DeadLetter {
    let subject = env.subjects().dead_letter("intake");
    eventually("the dead letter", || async {
        !messages_on(env, Stream::DeadLetter, subject.clone())
            .await
            .is_empty()
    })
    .await;
    let letters = messages_on(env, Stream::DeadLetter, subject).await;
    assert_eq!(letters.len(), 1);
    DeadLetter::decode(letters[0].payload.clone()).unwrap()
}

/// Polls until `check` holds, for at most 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_is_stored_published_acknowledged_and_queryable() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let subjects = client.subjects().clone();

    let accepted = client
        .submit(&complaint("sms", "msg-1", "+86 139 0000 1111"))
        .await
        .unwrap();
    assert!(!accepted.duplicate);
    assert!(accepted.ticket.starts_with("RD-"));

    // The event, in its envelope, on the events stream.
    let pool = env.admin_pool().await.unwrap();
    eventually("complaint.received", || async {
        !messages_on(&env, Stream::Events, subjects.complaint_received())
            .await
            .is_empty()
    })
    .await;
    let events = messages_on(&env, Stream::Events, subjects.complaint_received()).await;
    assert_eq!(events.len(), 1);
    let envelope = Envelope::decode(events[0].payload.clone()).unwrap();
    assert_eq!(envelope.complaint_id, accepted.complaint_id);
    assert_eq!(envelope.producer, "intake");
    assert_eq!(envelope.playbook, "default");
    assert_eq!(
        events[0]
            .headers
            .as_ref()
            .unwrap()
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str(),
        envelope.event_id
    );
    let Some(Payload::ComplaintReceived(received)) = envelope.payload else {
        panic!("wrong payload")
    };
    assert_eq!(received.ticket, accepted.ticket);
    assert_eq!(received.reference, "SF1234567890");
    assert_eq!(received.complainant_ref.len(), 64);

    // The acknowledgement to the complainant, with the ticket.
    eventually("acknowledgement", || async {
        !messages_on(&env, Stream::Notify, subjects.notify_ack("sms"))
            .await
            .is_empty()
    })
    .await;
    let acks = messages_on(&env, Stream::Notify, subjects.notify_ack("sms")).await;
    let ack = Acknowledgement::decode(acks[0].payload.clone()).unwrap();
    assert_eq!(ack.ticket, accepted.ticket);
    assert!(ack.message.contains(&accepted.ticket));
    assert_eq!(ack.contact.unwrap().value, "13900001111");

    // Status by ticket and by complaint id.
    let by_ticket = client
        .status_by_ticket(&accepted.ticket.to_lowercase())
        .await
        .unwrap();
    assert_eq!(by_ticket.status, "received");
    assert_eq!(by_ticket.channel, "sms");
    assert!(by_ticket.received_at.is_some());
    assert_eq!(by_ticket.history.len(), 1);
    let by_id = client.status_by_id(&accepted.complaint_id).await.unwrap();
    assert_eq!(by_id.ticket, accepted.ticket);
    match client.status_by_ticket("RD-000000-000001").await {
        Err(ClientError::Query(e)) => assert_eq!(e.field, "ticket"),
        other => panic!("expected a check-digit error, got {other:?}"),
    }
    let missing = redress_intake::domain::ticket::Ticket::issue("RD", "200101", 99_999);
    assert!(matches!(
        client.status_by_ticket(missing.as_str()).await,
        Err(ClientError::Query(e)) if e.code == redress_proto::v1::QueryErrorCode::NotFound as i32
    ));

    // Contact details are encrypted at rest.
    let row: (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT contact, complainant_name FROM intake.complaints")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&row.0).contains("13900001111"));
    assert!(!row.1.windows("王芳".len()).any(|w| w == "王芳".as_bytes()));
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_external_id_is_one_complaint_on_every_path_and_after_a_restart() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let c = complaint("web", "form-77", "li@example.com");

    // Stream path twice: the broker drops the resend.
    client.publish_submission(&c).await.unwrap().await.unwrap();
    let resend = client.publish_submission(&c).await.unwrap().await.unwrap();
    assert!(resend.duplicate, "the broker should drop the resend");
    // Past the broker's duplicate window (simulated with another message id): intake still
    // recognises the channel id.
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", "web:form-77:late");
    js.publish_with_headers(client.subjects().submit("web"), h, c.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // And the request path.
    let pool = env.admin_pool().await.unwrap();
    for _ in 0..200 {
        if count(&pool, "SELECT count(*) FROM intake.inbox").await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT message_id FROM intake.inbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        ids.len(),
        2,
        "{ids:?} complaints={}",
        count(&pool, "SELECT count(*) FROM intake.complaints").await
    );
    let answer = client.submit(&c).await.unwrap();
    assert!(answer.duplicate);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM intake.complaints").await,
        1
    );

    intake.stop().await.unwrap();
    let intake = start(&env).await;
    let again = client.submit(&c).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.ticket, answer.ticket);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM intake.complaints").await,
        1
    );
    eventually("one event", || async {
        messages_on(&env, Stream::Events, client.subjects().complaint_received())
            .await
            .len()
            == 1
    })
    .await;
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_input_gets_its_typed_error_is_counted_and_stores_nothing() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let mut cases: Vec<(SubmitComplaint, SubmitErrorCode, &str)> = Vec::new();
    let mut c = complaint("fax", "b1", "13900001111");
    cases.push((c.clone(), SubmitErrorCode::UnknownChannel, "channel"));
    c = complaint("sms", "b2", "13900001111");
    c.text = "   ".into();
    cases.push((c, SubmitErrorCode::Missing, "text"));
    c = complaint("sms", "b3", "13900001111");
    c.text = "x".repeat(64 * 1024 + 1);
    cases.push((c, SubmitErrorCode::TooLong, "text"));
    c = complaint("sms", "b4", "");
    cases.push((c, SubmitErrorCode::Missing, "complainant.contact.value"));
    c = complaint("sms", "b5", "");
    c.complainant.as_mut().unwrap().contact = Some(Contact {
        kind: ContactKind::Phone as i32,
        value: "call me maybe".into(),
    });
    cases.push((c, SubmitErrorCode::Malformed, "complainant.contact.value"));
    c = complaint("email", "b6", "");
    c.complainant.as_mut().unwrap().contact = Some(Contact {
        kind: ContactKind::Email as i32,
        value: "wang@".into(),
    });
    cases.push((c, SubmitErrorCode::Malformed, "complainant.contact.value"));
    c = complaint("sms", "b7", "13900001111");
    c.attachments = vec![Attachment {
        uri: "not a uri".into(),
        ..Default::default()
    }];
    cases.push((c, SubmitErrorCode::Malformed, "attachments[0].uri"));
    c = complaint("sms", "", "13900001111");
    cases.push((c, SubmitErrorCode::Missing, "external_id"));
    // What once reached the database and failed every batch it joined.
    c = complaint("sms", "b10", "13900001111");
    c.text = "包裹\u{0}丢了".into();
    cases.push((c, SubmitErrorCode::Malformed, "text"));
    c = complaint("sms", "b11", "13900001111");
    c.received_at = Some(redress_proto::time::Timestamp {
        seconds: -8_334_601_228_800,
        nanos: 0,
    });
    cases.push((c, SubmitErrorCode::Malformed, "received_at"));
    c = complaint("sms", "b12", "13900001111");
    c.received_at = Some(redress_proto::time::from_unix_micros(
        -62_135_596_800_000_000,
    ));
    cases.push((c, SubmitErrorCode::Malformed, "received_at"));
    c = complaint("sms", "b13", "13900001111");
    c.attachments = vec![Attachment {
        uri: "s3://b/k".into(),
        media_type: format!("image/{}", "x".repeat(900_000)),
        ..Default::default()
    }];
    cases.push((c, SubmitErrorCode::TooLong, "attachments[0].media_type"));

    for (case, code, field) in &cases {
        match client.submit(case).await {
            Err(ClientError::Refused(e)) => {
                assert_eq!((e.code, e.field.as_str()), (*code as i32, *field), "{e:?}");
            }
            other => panic!("expected a refusal for {field}, got {other:?}"),
        }
    }

    // Through the stream, the adapter hears why on its channel's rejected subject (read
    // from the stream that keeps it, so no subscription can miss it).
    let mut bad = complaint("sms", "b9", "13900001111");
    bad.text.clear();
    client
        .publish_submission(&bad)
        .await
        .unwrap()
        .await
        .unwrap();
    let rejected = env.subjects().notify_rejected("sms");
    eventually("a rejection notice", || async {
        !messages_on(&env, Stream::Notify, rejected.clone())
            .await
            .is_empty()
    })
    .await;
    let notices = messages_on(&env, Stream::Notify, rejected).await;
    assert_eq!(notices.len(), 1);
    let notice = SubmissionRejected::decode(notices[0].payload.clone()).unwrap();
    assert_eq!(notice.external_id, "b9");
    assert_eq!(notice.error.unwrap().field, "text");

    let pool = env.admin_pool().await.unwrap();
    assert_eq!(
        count(&pool, "SELECT count(*) FROM intake.complaints").await,
        0
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM intake.history").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM intake.outbox").await, 0);
    let text = intake.metrics.render();
    assert!(
        text.contains("code=\"missing\",field=\"text\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("code=\"unknown_channel\",field=\"channel\"} 1"),
        "{text}"
    );
    intake.stop().await.unwrap();
}

/// Hostile submissions on the stream path: each is refused or registered on its own, and the
/// normal complaints queued with them are all registered.
#[tokio::test(flavor = "multi_thread")]
async fn poison_on_the_stream_delays_nothing_else() {
    let env = TestEnv::start().await.unwrap();
    let client = client(&env).await;
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    // Queued while intake is stopped (its first run makes the streams), so that they share batches.
    start(&env).await.stop().await.unwrap();
    for i in 0..10 {
        let mut bad = complaint("sms", &format!("nul-{i}"), "13900001111");
        bad.text = "a\u{0}b".into();
        client
            .publish_submission(&bad)
            .await
            .unwrap()
            .await
            .unwrap();
        let mut old = complaint("sms", &format!("ancient-{i}"), "13900001111");
        old.received_at = Some(redress_proto::time::Timestamp {
            seconds: -8_334_601_228_800,
            nanos: 0,
        });
        client
            .publish_submission(&old)
            .await
            .unwrap()
            .await
            .unwrap();
        client
            .publish_submission(&complaint("sms", &format!("fine-{i}"), "13900001111"))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // A message id of kilobytes (it becomes the inbox key).
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", "k".repeat(3000).as_str());
    js.publish_with_headers(
        client.subjects().submit("sms"),
        h,
        complaint("sms", "long-id", "13900001111")
            .encode_to_vec()
            .into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let intake = start(&env).await;
    let pool = env.admin_pool().await.unwrap();
    eventually("the normal complaints", || async {
        count(&pool, "SELECT count(*) FROM intake.complaints").await == 11
    })
    .await;
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM intake.complaints WHERE external_id LIKE 'fine-%' OR external_id = 'long-id'"
        )
        .await,
        11
    );
    // Each refusal is counted once its notice is out, which may come after the last
    // registration: wait for the counts rather than assume that order.
    eventually("every refusal counted", || async {
        let text = intake.metrics.render();
        text.contains("code=\"malformed\",field=\"text\"} 10")
            && text.contains("code=\"malformed\",field=\"received_at\"} 10")
    })
    .await;
    intake.stop().await.unwrap();
}

/// Garbage as large as the broker takes: its dead letter would be larger still, so it keeps
/// the start of the payload and says so, instead of failing to be written for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_too_large_for_the_broker_keeps_the_start_of_its_payload() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let nats = env.nats_client().await.unwrap();
    let max = nats.server_info().max_payload;
    let js = async_nats::jetstream::new(nats);
    js.publish(
        client.subjects().submit("sms"),
        vec![0xff; max - 512].into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    client
        .publish_submission(&complaint("sms", "after-huge-garbage", "13900001111"))
        .await
        .unwrap()
        .await
        .unwrap();
    let pool = env.admin_pool().await.unwrap();
    eventually("the good submission", || async {
        count(&pool, "SELECT count(*) FROM intake.complaints").await == 1
    })
    .await;
    let letter = the_one_dead_letter(&env).await;
    assert!(
        letter.reason.contains("not a SubmitComplaint"),
        "{}",
        letter.reason
    );
    assert!(
        letter.reason.contains("cut to its first"),
        "{}",
        letter.reason
    );
    assert!(letter.payload.len() < max - 512);
    assert_eq!(intake.metrics.get("intake_dead_letters_total"), 1);
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_message_is_dead_lettered_and_does_not_block_the_stream() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    js.publish(
        client.subjects().submit("sms"),
        vec![0xff, 0xff, 0xff, 0x01].into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    client
        .publish_submission(&complaint("sms", "after-garbage", "13900001111"))
        .await
        .unwrap()
        .await
        .unwrap();
    let pool = env.admin_pool().await.unwrap();
    eventually("the good submission", || async {
        count(&pool, "SELECT count(*) FROM intake.complaints").await == 1
    })
    .await;
    let letter = the_one_dead_letter(&env).await;
    assert!(
        letter.reason.contains("not a SubmitComplaint"),
        "{}",
        letter.reason
    );
    // Sealed, since a submission may hold a contact; the contact key opens it for replay.
    assert!(letter.payload_sealed);
    assert_ne!(letter.payload, vec![0xff, 0xff, 0xff, 0x01]);
    let cipher =
        redress_intake::domain::crypto::ContactCipher::from_hex(redress_testkit::TEST_CONTACT_KEY)
            .unwrap();
    assert_eq!(
        cipher
            .open_bytes(&letter.payload, redress_intake::DEAD_LETTER_AAD)
            .unwrap(),
        vec![0xff, 0xff, 0xff, 0x01]
    );
    assert_eq!(letter.original_subject, client.subjects().submit("sms"));
    assert!(intake.metrics.get("intake_dead_letters_total") == 1);
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_returning_complainant_is_flagged_and_linked() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let first = client
        .submit(&complaint("phone", "call-1", "139 0000 2222"))
        .await
        .unwrap();
    let other = client
        .submit(&complaint("phone", "call-2", "139 0000 3333"))
        .await
        .unwrap();
    assert!(!first.repeat && !other.repeat);
    // Same person, another channel, the number written differently.
    let again = client
        .submit(&complaint("wechat", "wx-1", "+86 13900002222"))
        .await
        .unwrap();
    assert!(again.repeat);
    assert_eq!(again.earlier_tickets, vec![first.ticket.clone()]);
    let status = client.status_by_ticket(&again.ticket).await.unwrap();
    assert!(status.repeat);
    assert_eq!(status.earlier_tickets, vec![first.ticket]);
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_submitters_trace_continues_in_intake() {
    use opentelemetry::trace::TraceContextExt;
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    let span = tracing::info_span!("channel-adapter");
    let trace_id = span.context().span().span_context().trace_id().to_string();
    assert_ne!(
        trace_id, "00000000000000000000000000000000",
        "the test's span needs an id"
    );
    async {
        client
            .publish_submission(&complaint("web", "traced-1", "zhao@example.com"))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    .instrument(span)
    .await;
    let subject = client.subjects().complaint_received();
    eventually("the event", || async {
        !messages_on(&env, Stream::Events, subject.clone())
            .await
            .is_empty()
    })
    .await;
    let event = &messages_on(&env, Stream::Events, subject).await[0];
    let traceparent = event
        .headers
        .as_ref()
        .unwrap()
        .get("traceparent")
        .unwrap()
        .as_str()
        .to_string();
    // version-traceid-spanid-flags: same trace, and a span of intake's, not the adapter's.
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], trace_id, "{traceparent}");
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_role_can_touch_only_its_own_schema() {
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let settings = env.config().settings.database;
    let other = redress_platform::ServiceIdent {
        name: "classification",
        schema: "classification",
    };
    redress_platform::db::provision(&settings, &other)
        .await
        .unwrap();
    let pool = redress_platform::db::connect(&settings, &other)
        .await
        .unwrap();
    let denied = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| match r {
        Err(sqlx::Error::Database(e)) => e.code().as_deref() == Some("42501"),
        _ => false,
    };
    assert!(denied(
        sqlx::query("SELECT 1 FROM intake.complaints")
            .execute(&pool)
            .await
    ));
    assert!(denied(
        sqlx::query("CREATE TABLE public.sneaky (x int)")
            .execute(&pool)
            .await
    ));
    assert!(denied(
        sqlx::query("CREATE SCHEMA sneaky").execute(&pool).await
    ));
    // Its own schema works.
    sqlx::query("CREATE TABLE classification.mine (x int)")
        .execute(&pool)
        .await
        .unwrap();
    intake.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_the_work_and_never_share_a_ticket() {
    let env = TestEnv::start().await.unwrap();
    let a = start(&env).await;
    let b = start(&env).await;
    let client = client(&env).await;
    let mut tickets = std::collections::HashSet::new();
    for i in 0..200 {
        let accepted = client
            .submit(&complaint(
                "web",
                &format!("two-{i}"),
                &format!("1390000{i:04}"),
            ))
            .await
            .unwrap();
        assert!(tickets.insert(accepted.ticket), "a ticket was issued twice");
    }
    // And through the stream, where both pull from one durable consumer.
    for i in 200..400 {
        client
            .publish_submission(&complaint(
                "web",
                &format!("two-{i}"),
                &format!("1390000{i:04}"),
            ))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let pool = env.admin_pool().await.unwrap();
    eventually("400 complaints", || async {
        count(&pool, "SELECT count(*) FROM intake.complaints").await == 400
    })
    .await;
    assert_eq!(
        count(
            &pool,
            "SELECT count(DISTINCT ticket) FROM intake.complaints"
        )
        .await,
        400
    );
    // The counters move just after each commit.
    eventually("both counters", || async {
        a.metrics.get("intake_registered_total") + b.metrics.get("intake_registered_total") == 400
    })
    .await;
    let (by_a, by_b) = (
        a.metrics.get("intake_registered_total"),
        b.metrics.get("intake_registered_total"),
    );
    assert!(
        by_a > 0 && by_b > 0,
        "one instance did all the work: {by_a} / {by_b}"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_burst_is_registered_as_if_one_by_one() {
    let env = TestEnv::start().await.unwrap();
    // Start once so the consumer exists, then queue while intake is down: on restart the
    // whole queue arrives as one batch.
    start(&env).await.stop().await.unwrap();
    let client = client(&env).await;
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    let same = complaint("web", "dup-1", "sun@example.com");
    for copy in 0..5 {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("copy-{copy}").as_str());
        js.publish_with_headers(
            client.subjects().submit("web"),
            h,
            same.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    for i in 0..3 {
        client
            .publish_submission(&complaint(
                "sms",
                &format!("same-person-{i}"),
                "13911112222",
            ))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let intake = start(&env).await;
    let pool = env.admin_pool().await.unwrap();
    eventually("the queue", || async {
        count(&pool, "SELECT count(*) FROM intake.inbox").await == 8
    })
    .await;
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM intake.complaints WHERE external_id = 'dup-1'"
        )
        .await,
        1
    );
    let mut results = Vec::new();
    for i in 0..3 {
        let s = client
            .submit(&complaint(
                "sms",
                &format!("same-person-{i}"),
                "13911112222",
            ))
            .await
            .unwrap();
        assert!(s.duplicate);
        results.push(s);
    }
    // The queue may be taken in more than one batch, handled concurrently, so the order of
    // registration is not promised; what is: one at a time, each linking exactly the ones
    // registered before it.
    results.sort_by_key(|s| s.earlier_tickets.len());
    let mut before: Vec<String> = Vec::new();
    for (n, s) in results.iter().enumerate() {
        let mut linked = s.earlier_tickets.clone();
        linked.sort();
        let mut expected = before.clone();
        expected.sort();
        assert_eq!(linked, expected, "the complaint registered {n}th");
        before.push(s.ticket.clone());
    }
    eventually("4 events", || async {
        messages_on(&env, Stream::Events, client.subjects().complaint_received())
            .await
            .len()
            == 4
    })
    .await;
    intake.stop().await.unwrap();
}

/// The well-known test key starts intake only where a test harness allows it.
#[tokio::test(flavor = "multi_thread")]
async fn the_well_known_test_key_is_refused_outside_tests() {
    assert_eq!(
        redress_testkit::TEST_CONTACT_KEY,
        redress_intake::domain::crypto::WELL_KNOWN_TEST_KEY
    );
    let mut env = TestEnv::start().await.unwrap();
    env.extra_config = serde_json::json!({ "intake": { "allow_test_key": false } });
    let refused = env
        .start_service("intake", clock::system(), redress_intake::run)
        .await;
    let err = refused.err().expect("intake started with the test key");
    assert!(
        format!("{err:#}").contains("well-known test key"),
        "{err:#}"
    );
    env.extra_config = serde_json::json!({
        "intake": {
            "allow_test_key": false,
            "contact_key": "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
        }
    });
    start(&env).await.stop().await.unwrap();
}

/// The complainant follows their complaint with the ticket and the secret they were given;
/// an outsider with the ticket alone, or with another complaint's secret, learns nothing,
/// and a channel adapter's credential reaches this view but not the staff's.
#[tokio::test(flavor = "multi_thread")]
async fn a_complainant_tracks_their_complaint_with_the_secret_of_the_acknowledgement() {
    let env = TestEnv::start().await.unwrap();
    let _intake = start(&env).await;
    let client = client(&env).await;
    let first = client
        .submit(&complaint("web", "track-1", "+86 139 0000 0001"))
        .await
        .unwrap();
    let other = client
        .submit(&complaint("web", "track-2", "+86 139 0000 0002"))
        .await
        .unwrap();
    assert_eq!(first.status_secret.len(), 32);
    assert_ne!(first.status_secret, other.status_secret);
    // A resend answers with the same secret; the acknowledgement carries it too.
    let again = client
        .submit(&complaint("web", "track-1", "+86 139 0000 0001"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.status_secret, first.status_secret);
    eventually("the acknowledgements", || async {
        messages_on(&env, Stream::Notify, env.subjects().notify_ack("web"))
            .await
            .len()
            == 2
    })
    .await;
    let acks: Vec<Acknowledgement> =
        messages_on(&env, Stream::Notify, env.subjects().notify_ack("web"))
            .await
            .iter()
            .map(|m| Acknowledgement::decode(m.payload.clone()).unwrap())
            .collect();
    let ack = acks.iter().find(|a| a.ticket == first.ticket).unwrap();
    assert_eq!(ack.status_secret, first.status_secret);

    // As the web adapter asks.
    let adapter = Client::connect(env.nats_url_for("adapter-web"), &env.root)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let seen = adapter
        .track(&first.ticket, &first.status_secret)
        .await
        .unwrap();
    assert_eq!(
        (seen.ticket.as_str(), seen.status.as_str()),
        (first.ticket.as_str(), "received")
    );
    assert_eq!(seen.history[0].event, "received");
    for wrong in [other.status_secret.as_str(), "00", "not hex at all"] {
        match adapter.track(&first.ticket, wrong).await {
            Err(ClientError::Query(e)) => assert_eq!(
                (e.code(), e.field.as_str()),
                (redress_proto::v1::QueryErrorCode::NotFound, "secret")
            ),
            other => panic!("{other:?}"),
        }
    }
    // An unknown ticket gets the very same answer as a wrong secret.
    let never_issued = redress_intake::domain::ticket::Ticket::issue("RD", "991231", 999_999);
    let unknown = adapter
        .track(never_issued.as_str(), &first.status_secret)
        .await
        .unwrap_err();
    let wrong = adapter
        .track(&first.ticket, &other.status_secret)
        .await
        .unwrap_err();
    assert_eq!(unknown.to_string(), wrong.to_string());
    // The staff view is not the adapter's to ask for.
    assert!(adapter.status_by_ticket(&first.ticket).await.is_err());
}

/// Rotating the contact key: values sealed before stay readable with the retired key, new
/// ones are sealed under the new id, and `rekey` moves every stored value to the new key in
/// batches (a second run changes nothing).
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_contact_key_reseals_every_stored_contact() {
    use redress_intake::domain::crypto::ContactCipher;
    let env = TestEnv::start().await.unwrap();
    let intake = start(&env).await;
    let client = client(&env).await;
    for i in 0..5 {
        client
            .submit(&complaint(
                "web",
                &format!("rekey-{i}"),
                &format!("+86 139 0000 00{i:02}"),
            ))
            .await
            .unwrap();
    }
    intake.stop().await.unwrap();

    let new_key = "a0".repeat(32);
    let retired =
        std::collections::BTreeMap::from([(0u16, redress_testkit::TEST_CONTACT_KEY.to_string())]);
    let rotated = ContactCipher::with_keys(7, &new_key, &retired, 0).unwrap();
    let pool = redress_intake::rekey::pool_for(env.database_url())
        .await
        .unwrap();
    // One data key per complaint, sealed with the master key.
    assert_eq!(
        redress_intake::rekey::key_use(&pool).await.unwrap(),
        [(0, 5)]
    );
    assert_eq!(
        redress_intake::rekey::rekey(&pool, &rotated, 2)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        redress_intake::rekey::key_use(&pool).await.unwrap(),
        [(7, 5)]
    );
    assert_eq!(
        redress_intake::rekey::rekey(&pool, &rotated, 2)
            .await
            .unwrap(),
        0
    );
    // Readable with the new key alone.
    let only_new = ContactCipher::with_keys(7, &new_key, &Default::default(), 7).unwrap();
    let rows: Vec<(uuid::Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT c.id, c.contact, k.wrapped FROM complaints c
         JOIN complaint_keys k ON k.complaint_id = c.id ORDER BY c.external_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (i, (id, contact, wrapped)) in rows.iter().enumerate() {
        let key = only_new.data_key(wrapped, id).unwrap();
        assert_eq!(
            key.open(contact, id.as_bytes()).unwrap(),
            format!("139000000{i:02}")
        );
    }

    // The service with the rotated key seals new contacts under id 7.
    let mut env = env;
    env.extra_config = serde_json::json!({ "intake": {
        "contact_key": new_key, "contact_key_id": 7,
        "retired_contact_keys": { "0": redress_testkit::TEST_CONTACT_KEY },
    }});
    let _intake = start(&env).await;
    client
        .submit(&complaint("web", "rekey-after", "+86 139 0000 0099"))
        .await
        .unwrap();
    assert_eq!(
        redress_intake::rekey::key_use(&pool).await.unwrap(),
        [(7, 6)]
    );
}

/// The complainant's right to deletion: after `erase` their name and contact cannot be
/// opened by anyone (the data key is gone, so a copy of the sealed bytes taken before, as a
/// backup would hold, stays sealed), the text is blank, the raw submission and the messages
/// sent to them are gone from the broker, and the complaint still counts in its status.
/// Only the administrator may ask; asking again changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn erasure_destroys_the_complainants_data_everywhere_and_keeps_the_facts() {
    let env = TestEnv::start().await.unwrap();
    let _intake = start(&env).await;
    let client = client(&env).await;
    let doomed = complaint("web", "erase-1", "+86 139 0000 4444");
    let kept = complaint("web", "erase-2", "+86 139 0000 5555");
    for c in [&doomed, &kept] {
        client.publish_submission(c).await.unwrap().await.unwrap();
    }
    let pool = env.admin_pool().await.unwrap();
    eventually("both registered, both acknowledged", || async {
        count(&pool, "SELECT count(*) FROM intake.complaints").await == 2
            && messages_on(&env, Stream::Notify, env.subjects().notify_ack("web"))
                .await
                .len()
                == 2
    })
    .await;
    let (id, ticket, sealed, wrapped): (uuid::Uuid, String, Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT c.id, c.ticket, c.contact, k.wrapped FROM intake.complaints c
         JOIN intake.complaint_keys k ON k.complaint_id = c.id WHERE c.external_id = 'erase-1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let cipher =
        redress_intake::domain::crypto::ContactCipher::from_hex(redress_testkit::TEST_CONTACT_KEY)
            .unwrap();
    let key = cipher.data_key(&wrapped, &id).unwrap();
    assert_eq!(key.open(&sealed, id.as_bytes()).unwrap(), "13900004444");

    // On the event stream the text is sealed with the complaint's text key, which the
    // services that read it find in the text-key bucket.
    let received = |complaint: uuid::Uuid| {
        let env = &env;
        async move {
            messages_on(env, Stream::Events, env.subjects().complaint_received())
                .await
                .into_iter()
                .map(|m| Envelope::decode(m.payload.clone()).unwrap())
                .find(|e| e.complaint_id == complaint.to_string())
                .map(|e| match e.payload {
                    Some(Payload::ComplaintReceived(r)) => r,
                    other => panic!("{other:?}"),
                })
        }
    };
    eventually("complaint.received", || async {
        received(id).await.is_some()
    })
    .await;
    let on_stream = received(id).await.unwrap();
    assert!(on_stream.text.is_empty());
    let text = "快递丢件，要求赔偿";
    assert!(
        !on_stream
            .sealed_text
            .windows(text.len())
            .any(|w| w == text.as_bytes()),
        "the text is sealed"
    );
    let text_keys = redress_platform::sealed::TextKeys::new(client.nats().clone(), &env.subjects());
    assert_eq!(
        text_keys.open(&on_stream.sealed_text, &id).await.unwrap(),
        Opened::Text(text.into())
    );
    let kept_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM intake.complaints WHERE external_id = 'erase-2'")
            .fetch_one(&pool)
            .await
            .unwrap();
    eventually("the other's complaint.received", || async {
        received(kept_id).await.is_some()
    })
    .await;
    let kept_on_stream = received(kept_id).await.unwrap();
    // A text moved to another complaint does not open with that one's key.
    assert!(matches!(
        text_keys.open(&on_stream.sealed_text, &kept_id).await,
        Err(KeysError::Sealed(_))
    ));

    // Not for a channel adapter or a department.
    for user in ["adapter-web", "dept-logistics"] {
        let outsider = Client::connect(env.nats_url_for(user), &env.root)
            .await
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        assert!(outsider.erase(&ticket).await.is_err(), "{user} erased");
    }

    let erased = client.erase(&ticket).await.unwrap();
    assert!(!erased.already);
    assert_eq!(
        (erased.submissions_deleted, erased.notifications_deleted),
        (1, 1)
    );
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM intake.complaint_keys WHERE complaint_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(keys, 0, "the data key is destroyed");
    let (name, contact, body, cref): (Vec<u8>, Vec<u8>, String, String) = sqlx::query_as(
        "SELECT complainant_name, contact, body, complainant_ref FROM intake.complaints
         WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(name.is_empty() && contact.is_empty() && body.is_empty() && cref.is_empty());
    // The other complaint is untouched, on the broker too.
    let submissions = messages_on(&env, Stream::Submissions, env.subjects().submit("web")).await;
    assert_eq!(submissions.len(), 1);
    assert_eq!(
        SubmitComplaint::decode(submissions[0].payload.clone())
            .unwrap()
            .external_id,
        "erase-2"
    );
    let acks = messages_on(&env, Stream::Notify, env.subjects().notify_ack("web")).await;
    assert_eq!(acks.len(), 1);
    assert_ne!(
        Acknowledgement::decode(acks[0].payload.clone())
            .unwrap()
            .ticket,
        ticket
    );
    // The text key is gone: every sealed copy of the text, on the stream or anywhere it was
    // copied to, stays sealed; the other complaint's text still opens.
    assert_eq!(
        text_keys.open(&on_stream.sealed_text, &id).await.unwrap(),
        Opened::Erased
    );
    assert_eq!(
        text_keys
            .open(&kept_on_stream.sealed_text, &kept_id)
            .await
            .unwrap(),
        Opened::Text(text.into())
    );
    let key_stream = env
        .stream_messages_of(
            &format!("KV_{}", env.subjects().text_keys_bucket()),
            env.subjects().text_key(&id.to_string()),
        )
        .await
        .unwrap();
    assert!(
        key_stream.iter().all(|m| m.payload.is_empty()),
        "only the purge marker is left"
    );
    // The facts stay.
    let status = client.status_by_ticket(&ticket).await.unwrap();
    assert_eq!(status.channel, "web");
    assert!(status.history.iter().any(|h| h.event == "received"));

    let again = client.erase(&ticket).await.unwrap();
    assert!(again.already);
    assert_eq!(
        (again.submissions_deleted, again.notifications_deleted),
        (0, 0)
    );
    assert_eq!(again.erased_at, erased.erased_at);
}
