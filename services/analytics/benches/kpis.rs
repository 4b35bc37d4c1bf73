//! `cargo bench -p redress-analytics --bench kpis`: the key figures over a million complaint
//! facts, on a PostgreSQL of its own (started as the tests start it; or the server
//! `REDRESS_TEST_DATABASE_URL` names).
//!
//! A year of one playbook (`default`, 1,000,000 complaints received evenly through 2026, in
//! the order they came) with the facts a year of handling leaves: a first round each (a
//! second for the 5 % reopened), two deadlines each, an approval for 5 %, escalations for
//! 3 %, survey answers for a third of those closed. Stored durations are synthetic (business
//! time a fixed share of calendar time): the report sorts them and never walks a calendar
//! for them. Then, through the service's own pool (its role, session settings and pool
//! size), the figures of a month, of the whole year, and of a month of one category, each the
//! median of 5 runs after one to warm the cache.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redress_analytics::handlers::kpis::figures;
use redress_analytics::{IDENT, MIGRATOR, Rules};
use redress_proto::v1::{KpiQuery, Kpis};
use sqlx::{ConnectOptions, Connection, Executor};

const COMPLAINTS: i32 = 1_000_000;
const RUNS: usize = 5;

/// One row of draws per complaint, from which every fact table is filled.
const SYNTHETIC: &str = "
CREATE TEMPORARY TABLE synthetic AS
SELECT g, md5(g::text)::uuid AS id,
       timestamptz '2026-01-01 00:00:00+08' + (g - 1) * ($1 / $2) * interval '1 second'
           AS received,
       abs(hashint4(g)) % 1000 AS h1, abs(hashint4(-g)) % 1000 AS h2,
       abs(hashint4(g + 1000000000)) % 1000 AS h3
FROM generate_series(1, $2::int) g";

const FACTS: [&str; 8] = [
    "INSERT INTO complaints (complaint_id, ticket, playbook, channel, received_at, repeat,
         nature, category, severity, urgency, closed_at, no_response, withdrawn_at, merged_at,
         reopened_to, received_day, department, first_response_ms, first_response_business_ms,
         resolution_ms, resolution_business_ms)
     SELECT id, 'RD-' || g, 'default', (ARRAY['phone', 'web', 'email', 'wechat'])[1 + h1 % 4],
            received, g % 10 = 0,
            (ARRAY['valid', 'invalid', 'unclear'])[1 + h2 % 3],
            (ARRAY['delivery', 'billing', 'service', 'product', 'other'])[1 + h3 % 5],
            CASE WHEN h1 % 10 = 0 THEN 'major' ELSE 'general' END,
            (ARRAY['normal', 'urgent'])[1 + h2 % 2],
            CASE WHEN h3 < 800 THEN received + (h2 % 120 + 72) * interval '1 hour' END,
            h3 < 800 AND g % 7 = 0,
            CASE WHEN h3 BETWEEN 800 AND 829 THEN received + interval '1 day' END,
            CASE WHEN h3 BETWEEN 830 AND 849 THEN received + interval '2 hours' END,
            CASE WHEN g % 20 = 0 THEN 2 ELSE 1 END,
            (received AT TIME ZONE 'Asia/Shanghai')::date,
            (ARRAY['logistics', 'finance', 'service', 'quality', 'service'])[1 + h3 % 5],
            (h1 % 240 + 1) * 60000, (h1 % 240 + 1) * 30000,
            CASE WHEN h3 < 800 THEN (h2 % 120 + 1) * 3600000 END,
            CASE WHEN h3 < 800 THEN (h2 % 120 + 1) * 1080000 END
     FROM synthetic",
    "INSERT INTO rounds (complaint_id, round, department, work_version, assigned_at,
         accepted_at, replied_at, resolved_at, compensation_minor, currency, overall, speed,
         effectiveness, attitude, transparency, satisfied, playbook, received_at)
     SELECT id, 1, (ARRAY['logistics', 'finance', 'service', 'quality', 'service'])[1 + h3 % 5],
            3, received + interval '5 minutes',
            received + (h1 % 240 + 6) * interval '1 minute',
            CASE WHEN h3 < 800 THEN received + (h2 % 120) * interval '1 hour' END,
            CASE WHEN h3 < 800 THEN received + (h2 % 120 + 1) * interval '1 hour' END,
            CASE WHEN h1 % 10 = 0 THEN 5000 + h2 * 10 ELSE 0 END, 'CNY',
            s.overall, s.overall - h2 % 2, s.overall, 1 + h2 % 5, 1 + h1 % 5,
            s.overall >= 4, 'default', received
     FROM synthetic
     LEFT JOIN LATERAL (SELECT 1 + (h1 + h2) % 5 AS overall
                        WHERE h3 < 800 AND h2 % 3 = 0) s ON true",
    "INSERT INTO rounds (complaint_id, round, department, work_version, assigned_at, playbook,
         received_at)
     SELECT id, 2, 'quality', 1, received + interval '10 days', 'default', received
     FROM synthetic WHERE g % 20 = 0",
    "INSERT INTO deadlines (complaint_id, round, name, due_at, state, rank, settled_at)
     SELECT id, 1, d.name, received + d.within, s.state, s.rank, received + d.within
     FROM synthetic
     CROSS JOIN LATERAL (VALUES ('first_response', interval '2 hours', h1),
                                ('resolution', interval '3 days', h2)) d(name, within, h)
     CROSS JOIN LATERAL (SELECT CASE WHEN d.h < 880 THEN 'met' WHEN d.h < 960 THEN 'breached'
                                     WHEN d.h < 990 THEN 'armed' ELSE 'cancelled' END AS state,
                                CASE WHEN d.h < 880 THEN 1 WHEN d.h < 960 THEN 2
                                     WHEN d.h < 990 THEN 0 ELSE 1 END AS rank) s",
    "INSERT INTO approvals (approval_id, complaint_id, round, asked_at, decided_at, approved,
         turnaround_ms, turnaround_business_ms, playbook, received_at)
     SELECT 'ap-' || g, id, 1, received + interval '1 day',
            received + interval '1 day' + (h3 % 48 + 1) * interval '1 hour', h1 % 4 > 0,
            (h3 % 48 + 1) * 3600000, (h3 % 48 + 1) * 1200000, 'default', received
     FROM synthetic WHERE h3 % 20 = 0",
    "INSERT INTO escalations (complaint_id, round, deadline, level)
     SELECT id, 1, 'first_response', level
     FROM synthetic, generate_series(1, 1 + h2 % 2) level
     WHERE h1 BETWEEN 880 AND 909",
    // What the facts handler keeps on each round of its deadlines and escalations.
    "UPDATE rounds r SET settled = s.settled
     FROM (SELECT complaint_id, round,
                  string_agg(state || ':' || name, E'\\n' ORDER BY state, name) AS settled
           FROM deadlines WHERE state IN ('met', 'breached') GROUP BY complaint_id, round) s
     WHERE s.complaint_id = r.complaint_id AND s.round = r.round",
    "UPDATE rounds r SET escalations = s.n
     FROM (SELECT complaint_id, round, count(*) AS n FROM escalations
           GROUP BY complaint_id, round) s
     WHERE s.complaint_id = r.complaint_id AND s.round = r.round",
];

