//! `RespondToReply`: the complainant accepts or rejects the department's reply, through
//! their channel's adapter, with the ticket and the secret of the acknowledgement. A
//! rejection (after-sales procedure: 互动式处理, negotiate until agreement) goes to routing as
//! `complaint.responded`, which sends the work back for a new proposal in the same round; an
//! acceptance is recorded in the history and changes nothing else (the department resolves,
//! and the survey follows). Only a reply waiting for an answer can be answered, once: the
//! same answer again is told `already`.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_proto::time::ts;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::respond_reply::Outcome;
use redress_proto::v1::{
    ComplaintResponded, QueryErrorCode, RespondReply, RespondToReply, Response,
};
use sqlx::Row;
use tracing::Instrument;

use super::complainant;
use crate::{IDENT, Intake};

/// The complainant's comment: at most this many bytes.
const MAX_COMMENT: usize = 4 * 1024;

fn error(code: QueryErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(crate::handlers::status_query::query_error(
        code, field, message,
    ))
}

pub async fn handle(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let span = crate::handlers::status_query::request_span("intake.complaint.respond", &message);
    let outcome = answer(&intake, &message.payload).instrument(span).await;
    if let Outcome::Error(e) = &outcome {
        intake.ctx.metrics.incr(&format!(
            "intake_respond_refused_total{{field=\"{}\"}}",
            e.field
        ));
    }
    RespondReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

async fn answer(intake: &Intake, payload: &[u8]) -> Outcome {
    let (q, ticket) = match crate::handlers::status_query::decode_with_ticket(
        payload,
        "a RespondToReply",
        |q: &RespondToReply| &q.ticket,
    ) {
        Ok(v) => v,
        Err(e) => return Outcome::Error(e),
    };
    tracing::Span::current().record("ticket", ticket.as_str());
    let comment = q.comment.trim();
    if let Err(e) = complainant::require_secret(&q.secret, "answer")
        .and_then(|()| complainant::check_text("comment", comment, MAX_COMMENT))
    {
        return Outcome::Error(e);
    }
    if !q.accept && comment.is_empty() {
        return error(
            QueryErrorCode::Malformed,
            "comment",
            "say what is wrong with the reply, so the department can propose again",
        );
    }
    match respond(intake, ticket.as_str(), q.secret.trim(), q.accept, comment).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "response failed");
            error(
                QueryErrorCode::Internal,
                "",
                "the answer was not recorded; send it again",
            )
        }
    }
}

/// Whether the complaint's history has no reply after its latest answer. Both lines are
/// written under the complaint's row lock, so their order in the history is the order of
/// the acts.
async fn no_reply_since_the_answer(
    unit: &mut redress_platform::Unit,
    id: uuid::Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (
             SELECT 1 FROM history r
             WHERE r.complaint_id = $1 AND r.event = $2
               AND r.seq > (SELECT max(a.seq) FROM history a
                            WHERE a.complaint_id = $1 AND a.event = $3))",
    )
    .bind(id)
    .bind(redress_proto::EventKind::Work(redress_proto::v1::WorkChange::Replied).name())
    .bind(redress_proto::EventKind::ComplaintResponded.name())
    .fetch_one(unit.db())
    .await
}

async fn respond(
    intake: &Intake,
    ticket: &str,
    secret: &str,
    accept: bool,
    comment: &str,
) -> anyhow::Result<Outcome> {
    let mut unit = intake.store.begin().await?;
    let (id, row) = match complainant::lock_proven(
        intake,
        &mut unit,
        ticket,
        secret,
        "id, playbook, status, work_version, responded_version, responded_at, responded_accept",
    )
    .await?
    {
        Ok(found) => found,
        Err(e) => return Ok(Outcome::Error(e)),
    };
    let version: i64 = row.get("work_version");
    let answered = |at: DateTime<Utc>, accept: bool, already: bool| {
        Outcome::Responded(Response {
            ticket: ticket.to_string(),
            accepted: accept,
            responded_at: ts(at),
            already,
        })
    };
    let status: String = row.get("status");
    // The reply now waiting was answered before: the same answer is told again. So is an
    // answer repeated after its consequence moved the work on (a rejection sends it back to
    // the department, a new version), as long as no reply has been made since: a channel
    // adapter that resends after a timeout must not be told there is nothing to answer.
    let repeated = match row.get::<Option<i64>, _>("responded_version") {
        Some(answered) if answered == version => true,
        Some(_) if status != "replied" => no_reply_since_the_answer(&mut unit, id).await?,
        _ => false,
    };
    if repeated && let Some(at) = row.get::<Option<DateTime<Utc>>, _>("responded_at") {
        let earlier: bool = row.get("responded_accept");
        if earlier == accept {
            return Ok(answered(at, accept, true));
        }
        return Ok(error(
            QueryErrorCode::WrongState,
            "accept",
            "this reply was answered already, the other way",
        ));
    }
    if status != "replied" {
        return Ok(error(
            QueryErrorCode::WrongState,
            "ticket",
            format!("{ticket} has no reply waiting for an answer (it is {status})"),
        ));
    }
    let now = intake.ctx.clock.now();
    sqlx::query(
        "UPDATE complaints SET responded_version = work_version, responded_at = $2,
             responded_accept = $3, updated_at = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(accept)
    .execute(unit.db())
    .await?;
    let said = if accept {
        "accepted the reply"
    } else {
        "rejected the reply"
    };
    let detail = if comment.is_empty() {
        format!("the complainant {said}")
    } else {
        format!("the complainant {said}: {comment}")
    };
    complainant::history_line(
        &mut unit,
        id,
        now,
        redress_proto::EventKind::ComplaintResponded,
        &detail,
    )
    .await?;
    // What the complainant wrote travels sealed, like the complaint.
    let sealed_comment = match sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT wrapped FROM complaint_keys WHERE complaint_id = $1",
    )
    .bind(id)
    .fetch_optional(unit.db())
    .await?
    {
        Some(wrapped) => intake
            .cipher
            .data_key(&wrapped, &id)?
            .text_key()
            .seal(comment, &id),
        None => Vec::new(),
    };
    unit.emit(new_event(
        IDENT.name,
        &Cause {
            complaint_id: id,
            ticket: ticket.to_string(),
            causation_id: format!("respond:{id}:{version}"),
            correlation_id: id.to_string(),
            playbook: row.get("playbook"),
        },
        now,
        Payload::ComplaintResponded(ComplaintResponded {
            ticket: ticket.to_string(),
            accepted: accept,
            sealed_comment,
            work_version: u64::try_from(version).unwrap_or_default(),
        }),
    ));
    unit.count("intake_responses_total", 1);
    unit.commit().await?;
    tracing::info!(accept, "complainant answered the reply");
    Ok(answered(now, accept, false))
}
