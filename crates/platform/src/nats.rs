//! NATS and JetStream plumbing: connecting with retry, idempotent streams and durable pull
//! consumers, and the consume loop with bounded concurrency, explicit acks, delayed retries
//! and a dead-letter path.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message as _;
use redress_proto::subjects::{Stream, Subjects, headers};
use redress_proto::v1::DeadLetter;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{ConsumerSettings, NatsSettings, StreamSettings};
use crate::health::Metrics;
use crate::shutdown::Shutdown;

/// Connects, retrying with backoff until `connect_timeout_secs` has passed; once connected
/// the client reconnects on its own for as long as the process lives.
pub async fn connect(settings: &NatsSettings, name: &str) -> anyhow::Result<async_nats::Client> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(settings.connect_timeout_secs);
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt =
            redress_client::connect_options_tls(&settings.url, settings.tls_ca_file.as_deref())
                .name(name)
                .connection_timeout(Duration::from_secs(5))
                .max_reconnects(None)
                .connect(settings.url.as_str())
                .await;
        match attempt {
            Ok(client) => return Ok(client),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(
                    error = %e,
                    url = %redress_client::redacted(&settings.url),
                    "NATS not reachable yet, retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot connect to NATS at {}: {e}",
                    redress_client::redacted(&settings.url)
                ));
            }
        }
    }
}

fn stream_config(subjects: &Subjects, which: Stream, s: &StreamSettings) -> stream::Config {
    let day = Duration::from_secs(86_400);
    let max_age = match which {
        Stream::Events => day * s.events_max_age_days as u32,
        Stream::Submissions | Stream::Evidence => day * s.submissions_max_age_days as u32,
        Stream::Notify => day * s.notify_max_age_days as u32,
        Stream::DeadLetter => day * s.dead_letter_max_age_days as u32,
    };
    let max_bytes = match which {
        Stream::Events => s.events_max_bytes,
        _ => -1,
    };
    stream::Config {
        max_bytes,
        discard: stream::DiscardPolicy::Old,
        name: subjects.stream_name(which),
        subjects: vec![subjects.stream_subjects(which)],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: s.replicas,
        duplicate_window: Duration::from_secs(s.duplicate_window_secs),
        max_age,
        ..Default::default()
    }
}

/// Creates the platform's streams, or brings their settings up to date. Safe to run from
/// every instance at once.
pub async fn ensure_streams(
    js: &jetstream::Context,
    subjects: &Subjects,
    settings: &StreamSettings,
) -> anyhow::Result<()> {
    for which in Stream::ALL {
        let config = stream_config(subjects, which, settings);
        let mut existing = js
            .get_or_create_stream(config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("create stream {}: {e}", config.name))?;
        let info = existing.info().await?;
        if info.config.subjects != config.subjects
            || info.config.duplicate_window != config.duplicate_window
            || info.config.max_age != config.max_age
            || info.config.max_bytes != config.max_bytes
        {
            js.update_stream(config.clone())
                .await
                .map_err(|e| anyhow::anyhow!("update stream {}: {e}", config.name))?;
        }
    }
    Ok(())
}

/// A durable pull consumer shared by all instances of a service.
pub async fn durable_consumer(
    js: &jetstream::Context,
    subjects: &Subjects,
    which: Stream,
    durable: &str,
    filter_subject: String,
    settings: &ConsumerSettings,
) -> anyhow::Result<PullConsumer> {
    let stream = js.get_stream(subjects.stream_name(which)).await?;
    let wanted = filter_subject.clone();
    let mut consumer: PullConsumer = stream
        .get_or_create_consumer(
            durable,
            jetstream::consumer::pull::Config {
                durable_name: Some(durable.to_string()),
                filter_subject,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(settings.ack_wait_secs),
                // The broker never gives up on a message: after `max_deliver` deliveries the
                // consumer dead-letters it itself, and a dead letter that cannot be written
                // is delivered again rather than dropped.
                max_deliver: -1,
                max_ack_pending: settings.max_ack_pending,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("create consumer {durable}: {e}"))?;
    let existing = consumer.info().await?.config.filter_subject.clone();
    if existing != wanted {
        // Kept as it is: recreating it would lose its place in the stream.
        tracing::warn!(
            durable,
            existing = %existing,
            wanted = %wanted,
            "durable consumer filters another subject than this version asks for; delete it \
             (nats consumer rm) while the service is stopped to take the new filter"
        );
    }
    Ok(consumer)
}

/// What a handler decided about one message.
#[derive(Debug)]
pub enum Outcome {
    /// Handled (or already handled before): acknowledge.
    Ack,
    /// Failed for a reason that may pass (database down): deliver again after a delay.
    Retry(String),
    /// Can never succeed (undecodable, contract broken): park it with the reason.
    DeadLetter(String),
}

/// The parts of a delivered message a handler sees.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: Bytes,
    pub headers: Option<HeaderMap>,
    pub stream_sequence: u64,
    pub delivered: i64,
}

