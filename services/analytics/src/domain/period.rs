//! A report period as people name it, in the playbook calendar's days.

use jiff::ToSpan as _;
use jiff::civil::Date;

/// Days `from` up to (not including) `until`, as named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub from: Date,
    pub until: Date,
}

/// "2026-11" (the playbook's month: the calendar month, or, with `monthly_on_day = d`, the
/// day after the d-th of the month before up to the d-th), "2026-W48" (an ISO week), or
/// "2026-11-02..2026-11-08" (both days included).
pub fn parse(text: &str, monthly_on_day: Option<u8>) -> Result<Period, String> {
    let text = text.trim();
    let bad = |why: &str| format!("{text:?}: {why} (2026-11, 2026-W48 or 2026-11-02..2026-11-08)");
    if let Some((a, b)) = text.split_once("..") {
        let from: Date = a.trim().parse().map_err(|_| bad("not a day"))?;
        let last: Date = b.trim().parse().map_err(|_| bad("not a day"))?;
        if last < from {
            return Err(bad("ends before it starts"));
        }
        return Ok(Period {
            label: text.to_string(),
            from,
            until: last.tomorrow().map_err(|_| bad("out of range"))?,
        });
    }
    if let Some((y, w)) = text.split_once("-W") {
        let year: i16 = y.parse().map_err(|_| bad("not a year"))?;
        let week: i8 = w.parse().map_err(|_| bad("not a week"))?;
        let monday = jiff::civil::ISOWeekDate::new(year, week, jiff::civil::Weekday::Monday)
            .map_err(|_| bad("no such week"))?
            .date();
        return Ok(Period {
            label: text.to_string(),
            from: monday,
            until: monday
                .checked_add(7.days())
                .map_err(|_| bad("out of range"))?,
        });
    }
    let (y, m) = text.split_once('-').ok_or_else(|| bad("not a period"))?;
    let year: i16 = y.parse().map_err(|_| bad("not a year"))?;
    let month: i8 = m.parse().map_err(|_| bad("not a month"))?;
    let first = Date::new(year, month, 1).map_err(|_| bad("no such month"))?;
    let (from, until) = match monthly_on_day {
        // Real-estate (001): the 26th of the month before to the 25th.
        Some(day) => {
            let day = i8::try_from(day).map_err(|_| bad("report day out of range"))?;
            let end = Date::new(year, month, day).map_err(|_| bad("no such day"))?;
            let start = end
                .checked_sub(1.month())
                .map_err(|_| bad("out of range"))?;
            (
                start.tomorrow().map_err(|_| bad("out of range"))?,
                end.tomorrow().map_err(|_| bad("out of range"))?,
            )
        }
        None => (
            first,
            first
                .checked_add(1.month())
                .map_err(|_| bad("out of range"))?,
        ),
    };
    Ok(Period {
        label: text.to_string(),
        from,
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn periods_are_the_days_people_mean() {
        let p = parse("2026-11", None).unwrap();
        assert_eq!((p.from, p.until), (d("2026-11-01"), d("2026-12-01")));
        // Real-estate's month ends on the 25th.
        let p = parse("2026-11", Some(25)).unwrap();
        assert_eq!((p.from, p.until), (d("2026-10-26"), d("2026-11-26")));
        let p = parse("2026-01", Some(25)).unwrap();
        assert_eq!((p.from, p.until), (d("2025-12-26"), d("2026-01-26")));
        let p = parse("2026-W48", None).unwrap();
        assert_eq!((p.from, p.until), (d("2026-11-23"), d("2026-11-30")));
        let p = parse("2026-11-02..2026-11-08", None).unwrap();
        assert_eq!((p.from, p.until), (d("2026-11-02"), d("2026-11-09")));
        for bad in [
            "2026-13",
            "2026-W54",
            "2026-11-08..2026-11-02",
            "november",
            "",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
    }
}
