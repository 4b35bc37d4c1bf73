//! The one transaction that registers a complaint, shared by the stream and request paths:
//! inbox entry, complaint row, history, and the outgoing event and acknowledgement, committed
//! together.

use chrono::Duration;
use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::outbox::{self, Outgoing};
use redress_proto::time::from_unix_micros;
use redress_proto::v1::{
    Acknowledgement, ComplaintReceived, Contact as PContact, SubmitAccepted, envelope::Payload,
};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::submission::ValidSubmission;
use crate::domain::ticket::Ticket;
use crate::{IDENT, Intake};

/// Registers `sub`, or finds the complaint already registered for its channel and external id.
/// `inbox_id` is the id of the stream message being handled, if any.
#[tracing::instrument(skip_all, fields(channel = %sub.channel, ticket), err)]
pub async fn register(
    intake: &Intake,
    sub: ValidSubmission,
    inbox_id: Option<&str>,
) -> Result<SubmitAccepted, sqlx::Error> {
    let complainant_ref = intake.cipher.complainant_ref(&sub.contact.matching_key());
    let since = sub.received_at - Duration::days(i64::from(intake.settings.repeat_window_days));
    let mut tx = intake.pool.begin().await?;
    // One complainant's complaints are registered one at a time, so two arriving together
    // still see each other as repeats. The lock is its own statement: the next one must take
    // its snapshot after the lock is held.
    let fresh: bool = sqlx::query_scalar(
        "WITH i AS (INSERT INTO inbox (message_id) SELECT $1 WHERE $1 IS NOT NULL
                    ON CONFLICT DO NOTHING RETURNING 1),
              l AS (SELECT pg_advisory_xact_lock(hashtextextended($2, 0)))
         SELECT ($1::text IS NULL OR EXISTS (SELECT 1 FROM i)) FROM l",
    )
    .bind(inbox_id)
    .bind(&complainant_ref)
    .fetch_one(&mut *tx)
    .await?;
    if !fresh {
        // This very message was handled before.
        tx.rollback().await?;
        return find_existing(intake, &sub.channel, &sub.external_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound);
    }
    let row = sqlx::query(
        "SELECT e.id, e.ticket, e.repeat, e.earlier_tickets,
                ARRAY(SELECT ticket FROM complaints WHERE complainant_ref = $3 AND received_at >= $4
                      ORDER BY received_at DESC LIMIT 20) AS earlier,
                CASE WHEN e.id IS NULL THEN nextval('ticket_seq') END AS seq
         FROM (SELECT 1) AS one
         LEFT JOIN complaints e ON e.channel = $1 AND e.external_id = $2",
    )
    .bind(&sub.channel)
    .bind(&sub.external_id)
    .bind(&complainant_ref)
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(id) = row.get::<Option<Uuid>, _>("id") {
        tx.commit().await?;
        return Ok(SubmitAccepted {
            ticket: row.get("ticket"),
            complaint_id: id.to_string(),
            duplicate: true,
            repeat: row.get("repeat"),
            earlier_tickets: row.get("earlier_tickets"),
        });
    }
    let earlier: Vec<String> = row.get("earlier");
    let sequence: i64 = row.get("seq");

    let now = intake.ctx.clock.now();
    let day = jiff::Timestamp::from_microsecond(sub.received_at.timestamp_micros())
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
        .to_zoned(intake.zone.clone())
        .strftime("%y%m%d")
        .to_string();
    let ticket = Ticket::issue(&intake.settings.ticket_prefix, &day, sequence);
    tracing::Span::current().record("ticket", ticket.as_str());
    let id = Uuid::now_v7();
    let aad = id.as_bytes();
    let attachments = serde_json::to_value(
        sub.attachments
            .iter()
            .map(|a| {
                serde_json::json!({
                    "uri": a.uri, "media_type": a.media_type, "size_bytes": a.size_bytes,
                    "sha256": a.sha256, "file_name": a.file_name,
                })
            })
            .collect::<Vec<_>>(),
    )
    .expect("json values serialise");
    let detail = if earlier.is_empty() {
        format!("via {}", sub.channel)
    } else {
        format!("via {}; repeat of {}", sub.channel, earlier.join(", "))
    };
    let inserted: i64 = sqlx::query_scalar(
        "WITH c AS (
             INSERT INTO complaints (id, ticket, channel, external_id, playbook, body, reference,
                 referred_by, attachments, complainant_name, contact_kind, contact,
                 complainant_ref, repeat, earlier_tickets, received_at, stored_at, updated_at)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$17)
             ON CONFLICT (channel, external_id) DO NOTHING
             RETURNING id),
         h AS (
             INSERT INTO history (complaint_id, at, event, detail)
             SELECT id, $16, 'received', $18 FROM c)
         SELECT count(*) FROM c",
    )
    .bind(id)
    .bind(ticket.as_str())
    .bind(&sub.channel)
    .bind(&sub.external_id)
    .bind(&sub.playbook)
    .bind(&sub.text)
    .bind(&sub.reference)
    .bind(&sub.referred_by)
    .bind(attachments)
    .bind(intake.cipher.seal(&sub.name, aad))
    .bind(sub.contact.kind() as i16)
    .bind(intake.cipher.seal(sub.contact.value(), aad))
    .bind(&complainant_ref)
    .bind(!earlier.is_empty())
    .bind(&earlier)
    .bind(sub.received_at)
    .bind(now)
    .bind(detail)
    .fetch_one(&mut *tx)
    .await?;
    if inserted == 0 {
        // Another delivery registered the same channel id a moment ago and has committed (the
        // insert waited for it). Keep our inbox entry and answer with its ticket.
        let existing = find_in(&mut tx, &sub.channel, &sub.external_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        return Ok(existing);
    }

    let cause = Cause {
        complaint_id: id,
        causation_id: format!("{}:{}", sub.channel, sub.external_id),
        correlation_id: id.to_string(),
        playbook: sub.playbook.clone(),
    };
    let received_at = Some(from_unix_micros(sub.received_at.timestamp_micros()));
    let event = new_event(
        IDENT.name,
        &cause,
        now,
        Payload::ComplaintReceived(ComplaintReceived {
            ticket: ticket.to_string(),
            channel: sub.channel.clone(),
            external_id: sub.external_id.clone(),
            text: sub.text.clone(),
            attachments: sub.attachments.clone(),
            received_at,
            reference: sub.reference.clone(),
            referred_by: sub.referred_by.clone(),
            complainant_ref: complainant_ref.clone(),
            repeat: !earlier.is_empty(),
            earlier_tickets: earlier.clone(),
        }),
    );
    let ack = Acknowledgement {
        ticket: ticket.to_string(),
        complaint_id: id.to_string(),
        channel: sub.channel.clone(),
        external_id: sub.external_id.clone(),
        recipient_name: sub.name.clone(),
        contact: Some(PContact {
            kind: sub.contact.kind() as i32,
            value: sub.contact.value().to_string(),
        }),
        message: acknowledgement_text(&sub.text, &ticket),
        received_at,
    };
    let subjects = &intake.ctx.subjects;
    outbox::enqueue(
        &mut tx,
        IDENT.schema,
        &intake.storage.outbox,
        &[
            Outgoing {
                msg_id: event.event_id.clone(),
                subject: subjects.complaint_received(),
                payload: event.encode_to_vec(),
            },
            Outgoing {
                msg_id: format!("ack:{id}"),
                subject: subjects.notify_ack(&sub.channel),
                payload: ack.encode_to_vec(),
            },
        ],
    )
    .await?;
    tx.commit().await?;
    intake.storage.outbox.wake();
    intake.ctx.metrics.incr("intake_registered_total");
    Ok(SubmitAccepted {
        ticket: ticket.to_string(),
        complaint_id: id.to_string(),
        duplicate: false,
        repeat: !earlier.is_empty(),
        earlier_tickets: earlier,
    })
}

