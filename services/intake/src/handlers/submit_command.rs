//! `SubmitComplaint` as a request (an adapter that wants its ticket number at once).

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_proto::v1::submit_complaint_result::Outcome;
use redress_proto::v1::{SubmitComplaint, SubmitComplaintResult, SubmitError, SubmitErrorCode};
use tracing::Instrument;

use super::{Refusal, accept};
use crate::Intake;

pub async fn handle(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let span = tracing::info_span!(
        "command",
        otel.name = "intake.complaint.submit",
        redress.service = crate::IDENT.name,
        ticket = tracing::field::Empty,
        complaint_id = tracing::field::Empty,
    );
    redress_platform::telemetry::set_parent_from_headers(&span, message.headers.as_ref());
    let outcome = async {
        let msg = match SubmitComplaint::decode(message.payload.clone()) {
            Ok(m) => m,
            Err(e) => {
                intake
                    .ctx
                    .metrics
                    .incr("intake_rejected_total{code=\"undecodable\",field=\"\"}");
                return error(
                    SubmitErrorCode::Undecodable,
                    "",
                    format!("not a SubmitComplaint: {e}"),
                );
            }
        };
        match accept(&intake, msg).await {
            Ok(mut accepted) => {
                tracing::Span::current().record("ticket", accepted.ticket.as_str());
                if let Ok(id) = uuid::Uuid::parse_str(&accepted.complaint_id) {
                    accepted.status_secret = intake.cipher.status_secret(&id);
                }
                Outcome::Accepted(accepted)
            }
            Err(Refusal::Invalid(e)) => error(e.code, &e.field, e.message),
            Err(Refusal::Unavailable(e)) if e.is_permanent() => {
                // Validation lets nothing through that the database refuses; should something
                // slip past it, the sender learns it must change the request, not resend it.
                tracing::warn!(error = %e, "the complaint cannot be stored");
                error(
                    SubmitErrorCode::Malformed,
                    "",
                    format!("the complaint cannot be stored as it is: {e}"),
                )
            }
            Err(Refusal::Unavailable(e)) => {
                tracing::error!(error = %e, "registering failed");
                error(
                    SubmitErrorCode::Internal,
                    "",
                    "the complaint could not be stored right now; send it again".into(),
                )
            }
        }
    }
    .instrument(span)
    .await;
    SubmitComplaintResult {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

fn error(code: SubmitErrorCode, field: &str, message: String) -> Outcome {
    Outcome::Error(SubmitError {
        code: code as i32,
        field: field.to_string(),
        message,
    })
}
