//! `sla.*`: each deadline of each round; met, breached and cancelled (by a withdrawal) are
//! final, and warned beats armed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_proto::EventKind;
use redress_proto::time::opt_to_chrono;
use redress_proto::v1::{Deadline, DeadlineSettled, DeadlineState, DeadlinesArmed, LadderStep};
use sqlx::PgConnection;
use uuid::Uuid;

/// One deadline as the status keeps it.
#[derive(Clone)]
struct Row {
    due_at: Option<DateTime<Utc>>,
    state: DeadlineState,
    limit: String,
    calendar: String,
    settled_at: Option<DateTime<Utc>>,
    /// While paused, the time it had left.
    remaining_secs: Option<i64>,
    /// The work version of the last pause, resumption or new plan told (0: none).
    work_version: i64,
}

impl Row {
    fn of(d: &Deadline, state: DeadlineState) -> Self {
        Self {
            due_at: opt_to_chrono(&d.due_at),
            state,
            limit: d.limit.clone(),
            calendar: d.calendar.clone(),
            settled_at: opt_to_chrono(&d.settled_at),
            remaining_secs: (d.remaining_secs > 0).then_some(d.remaining_secs),
            work_version: i64::try_from(d.work_version).unwrap_or(i64::MAX),
        }
    }

    /// `newer` told after `self`: the same rule the upsert applies to the stored row.
    fn then(self, newer: Row) -> Row {
        let settled = |s| {
            matches!(
                s,
                DeadlineState::Met | DeadlineState::Breached | DeadlineState::Cancelled
            )
        };
        // A clock change from an older work version, read after a newer one, is stale.
        let stale = !settled(newer.state) && newer.work_version < self.work_version;
        let state = match (self.state, newer.state) {
            (s, _) if settled(s) => s,
            _ if stale => self.state,
            (DeadlineState::Warned, DeadlineState::Armed) => self.state,
            _ => newer.state,
        };
        Row {
            due_at: if stale {
                self.due_at
            } else {
                newer.due_at.or(self.due_at)
            },
            state,
            limit: if newer.limit.is_empty() {
                self.limit
            } else {
                newer.limit
            },
            calendar: if newer.calendar.is_empty() {
                self.calendar
            } else {
                newer.calendar
            },
            settled_at: self.settled_at.or(newer.settled_at),
            remaining_secs: if stale {
                self.remaining_secs
            } else {
                newer.remaining_secs
            },
            work_version: self.work_version.max(newer.work_version),
        }
    }
}

