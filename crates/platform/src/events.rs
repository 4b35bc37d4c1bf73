//! Consuming the events stream in batches. A service declares one [`Handler`]: which events
//! it takes ([`Handler::parse`], outside any transaction) and how it applies them inside a
//! [`Unit`]. The kit does the rest for every service alike: decoding, dead letters, one span
//! per event in the trace the event came with, one transaction for whatever has queued up,
//! the inbox for the whole batch in one statement, and, when a batch fails, the same events
//! again one by one so that one bad message never holds the others back.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_proto::EventKind;
use redress_proto::subjects::{self, Stream, Subjects};
use redress_proto::v1::{Envelope, envelope::Payload};
use tracing::Instrument;

use crate::envelope::Cause;
use crate::nats::{ConsumeOptions, Delivery, Outcome, consume_batches, durable_consumer};
use crate::outbox::Outgoing;
use crate::service::ServiceContext;
use crate::unit::{Store, Unit};

/// An event that decoded, with what the broker said about its delivery.
#[derive(Debug, Clone)]
pub struct Event {
    /// The envelope's fields; its payload is moved to [`Event::payload`].
    pub envelope: Envelope,
    pub payload: Payload,
    pub kind: EventKind,
    /// The id under which the event goes into an inbox (its event id).
    pub message_id: String,
    pub delivery: Delivery,
    /// The span the event is handled in: `<service>.<event name>`, a child of the span that
    /// published it, carrying the complaint's ticket and id.
    pub span: tracing::Span,
}

impl Event {
    /// The cause to hand on to the events this one leads to: same complaint, ticket,
    /// correlation and playbook, caused by this event.
    pub fn cause(&self) -> Option<Cause> {
        Some(Cause {
            complaint_id: self.envelope.complaint_id.parse().ok()?,
            ticket: self.envelope.ticket.clone(),
            causation_id: self.envelope.event_id.clone(),
            correlation_id: self.envelope.correlation_id.clone(),
            playbook: self.envelope.playbook.clone(),
        })
    }

    pub fn complaint_id(&self) -> Option<uuid::Uuid> {
        self.envelope.complaint_id.parse().ok()
    }

    /// When the producer says it happened.
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        redress_proto::time::opt_to_chrono(&self.envelope.occurred_at)
    }
}

/// The outbox message that publishes `envelope` on its catalogue subject; the event id is the
/// `Nats-Msg-Id`, so a republished event is dropped by the broker.
pub fn outgoing(subjects: &Subjects, envelope: &Envelope) -> Outgoing {
    let subject = match &envelope.payload {
        Some(p) => p.subject(subjects),
        None => subjects.event("unknown"),
    };
    Outgoing::new(subject, envelope.event_id.clone(), envelope.encode_to_vec())
}

/// What a service makes of an event before any transaction.
pub enum Parsed<T> {
    /// Not for this service: acknowledged untouched.
    Skip,
    /// To be applied, with what the service read from it.
    Handle(T),
    /// Breaks the contract (a missing field, an unknown playbook): dead-lettered with the
    /// reason, never retried.
    Reject(String),
}

impl<T> Parsed<T> {
    /// What to handle, turned into another type (one service's input enum).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Parsed::Skip => Parsed::Skip,
            Parsed::Handle(t) => Parsed::Handle(f(t)),
            Parsed::Reject(why) => Parsed::Reject(why),
        }
    }
}

/// Why applying events failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Retried later, unless the error is permanent (see [`crate::db::is_permanent`]), in
    /// which case the one event that causes it is dead-lettered.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The event can never be applied; only the state showed it. Its unit is rolled back and
    /// it is dead-lettered with the reason.
    #[error("{0}")]
    Reject(String),
    /// Something the event needs is not there yet (a key another service is about to write)
    /// or cannot be reached: retried later.
    #[error("{0}")]
    Retry(String),
}

impl From<crate::unit::CommitError> for Failure {
    fn from(e: crate::unit::CommitError) -> Self {
        match e {
            crate::unit::CommitError::Db(e) => Failure::Db(e),
            too_large => Failure::Reject(too_large.to_string()),
        }
    }
}

/// How a service applies the events it consumes. Handlers are written so that any order and
/// any repetition reach the same state; the kit guarantees only that each event id is applied
/// once (the inbox) and that a unit commits all its events or none.
pub trait Handler: Send + Sync + 'static {
    /// What the service reads from an event before touching the database.
    type Input: Send + Sync + 'static;

    /// Decides whether and how the event is handled, before its span is opened (a skipped
    /// event has none).
    fn parse(&self, event: &Event) -> Parsed<Self::Input>;

    /// Applies one event in `unit`; runs in the event's span, so events it emits continue the
    /// event's trace.
    fn apply(
        &self,
        unit: &mut Unit,
        event: &Event,
        input: &Self::Input,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Applies a batch in `unit`, in order. By default one [`Handler::apply`] after another;
    /// a service overrides it to apply a burst with set-based statements.
    fn apply_batch(
        &self,
        unit: &mut Unit,
        batch: &[(&Event, &Self::Input)],
    ) -> impl Future<Output = Result<(), Failure>> + Send {
        async move {
            for (event, input) in batch {
                self.apply(unit, event, input)
                    .instrument(event.span.clone())
                    .await?;
            }
            Ok(())
        }
    }
}

