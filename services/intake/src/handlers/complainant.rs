//! What the complainant's own requests share (withdraw, respond, evidence): the proof that the sender is
//! the complainant (the ticket and the secret of the acknowledgement, the same the public
//! status view asks for) and the checks on the free text they write.

use redress_proto::v1::{QueryError, QueryErrorCode};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::status_query::query_error;
use crate::Intake;

/// The complaint row of `ticket` (with `columns`, which must include `id`), locked until the
/// unit ends, when `secret` proves the sender is its complainant. An unknown ticket and a
/// wrong secret get the same refusal, so neither can be probed.
pub(crate) async fn lock_proven(
    intake: &Intake,
    unit: &mut redress_platform::Unit,
    ticket: &str,
    secret: &str,
    columns: &str,
) -> sqlx::Result<Result<(Uuid, PgRow), QueryError>> {
    use sqlx::Row as _;
    let not_found = || {
        query_error(
            QueryErrorCode::NotFound,
            "secret",
            "no complaint has this ticket and secret",
        )
    };
    let Some(row) = sqlx::query(&format!(
        "SELECT {columns} FROM complaints WHERE ticket = $1 FOR UPDATE"
    ))
    .bind(ticket)
    .fetch_optional(unit.db())
    .await?
    else {
        return Ok(Err(not_found()));
    };
    let id: Uuid = row.get("id");
    if !intake.cipher.check_status_secret(&id, secret) {
        return Ok(Err(not_found()));
    }
    Ok(Ok((id, row)))
}

/// The history line of an act of the complainant's (a withdrawal, an answer to a reply,
/// evidence), written with the act itself.
pub(crate) async fn history_line(
    unit: &mut redress_platform::Unit,
    complaint_id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
    kind: redress_proto::EventKind,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO history (complaint_id, at, event, detail) VALUES ($1, $2, $3, $4)")
        .bind(complaint_id)
        .bind(at)
        .bind(kind.name())
        .bind(detail)
        .execute(unit.db())
        .await?;
    Ok(())
}

/// The secret must be given: only the complainant has it.
pub(crate) fn require_secret(secret: &str, to: &str) -> Result<(), QueryError> {
    if secret.trim().is_empty() {
        return Err(query_error(
            QueryErrorCode::Malformed,
            "secret",
            format!("give the secret of the acknowledgement: only the complainant may {to}"),
        ));
    }
    Ok(())
}

/// Free text from the complainant: at most `max` bytes, no control characters but line
/// breaks and tabs (PostgreSQL and the adapters downstream refuse the rest).
pub(crate) fn check_text(field: &str, text: &str, max: usize) -> Result<(), QueryError> {
    if text.len() > max {
        return Err(query_error(
            QueryErrorCode::Malformed,
            field,
            format!("at most {max} bytes"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(query_error(
            QueryErrorCode::Malformed,
            field,
            "control characters are not allowed",
        ));
    }
    Ok(())
}
