//! `list`: a department's open work, oldest first.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_proto::subjects::is_subject_token;
use redress_proto::v1::{
    CommandError, CommandErrorCode, ListWork, ListWorkReply, WorkList, WorkState,
    list_work_reply::Outcome,
};

use crate::{Routing, store};

fn error(code: CommandErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(CommandError {
        code: code as i32,
        field: field.to_string(),
        message: message.into(),
    })
}

pub async fn handle(routing: Arc<Routing>, message: async_nats::Message) -> Bytes {
    let subject_dept = routing
        .ctx
        .subjects
        .department_of_command(&message.subject)
        .unwrap_or_default()
        .to_string();
    let outcome = match ListWork::decode(message.payload.clone()).map(|mut q| {
        // The department of the subject, which broker permissions can restrict, is the one
        // listed; a body naming another is refused below.
        if q.department.is_empty() {
            q.department = subject_dept.clone();
        }
        q
    }) {
        Err(e) => error(
            CommandErrorCode::Undecodable,
            "",
            format!("not a ListWork: {e}"),
        ),
        Ok(q) if q.department != subject_dept => error(
            CommandErrorCode::Forbidden,
            "department",
            format!(
                "sent on the subject of {subject_dept:?} for {}",
                q.department
            ),
        ),
        Ok(q) if q.department.is_empty() => error(
            CommandErrorCode::Missing,
            "department",
            "department is required",
        ),
        Ok(q) if !is_subject_token(&q.department) => error(
            CommandErrorCode::Malformed,
            "department",
            "lowercase letters, digits, - or _",
        ),
        Ok(q) => {
            let states: Result<Vec<WorkState>, _> =
                q.states.iter().map(|s| WorkState::try_from(*s)).collect();
            match states {
                Err(_) => error(CommandErrorCode::Malformed, "states", "unknown work state"),
                Ok(states) => {
                    let limit = if q.limit == 0 { 100 } else { q.limit.min(1000) };
                    match store::list(&routing.pool, &q.department, &states, limit as i64).await {
                        Ok(items) => Outcome::List(WorkList {
                            items: items.iter().map(|w| w.to_proto()).collect(),
                        }),
                        Err(e) => {
                            tracing::error!(error = %e, "list failed");
                            error(
                                CommandErrorCode::Internal,
                                "",
                                "storage unavailable, try again",
                            )
                        }
                    }
                }
            }
        }
    };
    ListWorkReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}
