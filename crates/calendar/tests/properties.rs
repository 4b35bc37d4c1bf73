//! Properties checked against a brute-force model built from
//! `working_intervals` and `is_working_day`, which do not use the prefix
//! tables the fast paths rely on.

mod common;

use std::sync::LazyLock;

use common::{always_berlin, cn, mon_fri};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use redress_calendar::Calendar;

/// Built once: each calendar's tables take a moment to build in a debug
/// build, and every proptest case would otherwise rebuild them.
fn calendars() -> &'static [Calendar] {
    static CALS: LazyLock<Vec<Calendar>> = LazyLock::new(|| {
        vec![
            cn(),
            mon_fri(),
            mon_fri()
                .with_zone("America/New_York")
                .unwrap()
                .with_hours("08:00-12:00,13:00-17:30")
                .unwrap(),
            // Working hours that contain the Berlin DST changes (at 02:00/03:00).
            always_berlin()
                .with_hours("01:00-04:00,09:00-17:00")
                .unwrap(),
        ]
    });
    &CALS
}

/// Seconds from 2009 to 2028, covering the data years and their edges.
fn instant() -> impl Strategy<Value = Timestamp> {
    (1_230_768_000i64..1_830_297_600).prop_map(|s| Timestamp::from_second(s).unwrap())
}

fn day_of(cal: &Calendar, t: Timestamp) -> jiff::civil::Date {
    t.to_zoned(cal.zone().clone()).date()
}

