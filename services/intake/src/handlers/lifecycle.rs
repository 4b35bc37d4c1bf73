//! Every lifecycle event after intake (classification, work changes, deadlines, approvals,
//! surveys): kept in the complaint's public status and history. Events may arrive late,
//! twice or out of order; each field moves only forward (work changes by version,
//! deadlines to a final state, approvals by proposal, surveys by round).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_platform::events::Event;
use redress_platform::inbox;
use redress_platform::nats::Outcome;
use redress_proto::time::to_unix_micros;
use redress_proto::v1::{Deadline, DeadlineState, Severity, Urgency, WorkState, envelope::Payload};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Intake;

pub async fn handle(intake: Arc<Intake>, event: Event) -> Outcome {
    if matches!(event.payload, Payload::ComplaintReceived(_)) {
        // Our own event: the complaint and its first history entry were written with it.
        return Outcome::Ack;
    }
    let Some(id) = event.complaint_id() else {
        return Outcome::DeadLetter("complaint_id is not a UUID".into());
    };
    let at = event
        .envelope
        .occurred_at
        .as_ref()
        .and_then(|t| DateTime::from_timestamp_micros(to_unix_micros(t)))
        .unwrap_or_else(|| intake.ctx.clock.now());
    match apply(&intake, &event, id, at).await {
        Ok(true) => Outcome::Ack,
        Ok(false) => Outcome::DeadLetter(format!("no complaint {id}")),
        Err(e) => redress_platform::events::retry(e),
    }
}

fn severity_name(s: i32) -> &'static str {
    match Severity::try_from(s).unwrap_or_default() {
        Severity::General => "general",
        Severity::Major => "major",
        Severity::Unspecified => "",
    }
}

fn urgency_name(u: i32) -> &'static str {
    match Urgency::try_from(u).unwrap_or_default() {
        Urgency::Normal => "normal",
        Urgency::Urgent => "urgent",
        Urgency::Emergency => "emergency",
        Urgency::Unspecified => "",
    }
}

/// The public status a work item in `state` and `round` stands for.
fn work_status(state: WorkState, round: u32) -> &'static str {
    match state {
        WorkState::Assigned if round > 1 => "reopened",
        WorkState::Assigned => "assigned",
        WorkState::Accepted => "in_progress",
        WorkState::Proposed => "awaiting_approval",
        WorkState::Approved => "approved",
        WorkState::Replied => "replied",
        WorkState::Resolved => "resolved",
        WorkState::Closed => "closed",
        WorkState::Unspecified => "",
    }
}

fn money(minor: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", minor / 100, minor % 100)
}

