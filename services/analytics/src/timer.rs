//! What analytics does on its own, by the clock: each playbook's scheduled reports (made,
//! stored and announced on `report.published`) and, when a day is over, the spike check of
//! every category (`analytics.spike`, once per episode).
//!
//! Nothing is made for instants before the schema's origin (a new installation does not
//! report on months it never saw). `handled_until` is how far the clock has been looked at,
//! so a service that was down makes what fell due meanwhile when it comes back. Reports and
//! checked days are unique rows written in the same transaction as their event: two
//! instances, or a tick repeated after a crash, make each once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redress_platform::commands::Refusal;
use redress_proto::time::ts;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{Envelope, KpiQuery, ReportPublished, SpikeDetected};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::duration::{from_jiff, to_jiff};
use crate::domain::schedule::{self, Due};
use crate::domain::spike::{self, Threshold};
use crate::{Analytics, IDENT};

/// The `[analytics]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyticsSettings {
    /// How often the clock is looked at for reports and spike checks.
    pub tick_ms: u64,
    /// Most events folded in one unit of work (the kit's `consumer.batch_size` for the
    /// other services).
    pub batch_size: usize,
    /// Batches folded at once. One by default: the events of one complaint meet on the same
    /// rows, so concurrent batches mostly wait on each other's row locks, and no complaint
    /// waits on this service, so it folds a burst in a few large units instead, leaving the
    /// CPU to the services on the complaint's path.
    pub batches_in_flight: usize,
    /// How long a batch waits for more events after its first (the kit's
    /// `consumer.linger_ms`). Reports are read in minutes, so a quarter second more costs
    /// them nothing, while folding more events per unit of work costs less CPU per event
    /// and leaves the cores to the services on the complaint's path more of the time.
    pub linger_ms: u64,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            tick_ms: 1000,
            batch_size: 1024,
            batches_in_flight: 1,
            linger_ms: 250,
        }
    }
}

/// Ticks every `analytics.tick_ms` until shutdown.
pub async fn run(analytics: Arc<Analytics>) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(Duration::from_millis(analytics.settings.tick_ms.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = analytics.ctx.shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        if let Err(err) = tick(&analytics).await {
            // The next tick tries again: nothing was half made (each piece is one unit).
            tracing::warn!(error = %err, "analytics timer");
        }
    }
}

/// Since when, and up to when, the clock has been looked at (the origin is written at
/// start-up, by `rebuild_if_new`).
async fn origin(db: &sqlx::PgPool) -> sqlx::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let row = sqlx::query("SELECT started_at, handled_until FROM origin")
        .fetch_one(db)
        .await?;
    Ok((row.get("started_at"), row.get("handled_until")))
}

