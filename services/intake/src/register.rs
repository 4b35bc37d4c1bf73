//! The one transaction that registers a complaint, shared by the stream and request paths:
//! inbox entry, complaint row, history, and the outgoing event and acknowledgement, committed
//! together.

use chrono::Duration;
use redress_platform::Unit;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::unit::CommitError;
use redress_proto::time::ts;
use redress_proto::v1::{
    Acknowledgement, ComplaintReceived, Contact as PContact, SubmitAccepted, envelope::Payload,
};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::crypto::DataKey;
use crate::domain::submission::ValidSubmission;
use crate::domain::ticket::Ticket;
use crate::{IDENT, Intake};
use tracing::Instrument;

/// One submission to register, with the id of the stream message that carried it (none on
/// the request path).
pub struct Item {
    pub sub: ValidSubmission,
    pub inbox_id: Option<String>,
    /// The submission's own span: its events continue the trace its adapter started.
    pub span: tracing::Span,
}

/// Registers one submission sent as a request, or finds the complaint already registered for
/// its channel id.
pub async fn register(
    intake: &Intake,
    sub: ValidSubmission,
) -> Result<SubmitAccepted, CommitError> {
    let mut out = register_batch(
        intake,
        &[Item {
            sub,
            inbox_id: None,
            span: tracing::Span::current(),
        }],
    )
    .await?;
    Ok(out.remove(0))
}

/// A new complaint being built within a batch.
struct New {
    index: usize,
    id: Uuid,
    ticket: Ticket,
    complainant_ref: String,
    earlier: Vec<String>,
}

/// Registers a batch of submissions in one transaction (inbox entries, complaints, history
/// and outgoing messages), in six statements whatever the batch size. Returns one answer per
/// item, in order; a resend (in the database or earlier in the same batch) answers with the
/// original ticket.
pub async fn register_batch(
    intake: &Intake,
    items: &[Item],
) -> Result<Vec<SubmitAccepted>, CommitError> {
    let span = tracing::debug_span!("intake.register", batch = items.len());
    register_in(intake, items).instrument(span).await
}

