//! The key figures of a period as a reader wants them: Markdown for a meeting note, CSV for a
//! spreadsheet, and one self-contained HTML page with charts for reading or printing. Both the
//! command line and the service render with these, so a report looks the same wherever made.

mod chart;
mod csv;
mod html;
mod markdown;

pub use self::chart::is_wide;
pub use self::csv::csv;
pub use self::html::html;
pub use self::markdown::markdown;

use redress_proto::time::Timestamp;
use redress_proto::v1::{CountBy, Forecast, Kpis};

/// How many of the largest causes the reports show: more reads as noise in a meeting.
const TOP_CAUSES: usize = 8;

/// A duration as a person says it: "1 d 1 h", "8 h 30 min", "45 min"; "-" when there was
/// nothing to measure (the service sends 0 then).
fn duration(secs: f64) -> String {
    if secs.is_nan() || secs <= 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The handling times a report tables, named as a reader understands them.
fn handling_times(k: &Kpis) -> [(&'static str, redress_proto::v1::DurationStats); 4] {
    [
        (
            "First response (assigned → accepted)",
            k.first_response.unwrap_or_default(),
        ),
        (
            "Resolution (received → resolved)",
            k.resolution.unwrap_or_default(),
        ),
        (
            "Approval (asked → decided)",
            k.approval_turnaround.unwrap_or_default(),
        ),
        (
            "Backlog age (still open)",
            k.backlog_age.unwrap_or_default(),
        ),
    ]
}

fn percent(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

/// Amounts travel in minor units; every currency the playbooks use has two decimals.
fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    let amount = format!("{sign}{}.{:02}", m / 100, m % 100);
    if currency.is_empty() {
        amount
    } else {
        format!("{amount} {currency}")
    }
}

/// "2026-11-01 to 2026-11-30 (Asia/Shanghai)": the days of the period in its zone. `until`
/// is the start of the day after, so the last day is the one just before it.
fn span(k: &Kpis) -> String {
    let first = k.from.as_ref().and_then(|t| local_day(t, &k.zone, 0));
    let last = k.until.as_ref().and_then(|t| local_day(t, &k.zone, 1));
    let show = |d: Option<jiff::civil::Date>| d.map_or_else(|| "-".into(), |d| d.to_string());
    format!("{} to {} ({})", show(first), show(last), k.zone)
}

/// The day in the zone of the instant `back_nanos` before `t`; UTC when the zone is unknown
/// here, which is better than no date.
fn local_day(t: &Timestamp, zone: &str, back_nanos: i64) -> Option<jiff::civil::Date> {
    let at = jiff::Timestamp::new(t.seconds, t.nanos).ok()?;
    let at = at
        .checked_sub(jiff::SignedDuration::from_nanos(back_nanos))
        .ok()?;
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    Some(at.to_zoned(tz).date())
}

/// A key as shown: the service counts complaints without one under "".
fn key_label(key: &str) -> &str {
    if key.is_empty() { "(none)" } else { key }
}

/// The largest counts first, ties in the order the service gave (by key).
fn largest(rows: &[CountBy], n: usize) -> Vec<&CountBy> {
    let mut v: Vec<&CountBy> = rows.iter().collect();
    v.sort_by_key(|c| std::cmp::Reverse(c.count));
    v.truncate(n);
    v
}

fn forecast_category(f: &Forecast) -> &str {
    if f.category.is_empty() {
        "all complaints"
    } else {
        &f.category
    }
}

/// "12 (8–17)": the expected count with the interval that holds about 90 % of outcomes.
fn forecast_expected(f: &Forecast) -> String {
    format!("{:.0} ({}–{})", f.expected, f.low, f.high)
}

/// What came against what was expected, for the period being reported on only: a later
/// period has nothing to compare yet.
fn forecast_outcome(f: &Forecast, period: &str) -> Option<(u64, &'static str)> {
    if f.period != period {
        return None;
    }
    let verdict = if f.actual > f.high {
        "above range"
    } else if f.actual < f.low {
        "below range"
    } else {
        "within range"
    };
    Some((f.actual, verdict))
}

#[cfg(test)]
pub(crate) mod sample {
    use redress_proto::v1::{
        CountBy, DurationStats, Forecast, Kpis, OnTimeRate, SatisfactionStats,
    };

    fn by(rows: &[(&str, u64)]) -> Vec<CountBy> {
        rows.iter()
            .map(|(k, c)| CountBy {
                key: (*k).into(),
                count: *c,
            })
            .collect()
    }

    fn stats(count: u64, p50: f64, p90: f64, b50: f64, b90: f64) -> Option<DurationStats> {
        Some(DurationStats {
            count,
            p50_secs: p50,
            p90_secs: p90,
            p50_business_secs: b50,
            p90_business_secs: b90,
        })
    }

    fn forecast(period: &str, category: &str, e: f64, lo: u64, hi: u64, a: u64) -> Forecast {
        Forecast {
            period: period.into(),
            category: category.into(),
            expected: e,
            low: lo,
            high: hi,
            actual: a,
            history: 6,
        }
    }

    /// November at an express-delivery company: a few hundred complaints a month.
    pub fn month() -> Kpis {
        let days: Vec<(String, u64)> = (1..=30)
            .filter(|d| d % 11 != 0)
            .map(|d| {
                (
                    format!("2026-11-{d:02}"),
                    4 + (d * 7 % 9) + u64::from(d % 7 == 3) * 9,
                )
            })
            .collect();
        let days: Vec<(&str, u64)> = days.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        Kpis {
            playbook: "express".into(),
            period: "2026-11".into(),
            from: Some(redress_proto::time::from_unix_micros(1_793_462_400_000_000)),
            until: Some(redress_proto::time::from_unix_micros(1_796_054_400_000_000)),
            zone: "Asia/Shanghai".into(),
            received: 246,
            open: 31,
            closed: 201,
            withdrawn: 9,
            merged: 5,
            first_response: stats(240, 1_800.0, 14_400.0, 1_500.0, 10_800.0),
            resolution: stats(201, 90_000.0, 345_600.0, 30_600.0, 115_200.0),
            on_time: vec![
                on_time("record", 240, 2),
                on_time("respond", 221, 19),
                on_time("investigate", 170, 31),
                on_time("answer", 190, 11),
            ],
            breaches: 63,
            escalations: 14,
            approval_turnaround: stats(38, 7_200.0, 86_400.0, 5_400.0, 28_800.0),
            compensations: 38,
            compensation_minor: 1_234_550,
            currency: "CNY".into(),
            satisfaction: Some(SatisfactionStats {
                answered: 120,
                overall: 3.9,
                speed: 3.6,
                effectiveness: 3.8,
                attitude: 4.2,
                transparency: 3.7,
                share_satisfied: 0.725,
                no_response: 40,
                no_response_rate: 0.25,
                distribution: vec![8, 9, 16, 40, 47],
            }),
            reopen_rate: 0.04,
            repeat_rate: 0.11,
            backlog_age: stats(31, 172_800.0, 604_800.0, 57_600.0, 201_600.0),
            by_category: by(&[
                ("延误", 96),
                ("丢失", 41),
                ("破损", 38),
                ("服务态度", 35),
                ("运费 & 退款", 22),
                ("<物流信息>", 14),
            ]),
            by_channel: by(&[
                ("phone", 102),
                ("web", 61),
                ("app", 38),
                ("sms", 17),
                ("social", 21),
                ("referral", 7),
            ]),
            by_day: by(&days),
            forecast: vec![
                forecast("2026-11", "", 231.6, 198, 266, 246),
                forecast("2026-11", "延误", 70.2, 55, 86, 96),
                forecast("2026-11", "丢失", 44.0, 33, 56, 41),
                forecast("2026-12", "", 258.3, 221, 296, 0),
            ],
            by_nature: by(&[
                ("valid", 170),
                ("派送延迟", 52),
                ("包裹丢失", 31),
                ("外包装破损", 27),
                ("快递员态度差", 24),
                ("虚假签收", 19),
                ("多收运费", 15),
                ("物流信息不更新", 12),
                ("隐私泄露", 4),
                ("", 2),
            ]),
            by_department: by(&[
                ("客服中心 Customer service centre", 120),
                ("运营管理部 Operations", 71),
                ("理赔与安全部 Claims", 44),
                ("", 11),
            ]),
        }
    }

    fn on_time(deadline: &str, met: u64, breached: u64) -> OnTimeRate {
        OnTimeRate {
            deadline: deadline.into(),
            met,
            breached,
            rate: met as f64 / (met + breached) as f64,
        }
    }

    /// A period in which nothing came: what the service sends then.
    pub fn empty() -> Kpis {
        Kpis {
            playbook: "express".into(),
            period: "2026-W48".into(),
            zone: "Asia/Shanghai".into(),
            currency: "CNY".into(),
            first_response: stats(0, 0.0, 0.0, 0.0, 0.0),
            satisfaction: Some(SatisfactionStats {
                distribution: vec![0; 5],
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_spoken() {
        assert_eq!(duration(0.0), "-");
        assert_eq!(duration(f64::NAN), "-");
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(2_700.0), "45 min");
        assert_eq!(duration(7_200.0), "2 h");
        assert_eq!(duration(30_600.0), "8 h 30 min");
        assert_eq!(duration(90_000.0), "1 d 1 h");
        assert_eq!(duration(172_800.0), "2 d");
    }

    #[test]
    fn money_is_major_units_with_two_decimals() {
        assert_eq!(money(1_234_550, "CNY"), "12345.50 CNY");
        assert_eq!(money(5, "CNY"), "0.05 CNY");
        assert_eq!(money(-250, "EUR"), "-2.50 EUR");
        assert_eq!(money(0, ""), "0.00");
    }

    #[test]
    fn the_span_is_the_days_of_the_period_in_its_zone() {
        assert_eq!(
            span(&sample::month()),
            "2026-11-01 to 2026-11-30 (Asia/Shanghai)"
        );
        assert_eq!(span(&sample::empty()), "- to - (Asia/Shanghai)");
    }

    #[test]
    fn the_forecast_of_the_period_is_judged_against_what_came() {
        let k = sample::month();
        assert_eq!(forecast_expected(&k.forecast[0]), "232 (198–266)");
        assert_eq!(
            forecast_outcome(&k.forecast[1], &k.period),
            Some((96, "above range"))
        );
        assert_eq!(
            forecast_outcome(&k.forecast[2], &k.period),
            Some((41, "within range"))
        );
        assert_eq!(forecast_outcome(&k.forecast[3], &k.period), None);
    }
}
