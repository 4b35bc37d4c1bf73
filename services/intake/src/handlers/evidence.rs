//! `SupplyEvidence` from the evidence stream: a complainant answers an evidence request
//! through their channel's adapter, with the token the request sent them. The token proves
//! both who they are and which request they answer; a token of another ticket, an answered or
//! abandoned request, an unknown ticket all get the same NOT_FOUND `token`, on
//! `notify.<channel>.rejected` like a refused submission. In one transaction the evidence is
//! stored (its text sealed like the complaint's), the request marked answered, the history
//! line written and `complaint.evidence_supplied` put in the outbox; routing ends the wait
//! from it. A resend (same channel and external id) is acknowledged and changes nothing.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::nats::{Delivery, Outcome};
use redress_proto::subjects::Stream;
use redress_proto::time::ts;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    ComplaintEvidenceSupplied, FileRef, FileRefs, SubmitErrorCode, SupplyEvidence,
};
use sqlx::Row as _;
use tracing::Instrument as _;
use uuid::Uuid;

use super::count_rejection;
use super::submission::reject;
use crate::domain::evidence::ValidEvidence;
use crate::domain::submission::FieldError;
use crate::{IDENT, Intake};

pub async fn handle_batch(intake: Arc<Intake>, deliveries: Vec<Delivery>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let span = tracing::info_span!(
            "evidence",
            otel.name = "intake.complaint.evidence",
            redress.service = IDENT.name,
            subject = %d.subject,
            ticket = tracing::field::Empty,
        );
        redress_platform::telemetry::set_parent_from_headers(&span, d.headers.as_ref());
        outcomes.push(one(&intake, &d).instrument(span).await);
    }
    outcomes
}

async fn one(intake: &Intake, d: &Delivery) -> Outcome {
    let msg = match SupplyEvidence::decode(d.payload.clone()) {
        Ok(m) => m,
        Err(e) => {
            intake
                .ctx
                .metrics
                .incr("intake_evidence_rejected_total{code=\"undecodable\",field=\"\"}");
            return Outcome::DeadLetter(format!("not a SupplyEvidence: {e}"));
        }
    };
    let subjects = &intake.ctx.subjects;
    let Some(channel) = subjects.channel_of_evidence(&d.subject) else {
        return Outcome::DeadLetter(format!("not an evidence subject: {}", d.subject));
    };
    let inbox_id = d.message_id(&subjects.stream_name(Stream::Evidence));
    let external_id = msg.external_id.clone();
    let refused = |error: FieldError| {
        count_rejection(intake, &error);
        reject(intake, channel, external_id.clone(), &inbox_id, error)
    };
    let evidence = match ValidEvidence::parse(msg, channel, &intake.limits) {
        Ok(e) => e,
        Err(error) => return refused(error).await,
    };
    tracing::Span::current().record("ticket", evidence.ticket.as_str());
    match supply(intake, &evidence).await {
        Ok(Ok(())) => Outcome::Ack,
        Ok(Err(error)) => refused(error).await,
        Err(e) => Outcome::Retry(format!("storing the evidence: {e}")),
    }
}

/// Stores `e` as the answer to the request its token opens.
async fn supply(intake: &Intake, e: &ValidEvidence) -> anyhow::Result<Result<(), FieldError>> {
    let mut unit = intake.store.begin().await?;
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM evidence WHERE channel = $1 AND external_id = $2)",
    )
    .bind(&e.channel)
    .bind(&e.external_id)
    .fetch_one(unit.db())
    .await?;
    if seen {
        intake.ctx.metrics.incr("intake_evidence_duplicates_total");
        return Ok(Ok(()));
    }
    let not_found = || {
        Ok(Err(FieldError::new(
            SubmitErrorCode::NotFound,
            "token",
            "no open evidence request of this ticket has this token",
        )))
    };
    let Some(row) = sqlx::query(
        "SELECT c.id, c.playbook, c.withdrawn_at, k.wrapped
         FROM complaints c LEFT JOIN complaint_keys k ON k.complaint_id = c.id
         WHERE c.ticket = $1 FOR UPDATE OF c",
    )
    .bind(&e.ticket)
    .fetch_optional(unit.db())
    .await?
    else {
        return not_found();
    };
    let id: Uuid = row.get("id");
    let hash = redress_platform::tokens::token_hash(&e.token);
    let Some(request) = sqlx::query(
        "SELECT round, seq FROM evidence_requests
         WHERE complaint_id = $1 AND token_sha256 = $2
           AND answered_at IS NULL AND closed_at IS NULL",
    )
    .bind(id)
    .bind(&hash)
    .fetch_optional(unit.db())
    .await?
    else {
        return not_found();
    };
    if row
        .get::<Option<chrono::DateTime<chrono::Utc>>, _>("withdrawn_at")
        .is_some()
    {
        return not_found();
    }
    let (round, seq): (i32, i32) = (request.get("round"), request.get("seq"));
    // Sealed with the complaint's text key, so the department can read it and an erasure
    // (which drops the key) makes it unreadable everywhere at once.
    let Some(wrapped) = row.get::<Option<Vec<u8>>, _>("wrapped") else {
        return Ok(Err(FieldError::new(
            SubmitErrorCode::NotFound,
            "ticket",
            "the complainant's data was erased",
        )));
    };
    let key = intake.cipher.data_key(&wrapped, &id)?;
    let sealed_text = key.text_key().seal(&e.text, &id);
    let files: Vec<FileRef> = e
        .attachments
        .iter()
        .map(|a| FileRef {
            uri: a.uri.trim().to_string(),
            media_type: a.media_type.clone(),
            size_bytes: a.size_bytes,
            file_name: a.file_name.clone(),
        })
        .collect();
    let now = intake.ctx.clock.now();
    sqlx::query(
        "INSERT INTO evidence (channel, external_id, complaint_id, round, seq, sealed_text,
             files, supplied_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&e.channel)
    .bind(&e.external_id)
    .bind(id)
    .bind(round)
    .bind(seq)
    .bind(&sealed_text)
    .bind(
        FileRefs {
            files: files.clone(),
        }
        .encode_to_vec(),
    )
    .bind(now)
    .execute(unit.db())
    .await?;
    sqlx::query(
        "UPDATE evidence_requests SET answered_at = $4
         WHERE complaint_id = $1 AND round = $2 AND seq = $3",
    )
    .bind(id)
    .bind(round)
    .bind(seq)
    .bind(now)
    .execute(unit.db())
    .await?;
    let detail = format!(
        "by the complainant for request {seq}: {} file(s)",
        files.len()
    );
    super::complainant::history_line(
        &mut unit,
        id,
        now,
        redress_proto::EventKind::ComplaintEvidenceSupplied,
        &detail,
    )
    .await?;
    unit.emit(new_event(
        IDENT.name,
        &Cause {
            complaint_id: id,
            ticket: e.ticket.clone(),
            causation_id: format!("evidence:{}:{}", e.channel, e.external_id),
            correlation_id: id.to_string(),
            playbook: row.get("playbook"),
        },
        now,
        Payload::ComplaintEvidenceSupplied(ComplaintEvidenceSupplied {
            ticket: e.ticket.clone(),
            seq: seq as u32,
            sealed_text,
            files,
            supplied_at: ts(now),
        }),
    ));
    unit.count("intake_evidence_supplied_total", 1);
    unit.commit().await?;
    tracing::info!(seq, "evidence supplied");
    Ok(Ok(()))
}
