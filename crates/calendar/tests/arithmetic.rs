mod common;

use common::{always_berlin, cn, local, mon_fri, ts};
use jiff::SignedDuration;
use redress_calendar::{Calendar, DeadlineSpan};

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn due(cal: &Calendar, from: &str, span: &str) -> String {
    let z = cal
        .deadline(ts(from), span.parse::<DeadlineSpan>().unwrap())
        .unwrap();
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

#[test]
fn worked_example_working_days() {
    // 2024-01-01 is a Monday, so 1-4 January are working days on mon-fri.
    let cal = mon_fri();
    let start = "2024-01-01T10:00:00Z";
    assert_eq!(
        due(&cal, start, "1 working day"),
        "2024-01-02T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, start, "2 working days"),
        "2024-01-03T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, start, "3 working days"),
        "2024-01-04T18:00:00+00:00"
    );
    // The day of receipt never counts, whatever the time of day.
    assert_eq!(
        due(&cal, "2024-01-01T07:00:00Z", "2 working days"),
        "2024-01-03T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2024-01-01T23:59:59Z", "2 working days"),
        "2024-01-03T18:00:00+00:00"
    );
}

#[test]
fn working_days_from_an_off_day() {
    let cal = mon_fri();
    // Saturday and Sunday: Monday is the first working day after them.
    assert_eq!(
        due(&cal, "2024-01-06T10:00:00Z", "1 working day"),
        "2024-01-08T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2024-01-07T10:00:00Z", "2 working days"),
        "2024-01-09T18:00:00+00:00"
    );
    // Friday: the weekend is skipped.
    assert_eq!(
        due(&cal, "2024-01-05T17:59:00Z", "1 working day"),
        "2024-01-08T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2024-01-05T10:00:00Z", "5 working days"),
        "2024-01-12T18:00:00+00:00"
    );
}

#[test]
fn zero_working_days_is_close_of_business_today() {
    let cal = mon_fri();
    assert_eq!(
        due(&cal, "2024-01-08T10:00:00Z", "0 working days"),
        "2024-01-08T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2024-01-08T18:00:00Z", "0 working days"),
        "2024-01-09T18:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2024-01-06T10:00:00Z", "0 working days"),
        "2024-01-08T18:00:00+00:00"
    );
}

#[test]
fn business_hours_basics() {
    let cal = mon_fri();
    assert_eq!(
        due(&cal, "2024-01-08T10:00:00Z", "3 business hours"),
        "2024-01-08T13:00:00+00:00"
    );
    // A full day's worth from opening ends at close, not next morning.
    assert_eq!(
        due(&cal, "2024-01-08T09:00:00Z", "9 business hours"),
        "2024-01-08T18:00:00+00:00"
    );
    let t = cal
        .add_business_time(
            ts("2024-01-08T09:00:00Z"),
            hours(9) + SignedDuration::from_secs(1),
        )
        .unwrap();
    assert_eq!(t, ts("2024-01-09T09:00:01Z"));
    // Across the weekend.
    assert_eq!(
        due(&cal, "2024-01-05T16:00:00Z", "4 business hours"),
        "2024-01-08T11:00:00+00:00"
    );
    // Zero is the start itself, even off hours.
    let sat = ts("2024-01-06T10:00:00Z");
    assert_eq!(
        cal.add_business_time(sat, SignedDuration::ZERO).unwrap(),
        sat
    );
    // Business minutes.
    assert_eq!(
        due(&cal, "2024-01-08T17:50:00Z", "30 business minutes"),
        "2024-01-09T09:20:00+00:00"
    );
    // Negative business time is refused.
    assert!(cal.add_business_time(sat, hours(-1)).is_err());
}

#[test]
fn starting_on_off_day_or_after_close() {
    let cal = mon_fri();
    // Saturday: the clock starts Monday 09:00.
    assert_eq!(
        due(&cal, "2024-01-06T10:00:00Z", "2 business hours"),
        "2024-01-08T11:00:00+00:00"
    );
    // Exactly at close and after close: next morning.
    assert_eq!(
        due(&cal, "2024-01-08T18:00:00Z", "1 business hour"),
        "2024-01-09T10:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2024-01-08T21:30:00Z", "1 business hour"),
        "2024-01-09T10:00:00+00:00"
    );
    // Before opening.
    assert_eq!(
        due(&cal, "2024-01-08T03:00:00Z", "1 business hour"),
        "2024-01-08T10:00:00+00:00"
    );
    // One second before close.
    let t = cal
        .add_business_time(ts("2024-01-08T17:59:59Z"), SignedDuration::from_secs(1))
        .unwrap();
    assert_eq!(t, ts("2024-01-08T18:00:00Z"));
}

