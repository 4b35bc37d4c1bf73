//! Every event, folded into the facts of its complaint and round.
//!
//! Each fact is written so that the order and repetition of events do not matter: a time is
//! the earliest any event told (`LEAST`), a deadline's outcome the most final told (armed <
//! met < breached < met by retraction), a round's department and compensation those of the
//! newest work version told. An event that tells nothing the facts keep is skipped.
//!
//! What a report reads is kept where one pass over one table finds it
//! (`migrations/20261206100001_durations.sql`):
//! - the durations it ranks (first response, resolution, approval turnaround), measured here
//!   in calendar and business time whenever a fact tells either of their ends, so that a
//!   report sorts stored numbers instead of walking the calendar for every complaint;
//! - the day of the reception in the playbook's zone, and the first round's department, on
//!   the complaint;
//! - on each round, its deadlines met or breached and its escalations;
//! - on rounds and approvals, their complaint's playbook and reception (the period key),
//!   written with the fact and again when the reception is told.
//!
//! Every event first upserts its complaint's row, which holds that row's lock until the unit
//! commits, so units touching one complaint run one after the other and each derives from
//! what the one before it committed.

use chrono::{DateTime, NaiveDate, Utc};
use redress_platform::events::{Event, Failure, Parsed};
use redress_proto::time::opt_to_chrono;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{Deadline, DeadlineState, WorkChange, WorkItem};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::Rules;
use crate::domain::duration::{measure, to_jiff};

mod batch;
pub use batch::apply_batch;

/// What one event tells.
pub enum Fact {
    Received {
        ticket: String,
        channel: String,
        received_at: Option<DateTime<Utc>>,
        repeat: bool,
    },
    Classified {
        nature: String,
        category: String,
        severity: String,
        urgency: String,
    },
    Work(Box<WorkItem>, WorkChange),
    Escalated {
        round: i32,
        deadline: String,
        level: i32,
    },
    Deadlines(Vec<Deadline>, bool),
    ApprovalAsked {
        approval_id: String,
        round: i32,
    },
    ApprovalDecided {
        approval_id: String,
        approved: bool,
    },
    Answered {
        round: i32,
        scores: [i16; 5],
        satisfied: bool,
    },
    Closed {
        no_response: bool,
    },
    /// The round a reopening starts (the event names the round that failed).
    Reopened {
        round: i32,
    },
    Withdrawn,
}

fn severity_word(s: i32) -> String {
    redress_proto::v1::Severity::try_from(s)
        .ok()
        .and_then(redress_playbook::Severity::from_proto)
        .map(|s| format!("{s:?}").to_lowercase())
        .unwrap_or_default()
}

fn urgency_word(u: i32) -> String {
    redress_proto::v1::Urgency::try_from(u)
        .ok()
        .and_then(redress_playbook::Urgency::from_proto)
        .map(|u| format!("{u:?}").to_lowercase())
        .unwrap_or_default()
}

fn round_of(r: u32) -> i32 {
    i32::try_from(r.max(1)).unwrap_or(i32::MAX)
}

