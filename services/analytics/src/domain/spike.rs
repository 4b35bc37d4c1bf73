//! Early warning of a category's spike (express, 002 ch. 8): the complaints of the latest
//! window against what the category's own history expects for that window.
//!
//! The expectation is seasonal by weekday: the mean of the same weekday over the four weeks
//! before (complaints come in weekly rhythms: fewer at weekends), never below one complaint.
//! `factor` is the rise worth telling (3: a tripling). A day is flagged when it has at least
//! `min` complaints, has risen more than half way to the factor (in ratio: √factor times the
//! expectation, so that a tripling is caught even when the history happened to run high), and
//! by more than chance explains (a Poisson tail below [`ALPHA`], 1 in 5,000, so that a quiet category's
//! ordinary noise is not a spike). An episode is the run of flagged days, told once, at its
//! first day.

/// The playbook's threshold (`report.spike_factor`, `report.spike_min`).
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    pub factor: f64,
    pub min: u32,
}

/// What a day looked like against its history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub expected: f64,
    pub observed: u32,
    pub spike: bool,
}

/// How many weeks of the same weekday make the expectation.
pub const WEEKS: usize = 4;

/// How improbable a day's count must be under the expectation to be a spike.
pub const ALPHA: f64 = 0.0002;

/// P(X ≥ k) for X ~ Poisson(λ).
pub fn poisson_tail(lambda: f64, k: u32) -> f64 {
    if k == 0 {
        return 1.0;
    }
    // 1 − P(X ≤ k − 1), the terms summed in log space so that large λ does not underflow.
    let mut term = -lambda;
    let mut below = term.exp();
    for i in 1..k {
        term += lambda.ln() - f64::from(i).ln();
        below += term.exp();
    }
    (1.0 - below).max(0.0)
}

/// Day `day` of `daily` (complaints per day, oldest first) against the same weekday of the
/// [`WEEKS`] weeks before it; none without that much history.
pub fn reading(daily: &[u32], day: usize, t: Threshold) -> Option<Reading> {
    let observed = *daily.get(day)?;
    if day < 7 * WEEKS {
        return None;
    }
    let expected = (1..=WEEKS)
        .map(|w| f64::from(daily[day - 7 * w]))
        .sum::<f64>()
        / WEEKS as f64;
    let base = expected.max(1.0);
    Some(Reading {
        expected,
        observed,
        spike: observed >= t.min
            && f64::from(observed) >= t.factor.sqrt() * base
            && poisson_tail(base, observed) < ALPHA,
    })
}

/// The days on which an episode starts: a spike the day before did not already tell.
pub fn episodes(daily: &[u32], t: Threshold) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_episode = false;
    for day in 0..daily.len() {
        let spike = reading(daily, day, t).is_some_and(|r| r.spike);
        if spike && !in_episode {
            out.push(day);
        }
        in_episode = spike;
    }
    out
}

/// The complaints of the `window` days ending on each day (the first `window - 1` sums are
/// partial): a window of several days is judged like a day, against the same window ending
/// on the same weekday of the weeks before.
pub fn rolling(daily: &[u32], window: usize) -> Vec<u32> {
    let window = window.max(1);
    let mut out = Vec::with_capacity(daily.len());
    let mut sum = 0u32;
    for (i, n) in daily.iter().enumerate() {
        sum += n;
        if i >= window {
            sum -= daily[i - window];
        }
        out.push(sum);
    }
    out
}

/// How many days of history [`reading`] needs to judge the last day of a `window`-day
/// rolling series and the day before it (to tell a new episode from a running one).
pub fn history_days(window: usize) -> usize {
    7 * WEEKS + window.max(1) + 1
}

/// A small deterministic generator for synthetic streams (tests and the benchmark): the
/// same seed gives the same days on every machine.
pub struct Synthetic(u64);

impl Synthetic {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next_f64(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A Poisson count with mean `lambda` (Knuth's method; fine for the means used here).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.next_f64();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }

    /// `days` of a category with `weekday` complaints a day on average Monday to Friday and
    /// `weekend` at weekends (day 0 a Monday).
    pub fn weekly(&mut self, days: usize, weekday: f64, weekend: f64) -> Vec<u32> {
        (0..days)
            .map(|d| {
                let mean = if d % 7 >= 5 { weekend } else { weekday };
                self.poisson(mean)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Threshold = Threshold {
        factor: 3.0,
        min: 5,
    };

    #[test]
    fn a_tripling_within_a_day_is_flagged_once() {
        let mut g = Synthetic::new(7);
        let mut daily = g.weekly(120, 10.0, 4.0);
        // Day 100 (a Wednesday) triples, and the day after is still high.
        daily[100] = 30;
        daily[101] = 31;
        let e = episodes(&daily, T);
        assert!(e.contains(&100), "{e:?}");
        assert!(!e.contains(&101), "told once per episode: {e:?}");
        let r = reading(&daily, 100, T).unwrap();
        assert!(r.spike && r.observed == 30 && r.expected < 15.0, "{r:?}");
    }

    #[test]
    fn a_week_long_window_sums_seven_days() {
        assert_eq!(rolling(&[1, 2, 3, 4], 2), vec![1, 3, 5, 7]);
        assert_eq!(rolling(&[1, 2, 3], 1), vec![1, 2, 3]);
        // Two a day for five weeks, then a week of six a day: the week is a spike on its
        // seventh day's window and not the day before.
        let mut daily = vec![2u32; 35];
        daily.extend([6; 7]);
        let t = Threshold {
            factor: 3.0,
            min: 3,
        };
        let series = rolling(&daily, 7);
        let last = series.len() - 1;
        assert!(reading(&series, last, t).unwrap().spike);
        assert!(history_days(7) <= daily.len());
        assert!(
            !reading(&series, last - 4, t).unwrap().spike,
            "only part of the week"
        );
    }

    #[test]
    fn weekly_seasonality_is_not_a_spike() {
        // Mondays busy, weekends quiet: the same weekday is the baseline, so a Monday after a
        // quiet Sunday is not a spike.
        let daily: Vec<u32> = (0..140)
            .map(|d| match d % 7 {
                0 => 30,
                5 | 6 => 3,
                _ => 12,
            })
            .collect();
        assert!(episodes(&daily, T).is_empty());
        // Against the day before, the same Monday would have looked like a tenfold rise.
        assert!(daily[7] >= 10 * daily[6]);
    }

    #[test]
    fn a_quiet_category_is_not_flagged_for_a_few() {
        let mut daily = vec![0u32; 60];
        daily[50] = 4;
        assert!(episodes(&daily, T).is_empty(), "below spike_min");
        // Six where one is expected happens by chance about once in 1,700 days.
        daily[50] = 6;
        assert!(episodes(&daily, T).is_empty(), "within chance");
        daily[50] = 7;
        assert_eq!(episodes(&daily, T), vec![50]);
        assert!((poisson_tail(1.0, 5) - 0.00366).abs() < 1e-4);
        assert!((poisson_tail(20.0, 35) - 0.00149).abs() < 1e-4);
    }
}
