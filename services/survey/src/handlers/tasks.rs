//! `ListFollowUps` on `<root>.cmd.survey.tasks.<department>`: the phone follow-ups the
//! department has to make. A survey whose window ended unanswered, where the playbook says
//! the department calls (`survey.on_expiry = "phone"`), is open again with its expiry noted
//! and no new one; it leaves the list when a member records the call (or the complainant
//! answers after all). Sampled re-surveys are never tasks: their complaints are closed.

use std::sync::Arc;

use redress_platform::commands::Refusal;
use redress_proto::time::ts;
use redress_proto::v1::list_follow_ups_reply::Outcome;
use redress_proto::v1::{FollowUpList, FollowUpTask, ListFollowUps, ListFollowUpsReply};
use sqlx::Row;

use crate::Surveys;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub async fn handle(
    surveys: Arc<Surveys>,
    query: ListFollowUps,
    message: async_nats::Message,
) -> Result<ListFollowUpsReply, Refusal> {
    let department = query.department.trim();
    // The subject says whose list it is: a department's system may ask only on its own.
    let in_subject = message.subject.rsplit('.').next().unwrap_or_default();
    if in_subject != department {
        return Err(Refusal::forbidden(
            "department",
            format!("sent for department {in_subject}, but names {department:?}"),
        ));
    }
    let limit = match query.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let rows = sqlx::query(
        "SELECT ticket, round, department, playbook, sent_at, expired_at,
                reminded_at IS NOT NULL AS reminded
         FROM surveys
         WHERE department = $1 AND state = 'sent' AND expired_at IS NOT NULL AND NOT sample
         ORDER BY expired_at, survey_id LIMIT $2",
    )
    .bind(department)
    .bind(i64::from(limit))
    .fetch_all(&surveys.store.pool)
    .await?;
    let items = rows
        .iter()
        .map(|r| FollowUpTask {
            ticket: r.get("ticket"),
            round: u32::try_from(r.get::<i32, _>("round")).unwrap_or_default(),
            department: r.get("department"),
            playbook: r.get("playbook"),
            sent_at: ts(r.get("sent_at")),
            due_since: r
                .get::<Option<chrono::DateTime<chrono::Utc>>, _>("expired_at")
                .and_then(ts),
            reminded: r.get("reminded"),
        })
        .collect();
    Ok(ListFollowUpsReply {
        outcome: Some(Outcome::List(FollowUpList { items })),
    })
}
