//! `complaint.responded` with a rejection: the complainant turned the reply down through their
//! channel's adapter; the work goes back for a new proposal in the same round, exactly as
//! when the department records a rejection heard on the phone (`work.contested`). Only the
//! reply the complainant saw counts: when the work has moved since (a new reply, a
//! resolution), the rejection is stale and changes nothing.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::v1::ComplaintResponded;
use uuid::Uuid;

use crate::{Caused, Routing, Told, store};

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    complaint_id: Uuid,
    r: &ComplaintResponded,
) -> Result<(), Failure> {
    let Some(mut work) = store::lock_by_complaint(unit.db(), complaint_id).await? else {
        return Err(Failure::Reject(format!(
            "no work for complaint {complaint_id}"
        )));
    };
    if work.version != r.work_version {
        tracing::info!(
            answered = r.work_version,
            now = work.version,
            "a rejection of an earlier reply; nothing to do"
        );
        return Ok(());
    }
    let Some(change) = work.rejected_by_complainant() else {
        return Ok(());
    };
    let now = routing.now();
    let actor = "complainant";
    let note = if r.sealed_comment.is_empty() {
        "rejected the reply"
    } else {
        ""
    };
    store::save(unit.db(), &work, change.token(), actor, note, now).await?;
    unit.emit(routing.work_changed_with(
        &work,
        change,
        actor,
        note,
        Caused::Event(&event.envelope),
        Told {
            sealed_note: r.sealed_comment.clone(),
            ..Told::default()
        },
    ));
    unit.count("routing_contested_total", 1);
    Ok(())
}
