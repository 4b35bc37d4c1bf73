//! Sanity checks of the shipped cn-mainland data, read both through the
//! loader and straight from the file, so a loader bug cannot hide a data bug.

mod common;

use common::cn;
use jiff::civil::{Date, Weekday, date};
use redress_calendar::{BUILTIN_FILES, Calendar};

fn raw() -> toml::Table {
    let text = BUILTIN_FILES
        .iter()
        .find(|(f, _)| *f == "cn-mainland.toml")
        .unwrap()
        .1;
    toml::from_str(text).unwrap()
}

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

#[test]
fn every_year_2010_to_2026_is_present_with_a_source() {
    let cal = cn();
    let years: Vec<i16> = cal.sources().iter().map(|s| s.year).collect();
    assert_eq!(years, (2010..=2026).collect::<Vec<_>>());
    for s in cal.sources() {
        assert!(s.source.contains(&s.year.to_string()), "{s:?}");
        assert!(s.source.contains("published"), "{s:?}");
    }
}

#[test]
fn makeup_days_are_weekend_days() {
    let cal = cn();
    assert!(cal.makeup_days().len() > 80);
    for &m in cal.makeup_days() {
        assert!(is_weekend(m), "{m} is a {:?}", m.weekday());
        let info = cal.day(m);
        assert!(info.working && info.makeup && info.holiday.is_none(), "{m}");
    }
}

#[test]
fn raw_holiday_ranges_are_sorted_and_disjoint() {
    let mut prev_end: Option<Date> = None;
    let mut prev_makeup: Option<Date> = None;
    let mut n = 0;
    for year in raw()["year"].as_array().unwrap() {
        for h in year["holidays"].as_array().unwrap() {
            let from = d(h["from"].as_str().unwrap());
            let to = d(h["to"].as_str().unwrap());
            assert!(from <= to, "{h:?}");
            // The longest official break so far is the extended 2020 Spring
            // Festival (10 days).
            assert!(from.until(to).unwrap().get_days() <= 9, "{h:?}");
            if let Some(p) = prev_end {
                assert!(from > p, "{h:?} overlaps or precedes the previous range");
            }
            prev_end = Some(to);
            n += 1;
        }
        for m in year["makeup"].as_array().unwrap() {
            let m = d(m.as_str().unwrap());
            if let Some(p) = prev_makeup {
                assert!(m > p, "{m} out of order");
            }
            prev_makeup = Some(m);
        }
    }
    assert!(n >= 17 * 6, "only {n} holiday ranges");
}

/// The statutory holiday count (11 days until 2024, 13 from 2025 after the
/// 2024 amendment) equals the weekdays taken off minus the make-up days, as
/// every bridge day is paid back. This cross-checks each year's transcription
/// against the law independently of any single date.
#[test]
fn each_year_balances_to_the_statutory_days() {
    for year in raw()["year"].as_array().unwrap() {
        let y = year["year"].as_integer().unwrap();
        let mut weekdays_off = 0;
        for h in year["holidays"].as_array().unwrap() {
            let mut day = d(h["from"].as_str().unwrap());
            let to = d(h["to"].as_str().unwrap());
            while day <= to {
                weekdays_off += i64::from(!is_weekend(day));
                day = day.tomorrow().unwrap();
            }
        }
        let makeup = year["makeup"].as_array().unwrap().len() as i64;
        let expected = match y {
            // 3 September 2015, the one-off 70th anniversary holiday.
            2015 => 12,
            // Spring Festival extended to 2 February 2020.
            2020 => 13,
            2025.. => 13,
            _ => 11,
        };
        assert_eq!(weekdays_off - makeup, expected, "year {y}");
    }
}

