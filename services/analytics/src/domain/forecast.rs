//! How many complaints a period should bring, from the periods of the same kind before it.
//!
//! The method, and why:
//!
//! - **A rate per day.** Months are 28 to 31 days long, so each earlier period counts as its
//!   complaints per day, and the forecast is that rate times the days of the period forecast.
//! - **The level: the mean rate over the history** (up to [`MAX_HISTORY`] periods: a year of
//!   months, which a mean of fewer periods would follow too nervously, more would lag).
//! - **A linear trend only when the history shows one:** at least [`TREND_MIN_HISTORY`]
//!   periods and a least-squares slope of the daily rate at least [`TREND_T`] standard errors
//!   from flat. A steady category's slope is noise; extrapolating it would only widen the
//!   error. With a clear rise (a product fault, a season coming) the trend line, projected one
//!   period on, beats the mean, which lags behind it.
//! - **The interval: negative binomial quantiles.** Complaints arriving independently at a
//!   steady rate are Poisson, with variance equal to the mean; real periods differ more
//!   (campaigns, outages), so the variance is the Poisson one times the dispersion the
//!   history shows (Pearson's χ² per degree of freedom, never below 1), plus the uncertainty
//!   of the estimated level itself (which is what makes a short history's interval wide). A
//!   count with that mean and variance is negative binomial (Poisson when the variance is
//!   the mean); `low` and `high` are its 5 % and 95 % quantiles, so about 90 % of outcomes
//!   fall within them, whole numbers included. The unit tests check that on simulated
//!   histories.
//!
//! No seasonality: it would need years of history per category, which a complaint desk
//! rarely has; a season shows here as a trend or as a wider interval.

/// Periods of history a forecast uses at most.
pub const MAX_HISTORY: usize = 12;
/// Periods of history before a trend is considered.
pub const TREND_MIN_HISTORY: usize = 6;
/// How many standard errors from flat a slope must be to be followed.
pub const TREND_T: f64 = 3.0;
/// The share of outcomes the interval holds, split evenly between its two tails.
pub const COVERAGE: f64 = 0.90;

/// One earlier period: complaints received in it, and its length in days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Past {
    pub count: u64,
    pub days: f64,
}

/// What a period should bring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub expected: f64,
    pub low: u64,
    pub high: u64,
    /// Periods of history it was made from.
    pub history: u32,
    /// Whether it followed a trend rather than the mean.
    pub trend: bool,
}

/// The complaints a period of `days` days should bring, after `history` (oldest first; the
/// last [`MAX_HISTORY`] are used). None without history.
pub fn forecast(history: &[Past], days: f64) -> Option<Estimate> {
    let history = &history[history.len().saturating_sub(MAX_HISTORY)..];
    let n = history.len();
    if n == 0 || days <= 0.0 || history.iter().any(|p| p.days <= 0.0) {
        return None;
    }
    let level = trend(history, days).unwrap_or_else(|| mean(history, days));
    let expected = level.expected.max(0.0);
    let variance = level.dispersion * expected + level.uncertainty;
    let tail = (1.0 - COVERAGE) / 2.0;
    let [low, high] = quantiles(expected, variance, [tail, 1.0 - tail]);
    Some(Estimate {
        expected,
        low,
        high,
        history: u32::try_from(n).unwrap_or(u32::MAX),
        trend: level.trend,
    })
}

/// A fitted level: the expected count, the dispersion around the fit, and the variance of
/// the expectation itself.
struct Level {
    expected: f64,
    dispersion: f64,
    uncertainty: f64,
    trend: bool,
}

/// Pearson's χ² per degree of freedom of the counts against `fitted`, at least 1 (a history
/// cannot show less than Poisson noise, only fail to show more).
fn dispersion(history: &[Past], fitted: impl Fn(usize) -> f64, dof: usize) -> f64 {
    if dof == 0 {
        return 1.0;
    }
    let chi2: f64 = history
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = fitted(i).max(f64::MIN_POSITIVE);
            (p.count as f64 - f).powi(2) / f
        })
        .sum();
    (chi2 / dof as f64).max(1.0)
}

fn mean(history: &[Past], days: f64) -> Level {
    let exposure: f64 = history.iter().map(|p| p.days).sum();
    let rate = history.iter().map(|p| p.count as f64).sum::<f64>() / exposure;
    let expected = rate * days;
    let phi = if rate > 0.0 {
        dispersion(history, |i| rate * history[i].days, history.len() - 1)
    } else {
        1.0
    };
    Level {
        expected,
        dispersion: phi,
        // The rate's variance is φ·rate / exposure; the forecast scales it by days².
        uncertainty: phi * expected * days / exposure,
        trend: false,
    }
}

