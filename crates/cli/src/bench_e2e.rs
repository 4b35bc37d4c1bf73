//! `redress bench --e2e`: the whole pipeline measured from outside, as a channel adapter and a
//! watcher of the events stream see it. Complaints go in as a burst and then at a fixed rate;
//! every one is followed through its acknowledgement (`notify.<channel>.ack`),
//! `complaint.classified`, `work.assigned.<dept>` and `sla.armed`. In the same run it measures
//! the box's ceilings with the same servers: PostgreSQL commits/s of a transaction writing one
//! inbox, one state and one outbox row from 32 connections, and JetStream async publishes/s;
//! the pipeline's throughput is printed as a share of each. `pg_stat_database` before and
//! after the burst gives commits and rows written per complaint.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prost::Message as _;
use redress_proto::EventKind;
use redress_proto::v1::{Acknowledgement, Envelope, WorkChange};
use sqlx::{Connection, Executor};
use tokio::sync::Notify;

use super::bench::{complaint, ms, percentile};

/// The stages a complaint is followed through, in order.
const STAGES: [&str; 4] = ["acknowledged", "classified", "assigned", "armed"];

#[derive(Default)]
struct Seen {
    /// external id → when it was sent.
    sent: HashMap<String, Instant>,
    /// external id → complaint id, from the acknowledgement.
    ids: HashMap<String, String>,
    /// complaint id → when each stage was seen (index into STAGES, acknowledged excluded).
    stages: HashMap<String, [Option<Instant>; 4]>,
    armed: usize,
}

struct Tracker {
    seen: Mutex<Seen>,
    changed: Notify,
}

