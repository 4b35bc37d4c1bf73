//! `KpiQuery`: the key figures of one playbook over a period and slice, computed from the
//! facts. The period is the playbook calendar's days (see [`crate::domain::period`]); a
//! complaint counts in it when it was received in it; durations are in calendar and in
//! business time; what is still open is aged at the end of the period (or now, if sooner).
//!
//! PostgreSQL aggregates, in a few set-based statements over the complaints of the period
//! and slice, run side by side on the pool, each returning at most a few thousand rows:
//! complaints by dimension and outcome, by day, their durations' percentiles; rounds by
//! settled deadlines and score; approvals; the periods around for the forecasts. What they
//! read was derived when the facts were written ([`super::facts`]): durations are stored
//! numbers, so the calendar is walked only for the two backlog percentiles; rounds and
//! approvals are read by their period key, not joined to the complaints (docs/benchmarks.md,
//! "Reports over a million facts").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jiff::civil::Date;
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

use crate::domain::duration::{from_jiff, measure, secs, to_jiff};
use crate::domain::forecast::{self, MAX_HISTORY, Past};
use crate::domain::period::{self, Period};
use crate::domain::stats::rate;
use crate::{Analytics, Rules};

/// The complaints a query covers, as `c`: of playbook $1, received from $2 until $3, of
/// category $4, channel $5, severity $6 and handled by department $7 in some round (each
/// when not empty). $8 says none of the four is given. Every statement binds these eight,
/// then its own.
macro_rules! scope {
    () => {
        "WITH c AS (
             SELECT * FROM complaints c
             WHERE c.playbook = $1 AND c.received_at >= $2 AND c.received_at < $3
               AND ($4 = '' OR c.category = $4) AND ($5 = '' OR c.channel = $5)
               AND ($6 = '' OR c.severity = $6)
               AND ($7 = '' OR EXISTS (SELECT 1 FROM rounds d
                                      WHERE d.complaint_id = c.complaint_id
                                        AND d.department = $7)))
         "
    };
}

/// The facts in table alias `$t` of the complaints in scope: by their period key alone
/// unless a slice is given (the plan is made for the values, so the join to `c` is not even
/// planned without one).
macro_rules! of_scope {
    ($t:literal) => {
        concat!(
            $t,
            ".playbook = $1 AND ",
            $t,
            ".received_at >= $2 AND ",
            $t,
            ".received_at < $3 ",
            "AND ($8 OR ",
            $t,
            ".complaint_id IN (SELECT c.complaint_id FROM c))"
        )
    };
}

/// Complaints by category, channel, nature and first round's department together (a few
/// hundred combinations, one hash table instead of a pass per dimension; the caller folds
/// them into each dimension and the totals), with what has become of them at $9 (the end
/// at which what is open is aged).
const COUNTS: &str = concat!(
    scope!(),
    "SELECT category, channel, nature, department, count(*) AS count,
            count(*) FILTER (WHERE closed_at < $9) AS closed,
            count(*) FILTER (WHERE withdrawn_at < $9) AS withdrawn,
            count(*) FILTER (WHERE merged_at < $9) AS merged,
            count(*) FILTER (WHERE NOT (coalesce(closed_at < $9, false)
                                        OR coalesce(withdrawn_at < $9, false)
                                        OR coalesce(merged_at < $9, false))) AS open,
            count(*) FILTER (WHERE reopened_to > 1) AS reopened,
            count(*) FILTER (WHERE repeat) AS repeats,
            count(*) FILTER (WHERE closed_at < $9 AND no_response) AS no_response
     FROM c
     GROUP BY category, channel, nature, department"
);

/// Complaints by day of reception in the playbook's zone.
const DAYS: &str = concat!(
    scope!(),
    "SELECT received_day, count(*) AS count FROM c GROUP BY received_day"
);

/// The percentiles of the durations, and of the backlog's ages at $9. The backlog's are the
/// reception times of the nearest-rank rows, newest first: for one end, an earlier
/// reception is never less business time, so the row at a rank by calendar age is the row
/// at that rank by business age too, and only those two rows need the calendar.
const DURATIONS: &str = concat!(
    scope!(),
    "SELECT percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.received_at DESC)
                FILTER (WHERE NOT (coalesce(c.closed_at < $9, false)
                                   OR coalesce(c.withdrawn_at < $9, false)
                                   OR coalesce(c.merged_at < $9, false))) AS backlog,
            count(c.first_response_ms) AS first_response,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.first_response_ms)
                AS first_response_ms,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.first_response_business_ms)
                AS first_response_business_ms,
            count(c.resolution_ms) AS resolution,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.resolution_ms)
                AS resolution_ms,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.resolution_business_ms)
                AS resolution_business_ms
     FROM c"
);