async fn register_in(intake: &Intake, items: &[Item]) -> Result<Vec<SubmitAccepted>, CommitError> {
    let refs: Vec<String> = items
        .iter()
        .map(|i| intake.cipher.complainant_ref(&i.sub.contact.matching_key()))
        .collect();
    let inbox_ids: Vec<&str> = items.iter().filter_map(|i| i.inbox_id.as_deref()).collect();
    let mut unit = intake.store.begin().await?;
    // One complainant's complaints are registered one at a time (so two arriving together
    // still see each other as repeats), locks taken in a fixed order so that batches cannot
    // deadlock. The lock is its own statement: the lookup must take its snapshot after it.
    sqlx::query(
        "WITH i AS (INSERT INTO inbox (message_id) SELECT unnest($1::text[])
                    ON CONFLICT DO NOTHING RETURNING 1),
              l AS (SELECT pg_advisory_xact_lock(h)
                    FROM (SELECT DISTINCT hashtextextended(r, 0) AS h
                          FROM unnest($2::text[]) AS r ORDER BY 1) AS s)
         SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM l)",
    )
    .bind(&inbox_ids)
    .bind(&refs)
    .execute(unit.db())
    .await?;
    let window = Duration::days(i64::from(intake.settings.repeat_window_days));
    let channels: Vec<&str> = items.iter().map(|i| i.sub.channel.as_str()).collect();
    let externals: Vec<&str> = items.iter().map(|i| i.sub.external_id.as_str()).collect();
    let since: Vec<chrono::DateTime<chrono::Utc>> =
        items.iter().map(|i| i.sub.received_at - window).collect();
    let found = sqlx::query(
        "SELECT k.n, e.id, e.ticket, e.repeat, e.earlier_tickets,
                ARRAY(SELECT c.ticket FROM complaints c
                      WHERE c.complainant_ref = k.r AND c.received_at >= k.since
                      ORDER BY c.received_at DESC LIMIT 20) AS earlier,
                CASE WHEN e.id IS NULL THEN nextval('ticket_seq') END AS seq
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
              WITH ORDINALITY AS k(ch, ext, r, since, n)
         -- LATERAL keeps this an index lookup per item: the planner guesses 100 rows for
         -- unnest and would otherwise hash-join against the whole table.
         LEFT JOIN LATERAL (SELECT id, ticket, repeat, earlier_tickets FROM complaints
                            WHERE channel = k.ch AND external_id = k.ext) AS e ON true
         ORDER BY k.n",
    )
    .bind(&channels)
    .bind(&externals)
    .bind(&refs)
    .bind(&since)
    .fetch_all(unit.db())
    .await?;

    let mut answers: Vec<Option<SubmitAccepted>> = vec![None; items.len()];
    let mut news: Vec<New> = Vec::new();
    let mut in_batch: std::collections::HashMap<(&str, &str), usize> = Default::default();
    for (index, (item, row)) in items.iter().zip(&found).enumerate() {
        let key = (item.sub.channel.as_str(), item.sub.external_id.as_str());
        if let Some(id) = row.get::<Option<Uuid>, _>("id") {
            answers[index] = Some(SubmitAccepted {
                ticket: row.get("ticket"),
                complaint_id: id.to_string(),
                duplicate: true,
                repeat: row.get("repeat"),
                earlier_tickets: row.get("earlier_tickets"),
                // Filled in by whoever answers the sender, who holds the key.
                status_secret: String::new(),
            });
            continue;
        }
        if let Some(&first) = in_batch.get(&key) {
            // The same channel id twice in one batch: answered below from the first.
            answers[index] = None;
            news.push(New {
                index,
                id: news[first].id,
                ticket: news[first].ticket.clone(),
                complainant_ref: String::new(),
                earlier: Vec::new(),
            });
            in_batch.insert(key, news.len() - 1);
            continue;
        }
        // Earlier complaints of this complainant in this batch come first (newest first).
        let mut earlier: Vec<String> = news
            .iter()
            .rev()
            .filter(|n| {
                !n.complainant_ref.is_empty()
                    && n.complainant_ref == refs[index]
                    && items[n.index].sub.received_at >= item.sub.received_at - window
            })
            .map(|n| n.ticket.to_string())
            .collect();
        earlier.extend(row.get::<Vec<String>, _>("earlier"));
        earlier.truncate(20);
        let day = jiff::Timestamp::from_microsecond(item.sub.received_at.timestamp_micros())
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
            .to_zoned(intake.zone.clone())
            .strftime("%y%m%d")
            .to_string();
        news.push(New {
            index,
            id: Uuid::now_v7(),
            ticket: Ticket::issue(&intake.settings.ticket_prefix, &day, row.get("seq")),
            complainant_ref: refs[index].clone(),
            earlier,
        });
        in_batch.insert(key, news.len() - 1);
    }
    let fresh: Vec<&New> = news
        .iter()
        .filter(|n| !n.complainant_ref.is_empty())
        .collect();

    if !fresh.is_empty() {
        let now = intake.ctx.clock.now();
        let mut cols = Columns::default();
        for n in &fresh {
            cols.push(intake, &items[n.index].sub, n);
        }
        let stored: Vec<Uuid> = sqlx::query_scalar(
            "WITH c AS (
                 INSERT INTO complaints (id, ticket, channel, external_id, playbook, body,
                     reference, referred_by, attachments, complainant_name, contact_kind, contact,
                     complainant_ref, repeat, earlier_tickets, received_at, stored_at, updated_at)
                 SELECT id, ticket, channel, external_id, playbook, body, reference, referred_by,
                        attachments, name, kind, contact, ref, cardinality(string_to_array(earlier, ',')) > 0,
                        string_to_array(earlier, ','), received_at, $17, $17
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::text[], $9::jsonb[], $10::bytea[], $11::int2[],
                             $12::bytea[], $13::text[], $14::text[], $15::timestamptz[], $16::text[])
                      AS t(id, ticket, channel, external_id, playbook, body, reference, referred_by,
                           attachments, name, kind, contact, ref, earlier, received_at, detail)
                 ON CONFLICT (channel, external_id) DO NOTHING
                 RETURNING id, received_at),
             h AS (
                 INSERT INTO history (complaint_id, at, event, detail)
                 SELECT c.id, c.received_at, 'received', d.detail
                 FROM c JOIN unnest($1::uuid[], $16::text[]) AS d(id, detail) ON d.id = c.id),
             k AS (
                 INSERT INTO complaint_keys (complaint_id, key_id, wrapped)
                 SELECT c.id, $18, w.wrapped
                 FROM c JOIN unnest($1::uuid[], $19::bytea[]) AS w(id, wrapped) ON w.id = c.id)
             SELECT id FROM c",
        )
        .bind(&cols.id)
        .bind(&cols.ticket)
        .bind(&cols.channel)
        .bind(&cols.external_id)
        .bind(&cols.playbook)
        .bind(&cols.body)
        .bind(&cols.reference)
        .bind(&cols.referred_by)
        .bind(&cols.attachments)
        .bind(&cols.name)
        .bind(&cols.kind)
        .bind(&cols.contact)
        .bind(&cols.complainant_ref)
        .bind(&cols.earlier)
        .bind(&cols.received_at)
        .bind(&cols.detail)
        .bind(now)
        .bind(i32::from(intake.cipher.current_key_id()))
        .bind(&cols.wrapped_key)
        .fetch_all(unit.db())
        .await?;

        for n in &fresh {
            if !stored.contains(&n.id) {
                // Another instance registered the same channel id a moment ago and committed
                // (our insert waited for it): answer with its ticket.
                let sub = &items[n.index].sub;
                answers[n.index] = find_in(unit.db(), &sub.channel, &sub.external_id).await?;
                continue;
            }
            let item = &items[n.index];
            item.span.record("ticket", n.ticket.as_str());
            item.span
                .record("complaint_id", tracing::field::display(n.id));
            let key = &cols.data_keys[&n.id];
            item.span
                .in_scope(|| messages_for(intake, &mut unit, &item.sub, n, key, now));
            answers[n.index] = Some(SubmitAccepted {
                ticket: n.ticket.to_string(),
                complaint_id: n.id.to_string(),
                duplicate: false,
                repeat: !n.earlier.is_empty(),
                earlier_tickets: n.earlier.clone(),
                status_secret: String::new(),
            });
        }
    }
    let registered = answers.iter().flatten().filter(|a| !a.duplicate).count();
    unit.count("intake_registered_total", registered as u64);
    unit.commit().await?;
    // Repeats of a channel id inside this batch answer like a resend of the first.
    for n in news.iter().filter(|n| n.complainant_ref.is_empty()) {
        let first = answers
            .iter()
            .flatten()
            .find(|a| a.complaint_id == n.id.to_string())
            .cloned();
        answers[n.index] = first.map(|a| SubmitAccepted {
            duplicate: true,
            ..a
        });
    }
    answers
        .into_iter()
        .map(|a| a.ok_or(CommitError::Db(sqlx::Error::RowNotFound)))
        .collect()
}