pub fn parse(event: &Event) -> Parsed<Fact> {
    if event.complaint_id().is_none() {
        return Parsed::Skip;
    }
    let fact = match &event.payload {
        Payload::ComplaintReceived(r) => Fact::Received {
            ticket: r.ticket.clone(),
            channel: r.channel.clone(),
            received_at: opt_to_chrono(&r.received_at),
            repeat: r.repeat,
        },
        Payload::ComplaintClassified(c) => Fact::Classified {
            nature: c.nature.clone(),
            category: c.category.clone(),
            severity: severity_word(c.severity),
            urgency: urgency_word(c.urgency),
        },
        Payload::WorkChanged(w) => match &w.work {
            Some(work) => Fact::Work(Box::new(work.clone()), w.change()),
            None => return Parsed::Reject("WorkChanged without a work item".into()),
        },
        Payload::WorkEscalated(e) => Fact::Escalated {
            round: round_of(e.work.as_ref().map(|w| w.round).unwrap_or(1)),
            deadline: e.deadline.clone(),
            level: i32::try_from(e.level).unwrap_or(i32::MAX),
        },
        Payload::DeadlinesArmed(a) => Fact::Deadlines(a.deadlines.clone(), false),
        Payload::DeadlineMet(s) | Payload::DeadlineBreached(s) => match &s.deadline {
            Some(d) => Fact::Deadlines(vec![d.clone()], s.retracts_breach),
            None => return Parsed::Skip,
        },
        Payload::ApprovalRequested(r) if r.step <= 1 => Fact::ApprovalAsked {
            approval_id: r.approval_id.clone(),
            round: round_of(r.round),
        },
        Payload::ApprovalDecided(d) if !d.automatic => Fact::ApprovalDecided {
            approval_id: d.approval_id.clone(),
            approved: d.approved,
        },
        Payload::SurveyAnswered(a) if !a.sample => {
            let s = a.scores.unwrap_or_default();
            let score = |v: u32| i16::try_from(v).unwrap_or(0);
            Fact::Answered {
                round: round_of(a.round),
                scores: [
                    score(s.overall),
                    score(s.speed),
                    score(s.effectiveness),
                    score(s.attitude),
                    score(s.transparency),
                ],
                satisfied: a.satisfied,
            }
        }
        Payload::ComplaintClosed(c) => Fact::Closed {
            no_response: c.no_response,
        },
        Payload::ComplaintReopened(r) => Fact::Reopened {
            round: round_of(r.round).saturating_add(1),
        },
        Payload::ComplaintWithdrawn(_) => Fact::Withdrawn,
        _ => return Parsed::Skip,
    };
    Parsed::Handle(fact)
}

/// The outcome of a deadline as told, ranked: a later rank replaces an earlier one.
fn outcome(d: &Deadline, retracts: bool) -> (&'static str, i16) {
    match d.state() {
        DeadlineState::Met if retracts => ("met", 3),
        DeadlineState::Breached => ("breached", 2),
        DeadlineState::Met => ("met", 1),
        DeadlineState::Cancelled => ("cancelled", 1),
        _ => ("armed", 0),
    }
}

/// Whose facts an event tells, and when, apart from what it says.
#[derive(Clone)]
pub struct Told<'a> {
    pub complaint: Uuid,
    pub playbook: &'a str,
    pub ticket: &'a str,
    /// When the event happened, as its producer says.
    pub at: Option<DateTime<Utc>>,
}

impl<'a> Told<'a> {
    /// None for an event of no complaint (which [`parse`] skips).
    pub fn of(event: &'a Event) -> Option<Self> {
        Some(Told {
            complaint: event.complaint_id()?,
            playbook: &event.envelope.playbook,
            ticket: &event.envelope.ticket,
            at: event.occurred_at(),
        })
    }
}

/// Folds one event's fact into the facts.
pub async fn apply(
    rules: &Rules,
    db: &mut PgConnection,
    told: &Told<'_>,
    fact: &Fact,
) -> Result<(), Failure> {
    upsert_complaints(db, std::slice::from_ref(told)).await?;
    fold(rules, db, told, fact).await
}

