//! Deadlines of one handling round: computed from the playbook's policies and a business
//! calendar, and settled (met or breached) from the states the work reached.

use chrono::{DateTime, Utc};
use redress_calendar::{CalendarError, CalendarSet};
use std::collections::BTreeMap;

use redress_playbook::{Grade, Playbook, Step};
use redress_proto::v1::WorkState;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("calendar {calendar:?}: {source}")]
    Calendar {
        calendar: String,
        source: CalendarError,
    },
    #[error("{0} is outside the range deadlines can be computed for")]
    OutOfRange(DateTime<Utc>),
    #[error("{0:?} is not a day (YYYY-MM-DD)")]
    NotADay(String),
}

/// One deadline as the playbook and calendar make it, before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub limit: String,
    pub calendar: String,
    pub met_by: Step,
    pub due_at: DateTime<Utc>,
    /// Starts again when it ends, until the work is resolved.
    pub repeat: bool,
}

/// The deadlines that apply to work of `grade` and start at assignment, made at `start`, one
/// per policy name. (Those starting at other steps are armed when the round takes the step.)
pub fn plan(
    playbook: &Playbook,
    calendars: &CalendarSet,
    grade: Grade<'_>,
    start: DateTime<Utc>,
) -> Result<Vec<Planned>, PlanError> {
    let name = &playbook.sla.calendar;
    let calendar_error = |source| PlanError::Calendar {
        calendar: name.clone(),
        source,
    };
    let calendar = calendars.get(name).map_err(calendar_error)?;
    let from = to_jiff(start)?;
    playbook
        .sla
        .applicable(grade)
        .into_iter()
        .filter(|policy| policy.starts == Step::Assigned)
        .map(|policy| {
            let due = calendar
                .deadline(from, policy.span())
                .map_err(calendar_error)?;
            Ok(Planned {
                name: policy.name.clone(),
                limit: policy.limit.clone(),
                calendar: name.clone(),
                met_by: policy.met_by,
                due_at: from_jiff(due.timestamp())?,
                repeat: policy.repeat,
            })
        })
        .collect()
}

// Both sides count microseconds since the epoch, so nothing is rounded on the way.
pub(crate) fn to_jiff(t: DateTime<Utc>) -> Result<jiff::Timestamp, PlanError> {
    jiff::Timestamp::from_microsecond(t.timestamp_micros()).map_err(|_| PlanError::OutOfRange(t))
}

pub(crate) fn from_jiff(t: jiff::Timestamp) -> Result<DateTime<Utc>, PlanError> {
    DateTime::from_timestamp_micros(t.as_microsecond())
        .ok_or(PlanError::OutOfRange(DateTime::<Utc>::MAX_UTC))
}

/// A deadline's clock once the complainant's evidence waits are taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Running, due then.
    Running(DateTime<Utc>),
    /// Stopped since then, with the complainant owing evidence, with this much time left
    /// (working time for business limits).
    Paused(DateTime<Utc>, chrono::Duration),
}

/// One wait for evidence: from the request until it ended (None: still waiting).
pub type Wait = (DateTime<Utc>, Option<DateTime<Utc>>);

/// The clock of a deadline due at `base` before any wait, given the round's `waits` (in
/// any order). Each wait that began before the deadline fell due stops it; when the wait
/// ends the deadline resumes with the time it had left: business time for business and
/// working-day limits (a wait over a weekend costs the department nothing), elapsed time for
/// wall-clock limits. A wait that began after the deadline fell due changes nothing: it was
/// already over.
pub fn with_waits(
    calendar: &redress_calendar::Calendar,
    limit: &str,
    base: DateTime<Utc>,
    waits: &[Wait],
) -> Result<Clock, PlanError> {
    use redress_calendar::DeadlineSpan as S;
    let calendar_error = |source| PlanError::Calendar {
        calendar: calendar.name().to_string(),
        source,
    };
    let span: S = limit.parse().map_err(calendar_error)?;
    let business = counts_working_time(&span);
    let mut waits = waits.to_vec();
    waits.sort();
    let mut due = base;
    for (from, until) in waits {
        if from >= due {
            break;
        }
        let Some(until) = until else {
            let left = if business {
                let left = calendar
                    .business_time_between(to_jiff(from)?, to_jiff(due)?, &[])
                    .map_err(calendar_error)?;
                chrono::Duration::seconds(left.as_secs())
            } else {
                due - from
            };
            return Ok(Clock::Paused(from, left));
        };
        let until = until.max(from);
        due = if business {
            let left = calendar
                .business_time_between(to_jiff(from)?, to_jiff(due)?, &[])
                .map_err(calendar_error)?;
            from_jiff(
                calendar
                    .add_business_time(to_jiff(until)?, left)
                    .map_err(calendar_error)?,
            )?
        } else {
            due + (until - from)
        };
    }
    Ok(Clock::Running(due))
}

