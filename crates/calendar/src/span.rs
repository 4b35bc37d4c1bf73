//! Textual SLA durations such as `3 business hours` or `2 working days`.

use std::fmt;
use std::str::FromStr;

use crate::CalendarError;

/// An SLA time limit: either calendar time or business time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineSpan {
    /// Elapsed wall time, independent of the calendar.
    Minutes(u32),
    /// Elapsed wall time, independent of the calendar.
    Hours(u32),
    /// Calendar days in the calendar's zone: the same local clock time N
    /// days later, so a day across a DST change lasts 23 or 25 hours.
    Days(u32),
    /// Minutes counted only inside working intervals.
    BusinessMinutes(u32),
    /// Hours counted only inside working intervals.
    BusinessHours(u32),
    /// Close of business on the N-th working day after the start date; see
    /// [`crate::Calendar::add_working_days`].
    WorkingDays(u32),
}

impl FromStr for DeadlineSpan {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| CalendarError::InvalidDuration {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let mut words = s.split_whitespace();
        let n = words.next().ok_or_else(|| {
            bad("empty; expected e.g. `2 hours`, `3 business hours` or `2 working days`")
        })?;
        let n: u32 = n
            .parse()
            .map_err(|_| bad("must start with a whole non-negative number, e.g. `2 hours`"))?;
        let unit = words.map(str::to_ascii_lowercase).collect::<Vec<_>>();
        let unit: Vec<&str> = unit.iter().map(String::as_str).collect();
        let span = match unit.as_slice() {
            ["minute" | "minutes" | "min" | "mins"] => Self::Minutes(n),
            ["hour" | "hours"] => Self::Hours(n),
            ["day" | "days"] => Self::Days(n),
            ["business", "minute" | "minutes"] => Self::BusinessMinutes(n),
            ["business", "hour" | "hours"] => Self::BusinessHours(n),
            ["working" | "business", "day" | "days"] | ["workday" | "workdays"] => {
                Self::WorkingDays(n)
            }
            [] => return Err(bad("missing unit after the number")),
            _ => {
                return Err(bad(
                    "unknown unit; use minutes, hours, days, business minutes, business hours or working days",
                ));
            }
        };
        Ok(span)
    }
}

impl fmt::Display for DeadlineSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = match *self {
            Self::Minutes(n) => (n, "minutes"),
            Self::Hours(n) => (n, "hours"),
            Self::Days(n) => (n, "days"),
            Self::BusinessMinutes(n) => (n, "business minutes"),
            Self::BusinessHours(n) => (n, "business hours"),
            Self::WorkingDays(n) => (n, "working days"),
        };
        write!(f, "{n} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_units_and_singulars() {
        let cases = [
            ("1 minute", DeadlineSpan::Minutes(1)),
            ("90 minutes", DeadlineSpan::Minutes(90)),
            ("2 hours", DeadlineSpan::Hours(2)),
            ("1 hour", DeadlineSpan::Hours(1)),
            ("3 days", DeadlineSpan::Days(3)),
            ("1 day", DeadlineSpan::Days(1)),
            ("30 business minutes", DeadlineSpan::BusinessMinutes(30)),
            ("1 business hour", DeadlineSpan::BusinessHours(1)),
            ("3  Business  Hours", DeadlineSpan::BusinessHours(3)),
            ("2 working days", DeadlineSpan::WorkingDays(2)),
            ("1 working day", DeadlineSpan::WorkingDays(1)),
            ("5 business days", DeadlineSpan::WorkingDays(5)),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<DeadlineSpan>().unwrap(), want, "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["4 business hours", "2 working days", "7 days", "15 minutes"] {
            assert_eq!(s.parse::<DeadlineSpan>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "two hours",
            "-1 hours",
            "2",
            "2 fortnights",
            "2 business",
            "1.5 hours",
        ] {
            assert!(
                matches!(
                    s.parse::<DeadlineSpan>(),
                    Err(CalendarError::InvalidDuration { .. })
                ),
                "{s}"
            );
        }
    }
}
