//! `WithdrawComplaint`: the complainant takes the complaint back, through their channel's
//! adapter, with the ticket and the secret of the acknowledgement (the same proof the
//! complainant's own status view asks for). In one transaction the complaint is marked
//! withdrawn, its open deadlines in the status are cancelled, the history gets the line and
//! `complaint.withdrawn` goes to the outbox; routing closes the work from it and the SLA
//! timer cancels the deadlines, which are never counted as met. Asking again answers the
//! same withdrawal (`already`) and publishes nothing.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_proto::time::ts;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::withdraw_reply::Outcome;
use redress_proto::v1::{
    ComplaintWithdrawn, DeadlineState, QueryErrorCode, WithdrawComplaint, WithdrawReply, Withdrawal,
};
use sqlx::Row;
use tracing::Instrument;

use super::complainant;
use crate::{IDENT, Intake};

/// The complainant's reason: at most this many bytes.
const MAX_REASON: usize = 4 * 1024;

fn error(code: QueryErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(crate::handlers::status_query::query_error(
        code, field, message,
    ))
}

pub async fn handle(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let span = crate::handlers::status_query::request_span("intake.complaint.withdraw", &message);
    let outcome = answer(&intake, &message.payload).instrument(span).await;
    if let Outcome::Error(e) = &outcome {
        intake.ctx.metrics.incr(&format!(
            "intake_withdraw_refused_total{{field=\"{}\"}}",
            e.field
        ));
    }
    WithdrawReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

async fn answer(intake: &Intake, payload: &[u8]) -> Outcome {
    let (q, ticket) = match crate::handlers::status_query::decode_with_ticket(
        payload,
        "a WithdrawComplaint",
        |q: &WithdrawComplaint| &q.ticket,
    ) {
        Ok(v) => v,
        Err(e) => return Outcome::Error(e),
    };
    tracing::Span::current().record("ticket", ticket.as_str());
    let reason = q.reason.trim();
    if let Err(e) = complainant::require_secret(&q.secret, "withdraw")
        .and_then(|()| complainant::check_text("reason", reason, MAX_REASON))
    {
        return Outcome::Error(e);
    }
    match withdraw(intake, ticket.as_str(), q.secret.trim(), reason).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "withdrawal failed");
            error(
                QueryErrorCode::Internal,
                "",
                "the withdrawal did not complete; send it again",
            )
        }
    }
}

async fn withdraw(
    intake: &Intake,
    ticket: &str,
    secret: &str,
    reason: &str,
) -> anyhow::Result<Outcome> {
    let mut unit = intake.store.begin().await?;
    let (id, row) = match complainant::lock_proven(
        intake,
        &mut unit,
        ticket,
        secret,
        "id, playbook, status, withdrawn_at",
    )
    .await?
    {
        Ok(found) => found,
        Err(e) => return Ok(Outcome::Error(e)),
    };
    let withdrawal = |at: DateTime<Utc>, already: bool| {
        Outcome::Withdrawn(Withdrawal {
            ticket: ticket.to_string(),
            complaint_id: id.to_string(),
            withdrawn_at: ts(at),
            already,
        })
    };
    if let Some(at) = row.get::<Option<DateTime<Utc>>, _>("withdrawn_at") {
        return Ok(withdrawal(at, true));
    }
    let status: String = row.get("status");
    if status == "closed" {
        return Ok(error(
            QueryErrorCode::WrongState,
            "ticket",
            format!("{ticket} is closed; a closed complaint cannot be withdrawn"),
        ));
    }
    let now = intake.ctx.clock.now();
    sqlx::query(
        "UPDATE complaints SET withdrawn_at = $2, status = 'withdrawn', updated_at = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(unit.db())
    .await?;
    sqlx::query(
        "UPDATE deadlines SET state = $2, settled_at = $3
         WHERE complaint_id = $1 AND state IN ($4, $5)",
    )
    .bind(id)
    .bind(DeadlineState::Cancelled as i16)
    .bind(now)
    .bind(DeadlineState::Armed as i16)
    .bind(DeadlineState::Warned as i16)
    .execute(unit.db())
    .await?;
    let detail = if reason.is_empty() {
        "by the complainant".to_string()
    } else {
        format!("by the complainant: {reason}")
    };
    complainant::history_line(
        &mut unit,
        id,
        now,
        redress_proto::EventKind::ComplaintWithdrawn,
        &detail,
    )
    .await?;
    unit.emit(new_event(
        IDENT.name,
        &Cause {
            complaint_id: id,
            ticket: ticket.to_string(),
            causation_id: format!("withdraw:{id}"),
            correlation_id: id.to_string(),
            playbook: row.get("playbook"),
        },
        now,
        Payload::ComplaintWithdrawn(ComplaintWithdrawn {
            ticket: ticket.to_string(),
        }),
    ));
    unit.count("intake_withdrawn_total", 1);
    unit.commit().await?;
    tracing::info!("complaint withdrawn by the complainant");
    Ok(withdrawal(now, false))
}
