//! One module per message sla-timer handles, and the deadline rows they share with the timer.

pub mod approval_step;
pub mod work_changed;

use chrono::{DateTime, Utc};
use redress_platform::envelope::Cause;
use redress_proto::time::ts;
use redress_proto::types::WorkId;
use redress_proto::v1::{Deadline, DeadlineSettled, DeadlineState, envelope::Payload};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::domain::deadline::Settlement;

/// Columns of a deadline row as the handlers and the timer read it.
pub(crate) const COLUMNS: &str = "id, work_id, round, name, complaint_id, correlation_id, \
     playbook, ticket, department, limit_text, calendar, met_by, due_at, state, settled_at";

/// A stored deadline.
#[derive(Debug, Clone)]
pub(crate) struct StoredDeadline {
    pub id: Uuid,
    pub work_id: WorkId,
    pub round: i32,
    pub name: String,
    pub complaint_id: Uuid,
    pub correlation_id: String,
    pub playbook: String,
    pub ticket: String,
    pub department: String,
    pub limit_text: String,
    pub calendar: String,
    pub met_by: String,
    pub due_at: DateTime<Utc>,
    pub state: DeadlineState,
    pub settled_at: Option<DateTime<Utc>>,
    /// While paused, the time it had left when its clock stopped (not stored: recomputed).
    pub remaining_secs: Option<i64>,
}

impl StoredDeadline {
    pub fn from_row(row: &PgRow) -> Self {
        Self {
            id: row.get("id"),
            work_id: WorkId(row.get("work_id")),
            round: row.get("round"),
            name: row.get("name"),
            complaint_id: row.get("complaint_id"),
            correlation_id: row.get("correlation_id"),
            playbook: row.get("playbook"),
            ticket: row.get("ticket"),
            department: row.get("department"),
            limit_text: row.get("limit_text"),
            calendar: row.get("calendar"),
            met_by: row.get("met_by"),
            due_at: row.get("due_at"),
            state: parse_state(row.get("state")),
            settled_at: row.get("settled_at"),
            remaining_secs: None,
        }
    }

    /// The deadline after `s`.
    pub fn settled(mut self, s: Settlement) -> Self {
        let (state, at) = match s {
            Settlement::Met { at } => (DeadlineState::Met, at),
            Settlement::Breached { at } => (DeadlineState::Breached, at),
        };
        self.state = state;
        self.settled_at = Some(at);
        self
    }

    pub fn to_proto(&self) -> Deadline {
        Deadline {
            name: self.name.clone(),
            due_at: ts(self.due_at),
            state: self.state as i32,
            limit: self.limit_text.clone(),
            calendar: self.calendar.clone(),
            round: u32::try_from(self.round).unwrap_or_default(),
            work_id: self.work_id.to_string(),
            ticket: self.ticket.clone(),
            department: self.department.clone(),
            settled_at: self.settled_at.and_then(ts),
            met_by: self.met_by.clone(),
            remaining_secs: self.remaining_secs.unwrap_or_default(),
            work_version: 0,
            previous_due_at: None,
            moved_because: String::new(),
        }
    }

    /// The event that tells a settled deadline's end; none while it is armed or when it was
    /// cancelled.
    pub fn settled_event(&self) -> Option<Payload> {
        let settled = DeadlineSettled {
            deadline: Some(self.to_proto()),
            retracts_breach: false,
        };
        match self.state {
            DeadlineState::Met => Some(Payload::DeadlineMet(settled)),
            DeadlineState::Breached => Some(Payload::DeadlineBreached(settled)),
            // A withdrawal's cancellation is told by the withdrawal itself.
            DeadlineState::Armed
            | DeadlineState::Warned
            | DeadlineState::Cancelled
            | DeadlineState::Paused
            | DeadlineState::Unspecified => None,
        }
    }

    /// The cause of events the timer publishes for this deadline: the deadline itself, in
    /// the complaint's correlation.
    pub fn cause(&self) -> Cause {
        Cause {
            complaint_id: self.complaint_id,
            ticket: self.ticket.clone(),
            causation_id: self.id.to_string(),
            correlation_id: self.correlation_id.clone(),
            playbook: self.playbook.clone(),
        }
    }
}

