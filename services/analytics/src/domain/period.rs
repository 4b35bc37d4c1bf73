//! A report period as people name it, in the playbook calendar's days.

use jiff::ToSpan as _;
use jiff::civil::Date;

/// Days `from` up to (not including) `until`, as named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub from: Date,
    pub until: Date,
    pub kind: Kind,
}

/// What kind of period it is, which says what the periods before and after it are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The playbook's month `month` of `year` (with its report day, when it has one).
    Month {
        year: i16,
        month: i8,
        monthly_on_day: Option<u8>,
    },
    /// An ISO week.
    Week,
    /// A range of days; the periods beside it are as many days long.
    Days,
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
        return days(text.to_string(), from, last).map_err(|why| bad(&why));
    }
    if let Some((y, w)) = text.split_once("-W") {
        let year: i16 = y.parse().map_err(|_| bad("not a year"))?;
        let week: i8 = w.parse().map_err(|_| bad("not a week"))?;
        let monday = jiff::civil::ISOWeekDate::new(year, week, jiff::civil::Weekday::Monday)
            .map_err(|_| bad("no such week"))?
            .date();
        return week_of(text.to_string(), monday).map_err(|why| bad(&why));
    }
    let (y, m) = text.split_once('-').ok_or_else(|| bad("not a period"))?;
    let year: i16 = y.parse().map_err(|_| bad("not a year"))?;
    let month: i8 = m.parse().map_err(|_| bad("not a month"))?;
    month_of(text.to_string(), year, month, monthly_on_day).map_err(|why| bad(&why))
}

fn days(label: String, from: Date, last: Date) -> Result<Period, String> {
    Ok(Period {
        label,
        from,
        until: last.tomorrow().map_err(|_| "out of range")?,
        kind: Kind::Days,
    })
}

fn week_of(label: String, monday: Date) -> Result<Period, String> {
    Ok(Period {
        label,
        from: monday,
        until: monday.checked_add(7.days()).map_err(|_| "out of range")?,
        kind: Kind::Week,
    })
}

fn month_of(
    label: String,
    year: i16,
    month: i8,
    monthly_on_day: Option<u8>,
) -> Result<Period, String> {
    let first = Date::new(year, month, 1).map_err(|_| "no such month")?;
    let (from, until) = match monthly_on_day {
        // Real-estate (001): the 26th of the month before to the 25th.
        Some(day) => {
            let day = i8::try_from(day).map_err(|_| "report day out of range")?;
            let end = Date::new(year, month, day).map_err(|_| "no such day")?;
            let start = end.checked_sub(1.month()).map_err(|_| "out of range")?;
            (
                start.tomorrow().map_err(|_| "out of range")?,
                end.tomorrow().map_err(|_| "out of range")?,
            )
        }
        None => (
            first,
            first.checked_add(1.month()).map_err(|_| "out of range")?,
        ),
    };
    Ok(Period {
        label,
        from,
        until,
        kind: Kind::Month {
            year,
            month,
            monthly_on_day,
        },
    })
}

impl Period {
    /// How many days it has.
    pub fn days(&self) -> i32 {
        (self.until - self.from).get_days()
    }

    /// The period `n` periods after this one (before it, for a negative `n`), of the same
    /// kind and named as people would name it: the month by the same report day, the ISO
    /// week, or as many days.
    pub fn shifted(&self, n: i32) -> Result<Period, String> {
        let out = |_| format!("{}: no period {n} after it", self.label);
        match self.kind {
            Kind::Month {
                year,
                month,
                monthly_on_day,
            } => {
                let index = i32::from(year) * 12 + i32::from(month) - 1 + n;
                let year = i16::try_from(index.div_euclid(12)).map_err(out)?;
                let month = i8::try_from(index.rem_euclid(12) + 1).map_err(out)?;
                month_of(format!("{year:04}-{month:02}"), year, month, monthly_on_day)
            }
            Kind::Week => {
                let monday = self
                    .from
                    .checked_add((7 * i64::from(n)).days())
                    .map_err(|_| format!("{}: no week {n} after it", self.label))?;
                let week = monday.iso_week_date();
                let label = format!("{:04}-W{:02}", week.year(), week.week());
                week_of(label, monday)
            }
            Kind::Days => {
                let len = i64::from(self.days());
                let shift = |d: Date, by: i64| {
                    d.checked_add(by.days())
                        .map_err(|_| format!("{}: no range {n} after it", self.label))
                };
                let from = shift(self.from, len * i64::from(n))?;
                let last = shift(from, len - 1)?;
                days(format!("{from}..{last}"), from, last)
            }
        }
    }
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
        assert_eq!(p.days(), 7);
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

    #[test]
    fn periods_step_to_their_neighbours_of_the_same_kind() {
        let next = |text: &str, day: Option<u8>, n: i32| {
            let p = parse(text, day).unwrap().shifted(n).unwrap();
            (p.label, p.from, p.until)
        };
        assert_eq!(
            next("2026-12", None, 1),
            ("2027-01".into(), d("2027-01-01"), d("2027-02-01"))
        );
        assert_eq!(
            next("2026-01", None, -12),
            ("2025-01".into(), d("2025-01-01"), d("2025-02-01"))
        );
        // The same report day: the month after real-estate's November is the 26th of
        // November to the 25th of December.
        assert_eq!(
            next("2026-11", Some(25), 1),
            ("2026-12".into(), d("2026-11-26"), d("2026-12-26"))
        );
        assert_eq!(
            next("2026-W53", None, 1),
            ("2027-W01".into(), d("2027-01-04"), d("2027-01-11"))
        );
        assert_eq!(
            next("2026-W02", None, -2),
            ("2025-W52".into(), d("2025-12-22"), d("2025-12-29"))
        );
        assert_eq!(
            next("2026-11-02..2026-11-08", None, 1),
            (
                "2026-11-09..2026-11-15".into(),
                d("2026-11-09"),
                d("2026-11-16")
            )
        );
        assert_eq!(
            next("2026-11-02..2026-11-04", None, -1),
            (
                "2026-10-30..2026-11-01".into(),
                d("2026-10-30"),
                d("2026-11-02")
            )
        );
        let p = parse("2026-11", None).unwrap();
        assert_eq!(p.shifted(0).unwrap(), p);
    }
}
