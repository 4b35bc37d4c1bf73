//! `sla.breached`: escalate the work, once per breached deadline, to the next level of the
//! playbook's chain (the department's manager first).

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::{Deadline, DeadlineSettled, WorkEscalated, envelope::Payload};

use super::Input;
use crate::domain::route::escalated_to;
use crate::{Caused, IDENT, Routing, store};

/// The breached deadline and the work it belongs to.
pub struct Breach {
    work_id: WorkId,
    deadline: Deadline,
}

pub fn parse(b: &DeadlineSettled) -> Result<Input, String> {
    let Some(deadline) = &b.deadline else {
        return Err("sla.breached without a deadline".into());
    };
    Ok(Input::Breached(Breach {
        work_id: super::work_id(&deadline.work_id)?,
        deadline: deadline.clone(),
    }))
}

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    b: &Breach,
) -> Result<(), Failure> {
    let deadline = &b.deadline;
    let id = b.work_id.uuid();
    let mut work = super::lock(unit, b.work_id).await?;
    let Ok(playbook) = routing.playbooks.get(&work.playbook) else {
        return Err(Failure::Reject(format!(
            "unknown playbook {:?}",
            work.playbook
        )));
    };
    let now = routing.now();
    let already: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM escalations WHERE work_id = $1 AND round = $2 AND deadline = $3)",
    )
    .bind(id)
    .bind(deadline.round as i32)
    .bind(&deadline.name)
    .fetch_one(unit.db())
    .await?;
    if already {
        return Ok(());
    }
    let Some(level) = work.escalate(deadline.round) else {
        return Ok(());
    };
    let to = escalated_to(&playbook.routing, &work.department, level);
    sqlx::query(
        "INSERT INTO escalations (work_id, round, deadline, level, escalated_to, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(deadline.round as i32)
    .bind(&deadline.name)
    .bind(level as i32)
    .bind(&to)
    .bind(now)
    .execute(unit.db())
    .await?;
    let note = format!("{} breached; escalated to {to}", deadline.name);
    store::save(unit.db(), &work, "escalated", IDENT.name, &note, now).await?;
    let mut item = work.to_proto();
    item.text.clear();
    item.sealed_text.clear();
    unit.emit(Caused::Event(&event.envelope).envelope(
        &work,
        now,
        Payload::WorkEscalated(WorkEscalated {
            work: Some(item),
            deadline: deadline.name.clone(),
            due_at: deadline.due_at,
            level,
            escalated_to: to.clone(),
        }),
    ));
    tracing::warn!(deadline = %deadline.name, level, escalated_to = %to, "escalated");
    Ok(())
}
