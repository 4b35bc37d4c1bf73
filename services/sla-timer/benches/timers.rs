//! The SLA timer at scale: `cargo bench -p redress-sla-timer --bench timers`.
//!
//! On a private nats-server and PostgreSQL (started like the integration tests' own), with
//! the real clock:
//!
//! 1. **Pending**: `PENDING` armed deadlines (default 1,000,000) due evenly over the next 24
//!    hours; for the first `WINDOW` seconds (default 120) of due times, the fire lag of each
//!    (due → its `sla.breached` received by a subscriber of the broker) is measured.
//! 2. **Restart**: the timer is stopped, `OVERDUE` deadlines (default 100,000) that fell due
//!    during the last hour are added, and a new instance is started; the time until every one
//!    of them was breached is measured, and breaches are counted per deadline (each exactly
//!    once).
//!
//! The timer runs with `grace_secs = 0` (the grace is a deliberate wait for late work, not
//! lag) and its default tick. Numbers go to stdout; nothing is asserted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use prost::Message as _;
use redress_platform::{SharedClock, SystemClock};
use redress_proto::v1::{Envelope, envelope::Payload};
use redress_testkit::TestEnv;

fn arg(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// When each deadline's breach reached the subscriber, by deadline name.
type Seen = Arc<Mutex<HashMap<String, Vec<(DateTime<Utc>, DateTime<Utc>)>>>>;

async fn insert(
    pool: &sqlx::PgPool,
    prefix: &str,
    count: u64,
    first_due: DateTime<Utc>,
    spread: chrono::Duration,
) -> anyhow::Result<()> {
    // In slices, so that no single statement holds the whole table's WAL.
    let slice = 100_000u64;
    let mut from = 0u64;
    while from < count {
        let to = (from + slice).min(count);
        sqlx::query(
            "INSERT INTO sla.deadlines (id, work_id, round, name, complaint_id, correlation_id,
                 playbook, playbook_version, ticket, department, limit_text, calendar, met_by,
                 started_at, due_at, state, armed_at)
             SELECT gen_random_uuid(), gen_random_uuid(), 1, $1 || i, gen_random_uuid(), 'bench',
                    'default', 'bench', 'RD-BENCH-' || i, 'logistics', '3 working days',
                    'cn-mainland', 'resolved', now(),
                    $2::timestamptz + ($3::float8 * i / $4::float8) * interval '1 microsecond',
                    'armed', now()
             FROM generate_series($5::int8, $6::int8 - 1) AS i",
        )
        .bind(prefix)
        .bind(first_due)
        .bind(spread.num_microseconds().unwrap_or(i64::MAX) as f64)
        .bind(count as f64)
        .bind(from as i64)
        .bind(to as i64)
        .execute(pool)
        .await?;
        from = to;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn start(env: &TestEnv) -> anyhow::Result<redress_testkit::RunningService> {
    env.start_service(
        "sla-timer",
        Arc::new(SystemClock) as SharedClock,
        redress_sla_timer::run,
    )
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pending = arg("PENDING", 1_000_000);
    let overdue = arg("OVERDUE", 100_000);
    let window = arg("WINDOW", 120);
    let mut env = TestEnv::start().await?;
    env.extra_config = serde_json::json!({"sla": {"grace_secs": 0, "catch_up_secs": 0}});
    let settings = redress_sla_timer::SlaSettings::default();
    println!(
        "sla-timer bench: {pending} pending over 24 h, {overdue} overdue at restart; \
         tick {} ms, batch {}",
        settings.tick_ms, settings.batch_size
    );
    let nats = env.nats_client().await?;
    let seen: Seen = Arc::default();
    let mut sub = nats.subscribe(env.subjects().event("sla.breached")).await?;
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let at = Utc::now();
                let Ok(envelope) = Envelope::decode(msg.payload) else {
                    continue;
                };
                if let Some(Payload::DeadlineBreached(s)) = envelope.payload
                    && let Some(d) = s.deadline
                {
                    let due = redress_proto::time::opt_to_chrono(&d.due_at).unwrap_or(at);
                    seen.lock()
                        .unwrap()
                        .entry(d.name)
                        .or_default()
                        .push((due, at));
                }
            }
        })
    };

    // 1. Pending deadlines, fired as they fall due.
    let timer = start(&env).await?;
    let pool = env.admin_pool().await?;
    let t = Instant::now();
    let first_due = Utc::now() + chrono::Duration::seconds(90);
    insert(&pool, "p", pending, first_due, chrono::Duration::hours(24)).await?;
    println!(
        "inserted {pending} pending deadlines in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Deadlines that fell due while the table was still filling are left out.
    let from = first_due.max(Utc::now() + chrono::Duration::seconds(5));
    let until = from + chrono::Duration::seconds(window as i64);
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(3);
    tokio::time::sleep(wait).await;
    let lags: Vec<f64> = {
        let seen = seen.lock().unwrap();
        let mut lags: Vec<f64> = seen
            .iter()
            .filter(|(name, _)| name.starts_with('p'))
            .flat_map(|(_, v)| v.first())
            .filter(|(due, _)| *due >= from && *due <= until)
            .map(|(due, at)| (*at - *due).num_microseconds().unwrap_or(0) as f64 / 1e6)
            .collect();
        lags.sort_by(f64::total_cmp);
        lags
    };
    let expected = (pending as f64 * window as f64 / 86_400.0).floor() as usize;
    println!(
        "fire lag over {window} s of due times ({} fired, ~{expected} expected): \
         p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );

    // 2. A restart with a backlog of overdue deadlines.
    timer.stop().await?;
    let now = Utc::now();
    insert(
        &pool,
        "o",
        overdue,
        now - chrono::Duration::hours(1),
        chrono::Duration::hours(1) - chrono::Duration::seconds(1),
    )
    .await?;
    let t = Instant::now();
    let timer = start(&env).await?;
    let started_in = t.elapsed();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut all_in = None;
    while Instant::now() < deadline {
        let n = seen
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with('o'))
            .count() as u64;
        if n >= overdue {
            all_in = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates, if any, would arrive now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (distinct, events) = {
        let seen = seen.lock().unwrap();
        let o: Vec<_> = seen.iter().filter(|(k, _)| k.starts_with('o')).collect();
        (o.len(), o.iter().map(|(_, v)| v.len()).sum::<usize>())
    };
    let breached: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sla.deadlines WHERE name LIKE 'o%' AND state = 'breached'",
    )
    .fetch_one(&pool)
    .await?;
    match all_in {
        Some(d) => println!(
            "restart with {overdue} overdue: ready in {:.1} s, all breached {:.1} s after the \
             start ({:.0}/s)",
            started_in.as_secs_f64(),
            d.as_secs_f64(),
            overdue as f64 / d.as_secs_f64()
        ),
        None => println!("restart with {overdue} overdue: NOT all breached within 180 s"),
    }
    println!(
        "  breach events: {events} for {distinct} distinct deadlines (lost {}, duplicated {}); \
         rows breached in the database: {breached}",
        overdue as usize - distinct.min(overdue as usize),
        events - distinct
    );
    timer.stop().await?;
    recorder.abort();
    Ok(())
}