impl Tracker {
    fn stage(&self, complaint_id: String, stage: usize) {
        let mut s = self.seen.lock().unwrap();
        let entry = s.stages.entry(complaint_id).or_default();
        if entry[stage].is_none() {
            entry[stage] = Some(Instant::now());
            if stage == 3 {
                s.armed += 1;
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }
}

/// What one run (burst or rate) measured.
struct RunResult {
    sent: usize,
    elapsed_to_armed: Duration,
    per_stage: Vec<(usize, Vec<Duration>, Duration)>,
}

pub async fn run(args: &super::bench::BenchArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    let nats = client.nats().clone();
    let subjects = client.subjects().clone();
    let tracker = Arc::new(Tracker {
        seen: Mutex::new(Seen::default()),
        changed: Notify::new(),
    });
    let watch = [
        (subjects.notify_ack(&args.channel), 0usize),
        (subjects.event_of(EventKind::ComplaintClassified), 1),
        (subjects.event_of(EventKind::Work(WorkChange::Assigned)), 2),
        (subjects.event_of(EventKind::SlaArmed), 3),
    ];
    for (subject, stage) in watch {
        let mut sub = nats.subscribe(subject).await?;
        let tracker = tracker.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if stage == 0 {
                    if let Ok(ack) = Acknowledgement::decode(m.payload) {
                        tracker
                            .seen
                            .lock()
                            .unwrap()
                            .ids
                            .insert(ack.external_id, ack.complaint_id.clone());
                        tracker.stage(ack.complaint_id, 0);
                    }
                } else if let Ok(e) = Envelope::decode(m.payload) {
                    tracker.stage(e.complaint_id, stage);
                }
            }
        });
    }
    // The subscriptions are in place before anything is sent.
    nats.flush().await?;

    let admin = database_url(args)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let phones = u64::from(rand::random::<u32>()) % 100_000_000;

    println!(
        "== burst: {} complaints as fast as the broker takes them",
        args.count
    );
    let before = match &admin {
        Some(url) => Some(pg_stats(url).await?),
        None => None,
    };
    let burst = drive(
        &client,
        &tracker,
        args,
        &format!("{run_id}-b"),
        phones,
        args.count,
        None,
    )
    .await?;
    let after = match &admin {
        Some(url) => Some(pg_stats(url).await?),
        None => None,
    };
    report(&burst);
    let burst_rate = burst.sent as f64 / burst.elapsed_to_armed.as_secs_f64();
    println!(
        "pipeline: {} complaints assigned with deadlines armed in {:.2} s = {:.0} complaints/s",
        burst.sent,
        burst.elapsed_to_armed.as_secs_f64(),
        burst_rate
    );
    if let (Some(b), Some(a)) = (before, after) {
        let n = burst.sent.max(1) as f64;
        println!(
            "per complaint: {:.2} commits, {:.1} rows inserted, {:.1} updated, {:.1} deleted (pg_stat_database)",
            (a.commits - b.commits) as f64 / n,
            (a.inserted - b.inserted) as f64 / n,
            (a.updated - b.updated) as f64 / n,
            (a.deleted - b.deleted) as f64 / n,
        );
    }

    // The open loop measures the steady state: it starts once every consumer has caught up
    // with the burst (analytics folds it after the complaints are armed), so that what it
    // reports is the latency at that rate, not the tail of the burst's backlog.
    let js = async_nats::jetstream::new(nats.clone());
    let settled = settle(&js, &subjects, Duration::from_secs(120)).await?;
    if settled.left == 0 {
        println!(
            "settled: {} messages still pending in the consumers after the burst; all caught \
             up {:.1} s later",
            settled.at_first,
            settled.waited.as_secs_f64()
        );
    } else {
        println!(
            "not settled: {} messages still pending after {:.1} s ({} after the burst), in \
             consumers that no longer take any (a `work watch` of a department, a service not \
             running); the open loop starts anyway",
            settled.left,
            settled.waited.as_secs_f64(),
            settled.at_first
        );
    }

    let total = (u64::from(args.rate) * args.seconds) as usize;
    println!(
        "== open loop: {}/s for {} s ({total} complaints)",
        args.rate, args.seconds
    );
    let steady = drive(
        &client,
        &tracker,
        args,
        &format!("{run_id}-r"),
        phones + 50_000,
        total,
        Some(args.rate),
    )
    .await?;
    report(&steady);

    if args.no_ceilings {
        return Ok(ExitCode::SUCCESS);
    }
    println!("== ceilings of this box, same servers");
    let js_rate = jetstream_ceiling(&js, &subjects, Duration::from_secs(5)).await?;
    println!(
        "jetstream: {js_rate:.0} async publishes/s (1 KiB, Nats-Msg-Id, file storage, 1,024 in flight)"
    );
    println!(
        "pipeline burst = {:.3} of the JetStream ceiling",
        burst_rate / js_rate
    );
    match &admin {
        Some(url) => {
            let pg_rate = postgres_ceiling(url, 32, Duration::from_secs(5)).await?;
            println!(
                "postgres: {pg_rate:.0} commits/s (inbox + state + outbox row per transaction, 32 connections)"
            );
            println!(
                "pipeline burst = {:.3} of the PostgreSQL ceiling ({:.1} complaints per 100 ceiling commits)",
                burst_rate / pg_rate,
                100.0 * burst_rate / pg_rate
            );
        }
        None => println!(
            "postgres: not measured (no database URL: run against `redress up`'s data directory, \
             or set REDRESS_BENCH_DATABASE_URL)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// What [`settle`] saw: messages pending in the consumers when it began and when it stopped.
struct Settled {
    at_first: u64,
    left: u64,
    waited: Duration,
}

/// Waits until no consumer of the submissions or events stream has messages pending or
/// unacknowledged, or until the count has not fallen for five seconds (consumers nobody
/// serves, such as a department's `work watch`, never drain), or `limit` passes.
async fn settle(
    js: &async_nats::jetstream::Context,
    subjects: &redress_proto::subjects::Subjects,
    limit: Duration,
) -> anyhow::Result<Settled> {
    use redress_proto::subjects::Stream;
    let started = Instant::now();
    let mut at_first = None;
    let mut lowest = (u64::MAX, Instant::now());
    loop {
        let mut behind = 0u64;
        for stream in [Stream::Submissions, Stream::Events] {
            let stream = js.get_stream(subjects.stream_name(stream)).await?;
            let mut consumers = stream.consumers();
            while let Some(info) = consumers.next().await {
                let info = info?;
                behind += info.num_pending + info.num_ack_pending as u64;
            }
        }
        if at_first.is_none() {
            at_first = Some(behind);
        }
        if behind < lowest.0 {
            lowest = (behind, Instant::now());
        }
        let stalled = lowest.1.elapsed() >= Duration::from_secs(5);
        if behind == 0 || stalled || started.elapsed() >= limit {
            return Ok(Settled {
                at_first: at_first.unwrap_or(behind),
                left: behind,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn database_url(args: &super::bench::BenchArgs) -> anyhow::Result<Option<String>> {
    if let Ok(url) = std::env::var("REDRESS_BENCH_DATABASE_URL")
        && !url.is_empty()
    {
        return Ok(Some(url));
    }
    Ok(crate::discovery::database_url(&args.connection.data_dir))
}

/// Sends `count` complaints (at `rate` per second, or as fast as the broker confirms them)
/// and waits until each is armed or two minutes pass.
async fn drive(
    client: &redress_client::Client,
    tracker: &Arc<Tracker>,
    args: &super::bench::BenchArgs,
    run_id: &str,
    phones: u64,
    count: usize,
    rate: Option<u32>,
) -> anyhow::Result<RunResult> {
    let armed_before = tracker.seen.lock().unwrap().armed;
    let ids: Vec<String> = (0..count).map(|i| format!("bench-{run_id}-{i}")).collect();
    let started = Instant::now();
    let mut ticker = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut pending = FuturesUnordered::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        tracker
            .seen
            .lock()
            .unwrap()
            .sent
            .insert(id.clone(), Instant::now());
        pending.push(
            client
                .publish_submission(&complaint(&args.channel, id.clone(), i, phones))
                .await?
                .into_future(),
        );
        if pending.len() >= 1024 {
            pending.next().await.transpose()?;
        }
        while let Some(Some(r)) = futures::FutureExt::now_or_never(pending.next()) {
            r?;
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let notified = tracker.changed.notified();
        if tracker.seen.lock().unwrap().armed >= armed_before + count {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
            break;
        }
    }
    let seen = tracker.seen.lock().unwrap();
    let mut per_stage = vec![(0usize, Vec::new(), Duration::ZERO); STAGES.len()];
    for id in &ids {
        let (Some(sent), Some(cid)) = (seen.sent.get(id), seen.ids.get(id)) else {
            continue;
        };
        let Some(times) = seen.stages.get(cid) else {
            continue;
        };
        for (k, t) in times.iter().enumerate() {
            if let Some(t) = t {
                per_stage[k].0 += 1;
                per_stage[k].1.push(t.duration_since(*sent));
                per_stage[k].2 = per_stage[k].2.max(t.duration_since(started));
            }
        }
    }
    for s in &mut per_stage {
        s.1.sort();
    }
    let elapsed_to_armed = per_stage[3].2;
    Ok(RunResult {
        sent: count,
        elapsed_to_armed,
        per_stage,
    })
}

fn report(r: &RunResult) {
    for (name, (n, latencies, last)) in STAGES.iter().zip(&r.per_stage) {
        let rate = *n as f64 / last.as_secs_f64().max(1e-9);
        println!(
            "  {name:<12} {n:>6}/{:<6} {rate:>7.0}/s   p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}",
            r.sent,
            ms(percentile(latencies, 50.0)),
            ms(percentile(latencies, 90.0)),
            ms(percentile(latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
    }
    if r.per_stage[3].0 < r.sent {
        println!(
            "  warning: {} complaints not armed within two minutes",
            r.sent - r.per_stage[3].0
        );
    }
}

struct PgStats {
    commits: i64,
    inserted: i64,
    updated: i64,
    deleted: i64,
}

async fn pg_stats(url: &str) -> anyhow::Result<PgStats> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    // The counters are sent to the statistics collector at most every 500 ms (PostgreSQL
    // 15 keeps them in shared memory but flushes each backend's share lazily).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (commits, inserted, updated, deleted): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database
         WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(PgStats {
        commits,
        inserted,
        updated,
        deleted,
    })
}

/// Commits/s of the shape every handler's unit of work has, from `connections` at once.
async fn postgres_ceiling(url: &str, connections: usize, span: Duration) -> anyhow::Result<f64> {
    let schema = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut admin = sqlx::PgConnection::connect(url).await?;
    admin
        .execute(
            format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.inbox (message_id text PRIMARY KEY,
                     handled_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE {schema}.state (id uuid PRIMARY KEY, ticket text NOT NULL,
                     body text NOT NULL, at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE {schema}.outbox (seq bigserial PRIMARY KEY, msg_id text UNIQUE,
                     subject text NOT NULL, payload bytea NOT NULL);"
            )
            .as_str(),
        )
        .await?;
    let stop = Instant::now() + span;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.to_string();
        let schema = schema.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            let mut n = 0u64;
            let payload = vec![7u8; 600];
            while Instant::now() < stop {
                let id = uuid::Uuid::now_v7();
                let mut tx = conn.begin().await?;
                sqlx::query(&format!(
                    "INSERT INTO {schema}.inbox (message_id) VALUES ($1)"
                ))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "INSERT INTO {schema}.state (id, ticket, body) VALUES ($1, $2, $3)"
                ))
                .bind(id)
                .bind("RD-261129-000001")
                .bind("快递三天没有送到，客服电话一直打不通。")
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "INSERT INTO {schema}.outbox (msg_id, subject, payload) VALUES ($1, $2, $3)"
                ))
                .bind(id.to_string())
                .bind("redress.evt.bench")
                .bind(&payload)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                n += 1;
            }
            let _ = conn.close().await;
            anyhow::Ok(n)
        }));
    }
    let started = Instant::now();
    let mut total = 0u64;
    for t in tasks {
        total += t.await??;
    }
    let elapsed = started.elapsed().max(span);
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await?;
    let _ = admin.close().await;
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Async publishes/s to a scratch stream like the platform's (file storage, duplicate
/// window, Nats-Msg-Id), 1,024 unconfirmed at most.
async fn jetstream_ceiling(
    js: &async_nats::jetstream::Context,
    subjects: &redress_proto::subjects::Subjects,
    span: Duration,
) -> anyhow::Result<f64> {
    use async_nats::jetstream::stream;
    let name = format!(
        "{}_BENCH",
        subjects.root().to_ascii_uppercase().replace('-', "_")
    );
    let subject = format!("{}.bench.ceiling", subjects.root());
    let _ = js.delete_stream(&name).await;
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{}.bench.>", subjects.root())],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let payload = bytes::Bytes::from(vec![7u8; 1024]);
    let mut pending = FuturesUnordered::new();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < span {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
        pending.push(
            js.publish_with_headers(subject.clone(), h, payload.clone())
                .await?
                .into_future(),
        );
        if pending.len() >= 1024 {
            pending.next().await.transpose()?;
            n += 1;
        }
    }
    while let Some(r) = pending.next().await {
        r?;
        n += 1;
    }
    let elapsed = started.elapsed();
    js.delete_stream(&name).await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}
