//! Business calendars and exact deadline arithmetic.
//!
//! An SLA time limit is either calendar time ("within 2 hours", "within 3
//! days") or business time ("within 3 business hours", "within 2 working
//! days"). A [`Calendar`] knows an IANA time zone, the working intervals of
//! each weekday (several per day, e.g. around a lunch break), public holidays
//! and make-up working days, and computes deadlines and elapsed business time
//! exactly to the second, with the zone's real DST rules.
//!
//! Calendars are data: TOML files that an operator can update for a new year
//! without a rebuild. The shipped files are compiled in as defaults
//! ([`CalendarSet::builtin`]) and a directory given at runtime overrides or
//! adds calendars by name ([`CalendarSet::load_dir`]).
//!
//! Lookups are precomputed per calendar as per-day prefix sums over a window
//! of 110 years (from 2000, or from the calendar's first data year if
//! earlier), so "N working days" and "N business hours" cost a couple of
//! binary searches regardless of the span. Dates outside the window are still
//! exact, computed day by day.
//!
//! ```
//! use redress_calendar::{CalendarSet, DeadlineSpan};
//!
//! let set = CalendarSet::builtin().unwrap();
//! let cn = set.get("cn-mainland").unwrap();
//! let start: jiff::Timestamp = "2025-09-30T10:00:00+08:00".parse().unwrap();
//! // National Day week: 1-8 October off, Saturday 11 October a make-up day.
//! let due = cn.deadline(start, DeadlineSpan::WorkingDays(2)).unwrap();
//! assert_eq!(due.to_string(), "2025-10-10T18:00:00+08:00[Asia/Shanghai]");
//! ```

mod calendar;
mod cli;
mod days;
mod error;
mod hours;
mod set;
mod span;

pub use calendar::{Calendar, DayInfo, Holiday, YearSource};
pub use cli::CalendarCommand;
pub use error::CalendarError;
pub use hours::{MAX_INTERVALS_PER_DAY, WorkInterval, parse_hours};
pub use set::{BUILTIN_FILES, CalendarSet};
pub use span::DeadlineSpan;