/// Column arrays for the multi-row insert.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    ticket: Vec<String>,
    channel: Vec<String>,
    external_id: Vec<String>,
    playbook: Vec<String>,
    body: Vec<String>,
    reference: Vec<String>,
    referred_by: Vec<String>,
    attachments: Vec<serde_json::Value>,
    name: Vec<Vec<u8>>,
    kind: Vec<i16>,
    contact: Vec<Vec<u8>>,
    complainant_ref: Vec<String>,
    earlier: Vec<String>,
    received_at: Vec<chrono::DateTime<chrono::Utc>>,
    detail: Vec<String>,
    /// Each complaint's data key, sealed with the master key.
    wrapped_key: Vec<Vec<u8>>,
    /// The same keys in clear, for sealing the text of the events.
    data_keys: std::collections::HashMap<Uuid, DataKey>,
}

impl Columns {
    fn push(&mut self, intake: &Intake, sub: &ValidSubmission, n: &New) {
        let aad = n.id.as_bytes();
        self.id.push(n.id);
        self.ticket.push(n.ticket.to_string());
        self.channel.push(sub.channel.clone());
        self.external_id.push(sub.external_id.clone());
        self.playbook.push(sub.playbook.clone());
        self.body.push(sub.text.clone());
        self.reference.push(sub.reference.clone());
        self.referred_by.push(sub.referred_by.clone());
        self.attachments.push(serde_json::Value::Array(
            sub.attachments
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "uri": a.uri, "media_type": a.media_type, "size_bytes": a.size_bytes,
                        "sha256": a.sha256, "file_name": a.file_name,
                    })
                })
                .collect(),
        ));
        let (key, wrapped) = intake.cipher.new_data_key(&n.id);
        self.wrapped_key.push(wrapped);
        self.name.push(key.seal(&sub.name, aad));
        self.kind.push(sub.contact.kind() as i16);
        self.contact.push(key.seal(sub.contact.value(), aad));
        self.data_keys.insert(n.id, key);
        self.complainant_ref.push(n.complainant_ref.clone());
        // Tickets hold no commas, so a joined string carries the array through unnest.
        self.earlier.push(n.earlier.join(","));
        self.received_at.push(sub.received_at);
        self.detail.push(if n.earlier.is_empty() {
            format!("via {}", sub.channel)
        } else {
            format!("via {}; repeat of {}", sub.channel, n.earlier.join(", "))
        });
    }
}

