//! Day numbers: days since 1970-01-01 in the proleptic Gregorian calendar.
//!
//! The hot paths index tables by day, and going through jiff's `Date`
//! arithmetic for that would cost more than the rest of a computation.

use jiff::civil::Date;
#[cfg(test)]
use jiff::civil::Weekday;

pub const SECS_PER_DAY: i64 = 86_400;

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm).
pub fn from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i32;
    era * 146_097 + doe - 719_468
}

pub fn to_civil(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn of_date(date: Date) -> i32 {
    from_civil(
        i32::from(date.year()),
        date.month() as u32,
        date.day() as u32,
    )
}

/// Callers keep day numbers inside the supported range, so the conversion
/// cannot fail there; the fallback only guards against misuse.
pub fn to_date(day: i32) -> Date {
    let (y, m, d) = to_civil(day);
    Date::new(y as i16, m as i8, d as i8).unwrap_or(Date::MAX)
}

/// 0 = Monday ... 6 = Sunday.
pub fn weekday_index(day: i32) -> usize {
    // 1970-01-01 was a Thursday.
    (day + 3).rem_euclid(7) as usize
}

#[cfg(test)]
pub fn weekday(day: i32) -> Weekday {
    Weekday::from_monday_zero_offset(weekday_index(day) as i8).unwrap_or(Weekday::Monday)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_against_jiff() {
        let mut date = jiff::civil::date(1899, 12, 25);
        assert_eq!(of_date(jiff::civil::date(1970, 1, 1)), 0);
        let first = of_date(date);
        for n in first..first + 200_000 {
            assert_eq!(of_date(date), n);
            assert_eq!(to_date(n), date);
            assert_eq!(weekday(n), date.weekday());
            date = date.tomorrow().unwrap();
        }
    }
}