/// Which events a service consumes.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Every event, on one durable consumer (`<service>-events`).
    All,
    /// The events on one subject of the events stream (a wildcard, such as `work.>`), on one
    /// durable consumer (`<service>-events`).
    Subject(String),
    /// These kinds only, each on its own durable consumer (`<service>-<kind>`, filtering on
    /// the kind's subject), so that the broker delivers nothing the service would drop
    /// (nats-server 2.9 allows one filter subject per consumer).
    Kinds(Vec<EventKind>),
}

impl Filter {
    /// Each durable consumer's name and filter subject.
    pub fn consumers(&self, service: &str, subjects: &Subjects) -> Vec<(String, String)> {
        match self {
            Filter::All => vec![(subjects::events_consumer(service), subjects.all_events())],
            Filter::Subject(s) => vec![(subjects::events_consumer(service), s.clone())],
            Filter::Kinds(kinds) => kinds
                .iter()
                .map(|k| {
                    (
                        format!("{service}-{}", k.name().replace('.', "-")),
                        subjects.event_of(*k),
                    )
                })
                .collect(),
        }
    }
}

/// Starts the service's consumer of the events on `filter` (a subject of the events stream)
/// under the durable name `durable`, applying them with `handler`.
pub async fn spawn_consumer<H: Handler>(
    ctx: &ServiceContext,
    store: Store,
    service: &'static str,
    durable: &str,
    filter: String,
    handler: Arc<H>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let consumer = durable_consumer(
        &ctx.js,
        &ctx.subjects,
        Stream::Events,
        durable,
        filter,
        &ctx.config.settings.consumer,
    )
    .await?;
    let options = ConsumeOptions {
        service: service.to_string(),
        stream: Stream::Events,
        subjects: ctx.subjects.clone(),
        settings: ctx.config.settings.consumer.clone(),
        metrics: ctx.metrics.clone(),
        shutdown: ctx.shutdown.clone(),
        // Events never carry contact details.
        seal_dead_letters: None,
        max_payload: ctx.nats.server_info().max_payload,
    };
    let stream_name = Arc::new(ctx.subjects.stream_name(Stream::Events));
    let event_subjects = Arc::new(ctx.subjects.clone());
    Ok(crate::telemetry::spawn(consume_batches(
        ctx.js.clone(),
        consumer,
        options,
        move |deliveries| {
            let handler = handler.clone();
            let store = store.clone();
            let stream_name = stream_name.clone();
            let subjects = event_subjects.clone();
            async move {
                handle_batch(
                    service,
                    &store,
                    &*handler,
                    &subjects,
                    &stream_name,
                    deliveries,
                )
                .await
            }
        },
    )))
}

/// Decodes one delivery into an event (its span not opened yet), or says why it cannot be
/// one.
fn decode(subjects: &Subjects, stream_name: &str, delivery: Delivery) -> Result<Event, String> {
    let mut envelope =
        Envelope::decode(delivery.payload.clone()).map_err(|e| format!("not an Envelope: {e}"))?;
    // Kept once, in `Event::payload`; the envelope keeps the rest.
    let Some(payload) = envelope.payload.take() else {
        return Err(format!(
            "envelope {} on {} has no payload this version knows",
            envelope.event_id, delivery.subject
        ));
    };
    let kind = payload.kind();
    // Each kind has one producer and one subject: an envelope that claims another producer,
    // or that travels where its kind does not, is not the event it pretends to be.
    if envelope.producer != kind.producer() {
        return Err(format!(
            "{kind} {} names producer {:?}; only {} publishes it",
            envelope.event_id,
            envelope.producer,
            kind.producer()
        ));
    }
    let expected = payload.subject(subjects);
    if delivery.subject.as_str() != expected {
        return Err(format!(
            "{kind} {} arrived on {}; it belongs on {expected}",
            envelope.event_id, delivery.subject
        ));
    }
    let message_id = if envelope.event_id.is_empty() {
        delivery.message_id(stream_name)
    } else {
        envelope.event_id.clone()
    };
    Ok(Event {
        envelope,
        payload,
        kind,
        message_id,
        delivery,
        span: tracing::Span::none(),
    })
}

/// Opens the span an event the service takes is handled in: a child of the trace the event
/// came with. Events a service skips get none, so a trace shows only what was done.
fn open_span(service: &str, event: &mut Event) {
    let envelope = &event.envelope;
    let span = tracing::info_span!(
        "event",
        otel.name = %format_args!("{service}.{}", event.kind.name()),
        redress.service = service,
        event = event.kind.name(),
        ticket = %envelope.ticket,
        complaint_id = %envelope.complaint_id,
        event_id = %envelope.event_id,
        producer = %envelope.producer,
    );
    crate::telemetry::set_parent_from_headers(&span, event.delivery.headers.as_ref());
    event.span = span;
}

