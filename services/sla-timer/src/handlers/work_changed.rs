//! `WorkChanged`: arms a round's deadlines the first time the round is seen with its clock
//! start, and settles them as the work reaches the states they wait for.
//!
//! The event's work item, not its subject, decides: "state ≥ X in round r" means X happened
//! in round r, so missed, repeated or reordered events of a round reach the same deadlines.
//! An event after ASSIGNED carries the round's `assigned_at` and arms the round as well as
//! an ASSIGNED one would; an event without it is remembered in `progress` until the round
//! can be armed, which then creates its deadlines already settled.

use chrono::{DateTime, Utc};
use redress_platform::Unit;
use redress_platform::envelope::follow_up;
use redress_platform::events::{Event, Failure, Parsed};
use redress_playbook::{Severity, Urgency};
use redress_proto::time::opt_to_chrono;
use redress_proto::types::WorkId;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{DeadlineState, DeadlinesArmed, WorkChanged, WorkItem, WorkState};
use sqlx::Row;
use uuid::Uuid;

use super::{COLUMNS, StoredDeadline, state_name};
use crate::domain::deadline::{self, Planned, Progress, parse_met_by, settle};
use crate::{IDENT, SlaTimer};

/// What one work event tells of its round, read before any transaction.
pub struct Round {
    work: WorkItem,
    work_id: WorkId,
    round: i32,
    complaint_id: Uuid,
    playbook: String,
    playbook_version: String,
    warn_at_percent: Option<u32>,
    /// What this event tells of the round.
    progress: Progress,
    /// The round's deadlines, when the event says when its clock started.
    plan: Option<(DateTime<Utc>, Vec<Planned>)>,
}

pub fn parse(sla: &SlaTimer, event: &Event, change: &WorkChanged) -> Parsed<Round> {
    let Some(work) = &change.work else {
        return Parsed::Reject("WorkChanged without a work item".into());
    };
    let state = work.state();
    if state == WorkState::Unspecified {
        return Parsed::Reject(format!("work item {:?} without a state", work.work_id));
    }
    let work_id = match WorkId::parse(&work.work_id) {
        Ok(id) => id,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject(format!(
            "complaint id {:?} is not a UUID",
            event.envelope.complaint_id
        ));
    };
    let playbook = match sla.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let Ok(round) = i32::try_from(work.round.max(1)) else {
        return Parsed::Reject(format!("round {} is out of range", work.round));
    };
    let occurred_at = event.occurred_at().unwrap_or_else(|| sla.ctx.clock.now());
    // The round's clock starts at assignment: the work item's own record of it, else the
    // ASSIGNED event's time. Any other event without it cannot start the clock.
    let start =
        opt_to_chrono(&work.assigned_at).or((state == WorkState::Assigned).then_some(occurred_at));
    let plan = match start {
        None => None,
        Some(start) => {
            let (severity, urgency) = grade(sla, work);
            match deadline::plan(playbook, &sla.calendars, severity, urgency, start) {
                Ok(planned) => Some((start, planned)),
                Err(e) => return Parsed::Reject(format!("computing deadlines: {e}")),
            }
        }
    };
    Parsed::Handle(Round {
        work: work.clone(),
        work_id,
        round,
        complaint_id,
        playbook: playbook.key.clone(),
        playbook_version: playbook.version.clone(),
        warn_at_percent: playbook.sla.warn_at_percent,
        progress: progress_of(work, state, occurred_at),
        plan,
    })
}

/// Severity and urgency pick the policies; work that lacks them (a contract breach upstream)
/// still gets deadlines, those of general, normal work, rather than none.
fn grade(sla: &SlaTimer, work: &WorkItem) -> (Severity, Urgency) {
    let severity = Severity::from_proto(work.severity());
    let urgency = Urgency::from_proto(work.urgency());
    if severity.is_none() || urgency.is_none() {
        tracing::warn!(work_id = %work.work_id, "work item without severity or urgency");
        sla.ctx.metrics.incr("sla-timer_contract_violations_total");
    }
    (
        severity.unwrap_or(Severity::General),
        urgency.unwrap_or(Urgency::Normal),
    )
}