const TABLES: [&str; 5] = [
    "complaints",
    "rounds",
    "deadlines",
    "approvals",
    "escalations",
];

async fn load(url: &str) -> anyhow::Result<()> {
    let mut conn = url
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .options([("search_path", IDENT.schema)])
        .connect()
        .await?;
    let year = 365.0 * 86_400.0;
    sqlx::query(SYNTHETIC)
        .bind(year)
        .bind(COMPLAINTS)
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin().await?;
    for sql in FACTS {
        tx.execute(sql).await?;
    }
    tx.commit().await?;
    for table in TABLES {
        // Compact, as the updates of the summaries above left every round twice.
        conn.execute(format!("VACUUM (FULL, ANALYZE) {table}").as_str())
            .await?;
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await?;
        println!("{table:>12}: {rows:>9} rows");
    }
    Ok(())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = redress_testkit::TestDatabase::start().await?;
    let config = db.config();
    let pool = redress_platform::db::connect(&config.settings.database, &IDENT).await?;
    redress_platform::db::migrate(&pool, &IDENT, &MIGRATOR).await?;
    let started = Instant::now();
    load(db.url()).await?;
    println!(
        "loaded {COMPLAINTS} complaints and their facts in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let rules = Rules {
        playbooks: redress_playbook::Playbooks::load_dir(std::path::Path::new(
            &redress_testkit::playbooks_dir(),
        ))?,
        calendars: redress_calendar::CalendarSet::builtin()?,
    };
    rules.calendars.prepare();
    // A fortnight after the year: its last complaints still open, its periods all ended.
    let now: DateTime<Utc> = "2027-01-15T00:00:00Z".parse()?;
    let cases = [
        ("a month (2026-06)", "2026-06", ""),
        (
            "the year (2026-01-01..2026-12-31)",
            "2026-01-01..2026-12-31",
            "",
        ),
        (
            "a month of one category (2026-06, delivery)",
            "2026-06",
            "delivery",
        ),
    ];
    for (name, period, category) in cases {
        let q = KpiQuery {
            playbook: "default".into(),
            period: period.into(),
            category: category.into(),
            ..Default::default()
        };
        let run = || async {
            let t = Instant::now();
            let k: Kpis = figures(&pool, &rules, &q, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            anyhow::Ok((t.elapsed(), k))
        };
        let (_, k) = run().await?;
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            times.push(run().await?.0);
        }
        let deadlines: u64 = k.on_time.iter().map(|d| d.met + d.breached).sum();
        println!(
            "{name}: median {:.0} ms of {RUNS} (min {:.0}, max {:.0}); {} complaints, {} open, \
             {} first responses, {} settled deadlines, {} answers, {} forecasts",
            median(times.clone()).as_secs_f64() * 1e3,
            times.iter().min().unwrap_or(&Duration::ZERO).as_secs_f64() * 1e3,
            times.iter().max().unwrap_or(&Duration::ZERO).as_secs_f64() * 1e3,
            k.received,
            k.open,
            k.first_response.map(|d| d.count).unwrap_or(0),
            deadlines,
            k.satisfaction.map(|s| s.answered).unwrap_or(0),
            k.forecast.len(),
        );
    }
    Ok(())
}