/// Whether a limit's clock runs only in working time (business hours and minutes, working
/// days) rather than on the wall.
fn counts_working_time(span: &redress_calendar::DeadlineSpan) -> bool {
    use redress_calendar::DeadlineSpan as S;
    matches!(
        span,
        S::BusinessMinutes(_) | S::BusinessHours(_) | S::WorkingDays(_)
    )
}

/// What a share of a deadline's time is counted in: the deadline's limit as the playbook
/// states it, and whether its work is an emergency.
#[derive(Debug, Clone, Copy)]
pub struct Measure<'a> {
    pub limit: &'a str,
    pub emergency: bool,
}

impl<'a> Measure<'a> {
    pub fn new(limit: &'a str, emergency: bool) -> Self {
        Self { limit, emergency }
    }
}

/// The instant `percent`% of a deadline's time has gone, for warnings and the ladder's
/// share rungs. The share is of the time the limit counts: working time for business and
/// working-day limits, so 80% of "5 working days" falls on the fourth working day and not on
/// the weekend before the last one (where a wall-clock share lands, leaving no working time
/// to act on the warning); elapsed time for wall-clock limits. Emergency work is handled
/// around the clock, so its shares are of elapsed time whatever the limit: a supervisor
/// told at 1% of a major emergency hears of it in the night, not at Monday's opening. A
/// limit that names no span (a committed date) or a calendar that cannot say falls back to
/// the elapsed share.
pub fn share_at(
    calendar: Option<&redress_calendar::Calendar>,
    Measure { limit, emergency }: Measure<'_>,
    started: DateTime<Utc>,
    due: DateTime<Utc>,
    percent: u32,
) -> DateTime<Utc> {
    let percent = percent.min(100);
    let elapsed = started + (due - started) * i32::try_from(percent).unwrap_or(100) / 100;
    let working = || -> Option<DateTime<Utc>> {
        let calendar = calendar?;
        let span: redress_calendar::DeadlineSpan = limit.parse().ok()?;
        if emergency || !counts_working_time(&span) || due <= started {
            return None;
        }
        let (from, to) = (to_jiff(started).ok()?, to_jiff(due).ok()?);
        let total = calendar.business_time_between(from, to, &[]).ok()?;
        let part = jiff::SignedDuration::from_secs(total.as_secs() * i64::from(percent) / 100);
        let at = from_jiff(calendar.add_business_time(from, part).ok()?).ok()?;
        // Never past the deadline itself, whatever the calendar's rounding.
        Some(at.min(due))
    };
    working().unwrap_or(elapsed)
}

/// When a limit counted from `start` falls due in `calendar`.
pub fn due_after(
    calendar: &redress_calendar::Calendar,
    limit: &str,
    start: DateTime<Utc>,
) -> Result<DateTime<Utc>, PlanError> {
    let calendar_error = |source| PlanError::Calendar {
        calendar: calendar.name().to_string(),
        source,
    };
    let span: redress_calendar::DeadlineSpan = limit.parse().map_err(calendar_error)?;
    let due = calendar
        .deadline(to_jiff(start)?, span)
        .map_err(calendar_error)?;
    from_jiff(due.timestamp())
}

/// The name of the deadline a committed completion date becomes.
pub const COMMITTED: &str = "committed_completion";

/// When a completion date committed as `day` (YYYY-MM-DD) falls due: the end of that day's
/// last working hours in the playbook's calendar, or the end of the day itself when it is not
/// a working day (the department chose it).
pub fn committed_due(
    playbook: &Playbook,
    calendars: &CalendarSet,
    day: &str,
) -> Result<DateTime<Utc>, PlanError> {
    let name = &playbook.sla.calendar;
    let calendar = calendars.get(name).map_err(|source| PlanError::Calendar {
        calendar: name.clone(),
        source,
    })?;
    committed_due_in(calendar, day)
}

