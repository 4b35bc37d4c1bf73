//! `EraseComplaint`: the complainant's right to deletion (PIPL). In one transaction the
//! complaint's data key is deleted (every sealed copy of the name and contact, backups
//! included, is unreadable from then on) and the text, reference, attachments and
//! complainant hash intake keeps are blanked; the facts (category, dates, deadlines,
//! outcome) stay for statistics. Then the complaint's text key is purged from the text-key
//! bucket, which leaves every copy of the text on the event stream and in the other services
//! sealed for good (see `redress_platform::sealed`), and the copies on the broker go: the raw submission on
//! SUBMISSIONS and what was sent to the complainant on NOTIFY, found by scanning the
//! complaint's channel from just before it was stored (nothing older can be its). Sending
//! the request again deletes any stream copy a failure left behind.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use prost::Message as _;
use redress_proto::subjects::Stream;
use redress_proto::time::ts;
use redress_proto::v1::erase_reply::Outcome;
use redress_proto::v1::{
    Acknowledgement, EraseComplaint, EraseReply, Erasure, QueryErrorCode, ReplyToComplainant,
    SubmitComplaint, SurveyInvitation,
};
use sqlx::Row;
use tracing::Instrument;
use uuid::Uuid;

use crate::Intake;

fn error(code: QueryErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(crate::handlers::status_query::query_error(
        code, field, message,
    ))
}

