//! `approval.requested` and `approval.decided`: the clock of each step of an approval chain
//! (a policy with `starts = "step_asked"`, `met_by = "step_decided"`).
//!
//! A step ends when the next step is asked or the approval is decided, whichever is told
//! first. Both are recorded apart from the deadlines (`approval_steps`, `approval_ends`,
//! earliest time wins), and every event settles whatever of its approval they now end, so
//! the deadlines come out the same whatever order the events arrive in, or how often. A
//! step's deadline is armed by its own `approval.requested`, already settled if the step was
//! known to have ended.

use chrono::{DateTime, Utc};
use redress_platform::Unit;
use redress_platform::envelope::follow_up;
use redress_platform::events::{Event, Failure, Parsed};
use redress_proto::types::WorkId;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    ApprovalDecided, ApprovalRequested, DeadlineSettled, DeadlineState, DeadlinesArmed,
};
use sqlx::Row;
use uuid::Uuid;

use super::{COLUMNS, StoredDeadline, state_name};
use crate::domain::deadline::{self, settle};
use crate::{IDENT, SlaTimer};

/// What one approval event tells.
pub enum Told {
    /// A step was asked: its deadline as it would be armed.
    Asked(Box<Asked>),
    /// The approval was decided (approved at its last step, or rejected).
    Decided {
        approval_id: Uuid,
        at: DateTime<Utc>,
    },
}

pub struct Asked {
    approval_id: Uuid,
    step: i32,
    at: DateTime<Utc>,
    deadline: StoredDeadline,
    playbook_version: String,
    warn_at: Option<DateTime<Utc>>,
    ladder_at: Option<DateTime<Utc>>,
}

pub fn parse_requested(sla: &SlaTimer, event: &Event, r: &ApprovalRequested) -> Parsed<Told> {
    // A producer that does not say which step of which round has no step clocks.
    if r.step == 0 || r.round == 0 {
        return Parsed::Skip;
    }
    let playbook = match sla.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let severity = redress_playbook::Severity::from_proto(r.severity())
        .unwrap_or(redress_playbook::Severity::General);
    let Some(policy) = playbook.sla.approval_step(severity, &r.category) else {
        return Parsed::Skip;
    };
    let approval_id = match Uuid::parse_str(&r.approval_id) {
        Ok(id) => id,
        Err(e) => return Parsed::Reject(format!("approval id {:?}: {e}", r.approval_id)),
    };
    let work_id = match WorkId::parse(&r.work_id) {
        Ok(id) => id,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject(format!(
            "complaint id {:?} is not a UUID",
            event.envelope.complaint_id
        ));
    };
    let (Ok(step), Ok(round)) = (i32::try_from(r.step), i32::try_from(r.round)) else {
        return Parsed::Reject(format!(
            "step {} of round {} is out of range",
            r.step, r.round
        ));
    };
    let at = event.occurred_at().unwrap_or_else(|| sla.ctx.clock.now());
    let calendars = sla.calendars();
    let due = calendars
        .get(&playbook.sla.calendar)
        .map_err(|e| e.to_string())
        .and_then(|c| deadline::due_after(c, &policy.limit, at).map_err(|e| e.to_string()));
    let due = match due {
        Ok(due) => due,
        Err(e) => return Parsed::Reject(format!("computing the step's deadline: {e}")),
    };
    // The first proposal's steps are `<policy>_<step>`; a proposal made again after a
    // rejection in the same round has its own, `<policy>_<step>_<attempt>`.
    let name = if r.attempt <= 1 {
        format!("{}_{}", policy.name, r.step)
    } else {
        format!("{}_{}_{}", policy.name, r.step, r.attempt)
    };
    // An approver's step is counted in working time: sign-offs are made in office hours,
    // for emergency work too.
    let measure = deadline::Measure::new(&policy.limit, false);
    let ladder_at = crate::domain::ladder::of(playbook, &name)
        .into_iter()
        .next()
        .and_then(|first| {
            let calendar = calendars.get(&playbook.sla.calendar).ok()?;
            crate::domain::ladder::due(calendar, &first.when, measure, at, due).ok()
        });
    Parsed::Handle(Told::Asked(Box::new(Asked {
        approval_id,
        step,
        at,
        warn_at: playbook.sla.warn_at_percent.map(|pct| {
            let calendar = calendars.get(&playbook.sla.calendar).ok();
            deadline::share_at(calendar, measure, at, due, pct)
        }),
        ladder_at,
        playbook_version: playbook.version.clone(),
        deadline: StoredDeadline {
            id: Uuid::now_v7(),
            work_id,
            round,
            name,
            complaint_id,
            correlation_id: event.envelope.correlation_id.clone(),
            playbook: playbook.key.clone(),
            ticket: r.ticket.clone(),
            department: r.department.clone(),
            limit_text: policy.limit.clone(),
            calendar: playbook.sla.calendar.clone(),
            met_by: redress_playbook::Step::StepDecided.as_str().to_string(),
            due_at: due,
            state: DeadlineState::Armed,
            settled_at: None,
            remaining_secs: None,
        },
    })))
}