/// Gives every complaint told of its row (every event names its complaint's playbook, so the
/// row exists whichever event comes first), in complaint order, and holds those rows' locks
/// until the unit commits (`ON CONFLICT DO UPDATE` locks the row even where its `WHERE`
/// leaves it unchanged): units touching one complaint run one after the other, and each
/// derives from what the one before it committed.
pub(crate) async fn upsert_complaints(
    db: &mut PgConnection,
    told: &[Told<'_>],
) -> Result<(), Failure> {
    let mut rows: Vec<(Uuid, &str, &str)> = told
        .iter()
        .map(|t| (t.complaint, t.playbook, t.ticket))
        .collect();
    // One row per complaint (a statement may not change a row twice), the first that names
    // a playbook and a ticket.
    rows.sort_by(|a, b| {
        (a.0, a.1.is_empty(), a.2.is_empty()).cmp(&(b.0, b.1.is_empty(), b.2.is_empty()))
    });
    rows.dedup_by_key(|r| r.0);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let playbooks: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let tickets: Vec<&str> = rows.iter().map(|r| r.2).collect();
    sqlx::query(
        "INSERT INTO complaints (complaint_id, playbook, ticket)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
         ON CONFLICT (complaint_id) DO UPDATE SET
             playbook = CASE WHEN complaints.playbook = '' THEN EXCLUDED.playbook
                             ELSE complaints.playbook END,
             ticket = CASE WHEN complaints.ticket = '' THEN EXCLUDED.ticket
                           ELSE complaints.ticket END
         WHERE complaints.playbook = '' OR complaints.ticket = ''",
    )
    .bind(&ids)
    .bind(&playbooks)
    .bind(&tickets)
    .execute(db)
    .await?;
    Ok(())
}

/// Folds one fact into the facts of a complaint whose row exists.
async fn fold(
    rules: &Rules,
    db: &mut PgConnection,
    told: &Told<'_>,
    fact: &Fact,
) -> Result<(), Failure> {
    let (complaint, at) = (told.complaint, told.at);
    match fact {
        // Folded as a batch of one: the same statement as a burst's.
        Fact::Received { .. } => {
            let item = (told.clone(), fact);
            let mut received = batch::Received::default();
            received.take(rules, &item);
            received.fold(rules, db).await?;
        }
        Fact::Classified { .. } => {
            let item = (told.clone(), fact);
            let mut classified = batch::Classified::default();
            classified.take(&item);
            classified.fold(db).await?;
        }
        Fact::Work(work, change) => apply_work(rules, db, complaint, at, work, *change).await?,
        Fact::Escalated {
            round,
            deadline,
            level,
        } => {
            sqlx::query(
                "INSERT INTO escalations (complaint_id, round, deadline, level)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(complaint)
            .bind(round)
            .bind(deadline)
            .bind(level)
            .execute(&mut *db)
            .await?;
            summarise_rounds(&mut *db, &[complaint], &[*round]).await?;
        }
        Fact::Deadlines(deadlines, retracts) => {
            for d in deadlines {
                let (state, rank) = outcome(d, *retracts);
                sqlx::query(
                    "INSERT INTO deadlines (complaint_id, round, name, due_at, state, rank,
                         settled_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (complaint_id, round, name) DO UPDATE SET
                         state = EXCLUDED.state, rank = EXCLUDED.rank,
                         settled_at = EXCLUDED.settled_at,
                         due_at = COALESCE(EXCLUDED.due_at, deadlines.due_at)
                     WHERE EXCLUDED.rank >= deadlines.rank",
                )
                .bind(complaint)
                .bind(round_of(d.round))
                .bind(&d.name)
                .bind(opt_to_chrono(&d.due_at))
                .bind(state)
                .bind(rank)
                .bind(opt_to_chrono(&d.settled_at))
                .execute(&mut *db)
                .await?;
            }
            let rounds: Vec<i32> = deadlines.iter().map(|d| round_of(d.round)).collect();
            summarise_rounds(&mut *db, &vec![complaint; rounds.len()], &rounds).await?;
        }
        Fact::ApprovalAsked { approval_id, round } => {
            sqlx::query(
                "INSERT INTO approvals (approval_id, complaint_id, round, asked_at, playbook,
                     received_at)
                 SELECT $1, $2, $3, $4, c.playbook, c.received_at
                 FROM complaints c WHERE c.complaint_id = $2
                 ON CONFLICT (approval_id) DO UPDATE SET
                     complaint_id = EXCLUDED.complaint_id, round = EXCLUDED.round,
                     asked_at = LEAST(approvals.asked_at, EXCLUDED.asked_at),
                     playbook = EXCLUDED.playbook, received_at = EXCLUDED.received_at",
            )
            .bind(approval_id)
            .bind(complaint)
            .bind(round)
            .bind(at)
            .execute(&mut *db)
            .await?;
            remeasure_turnaround(rules, &mut *db, approval_id).await?;
        }
        Fact::ApprovalDecided {
            approval_id,
            approved,
        } => {
            sqlx::query(
                "INSERT INTO approvals (approval_id, complaint_id, decided_at, approved,
                     playbook, received_at)
                 SELECT $1, $2, $3, $4, c.playbook, c.received_at
                 FROM complaints c WHERE c.complaint_id = $2
                 ON CONFLICT (approval_id) DO UPDATE SET
                     decided_at = LEAST(approvals.decided_at, EXCLUDED.decided_at),
                     approved = EXCLUDED.approved",
            )
            .bind(approval_id)
            .bind(complaint)
            .bind(at)
            .bind(approved)
            .execute(&mut *db)
            .await?;
            remeasure_turnaround(rules, &mut *db, approval_id).await?;
        }
        Fact::Answered {
            round,
            scores,
            satisfied,
        } => {
            let nonzero = |s: i16| (s > 0).then_some(s);
            sqlx::query(
                "INSERT INTO rounds (complaint_id, round, overall, speed, effectiveness,
                     attitude, transparency, satisfied, playbook, received_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, c.playbook, c.received_at
                 FROM complaints c WHERE c.complaint_id = $1
                 ON CONFLICT (complaint_id, round) DO UPDATE SET
                     overall = EXCLUDED.overall, speed = EXCLUDED.speed,
                     effectiveness = EXCLUDED.effectiveness, attitude = EXCLUDED.attitude,
                     transparency = EXCLUDED.transparency, satisfied = EXCLUDED.satisfied",
            )
            .bind(complaint)
            .bind(round)
            .bind(nonzero(scores[0]))
            .bind(nonzero(scores[1]))
            .bind(nonzero(scores[2]))
            .bind(nonzero(scores[3]))
            .bind(nonzero(scores[4]))
            .bind(satisfied)
            .execute(&mut *db)
            .await?;
        }
        Fact::Closed { no_response } => {
            sqlx::query(
                "UPDATE complaints SET closed_at = LEAST(closed_at, $2),
                     no_response = no_response OR $3
                 WHERE complaint_id = $1",
            )
            .bind(complaint)
            .bind(at)
            .bind(no_response)
            .execute(&mut *db)
            .await?;
        }
        Fact::Reopened { round } => {
            sqlx::query(
                "UPDATE complaints SET reopened_to = GREATEST(reopened_to, $2)
                 WHERE complaint_id = $1",
            )
            .bind(complaint)
            .bind(round)
            .execute(&mut *db)
            .await?;
        }
        Fact::Withdrawn => ended(db, complaint, Ending::Withdrawn, at).await?,
    }
    Ok(())
}

