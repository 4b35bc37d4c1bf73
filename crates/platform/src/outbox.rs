//! The outbox: messages to publish are written in the state change's own transaction, and a
//! relay publishes them afterwards with `Nats-Msg-Id` = the message id, so a crash between
//! commit and publish loses nothing and a publish repeated after a crash is dropped by the
//! broker. Several relay instances share the work through `FOR UPDATE SKIP LOCKED`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use redress_proto::subjects::headers;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::Notify;

use crate::config::OutboxSettings;
use crate::health::Metrics;
use crate::shutdown::Shutdown;

/// One message to publish after commit.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Becomes the `Nats-Msg-Id`; for events, the event id.
    pub msg_id: String,
    pub subject: String,
    pub payload: Vec<u8>,
    /// The trace context of the span that made the message, so that whoever consumes it
    /// continues that trace (each message of a batch its own complaint's trace).
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Outgoing {
    /// A message made in the current span.
    pub fn new(subject: String, msg_id: String, payload: Vec<u8>) -> Self {
        let mut trace = HeaderMap::new();
        crate::telemetry::inject_context(&mut trace);
        Self {
            msg_id,
            subject,
            payload,
            traceparent: trace
                .get(headers::TRACEPARENT)
                .map(|v| v.as_str().to_string()),
            tracestate: trace
                .get(headers::TRACESTATE)
                .map(|v| v.as_str().to_string())
                .filter(|s| !s.is_empty()),
        }
    }
}

fn channel(schema: &str) -> String {
    format!("{schema}_outbox")
}

/// Wakes relays after a commit. PostgreSQL serialises the commits of every transaction that
/// issued NOTIFY (a database-wide lock held through the WAL flush), which would undo group
/// commit under load; so the relay of this process is woken directly after commit, and a
/// NOTIFY (for relays of other instances) goes out at most every `NOTIFY_EVERY`.
#[derive(Clone, Default)]
pub struct Waker {
    local: Arc<Notify>,
    last_notify_ms: Arc<AtomicU64>,
}

const NOTIFY_EVERY_MS: u64 = 100;

impl Waker {
    /// Call after the transaction that enqueued messages committed.
    pub fn wake(&self) {
        self.local.notify_one();
    }

    fn should_notify(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let last = self.last_notify_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= NOTIFY_EVERY_MS
            && self
                .last_notify_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Writes `messages` to the outbox inside the caller's transaction, each with the trace
/// context it was made in. Call `waker.wake()` after commit.
pub async fn enqueue(
    conn: &mut PgConnection,
    schema: &str,
    waker: &Waker,
    messages: &[Outgoing],
) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = messages.iter().map(|m| m.msg_id.as_str()).collect();
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    let parents: Vec<Option<&str>> = messages.iter().map(|m| m.traceparent.as_deref()).collect();
    let states: Vec<Option<&str>> = messages.iter().map(|m| m.tracestate.as_deref()).collect();
    // One round trip for the whole set.
    sqlx::query(
        "INSERT INTO outbox (msg_id, subject, payload, traceparent, tracestate)
         SELECT m.id, m.subject, m.payload, m.parent, m.state
         FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[])
              WITH ORDINALITY AS m(id, subject, payload, parent, state, n)
         ORDER BY m.n
         ON CONFLICT (msg_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&subjects)
    .bind(&payloads)
    .bind(&parents)
    .bind(&states)
    .execute(&mut *conn)
    .await?;
    if waker.should_notify() {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(channel(schema))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A row is set aside after this many failed publishes while the broker was reachable.
pub const STUCK_AFTER: i32 = 5;

/// What one pass of the relay did.
struct Pass {
    published: usize,
    /// Rows whose publish failed.
    failed: usize,
    /// Rows set aside in this pass.
    stuck: usize,
}

/// Publishes one batch. A row whose publish fails while the broker is reachable (and so is
/// refused for something of its own) counts an attempt; after [`STUCK_AFTER`] it is set aside
/// (`stuck_at`, `stuck_reason`), counted and listed by `redress ops stuck`, so that it never
/// holds back the rows behind it. Failures while the broker is away count nothing.
async fn publish_batch(
    pool: &PgPool,
    client: &async_nats::Client,
    js: &jetstream::Context,
    batch_size: i64,
) -> anyhow::Result<Pass> {
    let mut tx = pool.begin().await?;
    // Deleting published rows need not wait for the disk: if the commit is lost in a crash,
    // the rows are published again, and the broker (within its duplicate window) and every
    // consumer's inbox drop the copies. Waiting would hold up the next batch by an fsync.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query(
        "SELECT seq, msg_id, subject, payload, traceparent, tracestate FROM outbox
         WHERE stuck_at IS NULL
         ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch_size)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Pass {
            published: 0,
            failed: 0,
            stuck: 0,
        });
    }
    // (seq, reason, whether the failure is the row's own rather than the broker's mood)
    let mut failures: Vec<(i64, String, bool)> = Vec::new();
    let mut published = Vec::with_capacity(rows.len());
    // Entries of key-value buckets (a complaint's text key) go first and are stored before
    // the events of the same batch are sent: the broker stores each stream on its own, so an
    // event sent right behind the key it needs can be stored, delivered and read before the
    // key, and its reader would have to put it back and wait a retry delay for it.
    let (first, rest): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|row| row.get::<&str, _>("subject").starts_with("$KV."));
    for rows in [first, rest] {
        publish_rows(js, &rows, &mut published, &mut failures).await;
    }
    // Joined from unnest: an index probe per row (`= ANY` under a generic plan walks the
    // index for every element of the array and costs several times more).
    sqlx::query("DELETE FROM outbox o USING unnest($1::int8[]) AS u(seq) WHERE o.seq = u.seq")
        .bind(&published)
        .execute(&mut *tx)
        .await?;
    let reachable = client.connection_state() == async_nats::connection::State::Connected;
    let mut stuck = 0;
    let counted: Vec<&(i64, String, bool)> = failures.iter().filter(|f| f.2).collect();
    if !counted.is_empty() && reachable {
        let seqs: Vec<i64> = counted.iter().map(|f| f.0).collect();
        let reasons: Vec<&str> = counted.iter().map(|f| f.1.as_str()).collect();
        stuck = sqlx::query_scalar::<_, i64>(
            "WITH f AS (
                 UPDATE outbox o SET attempts = o.attempts + 1, stuck_reason = f.reason,
                     stuck_at = CASE WHEN o.attempts + 1 >= $3 THEN now() END
                 FROM unnest($1::int8[], $2::text[]) AS f(seq, reason)
                 WHERE o.seq = f.seq
                 RETURNING o.stuck_at)
             SELECT count(*) FROM f WHERE stuck_at IS NOT NULL",
        )
        .bind(&seqs)
        .bind(&reasons)
        .bind(STUCK_AFTER)
        .fetch_one(&mut *tx)
        .await? as usize;
    }
    tx.commit().await?;
    if !failures.is_empty() {
        tracing::warn!(
            failed = failures.len(),
            stuck,
            reachable,
            first = %failures[0].1,
            "outbox relay: some messages were not published"
        );
    }
    Ok(Pass {
        published: published.len(),
        failed: failures.len(),
        stuck,
    })
}

