//! Fault test: two instances of every service (six `redress serve NAME` processes, one per
//! service, plus one `redress serve` running all six), 500 complaints in flight, the six
//! single-service processes killed with -9 and started again. Every complaint must get exactly one classification, one assignment and one set
//! of deadlines, and end where the rules say it ends, as without the fault.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redress_proto::subjects::{Stream, Subjects};
use redress_proto::v1::{Complainant, Contact, ContactKind, SubmitComplaint, envelope::Payload};
use redress_testkit::TestEnv;

/// Every service, as `redress serve` names them.
const ALL: [&str; 7] = redress_proto::access::SERVICES;

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

/// Complaint texts and where the default playbook must send each.
const CASES: [(&str, &str, &str, &str); 4] = [
    ("快递三天了还没送到", "delivery", "general", "logistics"),
    (
        "收到的杯子是破损的，质量太差",
        "product_quality",
        "general",
        "quality",
    ),
    ("发票开错了，多收了钱", "billing", "general", "finance"),
    (
        "热水器漏电，差点触电，要求赔偿",
        "safety",
        "major",
        "customer-service",
    ),
];

/// Distinct complaint ids among the envelopes on `subject`, and how many envelopes in all.
async fn per_complaint(env: &TestEnv, subject: String) -> (usize, usize) {
    let envelopes = env.events(subject).await.unwrap();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for e in &envelopes {
        *ids.entry(e.complaint_id.clone()).or_default() += 1;
    }
    (ids.len(), envelopes.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_one_instance_of_each_service_changes_nothing_twice() {
    const N: usize = 500;
    let env = TestEnv::start().await.unwrap();
    let pool = env.admin_pool().await.unwrap();
    // Instance A: each service on its own. Instance B: all six in one process.
    let mut a: Vec<Child> = ALL.iter().map(|s| serve(&env, &[s])).collect();
    let mut b = serve(&env, &ALL);
    let client = env.client().await.unwrap();
    // Both processes provision and migrate; wait until intake answers.
    let deadline = Instant::now() + Duration::from_secs(90);
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
        assert!(Instant::now() < deadline, "the stack did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let submission = |i: usize| SubmitComplaint {
        channel: "web".into(),
        external_id: format!("flight-{i}"),
        complainant: Some(Complainant {
            name: format!("Customer {i}"),
            contact: Some(Contact {
                kind: ContactKind::Phone as i32,
                value: format!("137{:08}", i),
            }),
        }),
        text: CASES[i % CASES.len()].0.into(),
        ..Default::default()
    };
    let mut acks = Vec::new();
    for i in 0..N {
        acks.push(client.publish_submission(&submission(i)).await.unwrap());
    }
    for ack in acks {
        ack.await.expect("the broker stores every submission");
    }
    // Kill one instance of every service while complaints are between services.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Routing may still be migrating when intake already answers: no table yet counts as none.
        let assigned: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.work_items")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        if assigned >= 50 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing got assigned");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Both instances must be serving, or the test would prove nothing about two of each.
    for (child, name) in a.iter_mut().zip(ALL) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name} of instance A stopped"
        );
    }
    assert!(b.try_wait().unwrap().is_none(), "instance B stopped");
    // Counted before the kills: instance B goes on working while they land.
    let at_kill = (
        count(&pool, "SELECT count(*) FROM intake.complaints").await,
        count(&pool, "SELECT count(*) FROM routing.work_items").await,
        count(&pool, "SELECT count(*) FROM intake.deadlines").await,
    );
    for child in &mut a {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    println!(
        "killed one instance of each with {} complaints stored, {} assigned, {} deadlines known to intake",
        at_kill.0, at_kill.1, at_kill.2
    );
    // Routing may assign a whole burst in one batch, so "assigned" alone can jump from none
    // to all: the kill proves something while any service still has work for the burst
    // (every complaint ends with two deadlines known to intake).
    assert!(
        (at_kill.1 as usize) < N || (at_kill.2 as usize) < 2 * N,
        "the kill came too late to prove anything"
    );
    let mut a: Vec<Child> = ALL.iter().map(|s| serve(&env, &[s])).collect();

    // Every complaint assigned, with both deadlines armed, as intake's status shows it.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let done = count(
            &pool,
            "SELECT count(*) FROM intake.complaints c
             WHERE c.status = 'assigned'
               AND (SELECT count(*) FROM intake.deadlines d WHERE d.complaint_id = c.id) = 2",
        )
        .await;
        if done as usize == N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {N} complaints reached their end state"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let anything still in flight (a redelivery after the kill) land before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (child, name) in a.iter_mut().zip(ALL) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "restarted {name} stopped"
        );
        child.kill().unwrap();
        let _ = child.wait();
    }
    assert!(b.try_wait().unwrap().is_none(), "instance B stopped");
    b.kill().unwrap();
    let _ = b.wait();

    let subjects = Subjects::new(env.root.clone());
    let classified = per_complaint(
        &env,
        subjects.event(redress_proto::EventKind::ComplaintClassified.name()),
    )
    .await;
    let assigned = per_complaint(&env, subjects.event("work.assigned.>")).await;
    let armed = per_complaint(
        &env,
        subjects.event(redress_proto::EventKind::SlaArmed.name()),
    )
    .await;
    let dead = env
        .stream_messages(
            Stream::DeadLetter,
            subjects.stream_subjects(Stream::DeadLetter),
        )
        .await
        .unwrap()
        .len();
    println!(
        "complaints/events: classified {}/{}, assigned {}/{}, armed {}/{}; dead letters {dead}",
        classified.0, classified.1, assigned.0, assigned.1, armed.0, armed.1
    );
    assert_eq!(classified, (N, N), "classifications lost or duplicated");
    assert_eq!(assigned, (N, N), "assignments lost or duplicated");
    assert_eq!(armed, (N, N), "deadline sets lost or duplicated");
    assert_eq!(dead, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM routing.work_items").await as usize,
        N
    );

    // The same end state the rules give without any fault.
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT external_id, category, severity, department, status FROM intake.complaints",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), N);
    for (external_id, category, severity, department, status) in rows {
        let i: usize = external_id.trim_start_matches("flight-").parse().unwrap();
        let (_, want_category, want_severity, want_department) = CASES[i % CASES.len()];
        assert_eq!(
            (
                category.as_str(),
                severity.as_str(),
                department.as_str(),
                status.as_str()
            ),
            (want_category, want_severity, want_department, "assigned"),
            "{external_id}"
        );
    }
    let envelopes = env
        .events(subjects.event(redress_proto::EventKind::SlaArmed.name()))
        .await
        .unwrap();
    for e in envelopes {
        match e.payload {
            Some(Payload::DeadlinesArmed(a)) => {
                let mut names: Vec<_> = a.deadlines.iter().map(|d| d.name.clone()).collect();
                names.sort();
                assert_eq!(names, ["first_response", "resolution"]);
            }
            other => panic!("not DeadlinesArmed: {other:?}"),
        }
    }
}
