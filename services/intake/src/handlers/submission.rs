//! `SubmitComplaint` from the submissions stream (channel adapters' fire-and-forget path).

use std::sync::Arc;

use prost::Message as _;
use redress_platform::nats::{Delivery, Outcome, publish_acked};
use redress_proto::subjects::Stream;
use redress_proto::v1::{SubmissionRejected, SubmitComplaint};
use tracing::Instrument;

use super::{Refusal, accept};
use crate::Intake;

pub async fn handle(intake: Arc<Intake>, delivery: Delivery) -> Outcome {
    let span = tracing::info_span!(
        "intake.submission",
        subject = %delivery.subject,
        stream_seq = delivery.stream_sequence,
        ticket = tracing::field::Empty,
    );
    redress_platform::telemetry::set_parent_from_headers(&span, delivery.headers.as_ref());
    async move {
        let subjects = &intake.ctx.subjects;
        let msg = match SubmitComplaint::decode(delivery.payload.clone()) {
            Ok(m) => m,
            Err(e) => {
                intake
                    .ctx
                    .metrics
                    .incr("intake_rejected_total{code=\"undecodable\",field=\"\"}");
                return Outcome::DeadLetter(format!("not a SubmitComplaint: {e}"));
            }
        };
        let Some(channel) = subjects
            .channel_of_submit(&delivery.subject)
            .map(str::to_string)
        else {
            return Outcome::DeadLetter(format!("not a submit subject: {}", delivery.subject));
        };
        let external_id = msg.external_id.clone();
        let inbox_id = delivery.message_id(&subjects.stream_name(Stream::Submissions));
        match accept(&intake, msg, Some(&channel), Some(&inbox_id)).await {
            Ok(accepted) => {
                tracing::Span::current().record("ticket", accepted.ticket.as_str());
                Outcome::Ack
            }
            Err(Refusal::Invalid(error)) => {
                // Tell the adapter why, since it did not wait for a reply.
                let notice = SubmissionRejected {
                    channel: channel.clone(),
                    external_id,
                    error: Some(redress_proto::v1::SubmitError {
                        code: error.code as i32,
                        field: error.field.clone(),
                        message: error.message.clone(),
                    }),
                };
                match publish_acked(
                    &intake.ctx.js,
                    subjects.notify_rejected(&channel),
                    &format!("rejected:{inbox_id}"),
                    notice.encode_to_vec().into(),
                )
                .await
                {
                    Ok(()) => Outcome::Ack,
                    Err(e) => Outcome::Retry(format!("publishing the rejection: {e}")),
                }
            }
            Err(Refusal::Unavailable(e)) => Outcome::Retry(e.to_string()),
        }
    }
    .instrument(span)
    .await
}
