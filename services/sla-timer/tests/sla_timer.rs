//! Sla-timer against a real nats-server with JetStream and a real PostgreSQL, with a manual
//! clock: deadlines are armed, met and breached as work items move and time passes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redress_platform::envelope::{Cause, new_event};
use redress_platform::{ManualClock, SharedClock};

use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    Deadline, DeadlineState, Envelope, Severity, Urgency, WorkChange, WorkChanged, WorkItem,
    WorkState,
};
use redress_testkit::{RunningService, TestEnv, eventually};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);
/// Many timer ticks (50 ms each): long enough for a wrong breach to show up.
const QUIET: Duration = Duration::from_millis(700);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ts(t: DateTime<Utc>) -> Option<redress_proto::time::Timestamp> {
    Some(redress_proto::time::from_unix_micros(t.timestamp_micros()))
}

fn from_ts(t: &Option<redress_proto::time::Timestamp>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(redress_proto::time::to_unix_micros(t.as_ref().unwrap()))
        .unwrap()
}

/// Monday, a working day, mid-morning in Shanghai.
fn monday_10() -> DateTime<Utc> {
    at("2026-11-23T10:00:00+08:00")
}

/// A test's own broker namespace and database, with a timer that ticks every 50 ms.
async fn env() -> TestEnv {
    let mut env = TestEnv::start().await.unwrap();
    // No grace: these tests pin the exact instant a deadline breaches.
    env.extra_config = serde_json::json!({"sla": {"tick_ms": 50, "grace_secs": 0}});
    env
}

async fn start(env: &TestEnv, clock: &Arc<ManualClock>) -> RunningService {
    env.start_service(
        "sla-timer",
        clock.clone() as SharedClock,
        redress_sla_timer::run,
    )
    .await
    .expect("sla-timer starts")
}

/// One work item of a test, as routing would describe it.
struct Work {
    complaint_id: Uuid,
    work_id: String,
    ticket: String,
    version: AtomicU64,
}

impl Work {
    fn new() -> Self {
        let id = Uuid::now_v7();
        Self {
            complaint_id: id,
            work_id: Uuid::now_v7().to_string(),
            ticket: format!("RD-20261123-{}", &id.simple().to_string()[24..]),
            version: AtomicU64::new(0),
        }
    }

    /// The work item in `state` of `round`, assigned at `assigned_at`.
    fn item(&self, state: WorkState, round: u32, assigned_at: Option<DateTime<Utc>>) -> WorkItem {
        WorkItem {
            work_id: self.work_id.clone(),
            ticket: self.ticket.clone(),
            department: "logistics".into(),
            state: state as i32,
            round,
            version: self.version.fetch_add(1, Ordering::Relaxed) + 1,
            category: "delivery".into(),
            severity: Severity::General as i32,
            urgency: Urgency::Normal as i32,
            channel: "sms".into(),
            external_id: "msg-1".into(),
            text: "快递三天没到".into(),
            assigned_at: assigned_at.and_then(ts),
            routing_rule: "route.delivery".into(),
            nature: "valid".into(),
            ..Default::default()
        }
    }

    fn event(&self, item: WorkItem, occurred_at: DateTime<Utc>) -> Envelope {
        let item_state = item.state();
        new_event(
            "routing",
            &Cause {
                complaint_id: self.complaint_id,
                ticket: self.ticket.clone(),
                causation_id: "test".into(),
                correlation_id: self.complaint_id.to_string(),
                playbook: "default".into(),
            },
            occurred_at,
            Payload::WorkChanged(WorkChanged {
                work: Some(item),
                actor: "routing".into(),
                note: String::new(),
                change: WorkChange::reaching(item_state) as i32,
                ..Default::default()
            }),
        )
    }
}

/// Publishes the work item's change as routing would; returns the event id.
async fn publish(env: &TestEnv, work: &Work, item: WorkItem, occurred_at: DateTime<Utc>) -> String {
    let subject = env
        .subjects()
        .work_event(WorkChange::reaching(item.state()), &item.department);
    let envelope = work.event(item, occurred_at);
    env.publish_event(subject, &envelope).await.unwrap();
    envelope.event_id
}

async fn envelopes(env: &TestEnv, name: &str) -> Vec<Envelope> {
    env.events(env.subjects().event(name)).await.unwrap()
}

