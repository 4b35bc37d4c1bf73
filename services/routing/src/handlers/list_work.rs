//! `list`: a department's open work, oldest first.

use std::sync::Arc;

use redress_platform::commands::Refusal;
use redress_proto::subjects::is_subject_token;
use redress_proto::v1::{ListWork, ListWorkReply, WorkList, WorkState, list_work_reply::Outcome};

use crate::{Routing, store};

pub async fn handle(
    routing: Arc<Routing>,
    mut q: ListWork,
    message: async_nats::Message,
) -> Result<ListWorkReply, Refusal> {
    let subject_dept = routing
        .ctx
        .subjects
        .department_of_command(&message.subject)
        .unwrap_or_default()
        .to_string();
    // The department of the subject, which broker permissions can restrict, is the one
    // listed; a body naming another is refused.
    if q.department.is_empty() {
        q.department = subject_dept.clone();
    }
    if q.department != subject_dept {
        return Err(Refusal::forbidden(
            "department",
            format!(
                "sent on the subject of {subject_dept:?} for {}",
                q.department
            ),
        ));
    }
    Refusal::require("department", &q.department)?;
    if !is_subject_token(&q.department) {
        return Err(Refusal::malformed(
            "department",
            "lowercase letters, digits, - or _",
        ));
    }
    let states = q
        .states
        .iter()
        .map(|s| WorkState::try_from(*s))
        .collect::<Result<Vec<WorkState>, _>>()
        .map_err(|_| Refusal::malformed("states", "unknown work state"))?;
    let limit = if q.limit == 0 { 100 } else { q.limit.min(1000) };
    let items = store::list(&routing.store.pool, &q.department, &states, limit as i64).await?;
    Ok(ListWorkReply {
        outcome: Some(Outcome::List(WorkList {
            items: items.iter().map(|w| w.to_proto()).collect(),
        })),
    })
}
