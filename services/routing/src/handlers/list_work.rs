//! `list`: a department's open work, oldest first.

use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use redress_platform::commands::Refusal;
use redress_platform::sealed::KeysError;
use redress_proto::subjects::is_subject_token;
use redress_proto::v1::{
    ListWork, ListWorkReply, WorkItem, WorkList, WorkState, list_work_reply::Outcome,
};

use crate::{Routing, store};

/// Texts opened concurrently for one list (each a lookup on the broker).
const OPEN_AT_ONCE: usize = 32;

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
    let work = store::list(&routing.store.pool, &q.department, &states, limit as i64).await?;
    // The department reads the text in clear: each item's opened with its complaint's key,
    // a few at a time.
    let items: Vec<WorkItem> = futures::stream::iter(work.into_iter().map(|w| {
        let keys = routing.ctx.text_keys.clone();
        async move {
            let mut item = w.to_proto();
            keys.open_work_item(&mut item, &w.complaint_id).await?;
            Ok::<_, KeysError>(item)
        }
    }))
    .buffered(OPEN_AT_ONCE)
    .try_collect()
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "complaint texts cannot be opened");
        Refusal::internal("the complaint texts cannot be read right now; ask again")
    })?;
    Ok(ListWorkReply {
        outcome: Some(Outcome::List(WorkList { items })),
    })
}