/// The least-squares line through the daily rates, when it is long and steep enough to
/// follow.
fn trend(history: &[Past], days: f64) -> Option<Level> {
    let n = history.len();
    if n < TREND_MIN_HISTORY {
        return None;
    }
    let rates: Vec<f64> = history.iter().map(|p| p.count as f64 / p.days).collect();
    let t_mean = (n - 1) as f64 / 2.0;
    let r_mean = rates.iter().sum::<f64>() / n as f64;
    let stt: f64 = (0..n).map(|t| (t as f64 - t_mean).powi(2)).sum();
    let slope = rates
        .iter()
        .enumerate()
        .map(|(t, r)| (t as f64 - t_mean) * (r - r_mean))
        .sum::<f64>()
        / stt;
    let line = |t: f64| r_mean + slope * (t - t_mean);
    let residual = rates
        .iter()
        .enumerate()
        .map(|(t, r)| (r - line(t as f64)).powi(2))
        .sum::<f64>()
        / (n - 2) as f64;
    let se = (residual / stt).sqrt();
    if slope == 0.0 || slope.abs() < TREND_T * se {
        return None;
    }
    let next = n as f64;
    Some(Level {
        expected: line(next) * days,
        dispersion: dispersion(history, |i| line(i as f64) * history[i].days, n - 2),
        uncertainty: residual * days * days * (1.0 / n as f64 + (next - t_mean).powi(2) / stt),
        trend: true,
    })
}