async fn apply_work(
    rules: &Rules,
    db: &mut PgConnection,
    complaint: Uuid,
    at: Option<DateTime<Utc>>,
    work: &WorkItem,
    change: WorkChange,
) -> Result<(), Failure> {
    let mut round = batch::Work::default();
    round.add(complaint, work);
    round.fold(rules, db).await?;
    match change {
        WorkChange::Merged => ended(db, complaint, Ending::Merged, at).await?,
        WorkChange::Withdrawn => ended(db, complaint, Ending::Withdrawn, at).await?,
        WorkChange::Reclassified => {
            sqlx::query(
                "UPDATE complaints SET category = $2, nature = $3, severity = $4, urgency = $5
                 WHERE complaint_id = $1",
            )
            .bind(complaint)
            .bind(&work.category)
            .bind(&work.nature)
            .bind(severity_word(work.severity))
            .bind(urgency_word(work.urgency))
            .execute(&mut *db)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// How a complaint ended without being closed by its complainant.
#[derive(Clone, Copy)]
enum Ending {
    Withdrawn,
    Merged,
}

/// Records when the complaint ended so (the earliest time told).
async fn ended(
    db: &mut PgConnection,
    complaint: Uuid,
    how: Ending,
    at: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    let sql = match how {
        Ending::Withdrawn => {
            "UPDATE complaints SET withdrawn_at = LEAST(withdrawn_at, $2) WHERE complaint_id = $1"
        }
        Ending::Merged => {
            "UPDATE complaints SET merged_at = LEAST(merged_at, $2) WHERE complaint_id = $1"
        }
    };
    sqlx::query(sql)
        .bind(complaint)
        .bind(at)
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// The day `at` falls on in the zone of playbook `key`'s calendar.
fn day_of(rules: &Rules, key: &str, at: DateTime<Utc>) -> Option<NaiveDate> {
    let date = to_jiff(at)
        .to_zoned(rules.calendar_of(key)?.zone().clone())
        .date();
    NaiveDate::from_ymd_opt(
        i32::from(date.year()),
        u32::try_from(date.month()).ok()?,
        u32::try_from(date.day()).ok()?,
    )
}

/// Gives the rounds and approvals of `complaints` their complaint's playbook and reception,
/// where they differ.
pub(crate) async fn restamp(db: &mut PgConnection, complaints: &[Uuid]) -> Result<(), Failure> {
    sqlx::query(
        "WITH k AS (SELECT c.complaint_id, c.playbook, c.received_at
                    FROM unnest($1::uuid[]) AS u(id)
                    JOIN complaints c ON c.complaint_id = u.id),
         r AS (UPDATE rounds t SET playbook = k.playbook, received_at = k.received_at FROM k
               WHERE t.complaint_id = k.complaint_id
                 AND (t.playbook, t.received_at) IS DISTINCT FROM (k.playbook, k.received_at))
         UPDATE approvals t SET playbook = k.playbook, received_at = k.received_at FROM k
         WHERE t.complaint_id = k.complaint_id
           AND (t.playbook, t.received_at) IS DISTINCT FROM (k.playbook, k.received_at)",
    )
    .bind(complaints)
    .execute(db)
    .await?;
    Ok(())
}

/// Tells each (complaint, round) pair its deadlines met or breached and its escalations, as
/// the facts of those now stand (a round told of only by these gets its row here). The two
/// slices are the pairs' columns.
pub(crate) async fn summarise_rounds(
    db: &mut PgConnection,
    complaints: &[Uuid],
    rounds: &[i32],
) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO rounds (complaint_id, round, playbook, received_at, settled, escalations)
         SELECT n.id, n.round, c.playbook, c.received_at,
                coalesce((SELECT string_agg(d.state || ':' || d.name, E'\\n'
                                            ORDER BY d.state, d.name)
                          FROM deadlines d
                          WHERE d.complaint_id = n.id AND d.round = n.round
                            AND d.state IN ('met', 'breached')), ''),
                (SELECT count(*) FROM escalations e
                 WHERE e.complaint_id = n.id AND e.round = n.round)
         FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::int4[])) AS n(id, round)
         JOIN complaints c ON c.complaint_id = n.id
         ORDER BY n.id, n.round
         ON CONFLICT (complaint_id, round) DO UPDATE SET
             settled = EXCLUDED.settled, escalations = EXCLUDED.escalations
         WHERE (rounds.settled, rounds.escalations)
               IS DISTINCT FROM (EXCLUDED.settled, EXCLUDED.escalations)",
    )
    .bind(complaints)
    .bind(rounds)
    .execute(db)
    .await?;
    Ok(())
}

