//! Consuming the events stream: one durable consumer per service over every event, decoded
//! into the envelope, with the trace continued from the message headers.

use std::future::Future;
use std::sync::Arc;

use prost::Message as _;
use redress_proto::subjects::{self, Stream};
use redress_proto::v1::{Envelope, envelope::Payload};
use tracing::Instrument;

use crate::envelope::Cause;
use crate::nats::{ConsumeOptions, Delivery, Outcome, consume, durable_consumer};
use crate::outbox::Outgoing;
use crate::service::ServiceContext;

/// An event that decoded, with what the broker said about its delivery.
#[derive(Debug, Clone)]
pub struct Event {
    pub envelope: Envelope,
    pub payload: Payload,
    /// The id under which the event goes into an inbox (its event id).
    pub message_id: String,
    pub delivery: Delivery,
}

impl Event {
    /// The cause to hand on to the events this one leads to: same complaint, correlation and
    /// playbook, caused by this event.
    pub fn cause(&self) -> Option<Cause> {
        Some(Cause {
            complaint_id: self.envelope.complaint_id.parse().ok()?,
            causation_id: self.envelope.event_id.clone(),
            correlation_id: self.envelope.correlation_id.clone(),
            playbook: self.envelope.playbook.clone(),
        })
    }

    pub fn complaint_id(&self) -> Option<uuid::Uuid> {
        self.envelope.complaint_id.parse().ok()
    }
}

/// The outbox message that publishes `envelope` on `subject`; the event id is the
/// `Nats-Msg-Id`, so a republished event is dropped by the broker.
pub fn outgoing(subject: String, envelope: &Envelope) -> Outgoing {
    Outgoing {
        msg_id: envelope.event_id.clone(),
        subject,
        payload: envelope.encode_to_vec(),
    }
}

/// Starts the service's consumer of the events on `filter` (one subject or wildcard of the
/// events stream, such as [`Subjects::all_events`]; nats-server 2.9 allows one per consumer).
/// `handler` sees each decoded event once per delivery and says what to do with it; events a
/// service does not care about should be acknowledged at once. Undecodable messages and
/// envelopes without a payload are dead-lettered with the reason.
///
/// [`Subjects::all_events`]: redress_proto::subjects::Subjects::all_events
pub async fn spawn_consumer<F, Fut>(
    ctx: &ServiceContext,
    service: &'static str,
    filter: String,
    handler: F,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>>
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let consumer = durable_consumer(
        &ctx.js,
        &ctx.subjects,
        Stream::Events,
        &subjects::events_consumer(service),
        filter,
        &ctx.config.settings.consumer,
    )
    .await?;
    let handler = Arc::new(handler);
    let options = ConsumeOptions {
        service: service.to_string(),
        stream: Stream::Events,
        subjects: ctx.subjects.clone(),
        settings: ctx.config.settings.consumer.clone(),
        metrics: ctx.metrics.clone(),
        shutdown: ctx.shutdown.clone(),
        // Events never carry contact details.
        seal_dead_letters: None,
    };
    let stream_name = ctx.subjects.stream_name(Stream::Events);
    let metrics = ctx.metrics.clone();
    Ok(tokio::spawn(consume(
        ctx.js.clone(),
        consumer,
        options,
        move |delivery| {
            let handler = handler.clone();
            let stream_name = stream_name.clone();
            let metrics = metrics.clone();
            async move {
                let envelope = match Envelope::decode(delivery.payload.clone()) {
                    Ok(e) => e,
                    Err(e) => return Outcome::DeadLetter(format!("not an Envelope: {e}")),
                };
                let Some(payload) = envelope.payload.clone() else {
                    metrics.incr(&format!("{service}_contract_violations_total"));
                    return Outcome::DeadLetter(format!(
                        "envelope {} on {} has no payload this version knows",
                        envelope.event_id, delivery.subject
                    ));
                };
                let span = tracing::info_span!(
                    "event",
                    service,
                    subject = %delivery.subject,
                    event_id = %envelope.event_id,
                    complaint_id = %envelope.complaint_id,
                );
                crate::telemetry::set_parent_from_headers(&span, delivery.headers.as_ref());
                let message_id = if envelope.event_id.is_empty() {
                    delivery.message_id(&stream_name)
                } else {
                    envelope.event_id.clone()
                };
                handler(Event {
                    envelope,
                    payload,
                    message_id,
                    delivery,
                })
                .instrument(span)
                .await
            }
        },
    )))
}

/// Maps a database error to the consumer's decision: retried later, since the database
/// coming back is the usual cure.
pub fn retry(e: sqlx::Error) -> Outcome {
    Outcome::Retry(format!("database: {e}"))
}
