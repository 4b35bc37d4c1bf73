//! `cargo bench -p redress-analytics --bench spikes`: the spike detector's false alarms and
//! detections on synthetic streams (deterministic seeds), with the default threshold of the
//! playbooks (a factor of 3 and at least 5 complaints; see `domain::spike`).
//!
//! - False alarms: a year of a category with weekly seasonality (weekdays 20 a day,
//!   weekends 8) and nothing unusual, 200 streams: episodes told per stream-year.
//! - Detection: the same streams with one day tripled at a random weekday after the first
//!   five weeks: share of injected days flagged on that day.
//! - The same for a quiet category (weekdays 4, weekends 1).

use redress_analytics::domain::spike::{Synthetic, Threshold, episodes, reading};

fn run(name: &str, weekday: f64, weekend: f64, t: Threshold) {
    const STREAMS: u64 = 200;
    const DAYS: usize = 365;
    let mut false_alarms = 0usize;
    let mut detected = 0usize;
    for seed in 1..=STREAMS {
        let mut g = Synthetic::new(seed);
        let daily = g.weekly(DAYS, weekday, weekend);
        false_alarms += episodes(&daily, t).len();
        // One injected tripling per stream, on a weekday after the history fills.
        let mut injected = daily.clone();
        let day = 35 + (seed as usize * 37) % (DAYS - 42);
        let day = day - day % 7 + 2; // a Wednesday
        let mean = if day % 7 >= 5 { weekend } else { weekday };
        injected[day] = (3.0 * mean).round() as u32;
        if reading(&injected, day, t).is_some_and(|r| r.spike) {
            detected += 1;
        }
    }
    println!(
        "{name}: {:.3} false alarms per stream-year ({false_alarms} in {STREAMS} years), \
         {:.1} % of tripled days detected ({detected} of {STREAMS})",
        false_alarms as f64 / STREAMS as f64,
        100.0 * detected as f64 / STREAMS as f64
    );
}

fn main() {
    let t = Threshold {
        factor: 3.0,
        min: 5,
    };
    run("busy category (20/8 a day)", 20.0, 8.0, t);
    run("quiet category (4/1 a day)", 4.0, 1.0, t);
}