/// A duration kept on the complaint, between two times that different events tell.
#[derive(Clone, Copy)]
pub(crate) enum Measured {
    /// The first round's assignment to its acceptance: the complaint's first response.
    FirstResponse,
    /// The complaint's reception to its first round's resolution.
    Resolution,
}

impl Measured {
    /// Both ends, the playbook and the durations stored, of the complaints bound as `$1`
    /// (joined from `unnest`: an index probe per complaint, where `= ANY` visits every
    /// version of every row a burst has rewritten).
    fn read(self) -> &'static str {
        match self {
            Measured::FirstResponse => {
                "SELECT c.complaint_id, r.assigned_at, r.accepted_at, c.playbook,
                        c.first_response_ms, c.first_response_business_ms
                 FROM unnest($1::uuid[]) AS u(id)
                 JOIN complaints c ON c.complaint_id = u.id
                 LEFT JOIN rounds r ON r.complaint_id = c.complaint_id AND r.round = 1"
            }
            Measured::Resolution => {
                "SELECT c.complaint_id, c.received_at, r.resolved_at, c.playbook,
                        c.resolution_ms, c.resolution_business_ms
                 FROM unnest($1::uuid[]) AS u(id)
                 JOIN complaints c ON c.complaint_id = u.id
                 LEFT JOIN rounds r ON r.complaint_id = c.complaint_id AND r.round = 1"
            }
        }
    }

    /// Stores the durations, calendar and business, of the complaints in `$1`.
    fn write(self) -> &'static str {
        match self {
            Measured::FirstResponse => {
                "UPDATE complaints c SET first_response_ms = u.ms,
                     first_response_business_ms = u.business_ms
                 FROM unnest($1::uuid[], $2::int8[], $3::int8[]) AS u(id, ms, business_ms)
                 WHERE c.complaint_id = u.id"
            }
            Measured::Resolution => {
                "UPDATE complaints c SET resolution_ms = u.ms,
                     resolution_business_ms = u.business_ms
                 FROM unnest($1::uuid[], $2::int8[], $3::int8[]) AS u(id, ms, business_ms)
                 WHERE c.complaint_id = u.id"
            }
        }
    }
}