/// Publishes `rows` and waits until the broker stored each: the stored ones' `seq` go to
/// `published`, the others to `failures`.
async fn publish_rows(
    js: &jetstream::Context,
    rows: &[&sqlx::postgres::PgRow],
    published: &mut Vec<i64>,
    failures: &mut Vec<(i64, String, bool)>,
) {
    if rows.is_empty() {
        return;
    }
    let mut pending = Vec::with_capacity(rows.len());
    for row in rows {
        let seq = row.get::<i64, _>("seq");
        let mut h = HeaderMap::new();
        h.insert(headers::MSG_ID, row.get::<String, _>("msg_id").as_str());
        if let Some(tp) = row.get::<Option<String>, _>("traceparent") {
            h.insert(headers::TRACEPARENT, tp.as_str());
        }
        if let Some(ts) = row.get::<Option<String>, _>("tracestate") {
            h.insert(headers::TRACESTATE, ts.as_str());
        }
        let subject: String = row.get("subject");
        let payload: Vec<u8> = row.get("payload");
        match js.publish_with_headers(subject, h, payload.into()).await {
            Ok(ack) => pending.push((seq, ack)),
            Err(e) => failures.push((seq, e.to_string(), own_fault(&e))),
        }
    }
    // Every publish must be stored by the broker before its row goes; a row that failed
    // stays, and the broker drops the copies it already has when it is sent again.
    let acked = futures::future::join_all(
        pending
            .into_iter()
            .map(|(seq, ack)| async move { (seq, ack.await) }),
    )
    .await;
    for (seq, result) in acked {
        match result {
            Ok(_) => published.push(seq),
            Err(e) => failures.push((seq, e.to_string(), own_fault(&e))),
        }
    }
}

/// Whether a failed publish says something about the message itself (too large, no stream
/// takes its subject, refused by the stream) rather than about a slow or absent broker, which
/// must never set a message aside.
fn own_fault(e: &jetstream::context::PublishError) -> bool {
    use jetstream::context::PublishErrorKind as K;
    !matches!(e.kind(), K::TimedOut | K::BrokenPipe)
}

/// Runs the relay until `shutdown`: wakes on NOTIFY, polls as a fallback, and now and then
/// forgets inbox entries older than the retention (no redelivery comes that late).
#[allow(clippy::too_many_arguments)]
pub async fn run_relay(
    pool: PgPool,
    client: async_nats::Client,
    js: jetstream::Context,
    schema: String,
    waker: Waker,
    settings: OutboxSettings,
    metrics: Metrics,
    shutdown: Shutdown,
) {
    let published = metrics.counter(&format!("{schema}_outbox_published_total"));
    let stuck = metrics.counter(&format!("{schema}_outbox_stuck_total"));
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let mut listener: Option<PgListener> = None;
    let mut last_prune = tokio::time::Instant::now() - Duration::from_secs(3600);
    loop {
        if listener.is_none() {
            listener = match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(&channel(&schema)).await {
                    Ok(()) => Some(l),
                    Err(_) => None,
                },
                Err(_) => None,
            };
        }
        match publish_batch(&pool, &client, &js, settings.batch_size).await {
            Ok(pass) => {
                published.fetch_add(pass.published as u64, Ordering::Relaxed);
                stuck.fetch_add(pass.stuck as u64, Ordering::Relaxed);
                if pass.failed > 0 {
                    // Give the broker a moment before the same rows come round again.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(poll) => continue,
                    }
                }
                if pass.published as i64 == settings.batch_size {
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: publish failed, will retry");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(poll) => continue,
                }
            }
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = tokio::time::Instant::now();
            let _ = sqlx::query(
                "DELETE FROM inbox WHERE handled_at < now() - make_interval(days => $1::int)",
            )
            .bind(settings.inbox_retention_days as i32)
            .execute(&pool)
            .await;
        }
        let wake = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()).map_err(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = waker.local.notified() => {},
            r = wake => if r.is_err() { listener = None; },
            _ = tokio::time::sleep(poll) => {},
        }
    }
}