pub async fn apply(
    sla: &SlaTimer,
    unit: &mut Unit,
    event: &Event,
    r: &Round,
) -> Result<(), Failure> {
    let now = sla.ctx.clock.now();
    let work = &r.work;
    // Locks the round's row, so events of one round are applied one after another whichever
    // instance handles them.
    let row = sqlx::query(
        "INSERT INTO progress (work_id, round, accepted_at, replied_at, resolved_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (work_id, round) DO UPDATE SET
             accepted_at = LEAST(progress.accepted_at, EXCLUDED.accepted_at),
             replied_at = LEAST(progress.replied_at, EXCLUDED.replied_at),
             resolved_at = LEAST(progress.resolved_at, EXCLUDED.resolved_at)
         RETURNING accepted_at, replied_at, resolved_at, armed_at",
    )
    .bind(r.work_id.uuid())
    .bind(r.round)
    .bind(r.progress.accepted_at)
    .bind(r.progress.replied_at)
    .bind(r.progress.resolved_at)
    .fetch_one(unit.db())
    .await?;
    let progress = Progress {
        accepted_at: row.get("accepted_at"),
        replied_at: row.get("replied_at"),
        resolved_at: row.get("resolved_at"),
    };
    let armed_at: Option<DateTime<Utc>> = row.get("armed_at");

    let publish = |payload: Payload| follow_up(IDENT.name, &event.envelope, now, payload);
    let settled = match (armed_at, &r.plan) {
        (None, Some((start, planned))) => {
            let start = *start;
            let mut deadlines = Vec::with_capacity(planned.len());
            for p in planned {
                let d = StoredDeadline {
                    id: Uuid::now_v7(),
                    work_id: r.work_id,
                    round: r.round,
                    name: p.name.clone(),
                    complaint_id: r.complaint_id,
                    correlation_id: event.envelope.correlation_id.clone(),
                    playbook: r.playbook.clone(),
                    ticket: work.ticket.clone(),
                    department: work.department.clone(),
                    limit_text: p.limit.clone(),
                    calendar: p.calendar.clone(),
                    met_by: p.met_by.as_str().to_string(),
                    due_at: p.due_at,
                    state: DeadlineState::Armed,
                    settled_at: None,
                };
                let d = match settle(p.due_at, progress.reached_at(p.met_by)) {
                    Some(s) => d.settled(s),
                    None => d,
                };
                let warn_at = r
                    .warn_at_percent
                    .map(|pct| start + (p.due_at - start) * i32::try_from(pct).unwrap_or(0) / 100);
                insert(unit.db(), &d, &r.playbook_version, start, warn_at, now).await?;
                deadlines.push(d);
            }
            sqlx::query("UPDATE progress SET armed_at = $3 WHERE work_id = $1 AND round = $2")
                .bind(r.work_id.uuid())
                .bind(r.round)
                .bind(now)
                .execute(unit.db())
                .await?;
            if !deadlines.is_empty() {
                unit.count("sla_armed_total", deadlines.len() as u64);
                unit.emit(publish(Payload::DeadlinesArmed(DeadlinesArmed {
                    deadlines: deadlines.iter().map(StoredDeadline::to_proto).collect(),
                })));
            }
            // Every deadline ends with exactly one met or breached event, also when it is
            // born settled.
            deadlines
        }
        (None, None) => Vec::new(),
        (Some(_), _) => {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM deadlines
                 WHERE work_id = $1 AND round = $2 AND state = 'armed'
                 ORDER BY due_at, name FOR UPDATE"
            ))
            .bind(r.work_id.uuid())
            .bind(r.round)
            .fetch_all(unit.db())
            .await?;
            let mut settled = Vec::new();
            for row in &rows {
                let d = StoredDeadline::from_row(row);
                let Some(met_by) = parse_met_by(&d.met_by) else {
                    continue;
                };
                let Some(s) = settle(d.due_at, progress.reached_at(met_by)) else {
                    continue;
                };
                let d = d.settled(s);
                sqlx::query("UPDATE deadlines SET state = $2, settled_at = $3 WHERE id = $1")
                    .bind(d.id)
                    .bind(state_name(d.state))
                    .bind(d.settled_at)
                    .execute(unit.db())
                    .await?;
                settled.push(d);
            }
            settled
        }
    };
    for d in &settled {
        if let Some(payload) = d.settled_event() {
            unit.count(
                match d.state {
                    DeadlineState::Breached => "sla_breached_total",
                    _ => "sla_met_total",
                },
                1,
            );
            unit.emit(publish(payload));
        }
    }
    Ok(())
}

async fn insert(
    tx: &mut sqlx::PgConnection,
    d: &StoredDeadline,
    playbook_version: &str,
    started_at: DateTime<Utc>,
    warn_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    // The round's row lock makes a conflict impossible; the key still guards the rule.
    sqlx::query(
        "INSERT INTO deadlines (id, work_id, round, name, complaint_id, correlation_id, playbook,
             playbook_version, ticket, department, limit_text, calendar, met_by, started_at,
             due_at, state, settled_at, armed_at, warn_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19)
         ON CONFLICT (work_id, round, name) DO NOTHING",
    )
    .bind(d.id)
    .bind(d.work_id.uuid())
    .bind(d.round)
    .bind(&d.name)
    .bind(d.complaint_id)
    .bind(&d.correlation_id)
    .bind(&d.playbook)
    .bind(playbook_version)
    .bind(&d.ticket)
    .bind(&d.department)
    .bind(&d.limit_text)
    .bind(&d.calendar)
    .bind(&d.met_by)
    .bind(started_at)
    .bind(d.due_at)
    .bind(state_name(d.state))
    .bind(d.settled_at)
    .bind(now)
    .bind(warn_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// What the event tells of the round's progress: the exact times routing recorded for each
/// step; only for a producer that does not record them, the event's own time for every step
/// its state implies. Exact times keep the outcome independent of the order events arrive in
/// (a late "proposed" must not make an in-time acceptance look late).
fn progress_of(
    work: &WorkItem,
    state: WorkState,
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> Progress {
    let inferred = Progress::from_event(state, occurred_at);
    Progress {
        accepted_at: opt_to_chrono(&work.accepted_at).or(inferred.accepted_at),
        replied_at: opt_to_chrono(&work.replied_at).or(inferred.replied_at),
        resolved_at: opt_to_chrono(&work.resolved_at).or(inferred.resolved_at),
    }
}