/// Every round, by its deadlines met or breached and its overall score (a few dozen
/// combinations): how many, their other scores, compensations and escalations. A round's
/// scores count only when it was answered (an overall score).
const ROUNDS: &str = concat!(
    scope!(),
    "SELECT r.settled, r.overall, count(*) AS rounds,
            count(*) FILTER (WHERE r.satisfied) AS satisfied,
            sum(r.speed) AS speed, count(r.speed) AS speeds,
            sum(r.effectiveness) AS effectiveness, count(r.effectiveness) AS effectivenesses,
            sum(r.attitude) AS attitude, count(r.attitude) AS attitudes,
            sum(r.transparency) AS transparency, count(r.transparency) AS transparencies,
            count(*) FILTER (WHERE r.compensation_minor > 0) AS compensations,
            coalesce(sum(r.compensation_minor) FILTER (WHERE r.compensation_minor > 0), 0)::bigint
                AS compensation_minor,
            sum(r.escalations)::bigint AS escalations
     FROM rounds r
     WHERE ",
    of_scope!("r"),
    " GROUP BY r.settled, r.overall"
);

/// Approval turnarounds.
const APPROVALS: &str = concat!(
    scope!(),
    "SELECT count(a.turnaround_ms) AS count,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY a.turnaround_ms) AS ms,
            percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY a.turnaround_business_ms)
                AS business_ms
     FROM approvals a
     WHERE ",
    of_scope!("a")
);

/// Complaints by period (the bucket of $9, the periods' bounds) and category.
const BY_PERIOD: &str = concat!(
    scope!(),
    "SELECT width_bucket(c.received_at, $9::timestamptz[]) AS bucket, c.category,
            count(*) AS count
     FROM c
     GROUP BY 1, 2"
);

/// The first complaint the playbook's facts hold: periods before it have no history.
const FIRST_RECEIVED: &str = "SELECT min(received_at) FROM complaints WHERE playbook = $1";

/// A report's statements read much of a table once: plans for the values given (an empty
/// slice drops its condition, a year scans where a day looks up), with room to sort a
/// year's durations in memory. The service's sessions otherwise keep generic plans on
/// indexes, right for its one-row statements. JIT stays off as in every service session (at
/// a million rows it cost more than it saved).
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
        let whole = [self.category, self.channel, self.severity, self.department]
            .iter()
            .all(|s| s.is_empty());
        sqlx::query(sql)
            .bind(self.playbook)
            .bind(self.from)
            .bind(self.until)
            .bind(self.category)
            .bind(self.channel)
            .bind(self.severity)
            .bind(self.department)
            .bind(whole)
    }
}

/// How many of a report's statements run at once. Each reads a large part of a table, and
/// on a two-core server more at once contend for memory and finish later together
/// (measured over a million complaints: a year's report in 0.8 s two at a time, the longest
/// first, against 0.95 s all at once).
const AT_ONCE: usize = 2;

/// Runs a report's statements, each in its own transaction on a connection of the pool,
/// [`AT_ONCE`] at a time in the order they ask (the semaphore is first come, first served:
/// ask for the longest first).
struct Reader<'a> {
    db: &'a PgPool,
    turns: tokio::sync::Semaphore,
}

impl<'a> Reader<'a> {
    fn new(db: &'a PgPool) -> Self {
        Reader {
            db,
            turns: tokio::sync::Semaphore::new(AT_ONCE),
        }
    }

    async fn fetch(&self, q: Query<'_, Postgres, PgArguments>) -> Result<Vec<PgRow>, Refusal> {
        let _turn = self
            .turns
            .acquire()
            .await
            .map_err(|e| Refusal::internal(e.to_string()))?;
        let mut tx = self.db.begin().await?;
        tx.execute(REPORTING).await?;
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn fetch_one(&self, q: Query<'_, Postgres, PgArguments>) -> Result<PgRow, Refusal> {
        self.fetch(q)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Refusal::internal("an aggregate returned no row"))
    }
}

