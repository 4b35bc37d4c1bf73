//! How long something took, in calendar and in business time.

use chrono::{DateTime, Utc};
use redress_calendar::Calendar;

/// The span between two instants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Calendar seconds, to the millisecond; negative when the end was told before the start.
    pub secs: f64,
    /// Working seconds by the calendar; none without a calendar or outside the years it
    /// covers.
    pub business_secs: Option<f64>,
}

pub fn to_jiff(at: DateTime<Utc>) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(at.timestamp_micros()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

pub fn from_jiff(at: jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.as_microsecond()).unwrap_or_default()
}

/// `from` to `to`, in business time by `calendar` too when there is one.
pub fn measure(calendar: Option<&Calendar>, from: DateTime<Utc>, to: DateTime<Utc>) -> Measured {
    Measured {
        secs: (to - from).num_milliseconds() as f64 / 1000.0,
        business_secs: calendar.and_then(|c| {
            c.business_time_between(to_jiff(from), to_jiff(to), &[])
                .ok()
                .map(|d| d.as_secs_f64())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn business_time_counts_working_hours_only() {
        let set = redress_calendar::CalendarSet::builtin().unwrap();
        let cal = set.get("cn-mainland").unwrap();
        // Monday 23 November 2026 09:00 to Tuesday 10:00 in Shanghai: 7.5 h + 1 h.
        let m = measure(
            Some(cal),
            at("2026-11-23T01:00:00Z"),
            at("2026-11-24T02:00:00Z"),
        );
        assert_eq!(m.secs, 25.0 * 3600.0);
        assert_eq!(m.business_secs, Some(8.5 * 3600.0));
        let back = measure(None, at("2026-11-24T02:00:00Z"), at("2026-11-23T01:00:00Z"));
        assert_eq!((back.secs, back.business_secs), (-25.0 * 3600.0, None));
    }
}
