//! The escalation ladder of one deadline: the playbook's rungs that cover it, in the order
//! they come (shares of its time by share, then those after the breach as listed), and when
//! each falls due. No I/O: the timer reads the deadline row and asks.

use chrono::{DateTime, Utc};
use redress_calendar::Calendar;
use redress_playbook::{Playbook, Rung, RungAt};

use super::deadline::{Measure, PlanError, from_jiff, share_at, to_jiff};

/// One rung of a deadline's ladder: its place in the playbook's `sla.ladder`, the rung, and
/// when it is reached.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub index: usize,
    pub rung: &'a Rung,
    pub when: RungAt,
}

/// The rungs of `playbook` that cover deadline `name`, in the order they are reached.
pub fn of<'a>(playbook: &'a Playbook, name: &str) -> Vec<Step<'a>> {
    let mut steps: Vec<Step<'a>> = playbook
        .sla
        .ladder
        .iter()
        .enumerate()
        .filter(|(_, r)| r.covers(name))
        .filter_map(|(index, rung)| {
            Some(Step {
                index,
                rung,
                when: rung.when().ok()?,
            })
        })
        .collect();
    steps.sort_by_key(|s| match s.when {
        RungAt::Share(p) => (0, p as usize),
        RungAt::Breach(_) => (1, s.index),
    });
    steps
}

/// When `when` falls due for a deadline counted in `measure`, started at `started` and due
/// at `due`, before any wait for working hours (see [`share_at`] for shares).
pub fn due(
    calendar: &Calendar,
    when: &RungAt,
    measure: Measure<'_>,
    started: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Result<DateTime<Utc>, PlanError> {
    Ok(match when {
        RungAt::Share(p) => share_at(Some(calendar), measure, started, due, *p),
        RungAt::Breach(None) => due,
        RungAt::Breach(Some(span)) => {
            let at =
                calendar
                    .deadline(to_jiff(due)?, *span)
                    .map_err(|source| PlanError::Calendar {
                        calendar: calendar.name().to_string(),
                        source,
                    })?;
            from_jiff(at.timestamp())?
        }
    })
}

/// The first instant at or after `at` inside the calendar's working hours.
pub fn next_opening(calendar: &Calendar, at: DateTime<Utc>) -> Result<DateTime<Utc>, PlanError> {
    let t = calendar
        .next_working_instant(to_jiff(at)?)
        .map_err(|source| PlanError::Calendar {
            calendar: calendar.name().to_string(),
            source,
        })?;
    from_jiff(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_calendar::CalendarSet;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rungs_come_by_share_then_after_the_breach_in_order() {
        let set = CalendarSet::builtin().unwrap();
        let cal = set.get("cn-mainland").unwrap();
        let started = at("2026-11-23T10:00:00+08:00");
        let due_at = at("2026-11-23T12:00:00+08:00");
        let half = due(
            cal,
            &RungAt::Share(50),
            Measure::new("2 hours", false),
            started,
            due_at,
        )
        .unwrap();
        assert_eq!(half, at("2026-11-23T11:00:00+08:00"));
        assert_eq!(
            due(
                cal,
                &RungAt::Breach(None),
                Measure::new("2 hours", false),
                started,
                due_at
            )
            .unwrap(),
            due_at
        );
        // Working days count whole days after the breach: the end of Tuesday.
        let later = RungAt::Breach(Some("1 working day".parse().unwrap()));
        assert_eq!(
            due(cal, &later, Measure::new("2 hours", false), started, due_at).unwrap(),
            at("2026-11-24T18:00:00+08:00")
        );
        let hours = RungAt::Breach(Some("4 hours".parse().unwrap()));
        assert_eq!(
            due(cal, &hours, Measure::new("2 hours", false), started, due_at).unwrap(),
            at("2026-11-23T16:00:00+08:00")
        );
        // 03:00 on a Saturday: the next opening is Monday 09:00.
        assert_eq!(
            next_opening(cal, at("2026-11-28T03:00:00+08:00")).unwrap(),
            at("2026-11-30T09:00:00+08:00")
        );
        // Inside working hours: now.
        let inside = at("2026-11-30T10:30:00+08:00");
        assert_eq!(next_opening(cal, inside).unwrap(), inside);
    }
}