fn armed(e: &Envelope) -> Vec<Deadline> {
    match &e.payload {
        Some(Payload::DeadlinesArmed(a)) => a.deadlines.clone(),
        other => panic!("not DeadlinesArmed: {other:?}"),
    }
}

fn settled(e: &Envelope) -> Deadline {
    match &e.payload {
        Some(Payload::DeadlineMet(s) | Payload::DeadlineBreached(s)) => s.deadline.clone().unwrap(),
        other => panic!("not DeadlineSettled: {other:?}"),
    }
}

async fn wait_for(env: &TestEnv, name: &str, n: usize) -> Vec<Envelope> {
    eventually(&format!("{n} {name} event(s)"), WAIT, || async {
        envelopes(env, name).await.len() >= n
    })
    .await;
    envelopes(env, name).await
}

/// Waits until sla-timer has handled every event of `ids`.
async fn handled(pool: &sqlx::PgPool, ids: &[String]) {
    let ids = ids.to_vec();
    eventually("the events to be handled", WAIT, || {
        let ids = ids.clone();
        async move {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sla.inbox WHERE message_id = ANY($1)")
                    .bind(&ids)
                    .fetch_one(pool)
                    .await
                    .unwrap();
            n as usize == ids.len()
        }
    })
    .await;
}

async fn rows(pool: &sqlx::PgPool, work: &Work) -> Vec<(i32, String, String, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT round, name, state, due_at FROM sla.deadlines WHERE work_id = $1
         ORDER BY round, name",
    )
    .bind(work.work_id.parse::<Uuid>().unwrap())
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn assigned_work_is_armed_and_breaches_only_what_falls_due() {
    let env = env().await;
    let clock = ManualClock::new(monday_10());
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();

    let cause = publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 1, Some(monday_10())),
        monday_10(),
    )
    .await;
    let armed_events = wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    assert_eq!(armed_events.len(), 1);
    let e = &armed_events[0];
    assert_eq!(e.producer, "sla-timer");
    assert_eq!(e.causation_id, cause);
    assert_eq!(e.complaint_id, work.complaint_id.to_string());
    assert_eq!(e.playbook, "default");
    let deadlines = armed(e);
    let summary: Vec<_> = deadlines
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.limit.as_str(),
                from_ts(&d.due_at),
                d.state(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "first_response",
                "2 business hours",
                at("2026-11-23T12:00:00+08:00"),
                DeadlineState::Armed
            ),
            // Close of business on the third working day after Monday.
            (
                "resolution",
                "3 working days",
                at("2026-11-26T18:00:00+08:00"),
                DeadlineState::Armed
            ),
        ]
    );
    for d in &deadlines {
        assert_eq!(d.round, 1);
        assert_eq!(d.work_id, work.work_id);
        assert_eq!(d.ticket, work.ticket);
        assert_eq!(d.department, "logistics");
        assert_eq!(d.calendar, "cn-mainland");
        assert!(d.settled_at.is_none());
    }
    assert_eq!(
        rows(&pool, &work).await,
        [
            (
                1,
                "first_response".into(),
                "armed".into(),
                at("2026-11-23T12:00:00+08:00")
            ),
            (
                1,
                "resolution".into(),
                "armed".into(),
                at("2026-11-26T18:00:00+08:00")
            ),
        ]
    );

    // Up to the due instant nothing is late.
    clock.set(at("2026-11-23T12:00:00+08:00"));
    tokio::time::sleep(QUIET).await;
    assert!(
        envelopes(&env, redress_proto::EventKind::SlaBreached.name())
            .await
            .is_empty()
    );

    clock.set(at("2026-11-23T12:00:01+08:00"));
    let breached = wait_for(&env, redress_proto::EventKind::SlaBreached.name(), 1).await;
    tokio::time::sleep(QUIET).await;
    let breached_now = envelopes(&env, redress_proto::EventKind::SlaBreached.name()).await;
    assert_eq!(breached_now.len(), 1, "one breach, once");
    let d = settled(&breached[0]);
    assert_eq!(d.name, "first_response");
    assert_eq!(d.state(), DeadlineState::Breached);
    assert_eq!(from_ts(&d.settled_at), at("2026-11-23T12:00:01+08:00"));
    let deadline_id: Uuid = sqlx::query_scalar(
        "SELECT id FROM sla.deadlines WHERE work_id = $1 AND name = 'first_response'",
    )
    .bind(work.work_id.parse::<Uuid>().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    let b = &breached[0];
    assert_eq!(b.causation_id, deadline_id.to_string());
    assert_eq!(b.complaint_id, work.complaint_id.to_string());
    assert_eq!(b.correlation_id, work.complaint_id.to_string());
    assert_eq!(b.playbook, "default");
    assert!(matches!(b.payload, Some(Payload::DeadlineBreached(_))));
    let states: Vec<_> = rows(&pool, &work)
        .await
        .into_iter()
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(
        states,
        [
            ("first_response".into(), "breached".into()),
            ("resolution".into(), "armed".into())
        ]
    );
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_in_time_is_met_and_never_breaches() {
    let env = env().await;
    let clock = ManualClock::new(monday_10());
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();

    publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 1, Some(monday_10())),
        monday_10(),
    )
    .await;
    wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    let accepted_at = at("2026-11-23T10:45:00+08:00");
    clock.set(accepted_at);
    let cause = publish(
        &env,
        &work,
        work.item(WorkState::Accepted, 1, Some(monday_10())),
        accepted_at,
    )
    .await;
    let met = wait_for(&env, redress_proto::EventKind::SlaMet.name(), 1).await;
    assert_eq!(met.len(), 1);
    assert_eq!(met[0].causation_id, cause);
    let d = settled(&met[0]);
    assert_eq!(d.name, "first_response");
    assert_eq!(d.state(), DeadlineState::Met);
    assert_eq!(from_ts(&d.settled_at), accepted_at);

    // Past both due times: the met deadline stays met, the open one breaches.
    clock.set(at("2026-11-27T09:00:00+08:00"));
    let breached = wait_for(&env, redress_proto::EventKind::SlaBreached.name(), 1).await;
    tokio::time::sleep(QUIET).await;
    let breached_now = envelopes(&env, redress_proto::EventKind::SlaBreached.name()).await;
    assert_eq!(breached_now.len(), 1);
    assert_eq!(settled(&breached[0]).name, "resolution");
    let states: Vec<_> = rows(&pool, &work)
        .await
        .into_iter()
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(
        states,
        [
            ("first_response".into(), "met".into()),
            ("resolution".into(), "breached".into())
        ]
    );

    // A breached deadline stays breached when the work gets there after all.
    let resolved = publish(
        &env,
        &work,
        work.item(WorkState::Resolved, 1, Some(monday_10())),
        at("2026-11-27T10:00:00+08:00"),
    )
    .await;
    handled(&pool, &[resolved]).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        envelopes(&env, redress_proto::EventKind::SlaMet.name())
            .await
            .len(),
        1
    );
    assert_eq!(
        envelopes(&env, redress_proto::EventKind::SlaBreached.name())
            .await
            .len(),
        1
    );
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn acceptance_after_the_due_time_is_a_breach_not_a_meeting() {
    let env = env().await;
    // The timer has not noticed yet (its clock still says 10:00); the late acceptance does.
    let clock = ManualClock::new(monday_10());
    let sla = start(&env, &clock).await;
    let work = Work::new();
    publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 1, Some(monday_10())),
        monday_10(),
    )
    .await;
    wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    publish(
        &env,
        &work,
        work.item(WorkState::Accepted, 1, Some(monday_10())),
        at("2026-11-23T14:00:00+08:00"),
    )
    .await;
    let breached = wait_for(&env, redress_proto::EventKind::SlaBreached.name(), 1).await;
    let d = settled(&breached[0]);
    assert_eq!(d.name, "first_response");
    assert_eq!(from_ts(&d.settled_at), at("2026-11-23T12:00:00+08:00"));
    assert!(
        envelopes(&env, redress_proto::EventKind::SlaMet.name())
            .await
            .is_empty()
    );
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn acceptance_seen_before_assignment_arms_the_deadline_already_met() {
    let env = env().await;
    let clock = ManualClock::new(at("2026-11-23T11:00:00+08:00"));
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();
    let accepted_at = at("2026-11-23T10:30:00+08:00");

    let accepted = publish(
        &env,
        &work,
        work.item(WorkState::Accepted, 1, Some(monday_10())),
        accepted_at,
    )
    .await;
    let assigned = work.item(WorkState::Assigned, 1, Some(monday_10()));
    let assigned = publish(&env, &work, assigned, monday_10()).await;
    handled(&pool, &[accepted, assigned]).await;

    // The two events are consumed concurrently, so which is handled first is not promised:
    // the armed event may list the first response as armed (assignment first, met follows)
    // or as met already. What is promised is the outcome: armed once, met once, at the
    // instant of acceptance, and the stored deadlines.
    wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    let met = wait_for(&env, redress_proto::EventKind::SlaMet.name(), 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        envelopes(&env, redress_proto::EventKind::SlaArmed.name())
            .await
            .len(),
        1
    );
    assert_eq!(
        envelopes(&env, redress_proto::EventKind::SlaMet.name())
            .await
            .len(),
        1
    );
    let settled_deadline = settled(&met[0]);
    assert_eq!(settled_deadline.name, "first_response");
    assert_eq!(from_ts(&settled_deadline.settled_at), accepted_at);
    let states: Vec<_> = rows(&pool, &work)
        .await
        .into_iter()
        .map(|(round, name, state, _)| (round, name, state))
        .collect();
    assert_eq!(
        states,
        [
            (1, "first_response".to_string(), "met".to_string()),
            (1, "resolution".to_string(), "armed".to_string())
        ]
    );
    clock.set(at("2026-11-23T13:00:00+08:00"));
    tokio::time::sleep(QUIET).await;
    assert!(
        envelopes(&env, redress_proto::EventKind::SlaBreached.name())
            .await
            .is_empty()
    );
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_without_a_clock_start_waits_for_the_assignment() {
    let env = env().await;
    let clock = ManualClock::new(at("2026-11-23T11:00:00+08:00"));
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();
    let replied_at = at("2026-11-23T10:40:00+08:00");

    // A reply (beyond acceptance) that does not say when the work was assigned.
    let replied = publish(
        &env,
        &work,
        work.item(WorkState::Replied, 1, None),
        replied_at,
    )
    .await;
    handled(&pool, std::slice::from_ref(&replied)).await;
    assert!(rows(&pool, &work).await.is_empty());
    assert!(
        envelopes(&env, redress_proto::EventKind::SlaArmed.name())
            .await
            .is_empty()
    );

    publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 1, None),
        monday_10(),
    )
    .await;
    let armed_events = wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    let deadlines = armed(&armed_events[0]);
    assert_eq!(deadlines[0].name, "first_response");
    assert_eq!(deadlines[0].state(), DeadlineState::Met);
    assert_eq!(from_ts(&deadlines[0].settled_at), replied_at);
    // The clock started when the assignment happened, as its event says.
    assert_eq!(
        from_ts(&deadlines[0].due_at),
        at("2026-11-23T12:00:00+08:00")
    );
    assert_eq!(deadlines[1].state(), DeadlineState::Armed);
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_assignment_twice_arms_once() {
    let env = env().await;
    let clock = ManualClock::new(monday_10());
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();

    let item = work.item(WorkState::Assigned, 1, Some(monday_10()));
    // The same event sent twice, and the same change told again in a new event.
    let first = work.event(item.clone(), monday_10());
    let subject = env.subjects().work_event(WorkChange::Assigned, "logistics");
    env.publish_event(subject.clone(), &first).await.unwrap();
    env.publish_event(subject.clone(), &first).await.unwrap();
    let again = work.event(item, monday_10());
    env.publish_event(subject, &again).await.unwrap();
    handled(&pool, &[first.event_id, again.event_id]).await;
    tokio::time::sleep(QUIET).await;

    assert_eq!(
        envelopes(&env, redress_proto::EventKind::SlaArmed.name())
            .await
            .len(),
        1
    );
    assert_eq!(rows(&pool, &work).await.len(), 2);
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_armed_before_a_restart_still_breaches() {
    let env = env().await;
    let clock = ManualClock::new(monday_10());
    let sla = start(&env, &clock).await;
    let work = Work::new();
    publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 1, Some(monday_10())),
        monday_10(),
    )
    .await;
    wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    sla.stop().await.unwrap();

    let later = at("2026-11-23T12:30:00+08:00");
    let clock = ManualClock::new(later);
    let sla = start(&env, &clock).await;
    let breached = wait_for(&env, redress_proto::EventKind::SlaBreached.name(), 1).await;
    let d = settled(&breached[0]);
    assert_eq!(d.name, "first_response");
    assert_eq!(from_ts(&d.settled_at), later);
    assert_eq!(from_ts(&breached[0].occurred_at), later);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        envelopes(&env, redress_proto::EventKind::SlaBreached.name())
            .await
            .len(),
        1
    );
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_breach_each_deadline_once() {
    let env = env().await;
    let clock = ManualClock::new(monday_10());
    let one = start(&env, &clock).await;
    let two = start(&env, &clock).await;
    let works: Vec<Work> = (0..5).map(|_| Work::new()).collect();
    for w in &works {
        publish(
            &env,
            w,
            w.item(WorkState::Assigned, 1, Some(monday_10())),
            monday_10(),
        )
        .await;
    }
    wait_for(&env, redress_proto::EventKind::SlaArmed.name(), works.len()).await;
    clock.set(at("2026-11-30T09:00:00+08:00"));
    wait_for(
        &env,
        redress_proto::EventKind::SlaBreached.name(),
        2 * works.len(),
    )
    .await;
    tokio::time::sleep(QUIET).await;
    let breached = envelopes(&env, redress_proto::EventKind::SlaBreached.name()).await;
    assert_eq!(breached.len(), 2 * works.len());
    let mut keys: Vec<_> = breached
        .iter()
        .map(settled)
        .map(|d| (d.work_id, d.name))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 2 * works.len());
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reopened_round_gets_its_own_deadlines() {
    let env = env().await;
    let clock = ManualClock::new(monday_10());
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();

    publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 1, Some(monday_10())),
        monday_10(),
    )
    .await;
    wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 1).await;
    // Resolved within the morning: both deadlines of round 1 are met.
    publish(
        &env,
        &work,
        work.item(WorkState::Resolved, 1, Some(monday_10())),
        at("2026-11-23T11:00:00+08:00"),
    )
    .await;
    wait_for(&env, redress_proto::EventKind::SlaMet.name(), 2).await;

    // Reopened on Tuesday morning.
    let tuesday = at("2026-11-24T10:00:00+08:00");
    clock.set(tuesday);
    publish(
        &env,
        &work,
        work.item(WorkState::Assigned, 2, Some(tuesday)),
        tuesday,
    )
    .await;
    let armed_events = wait_for(&env, redress_proto::EventKind::SlaArmed.name(), 2).await;
    let round2 = armed(&armed_events[1]);
    let due: Vec<_> = round2
        .iter()
        .map(|d| (d.round, d.name.as_str(), from_ts(&d.due_at), d.state()))
        .collect();
    assert_eq!(
        due,
        [
            (
                2,
                "first_response",
                at("2026-11-24T12:00:00+08:00"),
                DeadlineState::Armed
            ),
            (
                2,
                "resolution",
                at("2026-11-27T18:00:00+08:00"),
                DeadlineState::Armed
            ),
        ]
    );
    let all: Vec<_> = rows(&pool, &work)
        .await
        .into_iter()
        .map(|r| (r.0, r.1, r.2))
        .collect();
    assert_eq!(
        all,
        [
            (1, "first_response".into(), "met".into()),
            (1, "resolution".into(), "met".into()),
            (2, "first_response".into(), "armed".into()),
            (2, "resolution".into(), "armed".into()),
        ]
    );

    clock.set(at("2026-11-24T12:30:00+08:00"));
    let breached = wait_for(&env, redress_proto::EventKind::SlaBreached.name(), 1).await;
    let d = settled(&breached[0]);
    assert_eq!((d.round, d.name.as_str()), (2, "first_response"));
    sla.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_event_carrying_an_in_time_acceptance_meets_the_deadline() {
    let env = env().await;
    // The clock is already past the first-response deadline (12:00) when events arrive.
    let clock = ManualClock::new(at("2026-11-23T13:00:00+08:00"));
    let sla = start(&env, &clock).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new();
    // Accepted at 11:00, proposed at 12:30; only the proposal's event arrives first.
    let mut proposed = work.item(WorkState::Proposed, 1, Some(monday_10()));
    proposed.accepted_at = ts(at("2026-11-23T11:00:00+08:00"));
    let id = publish(&env, &work, proposed, at("2026-11-23T12:30:00+08:00")).await;
    handled(&pool, &[id]).await;
    let met = wait_for(&env, "sla.met", 1).await;
    let d = settled(&met[0]);
    assert_eq!(d.name, "first_response");
    assert_eq!(from_ts(&d.settled_at), at("2026-11-23T11:00:00+08:00"));
    // Give the timer a few ticks: nothing breaches.
    clock.advance(chrono::Duration::minutes(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(envelopes(&env, "sla.breached").await.is_empty());
    sla.stop().await.unwrap();
}
