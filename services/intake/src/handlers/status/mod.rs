//! Every lifecycle event after intake (classification, work changes, deadlines, approvals,
//! surveys), kept in the complaint's public status and history. Events may arrive late,
//! twice or out of order; each field moves only forward (work changes by version, deadlines
//! to a final state, approvals by proposal, surveys by round). One module per concern.
//!
//! The history has one line per act. A consequence another line already tells gets none:
//! `work.approved` and `work.rejected` follow the approver's `approval.decided`;
//! `complaint.closed`, `complaint.reopened` and `work.closed` follow the complainant's
//! `survey.answered` (the reopened round's new `work.assigned` has its own line).

mod approval;
mod classification;
mod deadlines;
mod survey;
mod work;

use chrono::{DateTime, Utc};
use redress_platform::Unit;
use redress_platform::events::{Event, Failure, Handler, Parsed};
use redress_proto::EventKind;
use redress_proto::v1::WorkChange;
use redress_proto::v1::envelope::Payload;
use uuid::Uuid;

use crate::Intake;

impl Handler for Intake {
    type Input = Uuid;

    fn parse(&self, event: &Event) -> Parsed<Uuid> {
        if event.kind == EventKind::ComplaintReceived {
            // Our own event: the complaint and its first history entry were written with it.
            return Parsed::Skip;
        }
        match event.complaint_id() {
            Some(id) => Parsed::Handle(id),
            None => Parsed::Reject("complaint_id is not a UUID".into()),
        }
    }

    async fn apply(&self, unit: &mut Unit, event: &Event, id: &Uuid) -> Result<(), Failure> {
        let at = event.occurred_at().unwrap_or_else(|| self.ctx.clock.now());
        apply(self, unit, event, *id, at).await
    }
}

/// Whether the event's act has its own line in the history (see the module's comment).
fn has_history_line(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Work(WorkChange::Approved | WorkChange::Rejected | WorkChange::Closed)
            | EventKind::ComplaintClosed
            | EventKind::ComplaintReopened
    )
}

async fn apply(
    intake: &Intake,
    unit: &mut Unit,
    event: &Event,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), Failure> {
    // Lock the complaint so concurrent events of one complaint apply one after the other.
    let exists: Option<String> =
        sqlx::query_scalar("SELECT status FROM complaints WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(unit.db())
            .await?;
    if exists.is_none() {
        return Err(Failure::Reject(format!("no complaint {id}")));
    }
    let now = intake.ctx.clock.now();
    let db = unit.db();
    let detail = match &event.payload {
        Payload::ComplaintClassified(c) => classification::apply(db, id, c, now).await?,
        Payload::WorkChanged(w) => work::changed(db, id, w, now).await?,
        Payload::WorkEscalated(e) => work::escalated(db, id, e, now).await?,
        Payload::DeadlinesArmed(a) => deadlines::armed(db, id, a).await?,
        Payload::DeadlineMet(s) | Payload::DeadlineBreached(s) | Payload::DeadlineWarned(s) => {
            deadlines::settled(db, id, event.kind, s).await?
        }
        Payload::ApprovalRequested(r) => approval::requested(db, id, r, now).await?,
        Payload::ApprovalDecided(d) => approval::decided(db, id, d, now).await?,
        Payload::SurveySent(s) => survey::sent(db, id, s, now).await?,
        Payload::SurveyAnswered(s) => survey::answered(db, id, s, now).await?,
        Payload::ComplaintClosed(_) | Payload::ComplaintReopened(_) => String::new(),
        Payload::ComplaintReceived(_) => unreachable!("skipped in parse"),
    };
    if has_history_line(event.kind) {
        sqlx::query(
            "INSERT INTO history (complaint_id, at, event, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(at)
        .bind(event.kind.name())
        .bind(detail)
        .execute(unit.db())
        .await?;
    }
    Ok(())
}