/// [`committed_due`] in a given calendar.
pub fn committed_due_in(
    calendar: &redress_calendar::Calendar,
    day: &str,
) -> Result<DateTime<Utc>, PlanError> {
    let date: jiff::civil::Date = day
        .trim()
        .parse()
        .map_err(|_| PlanError::NotADay(day.to_string()))?;
    let end = match calendar.working_intervals(date).last() {
        Some((_, end)) => *end,
        None => date
            .tomorrow()
            .and_then(|d| d.to_zoned(calendar.zone().clone()))
            .map(|z| z.timestamp())
            .map_err(|_| PlanError::NotADay(day.to_string()))?,
    };
    from_jiff(end)
}

/// The steps a work item in `state` has certainly taken in its round. States only move
/// forward within a round (a rejected proposal goes back to ACCEPTED, which stays beyond
/// every step it had passed), so reaching a later state means the earlier steps happened.
/// Proposals and approvals are optional (work can be answered without either), so no state
/// implies them.
pub fn implied(state: WorkState) -> impl Iterator<Item = Step> {
    [
        (WorkState::Assigned, Step::Assigned),
        (WorkState::Accepted, Step::Accepted),
        (WorkState::Replied, Step::Replied),
        (WorkState::Resolved, Step::Resolved),
        (WorkState::Closed, Step::Closed),
    ]
    .into_iter()
    .filter(move |(s, _)| state != WorkState::Unspecified && state as i32 >= *s as i32)
    .map(|(_, step)| step)
}

/// When one round first took each step, as far as the events seen so far tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    steps: BTreeMap<Step, DateTime<Utc>>,
}

impl Progress {
    /// What one event of the round in `state` at `at` tells.
    pub fn from_event(state: WorkState, at: DateTime<Utc>) -> Self {
        let mut p = Self::default();
        for step in implied(state) {
            p.record(step, at);
        }
        p
    }

    /// The round took `step` at `at`: the earliest time told wins, so events read in any
    /// order, or twice, leave the same record.
    pub fn record(&mut self, step: Step, at: DateTime<Utc>) {
        self.steps
            .entry(step)
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }

    pub fn merge(&mut self, other: &Progress) {
        for (step, at) in &other.steps {
            self.record(*step, *at);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Step, DateTime<Utc>)> + '_ {
        self.steps.iter().map(|(s, t)| (*s, *t))
    }

    /// When the round took `step`.
    pub fn at(&self, step: Step) -> Option<DateTime<Utc>> {
        self.steps.get(&step).copied()
    }

    /// When a deadline met by `met_by` was met, leaving progress reports aside (they meet
    /// only the deadlines started before them, see the reports' handler).
    pub fn reached_at(&self, met_by: Step) -> Option<DateTime<Utc>> {
        match met_by {
            // The resolution tells the complainant where the matter stands too.
            Step::Progress => self.at(Step::Resolved),
            step => self.at(step),
        }
    }
}

/// How an armed deadline ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Met { at: DateTime<Utc> },
    Breached { at: DateTime<Utc> },
}

