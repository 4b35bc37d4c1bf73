//! `SubmitComplaint` from the submissions stream (channel adapters' fire-and-forget path).
//! Whatever has queued up is registered together, in one transaction.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::nats::{Delivery, Outcome, publish_acked};
use redress_proto::subjects::Stream;
use redress_proto::v1::{SubmissionRejected, SubmitComplaint};
use tracing::Instrument;

use super::count_rejection;
use crate::Intake;
use crate::domain::submission::{FieldError, ValidSubmission};
use crate::register::{Item, register_batch};

pub async fn handle_batch(intake: Arc<Intake>, deliveries: Vec<Delivery>) -> Vec<Outcome> {
    let subjects = &intake.ctx.subjects;
    let stream = subjects.stream_name(Stream::Submissions);
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(deliveries.len());
    let mut items = Vec::new();
    let mut positions = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        // Each submission keeps the trace its adapter started, batch or no batch.
        let span = tracing::info_span!(
            "submission",
            otel.name = "intake.complaint.submit",
            redress.service = crate::IDENT.name,
            subject = %d.subject,
            ticket = tracing::field::Empty,
            complaint_id = tracing::field::Empty,
        );
        redress_platform::telemetry::set_parent_from_headers(&span, d.headers.as_ref());
        let msg = match SubmitComplaint::decode(d.payload.clone()) {
            Ok(m) => m,
            Err(e) => {
                intake
                    .ctx
                    .metrics
                    .incr("intake_rejected_total{code=\"undecodable\",field=\"\"}");
                outcomes.push(Some(Outcome::DeadLetter(format!(
                    "not a SubmitComplaint: {e}"
                ))));
                continue;
            }
        };
        let Some(channel) = subjects.channel_of_submit(&d.subject) else {
            outcomes.push(Some(Outcome::DeadLetter(format!(
                "not a submit subject: {}",
                d.subject
            ))));
            continue;
        };
        let external_id = msg.external_id.clone();
        match ValidSubmission::parse(msg, Some(channel), &intake.limits, intake.ctx.clock.now()) {
            Ok(sub) => {
                outcomes.push(None);
                positions.push(i);
                items.push(Item {
                    sub,
                    inbox_id: Some(d.message_id(&stream)),
                    span,
                });
            }
            Err(error) => {
                span.in_scope(|| count_rejection(&intake, &error));
                let inbox_id = d.message_id(&stream);
                outcomes.push(Some(
                    reject(&intake, channel, external_id, &inbox_id, error)
                        .instrument(span)
                        .await,
                ));
            }
        }
    }
    if !items.is_empty() {
        match guarded(register_batch(&intake, &items)).await {
            Ok(answers) => {
                for (k, &i) in positions.iter().enumerate() {
                    if answers[k].duplicate {
                        intake.ctx.metrics.incr("intake_duplicates_total");
                    }
                    outcomes[i] = Some(Outcome::Ack);
                }
            }
            Err(e) if items.len() == 1 => outcomes[positions[0]] = Some(settle(&intake, e)),
            Err(e) => {
                // One of them may be at fault: each alone, so the others go through.
                tracing::warn!(error = %e, batch = items.len(), "registration failed; one by one");
                for (item, &i) in items.iter().zip(&positions) {
                    let one = std::slice::from_ref(item);
                    outcomes[i] = Some(match guarded(register_batch(&intake, one)).await {
                        Ok(answers) => {
                            if answers[0].duplicate {
                                intake.ctx.metrics.incr("intake_duplicates_total");
                            }
                            Outcome::Ack
                        }
                        Err(e) => item.span.in_scope(|| settle(&intake, e)),
                    });
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every delivery has an outcome"))
        .collect()
}

/// Why registering failed: the database (for now or for good) or a panic.
enum Failed {
    Db(redress_platform::unit::CommitError),
    Panicked(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Db(e) => write!(f, "{e}"),
            Failed::Panicked(what) => write!(f, "registration panicked: {what}"),
        }
    }
}

async fn guarded<T>(
    work: impl Future<Output = Result<T, redress_platform::unit::CommitError>>,
) -> Result<T, Failed> {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(Failed::Db(e)),
        Err(panic) => Err(Failed::Panicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into()),
        )),
    }
}

/// A submission that cannot be registered for good is dead-lettered (sealed, with the
/// reason); anything else is delivered again later.
fn settle(intake: &Intake, failed: Failed) -> Outcome {
    match &failed {
        Failed::Db(e) if !e.is_permanent() => Outcome::Retry(failed.to_string()),
        _ => {
            intake.ctx.metrics.incr("intake_unregistrable_total");
            tracing::error!(reason = %failed, "submission cannot be registered");
            Outcome::DeadLetter(failed.to_string())
        }
    }
}

/// Tells the adapter why, since it did not wait for a reply.
pub(crate) async fn reject(
    intake: &Intake,
    channel: &str,
    external_id: String,
    inbox_id: &str,
    error: FieldError,
) -> Outcome {
    let notice = SubmissionRejected {
        channel: channel.to_string(),
        external_id,
        error: Some(redress_proto::v1::SubmitError {
            code: error.code as i32,
            field: error.field.clone(),
            message: error.message.clone(),
        }),
    };
    match publish_acked(
        &intake.ctx.js,
        intake.ctx.subjects.notify_rejected(channel),
        &format!("rejected:{inbox_id}"),
        notice.encode_to_vec().into(),
    )
    .await
    {
        Ok(()) => Outcome::Ack,
        Err(e) => Outcome::Retry(format!("publishing the rejection: {e}")),
    }
}
