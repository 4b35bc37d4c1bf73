//! `sla.escalation`: a rung of a deadline's escalation ladder that escalates raises the
//! work's escalation level to the person or role it names, once per rung. Reminders,
//! warnings and notices are for the people they name; the work does not change.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::{Deadline, LadderStep};

use super::Input;
use super::sla_breached::escalate;
use crate::Routing;

/// An escalating rung and the work it is about.
pub struct Climb {
    work_id: WorkId,
    deadline: Deadline,
    /// The rung as the playbook states it, which keys the escalation.
    at: String,
    to: String,
}

/// None for a rung that does not escalate (or a page, which concerns no one deadline).
pub fn parse(step: &LadderStep) -> Option<Result<Input, String>> {
    if step.action != redress_playbook::RungAction::Escalate.as_str() {
        return None;
    }
    let deadline = step.deadline.as_ref()?;
    Some(super::work_id(&deadline.work_id).map(|work_id| {
        Input::Climbed(Box::new(Climb {
            work_id,
            deadline: deadline.clone(),
            at: step.at.clone(),
            to: step.to.clone(),
        }))
    }))
}

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    c: &Climb,
) -> Result<(), Failure> {
    let work = super::lock(unit, c.work_id).await?;
    let key = format!("{}@{}", c.deadline.name, c.at);
    let why = format!("{} at {}", c.deadline.name, c.at);
    escalate(
        routing,
        unit,
        event,
        work,
        &c.deadline,
        &key,
        Some(&c.to),
        &why,
    )
    .await
}