pub(crate) fn state_name(s: DeadlineState) -> &'static str {
    match s {
        DeadlineState::Met => "met",
        DeadlineState::Breached => "breached",
        DeadlineState::Cancelled => "cancelled",
        DeadlineState::Paused => "paused",
        DeadlineState::Armed | DeadlineState::Warned | DeadlineState::Unspecified => "armed",
    }
}

fn parse_state(s: &str) -> DeadlineState {
    match s {
        "met" => DeadlineState::Met,
        "breached" => DeadlineState::Breached,
        "cancelled" => DeadlineState::Cancelled,
        "paused" => DeadlineState::Paused,
        _ => DeadlineState::Armed,
    }
}

/// The next instance of a repeating deadline that just ended (met by a report, breached by
/// the timer): the same limit from `from`, named `<repeat_of>_<k+1>`. Stored unless the round
/// has it already (a redelivered report); returned when stored, for its `sla.armed`. A
/// calendar that cannot compute it is logged and the repetition stops there.
pub(crate) async fn arm_next(
    db: &mut sqlx::PgConnection,
    sla: &crate::SlaTimer,
    ended: &StoredDeadline,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<StoredDeadline>> {
    let calendars = sla.calendars();
    let row = sqlx::query(
        "SELECT repeat_of, instance, playbook_version, at_once FROM deadlines WHERE id = $1",
    )
    .bind(ended.id)
    .fetch_one(&mut *db)
    .await?;
    let Some(base) = row.get::<Option<String>, _>("repeat_of") else {
        return Ok(None);
    };
    let instance: i32 = row.get::<i32, _>("instance") + 1;
    let due = calendars
        .get(&ended.calendar)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            crate::domain::deadline::due_after(c, &ended.limit_text, from)
                .map_err(|e| e.to_string())
        });
    let due_at = match due {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(deadline = %ended.name, error = %e, "cannot repeat the deadline");
            return Ok(None);
        }
    };
    let next = StoredDeadline {
        id: Uuid::now_v7(),
        name: format!("{base}_{instance}"),
        due_at,
        state: DeadlineState::Armed,
        settled_at: None,
        ..ended.clone()
    };
    // Each instance is warned and climbs the ladder as the first did, around the clock for
    // emergency work.
    let at_once: bool = row.get("at_once");
    let measure = crate::domain::deadline::Measure::new(&ended.limit_text, at_once);
    let playbook = sla.playbooks.get(&ended.playbook).ok();
    let calendar = calendars.get(&ended.calendar).ok();
    let warn_at = playbook
        .and_then(|p| p.sla.warn_at_percent)
        .map(|pct| crate::domain::deadline::share_at(calendar, measure, from, due_at, pct));
    let ladder_at = playbook.zip(calendar).and_then(|(p, c)| {
        let first = crate::domain::ladder::of(p, &next.name)
            .into_iter()
            .next()?;
        crate::domain::ladder::due(c, &first.when, measure, from, due_at).ok()
    });
    let stored: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO deadlines (id, work_id, round, name, complaint_id, correlation_id,
             playbook, playbook_version, ticket, department, limit_text, calendar, met_by,
             started_at, due_at, state, armed_at, repeat_of, instance, warn_at, ladder_at,
             at_once)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'armed',
                 $16, $17, $18, $19, $20, $21)
         ON CONFLICT (work_id, round, name) DO NOTHING
         RETURNING id",
    )
    .bind(next.id)
    .bind(next.work_id.uuid())
    .bind(next.round)
    .bind(&next.name)
    .bind(next.complaint_id)
    .bind(&next.correlation_id)
    .bind(&next.playbook)
    .bind(row.get::<String, _>("playbook_version"))
    .bind(&next.ticket)
    .bind(&next.department)
    .bind(&next.limit_text)
    .bind(&next.calendar)
    .bind(&next.met_by)
    .bind(from)
    .bind(next.due_at)
    .bind(now)
    .bind(&base)
    .bind(instance)
    .bind(warn_at)
    .bind(ladder_at)
    .bind(at_once)
    .fetch_optional(db)
    .await?;
    Ok(stored.map(|_| next))
}
