//! `KpiQuery`: the key figures of one playbook over a period and slice, computed from the
//! facts. The period is the playbook calendar's days (see [`crate::domain::period`]); a
//! complaint counts in it when it was received in it; durations are in calendar and in
//! business time; what is still open is aged at the end of the period (or now, if sooner).
//!
//! PostgreSQL aggregates: one set-based statement per table over the complaints of the
//! period and slice, run side by side, each returning a handful of rows. The durations were
//! measured when the facts were written ([`super::facts`]), so a report ranks stored numbers
//! and walks the calendar only for the two backlog percentiles; a year over a million
//! complaints takes well under a second (docs/benchmarks.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_calendar::Calendar;
use redress_platform::commands::Refusal;
use redress_proto::time::ts;
use redress_proto::v1::kpi_reply::Outcome;
use redress_proto::v1::{
    CountBy, DurationStats, Forecast, KpiQuery, KpiReply, Kpis, OnTimeRate, SatisfactionStats,
};
use sqlx::postgres::{PgArguments, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::{Executor, PgPool, Row};

use crate::domain::duration::{from_jiff, measure};
use crate::domain::forecast::{self, MAX_HISTORY, Past};
use crate::domain::period::{self, Period};
use crate::domain::stats::rate;
use crate::{Analytics, Rules};

/// Prefixes `c`, the complaints a query covers: of playbook $1, received from $2 until $3,
/// of category $4, channel $5, severity $6 and handled by department $7 in some round (each
/// when not empty). Every statement over them binds the same seven, then its own.
macro_rules! over_complaints {
    ($rest:literal) => {
        concat!(
            "WITH c AS (
                 SELECT * FROM complaints c
                 WHERE c.playbook = $1 AND c.received_at >= $2 AND c.received_at < $3
                   AND ($4 = '' OR c.category = $4) AND ($5 = '' OR c.channel = $5)
                   AND ($6 = '' OR c.severity = $6)
                   AND ($7 = '' OR EXISTS (SELECT 1 FROM rounds d
                                          WHERE d.complaint_id = c.complaint_id
                                            AND d.department = $7)))
             ",
            $rest
        )
    };
}

/// Counts and percentiles of the complaints. $8: the end at which what is open is aged.
/// The backlog's percentiles are the reception times of the nearest-rank rows, newest
/// first: for one end, an earlier reception is never less business time, so the row at a
/// rank by calendar age is the row at that rank by business age too, and only those two
/// rows need the calendar.
const TOTALS: &str = over_complaints!(
    "SELECT count(*) AS received,
            count(*) FILTER (WHERE c.closed_at < $8) AS closed,
            count(*) FILTER (WHERE c.withdrawn_at < $8) AS withdrawn,
            count(*) FILTER (WHERE c.merged_at < $8) AS merged,
            count(*) FILTER (WHERE c.reopened_to > 1) AS reopened,
            count(*) FILTER (WHERE c.repeat) AS repeats,
            count(*) FILTER (WHERE c.closed_at < $8 AND c.no_response) AS no_response,
            count(*) FILTER (WHERE open) AS open,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.received_at DESC)
                FILTER (WHERE open) AS backlog,
            count(r.first_response_secs) AS first_response,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r.first_response_secs)
                AS first_response_secs,
            percentile_disc(ARRAY[0.5, 0.9])
                WITHIN GROUP (ORDER BY r.first_response_business_secs)
                AS first_response_business_secs,
            count(c.resolution_secs) AS resolution,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.resolution_secs)
                AS resolution_secs,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.resolution_business_secs)
                AS resolution_business_secs
     FROM c
     LEFT JOIN rounds r ON r.complaint_id = c.complaint_id AND r.round = 1
     CROSS JOIN LATERAL (SELECT NOT (coalesce(c.closed_at < $8, false)
                                     OR coalesce(c.withdrawn_at < $8, false)
                                     OR coalesce(c.merged_at < $8, false)) AS open) o"
);