/// The smallest counts whose cumulative probability reaches each of `qs`, for a count with
/// `mean` and `variance`: negative binomial when the variance exceeds the mean, else Poisson.
fn quantiles(mean: f64, variance: f64, qs: [f64; 2]) -> [u64; 2] {
    if mean <= 0.0 {
        return [0, 0];
    }
    // ln P(k + 1) / P(k).
    let excess = variance - mean;
    let step: Box<dyn Fn(f64) -> f64> = if excess > mean * 1e-9 {
        let r = mean * mean / excess;
        let odds = (mean / (r + mean)).ln();
        Box::new(move |k| (k + r).ln() - (k + 1.0).ln() + odds)
    } else {
        let ln_mean = mean.ln();
        Box::new(move |k| ln_mean - (k + 1.0).ln())
    };
    // Log-weights relative to the count nearest the mean, walked outwards until negligible:
    // no factorials or gamma functions, so a mean of a million is as exact as one of three.
    // A very uneven history makes a tail that fades slowly; past 20 standard deviations it
    // holds less than 0.25 % of the outcomes (Cantelli), and the walk stops there.
    const NEGLIGIBLE: f64 = -40.0;
    let centre = mean.floor();
    let spread = variance.max(mean).sqrt();
    let ceiling = mean + 20.0 * spread + 100.0;
    let mut above = vec![0.0];
    let mut k = centre;
    while k < ceiling && (above.last().is_some_and(|&w| w > NEGLIGIBLE) || k < mean + spread) {
        let w = above.last().copied().unwrap_or(0.0) + step(k);
        above.push(w);
        k += 1.0;
    }
    let mut below = Vec::new();
    let mut k = centre;
    let mut w = 0.0;
    while k >= 1.0 && (w > NEGLIGIBLE || k > mean - spread) {
        w -= step(k - 1.0);
        below.push(w);
        k -= 1.0;
    }
    let first = centre as u64 - below.len() as u64;
    let weights: Vec<f64> = below.iter().rev().chain(above.iter()).copied().collect();
    let top = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mass: Vec<f64> = weights.iter().map(|w| (w - top).exp()).collect();
    let total: f64 = mass.iter().sum();
    qs.map(|q| {
        let mut cumulative = 0.0;
        let at = mass
            .iter()
            .position(|m| {
                cumulative += m / total;
                cumulative >= q
            })
            .unwrap_or(mass.len() - 1);
        first + at as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spike::Synthetic;

    fn months(counts: &[u64]) -> Vec<Past> {
        counts
            .iter()
            .map(|&count| Past { count, days: 30.0 })
            .collect()
    }

    /// Share of `seeds` simulated next periods within the interval forecast from the
    /// simulated history before them, and the mean of the expectations.
    fn simulate(seeds: u64, periods: usize, rate: impl Fn(usize) -> f64) -> (f64, f64) {
        let mut inside = 0;
        let mut expected = 0.0;
        for seed in 1..=seeds {
            let mut g = Synthetic::new(seed);
            let history: Vec<u64> = (0..periods)
                .map(|t| u64::from(g.poisson(rate(t))))
                .collect();
            let next = u64::from(g.poisson(rate(periods)));
            let e = forecast(&months(&history), 30.0).unwrap();
            inside += usize::from(e.low <= next && next <= e.high);
            expected += e.expected;
        }
        (inside as f64 / seeds as f64, expected / seeds as f64)
    }

    #[test]
    fn a_steady_series_is_forecast_at_its_mean_and_the_interval_holds_about_90_percent() {
        for mean in [4.0, 40.0, 400.0] {
            let (coverage, expected) = simulate(2000, 12, |_| mean);
            assert!(
                (0.88..=0.97).contains(&coverage),
                "mean {mean}: {coverage} covered"
            );
            assert!(
                (expected - mean).abs() < 0.05 * mean,
                "mean {mean}: expected {expected}"
            );
        }
        let e = forecast(&months(&[40; 12]), 30.0).unwrap();
        assert!(!e.trend && e.expected == 40.0 && e.history == 12, "{e:?}");
        // Poisson(40) with the level's own uncertainty: 40 ± 1.645·√(40·13/12) ≈ 29..51.
        assert!(
            (28..=31).contains(&e.low) && (50..=52).contains(&e.high),
            "{e:?}"
        );
    }

    #[test]
    fn a_clear_trend_is_followed() {
        let rise = |t: usize| 100.0 + 10.0 * t as f64;
        let (coverage, expected) = simulate(1000, 12, rise);
        assert!((0.86..=0.97).contains(&coverage), "{coverage} covered");
        assert!((expected - rise(12)).abs() < 5.0, "expected {expected}");
        let e = forecast(
            &months(&[100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 210]),
            30.0,
        )
        .unwrap();
        assert!(e.trend && (e.expected - 220.0).abs() < 1e-6, "{e:?}");
        // The mean of the history (155) would be far off.
        assert!(e.low > 155, "{e:?}");
        // A falling one does not fall below nothing.
        let e = forecast(&months(&[60, 50, 40, 30, 20, 10]), 30.0).unwrap();
        assert!(
            e.trend && e.expected == 0.0 && (e.low, e.high) == (0, 0),
            "{e:?}"
        );
    }

    #[test]
    fn noise_is_not_a_trend_and_short_histories_give_wide_intervals() {
        // Too few periods to tell a trend from chance: the mean.
        let e = forecast(&months(&[10, 20, 30]), 30.0).unwrap();
        assert!(!e.trend && e.expected == 20.0, "{e:?}");
        // One period: its count, with an interval wider than Poisson's alone.
        let one = forecast(&months(&[40]), 30.0).unwrap();
        let twelve = forecast(&months(&[40; 12]), 30.0).unwrap();
        assert_eq!((one.expected, one.history), (40.0, 1));
        assert!(one.high - one.low > twelve.high - twelve.low, "{one:?}");
        assert_eq!(forecast(&[], 30.0), None);
        // One period ran wild: a wide interval, quickly.
        let e = forecast(&months(&[0, 0, 0, 0, 0, 100_000]), 30.0).unwrap();
        assert!(e.low == 0 && e.high > 5 * e.expected as u64, "{e:?}");
        // A quiet category: nothing expected, nothing allowed for.
        let e = forecast(&months(&[0, 0, 0]), 30.0).unwrap();
        assert_eq!((e.expected, e.low, e.high), (0.0, 0, 0));
        // Of a longer history, the last twelve periods.
        let mut long = vec![1000; 6];
        long.extend([40; 12]);
        assert_eq!(forecast(&months(&long), 30.0), Some(twelve));
    }

    #[test]
    fn uneven_periods_widen_the_interval() {
        let steady = forecast(&months(&[50; 12]), 30.0).unwrap();
        let uneven = forecast(
            &months(&[30, 70, 30, 70, 30, 70, 30, 70, 30, 70, 30, 70]),
            30.0,
        )
        .unwrap();
        assert_eq!(uneven.expected, 50.0);
        assert!(
            uneven.low < steady.low && uneven.high > steady.high,
            "{uneven:?}"
        );
        // The alternation is as likely as not beyond the steady interval; the wide one holds it.
        assert!(uneven.low <= 30 && uneven.high >= 70, "{uneven:?}");
    }

    #[test]
    fn periods_count_by_their_days() {
        // The same 2 a day in February, March and April: 62 in a 31-day May.
        let history = [
            Past {
                count: 56,
                days: 28.0,
            },
            Past {
                count: 62,
                days: 31.0,
            },
            Past {
                count: 60,
                days: 30.0,
            },
        ];
        let e = forecast(&history, 31.0).unwrap();
        assert!((e.expected - 62.0).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn quantiles_match_known_distributions() {
        // Poisson(10): P(X ≤ 4) = 0.029, P(X ≤ 5) = 0.067; P(X ≤ 14) = 0.917, P(X ≤ 15) = 0.951.
        assert_eq!(quantiles(10.0, 10.0, [0.05, 0.95]), [5, 15]);
        // Negative binomial with mean 10 and variance 30 (r = 5, p = 1/3): P(X ≤ 2) = 0.045,
        // P(X ≤ 3) = 0.088; P(X ≤ 19) = 0.941, P(X ≤ 20) = 0.954.
        assert_eq!(quantiles(10.0, 30.0, [0.05, 0.95]), [3, 20]);
        // Large means need no factorials: within a count of the normal approximation.
        let [low, high] = quantiles(1e6, 1e6, [0.05, 0.95]);
        assert!(low.abs_diff(1_000_000 - 1645) <= 2 && high.abs_diff(1_000_000 + 1645) <= 2);
    }
}
