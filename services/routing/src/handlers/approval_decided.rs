//! `approval.decided`: an approved proposal may be replied; a rejected one goes back to the
//! department.

use redress_platform::events::Event;
use redress_platform::nats::Outcome;
use redress_platform::{inbox, outbox};
use redress_proto::v1::ApprovalDecided;

use super::work_id;
use crate::{Caused, IDENT, Routing, store};

#[tracing::instrument(skip_all, fields(ticket = %d.ticket, approved = d.approved), err)]
pub async fn handle(
    routing: &Routing,
    event: &Event,
    d: &ApprovalDecided,
) -> sqlx::Result<Outcome> {
    let id = match work_id(&d.work_id) {
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
    if let Some(change) = work.decided(&d.proposal_id, d.approved) {
        store::save(&mut tx, &work, change, &d.decided_by, &d.note, now).await?;
        let msg = routing.work_changed(
            &work,
            change,
            &d.decided_by,
            &d.note,
            Caused::Event(&event.envelope),
        );
        outbox::enqueue(&mut tx, IDENT.schema, &routing.storage.outbox, &[msg]).await?;
    }
    tx.commit().await?;
    routing.storage.outbox.wake();
    Ok(Outcome::Ack)
}
