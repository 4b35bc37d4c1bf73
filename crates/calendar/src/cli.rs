//! The `calendar` subcommands of the command-line tool.

use std::fmt::Write as _;
use std::path::PathBuf;

use jiff::Timestamp;

use crate::calendar::parse_date;
use crate::{CalendarError, CalendarSet, DeadlineSpan};

/// Longest range `days` prints; anything larger is almost certainly a typo in
/// a year and would flood the terminal.
const MAX_LISTED_DAYS: i64 = 366 * 50;

/// Business-calendar commands.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum CalendarCommand {
    /// List each date in a range as `YYYY-MM-DD workday` or `YYYY-MM-DD off`,
    /// followed by `make-up` or the holiday's name where one applies.
    Days {
        /// Calendar name, e.g. cn-mainland or mon-fri.
        #[arg(long)]
        calendar: String,
        /// First date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last date (inclusive), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Directory of extra calendar files (*.toml); a file replaces the
        /// built-in calendar of the same name.
        #[arg(long, value_name = "DIR")]
        calendar_dir: Option<PathBuf>,
    },
    /// Print the deadline for a time limit as RFC 3339 in the calendar's zone.
    Due {
        /// Calendar name, e.g. cn-mainland or mon-fri.
        #[arg(long)]
        calendar: String,
        /// When the clock started, RFC 3339, e.g. 2026-01-05T09:30:00+08:00.
        #[arg(long)]
        from: String,
        /// Time limit: N minutes|hours|days (calendar time), N business
        /// minutes|hours, or N working days.
        #[arg(long)]
        add: String,
        /// Working hours for every working day, e.g. 09:00-12:00,13:30-18:00.
        #[arg(long, value_name = "SPEC")]
        hours: Option<String>,
        /// IANA time zone to use instead of the calendar's, e.g. Europe/Berlin.
        #[arg(long)]
        zone: Option<String>,
        /// Directory of extra calendar files (*.toml); a file replaces the
        /// built-in calendar of the same name.
        #[arg(long, value_name = "DIR")]
        calendar_dir: Option<PathBuf>,
    },
}

impl CalendarCommand {
    /// Runs the command and returns the text to print, one line per result
    /// with a trailing newline.
    pub fn run(&self) -> Result<String, CalendarError> {
        match self {
            Self::Days {
                calendar,
                from,
                to,
                calendar_dir,
            } => {
                let set = CalendarSet::builtin_with_dir(calendar_dir.as_deref())?;
                let cal = set.get(calendar)?;
                let (from_d, to_d) = (parse_date(from)?, parse_date(to)?);
                if to_d < from_d {
                    return Err(CalendarError::ReversedRange {
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
                let span = crate::days::of_date(to_d) - crate::days::of_date(from_d);
                if i64::from(span) >= MAX_LISTED_DAYS {
                    return Err(CalendarError::OutOfRange(format!(
                        "{from}..{to} spans more than {MAX_LISTED_DAYS} days"
                    )));
                }
                let mut out = String::new();
                let mut date = from_d;
                loop {
                    let info = cal.day(date);
                    let status = if info.working { "workday" } else { "off" };
                    let _ = write!(out, "{date} {status}");
                    if info.makeup {
                        out.push_str(" make-up");
                    }
                    if let Some(name) = info.holiday {
                        let _ = write!(out, " {name}");
                    }
                    out.push('\n');
                    if date >= to_d {
                        break;
                    }
                    date = date
                        .tomorrow()
                        .map_err(|e| CalendarError::OutOfRange(e.to_string()))?;
                }
                Ok(out)
            }
            Self::Due {
                calendar,
                from,
                add,
                hours,
                zone,
                calendar_dir,
            } => {
                let set = CalendarSet::builtin_with_dir(calendar_dir.as_deref())?;
                let mut cal = set.get(calendar)?.clone();
                if let Some(zone) = zone {
                    cal = cal.with_zone(zone)?;
                }
                if let Some(hours) = hours {
                    cal = cal.with_hours(hours)?;
                }
                let start: Timestamp = from.trim().parse().map_err(|e: jiff::Error| {
                    CalendarError::InvalidTimestamp {
                        input: from.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let span: DeadlineSpan = add.parse()?;
                let due = cal.deadline(start, span)?;
                Ok(format!("{}\n", due.strftime("%Y-%m-%dT%H:%M:%S%.f%:z")))
            }
        }
    }
}