/// The event and the acknowledgement of one new complaint, made in its span.
fn messages_for(
    intake: &Intake,
    unit: &mut Unit,
    sub: &ValidSubmission,
    n: &New,
    key: &DataKey,
    now: chrono::DateTime<chrono::Utc>,
) {
    let cause = Cause {
        complaint_id: n.id,
        ticket: n.ticket.to_string(),
        causation_id: format!("{}:{}", sub.channel, sub.external_id),
        correlation_id: n.id.to_string(),
        playbook: sub.playbook.clone(),
    };
    let received_at = ts(sub.received_at);
    // The text key goes out first: the event that needs it follows it from the same outbox.
    unit.send_bytes(
        intake.ctx.subjects.text_key(&n.id.to_string()),
        format!("textkey:{}", n.id),
        key.text_key_bytes().to_vec(),
    );
    unit.emit(new_event(
        IDENT.name,
        &cause,
        now,
        Payload::ComplaintReceived(ComplaintReceived {
            ticket: n.ticket.to_string(),
            channel: sub.channel.clone(),
            external_id: sub.external_id.clone(),
            text: String::new(),
            sealed_text: key.text_key().seal(&sub.text, &n.id),
            attachments: sub.attachments.clone(),
            received_at,
            reference: sub.reference.clone(),
            referred_by: sub.referred_by.clone(),
            complainant_ref: n.complainant_ref.clone(),
            repeat: !n.earlier.is_empty(),
            earlier_tickets: n.earlier.clone(),
            solved_by: sub.solved.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
            sealed_solution: sub
                .solved
                .as_ref()
                .map(|s| key.text_key().seal(&s.1, &n.id))
                .unwrap_or_default(),
        }),
    ));
    let subject = intake.ctx.subjects.notify_ack(&sub.channel);
    unit.send(
        subject,
        format!("ack:{}", n.id),
        &Acknowledgement {
            ticket: n.ticket.to_string(),
            complaint_id: n.id.to_string(),
            channel: sub.channel.clone(),
            external_id: sub.external_id.clone(),
            recipient_name: sub.name.clone(),
            contact: Some(PContact {
                kind: sub.contact.kind() as i32,
                value: sub.contact.value().to_string(),
            }),
            message: acknowledgement_text(&sub.text, &n.ticket),
            received_at,
            status_secret: intake.cipher.status_secret(&n.id),
        },
    );
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
        status_secret: String::new(),
    }))
}