/// Makes what fell due between the last look and the clock's now.
pub async fn tick(analytics: &Analytics) -> anyhow::Result<()> {
    let now = analytics.ctx.clock.now();
    let db = &analytics.store.pool;
    let (started, handled) = origin(db).await?;
    let since = handled.max(started);
    if now <= since {
        return Ok(());
    }
    for playbook in analytics.rules.playbooks.iter() {
        let calendar = analytics.rules.calendars.get(&playbook.sla.calendar)?;
        let zone = calendar.zone();
        for due in schedule::due_between(&playbook.report, zone, to_jiff(since), to_jiff(now)) {
            make_report(analytics, &playbook.key, &due).await?;
        }
        check_spikes(analytics, playbook, zone, since, now).await?;
    }
    sqlx::query("UPDATE origin SET handled_until = greatest(handled_until, $1)")
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

fn refused(r: Refusal) -> anyhow::Error {
    anyhow::anyhow!("{r:?}")
}

/// An event about many complaints: no complaint or ticket of its own.
fn analytics_event(id: Uuid, playbook: &str, at: DateTime<Utc>, payload: Payload) -> Envelope {
    Envelope {
        event_id: id.to_string(),
        complaint_id: String::new(),
        occurred_at: ts(at),
        producer: IDENT.name.to_string(),
        causation_id: String::new(),
        correlation_id: id.to_string(),
        playbook: playbook.to_string(),
        ticket: String::new(),
        payload: Some(payload),
    }
}

#[tracing::instrument(skip_all, fields(playbook = %playbook, period = %due.period, kind = due.kind.as_str()), err)]
async fn make_report(analytics: &Analytics, playbook: &str, due: &Due) -> anyhow::Result<()> {
    let db = &analytics.store.pool;
    let made: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM reports WHERE playbook = $1 AND kind = $2 AND period = $3)",
    )
    .bind(playbook)
    .bind(due.kind.as_str())
    .bind(&due.period)
    .fetch_one(db)
    .await?;
    if made {
        return Ok(());
    }
    let query = KpiQuery {
        playbook: playbook.to_string(),
        period: due.period.clone(),
        ..Default::default()
    };
    let kpis = crate::handlers::kpis::compute(analytics, &query)
        .await
        .map_err(refused)?;
    let now = analytics.ctx.clock.now();
    let id = Uuid::now_v7();
    let mut unit = analytics.store.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO reports (report_id, playbook, kind, period, due_at, made_at, kpis)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (playbook, kind, period) DO NOTHING",
    )
    .bind(id)
    .bind(playbook)
    .bind(due.kind.as_str())
    .bind(&due.period)
    .bind(from_jiff(due.at))
    .bind(now)
    .bind(prost::Message::encode_to_vec(&kpis))
    .execute(unit.db())
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let subjects = &analytics.ctx.subjects;
        unit.emit(analytics_event(
            id,
            playbook,
            now,
            Payload::ReportPublished(ReportPublished {
                report_id: id.to_string(),
                playbook: playbook.to_string(),
                period: due.period.clone(),
                kind: due.kind.as_str().to_string(),
                from: kpis.from,
                until: kpis.until,
                fetch_subject: subjects.command(
                    redress_proto::subjects::analytics::SERVICE,
                    redress_proto::subjects::analytics::REPORT,
                ),
                read_with: format!(
                    "redress report --playbook {playbook} --period {} --stored",
                    due.period
                ),
                received: kpis.received,
                open: kpis.open,
                breaches: kpis.breaches,
            }),
        ));
        unit.count("analytics_reports_made", 1);
        tracing::info!(received = kpis.received, "report made");
    }
    unit.commit().await?;
    Ok(())
}

/// The days of a `spike_window` ("1 day", "7 days", "2 weeks").
pub fn window_days(window: &str) -> usize {
    let mut words = window.split_whitespace();
    let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    match words.next() {
        Some(unit) if unit.starts_with("week") => n * 7,
        _ => n,
    }
    .max(1)
}

/// The longest gap made up for: a spike warning about last month is no early warning.
const CATCH_UP_DAYS: i32 = 7;

async fn check_spikes(
    analytics: &Analytics,
    playbook: &redress_playbook::Playbook,
    zone: &jiff::tz::TimeZone,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let today = to_jiff(now).to_zoned(zone.clone()).date();
    let mut day = to_jiff(since)
        .to_zoned(zone.clone())
        .date()
        .max(today.saturating_sub(jiff::Span::new().days(CATCH_UP_DAYS)));
    // A day is checked once it is over.
    while day < today {
        check_day(analytics, playbook, zone, day, now).await?;
        day = day.tomorrow()?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(playbook = %playbook.key, day = %day), err)]