/// How a deadline due at `due_at` settles once the work reached its state at `reached_at`:
/// in time it is met then; too late it was breached when it fell due (the timer had not
/// noticed yet, e.g. while no instance ran). Not reached yet: it stays armed.
pub fn settle(due_at: DateTime<Utc>, reached_at: Option<DateTime<Utc>>) -> Option<Settlement> {
    let at = reached_at?;
    Some(if at <= due_at {
        Settlement::Met { at }
    } else {
        Settlement::Breached { at: due_at }
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use redress_playbook::Playbooks;

    use super::*;

    fn default_playbook() -> Playbook {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
        Playbooks::load_dir(&dir)
            .unwrap()
            .get("default")
            .unwrap()
            .clone()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_share_of_a_working_time_limit_counts_working_time() {
        let calendars = CalendarSet::builtin().unwrap();
        let cal = calendars.get("cn-mainland").unwrap();
        // Friday 16:00, 4 business hours (09:00-12:00, 13:30-18:00): two on Friday, two on
        // Monday, due Monday 11:00. Half is Friday's close, not the small hours of Sunday.
        let started = at("2026-11-27T16:00:00+08:00");
        let due = at("2026-11-30T11:00:00+08:00");
        assert_eq!(due_after(cal, "4 business hours", started).unwrap(), due);
        let share = |limit, pct| share_at(Some(cal), Measure::new(limit, false), started, due, pct);
        assert_eq!(
            share("4 business hours", 50),
            at("2026-11-27T18:00:00+08:00")
        );
        assert_eq!(
            share("4 business hours", 75),
            at("2026-11-30T10:00:00+08:00")
        );
        // The same instants under a wall-clock limit: the elapsed share.
        assert_eq!(share("67 hours", 50), at("2026-11-29T01:30:00+08:00"));
        // No span to count (a committed date) or no calendar: the elapsed share.
        assert_eq!(
            share("by 2026-11-30 (committed)", 50),
            at("2026-11-29T01:30:00+08:00")
        );
        assert_eq!(
            share_at(
                None,
                Measure::new("4 business hours", false),
                started,
                due,
                50
            ),
            at("2026-11-29T01:30:00+08:00")
        );
        // Emergency work: the elapsed share.
        assert_eq!(
            share_at(
                Some(cal),
                Measure::new("4 business hours", true),
                started,
                due,
                50
            ),
            at("2026-11-29T01:30:00+08:00")
        );

        // Monday 10:00, 5 working days: due at the close of the next Monday, 44 working
        // hours later. 80% of them (35.2 h) ends on Friday afternoon; 80% of the wall clock
        // would be Sunday morning, with one working day left instead of 8.8 hours.
        let started = at("2026-11-23T10:00:00+08:00");
        let due = due_after(cal, "5 working days", started).unwrap();
        assert_eq!(due, at("2026-11-30T18:00:00+08:00"));
        assert_eq!(
            share_at(
                Some(cal),
                Measure::new("5 working days", false),
                started,
                due,
                80
            ),
            at("2026-11-27T16:42:00+08:00")
        );
        // Never before the start nor after the deadline.
        assert_eq!(
            share_at(
                Some(cal),
                Measure::new("5 working days", false),
                started,
                due,
                0
            ),
            started
        );
        assert_eq!(
            share_at(
                Some(cal),
                Measure::new("5 working days", false),
                started,
                due,
                100
            ),
            due
        );
    }

    #[test]
    fn general_normal_work_assigned_on_a_monday_morning() {
        let calendars = CalendarSet::builtin().unwrap();
        let planned = plan(
            &default_playbook(),
            &calendars,
            redress_playbook::Grade::of(
                redress_playbook::Severity::General,
                redress_playbook::Urgency::Normal,
            ),
            at("2026-11-23T10:00:00+08:00"),
        )
        .unwrap();
        let due: Vec<_> = planned
            .iter()
            .map(|p| (p.name.as_str(), p.met_by, p.due_at))
            .collect();
        assert_eq!(
            due,
            [
                (
                    "first_response",
                    Step::Accepted,
                    at("2026-11-23T12:00:00+08:00")
                ),
                // Working days count from the day after receipt: Tue, Wed, Thu.
                (
                    "resolution",
                    Step::Resolved,
                    at("2026-11-26T18:00:00+08:00")
                ),
            ]
        );
        assert!(planned.iter().all(|p| p.calendar == "cn-mainland"));
    }

    #[test]
    fn business_hours_skip_the_lunch_break_and_keep_microseconds_exact() {
        let calendars = CalendarSet::builtin().unwrap();
        let planned = plan(
            &default_playbook(),
            &calendars,
            redress_playbook::Grade::of(
                redress_playbook::Severity::Major,
                redress_playbook::Urgency::Normal,
            ),
            at("2026-11-23T11:30:00.250+08:00"),
        )
        .unwrap();
        // "1 hour" is wall time: exactly one hour later, fraction and all.
        assert_eq!(planned[0].name, "first_response");
        assert_eq!(planned[0].due_at, at("2026-11-23T12:30:00.250+08:00"));
        let general = plan(
            &default_playbook(),
            &calendars,
            redress_playbook::Grade::of(
                redress_playbook::Severity::General,
                redress_playbook::Urgency::Normal,
            ),
            at("2026-11-23T11:30:00+08:00"),
        )
        .unwrap();
        // Half an hour before lunch, an hour and a half after it.
        assert_eq!(general[0].due_at, at("2026-11-23T15:00:00+08:00"));
    }

    #[test]
    fn later_states_imply_the_steps_every_round_takes_before_them() {
        let steps = |s| implied(s).collect::<Vec<_>>();
        assert_eq!(steps(WorkState::Accepted), [Step::Assigned, Step::Accepted]);
        // A proposal is optional: no state implies one, nor an approval.
        assert_eq!(steps(WorkState::Approved), [Step::Assigned, Step::Accepted]);
        assert_eq!(
            steps(WorkState::Closed),
            [
                Step::Assigned,
                Step::Accepted,
                Step::Replied,
                Step::Resolved,
                Step::Closed
            ]
        );
        assert!(steps(WorkState::Unspecified).is_empty());
        let t = at("2026-11-23T10:00:00Z");
        let p = Progress::from_event(WorkState::Replied, t);
        assert_eq!(p.at(Step::Accepted), p.at(Step::Replied));
        assert_eq!(p.at(Step::Resolved), None);
        // The earliest time told wins, in any order.
        let mut a = Progress::default();
        a.record(Step::Proposed, t + chrono::Duration::hours(1));
        a.record(Step::Proposed, t);
        let mut b = Progress::default();
        b.record(Step::Proposed, t);
        b.merge(&a);
        assert_eq!(a, b);
        // Progress reports meet only what started before them; the resolution meets all.
        b.record(Step::Progress, t);
        assert_eq!(b.reached_at(Step::Progress), None);
        for m in Step::ALL {
            assert_eq!(Step::parse(m.as_str()), Some(m));
        }
    }

    #[test]
    fn in_time_is_met_and_late_is_breached_when_due() {
        let due = at("2026-11-23T12:00:00Z");
        assert_eq!(settle(due, None), None);
        assert_eq!(
            settle(due, Some(due)),
            Some(Settlement::Met { at: due }),
            "reaching it at the due instant is in time"
        );
        assert_eq!(
            settle(due, Some(at("2026-11-23T12:00:01Z"))),
            Some(Settlement::Breached { at: due })
        );
    }

    #[test]
    fn a_wait_gives_back_the_business_time_it_took() {
        let set = CalendarSet::builtin().unwrap();
        let cal = set.get("cn-mainland").unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Due Friday 4 December 2026 18:00 Beijing (10:00 UTC); the complainant was asked on
        // Wednesday 10:00 Beijing (02:00 UTC), with 2 working days (16 business hours) left.
        let base = at("2026-12-04T10:00:00Z");
        let asked = at("2026-12-02T02:00:00Z");
        assert_eq!(
            with_waits(cal, "3 working days", base, &[(asked, None)]).unwrap(),
            Clock::Paused(asked, chrono::Duration::minutes(21 * 60 + 30))
        );
        // Answered on Thursday at the same hour: a day later, 16 business hours still left,
        // so due the following Monday 18:00 (the weekend costs nothing).
        let answered = at("2026-12-03T02:00:00Z");
        assert_eq!(
            with_waits(cal, "3 working days", base, &[(asked, Some(answered))]).unwrap(),
            Clock::Running(at("2026-12-07T10:00:00Z"))
        );
        // A wall-clock limit gets the elapsed time back.
        assert_eq!(
            with_waits(cal, "30 hours", base, &[(asked, Some(answered))]).unwrap(),
            Clock::Running(base + chrono::Duration::days(1))
        );
        // A request after the deadline fell due changes nothing; no waits, nothing either.
        let late = at("2026-12-05T00:00:00Z");
        assert_eq!(
            with_waits(cal, "3 working days", base, &[(late, None)]).unwrap(),
            Clock::Running(base)
        );
        assert_eq!(
            with_waits(cal, "3 working days", base, &[]).unwrap(),
            Clock::Running(base)
        );
        // Two waits in either order end the same.
        let second = (at("2026-12-07T02:00:00Z"), Some(at("2026-12-07T04:00:00Z")));
        let a = with_waits(
            cal,
            "3 working days",
            base,
            &[(asked, Some(answered)), second],
        );
        let b = with_waits(
            cal,
            "3 working days",
            base,
            &[second, (asked, Some(answered))],
        );
        assert_eq!(a.unwrap(), b.unwrap());
    }
}
