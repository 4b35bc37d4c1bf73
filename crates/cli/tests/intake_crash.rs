//! Fault test: intake killed with -9 in the middle of a burst of 1,000 submissions, then
//! started again. Counts what was lost and what was duplicated, in the database and on the
//! streams.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message as _;
use redress_proto::subjects::{Stream, Subjects};
use redress_proto::v1::{Complainant, Contact, ContactKind, Envelope, SubmitComplaint};
use redress_testkit::TestEnv;

fn serve(env: &TestEnv, services: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("serve")
        .args(services)
        .envs(env.env_vars())
        .env("RUST_LOG", "warn")
        .current_dir(env.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start redress serve")
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn stream_payloads(env: &TestEnv, stream: Stream, subject: String) -> Vec<bytes::Bytes> {
    let messages = env.stream_messages(stream, subject).await.unwrap();
    messages.into_iter().map(|m| m.payload.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_burst_loses_nothing_and_duplicates_nothing() {
    const N: usize = 1000;
    let env = TestEnv::start().await.unwrap();
    let mut intake = serve(&env, &["intake"]);
    let client = env.client().await.unwrap();
    // Wait for intake to answer before the burst.
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .status_by_ticket("RD-200101-000010")
        .await
        .is_err_and(|e| {
            matches!(
                e,
                redress_client::ClientError::NoResponders(_)
                    | redress_client::ClientError::Timeout(..)
            )
        })
    {
        assert!(Instant::now() < deadline, "intake did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let pool = env.admin_pool().await.unwrap();
    let submission = |i: usize| SubmitComplaint {
        channel: "web".into(),
        external_id: format!("burst-{i}"),
        complainant: Some(Complainant {
            name: format!("Customer {i}"),
            contact: Some(Contact {
                kind: ContactKind::Phone as i32,
                value: format!("138{:08}", i % 300),
            }),
        }),
        text: format!("complaint number {i}"),
        ..Default::default()
    };
    // First half of the burst; kill -9 while intake is busy with it.
    let mut acks = Vec::new();
    for i in 0..N / 2 {
        acks.push(client.publish_submission(&submission(i)).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    while stored < 150 {
        assert!(Instant::now() < deadline, "intake stored only {stored}");
        tokio::time::sleep(Duration::from_millis(2)).await;
        stored = count(&pool, "SELECT count(*) FROM intake.complaints").await;
    }
    intake.kill().unwrap();
    intake.wait().unwrap();
    let killed_at = count(&pool, "SELECT count(*) FROM intake.complaints").await;
    let unpublished_at_kill = count(&pool, "SELECT count(*) FROM intake.outbox").await;
    println!("killed with {killed_at} stored, {unpublished_at_kill} outbox rows unpublished");
    assert!(
        (killed_at as usize) < N / 2,
        "kill came too late to prove anything"
    );
    // Second half arrives while intake is down.
    for i in N / 2..N {
        acks.push(client.publish_submission(&submission(i)).await.unwrap());
    }
    for a in acks {
        a.await.expect("the broker stores every submission");
    }
    let mut intake = serve(&env, &["intake"]);

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = count(&pool, "SELECT count(*) FROM intake.complaints").await;
        let unpublished = count(&pool, "SELECT count(*) FROM intake.outbox").await;
        if stored as usize >= N && unpublished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {stored} of {N} stored, {unpublished} unpublished"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    intake.kill().unwrap();
    let _ = intake.wait();

    let subjects = Subjects::new(env.root.clone());
    let stored = count(
        &pool,
        "SELECT count(DISTINCT external_id) FROM intake.complaints",
    )
    .await;
    let rows = count(&pool, "SELECT count(*) FROM intake.complaints").await;
    let tickets = count(
        &pool,
        "SELECT count(DISTINCT ticket) FROM intake.complaints",
    )
    .await;
    let events = stream_payloads(&env, Stream::Events, subjects.complaint_received()).await;
    let event_ids: HashSet<String> = events
        .iter()
        .map(|p| Envelope::decode(p.clone()).unwrap().complaint_id)
        .collect();
    let notices = stream_payloads(&env, Stream::Notify, subjects.notify_ack("web")).await;
    println!(
        "killed after {killed_at} stored; finally {rows} rows, {stored} distinct, {tickets} tickets, \
         {} events for {} complaints, {} acknowledgements",
        events.len(),
        event_ids.len(),
        notices.len()
    );
    assert_eq!(stored as usize, N, "lost submissions");
    assert_eq!(rows as usize, N, "duplicated complaints");
    assert_eq!(tickets as usize, N, "shared tickets");
    assert_eq!(event_ids.len(), N, "complaints without their event");
    assert_eq!(events.len(), N, "duplicated events");
    assert_eq!(notices.len(), N, "acknowledgements lost or duplicated");
}
