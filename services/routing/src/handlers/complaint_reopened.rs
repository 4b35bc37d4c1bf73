//! `complaint.reopened`: the complainant is not satisfied; the department gets the work back
//! for a new round, announced as a new assignment.

use redress_platform::events::Event;
use redress_platform::nats::Outcome;
use redress_platform::{inbox, outbox};
use redress_proto::v1::ComplaintReopened;

use super::work_id;
use crate::{Caused, IDENT, Routing, store};

#[tracing::instrument(skip_all, fields(ticket = %r.ticket, round = r.round), err)]
pub async fn handle(
    routing: &Routing,
    event: &Event,
    r: &ComplaintReopened,
) -> sqlx::Result<Outcome> {
    let id = match work_id(&r.work_id) {
        Ok(id) => id,
        Err(o) => return Ok(o),
    };
    let mut tx = routing.pool.begin().await?;
    if !inbox::record(&mut tx, &event.message_id).await? {
        return Ok(Outcome::Ack);
    }
    let Some(mut work) = store::lock_by_id(&mut tx, id).await? else {
        return Ok(Outcome::DeadLetter(format!("no work item {id}")));
    };
    let now = routing.now();
    if let Some(change) = work.reopen(r.round, now) {
        let note = format!("reopened after round {}: {}", r.round, r.reason);
        store::save(&mut tx, &work, change, "survey", &note, now).await?;
        let msg = routing.work_changed(
            &work,
            change,
            "survey",
            &note,
            Caused::Event(&event.envelope),
        );
        outbox::enqueue(&mut tx, IDENT.schema, &routing.storage.outbox, &[msg]).await?;
    }
    tx.commit().await?;
    routing.storage.outbox.wake();
    Ok(Outcome::Ack)
}