#[test]
fn lunch_break() {
    let cal = cn();
    // Tuesday 2026-01-06, hours 09:00-12:00 and 13:30-18:00.
    assert_eq!(
        due(&cal, "2026-01-06T12:30:00+08:00", "1 business hour"),
        "2026-01-06T14:30:00+08:00"
    );
    assert_eq!(
        due(&cal, "2026-01-06T11:30:00+08:00", "1 business hour"),
        "2026-01-06T14:00:00+08:00"
    );
    // 3 hours before lunch end exactly at noon, not at 13:30.
    assert_eq!(
        due(&cal, "2026-01-06T09:00:00+08:00", "3 business hours"),
        "2026-01-06T12:00:00+08:00"
    );
    let next = cal
        .next_working_instant(ts("2026-01-06T12:30:00+08:00"))
        .unwrap();
    assert_eq!(local(&cal, next), "2026-01-06T13:30:00+08:00");
    let elapsed = cal
        .business_time_between(
            ts("2026-01-06T11:00:00+08:00"),
            ts("2026-01-06T14:00:00+08:00"),
            &[],
        )
        .unwrap();
    assert_eq!(elapsed, mins(90));
    // A full day is 7.5 hours.
    let day = cal
        .business_time_between(
            ts("2026-01-06T00:00:00+08:00"),
            ts("2026-01-07T00:00:00+08:00"),
            &[],
        )
        .unwrap();
    assert_eq!(day, mins(450));
}

#[test]
fn next_working_instant_cases() {
    let cal = mon_fri();
    let inside = ts("2024-01-08T10:15:30.25Z");
    assert_eq!(cal.next_working_instant(inside).unwrap(), inside);
    assert_eq!(
        cal.next_working_instant(ts("2024-01-08T09:00:00Z"))
            .unwrap(),
        ts("2024-01-08T09:00:00Z")
    );
    assert_eq!(
        cal.next_working_instant(ts("2024-01-08T18:00:00Z"))
            .unwrap(),
        ts("2024-01-09T09:00:00Z")
    );
    assert_eq!(
        cal.next_working_instant(ts("2024-01-05T19:00:00Z"))
            .unwrap(),
        ts("2024-01-08T09:00:00Z")
    );
    // Through the whole Spring Festival week, to the make-up Saturday after.
    let c = cn();
    let t = c
        .next_working_instant(ts("2025-01-28T08:00:00+08:00"))
        .unwrap();
    assert_eq!(local(&c, t), "2025-02-05T09:00:00+08:00");
    let t = c
        .next_working_instant(ts("2025-02-07T18:30:00+08:00"))
        .unwrap();
    assert_eq!(local(&c, t), "2025-02-08T09:00:00+08:00");
}

#[test]
fn national_day_2025_with_makeup_saturdays() {
    let cal = cn();
    let start = "2025-09-30T10:00:00+08:00";
    assert_eq!(
        due(&cal, start, "1 working day"),
        "2025-10-09T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, start, "2 working days"),
        "2025-10-10T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, start, "3 working days"),
        "2025-10-11T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, start, "4 working days"),
        "2025-10-13T18:00:00+08:00"
    );
    // The Saturday before: the make-up Sunday is the first working day.
    assert_eq!(
        due(&cal, "2025-09-27T10:00:00+08:00", "1 working day"),
        "2025-09-28T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, "2025-09-30T17:00:00+08:00", "2 business hours"),
        "2025-10-09T10:00:00+08:00"
    );
    // Friday 10 October into the make-up Saturday.
    assert_eq!(
        due(&cal, "2025-10-10T17:00:00+08:00", "3 business hours"),
        "2025-10-11T11:00:00+08:00"
    );
}

#[test]
fn national_day_2026() {
    let cal = cn();
    // Make-up Sunday 20 September before, Saturday 10 October after.
    assert_eq!(
        due(&cal, "2026-09-19T10:00:00+08:00", "1 working day"),
        "2026-09-20T18:00:00+08:00"
    );
    // Mid-Autumn 25-27 September.
    assert_eq!(
        due(&cal, "2026-09-24T10:00:00+08:00", "1 working day"),
        "2026-09-28T18:00:00+08:00"
    );
    let start = "2026-09-30T10:00:00+08:00";
    assert_eq!(
        due(&cal, start, "1 working day"),
        "2026-10-08T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, start, "3 working days"),
        "2026-10-10T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, start, "4 working days"),
        "2026-10-12T18:00:00+08:00"
    );
}