/// Returns false when the complaint is unknown.
async fn apply(intake: &Intake, event: &Event, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<bool> {
    let mut tx = intake.pool.begin().await?;
    if !inbox::record(&mut tx, &event.message_id).await? {
        return Ok(true);
    }
    // Lock the complaint so concurrent events of one complaint apply one after the other.
    let exists: Option<String> =
        sqlx::query_scalar("SELECT status FROM complaints WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Ok(false);
    }
    let now = intake.ctx.clock.now();
    let (name, detail) = match &event.payload {
        Payload::ComplaintClassified(c) => {
            sqlx::query(
                "UPDATE complaints SET nature = $2, category = $3, severity = $4, urgency = $5,
                     status = CASE WHEN status = 'received' THEN 'classified' ELSE status END,
                     updated_at = $6
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&c.nature)
            .bind(&c.category)
            .bind(severity_name(c.severity))
            .bind(urgency_name(c.urgency))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let rules: Vec<&str> = c.hits.iter().map(|h| h.rule.as_str()).collect();
            (
                "complaint.classified",
                format!(
                    "{} / {} / {} / {} (rules: {})",
                    c.nature,
                    c.category,
                    severity_name(c.severity),
                    urgency_name(c.urgency),
                    if rules.is_empty() {
                        "defaults".to_string()
                    } else {
                        rules.join(", ")
                    }
                ),
            )
        }
        Payload::WorkChanged(w) => {
            let Some(work) = &w.work else {
                return Ok(true);
            };
            let state = work.state();
            sqlx::query(
                "UPDATE complaints SET status = $3, department = $4, round = $5,
                     escalation_level = GREATEST(escalation_level, $6), work_version = $2,
                     updated_at = $7
                 WHERE id = $1 AND work_version < $2",
            )
            .bind(id)
            .bind(work.version as i64)
            .bind(work_status(state, work.round))
            .bind(&work.department)
            .bind(work.round as i32)
            .bind(work.escalation_level as i32)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let change = event
                .delivery
                .subject
                .rsplit('.')
                .nth(1)
                .unwrap_or("changed")
                .to_string();
            let detail = match state {
                WorkState::Assigned => format!(
                    "to {} (round {}, rule {})",
                    work.department, work.round, work.routing_rule
                ),
                WorkState::Proposed => work
                    .proposal
                    .as_ref()
                    .map(|p| {
                        let comp = if p.compensation_minor > 0 {
                            format!(
                                ", compensation {}",
                                money(p.compensation_minor, &p.currency)
                            )
                        } else {
                            String::new()
                        };
                        format!("by {}: {}{comp}", p.proposed_by, p.remedy)
                    })
                    .unwrap_or_default(),
                WorkState::Replied => format!("by {}: {}", w.actor, work.reply),
                _ if w.note.is_empty() => format!("by {}", w.actor),
                _ => format!("by {}: {}", w.actor, w.note),
            };
            (
                match change.as_str() {
                    "assigned" => "work.assigned",
                    "accepted" => "work.accepted",
                    "proposed" => "work.proposed",
                    "approved" => "work.approved",
                    "rejected" => "work.rejected",
                    "replied" => "work.replied",
                    "resolved" => "work.resolved",
                    "closed" => "work.closed",
                    _ => "work.changed",
                },
                detail,
            )
        }
        Payload::WorkEscalated(e) => {
            sqlx::query(
                "UPDATE complaints SET escalation_level = GREATEST(escalation_level, $2),
                     updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(e.level as i32)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            (
                "work.escalated",
                format!(
                    "{} breached; level {} to {}",
                    e.deadline, e.level, e.escalated_to
                ),
            )
        }
        Payload::DeadlinesArmed(a) => {
            for d in &a.deadlines {
                upsert_deadline(&mut tx, id, d, d.state()).await?;
            }
            let names: Vec<String> = a
                .deadlines
                .iter()
                .map(|d| format!("{} ({})", d.name, d.limit))
                .collect();
            ("sla.armed", names.join(", "))
        }
        Payload::DeadlineMet(s) | Payload::DeadlineBreached(s) | Payload::DeadlineWarned(s) => {
            let Some(d) = &s.deadline else {
                return Ok(true);
            };
            let (state, name) = match &event.payload {
                Payload::DeadlineMet(_) => (DeadlineState::Met, "sla.met"),
                Payload::DeadlineWarned(_) => (DeadlineState::Warned, "sla.warning"),
                _ => (DeadlineState::Breached, "sla.breached"),
            };
            upsert_deadline(&mut tx, id, d, state).await?;
            (name, format!("{} (round {})", d.name, d.round))
        }
        Payload::ApprovalRequested(r) => {
            let proposal = r
                .proposal
                .as_ref()
                .map(|p| p.proposal_id.clone())
                .unwrap_or_default();
            set_approval(&mut tx, id, &proposal, "pending", now).await?;
            (
                "approval.requested",
                format!("{} ({})", r.reason, r.approver_role),
            )
        }
        Payload::ApprovalDecided(d) => {
            let state = if d.approved { "approved" } else { "rejected" };
            set_approval(&mut tx, id, &d.proposal_id, state, now).await?;
            let detail = match (d.automatic, d.note.is_empty()) {
                (true, _) => format!("{state} by policy (no approval needed)"),
                (false, true) => format!("{state} by {}", d.decided_by),
                (false, false) => format!("{state} by {}: {}", d.decided_by, d.note),
            };
            ("approval.decided", detail)
        }
        Payload::SurveySent(s) => {
            set_survey(&mut tx, id, s.round, "sent", now).await?;
            ("survey.sent", format!("round {} by {}", s.round, s.channel))
        }
        Payload::SurveyAnswered(s) => {
            let outcome = if s.satisfied {
                "satisfied"
            } else {
                "dissatisfied"
            };
            set_survey(&mut tx, id, s.round, outcome, now).await?;
            let score = s.scores.as_ref().map(|x| x.overall).unwrap_or_default();
            (
                "survey.answered",
                format!("{outcome}, overall {score}/5 {}", s.comment)
                    .trim_end()
                    .to_string(),
            )
        }
        Payload::ComplaintClosed(c) => ("complaint.closed", format!("after round {}", c.round)),
        Payload::ComplaintReopened(r) => (
            "complaint.reopened",
            format!("round {} did not satisfy: {}", r.round, r.reason),
        ),
        Payload::ComplaintReceived(_) => unreachable!("acknowledged above"),
    };
    sqlx::query("INSERT INTO history (complaint_id, at, event, detail) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(at)
        .bind(name)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Met and breached are final, and warned beats armed: a late "armed" undoes neither.
async fn upsert_deadline(
    conn: &mut PgConnection,
    id: Uuid,
    d: &Deadline,
    state: DeadlineState,
) -> sqlx::Result<()> {
    let ts = |t: &Option<redress_proto::time::Timestamp>| {
        t.as_ref()
            .and_then(|t| DateTime::<Utc>::from_timestamp_micros(to_unix_micros(t)))
    };
    sqlx::query(
        "INSERT INTO deadlines (complaint_id, round, name, due_at, state, limit_text, calendar,
             settled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (complaint_id, round, name) DO UPDATE SET
             due_at = COALESCE(EXCLUDED.due_at, deadlines.due_at),
             limit_text = CASE WHEN EXCLUDED.limit_text = '' THEN deadlines.limit_text
                               ELSE EXCLUDED.limit_text END,
             calendar = CASE WHEN EXCLUDED.calendar = '' THEN deadlines.calendar
                             ELSE EXCLUDED.calendar END,
             state = CASE WHEN deadlines.state IN ($9, $10) THEN deadlines.state
                          WHEN deadlines.state = $11 AND EXCLUDED.state = $12
                               THEN deadlines.state
                          ELSE EXCLUDED.state END,
             settled_at = COALESCE(deadlines.settled_at, EXCLUDED.settled_at)",
    )
    .bind(id)
    .bind(d.round as i32)
    .bind(&d.name)
    .bind(ts(&d.due_at))
    .bind(state as i16)
    .bind(&d.limit)
    .bind(&d.calendar)
    .bind(ts(&d.settled_at))
    .bind(DeadlineState::Met as i16)
    .bind(DeadlineState::Breached as i16)
    .bind(DeadlineState::Warned as i16)
    .bind(DeadlineState::Armed as i16)
    .execute(conn)
    .await?;
    Ok(())
}

/// A decision on a proposal beats the request for it; a later proposal beats both.
async fn set_approval(
    conn: &mut PgConnection,
    id: Uuid,
    proposal: &str,
    state: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE complaints SET approval = $3, approval_proposal = $2, updated_at = $4
         WHERE id = $1
           AND (approval_proposal < $2 OR (approval_proposal = $2 AND $3 <> 'pending'))",
    )
    .bind(id)
    .bind(proposal)
    .bind(state)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// An answer beats the invitation of its round; a later round beats both.
async fn set_survey(
    conn: &mut PgConnection,
    id: Uuid,
    round: u32,
    state: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE complaints SET survey = $3, survey_round = $2, updated_at = $4
         WHERE id = $1 AND (survey_round < $2 OR (survey_round = $2 AND $3 <> 'sent'))",
    )
    .bind(id)
    .bind(round as i32)
    .bind(state)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
