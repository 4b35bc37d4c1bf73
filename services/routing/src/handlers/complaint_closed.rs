//! `complaint.closed`: the complainant is satisfied; the work is done.

use redress_platform::events::Event;
use redress_platform::nats::Outcome;
use redress_platform::{inbox, outbox};
use redress_proto::v1::ComplaintClosed;

use super::work_id;
use crate::{Caused, IDENT, Routing, store};

#[tracing::instrument(skip_all, fields(ticket = %c.ticket, round = c.round), err)]
pub async fn handle(
    routing: &Routing,
    event: &Event,
    c: &ComplaintClosed,
) -> sqlx::Result<Outcome> {
    let id = match work_id(&c.work_id) {
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
    if let Some(change) = work.close(c.round) {
        let now = routing.now();
        let note = "complainant satisfied";
        store::save(&mut tx, &work, change, "survey", note, now).await?;
        let msg = routing.work_changed(
            &work,
            change,
            "survey",
            note,
            Caused::Event(&event.envelope),
        );
        outbox::enqueue(&mut tx, IDENT.schema, &routing.storage.outbox, &[msg]).await?;
    }
    tx.commit().await?;
    routing.storage.outbox.wake();
    Ok(Outcome::Ack)
}
