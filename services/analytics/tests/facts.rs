//! The facts of one complaint told in order, and told backwards with every event twice,
//! come to the same rows: the durations measured, the first round's department, each
//! round's deadlines and escalations, and the period key of rounds and approvals. The key
//! figures of the week then count both complaints alike. Folded in batches (as the service
//! folds a burst), in any order and with repetitions, they come to the same rows again.
//! Needs PostgreSQL (started as the other tests start it).

use chrono::{DateTime, Utc};
use redress_analytics::handlers::facts::{Fact, Told, apply, apply_batch};
use redress_analytics::handlers::kpis::figures;
use redress_analytics::{IDENT, MIGRATOR, Rules};
use redress_proto::time::ts;
use redress_proto::v1::{Deadline, DeadlineState, KpiQuery, WorkChange, WorkItem};
use sqlx::{PgPool, Row};
use uuid::Uuid;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn work(round: u32, version: u64, department: &str, times: [Option<&str>; 3]) -> Fact {
    let [assigned, accepted, resolved] = times.map(|t| t.and_then(|t| ts(at(t))));
    Fact::Work(
        Box::new(WorkItem {
            work_id: Uuid::new_v4().to_string(),
            department: department.into(),
            round,
            version,
            assigned_at: assigned,
            accepted_at: accepted,
            resolved_at: resolved,
            ..Default::default()
        }),
        WorkChange::Assigned,
    )
}

fn deadline(name: &str, state: DeadlineState) -> Deadline {
    let mut d = Deadline {
        name: name.into(),
        round: 1,
        ..Default::default()
    };
    d.set_state(state);
    d
}

/// What each event tells, and when, for a complaint received Monday 23 November 2026 09:00
/// in Shanghai (01:00Z): accepted at 09:30, resolved Tuesday 10:00 (25 h; 8.5 business hours
/// by cn-mainland), an approval asked Monday 14:00 and decided 15:00, both deadlines met,
/// one escalation, a survey answer, closed.
fn story(approval_id: &str) -> Vec<(&'static str, Fact)> {
    vec![
        (
            "2026-11-23T01:00:00Z",
            Fact::Received {
                ticket: "RD-1".into(),
                channel: "phone".into(),
                received_at: Some(at("2026-11-23T01:00:00Z")),
                repeat: false,
            },
        ),
        (
            "2026-11-23T01:00:01Z",
            Fact::Classified {
                nature: "valid".into(),
                category: "delivery".into(),
                severity: "general".into(),
                urgency: "normal".into(),
            },
        ),
        (
            "2026-11-23T01:00:02Z",
            work(1, 1, "service", [Some("2026-11-23T01:00:02Z"), None, None]),
        ),
        (
            "2026-11-23T01:00:03Z",
            Fact::Deadlines(
                vec![
                    deadline("first_response", DeadlineState::Armed),
                    deadline("resolution", DeadlineState::Armed),
                ],
                false,
            ),
        ),
        (
            "2026-11-23T01:30:00Z",
            // Transferred: the newest version's department counts.
            work(
                1,
                2,
                "logistics",
                [
                    Some("2026-11-23T01:00:00Z"),
                    Some("2026-11-23T01:30:00Z"),
                    None,
                ],
            ),
        ),
        (
            "2026-11-23T01:30:01Z",
            Fact::Deadlines(vec![deadline("first_response", DeadlineState::Met)], false),
        ),
        (
            "2026-11-23T05:00:00Z",
            Fact::Escalated {
                round: 1,
                deadline: "resolution".into(),
                level: 1,
            },
        ),
        (
            "2026-11-23T06:00:00Z",
            Fact::ApprovalAsked {
                approval_id: approval_id.into(),
                round: 1,
            },
        ),
        (
            "2026-11-23T07:00:00Z",
            Fact::ApprovalDecided {
                approval_id: approval_id.into(),
                approved: true,
            },
        ),
        (
            "2026-11-24T02:00:00Z",
            work(
                1,
                3,
                "logistics",
                [
                    Some("2026-11-23T01:00:00Z"),
                    Some("2026-11-23T01:30:00Z"),
                    Some("2026-11-24T02:00:00Z"),
                ],
            ),
        ),
        (
            "2026-11-24T02:00:01Z",
            Fact::Deadlines(vec![deadline("resolution", DeadlineState::Met)], false),
        ),
        (
            "2026-11-24T03:00:00Z",
            Fact::Answered {
                round: 1,
                scores: [5, 4, 0, 0, 0],
                satisfied: true,
            },
        ),
        ("2026-11-24T03:00:01Z", Fact::Closed { no_response: false }),
    ]
}