/// Calendar and business milliseconds between two ends, when both are known.
fn durations(
    rules: &Rules,
    playbook: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> (Option<i64>, Option<i64>) {
    match (from, to) {
        (Some(from), Some(to)) => {
            let m = measure(rules.calendar_of(playbook), from, to);
            (Some(m.ms), m.business_ms)
        }
        _ => (None, None),
    }
}

/// Measures `what` of `complaints` from the ends the facts hold now, and stores it where
/// that changed it: one read and at most one write for all of them.
pub(crate) async fn remeasure(
    rules: &Rules,
    db: &mut PgConnection,
    what: Measured,
    complaints: &[Uuid],
) -> Result<(), Failure> {
    let mut complaints = complaints.to_vec();
    complaints.sort_unstable();
    complaints.dedup();
    if complaints.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query(what.read())
        .bind(&complaints)
        .fetch_all(&mut *db)
        .await?;
    let (mut ids, mut ms, mut business_ms) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let measured = durations(rules, row.get(3), row.get(1), row.get(2));
        let stored: (Option<i64>, Option<i64>) = (row.get(4), row.get(5));
        if measured != stored {
            ids.push(row.get::<Uuid, _>(0));
            ms.push(measured.0);
            business_ms.push(measured.1);
        }
    }
    if !ids.is_empty() {
        sqlx::query(what.write())
            .bind(&ids)
            .bind(&ms)
            .bind(&business_ms)
            .execute(db)
            .await?;
    }
    Ok(())
}

/// Measures an approval's turnaround (asked to decided) from the ends the facts hold now,
/// and stores it when that changed it.
async fn remeasure_turnaround(
    rules: &Rules,
    db: &mut PgConnection,
    approval_id: &str,
) -> Result<(), Failure> {
    let Some(row) = sqlx::query(
        "SELECT a.asked_at, a.decided_at, c.playbook, a.turnaround_ms, a.turnaround_business_ms
         FROM approvals a JOIN complaints c USING (complaint_id)
         WHERE a.approval_id = $1",
    )
    .bind(approval_id)
    .fetch_optional(&mut *db)
    .await?
    else {
        return Ok(());
    };
    let measured = durations(rules, row.get(2), row.get(0), row.get(1));
    let stored: (Option<i64>, Option<i64>) = (row.get(3), row.get(4));
    if measured != stored {
        sqlx::query(
            "UPDATE approvals SET turnaround_ms = $2, turnaround_business_ms = $3
             WHERE approval_id = $1",
        )
        .bind(approval_id)
        .bind(measured.0)
        .bind(measured.1)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// Measures the durations of the facts recorded before they were kept (listed in
/// `unmeasured` by the migration that added them), a batch per transaction; returns how
/// many facts it measured.
pub async fn measure_recorded(pool: &PgPool, rules: &Rules) -> Result<u64, Failure> {
    let mut measured = 0;
    loop {
        let mut tx = pool.begin().await?;
        let batch: Vec<(String, String)> = sqlx::query_as(
            "DELETE FROM unmeasured WHERE (kind, key) IN
                 (SELECT kind, key FROM unmeasured LIMIT 500 FOR UPDATE SKIP LOCKED)
             RETURNING kind, key",
        )
        .fetch_all(&mut *tx)
        .await?;
        if batch.is_empty() {
            return Ok(measured);
        }
        for (kind, key) in &batch {
            match (kind.as_str(), key.parse::<Uuid>()) {
                ("complaint", Ok(complaint)) => {
                    let told: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
                        "SELECT playbook, received_at FROM complaints WHERE complaint_id = $1",
                    )
                    .bind(complaint)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((playbook, Some(at))) = told {
                        sqlx::query(
                            "UPDATE complaints SET received_day = $2 WHERE complaint_id = $1",
                        )
                        .bind(complaint)
                        .bind(day_of(rules, &playbook, at))
                        .execute(&mut *tx)
                        .await?;
                    }
                    remeasure(rules, &mut tx, Measured::FirstResponse, &[complaint]).await?;
                    remeasure(rules, &mut tx, Measured::Resolution, &[complaint]).await?;
                }
                ("approval", _) => {
                    remeasure_turnaround(rules, &mut tx, key).await?;
                }
                _ => {}
            }
        }
        tx.commit().await?;
        measured += batch.len() as u64;
    }
}
