//! Every lifecycle event after intake (classification, work changes, deadlines, approvals,
//! surveys), kept in the complaint's public status and history. Events may arrive late,
//! twice or out of order; each field moves only forward (work changes by version, deadlines
//! to a final state, approvals by proposal, surveys by round). One module per concern.
//!
//! A batch is applied with one statement per concern whatever its size: each concern first
//! folds the batch's events of one complaint the way the database would apply them one after
//! another, then writes the result with the same "only forward" rule against the stored row.
//!
//! The history has one line per act. A consequence another line already tells gets none:
//! `work.approved` and `work.rejected` follow the approver's `approval.decided`;
//! `complaint.closed`, `complaint.reopened` and `work.closed` follow the complainant's
//! `survey.answered` (the reopened round's new `work.assigned` has its own line);
//! `work.withdrawn` follows the complainant's `complaint.withdrawn`;
//! `work.evidence_received` follows the complainant's `complaint.evidence_supplied`.

mod approval;
mod classification;
mod deadlines;
mod evidence;
mod survey;
mod work;

use chrono::{DateTime, Utc};
use redress_platform::Unit;
use redress_platform::events::{Event, Failure, Handler, Parsed};
use redress_proto::EventKind;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{WorkChange, WorkChanged};
use uuid::Uuid;

use crate::Intake;

impl Handler for Intake {
    type Input = Uuid;

    fn parse(&self, event: &Event) -> Parsed<Uuid> {
        if matches!(
            event.kind,
            EventKind::ComplaintReceived
                | EventKind::ComplaintWithdrawn
                | EventKind::ComplaintResponded
                | EventKind::ComplaintEvidenceSupplied
        ) {
            // Our own events: the complaint's state and history line were written with them.
            return Parsed::Skip;
        }
        if !event.kind.about_a_complaint() {
            return Parsed::Skip;
        }
        match event.complaint_id() {
            Some(id) => Parsed::Handle(id),
            None => Parsed::Reject("complaint_id is not a UUID".into()),
        }
    }

    async fn apply(&self, unit: &mut Unit, event: &Event, id: &Uuid) -> Result<(), Failure> {
        apply_all(self, unit, &[(event, id)]).await
    }

    async fn apply_batch(&self, unit: &mut Unit, batch: &[(&Event, &Uuid)]) -> Result<(), Failure> {
        apply_all(self, unit, batch).await
    }
}

/// Whether the event's act has its own line in the history (see the module's comment).
fn has_history_line(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Work(
            WorkChange::Approved
                | WorkChange::Rejected
                | WorkChange::Closed
                | WorkChange::Withdrawn
                | WorkChange::EvidenceReceived
        ) | EventKind::ComplaintClosed
            | EventKind::ComplaintReopened
    )
}

/// The history lines of a batch, as column arrays.
#[derive(Default)]
struct History {
    ids: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
    event: Vec<&'static str>,
    detail: Vec<String>,
}

