//! `work.reclassified`: a department corrected a decision. The correction is recorded next
//! to the decision it corrects (what the rules said, what it should have been, who and
//! why), once per event, so that rules can be tuned and a model trained on real corrections.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure, Parsed};
use redress_proto::v1::{Reclassification, Severity, Urgency, WorkChanged, WorkItem};

use uuid::Uuid;

use crate::Classifier;

/// A correction, checked before any transaction.
pub struct Correction {
    event_id: Uuid,
    complaint_id: Uuid,
    was: Reclassification,
    now: WorkItem,
    actor: String,
}

pub fn parse(_: &Classifier, event: &Event, change: &WorkChanged) -> Parsed<Correction> {
    let (Some(was), Some(now)) = (&change.reclassification, &change.work) else {
        return Parsed::Reject("work.reclassified without the correction".into());
    };
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject("complaint_id is not a UUID".into());
    };
    let Ok(event_id) = Uuid::parse_str(&event.envelope.event_id) else {
        return Parsed::Reject(format!("event id {:?}", event.envelope.event_id));
    };
    Parsed::Handle(Correction {
        event_id,
        complaint_id,
        was: was.clone(),
        now: now.clone(),
        actor: change.actor.clone(),
    })
}

pub async fn record(
    classifier: &Classifier,
    unit: &mut Unit,
    event: &Event,
    c: &Correction,
) -> Result<(), Failure> {
    let inserted = sqlx::query(
        "INSERT INTO corrections (event_id, complaint_id, ticket, playbook, from_nature,
             from_category, from_severity, from_urgency, to_nature, to_category, to_severity,
             to_urgency, reason, corrected_by, department, corrected_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(c.event_id)
    .bind(c.complaint_id)
    .bind(&c.now.ticket)
    .bind(&event.envelope.playbook)
    .bind(&c.was.nature)
    .bind(&c.was.category)
    .bind(Severity::key_of(c.was.severity))
    .bind(Urgency::key_of(c.was.urgency))
    .bind(&c.now.nature)
    .bind(&c.now.category)
    .bind(Severity::key_of(c.now.severity))
    .bind(Urgency::key_of(c.now.urgency))
    .bind(&c.was.reason)
    .bind(&c.actor)
    .bind(&c.now.department)
    .bind(
        event
            .occurred_at()
            .unwrap_or_else(|| classifier.ctx.clock.now()),
    )
    .execute(unit.db())
    .await?
    .rows_affected();
    unit.count("classification_corrections_total", inserted);
    Ok(())
}
