//! One module per message intake handles.

pub(crate) mod complainant;
pub mod erase;
pub mod evidence;
pub mod respond;
pub mod status;
pub mod status_query;
pub mod submission;
pub mod submit_command;
pub mod track;
pub mod withdraw;

use redress_proto::v1::{SubmitAccepted, SubmitComplaint};

use crate::Intake;
use crate::domain::submission::{FieldError, ValidSubmission};

pub(crate) enum Refusal {
    /// The submission is wrong; nothing was stored.
    Invalid(FieldError),
    /// Storage failed; the submission may be retried as it is.
    Unavailable(redress_platform::unit::CommitError),
}

/// Validates and registers one submission sent as a request, counting refusals by code and
/// field.
pub(crate) async fn accept(
    intake: &Intake,
    msg: SubmitComplaint,
) -> Result<SubmitAccepted, Refusal> {
    let valid = ValidSubmission::parse(msg, None, &intake.limits, intake.ctx.clock.now())
        .inspect_err(|e| count_rejection(intake, e))
        .map_err(Refusal::Invalid)?;
    let accepted = crate::register::register(intake, valid)
        .await
        .map_err(Refusal::Unavailable)?;
    if accepted.duplicate {
        intake.ctx.metrics.incr("intake_duplicates_total");
    }
    Ok(accepted)
}

pub(crate) fn count_rejection(intake: &Intake, e: &FieldError) {
    tracing::info!(field = %e.field, code = e.code_name(), "submission refused");
    intake.ctx.metrics.incr(&format!(
        "intake_rejected_total{{code=\"{}\",field=\"{}\"}}",
        e.code_name(),
        e.field
    ));
}
