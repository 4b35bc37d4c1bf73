#![allow(dead_code)]

use jiff::Timestamp;
use redress_calendar::{Calendar, CalendarSet};

pub fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
}

pub fn set() -> CalendarSet {
    CalendarSet::builtin().expect("built-in calendars load")
}

pub fn cn() -> Calendar {
    set().get("cn-mainland").unwrap().clone()
}

pub fn mon_fri() -> Calendar {
    set().get("mon-fri").unwrap().clone()
}

/// A calendar that works around the clock every day, in a zone with DST,
/// so every DST change falls inside working time.
pub fn always_berlin() -> Calendar {
    Calendar::from_toml(
        r#"
name = "always"
zone = "Europe/Berlin"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hours = ["00:00-24:00"]
"#,
    )
    .unwrap()
}

/// Renders an instant in the calendar's zone as RFC 3339 with offset.
pub fn local(cal: &Calendar, t: Timestamp) -> String {
    t.to_zoned(cal.zone().clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}
