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
    /// Solved on the spot: by whom, and the sealed account of what was done.
    solved: Option<(String, Vec<u8>)>,
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
        sealed_text: c.sealed_text.clone(),
        routing_rule: rule.to_string(),
        // Set when applied, from the clock then.
        assigned_at: chrono::DateTime::UNIX_EPOCH,
        accepted_by: None,
        proposal: None,
        reply: None,
        sealed_reply: Vec::new(),
        escalation_level: 0,
        accepted_at: None,
        replied_at: None,
        resolved_at: None,
        previous_departments: Vec::new(),
        contests: 0,
        committed_on: None,
        attachments: c.attachments.clone(),
        merged_into: None,
        evidence: Vec::new(),
        explained: false,
        received_at: redress_proto::time::opt_to_chrono(&c.received_at),
    };
    let solved = (!c.solved_by.trim().is_empty())
        .then(|| (c.solved_by.trim().to_string(), c.sealed_solution.clone()));
    Ok(Input::Classified(Box::new(Assignment {
        work,
        rule: rule.to_string(),
        solved,
    })))
}

/// Assigns the batch's classified complaints with one insert of work items and one of their
/// first transitions. A second classification of the same complaint (another event id, in
/// this batch or before) assigns nothing new.
pub async fn apply_all(
    routing: &Routing,
    unit: &mut Unit,
    batch: &[(&Event, &Assignment)],
) -> Result<(), Failure> {
    let now = routing.now();
    let works: Vec<Work> = batch
        .iter()
        .map(|(_, a)| {
            let mut w = a.work.clone();
            w.assigned_at = now;
            w
        })
        .collect();
    let notes: Vec<String> = batch
        .iter()
        .map(|(_, a)| format!("rule {}", a.rule))
        .collect();
    let assigned = store::insert_all(unit.db(), &works, now).await?;
    let new: Vec<usize> = (0..works.len())
        .filter(|&i| assigned.contains(&works[i].work_id))
        .collect();
    let transitions: Vec<(&Work, &str)> = new
        .iter()
        .map(|&i| (&works[i], notes[i].as_str()))
        .collect();
    store::record_transitions(unit.db(), &transitions, "assigned", IDENT.name, now).await?;
    for &i in &new {
        let (event, a) = batch[i];
        let envelope = routing.work_changed(
            &works[i],
            WorkChange::Assigned,
            IDENT.name,
            &notes[i],
            Caused::Event(&event.envelope),
        );
        event.span.in_scope(|| {
            tracing::info!(
                target: redress_platform::telemetry::OUTCOME,
                department = %works[i].department,
                rule = %a.rule,
                "assigned"
            );
            unit.emit(envelope);
        });
        unit.count("routing_assigned_total", 1);
    }
    // Solved on the spot: on record as taken on, answered and resolved by whoever solved it,
    // each step its own event, so the deadlines are met and the survey follows as usual.
    for &i in &new {
        let (event, a) = batch[i];
        let Some((by, sealed)) = &a.solved else {
            continue;
        };
        let refused = |r: crate::domain::work::Refusal| Failure::Reject(r.to_string());
        let mut w = works[i].clone();
        let accepted = w.accept(by, now).map_err(refused)?;
        store::record_transition(unit.db(), &w, accepted.token(), by, "", now).await?;
        unit.emit(routing.work_changed(&w, accepted, by, "", Caused::Event(&event.envelope)));
        let replied = w
            .answered_on_the_spot(sealed.clone(), now)
            .map_err(refused)?;
        store::record_transition(unit.db(), &w, replied.token(), by, "", now).await?;
        unit.emit(routing.work_changed(&w, replied, by, "", Caused::Event(&event.envelope)));
        let note = "solved on the spot";
        let change = w.resolve(now).map_err(|r| Failure::Reject(r.to_string()))?;
        store::save(unit.db(), &w, change.token(), by, note, now).await?;
        unit.emit(routing.work_changed(&w, change, by, note, Caused::Event(&event.envelope)));
        unit.count("routing_solved_on_the_spot_total", 1);
    }
    Ok(())
}