#[test]
fn spring_festival_2026_and_2025() {
    let cal = cn();
    // Saturday 14 February is a make-up day, then 15-23 off, Saturday 28 a
    // make-up day again.
    let fri = "2026-02-13T10:00:00+08:00";
    assert_eq!(due(&cal, fri, "1 working day"), "2026-02-14T18:00:00+08:00");
    assert_eq!(
        due(&cal, fri, "2 working days"),
        "2026-02-24T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, fri, "6 working days"),
        "2026-02-28T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, "2026-02-13T17:00:00+08:00", "8 business hours"),
        "2026-02-14T17:30:00+08:00"
    );
    assert_eq!(
        due(&cal, "2026-02-14T17:00:00+08:00", "2 business hours"),
        "2026-02-24T10:00:00+08:00"
    );
    // 2025: Sunday 26 January make-up, 28 Jan - 4 Feb off, Saturday 8 Feb.
    let fri = "2025-01-24T10:00:00+08:00";
    assert_eq!(due(&cal, fri, "1 working day"), "2025-01-26T18:00:00+08:00");
    assert_eq!(
        due(&cal, fri, "2 working days"),
        "2025-01-27T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, fri, "3 working days"),
        "2025-02-05T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, fri, "6 working days"),
        "2025-02-08T18:00:00+08:00"
    );
}

#[test]
fn new_year_2026_matches_the_cli_example() {
    let cal = cn();
    assert_eq!(
        due(&cal, "2025-12-31T10:00:00+08:00", "2 working days"),
        "2026-01-05T18:00:00+08:00"
    );
    assert_eq!(
        due(&cal, "2025-12-31T17:00:00+08:00", "3 business hours"),
        "2026-01-04T11:00:00+08:00"
    );
}

#[test]
fn calendar_time_ignores_the_calendar() {
    let cal = cn();
    assert_eq!(
        due(&cal, "2025-09-30T23:30:00+08:00", "2 hours"),
        "2025-10-01T01:30:00+08:00"
    );
    assert_eq!(
        due(&cal, "2025-09-30T23:30:00+08:00", "45 minutes"),
        "2025-10-01T00:15:00+08:00"
    );
    assert_eq!(
        due(&cal, "2025-09-30T10:00:00+08:00", "3 days"),
        "2025-10-03T10:00:00+08:00"
    );
}

#[test]
fn calendar_days_across_dst() {
    let ny = mon_fri().with_zone("America/New_York").unwrap();
    // 2024-03-10 spring forward: one calendar day is 23 hours.
    let z = ny
        .add_calendar_days(ts("2024-03-09T12:00:00-05:00"), 1)
        .unwrap();
    assert_eq!(z.timestamp(), ts("2024-03-10T12:00:00-04:00"));
    assert_eq!(
        z.timestamp()
            .duration_since(ts("2024-03-09T12:00:00-05:00")),
        SignedDuration::from_hours(23)
    );
    // Fall back: 25 hours.
    let z = ny
        .add_calendar_days(ts("2024-11-02T12:00:00-04:00"), 1)
        .unwrap();
    assert_eq!(z.timestamp(), ts("2024-11-03T12:00:00-05:00"));
    // A clock time inside the gap moves forward by the gap.
    let z = ny
        .add_calendar_days(ts("2024-03-09T02:30:00-05:00"), 1)
        .unwrap();
    assert_eq!(z.timestamp(), ts("2024-03-10T03:30:00-04:00"));
    // Calendar hours are real hours across the change.
    assert_eq!(
        due(&ny, "2024-03-10T01:30:00-05:00", "1 hour"),
        "2024-03-10T03:30:00-04:00"
    );
}

#[test]
fn business_time_across_dst_weekend() {
    let ny = mon_fri().with_zone("America/New_York").unwrap();
    // Friday 17:00 EST + 2 business hours = Monday 10:00 EDT.
    assert_eq!(
        due(&ny, "2024-03-08T17:00:00-05:00", "2 business hours"),
        "2024-03-11T10:00:00-04:00"
    );
    assert_eq!(
        due(&ny, "2024-11-01T17:00:00-04:00", "2 business hours"),
        "2024-11-04T10:00:00-05:00"
    );
    assert_eq!(
        due(&ny, "2024-03-08T10:00:00-05:00", "1 working day"),
        "2024-03-11T18:00:00-04:00"
    );
}

