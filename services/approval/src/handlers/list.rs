//! `ListApprovals`: the approvals waiting for a decision, oldest first.

use std::sync::Arc;

use redress_platform::commands::Refusal;
use redress_proto::v1::list_approvals_reply::Outcome;
use redress_proto::v1::{ApprovalList, ListApprovals, ListApprovalsReply};

use super::{COLUMNS, StoredApproval};
use crate::Approvals;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub async fn handle(
    approvals: Arc<Approvals>,
    query: ListApprovals,
) -> Result<ListApprovalsReply, Refusal> {
    let limit = match query.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE state = 'pending'
         ORDER BY requested_at, approval_id LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(&approvals.store.pool)
    .await?;
    let mut conn = approvals.store.pool.acquire().await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        items.push(
            StoredApproval::from_row(r)
                .view_with_decisions(&mut conn)
                .await?,
        );
    }
    Ok(ListApprovalsReply {
        outcome: Some(Outcome::List(ApprovalList { items })),
    })
}