async fn handle_batch<H: Handler>(
    service: &'static str,
    store: &Store,
    handler: &H,
    subjects: &Subjects,
    stream_name: &str,
    deliveries: Vec<Delivery>,
) -> Vec<Outcome> {
    let metrics = store.metrics();
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(deliveries.len());
    let mut todo: Vec<(usize, Event, H::Input)> = Vec::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let mut event = match decode(subjects, stream_name, delivery) {
            Ok(event) => event,
            Err(reason) => {
                metrics.incr(&format!("{service}_contract_violations_total"));
                outcomes.push(Some(Outcome::DeadLetter(reason)));
                continue;
            }
        };
        match handler.parse(&event) {
            Parsed::Skip => outcomes.push(Some(Outcome::Ack)),
            Parsed::Reject(reason) => {
                open_span(service, &mut event);
                metrics.incr(&format!("{service}_contract_violations_total"));
                event.span.in_scope(|| {
                    tracing::warn!(%reason, "event refused");
                });
                outcomes.push(Some(Outcome::DeadLetter(reason)));
            }
            Parsed::Handle(input) => {
                open_span(service, &mut event);
                outcomes.push(None);
                todo.push((i, event, input));
            }
        }
    }
    if !todo.is_empty() {
        // Events of one complaint keep their order; across complaints, every unit takes its
        // row locks in the same (complaint) order, so concurrent batches wait instead of
        // deadlocking.
        todo.sort_by(|a, b| a.1.envelope.complaint_id.cmp(&b.1.envelope.complaint_id));
        let items: Vec<(&Event, &H::Input)> = todo.iter().map(|(_, e, i)| (e, i)).collect();
        match guarded(run_unit(store, handler, &items)).await {
            Ok(()) => {
                for (i, _, _) in &todo {
                    outcomes[*i] = Some(Outcome::Ack);
                }
                metrics.add(
                    &format!("{service}_events_applied_total"),
                    todo.len() as u64,
                );
            }
            Err(e) if todo.len() == 1 => {
                outcomes[todo[0].0] = Some(settle_failure(service, store, &todo[0].1, e));
            }
            Err(e) => {
                // One of them may be at fault: each alone, so the others go through.
                tracing::warn!(error = %e, events = todo.len(), "batch failed; applying one by one");
                metrics.incr(&format!("{service}_batches_split_total"));
                for (i, event, input) in &todo {
                    let outcome = match guarded(run_unit(store, handler, &[(event, input)])).await {
                        Ok(()) => {
                            metrics.incr(&format!("{service}_events_applied_total"));
                            Outcome::Ack
                        }
                        Err(e) => settle_failure(service, store, event, e),
                    };
                    outcomes[*i] = Some(outcome);
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every delivery has an outcome"))
        .collect()
}

/// Runs a unit, turning a panic in a handler into the refusal of what it was applying (its
/// transaction rolls back as the unit is dropped): one bad event cannot stop the consumer.
async fn guarded(unit: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(unit).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Failure::Reject(format!("the handler panicked: {what}")))
        }
    }
}

/// One unit of work over `items`: the inbox for all of them, the handler on those not seen
/// before, commit.
async fn run_unit<H: Handler>(
    store: &Store,
    handler: &H,
    items: &[(&Event, &H::Input)],
) -> Result<(), Failure> {
    let mut unit = store.begin().await?;
    let ids: Vec<&str> = items.iter().map(|(e, _)| e.message_id.as_str()).collect();
    let mut new = crate::inbox::record_all(unit.db(), &ids).await?;
    // A message delivered twice into one batch is applied once.
    let fresh: Vec<(&Event, &H::Input)> = items
        .iter()
        .filter(|(e, _)| new.remove(&e.message_id))
        .copied()
        .collect();
    if !fresh.is_empty() {
        handler.apply_batch(&mut unit, &fresh).await?;
    }
    unit.commit().await?;
    Ok(())
}

fn settle_failure(service: &str, store: &Store, event: &Event, e: Failure) -> Outcome {
    let _span = event.span.enter();
    match e {
        Failure::Reject(reason) => {
            store
                .metrics()
                .incr(&format!("{service}_contract_violations_total"));
            tracing::warn!(%reason, "event refused");
            Outcome::DeadLetter(reason)
        }
        Failure::Db(e) if crate::db::is_permanent(&e) => {
            tracing::error!(error = %e, "event cannot be stored");
            Outcome::DeadLetter(format!("permanent database error: {e}"))
        }
        Failure::Db(e) => Outcome::Retry(format!("database: {e}")),
        Failure::Retry(reason) => Outcome::Retry(reason),
    }
}
