//! One module per message routing handles.

pub mod approval_decided;
pub mod complaint_classified;
pub mod complaint_closed;
pub mod complaint_reopened;
pub mod list_work;
pub mod sla_breached;
pub mod work_command;

use std::sync::Arc;

use redress_platform::events::Event;
use redress_platform::nats::Outcome;
use redress_proto::v1::envelope::Payload;

use crate::Routing;

/// Hands each event routing cares about to its handler and acknowledges the rest.
pub async fn on_event(routing: Arc<Routing>, event: Event) -> Outcome {
    let result = match &event.payload {
        Payload::ComplaintClassified(c) => complaint_classified::handle(&routing, &event, c).await,
        Payload::ApprovalDecided(d) => approval_decided::handle(&routing, &event, d).await,
        Payload::DeadlineBreached(b) => sla_breached::handle(&routing, &event, b).await,
        Payload::ComplaintClosed(c) => complaint_closed::handle(&routing, &event, c).await,
        Payload::ComplaintReopened(r) => complaint_reopened::handle(&routing, &event, r).await,
        _ => return Outcome::Ack,
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => redress_platform::events::retry(e),
    }
}

/// Parses the work id an event refers to; a malformed one breaks the contract.
fn work_id(raw: &str) -> Result<uuid::Uuid, Outcome> {
    raw.parse()
        .map_err(|_| Outcome::DeadLetter(format!("work_id {raw:?} is not a UUID")))
}