pub fn parse_decided(sla: &SlaTimer, event: &Event, d: &ApprovalDecided) -> Parsed<Told> {
    // An automatic decision asked nobody; a playbook without step clocks has nothing to end.
    let has_clocks = sla.playbooks.get(&event.envelope.playbook).is_ok_and(|pb| {
        pb.sla
            .deadlines
            .iter()
            .any(|p| p.starts == redress_playbook::Step::StepAsked)
    });
    if d.automatic || !has_clocks {
        return Parsed::Skip;
    }
    match Uuid::parse_str(&d.approval_id) {
        Ok(approval_id) => Parsed::Handle(Told::Decided {
            approval_id,
            at: event.occurred_at().unwrap_or_else(|| sla.ctx.clock.now()),
        }),
        Err(e) => Parsed::Reject(format!("approval id {:?}: {e}", d.approval_id)),
    }
}

pub async fn apply(
    sla: &SlaTimer,
    unit: &mut Unit,
    event: &Event,
    told: &Told,
) -> Result<(), Failure> {
    let now = sla.ctx.clock.now();
    let approval_id = match told {
        Told::Asked(a) => a.approval_id,
        Told::Decided { approval_id, .. } => *approval_id,
    };
    // The events of one approval come on two consumers: one at a time per approval, so
    // that a step's end is never missed between reading it and arming the step.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(approval_id)
        .execute(unit.db())
        .await?;
    match told {
        Told::Asked(a) => {
            sqlx::query(
                "INSERT INTO approval_steps (approval_id, step, asked_at) VALUES ($1, $2, $3)
                 ON CONFLICT (approval_id, step)
                 DO UPDATE SET asked_at = LEAST(approval_steps.asked_at, EXCLUDED.asked_at)",
            )
            .bind(a.approval_id)
            .bind(a.step)
            .bind(a.at)
            .execute(unit.db())
            .await?;
        }
        Told::Decided { approval_id, at } => {
            sqlx::query(
                "INSERT INTO approval_ends (approval_id, decided_at) VALUES ($1, $2)
                 ON CONFLICT (approval_id)
                 DO UPDATE SET decided_at = LEAST(approval_ends.decided_at, EXCLUDED.decided_at)",
            )
            .bind(approval_id)
            .bind(at)
            .execute(unit.db())
            .await?;
        }
    }
    let ends = Ends::read(unit, approval_id).await?;
    if let Told::Asked(a) = told {
        arm(unit, event, a, &ends, now).await?;
    }
    settle_open(unit, event, approval_id, &ends, now).await
}

/// When each step of one approval was asked, and when the approval was decided.
struct Ends {
    asked: Vec<(i32, DateTime<Utc>)>,
    decided: Option<DateTime<Utc>>,
}

impl Ends {
    async fn read(unit: &mut Unit, approval_id: Uuid) -> sqlx::Result<Self> {
        let asked = sqlx::query("SELECT step, asked_at FROM approval_steps WHERE approval_id = $1")
            .bind(approval_id)
            .fetch_all(unit.db())
            .await?
            .iter()
            .map(|r| (r.get("step"), r.get("asked_at")))
            .collect();
        let decided =
            sqlx::query_scalar("SELECT decided_at FROM approval_ends WHERE approval_id = $1")
                .bind(approval_id)
                .fetch_optional(unit.db())
                .await?;
        Ok(Self { asked, decided })
    }

