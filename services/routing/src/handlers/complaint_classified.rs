//! `complaint.classified`: route the complaint to its department and assign the work.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_playbook::Severity;
use redress_proto::v1::{ComplaintClassified, WorkChange, WorkState};
use uuid::Uuid;

use super::Input;
use crate::domain::route::route;
use crate::domain::work::Work;
use crate::{Caused, IDENT, Routing, store};

/// The work a classification assigns, decided before the transaction (routing is a pure
/// function of the classification and the playbook's rules).
pub struct Assignment {
    work: Work,
    rule: String,
}

pub fn parse(routing: &Routing, event: &Event, c: &ComplaintClassified) -> Result<Input, String> {
    let complaint_id = event
        .complaint_id()
        .ok_or_else(|| "complaint_id is not a UUID".to_string())?;
    let playbook = routing
        .playbooks
        .get(&event.envelope.playbook)
        .map_err(|_| format!("unknown playbook {:?}", event.envelope.playbook))?;
    let severity = Severity::from_proto(c.severity())
        .ok_or_else(|| "classification without a severity".to_string())?;
    let (department, rule) = route(&playbook.routing, &c.category, severity);
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
        // Set when applied, from the clock then.
        assigned_at: chrono::DateTime::UNIX_EPOCH,
        accepted_by: None,
        proposal: None,
        reply: None,
        escalation_level: 0,
        accepted_at: None,
        replied_at: None,
        resolved_at: None,
    };
    Ok(Input::Classified(Box::new(Assignment {
        work,
        rule: rule.to_string(),
    })))
}

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    a: &Assignment,
) -> Result<(), Failure> {
    let now = routing.now();
    let mut work = a.work.clone();
    work.assigned_at = now;
    // A second classification of the same complaint (another event id) assigns nothing new.
    if store::insert(unit.db(), &work, now).await? {
        let note = format!("rule {}", a.rule);
        store::record_transition(unit.db(), &work, "assigned", IDENT.name, &note, now).await?;
        unit.emit(routing.work_changed(
            &work,
            WorkChange::Assigned,
            IDENT.name,
            &note,
            Caused::Event(&event.envelope),
        ));
        unit.count("routing_assigned_total", 1);
        tracing::info!(department = %work.department, rule = %a.rule, "assigned");
    }
    Ok(())
}
