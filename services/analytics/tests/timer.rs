//! The analytics service's own timer against a real nats-server with JetStream and a real
//! PostgreSQL, with intake and classification played by the test: the real-estate report
//! made on the 25th without anyone asking, a spike told once per episode, and the facts
//! refolded from the stream after the schema is dropped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use redress_platform::ManualClock;
use redress_platform::envelope::{Cause, new_event};
use redress_proto::time::ts;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    ComplaintClassified, ComplaintReceived, Envelope, KpiQuery, KpiReply, ReportFetch,
    ReportFetchReply, SpikeQuery, SpikeReply, kpi_reply, report_fetch_reply, spike_reply,
};
use redress_proto::{EventKind, subjects};
use redress_testkit::{RunningService, TestEnv, eventually};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

async fn start(env: &TestEnv, clock: Arc<ManualClock>) -> RunningService {
    env.start_service("analytics", clock, redress_analytics::run)
        .await
        .expect("analytics starts")
}

/// A complaint received at `at` and classified in `category`, as intake and classification
/// publish them.
async fn complaint(env: &TestEnv, playbook: &str, category: &str, at: DateTime<Utc>) {
    let cause = Cause {
        complaint_id: Uuid::now_v7(),
        ticket: format!("RD-{}", Uuid::now_v7().simple()),
        causation_id: String::new(),
        correlation_id: String::new(),
        playbook: playbook.into(),
    };
    let received = new_event(
        "intake",
        &cause,
        at,
        Payload::ComplaintReceived(ComplaintReceived {
            ticket: cause.ticket.clone(),
            channel: "phone".into(),
            received_at: ts(at),
            ..Default::default()
        }),
    );
    let classified = new_event(
        "classification",
        &cause,
        at,
        Payload::ComplaintClassified(ComplaintClassified {
            ticket: cause.ticket.clone(),
            channel: "phone".into(),
            category: category.into(),
            received_at: ts(at),
            ..Default::default()
        }),
    );
    for e in [received, classified] {
        let subject = e.payload.as_ref().unwrap().subject(&env.subjects());
        env.publish_event(subject, &e).await.unwrap();
    }
}

async fn request<Q: prost::Message, R: prost::Message + Default>(
    env: &TestEnv,
    command: &str,
    q: &Q,
) -> R {
    let nats = env.nats_client().await.unwrap();
    let reply = nats
        .request(
            env.subjects()
                .command(subjects::analytics::SERVICE, command),
            q.encode_to_vec().into(),
        )
        .await
        .unwrap();
    R::decode(reply.payload).unwrap()
}

async fn received(env: &TestEnv, playbook: &str, period: &str) -> u64 {
    let reply: KpiReply = request(
        env,
        subjects::analytics::KPIS,
        &KpiQuery {
            playbook: playbook.into(),
            period: period.into(),
            ..Default::default()
        },
    )
    .await;
    match reply.outcome {
        Some(kpi_reply::Outcome::Kpis(k)) => k.received,
        other => panic!("{other:?}"),
    }
}

async fn events_of(env: &TestEnv, kind: EventKind) -> Vec<Envelope> {
    env.events(env.subjects().event_of(kind)).await.unwrap()
}

async fn reports_of(env: &TestEnv, playbook: &str) -> Vec<Envelope> {
    let mut all = events_of(env, EventKind::ReportPublished).await;
    all.retain(|e| e.playbook == playbook);
    all
}