#[test]
fn dst_change_inside_working_hours() {
    let cal = always_berlin();
    // 2024-03-31: 02:00 CET jumps to 03:00 CEST, a 23-hour working day.
    let d = cal
        .business_time_between(
            ts("2024-03-31T00:00:00+01:00"),
            ts("2024-04-01T00:00:00+02:00"),
            &[],
        )
        .unwrap();
    assert_eq!(d, SignedDuration::from_hours(23));
    let t = cal
        .add_business_time(
            ts("2024-03-31T00:00:00+01:00"),
            SignedDuration::from_hours(23),
        )
        .unwrap();
    assert_eq!(t, ts("2024-04-01T00:00:00+02:00"));
    // 2024-10-27: 03:00 CEST falls back to 02:00 CET, a 25-hour day.
    let d = cal
        .business_time_between(
            ts("2024-10-27T00:00:00+02:00"),
            ts("2024-10-28T00:00:00+01:00"),
            &[],
        )
        .unwrap();
    assert_eq!(d, SignedDuration::from_hours(25));
}

#[test]
fn working_interval_in_gap_and_fold_is_deterministic() {
    let berlin = always_berlin();
    // 09:00-18:00 on the change days is 9 real hours: the change is at night.
    let cal = berlin.with_hours("09:00-18:00").unwrap();
    let iv = cal.working_intervals(jiff::civil::date(2024, 3, 31));
    assert_eq!(
        iv,
        vec![(
            ts("2024-03-31T09:00:00+02:00"),
            ts("2024-03-31T18:00:00+02:00")
        )]
    );
    // 01:00-04:00 spans the gap: 2 real hours.
    let cal = berlin.with_hours("01:00-04:00").unwrap();
    let iv = cal.working_intervals(jiff::civil::date(2024, 3, 31));
    assert_eq!(
        iv,
        vec![(
            ts("2024-03-31T01:00:00+01:00"),
            ts("2024-03-31T04:00:00+02:00")
        )]
    );
    // A start inside the gap moves forward by the gap: 02:30 becomes 03:30.
    let cal = berlin.with_hours("02:30-05:00").unwrap();
    let iv = cal.working_intervals(jiff::civil::date(2024, 3, 31));
    assert_eq!(
        iv,
        vec![(
            ts("2024-03-31T03:30:00+02:00"),
            ts("2024-03-31T05:00:00+02:00")
        )]
    );
    // A start inside the fold takes the earlier instant: 02:30 CEST.
    let iv = cal.working_intervals(jiff::civil::date(2024, 10, 27));
    assert_eq!(
        iv,
        vec![(
            ts("2024-10-27T02:30:00+02:00"),
            ts("2024-10-27T05:00:00+01:00")
        )]
    );
    let d = cal
        .business_time_between(
            ts("2024-10-27T00:00:00+02:00"),
            ts("2024-10-28T00:00:00+01:00"),
            &[],
        )
        .unwrap();
    assert_eq!(d, mins(210));
    // An interval wholly inside the gap shifts forward by the gap (02:10-02:50
    // becomes 03:10-03:50); the next interval, which would now start before
    // that one ends, is clamped to start where it ends.
    let cal = berlin.with_hours("02:10-02:50,03:00-04:00").unwrap();
    let iv = cal.working_intervals(jiff::civil::date(2024, 3, 31));
    assert_eq!(
        iv,
        vec![
            (
                ts("2024-03-31T03:10:00+02:00"),
                ts("2024-03-31T03:50:00+02:00")
            ),
            (
                ts("2024-03-31T03:50:00+02:00"),
                ts("2024-03-31T04:00:00+02:00")
            ),
        ]
    );
    let d = cal
        .business_time_between(
            ts("2024-03-31T00:00:00+01:00"),
            ts("2024-04-01T00:00:00+02:00"),
            &[],
        )
        .unwrap();
    assert_eq!(d, mins(50));
}

