//! Fault tests: the database killed with -9 and the broker restarted while submissions flow.
//! Counts what was lost and what was duplicated.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use prost::Message as _;
use redress_client::Client;
use redress_platform::clock;
use redress_proto::subjects::{Stream, Subjects};
use redress_proto::v1::{Complainant, Contact, ContactKind, Envelope, SubmitComplaint};
use redress_testkit::TestEnv;

fn submission(i: usize) -> SubmitComplaint {
    SubmitComplaint {
        channel: "email".into(),
        external_id: format!("fault-{i}"),
        complainant: Some(Complainant {
            name: format!("Customer {i}"),
            contact: Some(Contact {
                kind: ContactKind::Email as i32,
                value: format!("c{}@example.com", i % 97),
            }),
        }),
        text: format!("complaint {i}"),
        ..Default::default()
    }
}

/// Publishes `range`, retrying a publish while the broker is away.
async fn publish(client: &Client, range: std::ops::Range<usize>) {
    for i in range {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = async {
                client
                    .publish_submission(&submission(i))
                    .await?
                    .await
                    .map_err(|e| redress_client::ClientError::Publish(e.to_string()))
            };
            match attempt.await {
                Ok(_) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "publish {i} kept failing: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    // A fresh pool each time: the database is restarted under us.
    let pool = env.admin_pool().await.unwrap();
    let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

async fn wait_stored(env: &TestEnv, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = count(env, "SELECT count(*) FROM intake.complaints").await;
        if stored >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {at_least} stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stream_payloads(env: &TestEnv, stream: Stream, subject: String) -> Vec<bytes::Bytes> {
    let messages = env.stream_messages(stream, subject).await.unwrap();
    messages.into_iter().map(|m| m.payload.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn database_kill_and_broker_restart_lose_nothing_and_duplicate_nothing() {
    const N: usize = 600;
    let mut env = TestEnv::start().await.unwrap();
    let intake = env
        .start_service("intake", clock::system(), redress_intake::run)
        .await
        .unwrap();
    let client = Client::connect(env.nats_url(), &env.root).await.unwrap();

    publish(&client, 0..200).await;
    wait_stored(&env, 50).await;
    env.kill_postgres();
    // Submissions keep arriving while the database is down; the broker holds them.
    publish(&client, 200..300).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.restart_postgres().await.unwrap();
    wait_stored(&env, 300).await;

    // nats-server 2.9 hands writes to the OS a few milliseconds after acking them, so a kill
    // -9 of the broker is only lossless once it is quiet (2.10+ with `sync_interval: always`
    // closes that window; see docker-compose.yml). Let the outbox drain first.
    while count(&env, "SELECT count(*) FROM intake.outbox").await > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.kill_nats();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.restart_nats().await.unwrap();
    publish(&client, 300..N).await;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = count(&env, "SELECT count(*) FROM intake.complaints").await;
        let unpublished = count(&env, "SELECT count(*) FROM intake.outbox").await;
        if stored as usize >= N && unpublished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} of {N} stored, {unpublished} unpublished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let subjects = Subjects::new(env.root.clone());
    let rows = count(&env, "SELECT count(*) FROM intake.complaints").await as usize;
    let distinct = count(
        &env,
        "SELECT count(DISTINCT external_id) FROM intake.complaints",
    )
    .await as usize;
    let events = stream_payloads(&env, Stream::Events, subjects.complaint_received()).await;
    let complaints: HashSet<String> = events
        .iter()
        .map(|p| Envelope::decode(p.clone()).unwrap().complaint_id)
        .collect();
    let acks = stream_payloads(&env, Stream::Notify, subjects.notify_ack("email")).await;
    let dead = stream_payloads(&env, Stream::DeadLetter, subjects.dead_letter("intake")).await;
    println!(
        "{rows} rows, {distinct} distinct, {} events for {} complaints, {} acknowledgements, {} dead letters",
        events.len(),
        complaints.len(),
        acks.len(),
        dead.len()
    );
    assert_eq!((rows, distinct), (N, N), "lost or duplicated complaints");
    assert_eq!(
        (events.len(), complaints.len()),
        (N, N),
        "lost or duplicated events"
    );
    assert_eq!(acks.len(), N, "lost or duplicated acknowledgements");
    assert!(
        dead.is_empty(),
        "an outage must not dead-letter submissions"
    );
    intake.stop().await.unwrap();
}