#[test]
fn known_dates() {
    let cal = cn();
    let off = [
        date(2025, 10, 1),
        date(2025, 10, 8),
        date(2025, 1, 28),
        date(2025, 2, 4),
        date(2024, 2, 10),
        date(2024, 2, 16),
        date(2024, 10, 7),
        date(2026, 1, 2),
        date(2026, 2, 23),
        date(2026, 5, 5),
        date(2026, 6, 19),
        date(2026, 9, 25),
        date(2026, 10, 7),
        date(2020, 1, 31),
        date(2019, 5, 3),
        date(2015, 9, 4),
        date(2023, 9, 29),
        date(2022, 12, 31),
        date(2010, 2, 19),
    ];
    for day in off {
        assert!(!cal.is_working_day(day), "{day} should be off");
        assert!(cal.day(day).holiday.is_some(), "{day} should be a holiday");
    }
    let working = [
        date(2025, 10, 11),
        date(2025, 9, 28),
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 10, 9),
        date(2024, 2, 4),
        date(2024, 2, 18),
        date(2024, 9, 29),
        date(2024, 10, 12),
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
        date(2018, 12, 29),
        date(2011, 12, 31),
        date(2019, 5, 5),
    ];
    for day in working {
        assert!(cal.is_working_day(day), "{day} should be a working day");
    }
    // Plain weekdays and weekends outside any holiday.
    assert!(cal.is_working_day(date(2026, 3, 10)));
    assert!(!cal.is_working_day(date(2026, 3, 14)));
    // 1 February 2020 was a make-up day until the Spring Festival extension.
    assert!(!cal.is_working_day(date(2020, 2, 1)));
    // Years without data follow the weekly rule.
    assert!(cal.is_working_day(date(2027, 10, 1)));
    assert!(!cal.is_working_day(date(2009, 10, 3)));
}

#[test]
fn holiday_names_are_reported() {
    let cal = cn();
    assert_eq!(
        cal.day(date(2026, 2, 17)).holiday,
        Some("Spring Festival (春节)")
    );
    assert_eq!(
        cal.day(date(2025, 10, 5)).holiday,
        Some("National Day & Mid-Autumn Festival (国庆节、中秋节)")
    );
    assert_eq!(cal.day(date(2026, 2, 14)).holiday, None);
}

#[test]
fn loader_rejects_inconsistent_files() {
    let base = "name = \"t\"\nzone = \"Asia/Shanghai\"\nworkdays = [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]\nhours = [\"09:00-18:00\"]\n";
    let year = |body: &str| format!("{base}[[year]]\nyear = 2026\nsource = \"test\"\n{body}");
    let bad = [
        // Overlapping holidays.
        year(
            "holidays = [{ name = \"a\", from = \"2026-01-01\", to = \"2026-01-05\" }, { name = \"b\", from = \"2026-01-05\", to = \"2026-01-06\" }]",
        ),
        // Out of order.
        year(
            "holidays = [{ name = \"a\", from = \"2026-02-01\" }, { name = \"b\", from = \"2026-01-01\" }]",
        ),
        // Make-up day on a weekday.
        year("makeup = [\"2026-01-05\"]"),
        // Make-up day inside a holiday.
        year(
            "holidays = [{ name = \"a\", from = \"2026-01-01\", to = \"2026-01-04\" }]\nmakeup = [\"2026-01-04\"]",
        ),
        // Bad date.
        year("makeup = [\"2026-02-30\"]"),
        // Range ending before it starts.
        year("holidays = [{ name = \"a\", from = \"2026-01-03\", to = \"2026-01-01\" }]"),
        // Unknown zone and unknown field.
        base.replace("Asia/Shanghai", "Asia/Atlantis"),
        format!("{base}colour = \"red\"\n"),
        // No working time at all.
        base.replace("hours = [\"09:00-18:00\"]", "hours = []"),
    ];
    for text in bad {
        assert!(Calendar::from_toml(&text).is_err(), "accepted:\n{text}");
    }
    assert!(Calendar::from_toml(&year("makeup = [\"2026-01-04\"]")).is_ok());
}
