//! `approval.*`: the approval of the latest proposal; a decision beats the request for it,
//! a later proposal beats both.

use chrono::{DateTime, Utc};
use redress_proto::v1::{ApprovalDecided, ApprovalRequested};
use sqlx::PgConnection;
use uuid::Uuid;

pub(super) async fn requested(
    db: &mut PgConnection,
    id: Uuid,
    r: &ApprovalRequested,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    let proposal = r
        .proposal
        .as_ref()
        .map(|p| p.proposal_id.clone())
        .unwrap_or_default();
    set(db, id, &proposal, "pending", now).await?;
    Ok(format!("{} ({})", r.reason, r.approver_role))
}

pub(super) async fn decided(
    db: &mut PgConnection,
    id: Uuid,
    d: &ApprovalDecided,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    let state = if d.approved { "approved" } else { "rejected" };
    set(db, id, &d.proposal_id, state, now).await?;
    Ok(match (d.automatic, d.note.is_empty()) {
        (true, _) => format!("{state} by policy (no approval needed)"),
        (false, true) => format!("{state} by {}", d.decided_by),
        (false, false) => format!("{state} by {}: {}", d.decided_by, d.note),
    })
}

async fn set(
    db: &mut PgConnection,
    id: Uuid,
    proposal: &str,
    state: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE complaints SET approval = $3, approval_proposal = $2, updated_at = $4
         WHERE id = $1
           AND (approval_proposal < $2 OR (approval_proposal = $2 AND $3 <> 'pending'))",
    )
    .bind(id)
    .bind(proposal)
    .bind(state)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}
