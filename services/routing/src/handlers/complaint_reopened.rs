//! `complaint.reopened`: the complainant is not satisfied; the department gets the work back
//! for a new round, announced as a new assignment.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::ComplaintReopened;

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
    if let Some(change) = work.reopen(r.round, now) {
        let note = format!("reopened after round {}: {}", r.round, r.reason);
        store::save(unit.db(), &work, change.token(), "survey", &note, now).await?;
        unit.emit(routing.work_changed(
            &work,
            change,
            "survey",
            &note,
            Caused::Event(&event.envelope),
        ));
    }
    Ok(())
}
