//! `complaint.reopened`: the complainant is not satisfied; the department gets the work back
//! for a new round, announced as a new assignment.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::{ComplaintReopened, Deadline};

use crate::{Caused, Routing, store};

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    id: WorkId,
    r: &ComplaintReopened,
) -> Result<(), Failure> {
    let mut work = super::lock(unit, id).await?;
    let now = routing.now();
    let Some(change) = work.reopen(r.round, now) else {
        return Ok(());
    };
    let note = format!("reopened after round {}: {}", r.round, r.reason);
    store::save(unit.db(), &work, change.token(), "survey", &note, now).await?;
    unit.emit(routing.work_changed(
        &work,
        change,
        "survey",
        &note,
        Caused::Event(&event.envelope),
    ));
    // A second dissatisfied round climbs to whom the playbook names (after-sales, 003).
    let to = routing
        .playbooks
        .get(&work.playbook)
        .ok()
        .and_then(|pb| pb.survey.second_dissatisfied_to.clone());
    if r.round >= 2
        && let Some(to) = to
    {
        let deadline = Deadline {
            name: "satisfaction".into(),
            round: work.round,
            work_id: work.work_id.to_string(),
            ticket: work.ticket.clone(),
            department: work.department.clone(),
            ..Default::default()
        };
        let why = format!("dissatisfied again after round {}", r.round);
        super::sla_breached::escalate(
            routing,
            unit,
            event,
            work,
            &deadline,
            "satisfaction",
            Some(&to),
            &why,
        )
        .await?;
    }
    Ok(())
}
