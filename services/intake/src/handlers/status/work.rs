//! `work.*`: status, department, round and escalation from routing's work item, newest
//! version wins.

use chrono::{DateTime, Utc};
use redress_proto::types::Money;
use redress_proto::v1::{WorkChanged, WorkEscalated, WorkState};
use sqlx::PgConnection;
use uuid::Uuid;

/// The public status a work item in `state` and `round` stands for.
fn work_status(state: WorkState, round: u32) -> &'static str {
    match state {
        WorkState::Assigned if round > 1 => "reopened",
        WorkState::Assigned => "assigned",
        WorkState::Accepted => "in_progress",
        WorkState::Proposed => "awaiting_approval",
        WorkState::Approved => "approved",
        WorkState::Replied => "replied",
        WorkState::Resolved => "resolved",
        WorkState::Closed => "closed",
        WorkState::Unspecified => "",
    }
}

pub(super) async fn changed(
    db: &mut PgConnection,
    id: Uuid,
    w: &WorkChanged,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    let Some(work) = &w.work else {
        return Ok(String::new());
    };
    let state = work.state();
    sqlx::query(
        "UPDATE complaints SET status = $3, department = $4, round = $5,
             escalation_level = GREATEST(escalation_level, $6), work_version = $2,
             updated_at = $7
         WHERE id = $1 AND work_version < $2",
    )
    .bind(id)
    .bind(work.version as i64)
    .bind(work_status(state, work.round))
    .bind(&work.department)
    .bind(work.round as i32)
    .bind(work.escalation_level as i32)
    .bind(now)
    .execute(db)
    .await?;
    Ok(match state {
        WorkState::Assigned => format!(
            "to {} (round {}, rule {})",
            work.department, work.round, work.routing_rule
        ),
        WorkState::Proposed => work
            .proposal
            .as_ref()
            .map(|p| {
                let comp = if p.compensation_minor > 0 {
                    format!(
                        ", compensation {}",
                        Money::new(p.compensation_minor, &p.currency)
                    )
                } else {
                    String::new()
                };
                format!("by {}: {}{comp}", p.proposed_by, p.remedy)
            })
            .unwrap_or_default(),
        WorkState::Replied => format!("by {}: {}", w.actor, work.reply),
        _ if w.note.is_empty() => format!("by {}", w.actor),
        _ => format!("by {}: {}", w.actor, w.note),
    })
}

pub(super) async fn escalated(
    db: &mut PgConnection,
    id: Uuid,
    e: &WorkEscalated,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    sqlx::query(
        "UPDATE complaints SET escalation_level = GREATEST(escalation_level, $2),
             updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(e.level as i32)
    .bind(now)
    .execute(db)
    .await?;
    Ok(format!(
        "{} breached; level {} to {}",
        e.deadline, e.level, e.escalated_to
    ))
}
