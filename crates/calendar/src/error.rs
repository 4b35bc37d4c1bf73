use std::path::PathBuf;

/// Everything that can go wrong when loading calendars or computing deadlines.
///
/// Each variant names the offending input so a command-line user can fix it
/// without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown calendar `{name}` (known calendars: {known})")]
    UnknownCalendar { name: String, known: String },

    #[error("invalid date `{input}`: expected YYYY-MM-DD ({reason})")]
    InvalidDate { input: String, reason: String },

    #[error(
        "invalid timestamp `{input}`: expected RFC 3339 with an offset, e.g. 2026-01-05T09:00:00+08:00 ({reason})"
    )]
    InvalidTimestamp { input: String, reason: String },

    #[error("invalid duration `{input}`: {reason}")]
    InvalidDuration { input: String, reason: String },

    #[error("invalid working hours `{input}`: {reason}")]
    InvalidHours { input: String, reason: String },

    #[error("unknown time zone `{name}`: {reason}")]
    UnknownZone { name: String, reason: String },

    #[error("invalid calendar `{name}`: {reason}")]
    InvalidCalendar { name: String, reason: String },

    #[error("cannot parse calendar file {}: {reason}", path.display())]
    CalendarFile { path: PathBuf, reason: String },

    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("date range is reversed: --from {from} is after --to {to}")]
    ReversedRange { from: String, to: String },

    #[error("result is out of the supported range: {0}")]
    OutOfRange(String),
}
