//! `complaint.withdrawn`: the complainant took the complaint back; the work closes
//! (`work.withdrawn`), whatever state it had reached. A complaint withdrawn before routing
//! assigned it is retried until the assignment exists (seconds after classification), so
//! the withdrawal never loses a race with it.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use uuid::Uuid;

use crate::{Caused, Routing, store};

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    complaint_id: Uuid,
) -> Result<(), Failure> {
    let Some(mut work) = store::lock_by_complaint(unit.db(), complaint_id).await? else {
        return Err(Failure::Retry(format!(
            "complaint {complaint_id} is not assigned yet"
        )));
    };
    if let Some(change) = work.withdraw() {
        let now = routing.now();
        work.stop_waiting_unless_accepted(now);
        let note = "withdrawn by the complainant";
        store::save(unit.db(), &work, change.token(), "complainant", note, now).await?;
        unit.emit(routing.work_changed(
            &work,
            change,
            "complainant",
            note,
            Caused::Event(&event.envelope),
        ));
        unit.count("routing_withdrawn_total", 1);
    }
    Ok(())
}