/// The history line of a rung of an escalation ladder or an on-call page: who was told what.
pub(super) fn escalation_line(step: &LadderStep) -> String {
    let late = opt_to_chrono(&step.planned_at);
    match &step.deadline {
        Some(d) => format!(
            "{} (round {}) at {}: {} {}{}",
            d.name,
            d.round,
            step.at,
            step.action,
            step.to,
            late.map(|t| format!(" (due {})", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        ),
        None => format!("{} {} ({})", step.action, step.to, step.at),
    }
}

/// The batch's deadlines, folded per complaint, round and name.
#[derive(Default)]
pub(super) struct Batch {
    rows: HashMap<(Uuid, i32, String), Row>,
    /// Breaches the SLA timer retracted (the step was in time), with when it was met.
    retracted: Vec<(Uuid, i32, String, Option<DateTime<Utc>>)>,
}

impl Batch {
    fn add(&mut self, id: Uuid, d: &Deadline, state: DeadlineState) {
        let key = (
            id,
            i32::try_from(d.round).unwrap_or(i32::MAX),
            d.name.clone(),
        );
        let row = Row::of(d, state);
        let merged = match self.rows.remove(&key) {
            Some(older) => older.then(row),
            None => row,
        };
        self.rows.insert(key, merged);
    }

    /// Takes the deadlines of a round; returns the history line.
    pub(super) fn armed(&mut self, id: Uuid, a: &DeadlinesArmed) -> String {
        for d in &a.deadlines {
            self.add(id, d, d.state());
        }
        let names: Vec<String> = a
            .deadlines
            .iter()
            .map(|d| {
                if d.state() == DeadlineState::Cancelled {
                    format!(
                        "{} (round {}) cancelled: {}",
                        d.name, d.round, d.moved_because
                    )
                } else if !d.moved_because.is_empty() {
                    let at = |t: &Option<redress_proto::time::Timestamp>| {
                        opt_to_chrono(t).map_or_else(
                            || "?".to_string(),
                            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                        )
                    };
                    format!(
                        "{} (round {}) moved from {} to {}: {}",
                        d.name,
                        d.round,
                        at(&d.previous_due_at),
                        at(&d.due_at),
                        d.moved_because
                    )
                } else if d.state() == DeadlineState::Paused {
                    let m = d.remaining_secs / 60;
                    format!(
                        "{} paused while evidence is owed, {}h{:02}m left",
                        d.name,
                        m / 60,
                        m % 60
                    )
                } else {
                    format!("{} ({})", d.name, d.limit)
                }
            })
            .collect();
        names.join(", ")
    }

    /// Takes a warning, a deadline met or breached; returns the history line.
    pub(super) fn settled(&mut self, id: Uuid, kind: EventKind, s: &DeadlineSettled) -> String {
        let Some(d) = &s.deadline else {
            return String::new();
        };
        let state = match kind {
            EventKind::SlaMet => DeadlineState::Met,
            EventKind::SlaWarning => DeadlineState::Warned,
            _ => DeadlineState::Breached,
        };
        self.add(id, d, state);
        if s.retracts_breach {
            self.retracted.push((
                id,
                i32::try_from(d.round).unwrap_or(i32::MAX),
                d.name.clone(),
                opt_to_chrono(&d.settled_at),
            ));
            return format!(
                "{} (round {}): met in time after all; the breach decided before the step was \
                 known is withdrawn",
                d.name, d.round
            );
        }
        format!("{} (round {})", d.name, d.round)
    }

    pub(super) async fn store(self, db: &mut PgConnection) -> sqlx::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let retracted = self.retracted;
        let mut ids = Vec::new();
        let (mut rounds, mut names, mut dues, mut states, mut limits, mut calendars, mut settled) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let mut remaining: Vec<Option<i64>> = Vec::new();
        let mut versions: Vec<i64> = Vec::new();
        for ((id, round, name), r) in self.rows {
            ids.push(id);
            rounds.push(round);
            names.push(name);
            dues.push(r.due_at);
            states.push(r.state as i16);
            limits.push(r.limit);
            calendars.push(r.calendar);
            settled.push(r.settled_at);
            remaining.push(r.remaining_secs);
            versions.push(r.work_version);
        }
        sqlx::query(
            "INSERT INTO deadlines (complaint_id, round, name, due_at, state, limit_text, calendar,
                 settled_at, remaining_secs, work_version)
             SELECT d.complaint_id, d.round, d.name, d.due_at,
                    -- Told armed after the complaint ended (withdrawn, merged): cancelled.
                    CASE WHEN d.state IN ($11, $12) AND c.status IN ('withdrawn', 'merged')
                         THEN $13 ELSE d.state END,
                    d.limit_text, d.calendar, d.settled_at, d.remaining_secs, d.work_version
             FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[],
                         $5::int2[], $6::text[], $7::text[], $8::timestamptz[], $14::int8[],
                         $15::int8[])
                  AS d(complaint_id, round, name, due_at, state, limit_text, calendar, settled_at,
                       remaining_secs, work_version)
             JOIN complaints c ON c.id = d.complaint_id
             ON CONFLICT (complaint_id, round, name) DO UPDATE SET
                 -- A clock change of an older work version than the stored one is stale.
                 due_at = CASE WHEN EXCLUDED.work_version < deadlines.work_version
                               THEN deadlines.due_at
                               ELSE COALESCE(EXCLUDED.due_at, deadlines.due_at) END,
                 limit_text = CASE WHEN EXCLUDED.limit_text = '' THEN deadlines.limit_text
                                   ELSE EXCLUDED.limit_text END,
                 calendar = CASE WHEN EXCLUDED.calendar = '' THEN deadlines.calendar
                                 ELSE EXCLUDED.calendar END,
                 state = CASE WHEN deadlines.state IN ($9, $10, $13) THEN deadlines.state
                              WHEN EXCLUDED.state NOT IN ($9, $10, $13)
                                   AND EXCLUDED.work_version < deadlines.work_version
                                   THEN deadlines.state
                              WHEN deadlines.state = $11 AND EXCLUDED.state = $12
                                   THEN deadlines.state
                              ELSE EXCLUDED.state END,
                 settled_at = COALESCE(deadlines.settled_at, EXCLUDED.settled_at),
                 remaining_secs = CASE WHEN EXCLUDED.work_version < deadlines.work_version
                                       THEN deadlines.remaining_secs
                                       ELSE EXCLUDED.remaining_secs END,
                 work_version = GREATEST(deadlines.work_version, EXCLUDED.work_version)",
        )
        .bind(&ids)
        .bind(&rounds)
        .bind(&names)
        .bind(&dues)
        .bind(&states)
        .bind(&limits)
        .bind(&calendars)
        .bind(&settled)
        .bind(DeadlineState::Met as i16)
        .bind(DeadlineState::Breached as i16)
        .bind(DeadlineState::Warned as i16)
        .bind(DeadlineState::Armed as i16)
        .bind(DeadlineState::Cancelled as i16)
        .bind(&remaining)
        .bind(&versions)
        .execute(&mut *db)
        .await?;
        // A retraction is the one way out of a breach.
        for (id, round, name, at) in retracted {
            sqlx::query(
                "UPDATE deadlines SET state = $4, settled_at = COALESCE($5, settled_at)
                 WHERE complaint_id = $1 AND round = $2 AND name = $3 AND state = $6",
            )
            .bind(id)
            .bind(round)
            .bind(&name)
            .bind(DeadlineState::Met as i16)
            .bind(at)
            .bind(DeadlineState::Breached as i16)
            .execute(&mut *db)
            .await?;
        }
        Ok(())
    }
}