/// Complaints by category, channel, nature, first round's department and day in zone $8.
const COUNTS: &str = over_complaints!(
    "SELECT CASE WHEN GROUPING(c.category) = 0 THEN 'category'
                 WHEN GROUPING(c.channel) = 0 THEN 'channel'
                 WHEN GROUPING(c.nature) = 0 THEN 'nature'
                 WHEN GROUPING(r.department) = 0 THEN 'department'
                 ELSE 'day' END AS dimension,
            CASE WHEN GROUPING(c.category) = 0 THEN c.category
                 WHEN GROUPING(c.channel) = 0 THEN c.channel
                 WHEN GROUPING(c.nature) = 0 THEN c.nature
                 WHEN GROUPING(r.department) = 0 THEN coalesce(r.department, '')
                 ELSE to_char(c.received_at AT TIME ZONE $8, 'YYYY-MM-DD') END AS key,
            count(*) AS count
     FROM c
     LEFT JOIN rounds r ON r.complaint_id = c.complaint_id AND r.round = 1
     GROUP BY GROUPING SETS ((c.category), (c.channel), (c.nature), (r.department),
                             (to_char(c.received_at AT TIME ZONE $8, 'YYYY-MM-DD')))"
);

/// Deadlines met and breached, by deadline.
const ON_TIME: &str = over_complaints!(
    "SELECT d.name, count(*) FILTER (WHERE d.state = 'met') AS met,
            count(*) FILTER (WHERE d.state = 'breached') AS breached
     FROM deadlines d JOIN c USING (complaint_id)
     WHERE d.state IN ('met', 'breached')
     GROUP BY d.name"
);

const ESCALATIONS: &str =
    over_complaints!("SELECT count(*) FROM escalations e JOIN c USING (complaint_id)");

const APPROVALS: &str = over_complaints!(
    "SELECT count(a.turnaround_secs) AS count,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY a.turnaround_secs) AS secs,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY a.turnaround_business_secs)
                AS business_secs
     FROM approvals a JOIN c USING (complaint_id)"
);

/// Compensations and survey answers of every round. A round's scores count only when it was
/// answered (an overall score).
const ROUNDS: &str = over_complaints!(
    "SELECT count(*) FILTER (WHERE r.compensation_minor > 0) AS compensations,
            coalesce(sum(r.compensation_minor) FILTER (WHERE r.compensation_minor > 0), 0)::bigint
                AS compensation_minor,
            count(r.overall) AS answered,
            count(*) FILTER (WHERE r.overall IS NOT NULL AND r.satisfied) AS satisfied,
            array[count(*) FILTER (WHERE r.overall = 1), count(*) FILTER (WHERE r.overall = 2),
                  count(*) FILTER (WHERE r.overall = 3), count(*) FILTER (WHERE r.overall = 4),
                  count(*) FILTER (WHERE r.overall = 5)] AS distribution,
            avg(r.overall::float8) AS overall,
            avg(r.speed::float8) FILTER (WHERE r.overall IS NOT NULL) AS speed,
            avg(r.effectiveness::float8) FILTER (WHERE r.overall IS NOT NULL) AS effectiveness,
            avg(r.attitude::float8) FILTER (WHERE r.overall IS NOT NULL) AS attitude,
            avg(r.transparency::float8) FILTER (WHERE r.overall IS NOT NULL) AS transparency
     FROM rounds r JOIN c USING (complaint_id)"
);

/// Complaints by period ($8 starts, $9 ends, numbered from 1) and category.
const BY_PERIOD: &str = over_complaints!(
    "SELECT p.i, c.category, count(*) AS count
     FROM unnest($8::timestamptz[], $9::timestamptz[]) WITH ORDINALITY AS p(since, until, i)
     JOIN c ON c.received_at >= p.since AND c.received_at < p.until
     GROUP BY p.i, c.category"
);

/// The first complaint the playbook's facts hold: periods before it have no history.
const FIRST_RECEIVED: &str = "SELECT min(received_at) FROM complaints WHERE playbook = $1";

/// A report's statements read much of a table once: plans for the values given (an empty
/// slice drops its condition, a year scans where a day looks up), with room to sort a
/// year's durations in memory. The service's sessions otherwise keep generic plans on
/// indexes, right for its one-row statements.
const REPORTING: &str = "SET LOCAL plan_cache_mode = force_custom_plan;
                         SET LOCAL enable_seqscan = on;
                         SET LOCAL work_mem = '64MB'";

