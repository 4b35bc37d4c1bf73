//! How long something took, in calendar and in business time.

use chrono::{DateTime, Utc};
use redress_calendar::Calendar;

/// The span between two instants, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Calendar time; negative when the end was told before the start.
    pub ms: i64,
    /// Working time by the calendar (whole seconds); none without a calendar or outside the
    /// years it covers.
    pub business_ms: Option<i64>,
}

/// Milliseconds as the seconds reports give.
pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
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
        ms: (to - from).num_milliseconds(),
        business_ms: calendar.and_then(|c| {
            c.business_time_between(to_jiff(from), to_jiff(to), &[])
                .ok()
                .and_then(|d| i64::try_from(d.as_millis()).ok())
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
        assert_eq!(m.ms, 25 * 3_600_000);
        assert_eq!(m.business_ms, Some(8 * 3_600_000 + 1_800_000));
        assert_eq!(secs(m.ms), 90_000.0);
        let back = measure(None, at("2026-11-24T02:00:00Z"), at("2026-11-23T01:00:00Z"));
        assert_eq!((back.ms, back.business_ms), (-25 * 3_600_000, None));
    }
}
