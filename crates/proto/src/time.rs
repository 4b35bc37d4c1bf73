//! The one conversion between protobuf timestamps and instants: microseconds since the Unix
//! epoch (what PostgreSQL keeps), and chrono's `DateTime<Utc>` (what services compute with).

use chrono::{DateTime, Utc};
pub use prost_types::Timestamp;

/// The instant as a protobuf timestamp, to the microsecond (PostgreSQL's precision).
pub fn from_chrono(at: DateTime<Utc>) -> Timestamp {
    from_unix_micros(at.timestamp_micros())
}

/// For optional message fields: `Some(from_chrono(at))`.
pub fn ts(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(from_chrono(at))
}

/// The instant of a timestamp from a message; none when it is beyond what chrono represents
/// (a timestamp from outside may hold anything).
pub fn to_chrono(t: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(to_unix_micros(t))
}

/// [`to_chrono`] of an optional field.
pub fn opt_to_chrono(t: &Option<Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(to_chrono)
}

pub fn from_unix_micros(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Saturates instead of overflowing: a timestamp from outside can hold any `seconds`, and a
/// far-off instant must not panic a handler.
pub fn to_unix_micros(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_before_and_after_the_epoch() {
        for m in [-1_500_001, -1, 0, 1, 1_763_900_000_123_456] {
            assert_eq!(to_unix_micros(&from_unix_micros(m)), m);
        }
    }

    #[test]
    fn far_off_instants_saturate() {
        let ts = Timestamp {
            seconds: i64::MAX,
            nanos: 999_999_999,
        };
        assert_eq!(to_unix_micros(&ts), i64::MAX);
        let ts = Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        };
        assert_eq!(to_unix_micros(&ts), i64::MIN);
    }
}
