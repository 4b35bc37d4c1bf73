//! One module per message routing handles.

pub mod approval_decided;
pub mod complaint_classified;
pub mod complaint_closed;
pub mod complaint_evidence_supplied;
pub mod complaint_reopened;
pub mod complaint_responded;
pub mod complaint_withdrawn;
pub mod list_work;
pub mod sla_breached;
pub mod sla_escalation;
pub mod work_command;

use redress_platform::Unit;
use redress_platform::events::{Event, Failure, Handler, Parsed};
use redress_proto::types::WorkId;
use redress_proto::v1::envelope::Payload;

use crate::Routing;
use crate::domain::work::Work;

/// What routing reads from an event before its transaction.
pub enum Input {
    Classified(Box<complaint_classified::Assignment>),
    Decided(WorkId),
    Breached(Box<sla_breached::Breach>),
    Climbed(Box<sla_escalation::Climb>),
    Closed(WorkId),
    Reopened(WorkId),
    Withdrawn(uuid::Uuid),
    Responded(uuid::Uuid),
    EvidenceSupplied(uuid::Uuid),
}

impl Handler for Routing {
    type Input = Input;

    fn parse(&self, event: &Event) -> Parsed<Input> {
        let parsed = match &event.payload {
            Payload::ComplaintClassified(c) => complaint_classified::parse(self, event, c),
            Payload::ApprovalDecided(d) => work_id(&d.work_id).map(Input::Decided),
            Payload::DeadlineBreached(b) => sla_breached::parse(b),
            Payload::DeadlineEscalation(step) => match sla_escalation::parse(step) {
                Some(parsed) => parsed,
                None => return Parsed::Skip,
            },
            Payload::ComplaintClosed(c) => work_id(&c.work_id).map(Input::Closed),
            Payload::ComplaintReopened(r) => work_id(&r.work_id).map(Input::Reopened),
            // An acceptance changes nothing in the work: the department resolves.
            Payload::ComplaintResponded(r) if r.accepted => return Parsed::Skip,
            Payload::ComplaintResponded(_) => event
                .complaint_id()
                .map(Input::Responded)
                .ok_or_else(|| "complaint_id is not a UUID".to_string()),
            Payload::ComplaintEvidenceSupplied(_) => event
                .complaint_id()
                .map(Input::EvidenceSupplied)
                .ok_or_else(|| "complaint_id is not a UUID".to_string()),
            Payload::ComplaintWithdrawn(_) => event
                .complaint_id()
                .map(Input::Withdrawn)
                .ok_or_else(|| "complaint_id is not a UUID".to_string()),
            _ => return Parsed::Skip,
        };
        match parsed {
            Ok(input) => Parsed::Handle(input),
            Err(reason) => Parsed::Reject(reason),
        }
    }

    async fn apply(&self, unit: &mut Unit, event: &Event, input: &Input) -> Result<(), Failure> {
        match (input, &event.payload) {
            (Input::Classified(a), _) => {
                complaint_classified::apply_all(self, unit, &[(event, a)]).await
            }
            (Input::Decided(id), Payload::ApprovalDecided(d)) => {
                approval_decided::apply(self, unit, event, *id, d).await
            }
            (Input::Breached(b), _) => sla_breached::apply(self, unit, event, b).await,
            (Input::Climbed(c), _) => sla_escalation::apply(self, unit, event, c).await,
            (Input::Closed(id), Payload::ComplaintClosed(c)) => {
                complaint_closed::apply(self, unit, event, *id, c).await
            }
            (Input::Reopened(id), Payload::ComplaintReopened(r)) => {
                complaint_reopened::apply(self, unit, event, *id, r).await
            }
            (Input::Withdrawn(id), _) => complaint_withdrawn::apply(self, unit, event, *id).await,
            (Input::Responded(id), Payload::ComplaintResponded(r)) => {
                complaint_responded::apply(self, unit, event, *id, r).await
            }
            (Input::EvidenceSupplied(id), Payload::ComplaintEvidenceSupplied(e)) => {
                complaint_evidence_supplied::apply(self, unit, event, *id, e).await
            }
            _ => unreachable!("parse pairs each input with its payload"),
        }
    }

    async fn apply_batch(
        &self,
        unit: &mut Unit,
        batch: &[(&Event, &Input)],
    ) -> Result<(), Failure> {
        self.apply_all(unit, batch).await
    }
}

impl Routing {
    /// Assignments together (one statement each for the work items and their transitions),
    /// then the rest one by one, in order.
    async fn apply_all(&self, unit: &mut Unit, batch: &[(&Event, &Input)]) -> Result<(), Failure> {
        let assignments: Vec<(&Event, &complaint_classified::Assignment)> = batch
            .iter()
            .filter_map(|(e, i)| match i {
                Input::Classified(a) => Some((*e, &**a)),
                _ => None,
            })
            .collect();
        if !assignments.is_empty() {
            complaint_classified::apply_all(self, unit, &assignments).await?;
        }
        for (event, input) in batch {
            if !matches!(input, Input::Classified(_)) {
                use tracing::Instrument as _;
                self.apply(unit, event, input)
                    .instrument(event.span.clone())
                    .await?;
            }
        }
        Ok(())
    }
}

/// Parses the work id an event refers to; a malformed one breaks the contract.
fn work_id(raw: &str) -> Result<WorkId, String> {
    WorkId::parse(raw).map_err(|e| e.to_string())
}

/// The work item `id`, locked until the unit ends; an event about a work item routing never
/// made breaks the contract.
async fn lock(unit: &mut Unit, id: WorkId) -> Result<Work, Failure> {
    crate::store::lock_by_id(unit.db(), id.uuid())
        .await?
        .ok_or_else(|| Failure::Reject(format!("no work item {id}")))
}