#[test]
fn elapsed_with_overlapping_pauses() {
    let cal = mon_fri();
    let (a, b) = (ts("2024-01-08T09:00:00Z"), ts("2024-01-10T18:00:00Z"));
    assert_eq!(cal.business_time_between(a, b, &[]).unwrap(), hours(27));
    let pauses = [
        (ts("2024-01-08T10:00:00Z"), ts("2024-01-08T12:00:00Z")),
        (ts("2024-01-08T11:00:00Z"), ts("2024-01-08T13:00:00Z")),
        // Outside working hours: costs nothing.
        (ts("2024-01-08T20:00:00Z"), ts("2024-01-09T08:00:00Z")),
        // Extends past the end: clipped.
        (ts("2024-01-10T17:00:00Z"), ts("2024-01-12T00:00:00Z")),
        // Entirely before the start.
        (ts("2024-01-01T00:00:00Z"), ts("2024-01-05T00:00:00Z")),
        // Reversed: ignored.
        (ts("2024-01-09T12:00:00Z"), ts("2024-01-09T10:00:00Z")),
    ];
    assert_eq!(cal.business_time_between(a, b, &pauses).unwrap(), hours(23));
    // Pause contained in another one.
    let nested = [
        (ts("2024-01-09T09:00:00Z"), ts("2024-01-09T18:00:00Z")),
        (ts("2024-01-09T10:00:00Z"), ts("2024-01-09T11:00:00Z")),
    ];
    assert_eq!(cal.business_time_between(a, b, &nested).unwrap(), hours(18));
    // Reversed range.
    assert_eq!(
        cal.business_time_between(b, a, &[]).unwrap(),
        SignedDuration::ZERO
    );
    // Across a holiday week.
    let c = cn();
    let d = c
        .business_time_between(
            ts("2025-09-30T09:00:00+08:00"),
            ts("2025-10-10T09:00:00+08:00"),
            &[],
        )
        .unwrap();
    assert_eq!(d, mins(2 * 450));
}

#[test]
fn far_dates_outside_the_table_are_still_exact() {
    let cal = mon_fri();
    // 1980 and 2150 lie outside the precomputed window.
    assert_eq!(
        due(&cal, "1980-01-04T17:00:00Z", "2 business hours"),
        "1980-01-07T10:00:00+00:00"
    );
    assert_eq!(
        due(&cal, "2150-01-02T10:00:00Z", "3 working days"),
        "2150-01-07T18:00:00+00:00"
    );
    // A span that crosses the window's end.
    let start = ts("2109-12-01T10:00:00Z");
    let end = cal.add_working_days(start, 40).unwrap();
    let mut n = 0;
    let mut d = start.to_zoned(jiff::tz::TimeZone::UTC).date();
    while d < end.to_zoned(jiff::tz::TimeZone::UTC).date() {
        d = d.tomorrow().unwrap();
        n += u32::from(cal.is_working_day(d));
    }
    assert_eq!(n, 40);
    let t = cal
        .add_business_time(ts("1999-12-20T10:00:00Z"), hours(9 * 20))
        .unwrap();
    assert_eq!(
        cal.business_time_between(ts("1999-12-20T10:00:00Z"), t, &[])
            .unwrap(),
        hours(9 * 20)
    );
}

#[test]
fn overrides_of_hours_and_zone() {
    let cal = cn().with_hours("10:00-16:00").unwrap();
    assert_eq!(
        due(&cal, "2026-01-06T15:00:00+08:00", "2 business hours"),
        "2026-01-07T11:00:00+08:00"
    );
    let cal = cn().with_zone("Europe/Berlin").unwrap();
    assert_eq!(
        due(&cal, "2026-01-06T17:00:00+01:00", "1 working day"),
        "2026-01-07T18:00:00+01:00"
    );
    assert!(cn().with_zone("Mars/Olympus").is_err());
    assert!(cn().with_hours("18:00-09:00").is_err());
}

#[test]
fn absurd_amounts_are_errors_not_hangs_or_panics() {
    let cal = mon_fri();
    let start = ts("2026-01-05T09:00:00Z");
    assert!(cal.add_business_time(start, SignedDuration::MAX).is_err());
    assert!(cal.add_working_days(start, u32::MAX).is_err());
    assert!(cal.deadline(start, DeadlineSpan::Days(u32::MAX)).is_err());
    // Large but representable: 1,000 years of working days.
    let far = cal.add_working_days(start, 261 * 1000).unwrap();
    assert!(far > ts("3020-01-01T00:00:00Z") && far < ts("3030-01-01T00:00:00Z"));
}