#[tokio::test]
async fn real_estate_reports_on_the_25th_unasked_once_and_the_facts_survive_a_dropped_schema() {
    let env = TestEnv::start().await.unwrap();
    // Friday 20 November, 10:00 in Shanghai.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap());
    let service = start(&env, clock.clone()).await;
    // The period of "2026-11" is 26 October to 25 November: the first and last complaints
    // fall outside it.
    for at in [
        Utc.with_ymd_and_hms(2026, 10, 25, 3, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 10, 26, 3, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 10, 3, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 19, 3, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap(),
    ] {
        complaint(&env, "real-estate", "quality", at).await;
    }
    eventually("the facts", WAIT, || async {
        received(&env, "real-estate", "2026-11").await == 3
    })
    .await;

    // Just before 18:00 on the 25th (10:00 UTC): nothing yet.
    clock.set(Utc.with_ymd_and_hms(2026, 11, 25, 9, 59, 0).unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(reports_of(&env, "real-estate").await.is_empty());

    clock.set(Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 30).unwrap());
    eventually("the report announced", WAIT, || async {
        !reports_of(&env, "real-estate").await.is_empty()
    })
    .await;
    // A day later, and a restart: still one.
    clock.set(Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let published = reports_of(&env, "real-estate").await;
    assert_eq!(published.len(), 1, "{published:?}");
    let Some(Payload::ReportPublished(p)) = &published[0].payload else {
        panic!()
    };
    assert_eq!(
        (
            p.playbook.as_str(),
            p.period.as_str(),
            p.kind.as_str(),
            p.received
        ),
        ("real-estate", "2026-11", "monthly", 3)
    );
    assert!(published[0].complaint_id.is_empty() && published[0].ticket.is_empty());
    assert_eq!(
        p.fetch_subject,
        env.subjects()
            .command("analytics", subjects::analytics::REPORT)
    );
    assert_eq!(
        p.read_with,
        "redress report --playbook real-estate --period 2026-11 --stored"
    );
    let fetched: ReportFetchReply = request(
        &env,
        subjects::analytics::REPORT,
        &ReportFetch {
            playbook: "real-estate".into(),
            period: "2026-11".into(),
        },
    )
    .await;
    let Some(report_fetch_reply::Outcome::Report(stored)) = fetched.outcome else {
        panic!("{fetched:?}")
    };
    assert_eq!(stored.report_id, p.report_id);
    assert_eq!(stored.kpis.unwrap().received, 3);
    // The others report on the 1st, except express's weekly analysis on Monday the 23rd.
    let all: Vec<(String, String)> = events_of(&env, EventKind::ReportPublished)
        .await
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::ReportPublished(p)) => Some((p.playbook.clone(), p.period.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.contains(&("express".into(), "2026-W47".into())),
        "{all:?}"
    );

    // The schema dropped: the service comes back with the same facts, read again from the
    // stream, and does not announce the report again.
    service.stop().await.unwrap();
    let admin = env.admin_pool().await.unwrap();
    sqlx::query("DROP SCHEMA analytics CASCADE")
        .execute(&admin)
        .await
        .unwrap();
    let service = start(&env, clock.clone()).await;
    eventually("the facts refolded", WAIT, || async {
        received(&env, "real-estate", "2026-11").await == 3
    })
    .await;
    assert_eq!(received(&env, "real-estate", "2026-10").await, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(events_of(&env, EventKind::ReportPublished).await.len(), 2);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn a_tripled_category_is_told_once_per_episode_and_weekly_rhythm_is_not() {
    let env = TestEnv::start().await.unwrap();
    // Monday 30 November 2026, 00:00 in Shanghai (the default playbook's zone).
    let day0 = Utc.with_ymd_and_hms(2026, 11, 29, 16, 0, 0).unwrap();
    let clock = ManualClock::new(day0 + chrono::Duration::hours(1));
    let service = start(&env, clock.clone()).await;
    let day = |d: i64, hour: u32| {
        day0 + chrono::Duration::days(d) + chrono::Duration::hours(i64::from(hour) + 1)
    };
    // Five weeks of history: delivery 4 a weekday and 1 at weekends; billing 6 on Mondays
    // (its busy day) and 2 otherwise.
    let mut total: u64 = 0;
    for d in -35..0 {
        let weekday = (d + 35) % 7; // 0: Monday
        let delivery = if weekday >= 5 { 1 } else { 4 };
        let billing = if weekday == 0 { 6 } else { 2 };
        for i in 0..delivery {
            complaint(&env, "default", "delivery", day(d, i)).await;
        }
        for i in 0..billing {
            complaint(&env, "default", "billing", day(d, i)).await;
        }
        total += u64::from(delivery + billing);
    }
    // Monday 30 November: delivery triples and more (14 against 4); billing has its busy
    // Monday as usual.
    for i in 0..14 {
        complaint(&env, "default", "delivery", day(0, i % 12)).await;
    }
    for i in 0..6 {
        complaint(&env, "default", "billing", day(0, i)).await;
    }
    total += 20;
    eventually("the facts", WAIT, || async {
        received(&env, "default", "2026-10-26..2026-11-30").await == total
    })
    .await;

    // Tuesday 00:00:30: Monday is over and checked.
    clock.set(day0 + chrono::Duration::days(1) + chrono::Duration::seconds(30));
    eventually("the spike told", WAIT, || async {
        !events_of(&env, EventKind::AnalyticsSpike).await.is_empty()
    })
    .await;
    // Tuesday stays high: the same episode, not told again; Wednesday is normal.
    for i in 0..15 {
        complaint(&env, "default", "delivery", day(1, i % 12)).await;
    }
    for i in 0..4 {
        complaint(&env, "default", "delivery", day(2, i)).await;
    }
    eventually("Tuesday's facts", WAIT, || async {
        received(&env, "default", "2026-12-01..2026-12-02").await == 19
    })
    .await;
    clock.set(day0 + chrono::Duration::days(3) + chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spikes = events_of(&env, EventKind::AnalyticsSpike).await;
    assert_eq!(spikes.len(), 1, "{spikes:?}");
    let Some(Payload::AnalyticsSpike(s)) = &spikes[0].payload else {
        panic!()
    };
    assert_eq!(
        (s.category.as_str(), s.day.as_str(), s.observed),
        ("delivery", "2026-11-30", 14)
    );
    assert!((s.expected - 4.0).abs() < 1e-9, "{s:?}");
    assert!(s.tail_probability < 0.0002 && s.ratio > 3.0, "{s:?}");
    let listed: SpikeReply = request(
        &env,
        subjects::analytics::SPIKES,
        &SpikeQuery {
            playbook: "default".into(),
            period: "2026-11".into(),
        },
    )
    .await;
    let Some(spike_reply::Outcome::List(list)) = listed.outcome else {
        panic!("{listed:?}")
    };
    assert_eq!(list.spikes.len(), 1);
    assert_eq!(list.spikes[0].spike_id, s.spike_id);
    service.stop().await.unwrap();
}
