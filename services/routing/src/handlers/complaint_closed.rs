//! `complaint.closed`: the complainant is satisfied; the work is done.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::ComplaintClosed;

use crate::{Caused, Routing, store};

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    id: WorkId,
    c: &ComplaintClosed,
) -> Result<(), Failure> {
    let mut work = super::lock(unit, id).await?;
    if let Some(change) = work.close(c.round) {
        let now = routing.now();
        let note = "complainant satisfied";
        store::save(unit.db(), &work, change.token(), "survey", note, now).await?;
        unit.emit(routing.work_changed(
            &work,
            change,
            "survey",
            note,
            Caused::Event(&event.envelope),
        ));
    }
    Ok(())
}