async fn apply_all(
    intake: &Intake,
    unit: &mut Unit,
    batch: &[(&Event, &Uuid)],
) -> Result<(), Failure> {
    let now = intake.ctx.clock.now();
    // Lock the batch's complaints in one order, so that concurrent batches wait for each
    // other instead of deadlocking, and events of one complaint apply one after the other.
    let mut ids: Vec<Uuid> = batch.iter().map(|(_, id)| **id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Joined from unnest: an index probe per complaint, where `= ANY` under a generic plan
    // costs several times more on a table every burst rewrites.
    let found: Vec<Uuid> = sqlx::query_scalar(
        "SELECT c.id FROM unnest($1::uuid[]) AS u(id) JOIN complaints c ON c.id = u.id
         ORDER BY c.id FOR UPDATE OF c",
    )
    .bind(&ids)
    .fetch_all(unit.db())
    .await?;
    if found.len() < ids.len() {
        let missing = ids.iter().find(|id| !found.contains(id)).expect("one is");
        return Err(Failure::Reject(format!("no complaint {missing}")));
    }

    let changes: Vec<(Uuid, &WorkChanged)> = batch
        .iter()
        .filter_map(|(event, id)| match &event.payload {
            Payload::WorkChanged(w) => Some((**id, w)),
            _ => None,
        })
        .collect();
    let replies = work::open_replies(&intake.cipher, unit.db(), &changes).await?;
    let mut classified = classification::Batch::default();
    let mut works = work::Batch::default();
    let mut deadlines = deadlines::Batch::default();
    let mut approvals = approval::Batch::default();
    let mut surveys = survey::Batch::default();
    let mut requests = evidence::Batch::default();
    let mut history = History::default();
    for (event, id) in batch {
        let id = **id;
        let detail = event.span.in_scope(|| match &event.payload {
            Payload::ComplaintClassified(c) => classified.add(id, c),
            Payload::WorkChanged(w) => {
                requests.changed(id, w);
                if w.change() == WorkChange::Reclassified
                    && let Some(work) = &w.work
                {
                    classified.corrected(id, work);
                }
                works.changed(id, w, &replies)
            }
            Payload::WorkEscalated(e) => works.escalated(id, e),
            Payload::DeadlinesArmed(a) => deadlines.armed(id, a),
            Payload::DeadlineMet(s) | Payload::DeadlineBreached(s) | Payload::DeadlineWarned(s) => {
                deadlines.settled(id, event.kind, s)
            }
            Payload::DeadlineEscalation(step) => deadlines::escalation_line(step),
            Payload::ApprovalRequested(r) => approvals.requested(id, r),
            Payload::ApprovalDecided(d) => approvals.decided(id, d),
            Payload::SurveySent(s) => surveys.sent(id, s),
            Payload::SurveyAnswered(s) => surveys.answered(id, s),
            Payload::ComplaintClosed(c) if c.no_response => surveys.unanswered(id, c),
            Payload::ComplaintClosed(_) | Payload::ComplaintReopened(_) => String::new(),
            Payload::ComplaintReceived(_)
            | Payload::ComplaintWithdrawn(_)
            | Payload::ComplaintResponded(_)
            | Payload::ComplaintEvidenceSupplied(_)
            | Payload::ReportPublished(_)
            | Payload::AnalyticsSpike(_) => {
                unreachable!("skipped in parse")
            }
        });
        // A close for want of an answer is an act of its own: no answer told it.
        let unanswered = matches!(&event.payload, Payload::ComplaintClosed(c) if c.no_response);
        if has_history_line(event.kind) || unanswered {
            history.ids.push(id);
            history.at.push(event.occurred_at().unwrap_or(now));
            history.event.push(event.kind.name());
            history.detail.push(detail);
        }
    }
    classified.store(unit.db(), now).await?;
    works.store(unit.db(), now).await?;
    requests.store(unit.db()).await?;
    // A merged duplicate's open deadlines will never be met or breached (the SLA timer
    // cancels its own the same way; a withdrawal cancelled them when it was made).
    let ended: Vec<Uuid> = batch
        .iter()
        .filter(|(event, _)| event.kind == EventKind::Work(WorkChange::Merged))
        .map(|(_, id)| **id)
        .collect();
    if !ended.is_empty() {
        sqlx::query(
            "UPDATE deadlines SET state = $2, settled_at = $3
             WHERE complaint_id = ANY($1) AND state IN ($4, $5)",
        )
        .bind(&ended)
        .bind(redress_proto::v1::DeadlineState::Cancelled as i16)
        .bind(now)
        .bind(redress_proto::v1::DeadlineState::Armed as i16)
        .bind(redress_proto::v1::DeadlineState::Warned as i16)
        .execute(unit.db())
        .await?;
    }
    deadlines.store(unit.db()).await?;
    approvals.store(unit.db(), now).await?;
    surveys.store(unit.db(), now).await?;
    if !history.ids.is_empty() {
        sqlx::query(
            "INSERT INTO history (complaint_id, at, event, detail)
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[])",
        )
        .bind(&history.ids)
        .bind(&history.at)
        .bind(&history.event)
        .bind(&history.detail)
        .execute(unit.db())
        .await?;
    }
    Ok(())
}
