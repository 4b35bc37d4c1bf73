//! Conversions between protobuf timestamps and milliseconds since the Unix epoch.

pub use prost_types::Timestamp;

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
