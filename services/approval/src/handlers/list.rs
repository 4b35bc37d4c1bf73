//! `ListApprovals`: the approvals waiting for a decision, oldest first.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_proto::v1::list_approvals_reply::Outcome;
use redress_proto::v1::{ApprovalList, CommandErrorCode, ListApprovals, ListApprovalsReply};

use super::{COLUMNS, StoredApproval, command_error};
use crate::Approvals;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub async fn handle(approvals: Arc<Approvals>, message: async_nats::Message) -> Bytes {
    let outcome = match ListApprovals::decode(message.payload.clone()) {
        Err(e) => Outcome::Error(command_error(
            CommandErrorCode::Undecodable,
            "",
            format!("not a ListApprovals: {e}"),
        )),
        Ok(q) => {
            let limit = match q.limit {
                0 => DEFAULT_LIMIT,
                n => n.min(MAX_LIMIT),
            };
            match pending(&approvals, limit).await {
                Ok(items) => Outcome::List(ApprovalList { items }),
                Err(e) => {
                    tracing::error!(error = %e, "listing approvals failed");
                    Outcome::Error(command_error(
                        CommandErrorCode::Internal,
                        "",
                        "approvals are not available right now",
                    ))
                }
            }
        }
    };
    ListApprovalsReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

async fn pending(
    approvals: &Approvals,
    limit: u32,
) -> sqlx::Result<Vec<redress_proto::v1::ApprovalView>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE state = 'pending'
         ORDER BY requested_at, approval_id LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(&approvals.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| StoredApproval::from_row(r).view())
        .collect())
}