async fn tell(pool: &PgPool, rules: &Rules, complaint: Uuid, when: &str, fact: &Fact) {
    let told = Told {
        complaint,
        playbook: "default",
        ticket: "RD-1",
        at: Some(at(when)),
    };
    let mut tx = pool.begin().await.unwrap();
    apply(rules, &mut tx, &told, fact).await.unwrap();
    tx.commit().await.unwrap();
}

/// Everything the facts derive for `complaint`, as text to compare.
async fn derived(pool: &PgPool, complaint: Uuid) -> Vec<String> {
    sqlx::query(
        "SELECT concat_ws(' ', c.received_at, c.received_day, c.department, c.first_response_ms,
                          c.first_response_business_ms, c.resolution_ms,
                          c.resolution_business_ms, c.closed_at)
         FROM complaints c WHERE c.complaint_id = $1
         UNION ALL
         SELECT concat_ws(' ', r.round, r.playbook, r.received_at, r.department,
                          replace(r.settled, E'\\n', '|'), r.escalations, r.overall)
         FROM rounds r WHERE r.complaint_id = $1
         UNION ALL
         SELECT concat_ws(' ', a.playbook, a.received_at, a.turnaround_ms,
                          a.turnaround_business_ms)
         FROM approvals a WHERE a.complaint_id = $1",
    )
    .bind(complaint)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn setup() -> (redress_testkit::TestDatabase, PgPool, Rules) {
    let db = redress_testkit::TestDatabase::start().await.unwrap();
    let config = db.config();
    let pool = redress_platform::db::connect(&config.settings.database, &IDENT)
        .await
        .unwrap();
    redress_platform::db::migrate(&pool, &IDENT, &MIGRATOR)
        .await
        .unwrap();
    let rules = Rules {
        playbooks: redress_playbook::Playbooks::load_dir(std::path::Path::new(
            &redress_testkit::playbooks_dir(),
        ))
        .unwrap(),
        calendars: redress_calendar::CalendarSet::builtin().unwrap(),
    };
    (db, pool, rules)
}

