//! `sla.breached`: escalate the work, once per breached deadline, to the next level of the
//! playbook's chain (the department's manager first).

use redress_platform::events::Event;
use redress_platform::nats::Outcome;
use redress_platform::{inbox, outbox};
use redress_proto::v1::{DeadlineSettled, WorkEscalated, envelope::Payload};

use super::work_id;
use crate::domain::route::escalated_to;
use crate::{Caused, IDENT, Routing, store};

#[tracing::instrument(skip_all, fields(work_id), err)]
pub async fn handle(
    routing: &Routing,
    event: &Event,
    b: &DeadlineSettled,
) -> sqlx::Result<Outcome> {
    let Some(deadline) = &b.deadline else {
        return Ok(Outcome::DeadLetter(
            "sla.breached without a deadline".into(),
        ));
    };
    let id = match work_id(&deadline.work_id) {
        Ok(id) => id,
        Err(o) => return Ok(o),
    };
    tracing::Span::current().record("work_id", tracing::field::display(id));
    let mut tx = routing.pool.begin().await?;
    if !inbox::record(&mut tx, &event.message_id).await? {
        return Ok(Outcome::Ack);
    }
    let Some(mut work) = store::lock_by_id(&mut tx, id).await? else {
        return Ok(Outcome::DeadLetter(format!("no work item {id}")));
    };
    let Ok(playbook) = routing.playbooks.get(&work.playbook) else {
        return Ok(Outcome::DeadLetter(format!(
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
    .fetch_one(&mut *tx)
    .await?;
    if !already && let Some(level) = work.escalate(deadline.round) {
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
        .execute(&mut *tx)
        .await?;
        let note = format!("{} breached; escalated to {to}", deadline.name);
        store::save(&mut tx, &work, "escalated", IDENT.name, &note, now).await?;
        let envelope = Caused::Event(&event.envelope).envelope(
            &work,
            now,
            Payload::WorkEscalated(WorkEscalated {
                work: Some(work.to_proto()),
                deadline: deadline.name.clone(),
                due_at: deadline.due_at,
                level,
                escalated_to: to.clone(),
            }),
        );
        let msg = redress_platform::events::outgoing(
            routing.ctx.subjects.work_escalated(&work.department),
            &envelope,
        );
        outbox::enqueue(&mut tx, IDENT.schema, &routing.storage.outbox, &[msg]).await?;
        tracing::warn!(deadline = %deadline.name, level, escalated_to = %to, "escalated");
    }
    tx.commit().await?;
    routing.storage.outbox.wake();
    Ok(Outcome::Ack)
}
