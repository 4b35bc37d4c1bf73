//! One module per message sla-timer handles, and the deadline rows they share with the timer.

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
        }
    }

    /// The event that tells a settled deadline's end; none while it is armed or when it was
    /// cancelled.
    pub fn settled_event(&self) -> Option<Payload> {
        let settled = DeadlineSettled {
            deadline: Some(self.to_proto()),
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
