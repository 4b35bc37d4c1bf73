//! `approval.decided`: an approved proposal may be replied; a rejected one goes back to the
//! department.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::ApprovalDecided;

use crate::{Caused, Routing, store};

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    id: WorkId,
    d: &ApprovalDecided,
) -> Result<(), Failure> {
    let mut work = super::lock(unit, id).await?;
    if let Some(change) = work.decided(&d.proposal_id, d.approved) {
        let now = routing.now();
        store::save(
            unit.db(),
            &work,
            change.token(),
            &d.decided_by,
            &d.note,
            now,
        )
        .await?;
        unit.emit(routing.work_changed(
            &work,
            change,
            &d.decided_by,
            &d.note,
            Caused::Event(&event.envelope),
        ));
    }
    Ok(())
}
