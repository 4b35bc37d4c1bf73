//! When a playbook's analysis reports are made (domain §2.8, §6), in its calendar's zone.
//!
//! A monthly report is made on the 1st at `report.at` for the calendar month before, or, with
//! `monthly_on_day = d`, on the d-th for the 26th-to-25th style month ending that day
//! (real-estate, 001: the 25th). A weekly one (express) is made on `weekly_on` for the seven
//! days before it, named as an ISO week when those are Monday to Sunday. Every instant here is
//! a wall-clock time in the zone, so a report follows the zone's offset changes.

use jiff::ToSpan as _;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use redress_playbook::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Monthly,
    Weekly,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Monthly => "monthly",
            Kind::Weekly => "weekly",
        }
    }
}

/// One report falling due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub kind: Kind,
    /// The period as `redress report --period` names it.
    pub period: String,
    pub at: Timestamp,
}

fn weekday(name: &str) -> Option<Weekday> {
    let i = redress_playbook::WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name.trim()))?;
    Weekday::from_monday_one_offset(i8::try_from(i + 1).ok()?).ok()
}

fn instant(day: Date, time: Time, zone: &TimeZone) -> Option<Timestamp> {
    day.to_datetime(time)
        .to_zoned(zone.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// The monthly report made in the month of `day`.
fn monthly_in(report: &Report, time: Time, zone: &TimeZone, day: Date) -> Option<Due> {
    let (made_on, named) = match report.monthly_on_day {
        Some(d) => {
            let made = Date::new(day.year(), day.month(), i8::try_from(d).ok()?).ok()?;
            (made, made)
        }
        None => {
            let made = day.first_of_month();
            (made, made.checked_sub(1.month()).ok()?)
        }
    };
    Some(Due {
        kind: Kind::Monthly,
        period: format!("{:04}-{:02}", named.year(), named.month()),
        at: instant(made_on, time, zone)?,
    })
}

/// The weekly report made on `made_on` (a `weekly_on` day).
fn weekly_on(time: Time, zone: &TimeZone, made_on: Date) -> Option<Due> {
    let first = made_on.checked_sub(7.days()).ok()?;
    let last = made_on.yesterday().ok()?;
    let period = if first.weekday() == Weekday::Monday {
        let week = first.iso_week_date();
        format!("{:04}-W{:02}", week.year(), week.week())
    } else {
        format!("{first}..{last}")
    };
    Some(Due {
        kind: Kind::Weekly,
        period,
        at: instant(made_on, time, zone)?,
    })
}

/// Every report of `report` due in (`after`, `upto`], oldest first: what a timer that last
/// looked at `after` must make now. A long gap yields every report it skipped.
pub fn due_between(
    report: &Report,
    zone: &TimeZone,
    after: Timestamp,
    upto: Timestamp,
) -> Vec<Due> {
    let Some(time) = report.time_of_day() else {
        return Vec::new();
    };
    let (Ok(start), Ok(end)) = (
        after.to_zoned(zone.clone()).date().checked_sub(1.day()),
        upto.to_zoned(zone.clone()).date().checked_add(1.day()),
    ) else {
        return Vec::new();
    };
    let weekly = report.weekly_on.as_deref().and_then(weekday);
    let mut out = Vec::new();
    let mut day = start;
    while day <= end {
        if day == day.first_of_month()
            || report
                .monthly_on_day
                .is_some_and(|d| i16::from(day.day()) == i16::from(d))
        {
            out.extend(monthly_in(report, time, zone, day).filter(|d| {
                // The month's report falls on this very day.
                d.at.to_zoned(zone.clone()).date() == day
            }));
        }
        if weekly == Some(day.weekday()) {
            out.extend(weekly_on(time, zone, day));
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    out.retain(|d| d.at > after && d.at <= upto);
    out.sort_by_key(|d| d.at);
    out
}

/// The first report instant after `after` (for a clock moved from timer to timer).
pub fn next_after(report: &Report, zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    // Reports are at least monthly: one falls in any 32 days.
    let horizon = after
        .checked_add(jiff::SignedDuration::from_hours(24 * 32))
        .ok()?;
    due_between(report, zone, after, horizon)
        .first()
        .map(|d| d.at)
}

/// The first midnight (in `zone`) after `after`: when the day before is complete and its
/// spike check runs.
pub fn next_midnight(zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let today = after.to_zoned(zone.clone()).date();
    let next: Zoned = today.tomorrow().ok()?.to_zoned(zone.clone()).ok()?;
    Some(next.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(monthly_on_day: Option<u8>, weekly_on: Option<&str>, at: &str) -> Report {
        Report {
            monthly_on_day,
            weekly_on: weekly_on.map(str::to_string),
            at: at.into(),
            ..Report::default()
        }
    }

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn real_estate_reports_on_the_25th_at_close_of_business() {
        let r = report(Some(25), None, "18:00");
        let due = due_between(
            &r,
            &shanghai(),
            t("2026-11-20T00:00:00Z"),
            t("2026-12-31T00:00:00Z"),
        );
        assert_eq!(
            due,
            vec![
                Due {
                    kind: Kind::Monthly,
                    period: "2026-11".into(),
                    // 18:00 in Shanghai is 10:00 UTC.
                    at: t("2026-11-25T10:00:00Z"),
                },
                Due {
                    kind: Kind::Monthly,
                    period: "2026-12".into(),
                    at: t("2026-12-25T10:00:00Z"),
                },
            ]
        );
        // Not again once made.
        assert!(
            due_between(
                &r,
                &shanghai(),
                t("2026-11-25T10:00:00Z"),
                t("2026-11-26T00:00:00Z")
            )
            .is_empty()
        );
        assert_eq!(
            next_after(&r, &shanghai(), t("2026-11-25T10:00:00Z")),
            Some(t("2026-12-25T10:00:00Z"))
        );
    }

    #[test]
    fn the_calendar_month_is_reported_on_the_first_and_express_weekly_on_monday() {
        let r = report(None, Some("monday"), "09:00");
        let due = due_between(
            &r,
            &shanghai(),
            t("2026-11-29T00:00:00Z"),
            t("2026-12-08T00:00:00Z"),
        );
        let names: Vec<(Kind, &str)> = due.iter().map(|d| (d.kind, d.period.as_str())).collect();
        // Monday 30 November reports W48; 1 December the month of November; Monday 7
        // December W49.
        assert_eq!(
            names,
            vec![
                (Kind::Weekly, "2026-W48"),
                (Kind::Monthly, "2026-11"),
                (Kind::Weekly, "2026-W49"),
            ]
        );
        assert_eq!(due[1].at, t("2026-12-01T01:00:00Z"));
        // The year's first: December's report on 1 January.
        let due = due_between(
            &report(None, None, "09:00"),
            &shanghai(),
            t("2026-12-31T00:00:00Z"),
            t("2027-01-02T00:00:00Z"),
        );
        assert_eq!(due[0].period, "2026-12");
    }

    #[test]
    fn a_weekly_report_on_another_day_names_its_seven_days() {
        let r = report(None, Some("wednesday"), "09:00");
        let due = due_between(
            &r,
            &shanghai(),
            t("2026-12-01T00:00:00Z"),
            t("2026-12-03T00:00:00Z"),
        );
        let weekly: Vec<&Due> = due.iter().filter(|d| d.kind == Kind::Weekly).collect();
        assert_eq!(weekly.len(), 1);
        assert_eq!(weekly[0].period, "2026-11-25..2026-12-01");
        assert_eq!(weekly[0].at, t("2026-12-02T01:00:00Z"));
    }

    #[test]
    fn midnight_is_the_zones() {
        assert_eq!(
            next_midnight(&shanghai(), t("2026-11-30T15:00:00Z")),
            Some(t("2026-11-30T16:00:00Z"))
        );
    }
}
