//! `redress bench`: submissions/s and submit→acknowledged latency through JetStream, measured
//! from outside the stack exactly as a channel adapter sees it: publish `SubmitComplaint` to
//! the submissions stream, wait for the acknowledgement on `<root>.notify.<channel>.ack`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prost::Message as _;
use redress_proto::v1::{Acknowledgement, Complainant, Contact, ContactKind, SubmitComplaint};
use tokio::sync::Notify;

use crate::client_verbs::Connection;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Follow every complaint through the whole pipeline (acknowledged, classified, assigned,
    /// deadlines armed) instead of intake alone, and measure the box's PostgreSQL and
    /// JetStream ceilings in the same run.
    #[arg(long)]
    pub(crate) e2e: bool,
    /// With --e2e: skip the ceilings.
    #[arg(long)]
    pub(crate) no_ceilings: bool,
    /// Submissions in the throughput run (sent as fast as the broker accepts them).
    #[arg(long, default_value_t = 5000)]
    pub(crate) count: usize,
    /// Submissions per second in the latency run.
    #[arg(long, default_value_t = 500)]
    pub(crate) rate: u32,
    /// Length of the latency run.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    #[arg(long, default_value = "web")]
    pub(crate) channel: String,
    #[command(flatten)]
    pub(crate) connection: Connection,
}

struct Tracker {
    sent: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    done: Notify,
}

pub(crate) fn complaint(
    channel: &str,
    external_id: String,
    i: usize,
    phones: u64,
) -> SubmitComplaint {
    SubmitComplaint {
        channel: channel.to_string(),
        external_id,
        complainant: Some(Complainant {
            name: format!("Bench {i}"),
            contact: Some(Contact {
                kind: ContactKind::Phone as i32,
                // Each run its own complainants (a run must not turn into a storm of repeat
                // complaints from the previous run's people), a few of them complaining twice
                // so the repeat lookup does real work.
                value: format!("139{:08}", (phones + (i % 50_000) as u64) % 100_000_000),
            }),
        }),
        text: "快递三天没有送到，客服电话一直打不通，要求尽快处理并给出说明。".into(),
        ..Default::default()
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn wait_all(tracker: &Tracker, expected: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let notified = tracker.done.notified();
        if tracker.latencies.lock().unwrap().len() >= expected {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
            return tracker.latencies.lock().unwrap().len() >= expected;
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.e2e {
        return crate::bench_e2e::run(&args).await;
    }
    let client = args.connection.client().await?;
    let tracker = Arc::new(Tracker {
        sent: Mutex::new(HashMap::new()),
        latencies: Mutex::new(Vec::new()),
        done: Notify::new(),
    });
    let mut acks = client
        .nats()
        .subscribe(client.subjects().notify_ack(&args.channel))
        .await?;
    {
        let tracker = tracker.clone();
        tokio::spawn(async move {
            while let Some(m) = acks.next().await {
                let Ok(ack) = Acknowledgement::decode(m.payload) else {
                    continue;
                };
                let start = tracker.sent.lock().unwrap().remove(&ack.external_id);
                if let Some(start) = start {
                    tracker.latencies.lock().unwrap().push(start.elapsed());
                    tracker.done.notify_waiters();
                }
            }
        });
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    // Random per run: new complainants every run; the latency run's differ from the
    // throughput run's.
    let phones = u64::from(rand::random::<u32>()) % 100_000_000;

    // Throughput: as fast as the broker takes them, at most 1,024 publishes unconfirmed.
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for i in 0..args.count {
        let id = format!("bench-{run_id}-t{i}");
        tracker
            .sent
            .lock()
            .unwrap()
            .insert(id.clone(), Instant::now());
        pending.push(
            client
                .publish_submission(&complaint(&args.channel, id, i, phones))
                .await?
                .into_future(),
        );
        if pending.len() >= 1024 {
            pending.next().await.transpose()?;
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    let all = wait_all(&tracker, args.count, Duration::from_secs(120)).await;
    let elapsed = started.elapsed();
    let received = tracker.latencies.lock().unwrap().len();
    println!(
        "throughput: {received} of {} submissions acknowledged in {:.2} s = {:.0} submissions/s",
        args.count,
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64()
    );
    if !all {
        eprintln!("error: {} acknowledgements missing", args.count - received);
        return Ok(ExitCode::FAILURE);
    }

    // Latency at a steady rate.
    tracker.latencies.lock().unwrap().clear();
    let total = (args.rate as u64 * args.seconds) as usize;
    let mut ticker =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut confirms = FuturesUnordered::new();
    for i in 0..total {
        ticker.tick().await;
        let id = format!("bench-{run_id}-l{i}");
        tracker
            .sent
            .lock()
            .unwrap()
            .insert(id.clone(), Instant::now());
        confirms.push(
            client
                .publish_submission(&complaint(&args.channel, id, i, phones + 50_000))
                .await?
                .into_future(),
        );
        while let Some(Some(r)) = futures::FutureExt::now_or_never(confirms.next()) {
            r?;
        }
    }
    while let Some(r) = confirms.next().await {
        r?;
    }
    let all = wait_all(&tracker, total, Duration::from_secs(120)).await;
    let mut l = tracker.latencies.lock().unwrap().clone();
    l.sort();
    println!(
        "latency at {}/s for {} s ({} acknowledged): p50 {}  p90 {}  p99 {}  max {}",
        args.rate,
        args.seconds,
        l.len(),
        ms(percentile(&l, 50.0)),
        ms(percentile(&l, 90.0)),
        ms(percentile(&l, 99.0)),
        ms(l.last().copied().unwrap_or_default()),
    );
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