/// The complaints a query covers, bound first to every statement over them.
#[derive(Clone, Copy)]
struct Scope<'q> {
    playbook: &'q str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    category: &'q str,
    channel: &'q str,
    severity: &'q str,
    department: &'q str,
}

impl<'q> Scope<'q> {
    fn query(self, sql: &'q str) -> Query<'q, Postgres, PgArguments> {
        sqlx::query(sql)
            .bind(self.playbook)
            .bind(self.from)
            .bind(self.until)
            .bind(self.category)
            .bind(self.channel)
            .bind(self.severity)
            .bind(self.department)
    }
}

/// Runs a report's statement in its own transaction, so that the report's statements run
/// side by side on the pool's connections.
async fn fetch(db: &PgPool, q: Query<'_, Postgres, PgArguments>) -> Result<Vec<PgRow>, Refusal> {
    let mut tx = db.begin().await?;
    tx.execute(REPORTING).await?;
    let rows = q.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

async fn fetch_one(db: &PgPool, q: Query<'_, Postgres, PgArguments>) -> Result<PgRow, Refusal> {
    fetch(db, q)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Refusal::internal("an aggregate returned no row"))
}

fn count(row: &PgRow, col: &str) -> u64 {
    row.get::<i64, _>(col).max(0) as u64
}

/// Calendar and business percentiles, as `percentile_disc(ARRAY[0.5, 0.9])` gave them.
fn duration_stats(row: &PgRow, count_col: &str, secs: &str, business: &str) -> DurationStats {
    let pair = |col: &str| {
        let v: Option<Vec<f64>> = row.get(col);
        let v = v.unwrap_or_default();
        (
            v.first().copied().unwrap_or(0.0),
            v.get(1).copied().unwrap_or(0.0),
        )
    };
    let (p50_secs, p90_secs) = pair(secs);
    let (p50_business_secs, p90_business_secs) = pair(business);
    DurationStats {
        count: count(row, count_col),
        p50_secs,
        p90_secs,
        p50_business_secs,
        p90_business_secs,
    }
}

/// The backlog's ages at `end`, from the receptions of its percentile rows.
fn backlog_age(
    calendar: &Calendar,
    open: u64,
    received: &[DateTime<Utc>],
    end: DateTime<Utc>,
) -> DurationStats {
    let age = |i: usize| {
        received
            .get(i)
            .map(|&r| measure(Some(calendar), r, end.max(r)))
            .map(|m| (m.secs, m.business_secs.unwrap_or(0.0)))
            .unwrap_or_default()
    };
    let ((p50_secs, p50_business_secs), (p90_secs, p90_business_secs)) = (age(0), age(1));
    DurationStats {
        count: open,
        p50_secs,
        p90_secs,
        p50_business_secs,
        p90_business_secs,
    }
}

fn counts(map: BTreeMap<String, u64>) -> Vec<CountBy> {
    map.into_iter()
        .map(|(key, count)| CountBy { key, count })
        .collect()
}

pub async fn handle(analytics: Arc<Analytics>, q: KpiQuery) -> Result<KpiReply, Refusal> {
    Ok(KpiReply {
        outcome: Some(Outcome::Kpis(compute(&analytics, &q).await?)),
    })
}

/// The figures of `q`, as they stand at the clock's now.
pub async fn compute(analytics: &Analytics, q: &KpiQuery) -> Result<Kpis, Refusal> {
    figures(
        &analytics.store.pool,
        &analytics.rules,
        q,
        analytics.ctx.clock.now(),
    )
    .await
}

/// The figures of `q` from the facts in `db`, as they stand at `now`.
pub async fn figures(
    db: &PgPool,
    rules: &Rules,
    q: &KpiQuery,
    now: DateTime<Utc>,
) -> Result<Kpis, Refusal> {
    let key = q.playbook.trim();
    let playbook = rules
        .playbooks
        .get(key)
        .map_err(|_| Refusal::not_found("playbook", format!("no playbook {key:?}")))?;
    let period = period::parse(&q.period, playbook.report.monthly_on_day)
        .map_err(|e| Refusal::malformed("period", e))?;
    let severity = q.severity.trim();
    if !["", "general", "major"].contains(&severity) {
        return Err(Refusal::malformed(
            "severity",
            format!("{severity:?}: general or major"),
        ));
    }
    let calendar = rules
        .calendars
        .get(&playbook.sla.calendar)
        .map_err(|e| Refusal::internal(e.to_string()))?;
    let (from, until) = bounds(calendar, &period)?;
    let end = now.min(until);
    let scope = Scope {
        playbook: key,
        from,
        until,
        category: q.category.trim(),
        channel: q.channel.trim(),
        severity,
        department: q.department.trim(),
    };
    let zone = calendar.zone_name();

    let (totals, by, on_time, escalations, approvals, rounds, forecast) = tokio::try_join!(
        fetch_one(db, scope.query(TOTALS).bind(end)),
        fetch(db, scope.query(COUNTS).bind(zone)),
        fetch(db, scope.query(ON_TIME)),
        fetch_one(db, scope.query(ESCALATIONS)),
        fetch_one(db, scope.query(APPROVALS)),
        fetch_one(db, scope.query(ROUNDS)),
        forecasts(db, calendar, scope, &period, now),
    )?;

    let mut k = Kpis {
        playbook: key.to_string(),
        period: period.label.clone(),
        from: ts(from),
        until: ts(until),
        zone: zone.to_string(),
        currency: playbook.currency.clone(),
        received: count(&totals, "received"),
        open: count(&totals, "open"),
        closed: count(&totals, "closed"),
        withdrawn: count(&totals, "withdrawn"),
        merged: count(&totals, "merged"),
        first_response: Some(duration_stats(
            &totals,
            "first_response",
            "first_response_secs",
            "first_response_business_secs",
        )),
        resolution: Some(duration_stats(
            &totals,
            "resolution",
            "resolution_secs",
            "resolution_business_secs",
        )),
        approval_turnaround: Some(duration_stats(&approvals, "count", "secs", "business_secs")),
        escalations: count(&escalations, "count"),
        compensations: count(&rounds, "compensations"),
        compensation_minor: rounds.get("compensation_minor"),
        forecast,
        ..Default::default()
    };
    let backlog: Option<Vec<DateTime<Utc>>> = totals.get("backlog");
    k.backlog_age = Some(backlog_age(
        calendar,
        k.open,
        &backlog.unwrap_or_default(),
        end,
    ));
    k.reopen_rate = rate(count(&totals, "reopened"), k.received);
    k.repeat_rate = rate(count(&totals, "repeats"), k.received);

    let mut dimensions: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &by {
        dimensions
            .entry(r.get("dimension"))
            .or_default()
            .insert(r.get("key"), count(r, "count"));
    }
    let mut dimension = |name: &str| counts(dimensions.remove(name).unwrap_or_default());
    k.by_category = dimension("category");
    k.by_channel = dimension("channel");
    k.by_nature = dimension("nature");
    k.by_department = dimension("department");
    k.by_day = dimension("day");

    let mut deadlines: Vec<OnTimeRate> = on_time
        .iter()
        .map(|r| {
            let (met, breached) = (count(r, "met"), count(r, "breached"));
            OnTimeRate {
                deadline: r.get("name"),
                met,
                breached,
                rate: rate(met, met + breached),
            }
        })
        .collect();
    deadlines.sort_by(|a, b| a.deadline.cmp(&b.deadline));
    k.breaches = deadlines.iter().map(|d| d.breached).sum();
    k.on_time = deadlines;

    let answered = count(&rounds, "answered");
    let mean = |col: &str| rounds.get::<Option<f64>, _>(col).unwrap_or(0.0);
    let distribution: Vec<i64> = rounds.get("distribution");
    k.satisfaction = Some(SatisfactionStats {
        answered,
        overall: mean("overall"),
        speed: mean("speed"),
        effectiveness: mean("effectiveness"),
        attitude: mean("attitude"),
        transparency: mean("transparency"),
        share_satisfied: rate(count(&rounds, "satisfied"), answered),
        no_response: count(&totals, "no_response"),
        no_response_rate: rate(count(&totals, "no_response"), k.closed),
        distribution: distribution.into_iter().map(|n| n.max(0) as u64).collect(),
    });
    Ok(k)
}

/// The instants a period of the calendar's days starts and ends.
fn bounds(calendar: &Calendar, period: &Period) -> Result<(DateTime<Utc>, DateTime<Utc>), Refusal> {
    let start_of = |d: jiff::civil::Date| {
        d.to_zoned(calendar.zone().clone())
            .map(|z| from_jiff(z.timestamp()))
            .map_err(|e| Refusal::malformed("period", e.to_string()))
    };
    Ok((start_of(period.from)?, start_of(period.until)?))
}

/// The forecasts of `period` and of the one after it (see [`crate::domain::forecast`]),
/// for all complaints of the slice ("") and each category its history holds. A period's
/// history is the periods of the same kind before it that have ended by `now` and began on
/// or after the day of the playbook's first complaint (an earlier one would count the days
/// before the facts began as days without complaints).
async fn forecasts(
    db: &PgPool,
    calendar: &Calendar,
    scope: Scope<'_>,
    period: &Period,
    now: DateTime<Utc>,
) -> Result<Vec<Forecast>, Refusal> {
    let history = i32::try_from(MAX_HISTORY).unwrap_or(i32::MAX);
    // Oldest first, each with its place from the period: its history, it (0), the next (1).
    let mut periods: Vec<(i32, Period, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for n in -history..=1 {
        // A month without the report day (a 30th in February) has no neighbours to count.
        let Ok(p) = period.shifted(n) else { continue };
        let (since, until) = bounds(calendar, &p)?;
        periods.push((n, p, since, until));
    }
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(Vec::new());
    };
    let scope = Scope {
        from: first.2,
        until: last.3,
        ..scope
    };
    let starts: Vec<DateTime<Utc>> = periods.iter().map(|p| p.2).collect();
    let ends: Vec<DateTime<Utc>> = periods.iter().map(|p| p.3).collect();
    let (rows, first_received) = tokio::try_join!(
        fetch(db, scope.query(BY_PERIOD).bind(&starts).bind(&ends)),
        fetch_one(db, sqlx::query(FIRST_RECEIVED).bind(scope.playbook)),
    )?;
    let Some(first_received) = first_received.get::<Option<DateTime<Utc>>, _>(0) else {
        return Ok(Vec::new());
    };
    let first_day = crate::domain::duration::to_jiff(first_received)
        .to_zoned(calendar.zone().clone())
        .date();
    // Complaints per period (by index) and category.
    let mut received: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); periods.len()];
    for r in &rows {
        let i = usize::try_from(r.get::<i64, _>("i") - 1).unwrap_or(usize::MAX);
        if let Some(slot) = received.get_mut(i) {
            slot.insert(r.get("category"), count(r, "count"));
        }
    }
    let total = |i: usize, category: &str| -> u64 {
        if category.is_empty() {
            received[i].values().sum()
        } else {
            received[i].get(category).copied().unwrap_or(0)
        }
    };

    let mut out = Vec::new();
    for (target, (n, p, ..)) in periods.iter().enumerate() {
        if *n < 0 {
            continue;
        }
        let known: Vec<usize> = (0..target)
            .filter(|&i| periods[i].3 <= now && periods[i].1.from >= first_day)
            .collect();
        if known.is_empty() {
            continue;
        }
        let categories: BTreeSet<&str> = known
            .iter()
            .flat_map(|&i| received[i].iter())
            .filter(|(c, n)| !c.is_empty() && **n > 0)
            .map(|(c, _)| c.as_str())
            .collect();
        for category in std::iter::once("").chain(categories) {
            let history: Vec<Past> = known
                .iter()
                .map(|&i| Past {
                    count: total(i, category),
                    days: f64::from(periods[i].1.days()),
                })
                .collect();
            if let Some(e) = forecast::forecast(&history, f64::from(p.days())) {
                out.push(Forecast {
                    period: p.label.clone(),
                    category: category.to_string(),
                    expected: e.expected,
                    low: e.low,
                    high: e.high,
                    actual: total(target, category),
                    history: e.history,
                });
            }
        }
    }
    Ok(out)
}
