//! `KpiQuery`: the key figures of one playbook over a period and slice, computed from the
//! facts. The period is the playbook calendar's days (see [`crate::domain::period`]); a
//! complaint counts in it when it was received in it; durations are in calendar and in
//! business time; what is still open is aged at the end of the period (or now, if sooner).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_platform::commands::Refusal;
use redress_proto::time::ts;
use redress_proto::v1::kpi_reply::Outcome;
use redress_proto::v1::{
    CountBy, DurationStats, KpiQuery, KpiReply, Kpis, OnTimeRate, SatisfactionStats,
};
use sqlx::Row;
use uuid::Uuid;

use crate::Analytics;
use crate::domain::period;
use crate::domain::stats::{mean, percentile, rate};

fn to_jiff(at: DateTime<Utc>) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(at.timestamp_micros()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn from_jiff(at: jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.as_microsecond()).unwrap_or_default()
}

/// Calendar and business durations of (start, end) pairs.
fn durations(
    calendar: &redress_calendar::Calendar,
    pairs: &[(DateTime<Utc>, DateTime<Utc>)],
) -> DurationStats {
    let calendar_secs: Vec<f64> = pairs
        .iter()
        .map(|(a, b)| (*b - *a).num_milliseconds() as f64 / 1000.0)
        .collect();
    let business_secs: Vec<f64> = pairs
        .iter()
        .filter_map(|(a, b)| {
            calendar
                .business_time_between(to_jiff(*a), to_jiff(*b), &[])
                .ok()
                .map(|d| d.as_secs_f64())
        })
        .collect();
    DurationStats {
        count: pairs.len() as u64,
        p50_secs: percentile(&calendar_secs, 0.5).unwrap_or(0.0),
        p90_secs: percentile(&calendar_secs, 0.9).unwrap_or(0.0),
        p50_business_secs: percentile(&business_secs, 0.5).unwrap_or(0.0),
        p90_business_secs: percentile(&business_secs, 0.9).unwrap_or(0.0),
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
    let key = q.playbook.trim();
    let playbook = analytics
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
    let calendar = analytics
        .calendars
        .get(&playbook.sla.calendar)
        .map_err(|e| Refusal::internal(e.to_string()))?;
    let zone = calendar.zone().clone();
    let start_of = |d: jiff::civil::Date| {
        d.to_zoned(zone.clone())
            .map(|z| from_jiff(z.timestamp()))
            .map_err(|e| Refusal::malformed("period", e.to_string()))
    };
    let (from, until) = (start_of(period.from)?, start_of(period.until)?);
    let end = analytics.ctx.clock.now().min(until);

    let rows = sqlx::query(
        "SELECT c.complaint_id, c.channel, c.category, c.nature, r.department, c.received_at, c.repeat, c.closed_at,
                c.no_response, c.withdrawn_at, c.merged_at, c.reopened_to,
                r.assigned_at, r.accepted_at, r.resolved_at
         FROM complaints c
         LEFT JOIN rounds r ON r.complaint_id = c.complaint_id AND r.round = 1
         WHERE c.playbook = $1 AND c.received_at >= $2 AND c.received_at < $3
           AND ($4 = '' OR c.category = $4) AND ($5 = '' OR c.channel = $5)
           AND ($6 = '' OR c.severity = $6)
           AND ($7 = '' OR EXISTS (SELECT 1 FROM rounds d
                                  WHERE d.complaint_id = c.complaint_id AND d.department = $7))",
    )
    .bind(key)
    .bind(from)
    .bind(until)
    .bind(q.category.trim())
    .bind(q.channel.trim())
    .bind(severity)
    .bind(q.department.trim())
    .fetch_all(&analytics.store.pool)
    .await?;

    let mut k = Kpis {
        playbook: key.to_string(),
        period: period.label.clone(),
        from: ts(from),
        until: ts(until),
        zone: calendar.zone_name().to_string(),
        currency: playbook.currency.clone(),
        ..Default::default()
    };
    let mut ids: Vec<Uuid> = Vec::with_capacity(rows.len());
    let (mut first_response, mut resolution, mut backlog) = (Vec::new(), Vec::new(), Vec::new());
    let (mut by_category, mut by_channel, mut by_day) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut by_nature, mut by_department) = (BTreeMap::new(), BTreeMap::new());
    let (mut reopened, mut repeats, mut no_response) = (0u64, 0u64, 0u64);
    for r in &rows {
        ids.push(r.get("complaint_id"));
        let received: DateTime<Utc> = r.get("received_at");
        let ended_by = |col: &str| {
            r.get::<Option<DateTime<Utc>>, _>(col)
                .is_some_and(|t| t < end)
        };
        let (closed, withdrawn, merged) = (
            ended_by("closed_at"),
            ended_by("withdrawn_at"),
            ended_by("merged_at"),
        );
        k.received += 1;
        k.closed += u64::from(closed);
        k.withdrawn += u64::from(withdrawn);
        k.merged += u64::from(merged);
        if !(closed || withdrawn || merged) {
            k.open += 1;
            backlog.push((received, end.max(received)));
        }
        reopened += u64::from(r.get::<i32, _>("reopened_to") > 1);
        repeats += u64::from(r.get::<bool, _>("repeat"));
        no_response += u64::from(closed && r.get::<bool, _>("no_response"));
        if let (Some(a), Some(b)) = (
            r.get::<Option<DateTime<Utc>>, _>("assigned_at"),
            r.get::<Option<DateTime<Utc>>, _>("accepted_at"),
        ) {
            first_response.push((a, b));
        }
        if let Some(done) = r.get::<Option<DateTime<Utc>>, _>("resolved_at") {
            resolution.push((received, done));
        }
        *by_category
            .entry(r.get::<String, _>("category"))
            .or_insert(0) += 1;
        *by_channel.entry(r.get::<String, _>("channel")).or_insert(0) += 1;
        *by_nature.entry(r.get::<String, _>("nature")).or_insert(0) += 1;
        let department: Option<String> = r.get("department");
        *by_department
            .entry(department.unwrap_or_default())
            .or_insert(0) += 1;
        let day = to_jiff(received).to_zoned(zone.clone()).date().to_string();
        *by_day.entry(day).or_insert(0) += 1;
    }
    k.first_response = Some(durations(calendar, &first_response));
    k.resolution = Some(durations(calendar, &resolution));
    k.backlog_age = Some(durations(calendar, &backlog));
    k.reopen_rate = rate(reopened, k.received);
    k.repeat_rate = rate(repeats, k.received);
    k.by_category = counts(by_category);
    k.by_channel = counts(by_channel);
    k.by_day = counts(by_day);
    k.by_nature = counts(by_nature);
    k.by_department = counts(by_department);

    let db = &analytics.store.pool;
    let mut on_time: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT name, state FROM deadlines
         WHERE complaint_id = ANY($1) AND state IN ('met', 'breached')",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?
    {
        let e = on_time.entry(r.get("name")).or_insert((0, 0));
        if r.get::<String, _>("state") == "met" {
            e.0 += 1;
        } else {
            e.1 += 1;
            k.breaches += 1;
        }
    }
    k.on_time = on_time
        .into_iter()
        .map(|(deadline, (met, breached))| OnTimeRate {
            deadline,
            met,
            breached,
            rate: rate(met, met + breached),
        })
        .collect();
    k.escalations = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM escalations WHERE complaint_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(db)
    .await?
    .max(0) as u64;
    let approvals: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query(
        "SELECT asked_at, decided_at FROM approvals
         WHERE complaint_id = ANY($1) AND asked_at IS NOT NULL AND decided_at IS NOT NULL",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| (r.get("asked_at"), r.get("decided_at")))
    .collect();
    k.approval_turnaround = Some(durations(calendar, &approvals));

    let rounds = sqlx::query(
        "SELECT compensation_minor, overall, speed, effectiveness, attitude, transparency,
                satisfied
         FROM rounds WHERE complaint_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    let mut scores: [Vec<f64>; 5] = Default::default();
    let mut sat = SatisfactionStats {
        distribution: vec![0; 5],
        ..Default::default()
    };
    let mut satisfied = 0u64;
    for r in &rounds {
        let comp: i64 = r.get("compensation_minor");
        if comp > 0 {
            k.compensations += 1;
            k.compensation_minor += comp;
        }
        let Some(overall) = r.get::<Option<i16>, _>("overall") else {
            continue;
        };
        sat.answered += 1;
        satisfied += u64::from(r.get::<Option<bool>, _>("satisfied").unwrap_or(false));
        if let Some(slot) = usize::try_from(overall - 1)
            .ok()
            .and_then(|i| sat.distribution.get_mut(i))
        {
            *slot += 1;
        }
        for (i, col) in [
            "overall",
            "speed",
            "effectiveness",
            "attitude",
            "transparency",
        ]
        .iter()
        .enumerate()
        {
            if let Some(v) = r.get::<Option<i16>, _>(*col) {
                scores[i].push(f64::from(v));
            }
        }
    }
    sat.overall = mean(&scores[0]);
    sat.speed = mean(&scores[1]);
    sat.effectiveness = mean(&scores[2]);
    sat.attitude = mean(&scores[3]);
    sat.transparency = mean(&scores[4]);
    sat.share_satisfied = rate(satisfied, sat.answered);
    sat.no_response = no_response;
    sat.no_response_rate = rate(no_response, k.closed);
    k.satisfaction = Some(sat);
    Ok(k)
}