/// Answers in the complainant's language: Chinese when the complaint is written in it.
fn acknowledgement_text(text: &str, ticket: &Ticket) -> String {
    let cjk = text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    if cjk {
        format!(
            "您的投诉已受理，受理编号 {ticket}。我们会尽快处理并与您联系，查询进度时请提供此编号。"
        )
    } else {
        format!(
            "We have received your complaint; your ticket number is {ticket}. We will contact \
             you as soon as we can. Please quote this number when you ask about its progress."
        )
    }
}

async fn find_in(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    external_id: &str,
) -> Result<Option<SubmitAccepted>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, ticket, repeat, earlier_tickets FROM complaints
         WHERE channel = $1 AND external_id = $2",
    )
    .bind(channel)
    .bind(external_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| SubmitAccepted {
        ticket: r.get("ticket"),
        complaint_id: r.get::<Uuid, _>("id").to_string(),
        duplicate: true,
        repeat: r.get("repeat"),
        earlier_tickets: r.get("earlier_tickets"),
    }))
}

async fn find_existing(
    intake: &Intake,
    channel: &str,
    external_id: &str,
) -> Result<Option<SubmitAccepted>, sqlx::Error> {
    let mut conn = intake.pool.acquire().await?;
    find_in(&mut conn, channel, external_id).await
}
