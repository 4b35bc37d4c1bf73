//! Throughput of "N working days" and "N business hours" over varied starts
//! and spans up to a year, plus the memory a loaded calendar set takes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use redress_calendar::{Calendar, CalendarSet};

const INPUTS: usize = 4096;

/// Deterministic pseudo-random inputs so runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Starts anywhere in 2024-2026, with a business amount of up to a year.
fn inputs(max_amount: u64) -> Vec<(Timestamp, u64)> {
    let mut rng = Lcg(42);
    let from = 1_704_067_200; // 2024-01-01T00:00:00Z
    let span = 3 * 365 * 86_400;
    (0..INPUTS)
        .map(|_| {
            let t = Timestamp::from_second(from + rng.next(span) as i64).unwrap();
            (t, 1 + rng.next(max_amount))
        })
        .collect()
}

fn bench_calendar(c: &mut Criterion, label: &str, cal: &Calendar) {
    cal.prepare();
    let mut g = c.benchmark_group(label);
    g.throughput(Throughput::Elements(1));

    // Up to 250 working days: about a year.
    let wd = inputs(250);
    let mut i = 0;
    g.bench_function("working_days", |b| {
        b.iter(|| {
            let (t, n) = wd[i % INPUTS];
            i += 1;
            black_box(cal.add_working_days(black_box(t), n as u32).unwrap())
        })
    });

    // Up to 2,000 business hours: a year of 8-hour days.
    let bh = inputs(2000);
    let mut i = 0;
    g.bench_function("business_hours", |b| {
        b.iter(|| {
            let (t, n) = bh[i % INPUTS];
            i += 1;
            let amount = SignedDuration::from_hours(n as i64);
            black_box(cal.add_business_time(black_box(t), amount).unwrap())
        })
    });

    let spans: Vec<(Timestamp, Timestamp)> = bh
        .iter()
        .map(|&(t, n)| (t, t + SignedDuration::from_hours(n as i64 * 4)))
        .collect();
    let mut i = 0;
    g.bench_function("elapsed", |b| {
        b.iter(|| {
            let (a, z) = spans[i % INPUTS];
            i += 1;
            black_box(cal.business_time_between(black_box(a), z, &[]).unwrap())
        })
    });
    g.finish();
}

fn deadlines(c: &mut Criterion) {
    let set = CalendarSet::builtin().unwrap();
    let before = set.approx_heap_bytes();
    set.prepare();
    let after = set.approx_heap_bytes();
    println!(
        "calendar set {:?}: {} bytes before tables, {} bytes ({:.1} KiB) with tables built",
        set.names().collect::<Vec<_>>(),
        before,
        after,
        after as f64 / 1024.0
    );
    for name in set.names() {
        let cal = set.get(name).unwrap();
        println!("  {name}: {} bytes", cal.approx_heap_bytes());
    }

    bench_calendar(c, "cn-mainland", set.get("cn-mainland").unwrap());
    let ny = set
        .get("mon-fri")
        .unwrap()
        .with_zone("America/New_York")
        .unwrap();
    bench_calendar(c, "mon-fri@America/New_York", &ny);
}

criterion_group!(benches, deadlines);
criterion_main!(benches);