    /// When step `step` was decided: a later step asked, or the approval decided.
    fn of(&self, step: i32) -> Option<DateTime<Utc>> {
        self.asked
            .iter()
            .filter(|(s, _)| *s > step)
            .map(|(_, at)| *at)
            .chain(self.decided)
            .min()
    }
}

async fn arm(
    unit: &mut Unit,
    event: &Event,
    a: &Asked,
    ends: &Ends,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let mut d = a.deadline.clone();
    if let Some(s) = settle(d.due_at, ends.of(a.step)) {
        d = d.settled(s);
    }
    let stored: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO deadlines (id, work_id, round, name, complaint_id, correlation_id,
             playbook, playbook_version, ticket, department, limit_text, calendar, met_by,
             started_at, due_at, state, settled_at, warn_at, ladder_at, armed_at, approval_id,
             approval_step)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22)
         ON CONFLICT (work_id, round, name) DO NOTHING
         RETURNING id",
    )
    .bind(d.id)
    .bind(d.work_id.uuid())
    .bind(d.round)
    .bind(&d.name)
    .bind(d.complaint_id)
    .bind(&d.correlation_id)
    .bind(&d.playbook)
    .bind(&a.playbook_version)
    .bind(&d.ticket)
    .bind(&d.department)
    .bind(&d.limit_text)
    .bind(&d.calendar)
    .bind(&d.met_by)
    .bind(a.at)
    .bind(d.due_at)
    .bind(state_name(d.state))
    .bind(d.settled_at)
    .bind(a.warn_at.filter(|_| d.state == DeadlineState::Armed))
    .bind(a.ladder_at.filter(|_| d.state == DeadlineState::Armed))
    .bind(now)
    .bind(a.approval_id)
    .bind(a.step)
    .fetch_optional(unit.db())
    .await?;
    // Armed before (the event read again): told then.
    if stored.is_none() {
        return Ok(());
    }
    unit.count("sla_armed_total", 1);
    let mut payloads = vec![Payload::DeadlinesArmed(DeadlinesArmed {
        deadlines: vec![d.to_proto()],
    })];
    payloads.extend(d.settled_event());
    for payload in payloads {
        unit.emit(follow_up(IDENT.name, &event.envelope, now, payload));
    }
    Ok(())
}

/// Settles the approval's open step deadlines whose steps are now known to have ended, and
/// retracts a breach the timer decided before hearing that its step ended in time.
async fn settle_open(
    unit: &mut Unit,
    event: &Event,
    approval_id: Uuid,
    ends: &Ends,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, approval_step FROM deadlines
         WHERE approval_id = $1 AND state IN ('armed', 'breached')
         ORDER BY approval_step FOR UPDATE"
    ))
    .bind(approval_id)
    .fetch_all(unit.db())
    .await?;
    for row in &rows {
        let d = StoredDeadline::from_row(row);
        let Some(end) = ends.of(row.get("approval_step")) else {
            continue;
        };
        let (d, retracts_breach) = match d.state {
            DeadlineState::Breached if end <= d.due_at => {
                let mut d = d;
                d.state = DeadlineState::Met;
                d.settled_at = Some(end);
                unit.count("sla_breaches_retracted_total", 1);
                (d, true)
            }
            DeadlineState::Armed => match settle(d.due_at, Some(end)) {
                Some(s) => (d.settled(s), false),
                None => continue,
            },
            _ => continue,
        };
        sqlx::query(
            "UPDATE deadlines SET state = $2, settled_at = $3,
                 retracted_at = CASE WHEN $4 THEN $5 ELSE retracted_at END
             WHERE id = $1",
        )
        .bind(d.id)
        .bind(state_name(d.state))
        .bind(d.settled_at)
        .bind(retracts_breach)
        .bind(now)
        .execute(unit.db())
        .await?;
        let payload = if retracts_breach {
            Some(Payload::DeadlineMet(DeadlineSettled {
                deadline: Some(d.to_proto()),
                retracts_breach: true,
            }))
        } else {
            d.settled_event()
        };
        if let Some(payload) = payload {
            unit.emit(follow_up(IDENT.name, &event.envelope, now, payload));
        }
    }
    Ok(())
}