/// Working seconds in [a, b) by walking the days' intervals.
fn brute_elapsed(cal: &Calendar, a: Timestamp, b: Timestamp) -> i64 {
    let (a, b) = (a.as_second(), b.as_second());
    let mut d = day_of(cal, Timestamp::from_second(a).unwrap())
        .yesterday()
        .unwrap();
    let last = day_of(cal, Timestamp::from_second(b).unwrap())
        .tomorrow()
        .unwrap();
    let mut total = 0;
    while d <= last {
        for (s, e) in cal.working_intervals(d) {
            let (s, e) = (s.as_second().max(a), e.as_second().min(b));
            total += (e - s).max(0);
        }
        d = d.tomorrow().unwrap();
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn add_then_measure_gives_the_same_duration(
        which in 0usize..4,
        start in instant(),
        secs in 1i64..(260 * 8 * 3600),
    ) {
        let cal = &calendars()[which];
        let amount = SignedDuration::from_secs(secs);
        let due = cal.add_business_time(start, amount).unwrap();
        prop_assert!(due > start);
        prop_assert_eq!(cal.business_time_between(start, due, &[]).unwrap(), amount);
        // Earliest such instant: a second less is not enough.
        let before = due - SignedDuration::from_secs(1);
        prop_assert!(cal.business_time_between(start, before, &[]).unwrap() < amount);
    }

    #[test]
    fn elapsed_matches_brute_force(
        which in 0usize..4,
        a in instant(),
        len in 0i64..(40 * 86_400),
    ) {
        let cal = &calendars()[which];
        let b = a + SignedDuration::from_secs(len);
        let fast = cal.business_time_between(a, b, &[]).unwrap().as_secs();
        prop_assert_eq!(fast, brute_elapsed(cal, a, b));
    }

    #[test]
    fn pauses_match_brute_force(
        which in 0usize..4,
        a in instant(),
        len_min in 1i64..(4 * 1440),
        pauses in proptest::collection::vec((0i64..(5 * 1440), 0i64..(2 * 1440)), 0..5),
    ) {
        // Minute grid: every endpoint is a whole minute, so checking each
        // minute's start is exact.
        let cal = &calendars()[which];
        let a = Timestamp::from_second(a.as_second() / 60 * 60).unwrap();
        let at = |m: i64| a + SignedDuration::from_mins(m);
        let b = at(len_min);
        let ps: Vec<(Timestamp, Timestamp)> = pauses
            .iter()
            .map(|&(s, l)| (at(s - 1440), at(s - 1440 + l)))
            .collect();
        let got = cal.business_time_between(a, b, &ps).unwrap().as_secs();
        let mut working = Vec::new();
        let mut d = day_of(cal, a).yesterday().unwrap();
        while d <= day_of(cal, b).tomorrow().unwrap() {
            working.extend(cal.working_intervals(d));
            d = d.tomorrow().unwrap();
        }
        let mut want = 0;
        for m in 0..len_min {
            let t = at(m);
            let paused = ps.iter().any(|&(s, e)| s <= t && t < e);
            // Interval boundaries can fall inside a minute (none of the
            // calendars here has such hours, but DST shifts are whole hours).
            if !paused && working.iter().any(|&(s, e)| s <= t && t < e) {
                want += 60;
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn business_deadlines_are_monotone(
        which in 0usize..4,
        t1 in instant(),
        gap in 0i64..(20 * 86_400),
        secs in 0i64..(100 * 3600),
        n in 0u32..300,
    ) {
        let cal = &calendars()[which];
        let t2 = t1 + SignedDuration::from_secs(gap);
        let amount = SignedDuration::from_secs(secs);
        prop_assert!(cal.add_business_time(t1, amount).unwrap() <= cal.add_business_time(t2, amount).unwrap());
        prop_assert!(cal.add_working_days(t1, n).unwrap() <= cal.add_working_days(t2, n).unwrap());
        // More time never gives an earlier deadline either.
        prop_assert!(cal.add_business_time(t1, amount).unwrap() <= cal.add_business_time(t1, amount + SignedDuration::from_secs(1)).unwrap());
        // Strictly later from one working day on; "0" (by close of business today) meets "1"
        // when the clock starts outside working time, e.g. on Friday at or after close.
        if n >= 1 {
            prop_assert!(cal.add_working_days(t1, n).unwrap() < cal.add_working_days(t1, n + 1).unwrap());
        } else {
            prop_assert!(cal.add_working_days(t1, 0).unwrap() <= cal.add_working_days(t1, 1).unwrap());
        }
    }

    #[test]
    fn working_days_match_brute_force(
        which in 0usize..4,
        start in instant(),
        n in 1u32..60,
    ) {
        let cal = &calendars()[which];
        let due = cal.add_working_days(start, n).unwrap();
        let due_day = day_of(cal, due);
        let mut d = day_of(cal, start);
        let mut count = 0;
        while d < due_day {
            d = d.tomorrow().unwrap();
            count += u32::from(cal.is_working_day(d));
        }
        prop_assert_eq!(count, n);
        prop_assert!(cal.is_working_day(due_day));
        let close = cal.working_intervals(due_day).last().unwrap().1;
        prop_assert_eq!(due, close);
    }

    #[test]
    fn next_working_instant_is_the_first_working_second(
        which in 0usize..4,
        t in instant(),
    ) {
        let cal = &calendars()[which];
        let t = Timestamp::from_second(t.as_second()).unwrap();
        let r = cal.next_working_instant(t).unwrap();
        prop_assert!(r >= t);
        // No working time between t and r, and the second starting at r is
        // working time.
        prop_assert_eq!(brute_elapsed(cal, t, r), 0);
        prop_assert_eq!(brute_elapsed(cal, r, r + SignedDuration::from_secs(1)), 1);
    }
}

/// The case that proptest found: Friday at exactly close of business in Shanghai.
#[test]
fn zero_and_one_working_day_meet_after_close() {
    let cal = &calendars()[0];
    let friday_close: jiff::Timestamp = "2012-08-10T10:00:00Z".parse().unwrap();
    let zero = cal.add_working_days(friday_close, 0).unwrap();
    let one = cal.add_working_days(friday_close, 1).unwrap();
    let two = cal.add_working_days(friday_close, 2).unwrap();
    assert_eq!(zero, one);
    assert!(one < two);
}
