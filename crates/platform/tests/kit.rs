//! The service kit against a real nats-server and PostgreSQL: a handler that applies events
//! in batches, and among the events three that can never be applied (one panics the handler,
//! one holds a value the database refuses, one would emit a message larger than the broker
//! takes). Each of the three is dead-lettered alone with its reason; every other event is
//! applied once, its follow-up published; and the consumer goes on.

use std::time::Duration;

use prost::Message as _;
use redress_platform::envelope::{Cause, follow_up, new_event};
use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Unit};
use redress_proto::EventKind;
use redress_proto::subjects::Stream;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ComplaintClosed, ComplaintReopened, DeadLetter};
use redress_testkit::{TestEnv, eventually};
use uuid::Uuid;

const IDENT: ServiceIdent = ServiceIdent {
    name: "kit-test",
    schema: "kit",
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/kit_migrations");

struct Recorder;

impl Handler for Recorder {
    type Input = String;

    fn parse(&self, event: &Event) -> Parsed<String> {
        match &event.payload {
            Payload::ComplaintClosed(c) => Parsed::Handle(c.ticket.clone()),
            _ => Parsed::Skip,
        }
    }

    async fn apply(&self, unit: &mut Unit, event: &Event, marker: &String) -> Result<(), Failure> {
        if marker == "panic" {
            panic!("a handler bug");
        }
        // U+0000 cannot be stored in PostgreSQL text: a permanent error (SQLSTATE 22021).
        let note = if marker == "nul" { "a\u{0}b" } else { "ok" };
        sqlx::query("INSERT INTO seen (event_id, note) VALUES ($1, $2)")
            .bind(&event.envelope.event_id)
            .bind(note)
            .execute(unit.db())
            .await?;
        let reason = if marker == "big" {
            "x".repeat(2 * 1024 * 1024)
        } else {
            marker.clone()
        };
        unit.emit(follow_up(
            IDENT.name,
            &event.envelope,
            chrono::Utc::now(),
            Payload::ComplaintReopened(ComplaintReopened {
                ticket: marker.clone(),
                reason,
                ..Default::default()
            }),
        ));
        Ok(())
    }
}

async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    let mut host = Host::open(ctx, IDENT, &MIGRATOR).await?;
    host.consume(
        Filter::Kinds(vec![EventKind::ComplaintClosed]),
        std::sync::Arc::new(Recorder),
    )
    .await?;
    host.serve().await
}

fn closed(marker: &str) -> redress_proto::v1::Envelope {
    let id = Uuid::now_v7();
    new_event(
        "survey",
        &Cause {
            complaint_id: id,
            ticket: marker.into(),
            causation_id: "test".into(),
            correlation_id: id.to_string(),
            playbook: "default".into(),
        },
        chrono::Utc::now(),
        Payload::ComplaintClosed(ComplaintClosed {
            ticket: marker.into(),
            ..Default::default()
        }),
    )
}

async fn start(env: &TestEnv) -> redress_testkit::RunningService {
    env.start_service(IDENT.name, redress_platform::clock::system(), run)
        .await
        .unwrap()
}

/// The test service's dead letters so far.
async fn dead_letters(env: &TestEnv) -> Vec<DeadLetter> {
    env.stream_messages(Stream::DeadLetter, env.subjects().dead_letter(IDENT.name))
        .await
        .unwrap()
        .into_iter()
        .map(|m| DeadLetter::decode(m.payload.clone()).unwrap())
        .collect()
}