fn count(row: &PgRow, col: &str) -> u64 {
    row.get::<i64, _>(col).max(0) as u64
}

/// Calendar and business percentiles, as `percentile_disc(ARRAY[0.5, 0.9])` gave them in
/// milliseconds.
fn duration_stats(row: &PgRow, count_col: &str, ms: &str, business_ms: &str) -> DurationStats {
    let pair = |col: &str| {
        let v: Vec<Option<i64>> = row.get::<Option<_>, _>(col).unwrap_or_default();
        let at = |i: usize| v.get(i).copied().flatten().map(secs).unwrap_or(0.0);
        (at(0), at(1))
    };
    let (p50_secs, p90_secs) = pair(ms);
    let (p50_business_secs, p90_business_secs) = pair(business_ms);
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
            .map(|m| (secs(m.ms), m.business_ms.map(secs).unwrap_or(0.0)))
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
    let playbook = rules.playbook(key)?;
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
    // The longest first (over a year: the durations' sorts, then the grouped counts).
    let reader = Reader::new(db);
    let (durations, by, rounds, neighbours, by_day, approvals) = tokio::try_join!(
        reader.fetch_one(scope.query(DURATIONS).bind(end)),
        reader.fetch(scope.query(COUNTS).bind(end)),
        reader.fetch(scope.query(ROUNDS)),
        neighbours(&reader, calendar, scope, &period),
        reader.fetch(scope.query(DAYS)),
        reader.fetch_one(scope.query(APPROVALS)),
    )?;

    let mut k = Kpis {
        playbook: key.to_string(),
        period: period.label.clone(),
        from: ts(from),
        until: ts(until),
        zone: calendar.zone_name().to_string(),
        currency: playbook.currency.clone(),
        first_response: Some(duration_stats(
            &durations,
            "first_response",
            "first_response_ms",
            "first_response_business_ms",
        )),
        resolution: Some(duration_stats(
            &durations,
            "resolution",
            "resolution_ms",
            "resolution_business_ms",
        )),
        approval_turnaround: Some(duration_stats(&approvals, "count", "ms", "business_ms")),
        ..Default::default()
    };

    let (mut by_category, mut by_channel, mut by_nature, mut by_department) = (
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    let (mut reopened, mut repeats, mut no_response) = (0, 0, 0);
    for r in &by {
        let n = count(r, "count");
        k.received += n;
        k.closed += count(r, "closed");
        k.withdrawn += count(r, "withdrawn");
        k.merged += count(r, "merged");
        k.open += count(r, "open");
        reopened += count(r, "reopened");
        repeats += count(r, "repeats");
        no_response += count(r, "no_response");
        for (map, col) in [
            (&mut by_category, "category"),
            (&mut by_channel, "channel"),
            (&mut by_nature, "nature"),
            (&mut by_department, "department"),
        ] {
            *map.entry(r.get::<String, _>(col)).or_insert(0) += n;
        }
    }
    k.reopen_rate = rate(reopened, k.received);
    k.repeat_rate = rate(repeats, k.received);
    k.forecast = forecasts(&neighbours, &by_category, now);
    k.by_category = counts(by_category);
    k.by_channel = counts(by_channel);
    k.by_nature = counts(by_nature);
    k.by_department = counts(by_department);
    let mut per_day = BTreeMap::new();
    for r in &by_day {
        if let Some(day) = r.get::<Option<chrono::NaiveDate>, _>("received_day") {
            per_day.insert(day.to_string(), count(r, "count"));
        }
    }
    k.by_day = counts(per_day);

    let backlog: Option<Vec<DateTime<Utc>>> = durations.get("backlog");
    k.backlog_age = Some(backlog_age(
        calendar,
        k.open,
        &backlog.unwrap_or_default(),
        end,
    ));

    let rounds = Rounds::fold(&rounds);
    k.on_time = rounds
        .on_time
        .into_iter()
        .map(|(deadline, (met, breached))| OnTimeRate {
            deadline,
            met,
            breached,
            rate: rate(met, met + breached),
        })
        .collect();
    k.breaches = k.on_time.iter().map(|d| d.breached).sum();
    k.escalations = rounds.escalations;
    k.compensations = rounds.compensations;
    k.compensation_minor = rounds.compensation_minor;
    let answered = rounds.distribution.iter().sum();
    let mean = |(sum, n): (i64, u64)| if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    k.satisfaction = Some(SatisfactionStats {
        answered,
        overall: mean(rounds.scores[0]),
        speed: mean(rounds.scores[1]),
        effectiveness: mean(rounds.scores[2]),
        attitude: mean(rounds.scores[3]),
        transparency: mean(rounds.scores[4]),
        share_satisfied: rate(rounds.satisfied, answered),
        no_response,
        no_response_rate: rate(no_response, k.closed),
        distribution: rounds.distribution.to_vec(),
    });
    Ok(k)
}

/// What the rounds of a report come to, folded from their combinations.
#[derive(Default)]
struct Rounds {
    /// Met and breached, by deadline.
    on_time: BTreeMap<String, (u64, u64)>,
    escalations: u64,
    compensations: u64,
    compensation_minor: i64,
    /// Answered rounds by overall score, 1 to 5.
    distribution: [u64; 5],
    satisfied: u64,
    /// Sum and count of each score (overall, speed, effectiveness, attitude, transparency)
    /// over the answered rounds.
    scores: [(i64, u64); 5],
}

impl Rounds {
    fn fold(rows: &[PgRow]) -> Self {
        let mut f = Rounds::default();
        for r in rows {
            let n = count(r, "rounds");
            // One "state:name" line per deadline met or breached.
            for line in r.get::<&str, _>("settled").lines() {
                let Some((state, name)) = line.split_once(':') else {
                    continue;
                };
                let e = f.on_time.entry(name.to_string()).or_default();
                match state {
                    "met" => e.0 += n,
                    "breached" => e.1 += n,
                    _ => {}
                }
            }
            f.escalations += r.get::<Option<i64>, _>("escalations").unwrap_or(0).max(0) as u64;
            f.compensations += count(r, "compensations");
            f.compensation_minor += r.get::<i64, _>("compensation_minor");
            let Some(overall) = r.get::<Option<i16>, _>("overall") else {
                continue;
            };
            if let Some(slot) = usize::try_from(overall - 1)
                .ok()
                .and_then(|i| f.distribution.get_mut(i))
            {
                *slot += n;
            }
            f.satisfied += count(r, "satisfied");
            f.scores[0].0 += i64::from(overall) * n as i64;
            f.scores[0].1 += n;
            for (i, (sum, n)) in [
                ("speed", "speeds"),
                ("effectiveness", "effectivenesses"),
                ("attitude", "attitudes"),
                ("transparency", "transparencies"),
            ]
            .into_iter()
            .enumerate()
            {
                f.scores[i + 1].0 += r.get::<Option<i64>, _>(sum).unwrap_or(0);
                f.scores[i + 1].1 += count(r, n);
            }
        }
        f
    }
}

/// The instant a day of the calendar's zone starts.
fn start_of(calendar: &Calendar, day: Date) -> Result<DateTime<Utc>, Refusal> {
    day.to_zoned(calendar.zone().clone())
        .map(|z| from_jiff(z.timestamp()))
        .map_err(|e| Refusal::malformed("period", e.to_string()))
}

/// The instants a period of the calendar's days starts and ends.
fn bounds(calendar: &Calendar, period: &Period) -> Result<(DateTime<Utc>, DateTime<Utc>), Refusal> {
    Ok((
        start_of(calendar, period.from)?,
        start_of(calendar, period.until)?,
    ))
}

/// The periods of the same kind around a report's: up to [`MAX_HISTORY`] before it, it
/// (place 0) and the next (place 1), oldest first, with the complaints of the slice
/// received in each by category (but for the report's own period, which the report counts
/// itself), and the day of the playbook's first complaint.
struct Neighbours {
    periods: Vec<Neighbour>,
    first_day: Option<Date>,
}

struct Neighbour {
    place: i32,
    period: Period,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    received: BTreeMap<String, u64>,
}

/// Counts the complaints of the periods around `period` (see [`Neighbours`]): one statement
/// for those before it and one for the next, each grouping by period and category.
async fn neighbours(
    reader: &Reader<'_>,
    calendar: &Calendar,
    scope: Scope<'_>,
    period: &Period,
) -> Result<Neighbours, Refusal> {
    let history = i32::try_from(MAX_HISTORY).unwrap_or(i32::MAX);
    let mut periods = Vec::new();
    for place in -history..=1 {
        // A month without the report day (a 30th in February) has no neighbours to count.
        let Ok(p) = period.shifted(place) else {
            continue;
        };
        let (since, until) = bounds(calendar, &p)?;
        periods.push(Neighbour {
            place,
            period: p,
            since,
            until,
            received: BTreeMap::new(),
        });
    }
    let span = |before: bool| {
        let mut bounds: Vec<DateTime<Utc>> = periods
            .iter()
            .filter(|p| (p.place < 0) == before && p.place != 0)
            .flat_map(|p| [p.since, p.until])
            .collect();
        bounds.sort();
        bounds.dedup();
        bounds
    };
    let (before, after) = (span(true), span(false));
    let counted = |bounds: Vec<DateTime<Utc>>| async move {
        let (Some(&from), Some(&until)) = (bounds.first(), bounds.last()) else {
            return Ok((bounds, Vec::new()));
        };
        let scope = Scope {
            from,
            until,
            ..scope
        };
        let rows = reader.fetch(scope.query(BY_PERIOD).bind(&bounds)).await?;
        Ok::<_, Refusal>((bounds, rows))
    };
    let (before, after, first) = tokio::try_join!(
        counted(before),
        counted(after),
        reader.fetch_one(sqlx::query(FIRST_RECEIVED).bind(scope.playbook)),
    )?;
    for (bounds, rows) in [before, after] {
        for r in &rows {
            // Bucket i is the time from the i-th bound to the next: a period where those
            // are its start and end.
            let bucket = usize::try_from(r.get::<i32, _>("bucket")).unwrap_or(0);
            let span = bucket
                .checked_sub(1)
                .and_then(|i| Some((*bounds.get(i)?, *bounds.get(i + 1)?)));
            let Some(p) =
                span.and_then(|(a, b)| periods.iter_mut().find(|p| (p.since, p.until) == (a, b)))
            else {
                continue;
            };
            p.received.insert(r.get("category"), count(r, "count"));
        }
    }
    let first_day = first
        .get::<Option<DateTime<Utc>>, _>(0)
        .map(|at| to_jiff(at).to_zoned(calendar.zone().clone()).date());
    Ok(Neighbours { periods, first_day })
}

/// The forecasts of the report's period and of the next (see [`crate::domain::forecast`]),
/// for all complaints of the slice ("") and each category their history holds; `this` is
/// the report's own period by category. A period's history is the periods before it that
/// have ended by `now` and began on or after the day of the playbook's first complaint (an
/// earlier one would count the days before the facts began as days without complaints).
fn forecasts(
    neighbours: &Neighbours,
    this: &BTreeMap<String, u64>,
    now: DateTime<Utc>,
) -> Vec<Forecast> {
    let Some(first_day) = neighbours.first_day else {
        return Vec::new();
    };
    let periods = &neighbours.periods;
    let received = |i: usize| -> &BTreeMap<String, u64> {
        if periods[i].place == 0 {
            this
        } else {
            &periods[i].received
        }
    };
    let total = |i: usize, category: &str| -> u64 {
        if category.is_empty() {
            received(i).values().sum()
        } else {
            received(i).get(category).copied().unwrap_or(0)
        }
    };
    let mut out = Vec::new();
    for (target, p) in periods.iter().enumerate() {
        if p.place < 0 {
            continue;
        }
        let known: Vec<usize> = (0..target)
            .filter(|&i| periods[i].until <= now && periods[i].period.from >= first_day)
            .collect();
        let categories: BTreeSet<&str> = known
            .iter()
            .flat_map(|&i| received(i).iter())
            .filter(|(c, n)| !c.is_empty() && **n > 0)
            .map(|(c, _)| c.as_str())
            .collect();
        for category in std::iter::once("").chain(categories) {
            let history: Vec<Past> = known
                .iter()
                .map(|&i| Past {
                    count: total(i, category),
                    days: f64::from(periods[i].period.days()),
                })
                .collect();
            if let Some(e) = forecast::forecast(&history, f64::from(p.period.days())) {
                out.push(Forecast {
                    period: p.period.label.clone(),
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
    out
}