impl Delivery {
    /// The id under which this delivery is recorded in an inbox: the publisher's
    /// `Nats-Msg-Id` when there is one, otherwise the stream position.
    pub fn message_id(&self, stream: &str) -> String {
        self.headers
            .as_ref()
            // async-nats files this header under its standard name, not the string.
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| bounded_id(v.as_str()))
            .unwrap_or_else(|| format!("{stream}:{}", self.stream_sequence))
    }
}

/// Ids longer than this are stored by their SHA-256: a publisher chooses its `Nats-Msg-Id`,
/// and an id of kilobytes would not fit an index key.
pub const MAX_MESSAGE_ID_BYTES: usize = 128;

/// `id` itself when short enough, else `sha256:<hex>` of it.
pub fn bounded_id(id: &str) -> String {
    if id.len() <= MAX_MESSAGE_ID_BYTES {
        return id.to_string();
    }
    use sha2::Digest as _;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(id.as_bytes()))
    )
}

/// Everything the consume loop needs besides the handler.
#[derive(Clone)]
pub struct ConsumeOptions {
    pub service: String,
    pub stream: Stream,
    pub subjects: Subjects,
    pub settings: ConsumerSettings,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
    /// Seals a payload before it goes to the dead-letter stream, for services whose input
    /// may hold personal data (intake); `None` keeps payloads as they are.
    pub seal_dead_letters: Option<SealFn>,
    /// The broker's largest message (`max_payload`): a dead letter that would be larger keeps
    /// only the start of the payload, or it could never be written and its message would be
    /// retried for ever.
    pub max_payload: usize,
}

