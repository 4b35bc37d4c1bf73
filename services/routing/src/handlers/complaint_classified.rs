//! `complaint.classified`: route the complaint to its department and assign the work.

use redress_platform::events::Event;
use redress_platform::nats::Outcome;
use redress_platform::{inbox, outbox};
use redress_playbook::Severity;
use redress_proto::v1::{ComplaintClassified, WorkState};
use uuid::Uuid;

use crate::domain::route::route;
use crate::domain::work::Work;
use crate::{Caused, IDENT, Routing, store};

#[tracing::instrument(skip_all, fields(ticket = %c.ticket), err)]
pub async fn handle(
    routing: &Routing,
    event: &Event,
    c: &ComplaintClassified,
) -> sqlx::Result<Outcome> {
    let Some(complaint_id) = event.complaint_id() else {
        return Ok(Outcome::DeadLetter("complaint_id is not a UUID".into()));
    };
    let Ok(playbook) = routing.playbooks.get(&event.envelope.playbook) else {
        return Ok(Outcome::DeadLetter(format!(
            "unknown playbook {:?}",
            event.envelope.playbook
        )));
    };
    let Some(severity) = Severity::from_proto(c.severity()) else {
        return Ok(Outcome::DeadLetter(
            "classification without a severity".into(),
        ));
    };
    let (department, rule) = route(&playbook.routing, &c.category, severity);
    let now = routing.now();
    let work = Work {
        work_id: Uuid::now_v7(),
        complaint_id,
        ticket: c.ticket.clone(),
        playbook: playbook.key.clone(),
        correlation_id: event.envelope.correlation_id.clone(),
        department: department.to_string(),
        state: WorkState::Assigned,
        round: 1,
        version: 1,
        nature: c.nature.clone(),
        category: c.category.clone(),
        severity: c.severity,
        urgency: c.urgency,
        channel: c.channel.clone(),
        external_id: c.external_id.clone(),
        text: c.text.clone(),
        routing_rule: rule.to_string(),
        assigned_at: now,
        accepted_by: None,
        proposal: None,
        reply: None,
        escalation_level: 0,
        accepted_at: None,
        replied_at: None,
        resolved_at: None,
    };
    let mut tx = routing.pool.begin().await?;
    if !inbox::record(&mut tx, &event.message_id).await? {
        return Ok(Outcome::Ack);
    }
    // A second classification of the same complaint (another event id) assigns nothing new.
    if store::insert(&mut tx, &work, now).await? {
        let note = format!("rule {rule}");
        store::record_transition(&mut tx, &work, "assigned", IDENT.name, &note, now).await?;
        let msg = routing.work_changed(
            &work,
            "assigned",
            IDENT.name,
            &note,
            Caused::Event(&event.envelope),
        );
        outbox::enqueue(&mut tx, IDENT.schema, &routing.storage.outbox, &[msg]).await?;
        tracing::info!(department, rule, "assigned");
    }
    tx.commit().await?;
    routing.storage.outbox.wake();
    Ok(Outcome::Ack)
}