/// How many events the handler applied.
async fn applied(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM kit.seen")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_events_are_dead_lettered_alone_and_the_rest_go_through() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env).await;
    let subject = env.subjects().event_of(EventKind::ComplaintClosed);
    // Published together, so that the bad ones share batches with good ones.
    let mut good = Vec::new();
    for i in 0..60 {
        let marker = match i {
            10 => "panic".to_string(),
            25 => "nul".to_string(),
            40 => "big".to_string(),
            _ => {
                good.push(i);
                format!("good-{i}")
            }
        };
        env.publish_event(subject.clone(), &closed(&marker))
            .await
            .unwrap();
    }
    let pool = env.admin_pool().await.unwrap();
    let letters = || dead_letters(&env);
    eventually("three dead letters", Duration::from_secs(60), || async {
        letters().await.len() >= 3
    })
    .await;
    eventually(
        "every good event applied",
        Duration::from_secs(60),
        || async { applied(&pool).await == good.len() as i64 },
    )
    .await;
    let reasons: Vec<String> = letters().await.into_iter().map(|l| l.reason).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("panicked")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("permanent database error")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("more than the broker's")),
        "{reasons:?}"
    );
    // The good events' follow-ups are all published, once, and nothing else.
    eventually("the follow-ups", Duration::from_secs(30), || async {
        env.events(env.subjects().event_of(EventKind::ComplaintReopened))
            .await
            .unwrap()
            .len()
            == good.len()
    })
    .await;
    // And the consumer goes on.
    env.publish_event(subject, &closed("after")).await.unwrap();
    eventually("the next event", Duration::from_secs(30), || async {
        applied(&pool).await == good.len() as i64 + 1
    })
    .await;
    assert_eq!(service.metrics.get("kit-test_dead_letters_total"), 3);
    service.stop().await.unwrap();
}

/// A message no stream takes (as after a stream was deleted, or a subject typo) is tried a few
/// times, then set aside, counted and kept; the messages queued behind it are published.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_the_broker_refuses_is_set_aside_and_blocks_nothing() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env).await;
    let pool = env.admin_pool().await.unwrap();
    let refused = format!(
        "{}.nowhere",
        env.subjects().event_of(EventKind::ComplaintReopened)
    );
    let refused = refused.replacen(".evt.", ".void.", 1);
    let good = env.subjects().event_of(EventKind::ComplaintReopened);
    let body = closed("queued").encode_to_vec();
    sqlx::query(
        "INSERT INTO kit.outbox (msg_id, subject, payload)
         VALUES ('refused-1', $1, $3), ('good-1', $2, $3), ('good-2', $2, $3)",
    )
    .bind(&refused)
    .bind(&good)
    .bind(&body)
    .execute(&pool)
    .await
    .unwrap();
    // No NOTIFY: the relay's fallback poll finds the rows.
    eventually("the rows behind it", Duration::from_secs(30), || async {
        env.events(good.clone()).await.unwrap().len() == 2
    })
    .await;
    eventually(
        "the refused row set aside",
        Duration::from_secs(60),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM kit.outbox WHERE stuck_at IS NOT NULL",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        },
    )
    .await;
    let (attempts, reason): (i32, String) =
        sqlx::query_as("SELECT attempts, stuck_reason FROM kit.outbox WHERE msg_id = 'refused-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, redress_platform::outbox::STUCK_AFTER);
    assert!(reason.contains("no stream"), "{reason}");
    eventually("the stuck counter", Duration::from_secs(10), || async {
        service.metrics.get("kit_outbox_stuck_total") == 1
    })
    .await;
    // Later rows still go out.
    sqlx::query("INSERT INTO kit.outbox (msg_id, subject, payload) VALUES ('good-3', $1, $2)")
        .bind(&good)
        .bind(&body)
        .execute(&pool)
        .await
        .unwrap();
    eventually("a later row", Duration::from_secs(30), || async {
        env.events(good.clone()).await.unwrap().len() == 3
    })
    .await;
    service.stop().await.unwrap();
}

/// An event that names a producer other than the one service that publishes its kind, or that
/// travels on another kind's subject, is dead-lettered as a contract violation and never applied.
#[tokio::test(flavor = "multi_thread")]
async fn forged_events_are_refused() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env).await;
    let subject = env.subjects().event_of(EventKind::ComplaintClosed);
    let mut forged = closed("forged-producer");
    forged.producer = "mallory".into();
    env.publish_event(subject.clone(), &forged).await.unwrap();
    // A reopening dressed as a closing: right producer, wrong subject.
    let mut misplaced = closed("misplaced");
    misplaced.payload = Some(Payload::ComplaintReopened(ComplaintReopened {
        ticket: "misplaced".into(),
        ..Default::default()
    }));
    env.publish_event(subject.clone(), &misplaced)
        .await
        .unwrap();
    env.publish_event(subject, &closed("genuine"))
        .await
        .unwrap();
    let pool = env.admin_pool().await.unwrap();
    eventually("two dead letters", Duration::from_secs(30), || async {
        dead_letters(&env).await.len() == 2
    })
    .await;
    eventually("the genuine event", Duration::from_secs(30), || async {
        applied(&pool).await == 1
    })
    .await;
    let reasons: Vec<String> = dead_letters(&env)
        .await
        .into_iter()
        .map(|l| l.reason)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("names producer \"mallory\"; only survey publishes it")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("it belongs on")),
        "{reasons:?}"
    );
    assert_eq!(service.metrics.get("kit-test_contract_violations_total"), 2);
    service.stop().await.unwrap();
}

