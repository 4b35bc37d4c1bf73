//! `complaint.evidence_supplied`: the complainant answered an evidence request with its token
//! (intake checked it). The wait ends and the paused clocks resume; the department hears of
//! it on `work.evidence_received.<dept>` with what was supplied. An answer to a request that
//! is no longer waiting (the department went on without it) changes nothing.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::time::opt_to_chrono;
use redress_proto::v1::ComplaintEvidenceSupplied;
use uuid::Uuid;

use crate::{Caused, Routing, Told, store};

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    complaint_id: Uuid,
    e: &ComplaintEvidenceSupplied,
) -> Result<(), Failure> {
    let Some(mut work) = store::lock_by_complaint(unit.db(), complaint_id).await? else {
        return Err(Failure::Reject(format!(
            "no work for complaint {complaint_id}"
        )));
    };
    let now = routing.now();
    // The wait ends when the complainant answered, not when routing got to it.
    let at = opt_to_chrono(&e.supplied_at).unwrap_or(now).min(now);
    let Some(change) = work.evidence_supplied(e.seq, at) else {
        tracing::info!(seq = e.seq, "evidence for a request no longer waiting");
        return Ok(());
    };
    let actor = "complainant";
    // What was supplied travels on the event; routing keeps the files with the complaint's.
    for f in &e.files {
        if !work.attachments.iter().any(|a| a.uri == f.uri) {
            work.attachments.push(f.clone());
        }
    }
    let note = format!("evidence for request {} ({} file(s))", e.seq, e.files.len());
    store::save(unit.db(), &work, change.token(), actor, &note, now).await?;
    unit.emit(routing.work_changed_with(
        &work,
        change,
        actor,
        &note,
        Caused::Event(&event.envelope),
        Told {
            evidence: Some(e.clone()),
            ..Told::default()
        },
    ));
    unit.count("routing_evidence_received_total", 1);
    Ok(())
}