async fn check_day(
    analytics: &Analytics,
    playbook: &redress_playbook::Playbook,
    zone: &jiff::tz::TimeZone,
    day: jiff::civil::Date,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let report = &playbook.report;
    let window = window_days(&report.spike_window);
    let days = spike::history_days(window);
    let first = day.saturating_sub(jiff::Span::new().days(i64::try_from(days).unwrap_or(0) - 1));
    let start_of = |d: jiff::civil::Date| -> anyhow::Result<DateTime<Utc>> {
        Ok(from_jiff(d.to_zoned(zone.clone())?.timestamp()))
    };
    let (from, until) = (start_of(first)?, start_of(day.tomorrow()?)?);
    let mut unit = analytics.store.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO spike_checks (playbook, day, checked_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(&playbook.key)
    .bind(day.to_string())
    .bind(now)
    .execute(unit.db())
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT category, received_at FROM complaints
         WHERE playbook = $1 AND category <> '' AND received_at >= $2 AND received_at < $3",
    )
    .bind(&playbook.key)
    .bind(from)
    .bind(until)
    .fetch_all(unit.db())
    .await?;
    let mut daily: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for r in rows {
        let at: DateTime<Utc> = r.get("received_at");
        let local = to_jiff(at).to_zoned(zone.clone()).date();
        let Ok(i) = usize::try_from((local - first).get_days()) else {
            continue;
        };
        let series = daily
            .entry(r.get("category"))
            .or_insert_with(|| vec![0; days]);
        if let Some(n) = series.get_mut(i) {
            *n += 1;
        }
    }
    let t = Threshold {
        factor: report.spike_factor,
        min: report.spike_min,
    };
    let last = days - 1;
    for (category, counts) in daily {
        let series = spike::rolling(&counts, window);
        let Some(now_reading) = spike::reading(&series, last, t) else {
            continue;
        };
        let before = spike::reading(&series, last - 1, t).is_some_and(|r| r.spike);
        if !now_reading.spike || before {
            continue;
        }
        let base = now_reading.expected.max(1.0);
        let id = Uuid::now_v7();
        let window_start = start_of(
            day.saturating_sub(jiff::Span::new().days(i64::try_from(window).unwrap_or(1) - 1)),
        )?;
        let spike = SpikeDetected {
            spike_id: id.to_string(),
            playbook: playbook.key.clone(),
            category: category.clone(),
            window_start: ts(window_start),
            window_end: ts(until),
            day: day.to_string(),
            observed: u64::from(now_reading.observed),
            expected: now_reading.expected,
            ratio: f64::from(now_reading.observed) / base,
            tail_probability: spike::poisson_tail(base, now_reading.observed),
            factor: report.spike_factor,
            min: report.spike_min,
            notify: report.spike_to.clone(),
        };
        sqlx::query(
            "INSERT INTO spikes (spike_id, playbook, category, day, window_end, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&playbook.key)
        .bind(&category)
        .bind(day.to_string())
        .bind(until)
        .bind(prost::Message::encode_to_vec(&spike))
        .execute(unit.db())
        .await?;
        tracing::warn!(
            category = %category,
            observed = spike.observed,
            expected = spike.expected,
            "complaints of a category spiked"
        );
        unit.emit(analytics_event(
            id,
            &playbook.key,
            now,
            Payload::AnalyticsSpike(spike),
        ));
        unit.count("analytics_spikes", 1);
    }
    unit.commit().await?;
    Ok(())
}

/// The next instant the timer acts at after `after`: a scheduled report, or a midnight that
/// completes a day with complaints to check. For a clock moved from timer to timer.
pub async fn next_due(
    db: &sqlx::PgPool,
    playbooks: &redress_playbook::Playbooks,
    calendars: &redress_calendar::CalendarSet,
    after: DateTime<Utc>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let mut next: Option<jiff::Timestamp> = None;
    for playbook in playbooks.iter() {
        let zone = calendars.get(&playbook.sla.calendar)?.zone().clone();
        let report = schedule::next_after(&playbook.report, &zone, to_jiff(after));
        // Only a day in which complaints came can spike.
        let received_today: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM {}.complaints WHERE playbook = $1 AND received_at >= $2)",
            IDENT.schema
        ))
        .bind(&playbook.key)
        .bind(from_jiff(
            to_jiff(after)
                .to_zoned(zone.clone())
                .start_of_day()?
                .timestamp(),
        ))
        .fetch_one(db)
        .await?;
        let midnight = received_today
            .then(|| schedule::next_midnight(&zone, to_jiff(after)))
            .flatten();
        for t in [report, midnight].into_iter().flatten() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    }
    Ok(next.map(from_jiff))
}

/// Whether the timer has looked at the clock up to `now` (a simulation waits for it).
pub async fn caught_up(db: &sqlx::PgPool, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let handled: Option<DateTime<Utc>> = sqlx::query_scalar(&format!(
        "SELECT handled_until FROM {}.origin",
        IDENT.schema
    ))
    .fetch_optional(db)
    .await?;
    Ok(handled.is_some_and(|h| h >= now))
}