/// A service's sessions carry the configured statement, lock and idle-in-transaction timeouts,
/// and plan the way its statements need (generic plans on indexes, never JIT-compiled).
#[tokio::test(flavor = "multi_thread")]
async fn service_sessions_have_timeouts() {
    use sqlx::Connection as _;
    let env = TestEnv::start().await.unwrap();
    let service = start(&env).await;
    let settings = env.config().settings.database;
    let options = redress_platform::db::service_options(&settings, &IDENT).unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    for (name, value) in [
        ("statement_timeout", "30s"),
        ("lock_timeout", "10s"),
        ("idle_in_transaction_session_timeout", "1min"),
        ("plan_cache_mode", "force_generic_plan"),
        ("enable_seqscan", "off"),
        ("jit", "off"),
    ] {
        let shown: String = sqlx::query_scalar(&format!("SHOW {name}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(shown, value, "{name}");
    }
    // And a statement that outlives its limit is cancelled.
    sqlx::query("SET statement_timeout = 100")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    service.stop().await.unwrap();
}

/// A relay batch's key-value entries are stored before its events are sent, in whatever order
/// the rows were queued: a reader that receives an event finds the key it needs (a complaint's text
/// key) already there. The broker's own storage times show the order.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_s_keys_are_stored_before_its_events_are_sent() {
    let env = TestEnv::start().await.unwrap();
    let subjects = env.subjects();
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    js.get_or_create_stream(redress_client::sealed::bucket_stream(
        &subjects.text_keys_bucket(),
    ))
    .await
    .unwrap();
    let keys = js.get_key_value(subjects.text_keys_bucket()).await.unwrap();
    let service = start(&env).await;
    let pool = env.admin_pool().await.unwrap();

    // Each event is queued before its key: the order least favourable to the reader. The
    // 200 rows are one relay batch (`outbox.batch_size`, 256): the order is kept within a
    // batch, and batches go out one after another, each acknowledged before the next.
    let good = subjects.event_of(EventKind::ComplaintReopened);
    let ids: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
    let body = closed("queued").encode_to_vec();
    let (mut msg_ids, mut to, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
    for id in &ids {
        msg_ids.push(format!("ev-{id}"));
        to.push(good.clone());
        payloads.push(body.clone());
        msg_ids.push(format!("key-{id}"));
        to.push(subjects.text_key(&id.to_string()));
        payloads.push(vec![7u8; 32]);
    }
    sqlx::query(
        "INSERT INTO kit.outbox (msg_id, subject, payload)
         SELECT m.id, m.subject, m.payload
         FROM unnest($1::text[], $2::text[], $3::bytea[])
              WITH ORDINALITY AS m(id, subject, payload, n)
         ORDER BY m.n",
    )
    .bind(&msg_ids)
    .bind(&to)
    .bind(&payloads)
    .execute(&pool)
    .await
    .unwrap();
    eventually("every event stored", Duration::from_secs(30), || async {
        env.events(good.clone()).await.unwrap().len() == ids.len()
    })
    .await;

    let events = env.stream_messages(Stream::Events, good).await.unwrap();
    for event in &events {
        let msg_id = event
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_string())
            .unwrap();
        let id = msg_id.strip_prefix("ev-").unwrap();
        let key = keys.entry(id).await.unwrap().expect("every key stored");
        let stored = event.info().unwrap().published;
        assert!(
            key.created < stored,
            "{msg_id} was stored at {stored}, before its key ({})",
            key.created
        );
    }
    service.stop().await.unwrap();
}