/// Turns a payload into its sealed form (see [`ConsumeOptions::seal_dead_letters`]).
pub type SealFn = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// Hands the handler every message that is already waiting, up to `consumer.batch_size`, so
/// that it deals with a burst in one transaction; at most `consumer.batches_in_flight`
/// batches run at once. Under light load a batch is a single message, so batching adds no
/// latency; under load, messages gather while the running batches commit and the next batch
/// takes them all (group commit), so the statements and commits per message fall as the load
/// rises. The handler returns one outcome per delivery, in order; each message is acked only
/// after the handler returned (so after its transaction committed), and one that keeps
/// failing is dead-lettered on its last allowed delivery instead of being dropped by the
/// broker.
pub async fn consume_batches<F, Fut>(
    js: jetstream::Context,
    consumer: PullConsumer,
    options: ConsumeOptions,
    handler: F,
) -> anyhow::Result<()>
where
    F: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Outcome>> + Send + 'static,
{
    use futures::FutureExt;
    let handler = Arc::new(handler);
    let batch_size = options.settings.batch_size.max(1);
    let in_flight = options.settings.batches_in_flight.max(1);
    let linger = Duration::from_millis(options.settings.linger_ms);
    let permits = Arc::new(Semaphore::new(in_flight));
    let stream_name = options.subjects.stream_name(options.stream);
    'outer: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(batch_size * in_flight)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open message stream, retrying");
                tokio::select! {
                    _ = options.shutdown.cancelled() => break 'outer,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'outer,
                }
            }
        };
        loop {
            let permit = tokio::select! {
                _ = options.shutdown.cancelled() => break 'outer,
                p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            };
            let first = tokio::select! {
                _ = options.shutdown.cancelled() => break 'outer,
                n = messages.next() => n,
            };
            let mut batch = Vec::new();
            let mut reopen = false;
            let mut lingering: Option<Instant> = None;
            let mut next = first;
            loop {
                match next {
                    Some(Ok(m)) => batch.push(m),
                    // Missed heartbeats and the like while the broker restarts: keep pulling.
                    Some(Err(e)) => tracing::debug!(error = %e, "pull stream error"),
                    None => {
                        reopen = true;
                        break;
                    }
                }
                if batch.len() >= batch_size {
                    break;
                }
                // Only what is already here, unless the consumer lingers for more.
                match messages.next().now_or_never() {
                    Some(n) => next = n,
                    None if linger.is_zero() => break,
                    None => {
                        let deadline = *lingering.get_or_insert_with(|| Instant::now() + linger);
                        tokio::select! {
                            _ = options.shutdown.cancelled() => break,
                            _ = tokio::time::sleep_until(deadline) => break,
                            n = messages.next() => next = n,
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let handler = handler.clone();
                let js = js.clone();
                let options = options.clone();
                let stream_name = stream_name.clone();
                crate::telemetry::spawn(async move {
                    let _permit = permit;
                    let deliveries: Vec<Delivery> = batch
                        .iter()
                        .map(|message| {
                            let (stream_sequence, delivered) = match message.info() {
                                Ok(i) => (i.stream_sequence, i.delivered),
                                Err(_) => (0, 1),
                            };
                            Delivery {
                                subject: message.subject.to_string(),
                                payload: message.payload.clone(),
                                headers: message.headers.clone(),
                                stream_sequence,
                                delivered,
                            }
                        })
                        .collect();
                    let outcomes = handler(deliveries).await;
                    debug_assert_eq!(outcomes.len(), batch.len());
                    let settle = batch.iter().zip(outcomes).map(|(message, outcome)| {
                        settle(&js, &options, &stream_name, message, outcome)
                    });
                    futures::future::join_all(settle).await;
                });
            }
            if reopen {
                continue 'outer;
            }
        }
    }
    // Let in-flight batches finish and ack before returning.
    let _ = permits.acquire_many(in_flight as u32).await;
    Ok(())
}

/// Acks, retries or dead-letters one message according to its outcome.
async fn settle(
    js: &jetstream::Context,
    options: &ConsumeOptions,
    stream_name: &str,
    message: &jetstream::Message,
    outcome: Outcome,
) {
    if let Outcome::Ack = outcome {
        if let Err(e) = message.ack().await {
            // The broker redelivers after AckWait; the inbox makes that harmless.
            tracing::warn!(error = %e, "ack failed");
        }
        return;
    }
    let (stream_sequence, delivered) = match message.info() {
        Ok(i) => (i.stream_sequence, i.delivered),
        Err(_) => (0, 1),
    };
    let delivery = &Delivery {
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        headers: None,
        stream_sequence,
        delivered,
    };
    let last_try = delivery.delivered >= options.settings.max_deliver;
    let result = match outcome {
        Outcome::Ack => unreachable!("acked above"),
        Outcome::Retry(reason) if !last_try => {
            options
                .metrics
                .incr(&format!("{}_retries_total", options.service));
            tracing::warn!(%reason, delivered = delivery.delivered, "handling failed, will retry");
            message
                .ack_with(AckKind::Nak(Some(retry_delay(
                    &options.settings,
                    delivery.delivered,
                ))))
                .await
        }
        Outcome::Retry(reason) | Outcome::DeadLetter(reason) => {
            let reason = if last_try {
                format!("gave up after {} deliveries: {reason}", delivery.delivered)
            } else {
                reason
            };
            match dead_letter(js, options, stream_name, delivery, &reason).await {
                Ok(()) => message.ack_with(AckKind::Term).await,
                Err(e) => {
                    tracing::error!(error = %e, "cannot dead-letter, will retry");
                    message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                }
            }
        }
    };
    if let Err(e) = result {
        // The broker redelivers after AckWait; the inbox makes that harmless.
        tracing::warn!(error = %e, "ack failed");
    }
}

/// Exponential backoff from `retry_delay_ms`, capped at `max_retry_delay_ms`, so that an outage
/// of the database is ridden out rather than burning through `max_deliver` in seconds.
pub fn retry_delay(settings: &ConsumerSettings, delivered: i64) -> Duration {
    let exp = delivered.clamp(1, 20) as u32 - 1;
    let ms = settings.retry_delay_ms.saturating_mul(1u64 << exp);
    Duration::from_millis(ms.min(settings.max_retry_delay_ms))
}

/// Publishes a message that cannot be handled to `<root>.dlq.<service>` with the reason, and
/// counts it.
pub async fn dead_letter(
    js: &jetstream::Context,
    options: &ConsumeOptions,
    stream_name: &str,
    delivery: &Delivery,
    reason: &str,
) -> anyhow::Result<()> {
    tracing::error!(subject = %delivery.subject, %reason, "message dead-lettered");
    options
        .metrics
        .incr(&format!("{}_dead_letters_total", options.service));
    let mut letter = DeadLetter {
        service: options.service.clone(),
        original_subject: delivery.subject.clone(),
        stream: stream_name.to_string(),
        stream_sequence: delivery.stream_sequence,
        reason: reason.to_string(),
        dead_at: Some(redress_proto::time::from_unix_micros(
            chrono::Utc::now().timestamp_micros(),
        )),
        payload: match &options.seal_dead_letters {
            Some(seal) => seal(&delivery.payload),
            None => delivery.payload.to_vec(),
        },
        payload_sealed: options.seal_dead_letters.is_some(),
    };
    // Room for the headers and the envelope around the payload.
    let room = options.max_payload.saturating_sub(8 * 1024);
    if letter.encoded_len() > room {
        let full = letter.payload.len();
        letter
            .payload
            .truncate(room.saturating_sub(letter.encoded_len() - full));
        letter.reason = format!(
            "{} (payload of {full} bytes cut to its first {})",
            letter.reason,
            letter.payload.len()
        );
    }
    let mut h = HeaderMap::new();
    h.insert(
        headers::MSG_ID,
        format!(
            "dlq:{}:{stream_name}:{}",
            options.service, delivery.stream_sequence
        )
        .as_str(),
    );
    h.insert(headers::DEAD_LETTER_REASON, one_line(reason).as_str());
    js.publish_with_headers(
        options.subjects.dead_letter(&options.service),
        h,
        letter.encode_to_vec().into(),
    )
    .await?
    .await?;
    Ok(())
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect()
}

/// Publishes to a stream and waits for the broker's acknowledgement.
pub async fn publish_acked(
    js: &jetstream::Context,
    subject: String,
    msg_id: &str,
    payload: Bytes,
) -> anyhow::Result<()> {
    let mut h = HeaderMap::new();
    h.insert(headers::MSG_ID, msg_id);
    crate::telemetry::inject_context(&mut h);
    js.publish_with_headers(subject, h, payload)
        .instrument(tracing::debug_span!("publish"))
        .await?
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_message_ids_are_stored_by_their_hash() {
        assert_eq!(bounded_id("sms:m-1"), "sms:m-1");
        let long = "x".repeat(3000);
        let bounded = bounded_id(&long);
        assert!(bounded.starts_with("sha256:") && bounded.len() == 71);
        assert_eq!(bounded, bounded_id(&long));
    }

    #[test]
    fn retries_back_off_up_to_the_cap() {
        let s = ConsumerSettings {
            ack_wait_secs: 30,
            max_deliver: 100,
            max_ack_pending: 10,
            concurrency: 1,
            batch_size: 1,
            batches_in_flight: 1,
            linger_ms: 0,
            retry_delay_ms: 1000,
            max_retry_delay_ms: 30_000,
        };
        let d: Vec<u64> = (1..=7)
            .map(|n| retry_delay(&s, n).as_millis() as u64)
            .collect();
        assert_eq!(d, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(retry_delay(&s, 1_000_000), Duration::from_secs(30));
    }
}
