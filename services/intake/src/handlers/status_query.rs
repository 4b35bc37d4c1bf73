//! `StatusQuery`: a complaint's public status, by ticket or by complaint id.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_proto::time::ts;
use redress_proto::v1::status_query::Key;
use redress_proto::v1::status_reply::Outcome;
use redress_proto::v1::{
    ComplaintStatus, Deadline, HistoryEntry, QueryError, QueryErrorCode, StatusQuery, StatusReply,
};
use sqlx::Row;
use tracing::Instrument;
use uuid::Uuid;

use crate::Intake;
use crate::domain::ticket::Ticket;

/// A query refused, naming the field.
pub(crate) fn query_error(
    code: QueryErrorCode,
    field: &str,
    message: impl Into<String>,
) -> QueryError {
    QueryError {
        code: code as i32,
        field: field.into(),
        message: message.into(),
    }
}

fn error(code: QueryErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(query_error(code, field, message))
}

/// Decodes a request of type `Q` (named `what` in the refusal) and parses the ticket it
/// carries.
pub(crate) fn decode_with_ticket<Q: prost::Message + Default>(
    payload: &[u8],
    what: &str,
    ticket_of: impl Fn(&Q) -> &str,
) -> Result<(Q, Ticket), QueryError> {
    let q = Q::decode(payload)
        .map_err(|e| query_error(QueryErrorCode::Malformed, "", format!("not {what}: {e}")))?;
    let ticket = Ticket::parse(ticket_of(&q))
        .map_err(|e| query_error(QueryErrorCode::Malformed, "ticket", e.to_string()))?;
    Ok((q, ticket))
}

/// The span of one request to intake (`otel_name` says which), continuing the sender's trace.
pub(crate) fn request_span(
    otel_name: &'static str,
    message: &async_nats::Message,
) -> tracing::Span {
    let span = tracing::info_span!(
        "command",
        otel.name = otel_name,
        redress.service = crate::IDENT.name,
        ticket = tracing::field::Empty,
    );
    redress_platform::telemetry::set_parent_from_headers(&span, message.headers.as_ref());
    span
}

pub async fn handle(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let span = request_span("intake.complaint.status", &message);
    answer(intake, message).instrument(span).await
}

async fn answer(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let outcome = match StatusQuery::decode(message.payload.clone()) {
        Err(e) => error(
            QueryErrorCode::Malformed,
            "",
            format!("not a StatusQuery: {e}"),
        ),
        Ok(q) => match q.key {
            None => error(
                QueryErrorCode::Malformed,
                "key",
                "give a ticket or a complaint id",
            ),
            Some(Key::Ticket(t)) => match Ticket::parse(&t) {
                Err(e) => error(QueryErrorCode::Malformed, "ticket", e.to_string()),
                Ok(t) => lookup(&intake, "ticket = $1", t.as_str().to_string()).await,
            },
            Some(Key::ComplaintId(id)) => match Uuid::parse_str(id.trim()) {
                Err(_) => error(QueryErrorCode::Malformed, "complaint_id", "not a UUID"),
                Ok(id) => lookup(&intake, "id = $1::uuid", id.to_string()).await,
            },
        },
    };
    StatusReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

async fn lookup(intake: &Intake, condition: &str, key: String) -> Outcome {
    match load(intake, condition, &key).await {
        Ok(Some(status)) => Outcome::Status(status),
        Ok(None) => error(QueryErrorCode::NotFound, "", format!("no complaint {key}")),
        Err(e) => {
            tracing::error!(error = %e, "status lookup failed");
            error(
                QueryErrorCode::Internal,
                "",
                "status is not available right now",
            )
        }
    }
}

pub(crate) async fn load(
    intake: &Intake,
    condition: &str,
    key: &str,
) -> sqlx::Result<Option<ComplaintStatus>> {
    let sql = format!(
        "SELECT id, ticket, status, channel, received_at, playbook, reference, repeat,
                earlier_tickets, updated_at, nature, category, severity, urgency, department,
                round, approval, survey, escalation_level
         FROM complaints WHERE {condition}"
    );
    let Some(row) = sqlx::query(&sql)
        .bind(key)
        .fetch_optional(&intake.store.pool)
        .await?
    else {
        return Ok(None);
    };
    let id: Uuid = row.get("id");
    let history = sqlx::query(
        "SELECT at, event, detail FROM history WHERE complaint_id = $1 ORDER BY at, seq",
    )
    .bind(id)
    .fetch_all(&intake.store.pool)
    .await?
    .into_iter()
    .map(|h| HistoryEntry {
        at: ts(h.get("at")),
        event: h.get("event"),
        detail: h.get("detail"),
    })
    .collect();
    let deadlines = sqlx::query(
        "SELECT round, name, due_at, state, limit_text, calendar, settled_at, remaining_secs
         FROM deadlines
         WHERE complaint_id = $1 ORDER BY round DESC, due_at, name",
    )
    .bind(id)
    .fetch_all(&intake.store.pool)
    .await?
    .into_iter()
    .map(|d| Deadline {
        name: d.get("name"),
        due_at: d
            .get::<Option<chrono::DateTime<chrono::Utc>>, _>("due_at")
            .and_then(ts),
        state: d.get::<i16, _>("state") as i32,
        limit: d.get("limit_text"),
        calendar: d.get("calendar"),
        round: d.get::<i32, _>("round") as u32,
        settled_at: d
            .get::<Option<chrono::DateTime<chrono::Utc>>, _>("settled_at")
            .and_then(ts),
        remaining_secs: d
            .get::<Option<i64>, _>("remaining_secs")
            .unwrap_or_default(),
        ..Default::default()
    })
    .collect();
    Ok(Some(ComplaintStatus {
        nature: row.get("nature"),
        category: row.get("category"),
        severity: row.get("severity"),
        urgency: row.get("urgency"),
        department: row.get("department"),
        round: row.get::<i32, _>("round") as u32,
        deadlines,
        approval: row.get("approval"),
        survey: row.get("survey"),
        escalation_level: row.get::<i32, _>("escalation_level") as u32,
        ticket: row.get("ticket"),
        complaint_id: id.to_string(),
        status: row.get("status"),
        channel: row.get("channel"),
        received_at: ts(row.get("received_at")),
        playbook: row.get("playbook"),
        reference: row.get("reference"),
        repeat: row.get("repeat"),
        earlier_tickets: row.get("earlier_tickets"),
        history,
        updated_at: ts(row.get("updated_at")),
    }))
}