pub async fn handle(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let span = crate::handlers::status_query::request_span("intake.complaint.erase", &message);
    let outcome = answer(&intake, &message.payload).instrument(span).await;
    EraseReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

async fn answer(intake: &Intake, payload: &[u8]) -> Outcome {
    let (_, ticket) = match crate::handlers::status_query::decode_with_ticket(
        payload,
        "an EraseComplaint",
        |q: &EraseComplaint| &q.ticket,
    ) {
        Ok(v) => v,
        Err(e) => return Outcome::Error(e),
    };
    tracing::Span::current().record("ticket", ticket.as_str());
    match erase(intake, ticket.as_str()).await {
        Ok(Some(e)) => Outcome::Erased(e),
        Ok(None) => error(
            QueryErrorCode::NotFound,
            "ticket",
            format!("no complaint {}", ticket.as_str()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "erasure failed");
            error(
                QueryErrorCode::Internal,
                "",
                format!("the erasure did not complete ({e}); send it again"),
            )
        }
    }
}

struct Found {
    id: Uuid,
    ticket: String,
    channel: String,
    external_id: String,
    stored_at: DateTime<Utc>,
    erased_at: DateTime<Utc>,
    already: bool,
}

async fn erase(intake: &Intake, ticket: &str) -> anyhow::Result<Option<Erasure>> {
    let mut tx = intake.store.pool.begin().await?;
    let Some(row) = sqlx::query(
        "SELECT id, channel, external_id, stored_at, erased_at FROM complaints
         WHERE ticket = $1 FOR UPDATE",
    )
    .bind(ticket)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let now = intake.ctx.clock.now();
    let earlier: Option<DateTime<Utc>> = row.get("erased_at");
    let found = Found {
        id: row.get("id"),
        ticket: ticket.to_string(),
        channel: row.get("channel"),
        external_id: row.get("external_id"),
        stored_at: row.get("stored_at"),
        erased_at: earlier.unwrap_or(now),
        already: earlier.is_some(),
    };
    if !found.already {
        sqlx::query("DELETE FROM complaint_keys WHERE complaint_id = $1")
            .bind(found.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE complaints SET complainant_name = '', contact = '', complainant_ref = '',
                 body = '', reference = '', referred_by = '', attachments = '[]',
                 erased_at = $2
             WHERE id = $1",
        )
        .bind(found.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // What the department replied, reported or understood (a transfer's line), and what
        // the complainant objected to or gave as the reason to withdraw, may name them; who
        // wrote it stays. An assignment's
        // own line ("to logistics (round 1, …)") has nothing after ": " to lose.
        sqlx::query(
            "UPDATE history SET detail = split_part(detail, ': ', 1)
             WHERE complaint_id = $1
               AND event IN ('work.replied', 'work.progress_reported', 'work.contested',
                             'work.assigned', 'complaint.withdrawn',
                             'complaint.responded', 'work.committed')",
        )
        .bind(found.id)
        .execute(&mut *tx)
        .await?;
        // A text key the relay has not published yet must not land after the purge below:
        // it goes out empty, which readers take as erased too.
        sqlx::query("UPDATE outbox SET payload = ''::bytea WHERE msg_id = $1")
            .bind(format!("textkey:{}", found.id))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Every copy of the text on the event stream (and in other services' tables) is sealed
    // with this key: without it they are noise. Repeated on every request, like the deletions
    // below, so a failure here is finished by asking again.
    intake.ctx.text_keys.purge(&found.id).await?;
    intake.ctx.metrics.incr("intake_erased_total");
    tracing::info!(already = found.already, "complainant's data erased");
    // An answer to an evidence request is a submission of its own, with the complainant's
    // words in clear.
    let submissions = delete_copies(intake, Stream::Submissions, &found).await?
        + delete_copies(intake, Stream::Evidence, &found).await?;
    let notifications = delete_copies(intake, Stream::Notify, &found).await?;
    Ok(Some(Erasure {
        ticket: ticket.to_string(),
        complaint_id: found.id.to_string(),
        erased_at: ts(found.erased_at),
        already: found.already,
        submissions_deleted: submissions,
        notifications_deleted: notifications,
    }))
}

/// Whether a message on `stream` is a copy of this complaint's personal data.
fn is_copy(stream: Stream, subject: &str, payload: &[u8], found: &Found) -> bool {
    let ticket = found.ticket.as_str();
    match stream {
        Stream::Submissions => SubmitComplaint::decode(payload)
            .is_ok_and(|s| s.external_id.trim() == found.external_id),
        Stream::Evidence => redress_proto::v1::SupplyEvidence::decode(payload)
            .is_ok_and(|e| e.ticket.trim() == ticket),
        _ => match subject.rsplit('.').next() {
            Some("ack") => Acknowledgement::decode(payload).is_ok_and(|a| a.ticket == ticket),
            Some("reply" | "progress" | "merged" | "evidence_requested" | "evidence_reminder") => {
                ReplyToComplainant::decode(payload).is_ok_and(|r| r.ticket == ticket)
            }
            Some("survey") => SurveyInvitation::decode(payload).is_ok_and(|s| s.ticket == ticket),
            _ => false,
        },
    }
}

/// Deletes the complaint's messages from `stream`, scanning its channel's subjects from a
/// minute before the complaint was stored; nothing when that is older than the stream keeps.
async fn delete_copies(intake: &Intake, which: Stream, found: &Found) -> anyhow::Result<u32> {
    let subjects = &intake.ctx.subjects;
    let streams = &intake.ctx.config.settings.streams;
    let kept_days = match which {
        Stream::Submissions | Stream::Evidence => streams.submissions_max_age_days,
        _ => streams.notify_max_age_days,
    };
    let from = found.stored_at - chrono::Duration::minutes(1);
    if kept_days > 0 && intake.ctx.clock.now() - from > chrono::Duration::days(kept_days as i64) {
        return Ok(0);
    }
    let filter = match which {
        Stream::Submissions => subjects.submit(&found.channel),
        Stream::Evidence => subjects.evidence(&found.channel),
        _ => subjects.notify_channel(&found.channel),
    };
    let stream = intake
        .ctx
        .js
        .get_stream(subjects.stream_name(which))
        .await?;
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: filter,
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                    from.timestamp_nanos_opt().unwrap_or_default(),
                ))?,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let mut left = consumer.clone().info().await?.num_pending;
    let mut doomed = Vec::new();
    while left > 0 {
        let mut batch = consumer
            .fetch()
            .max_messages(left.min(500) as usize)
            .expires(Duration::from_secs(2))
            .messages()
            .await?;
        let mut got = 0u64;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
            got += 1;
            if is_copy(which, &m.subject, &m.payload, found) {
                doomed.push(
                    m.info()
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .stream_sequence,
                );
            }
        }
        if got == 0 {
            break;
        }
        left = left.saturating_sub(got);
    }
    let mut deleted = 0;
    for seq in doomed {
        if stream.delete_message(seq).await.is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}