/// Folds `events` (a complaint, when, what) as one batch in one transaction.
async fn tell_batch(pool: &PgPool, rules: &Rules, events: &[(Uuid, &str, &Fact)]) {
    let items: Vec<(Told<'_>, &Fact)> = events
        .iter()
        .map(|(complaint, when, fact)| {
            (
                Told {
                    complaint: *complaint,
                    playbook: "default",
                    ticket: "RD-1",
                    at: Some(at(when)),
                },
                *fact,
            )
        })
        .collect();
    let mut tx = pool.begin().await.unwrap();
    apply_batch(rules, &mut tx, &items).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn facts_folded_in_batches_come_to_what_one_by_one_does() {
    let (_db, pool, rules) = setup().await;
    let [single, whole, mixed, chunked] = [(); 4].map(|_| Uuid::new_v4());
    let stories: Vec<Vec<(&str, Fact)>> = ["ap-single", "ap-whole", "ap-mixed", "ap-chunked"]
        .into_iter()
        .map(story)
        .collect();
    for (when, fact) in &stories[0] {
        tell(&pool, &rules, single, when, fact).await;
    }
    // The whole life in one batch, in order.
    let batch: Vec<(Uuid, &str, &Fact)> = stories[1].iter().map(|(w, f)| (whole, *w, f)).collect();
    tell_batch(&pool, &rules, &batch).await;
    // Backwards, every event twice, interleaved with another complaint's events in threes.
    let mut chunks = stories[3].chunks(3).rev();
    for (i, (when, fact)) in stories[2].iter().enumerate().rev() {
        let mut batch = vec![(mixed, *when, fact), (mixed, *when, fact)];
        if i % 3 == 0
            && let Some(chunk) = chunks.next()
        {
            batch.extend(chunk.iter().map(|(w, f)| (chunked, *w, f)));
        }
        tell_batch(&pool, &rules, &batch).await;
    }
    for chunk in chunks {
        let batch: Vec<(Uuid, &str, &Fact)> = chunk.iter().map(|(w, f)| (chunked, *w, f)).collect();
        tell_batch(&pool, &rules, &batch).await;
    }

    let rows = derived(&pool, single).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(derived(&pool, whole).await, rows);
    assert_eq!(derived(&pool, mixed).await, rows);
    assert_eq!(derived(&pool, chunked).await, rows);
}

#[tokio::test]
async fn facts_told_in_any_order_or_twice_come_to_the_same() {
    let (_db, pool, rules) = setup().await;
    let (forward, backward) = (Uuid::new_v4(), Uuid::new_v4());
    for (when, fact) in story("ap-forward") {
        tell(&pool, &rules, forward, when, &fact).await;
    }
    for (when, fact) in story("ap-backward").iter().rev() {
        tell(&pool, &rules, backward, when, fact).await;
        tell(&pool, &rules, backward, when, fact).await;
    }

    let rows = derived(&pool, forward).await;
    assert_eq!(rows, derived(&pool, backward).await);
    assert_eq!(
        rows,
        [
            // 30 minutes to accept; 25 h to resolve, of which Monday 7.5 and Tuesday 1
            // working hours.
            "2026-11-23 01:00:00+00 2026-11-23 logistics 1800000 1800000 90000000 30600000 \
             2026-11-24 03:00:01+00",
            "1 default 2026-11-23 01:00:00+00 logistics met:first_response|met:resolution 1 5",
            // 14:00 to 15:00 on a working Monday.
            "default 2026-11-23 01:00:00+00 3600000 3600000",
        ]
    );

    let k = figures(
        &pool,
        &rules,
        &KpiQuery {
            playbook: "default".into(),
            period: "2026-11-23..2026-11-29".into(),
            ..Default::default()
        },
        at("2026-11-30T01:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!((k.received, k.closed, k.open), (2, 2, 0));
    let resolution = k.resolution.unwrap();
    assert_eq!(
        (resolution.count, resolution.p90_business_secs),
        (2, 30600.0)
    );
    assert_eq!(
        (
            k.on_time.len(),
            k.on_time[0].met,
            k.on_time[1].met,
            k.breaches
        ),
        (2, 2, 2, 0)
    );
    assert_eq!(k.escalations, 2);
    assert_eq!(k.approval_turnaround.unwrap().count, 2);
    let s = k.satisfaction.unwrap();
    assert_eq!((s.answered, s.overall, s.speed), (2, 5.0, 4.0));
    assert_eq!(k.by_department[0].key, "logistics");
    // A slice reads the same facts through the complaints it covers.
    let sliced = figures(
        &pool,
        &rules,
        &KpiQuery {
            playbook: "default".into(),
            period: "2026-11-23..2026-11-29".into(),
            department: "service".into(),
            ..Default::default()
        },
        at("2026-11-30T01:00:00Z"),
    )
    .await
    .unwrap();
    // No round is at service any more: the department of a round is its newest version's.
    assert_eq!(sliced.received, 0);
    let sliced = figures(
        &pool,
        &rules,
        &KpiQuery {
            playbook: "default".into(),
            period: "2026-11-23..2026-11-29".into(),
            channel: "phone".into(),
            ..Default::default()
        },
        at("2026-11-30T01:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!((sliced.received, sliced.escalations), (2, 2));

    // Days are the playbook's: 17:00 UTC on Monday is Tuesday 01:00 in Shanghai.
    let late = Fact::Received {
        ticket: "RD-2".into(),
        channel: "web".into(),
        received_at: Some(at("2026-11-23T17:00:00Z")),
        repeat: false,
    };
    tell(&pool, &rules, Uuid::new_v4(), "2026-11-23T17:00:00Z", &late).await;
    let k = figures(
        &pool,
        &rules,
        &KpiQuery {
            playbook: "default".into(),
            period: "2026-11-23..2026-11-29".into(),
            ..Default::default()
        },
        at("2026-11-30T01:00:00Z"),
    )
    .await
    .unwrap();
    let days: Vec<(&str, u64)> = k.by_day.iter().map(|d| (d.key.as_str(), d.count)).collect();
    assert_eq!(days, [("2026-11-23", 2), ("2026-11-24", 1)]);
}
