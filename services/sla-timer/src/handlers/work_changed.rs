//! `WorkChanged`: arms a round's deadlines the first time the round is seen with its clock
//! start, and settles them as the work reaches the states they wait for.
//!
//! The event's work item, not its subject, decides: "state ≥ X in round r" means X happened
//! in round r, so missed, repeated or reordered events of a round reach the same deadlines.
//! An event after ASSIGNED carries the round's `assigned_at` and arms the round as well as
//! an ASSIGNED one would; an event without it is remembered in `progress` until the round
//! can be armed, which then creates its deadlines already settled.

use chrono::{DateTime, Utc};
use redress_platform::Unit;
use redress_platform::envelope::follow_up;
use redress_platform::events::{Event, Failure, Parsed};
use redress_playbook::{Severity, Step, Urgency};
use redress_proto::time::opt_to_chrono;
use redress_proto::types::WorkId;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    DeadlineState, DeadlinesArmed, WorkChange, WorkChanged, WorkItem, WorkState,
};
use sqlx::Row;
use uuid::Uuid;

use super::{COLUMNS, StoredDeadline, state_name};
use crate::domain::deadline::{self, Clock, Planned, Progress, settle};
use crate::{IDENT, SlaTimer};

/// What one work event tells of its round, read before any transaction.
pub struct Round {
    work: WorkItem,
    work_id: WorkId,
    round: i32,
    complaint_id: Uuid,
    playbook: String,
    playbook_version: String,
    warn_at_percent: Option<u32>,
    /// What this event tells of the round.
    progress: Progress,
    /// The round's deadlines that start at assignment, when the event says when that was.
    plan: Option<(DateTime<Utc>, Vec<Planned>)>,
    /// Urgent work that arrived outside working hours: who is paged, and when it arrived.
    page: Option<(String, DateTime<Utc>, DateTime<Utc>)>,
    /// The round's policies whose clocks start at another step: each is armed once the
    /// round is known to have taken that step.
    chained: Vec<redress_playbook::DeadlinePolicy>,
    /// The complaint ended unresolved (withdrawn, or merged into another): what is still
    /// open is cancelled, not met.
    ended: bool,
    /// A committed completion date: when it falls due, and the day as committed.
    committed: Option<(DateTime<Utc>, String)>,
    /// The playbook's business calendar.
    calendar: String,
    /// The round's evidence waits as this event tells them.
    waits: Vec<Wait>,
    /// The playbook's rules for evidence requests.
    evidence: redress_playbook::Evidence,
    /// The round's open deadlines are planned again from `plan`: the classification was
    /// corrected, or a transfer restarts the clocks.
    replan: bool,
    /// When the complainant was told how the matter stands (a progress report, a committed
    /// date), which meets deadlines met by progress.
    reported_at: Option<DateTime<Utc>>,
}

/// When a round's clock started, and its deadlines from then.
type Plan = (DateTime<Utc>, Vec<Planned>);

/// One evidence wait as an event tells it: the request's number, when it was asked for,
/// when the wait ended, and whether the complainant supplied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wait {
    seq: i32,
    requested_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    supplied: bool,
}

pub fn parse(sla: &SlaTimer, event: &Event, change: &WorkChanged) -> Parsed<Round> {
    let Some(work) = &change.work else {
        return Parsed::Reject("WorkChanged without a work item".into());
    };
    let state = work.state();
    if state == WorkState::Unspecified {
        return Parsed::Reject(format!("work item {:?} without a state", work.work_id));
    }
    let work_id = match WorkId::parse(&work.work_id) {
        Ok(id) => id,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject(format!(
            "complaint id {:?} is not a UUID",
            event.envelope.complaint_id
        ));
    };
    let playbook = match sla.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let Ok(round) = i32::try_from(work.round.max(1)) else {
        return Parsed::Reject(format!("round {} is out of range", work.round));
    };
    let occurred_at = event.occurred_at().unwrap_or_else(|| sla.ctx.clock.now());
    // Withdrawn or merged into another ticket: nothing more will be done on this work.
    let ended = matches!(change.change(), WorkChange::Withdrawn | WorkChange::Merged);
    let replan = change.change() == WorkChange::Reclassified
        || (change.transfer.is_some()
            && playbook.routing.transfer_deadlines == redress_playbook::TransferDeadlines::Restart);
    let committed = if change.change() == WorkChange::Committed {
        match deadline::committed_due(playbook, &sla.calendars(), &work.committed_on) {
            Ok(due) => Some((due, work.committed_on.trim().to_string())),
            Err(e) => return Parsed::Reject(format!("committed date: {e}")),
        }
    } else {
        None
    };
    // The round's clock starts at assignment: the work item's own record of it, else the
    // ASSIGNED event's time. Any other event without it cannot start the clock.
    let start =
        opt_to_chrono(&work.assigned_at).or((state == WorkState::Assigned).then_some(occurred_at));
    let (severity, urgency) = grade(sla, work);
    let grade = redress_playbook::Grade {
        severity,
        urgency,
        nature: &work.nature,
        category: &work.category,
        channel: &work.channel,
    };
    // Urgent work outside working hours pages whoever is on call, and its clocks start at
    // the next opening (after-sales, 003).
    let page = start.and_then(|s| off_hours(sla, playbook, urgency, s));
    let start = match page {
        Some((_, _, opening)) => Some(opening),
        None => start,
    };
    let plan = match start {
        None => None,
        Some(start) => match deadline::plan(playbook, &sla.calendars(), grade, start) {
            Ok(planned) => Some((start, planned)),
            Err(e) => return Parsed::Reject(format!("computing deadlines: {e}")),
        },
    };
    let chained = playbook
        .sla
        .applicable(grade)
        .into_iter()
        .filter(|p| p.starts != Step::Assigned)
        .cloned()
        .collect();
    let reported_at = matches!(
        change.change(),
        WorkChange::ProgressReported | WorkChange::Committed
    )
    .then_some(occurred_at);
    Parsed::Handle(Round {
        reported_at,
        work: work.clone(),
        work_id,
        round,
        complaint_id,
        playbook: playbook.key.clone(),
        playbook_version: playbook.version.clone(),
        warn_at_percent: playbook.sla.warn_at_percent,
        // Ending closes the work without reaching anything: only the steps the work item
        // records as taken count.
        progress: if ended {
            progress_of(
                work,
                WorkState::Unspecified,
                WorkChange::Unspecified,
                occurred_at,
            )
        } else {
            let change = match change.change() {
                WorkChange::Assigned if change.transfer.is_some() => None,
                c => Some(c),
            };
            let mut p = progress_of(
                work,
                state,
                change.unwrap_or(WorkChange::Unspecified),
                occurred_at,
            );
            if change.is_none() {
                p.record(Step::Transferred, occurred_at);
            }
            p
        },
        plan,
        page,
        chained,
        ended,
        committed,
        calendar: playbook.sla.calendar.clone(),
        waits: work
            .evidence
            .iter()
            .filter_map(|p| {
                Some(Wait {
                    seq: i32::try_from(p.seq).ok()?,
                    requested_at: opt_to_chrono(&p.requested_at)?,
                    ended_at: opt_to_chrono(&p.ended_at),
                    supplied: p.supplied,
                })
            })
            .collect(),
        evidence: playbook.evidence.clone(),
        replan,
    })
}

/// Whom to page, when the work arrived and when the office opens, for urgent work the
/// playbook's on-call rota covers that arrived at `at` outside working hours.
fn off_hours(
    sla: &SlaTimer,
    playbook: &redress_playbook::Playbook,
    urgency: Urgency,
    at: DateTime<Utc>,
) -> Option<(String, DateTime<Utc>, DateTime<Utc>)> {
    let on_call = playbook.sla.on_call.as_ref()?;
    if !on_call.urgencies.contains(&urgency) {
        return None;
    }
    let calendars = sla.calendars();
    let calendar = calendars.get(&playbook.sla.calendar).ok()?;
    let opening = crate::domain::ladder::next_opening(calendar, at).ok()?;
    if opening <= at {
        return None;
    }
    let local = deadline::to_jiff(at)
        .ok()?
        .to_zoned(calendar.zone().clone())
        .date();
    let who = on_call.on_duty(local)?;
    Some((who.to_string(), at, opening))
}

/// Severity and urgency pick the policies; work that lacks them (a contract breach upstream)
/// still gets deadlines, those of general, normal work, rather than none.
fn grade(sla: &SlaTimer, work: &WorkItem) -> (Severity, Urgency) {
    let severity = Severity::from_proto(work.severity());
    let urgency = Urgency::from_proto(work.urgency());
    if severity.is_none() || urgency.is_none() {
        tracing::warn!(work_id = %work.work_id, "work item without severity or urgency");
        sla.ctx.metrics.incr("sla-timer_contract_violations_total");
    }
    (
        severity.unwrap_or(Severity::General),
        urgency.unwrap_or(Urgency::Normal),
    )
}

/// What a batch tells of one round: its events' progress folded, the first plan, and the
/// event whose trace the round's own events continue.
struct Told<'a> {
    event: &'a Event,
    round: &'a Round,
    progress: Progress,
    plan: Option<&'a (DateTime<Utc>, Vec<Planned>)>,
    ended: bool,
    /// The newest committed date the batch tells, with the work version that told it.
    committed: Option<(u64, &'a (DateTime<Utc>, String))>,
    /// Every evidence wait the batch tells, each as far as any event got.
    waits: Vec<Wait>,
    /// The newest plan the batch asks the round's open deadlines to follow, by work version.
    replan: Option<(u64, &'a Plan)>,
    /// When the batch's progress reports were made.
    reports: Vec<DateTime<Utc>>,
    /// The newest work version the batch tells of the round.
    newest: u64,
}

/// Adds `more` to `waits`: a wait ended (or supplied) in any event is.
fn merge_waits(waits: &mut Vec<Wait>, more: &[Wait]) {
    for w in more {
        match waits.iter_mut().find(|x| x.seq == w.seq) {
            Some(x) => {
                x.ended_at = x.ended_at.or(w.ended_at);
                x.supplied |= w.supplied;
            }
            None => waits.push(*w),
        }
    }
}

/// A deadline armed in this batch, for the round at `round` of the batch's rounds.
struct Born {
    round: usize,
    deadline: StoredDeadline,
    started_at: DateTime<Utc>,
    warn_at: Option<DateTime<Utc>>,
    /// The policy it repeats, for a repeating deadline.
    repeat_of: Option<String>,
    /// When its first rung of the escalation ladder falls due (none: no ladder).
    ladder_at: Option<DateTime<Utc>>,
}

/// When the first rung of deadline `name`'s escalation ladder falls due.
fn first_rung(
    sla: &SlaTimer,
    r: &Round,
    name: &str,
    limit: &str,
    started: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let playbook = sla.playbooks.get(&r.playbook).ok()?;
    let first = crate::domain::ladder::of(playbook, name)
        .into_iter()
        .next()?;
    let calendars = sla.calendars();
    let calendar = calendars.get(&r.calendar).ok()?;
    crate::domain::ladder::due(calendar, &first.when, measure(r, limit), started, due).ok()
}

/// What shares of a deadline of `limit` in round `r` are counted in.
fn measure<'a>(r: &Round, limit: &'a str) -> deadline::Measure<'a> {
    deadline::Measure::new(limit, emergency(r))
}

/// Emergency work: reminders and warnings do not wait for working hours (`at_once`).
fn emergency(r: &Round) -> bool {
    r.work.urgency() == redress_proto::v1::Urgency::Emergency
}

/// When a deadline of `limit` in round `r` is warned (none: the playbook sets no warning).
fn warning(
    sla: &SlaTimer,
    r: &Round,
    limit: &str,
    started: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let pct = r.warn_at_percent?;
    let calendars = sla.calendars();
    let calendar = calendars.get(&r.calendar).ok();
    Some(deadline::share_at(
        calendar,
        measure(r, limit),
        started,
        due,
        pct,
    ))
}

/// Applies a batch of work events with a statement per step whatever its size: the rounds'
/// progress in one upsert (which also locks them, in one order), the deadlines of rounds
/// armed now in one insert, and the settling of armed deadlines in one update.
pub async fn apply_all(
    sla: &SlaTimer,
    unit: &mut Unit,
    batch: &[(&Event, &Round)],
) -> Result<(), Failure> {
    let now = sla.ctx.clock.now();
    let mut rounds: Vec<((uuid::Uuid, i32), Told<'_>)> = Vec::new();
    for (event, r) in batch {
        let key = (r.work_id.uuid(), r.round);
        match rounds.iter_mut().find(|(k, _)| *k == key) {
            Some((_, told)) => {
                told.progress.merge(&r.progress);
                told.ended |= r.ended;
                if let Some(c) = &r.committed
                    && told.committed.is_none_or(|(v, _)| v < r.work.version)
                {
                    told.committed = Some((r.work.version, c));
                }
                merge_waits(&mut told.waits, &r.waits);
                told.newest = told.newest.max(r.work.version);
                told.reports.extend(r.reported_at);
                if r.replan
                    && let Some(plan) = &r.plan
                    && told.replan.is_none_or(|(v, _)| v < r.work.version)
                {
                    told.replan = Some((r.work.version, plan));
                }
                if told.plan.is_none() && r.plan.is_some() {
                    told.plan = r.plan.as_ref();
                    told.event = event;
                    told.round = r;
                }
            }
            None => rounds.push((
                key,
                Told {
                    event,
                    round: r,
                    progress: r.progress.clone(),
                    plan: r.plan.as_ref(),
                    ended: r.ended,
                    committed: r.committed.as_ref().map(|c| (r.work.version, c)),
                    waits: r.waits.clone(),
                    reports: r.reported_at.into_iter().collect(),
                    newest: r.work.version,
                    replan: if r.replan {
                        r.plan.as_ref().map(|p| (r.work.version, p))
                    } else {
                        None
                    },
                },
            )),
        }
    }
    // One lock order for every unit: concurrent batches wait instead of deadlocking.
    rounds.sort_by_key(|(k, _)| *k);
    let work_ids: Vec<uuid::Uuid> = rounds.iter().map(|(k, _)| k.0).collect();
    let round_nos: Vec<i32> = rounds.iter().map(|(k, _)| k.1).collect();
    // Who took the work on, as the newest event of the round that names someone tells.
    let handlers: Vec<Option<String>> = rounds
        .iter()
        .map(|(_, t)| {
            let w = &t.round.work;
            (!w.accepted_by.is_empty()).then(|| w.accepted_by.clone())
        })
        .collect();
    // The department of each round's newest work version in the batch.
    let (departments, department_versions): (Vec<&str>, Vec<i64>) = rounds
        .iter()
        .map(|(_, t)| {
            batch
                .iter()
                .filter(|(_, r)| (r.work_id, r.round) == (t.round.work_id, t.round.round))
                .map(|(_, r)| &r.work)
                .max_by_key(|w| w.version)
                .map(|w| {
                    (
                        w.department.as_str(),
                        i64::try_from(w.version).unwrap_or(i64::MAX),
                    )
                })
                .unwrap_or(("", 0))
        })
        .unzip();
    let stored = sqlx::query(
        "INSERT INTO progress (work_id, round, handler, department, department_version)
         SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::text[], $5::int8[])
         ON CONFLICT (work_id, round) DO UPDATE SET
             handler = CASE WHEN EXCLUDED.department_version > progress.department_version
                                 AND EXCLUDED.department IS DISTINCT FROM progress.department
                            THEN EXCLUDED.handler
                            ELSE COALESCE(EXCLUDED.handler, progress.handler) END,
             department = CASE WHEN EXCLUDED.department_version > progress.department_version
                               THEN EXCLUDED.department ELSE progress.department END,
             department_version = GREATEST(progress.department_version,
                                           EXCLUDED.department_version)
         RETURNING work_id, round, armed_at",
    )
    .bind(&work_ids)
    .bind(&round_nos)
    .bind(&handlers)
    .bind(&departments)
    .bind(&department_versions)
    .fetch_all(unit.db())
    .await?;
    // Open deadlines follow the work to the department that holds it now (a transfer, a
    // correction), whether or not their clocks restart.
    sqlx::query(
        "UPDATE deadlines d SET department = p.department
         FROM progress p
         WHERE (p.work_id, p.round) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))
           AND d.work_id = p.work_id AND d.round = p.round
           AND p.department IS NOT NULL AND p.department <> ''
           AND d.department <> p.department
           AND d.state IN ('armed', 'paused', 'breached')",
    )
    .bind(&work_ids)
    .bind(&round_nos)
    .execute(unit.db())
    .await?;
    // Every step the batch tells, folded into what was known: the earliest time wins.
    let mut step_ids: Vec<Uuid> = Vec::new();
    let mut step_rounds: Vec<i32> = Vec::new();
    let mut step_names: Vec<&str> = Vec::new();
    let mut step_at: Vec<DateTime<Utc>> = Vec::new();
    for (key, told) in &rounds {
        for (step, at) in told.progress.iter() {
            step_ids.push(key.0);
            step_rounds.push(key.1);
            step_names.push(step.as_str());
            step_at.push(at);
        }
    }
    if !step_ids.is_empty() {
        sqlx::query(
            "INSERT INTO steps (work_id, round, step, at)
             SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[])
             ON CONFLICT (work_id, round, step) DO UPDATE SET at = LEAST(steps.at, EXCLUDED.at)",
        )
        .bind(&step_ids)
        .bind(&step_rounds)
        .bind(&step_names)
        .bind(&step_at)
        .execute(unit.db())
        .await?;
    }
    let known = sqlx::query(
        "SELECT work_id, round, step, at FROM steps
         WHERE (work_id, round) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))",
    )
    .bind(&work_ids)
    .bind(&round_nos)
    .fetch_all(unit.db())
    .await?;
    let mut progress_of: std::collections::HashMap<(uuid::Uuid, i32), (Progress, bool)> =
        std::collections::HashMap::with_capacity(stored.len());
    for row in &stored {
        progress_of.insert(
            (row.get("work_id"), row.get("round")),
            (
                Progress::default(),
                row.get::<Option<DateTime<Utc>>, _>("armed_at").is_some(),
            ),
        );
    }
    for row in &known {
        let Some(step) = Step::parse(row.get("step")) else {
            continue;
        };
        if let Some((p, _)) = progress_of.get_mut(&(row.get("work_id"), row.get("round"))) {
            p.record(step, row.get("at"));
        }
    }

    // Rounds armed now: their deadlines are born, some already settled.
    let mut born: Vec<Born> = Vec::new();
    let mut arming: Vec<usize> = Vec::new();
    // Rounds armed before: their armed deadlines may settle.
    let mut settling: Vec<usize> = Vec::new();
    for (i, (key, told)) in rounds.iter().enumerate() {
        let (progress, armed) = &progress_of[key];
        match (armed, told.plan) {
            (false, Some((start, planned))) => {
                arming.push(i);
                let r = told.round;
                if let Some((who, arrived, _)) = &r.page {
                    let envelope = follow_up(
                        IDENT.name,
                        &told.event.envelope,
                        now,
                        Payload::DeadlineEscalation(redress_proto::v1::LadderStep {
                            deadline: None,
                            rung: 0,
                            action: "page".into(),
                            to: who.clone(),
                            at: "off hours".into(),
                            planned_at: redress_proto::time::ts(*arrived),
                            department: r.work.department.clone(),
                        }),
                    );
                    told.event.span.in_scope(|| unit.emit(envelope));
                    unit.count("sla_paged_total", 1);
                }
                for p in planned {
                    let d = StoredDeadline {
                        id: Uuid::now_v7(),
                        work_id: r.work_id,
                        round: r.round,
                        name: p.name.clone(),
                        complaint_id: r.complaint_id,
                        correlation_id: told.event.envelope.correlation_id.clone(),
                        playbook: r.playbook.clone(),
                        ticket: r.work.ticket.clone(),
                        department: r.work.department.clone(),
                        limit_text: p.limit.clone(),
                        calendar: p.calendar.clone(),
                        met_by: p.met_by.as_str().to_string(),
                        due_at: p.due_at,
                        state: DeadlineState::Armed,
                        settled_at: None,
                        remaining_secs: None,
                    };
                    let d = match settle(p.due_at, progress.reached_at(p.met_by)) {
                        Some(s) => d.settled(s),
                        None => d,
                    };
                    let warn_at = warning(sla, r, &p.limit, *start, p.due_at);
                    born.push(Born {
                        round: i,
                        ladder_at: first_rung(sla, r, &p.name, &p.limit, *start, p.due_at),
                        deadline: d,
                        started_at: *start,
                        warn_at,
                        repeat_of: p.repeat.then(|| p.name.clone()),
                    });
                }
            }
            (false, None) | (true, _) => settling.push(i),
        }
        born.extend(chained(sla, i, told, progress)?);
    }
    if !born.is_empty() {
        let inserted = insert_all(unit, &born, &rounds, now).await?;
        // Known before (an event read again, a step told twice): armed once, already told.
        born.retain(|b| inserted.contains(&b.deadline.id));
    }
    if !arming.is_empty() {
        let ids: Vec<uuid::Uuid> = arming.iter().map(|&i| rounds[i].0.0).collect();
        let nos: Vec<i32> = arming.iter().map(|&i| rounds[i].0.1).collect();
        sqlx::query(
            "UPDATE progress p SET armed_at = $3
             FROM unnest($1::uuid[], $2::int4[]) AS a(work_id, round)
             WHERE p.work_id = a.work_id AND p.round = a.round",
        )
        .bind(&ids)
        .bind(&nos)
        .bind(now)
        .execute(unit.db())
        .await?;
    }
    apply_replans(sla, unit, &rounds, now).await?;
    apply_waits(sla, unit, &rounds, now).await?;
    apply_reports(sla, unit, &rounds, &progress_of, now).await?;
    let mut settled: Vec<(usize, StoredDeadline)> = Vec::new();
    if !settling.is_empty() {
        let ids: Vec<uuid::Uuid> = settling.iter().map(|&i| rounds[i].0.0).collect();
        let nos: Vec<i32> = settling.iter().map(|&i| rounds[i].0.1).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deadlines
             WHERE (work_id, round) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))
               AND state = 'armed'
             ORDER BY work_id, round, due_at, name FOR UPDATE"
        ))
        .bind(&ids)
        .bind(&nos)
        .fetch_all(unit.db())
        .await?;
        for row in &rows {
            let d = StoredDeadline::from_row(row);
            let key = (d.work_id.uuid(), d.round);
            let (progress, _) = &progress_of[&key];
            let Some(met_by) = Step::parse(&d.met_by) else {
                continue;
            };
            let Some(s) = settle(d.due_at, progress.reached_at(met_by)) else {
                continue;
            };
            let i = rounds
                .binary_search_by_key(&key, |(k, _)| *k)
                .expect("selected for one of the rounds");
            settled.push((i, d.settled(s)));
        }
        if !settled.is_empty() {
            let ids: Vec<Uuid> = settled.iter().map(|(_, d)| d.id).collect();
            let states: Vec<&str> = settled.iter().map(|(_, d)| state_name(d.state)).collect();
            let at: Vec<Option<DateTime<Utc>>> =
                settled.iter().map(|(_, d)| d.settled_at).collect();
            sqlx::query(
                "UPDATE deadlines d SET state = s.state, settled_at = s.at
                 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS s(id, state, at)
                 WHERE d.id = s.id",
            )
            .bind(&ids)
            .bind(&states)
            .bind(&at)
            .execute(unit.db())
            .await?;
        }
    }

    // A breach decided while the step that met the deadline in time was still on its way
    // (a lagging consumer) does not stand: the deadline is met after all, and said so.
    if !settling.is_empty() {
        let ids: Vec<uuid::Uuid> = settling.iter().map(|&i| rounds[i].0.0).collect();
        let nos: Vec<i32> = settling.iter().map(|&i| rounds[i].0.1).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deadlines
             WHERE (work_id, round) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))
               AND state = 'breached' AND met_by NOT IN ('evidence', 'progress')
             ORDER BY work_id, round, name FOR UPDATE"
        ))
        .bind(&ids)
        .bind(&nos)
        .fetch_all(unit.db())
        .await?;
        for row in &rows {
            let d = StoredDeadline::from_row(row);
            let key = (d.work_id.uuid(), d.round);
            let Some(met_by) = Step::parse(&d.met_by) else {
                continue;
            };
            let Some(at) = progress_of[&key].0.reached_at(met_by) else {
                continue;
            };
            if at > d.due_at {
                continue;
            }
            let mut d = d;
            d.state = DeadlineState::Met;
            d.settled_at = Some(at);
            sqlx::query(
                "UPDATE deadlines SET state = 'met', settled_at = $2, retracted_at = $3
                 WHERE id = $1",
            )
            .bind(d.id)
            .bind(at)
            .bind(now)
            .execute(unit.db())
            .await?;
            unit.count("sla_breaches_retracted_total", 1);
            tracing::warn!(deadline = %d.name, "a breach decided too early is retracted");
            let i = rounds
                .binary_search_by_key(&key, |(k, _)| *k)
                .expect("selected for one of the rounds");
            let told = &rounds[i].1;
            let envelope = follow_up(
                IDENT.name,
                &told.event.envelope,
                now,
                Payload::DeadlineMet(redress_proto::v1::DeadlineSettled {
                    deadline: Some(d.to_proto()),
                    retracts_breach: true,
                }),
            );
            told.event.span.in_scope(|| unit.emit(envelope));
        }
    }

    // Ended rounds: what is still open will never be met or breached.
    let closing: Vec<usize> = (0..rounds.len()).filter(|&i| rounds[i].1.ended).collect();
    if !closing.is_empty() {
        let ids: Vec<uuid::Uuid> = closing.iter().map(|&i| rounds[i].0.0).collect();
        let nos: Vec<i32> = closing.iter().map(|&i| rounds[i].0.1).collect();
        let cancelled = sqlx::query(
            "UPDATE deadlines SET state = $3, settled_at = $4
             WHERE (work_id, round) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))
               AND state IN ('armed', 'paused')",
        )
        .bind(&ids)
        .bind(&nos)
        .bind(state_name(DeadlineState::Cancelled))
        .bind(now)
        .execute(unit.db())
        .await?
        .rows_affected();
        unit.count("sla_cancelled_total", cancelled);
    }

    // Resolved rounds: a clock waiting for a step the work went without (an investigation, a
    // proposal, evidence that never came) can never be met now. It is cancelled and said so,
    // rather than breached and escalated about work that is done.
    let resolved: Vec<usize> = (0..rounds.len())
        .filter(|&i| !rounds[i].1.ended && progress_of[&rounds[i].0].0.at(Step::Resolved).is_some())
        .collect();
    if !resolved.is_empty() {
        let ids: Vec<uuid::Uuid> = resolved.iter().map(|&i| rounds[i].0.0).collect();
        let nos: Vec<i32> = resolved.iter().map(|&i| rounds[i].0.1).collect();
        let rows = sqlx::query(&format!(
            "UPDATE deadlines SET state = 'cancelled', settled_at = $3, ladder_at = NULL
             WHERE (work_id, round) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))
               AND state IN ('armed', 'paused')
               AND met_by NOT IN ('resolved', 'progress', 'replied', 'closed')
             RETURNING {COLUMNS}"
        ))
        .bind(&ids)
        .bind(&nos)
        .bind(now)
        .fetch_all(unit.db())
        .await?;
        unit.count("sla_cancelled_total", rows.len() as u64);
        for row in &rows {
            let d = StoredDeadline::from_row(row);
            let key = (d.work_id.uuid(), d.round);
            let i = rounds
                .binary_search_by_key(&key, |(k, _)| *k)
                .expect("updated for one of the rounds");
            let told = &rounds[i].1;
            let mut proto = d.to_proto();
            proto.moved_because = format!("the work was resolved without reaching {}", d.met_by);
            let envelope = follow_up(
                IDENT.name,
                &told.event.envelope,
                now,
                Payload::DeadlinesArmed(DeadlinesArmed {
                    deadlines: vec![proto],
                }),
            );
            told.event.span.in_scope(|| unit.emit(envelope));
        }
    }

    // Committed completion dates: a deadline of the round, met when the work is resolved; a
    // new date moves it while it is open.
    for (key, told) in &rounds {
        let Some((_, (due_at, day))) = told.committed else {
            continue;
        };
        let r = told.round;
        let (progress, _) = &progress_of[key];
        let mut d = StoredDeadline {
            id: Uuid::now_v7(),
            work_id: r.work_id,
            round: r.round,
            name: deadline::COMMITTED.to_string(),
            complaint_id: r.complaint_id,
            correlation_id: told.event.envelope.correlation_id.clone(),
            playbook: r.playbook.clone(),
            ticket: r.work.ticket.clone(),
            department: r.work.department.clone(),
            limit_text: format!("by {day} (committed)"),
            calendar: r.calendar.clone(),
            met_by: Step::Resolved.as_str().to_string(),
            due_at: *due_at,
            state: DeadlineState::Armed,
            settled_at: None,
            remaining_secs: None,
        };
        if let Some(s) = settle(d.due_at, progress.at(Step::Resolved)) {
            d = d.settled(s);
        }
        // A missed date climbs the ladder like any other deadline; a new date starts it over.
        let ladder_at = (d.state == DeadlineState::Armed)
            .then(|| first_rung(sla, r, &d.name, &d.limit_text, now, d.due_at))
            .flatten();
        let stored: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO deadlines (id, work_id, round, name, complaint_id, correlation_id,
                 playbook, playbook_version, ticket, department, limit_text, calendar, met_by,
                 started_at, due_at, state, settled_at, armed_at, ladder_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $14, $18)
             ON CONFLICT (work_id, round, name) DO UPDATE SET due_at = EXCLUDED.due_at,
                 limit_text = EXCLUDED.limit_text, state = EXCLUDED.state,
                 settled_at = EXCLUDED.settled_at, ladder_at = EXCLUDED.ladder_at,
                 ladder_next = 0
             WHERE deadlines.state = 'armed'
             RETURNING id",
        )
        .bind(d.id)
        .bind(d.work_id.uuid())
        .bind(d.round)
        .bind(&d.name)
        .bind(d.complaint_id)
        .bind(&d.correlation_id)
        .bind(&d.playbook)
        .bind(&r.playbook_version)
        .bind(&d.ticket)
        .bind(&d.department)
        .bind(&d.limit_text)
        .bind(&d.calendar)
        .bind(&d.met_by)
        .bind(now)
        .bind(d.due_at)
        .bind(state_name(d.state))
        .bind(d.settled_at)
        .bind(ladder_at)
        .fetch_optional(unit.db())
        .await?;
        // Settled before: the new date changes nothing.
        let Some(id) = stored else { continue };
        d.id = id;
        let mut payloads = vec![Payload::DeadlinesArmed(DeadlinesArmed {
            deadlines: vec![d.to_proto()],
        })];
        payloads.extend(d.settled_event());
        for payload in payloads {
            let envelope = follow_up(IDENT.name, &told.event.envelope, now, payload);
            told.event.span.in_scope(|| unit.emit(envelope));
        }
    }

    // The events, each round's in the span of the event that told it.
    for (i, (_, told)) in rounds.iter().enumerate() {
        let deadlines: Vec<&StoredDeadline> = born
            .iter()
            .filter(|b| b.round == i)
            .map(|b| &b.deadline)
            .collect();
        if deadlines.is_empty() {
            continue;
        }
        unit.count("sla_armed_total", deadlines.len() as u64);
        let envelope = follow_up(
            IDENT.name,
            &told.event.envelope,
            now,
            Payload::DeadlinesArmed(DeadlinesArmed {
                deadlines: deadlines.iter().map(|d| d.to_proto()).collect(),
            }),
        );
        told.event.span.in_scope(|| unit.emit(envelope));
    }
    // Every deadline ends with exactly one met or breached event, also when it is born
    // settled.
    let ended = born
        .iter()
        .map(|b| (b.round, &b.deadline))
        .chain(settled.iter().map(|(i, d)| (*i, d)));
    for (i, d) in ended {
        let Some(payload) = d.settled_event() else {
            continue;
        };
        unit.count(
            match d.state {
                DeadlineState::Breached => "sla_breached_total",
                _ => "sla_met_total",
            },
            1,
        );
        let told = &rounds[i].1;
        let envelope = follow_up(IDENT.name, &told.event.envelope, now, payload);
        told.event.span.in_scope(|| unit.emit(envelope));
    }
    Ok(())
}

/// The deadlines of one round whose clocks start at a step other than assignment, for each
/// step the round is known to have taken: due from that step's time, born met or breached
/// when the step that meets it is known too. Nothing new is armed in a round that has ended.
fn chained(
    sla: &SlaTimer,
    i: usize,
    told: &Told<'_>,
    progress: &Progress,
) -> Result<Vec<Born>, Failure> {
    let r = told.round;
    if r.chained.is_empty() {
        return Ok(Vec::new());
    }
    let calendars = sla.calendars();
    let calendar = calendars
        .get(&r.calendar)
        .map_err(|e| Failure::Reject(format!("calendar {:?}: {e}", r.calendar)))?;
    let ended = told.ended || progress.at(Step::Closed).is_some();
    let mut born = Vec::new();
    for policy in &r.chained {
        let Some(start) = progress.at(policy.starts) else {
            continue;
        };
        let due = deadline::due_after(calendar, &policy.limit, start)
            .map_err(|e| Failure::Reject(format!("deadline {}: {e}", policy.name)))?;
        let d = StoredDeadline {
            id: Uuid::now_v7(),
            work_id: r.work_id,
            round: r.round,
            name: policy.name.clone(),
            complaint_id: r.complaint_id,
            correlation_id: told.event.envelope.correlation_id.clone(),
            playbook: r.playbook.clone(),
            ticket: r.work.ticket.clone(),
            department: r.work.department.clone(),
            limit_text: policy.limit.clone(),
            calendar: r.calendar.clone(),
            met_by: policy.met_by.as_str().to_string(),
            due_at: due,
            state: DeadlineState::Armed,
            settled_at: None,
            remaining_secs: None,
        };
        let d = match settle(due, progress.reached_at(policy.met_by)) {
            Some(s) => d.settled(s),
            None if ended => continue,
            None => d,
        };
        let warn_at = warning(sla, r, &policy.limit, start, due);
        born.push(Born {
            round: i,
            ladder_at: first_rung(sla, r, &policy.name, &policy.limit, start, due),
            deadline: d,
            started_at: start,
            warn_at,
            repeat_of: policy.repeat.then(|| policy.name.clone()),
        });
    }
    Ok(born)
}

/// The deadlines born in this batch, in one statement; returns the ids of those stored (one
/// the round has already keeps its first). The rounds' progress rows are locked, so no other
/// unit arms them at the same time; the key still guards the rule.
async fn insert_all(
    unit: &mut Unit,
    born: &[Born],
    rounds: &[((uuid::Uuid, i32), Told<'_>)],
    now: DateTime<Utc>,
) -> sqlx::Result<std::collections::HashSet<Uuid>> {
    let col = |f: &dyn Fn(&StoredDeadline) -> String| -> Vec<String> {
        born.iter().map(|b| f(&b.deadline)).collect()
    };
    let ids: Vec<Uuid> = born.iter().map(|b| b.deadline.id).collect();
    let work_ids: Vec<uuid::Uuid> = born.iter().map(|b| b.deadline.work_id.uuid()).collect();
    let round_nos: Vec<i32> = born.iter().map(|b| b.deadline.round).collect();
    let complaint_ids: Vec<Uuid> = born.iter().map(|b| b.deadline.complaint_id).collect();
    let versions: Vec<String> = born
        .iter()
        .map(|b| rounds[b.round].1.round.playbook_version.clone())
        .collect();
    let started: Vec<DateTime<Utc>> = born.iter().map(|b| b.started_at).collect();
    let due: Vec<DateTime<Utc>> = born.iter().map(|b| b.deadline.due_at).collect();
    let states: Vec<&str> = born.iter().map(|b| state_name(b.deadline.state)).collect();
    let settled: Vec<Option<DateTime<Utc>>> = born.iter().map(|b| b.deadline.settled_at).collect();
    let warn: Vec<Option<DateTime<Utc>>> = born.iter().map(|b| b.warn_at).collect();
    sqlx::query(
        "INSERT INTO deadlines (id, work_id, round, name, complaint_id, correlation_id, playbook,
             playbook_version, ticket, department, limit_text, calendar, met_by, started_at,
             due_at, state, settled_at, warn_at, repeat_of, ladder_at, at_once, armed_at)
         SELECT d.*, $20 FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::uuid[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
             $12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::text[],
             $17::timestamptz[], $18::timestamptz[], $19::text[], $21::timestamptz[],
             $22::bool[]) AS d
         ON CONFLICT (work_id, round, name) DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .bind(&work_ids)
    .bind(&round_nos)
    .bind(col(&|d| d.name.clone()))
    .bind(&complaint_ids)
    .bind(col(&|d| d.correlation_id.clone()))
    .bind(col(&|d| d.playbook.clone()))
    .bind(&versions)
    .bind(col(&|d| d.ticket.clone()))
    .bind(col(&|d| d.department.clone()))
    .bind(col(&|d| d.limit_text.clone()))
    .bind(col(&|d| d.calendar.clone()))
    .bind(col(&|d| d.met_by.clone()))
    .bind(&started)
    .bind(&due)
    .bind(&states)
    .bind(&settled)
    .bind(&warn)
    .bind(born.iter().map(|b| b.repeat_of.clone()).collect::<Vec<_>>())
    .bind(now)
    .bind(born.iter().map(|b| b.ladder_at).collect::<Vec<_>>())
    .bind(
        born.iter()
            .map(|b| emergency(rounds[b.round].1.round))
            .collect::<Vec<_>>(),
    )
    .fetch_all(unit.db())
    .await
    .map(|rows| rows.iter().map(|r| r.get("id")).collect())
}

/// What the event tells of the round's progress: the exact times routing recorded for each
/// step; only for a producer that does not record them, the event's own time for every step
/// its state implies. Exact times keep the outcome independent of the order events arrive in
/// (a late "proposed" must not make an in-time acceptance look late). Steps no state implies
/// (an investigation entry, a proposal, an approval, a report) are told by the event of that
/// change, at its time.
fn progress_of(
    work: &WorkItem,
    state: WorkState,
    change: WorkChange,
    occurred_at: DateTime<Utc>,
) -> Progress {
    let inferred = Progress::from_event(state, occurred_at);
    let mut p = Progress::default();
    let assigned =
        opt_to_chrono(&work.assigned_at).or((state == WorkState::Assigned).then_some(occurred_at));
    // A reopened round is received again when the complainant's dissatisfaction reopens it,
    // and assigned at once.
    let received = if work.round <= 1 {
        opt_to_chrono(&work.received_at)
    } else {
        assigned
    };
    let exact = [
        (Step::Received, received),
        (Step::Assigned, assigned),
        (Step::Accepted, opt_to_chrono(&work.accepted_at)),
        (Step::Replied, opt_to_chrono(&work.replied_at)),
        (Step::Resolved, opt_to_chrono(&work.resolved_at)),
        (
            Step::EvidenceRequested,
            work.evidence
                .iter()
                .filter_map(|w| opt_to_chrono(&w.requested_at))
                .min(),
        ),
        (
            Step::EvidenceSupplied,
            work.evidence
                .iter()
                .filter(|w| w.supplied)
                .filter_map(|w| opt_to_chrono(&w.ended_at))
                .min(),
        ),
    ];
    for (step, at) in exact {
        if let Some(at) = at.or(if step == Step::Assigned {
            None
        } else {
            inferred.at(step)
        }) {
            p.record(step, at);
        }
    }
    if let Some(at) = inferred.at(Step::Closed) {
        p.record(Step::Closed, at);
    }
    let told = match change {
        WorkChange::Investigated => Some(Step::Investigated),
        WorkChange::Proposed => Some(Step::Proposed),
        WorkChange::Approved => Some(Step::Approved),
        WorkChange::Committed => Some(Step::Committed),
        WorkChange::ProgressReported => Some(Step::Progress),
        _ => None,
    };
    if let Some(step) = told {
        p.record(step, occurred_at);
    }
    p
}

/// The evidence waits of the batch's rounds: stored (each as far as any event told it), the
/// deadlines of the requests themselves (`evidence_request_<n>`, settled when made;
/// `evidence_answer_<n>`, met by the evidence, cancelled when the department stopped
/// waiting), and the playbook's waiting clocks stopped or resumed with the time they had
/// left. Everything is computed again from all the round's waits, so events in any order or
/// twice end the same.
async fn apply_waits(
    sla: &SlaTimer,
    unit: &mut Unit,
    rounds: &[((Uuid, i32), Told<'_>)],
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    for ((work_id, round), told) in rounds {
        if told.waits.is_empty() {
            continue;
        }
        let r = told.round;
        for w in &told.waits {
            sqlx::query(
                "INSERT INTO pauses (work_id, round, seq, requested_at, ended_at, supplied)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (work_id, round, seq) DO UPDATE SET
                     ended_at = COALESCE(pauses.ended_at, EXCLUDED.ended_at),
                     supplied = pauses.supplied OR EXCLUDED.supplied",
            )
            .bind(work_id)
            .bind(round)
            .bind(w.seq)
            .bind(w.requested_at)
            .bind(w.ended_at)
            .bind(w.supplied)
            .execute(unit.db())
            .await?;
        }
        let waits: Vec<Wait> = sqlx::query(
            "SELECT seq, requested_at, ended_at, supplied FROM pauses
             WHERE work_id = $1 AND round = $2 ORDER BY seq",
        )
        .bind(work_id)
        .bind(round)
        .fetch_all(unit.db())
        .await?
        .iter()
        .map(|row| Wait {
            seq: row.get("seq"),
            requested_at: row.get("requested_at"),
            ended_at: row.get("ended_at"),
            supplied: row.get("supplied"),
        })
        .collect();
        let calendars = sla.calendars();
        let calendar = calendars
            .get(&r.calendar)
            .map_err(|e| Failure::Reject(format!("calendar {:?}: {e}", r.calendar)))?;
        let bad = |e: deadline::PlanError| Failure::Reject(format!("evidence deadlines: {e}"));
        let start = opt_to_chrono(&r.work.assigned_at);
        let mut events: Vec<Payload> = Vec::new();

        // The requests' own deadlines.
        for w in &waits {
            let mut born = Vec::new();
            if let (Some(limit), Some(start)) = (&r.evidence.request_within, start) {
                let due = deadline::due_after(calendar, limit, start).map_err(bad)?;
                let d = evidence_deadline(told, format!("evidence_request_{}", w.seq), limit, due)
                    .settled(settle(due, Some(w.requested_at)).expect("reached when requested"));
                born.push((d, start));
            }
            if let Some(limit) = &r.evidence.answer_within {
                let due = deadline::due_after(calendar, limit, w.requested_at).map_err(bad)?;
                let d = evidence_deadline(told, format!("evidence_answer_{}", w.seq), limit, due);
                let d = answered(d, w, now);
                born.push((d, w.requested_at));
            }
            for (d, started) in born {
                let inserted: Option<Uuid> = sqlx::query_scalar(
                    "INSERT INTO deadlines (id, work_id, round, name, complaint_id,
                         correlation_id, playbook, playbook_version, ticket, department,
                         limit_text, calendar, met_by, started_at, due_at, state, settled_at,
                         armed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                             $16, $17, $18)
                     ON CONFLICT (work_id, round, name) DO NOTHING
                     RETURNING id",
                )
                .bind(d.id)
                .bind(work_id)
                .bind(round)
                .bind(&d.name)
                .bind(d.complaint_id)
                .bind(&d.correlation_id)
                .bind(&d.playbook)
                .bind(&r.playbook_version)
                .bind(&d.ticket)
                .bind(&d.department)
                .bind(&d.limit_text)
                .bind(&d.calendar)
                .bind(&d.met_by)
                .bind(started)
                .bind(d.due_at)
                .bind(state_name(d.state))
                .bind(d.settled_at)
                .bind(now)
                .fetch_optional(unit.db())
                .await?;
                if inserted.is_some() {
                    events.push(Payload::DeadlinesArmed(DeadlinesArmed {
                        deadlines: vec![d.to_proto()],
                    }));
                    events.extend(d.settled_event());
                    continue;
                }
                // Known already: an answer deadline still armed settles once its wait ends.
                if d.state == DeadlineState::Armed {
                    continue;
                }
                let settled = sqlx::query(&format!(
                    "UPDATE deadlines SET state = $4, settled_at = $5
                     WHERE work_id = $1 AND round = $2 AND name = $3 AND state = 'armed'
                     RETURNING {COLUMNS}"
                ))
                .bind(work_id)
                .bind(round)
                .bind(&d.name)
                .bind(state_name(d.state))
                .bind(d.settled_at)
                .fetch_optional(unit.db())
                .await?;
                if let Some(row) = settled {
                    events.extend(StoredDeadline::from_row(&row).settled_event());
                }
            }
        }

        // The clocks that wait on the complainant.
        let spans: Vec<deadline::Wait> =
            waits.iter().map(|w| (w.requested_at, w.ended_at)).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, base_due_at, paused_at, warn_at, warned_at FROM deadlines
             WHERE work_id = $1 AND round = $2 AND name = ANY($3)
               AND state IN ('armed', 'paused')
             ORDER BY name FOR UPDATE"
        ))
        .bind(work_id)
        .bind(round)
        .bind(&r.evidence.pauses)
        .fetch_all(unit.db())
        .await?;
        for row in &rows {
            let mut d = StoredDeadline::from_row(row);
            let base: DateTime<Utc> = row
                .get::<Option<DateTime<Utc>>, _>("base_due_at")
                .unwrap_or(d.due_at);
            let paused_at: Option<DateTime<Utc>> = row.get("paused_at");
            let clock = deadline::with_waits(calendar, &d.limit_text, base, &spans).map_err(bad)?;
            let (state, due, paused, left) = match clock {
                Clock::Running(due) => (DeadlineState::Armed, due, None, None),
                Clock::Paused(since, left) => {
                    (DeadlineState::Paused, d.due_at, Some(since), Some(left))
                }
            };
            if state == d.state && due == d.due_at && paused == paused_at {
                continue;
            }
            // A warning not given yet moves with the deadline.
            let warn_at: Option<DateTime<Utc>> = row.get("warn_at");
            let warned: bool = row.get::<Option<DateTime<Utc>>, _>("warned_at").is_some();
            let warn_at = match warn_at {
                Some(w) if !warned => Some(w + (due - d.due_at)),
                other => other,
            };
            sqlx::query(
                "UPDATE deadlines SET state = $2, due_at = $3, base_due_at = $4, paused_at = $5,
                     warn_at = $6, told_version = GREATEST(told_version, $7),
                     ladder_at = CASE WHEN ladder_at IS NULL THEN NULL ELSE started_at END
                 WHERE id = $1",
            )
            .bind(d.id)
            .bind(state_name(state))
            .bind(due)
            .bind(base)
            .bind(paused)
            .bind(warn_at)
            .bind(i64::try_from(told.newest).unwrap_or(i64::MAX))
            .execute(unit.db())
            .await?;
            unit.count(
                if state == DeadlineState::Paused {
                    "sla_paused_total"
                } else {
                    "sla_resumed_total"
                },
                1,
            );
            d.state = state;
            d.due_at = due;
            d.remaining_secs = left.map(|l| l.num_seconds());
            // Told again: the status shows the clock stopped, or the new due time, as of the
            // newest work event seen (the state is computed from every wait stored).
            let mut told_again = d.to_proto();
            told_again.work_version = told.newest;
            events.push(Payload::DeadlinesArmed(DeadlinesArmed {
                deadlines: vec![told_again],
            }));
        }
        for payload in events {
            let envelope = follow_up(IDENT.name, &told.event.envelope, now, payload);
            told.event.span.in_scope(|| unit.emit(envelope));
        }
    }
    Ok(())
}

/// Progress reports meet the round's open deadlines met by progress that had started by
/// then; a repeating one starts again from the report, unless the work is resolved. Each
/// report is applied in the order it was made.
async fn apply_reports(
    sla: &SlaTimer,
    unit: &mut Unit,
    rounds: &[((Uuid, i32), Told<'_>)],
    progress_of: &std::collections::HashMap<(Uuid, i32), (Progress, bool)>,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    for (key, told) in rounds {
        if told.reports.is_empty() {
            continue;
        }
        let resolved = progress_of[key].0.at(Step::Resolved).is_some();
        let mut reports = told.reports.clone();
        reports.sort();
        for at in reports {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM deadlines
                 WHERE work_id = $1 AND round = $2 AND met_by = 'progress' AND state = 'armed'
                   AND started_at <= $3
                 ORDER BY name FOR UPDATE"
            ))
            .bind(key.0)
            .bind(key.1)
            .bind(at)
            .fetch_all(unit.db())
            .await?;
            for row in &rows {
                let d = StoredDeadline::from_row(row);
                let d = d
                    .clone()
                    .settled(settle(d.due_at, Some(at)).expect("reported"));
                sqlx::query("UPDATE deadlines SET state = $2, settled_at = $3 WHERE id = $1")
                    .bind(d.id)
                    .bind(state_name(d.state))
                    .bind(d.settled_at)
                    .execute(unit.db())
                    .await?;
                let mut payloads: Vec<Payload> = d.settled_event().into_iter().collect();
                if !resolved
                    && let Some(next) =
                        crate::handlers::arm_next(unit.db(), sla, &d, at, now).await?
                {
                    payloads.push(Payload::DeadlinesArmed(DeadlinesArmed {
                        deadlines: vec![next.to_proto()],
                    }));
                }
                for payload in payloads {
                    let envelope = follow_up(IDENT.name, &told.event.envelope, now, payload);
                    told.event.span.in_scope(|| unit.emit(envelope));
                }
            }
        }
    }
    Ok(())
}

/// Open deadlines of rounds whose plan changed (a corrected severity or urgency, a transfer
/// that restarts the clocks) take the new plan's due times as their due before any wait;
/// the waits are applied to them afterwards. Settled deadlines stay as they ended.
async fn apply_replans(
    sla: &SlaTimer,
    unit: &mut Unit,
    rounds: &[((Uuid, i32), Told<'_>)],
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    for ((work_id, round), told) in rounds {
        let Some((version, (start, planned))) = told.replan else {
            continue;
        };
        // Plans land in work-version order: one older than a plan applied before (read out of
        // order, or again) changes nothing.
        let newer: Option<i32> = sqlx::query_scalar(
            "UPDATE progress SET plan_version = $3
             WHERE work_id = $1 AND round = $2 AND plan_version < $3
             RETURNING 1",
        )
        .bind(work_id)
        .bind(round)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .fetch_optional(unit.db())
        .await?;
        if newer.is_none() {
            continue;
        }
        let names: Vec<&str> = planned.iter().map(|p| p.name.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, base_due_at, warned_at FROM deadlines
             WHERE work_id = $1 AND round = $2 AND name = ANY($3)
               AND state IN ('armed', 'paused')
             ORDER BY name FOR UPDATE"
        ))
        .bind(work_id)
        .bind(round)
        .bind(&names)
        .fetch_all(unit.db())
        .await?;
        for row in &rows {
            let mut d = StoredDeadline::from_row(row);
            let Some(p) = planned.iter().find(|p| p.name == d.name) else {
                continue;
            };
            let base: DateTime<Utc> = row
                .get::<Option<DateTime<Utc>>, _>("base_due_at")
                .unwrap_or(d.due_at);
            if base == p.due_at && d.limit_text == p.limit {
                continue;
            }
            let warned = row.get::<Option<DateTime<Utc>>, _>("warned_at").is_some();
            let warn_at = warning(sla, told.round, &p.limit, *start, p.due_at).filter(|_| !warned);
            if d.state == DeadlineState::Armed {
                d.due_at = p.due_at;
            }
            d.limit_text = p.limit.clone();
            sqlx::query(
                "UPDATE deadlines SET base_due_at = $2, due_at = $3, limit_text = $4,
                     started_at = $5, warn_at = COALESCE($6, warn_at),
                     told_version = GREATEST(told_version, $7),
                     ladder_at = CASE WHEN ladder_at IS NULL THEN NULL ELSE $5 END
                 WHERE id = $1",
            )
            .bind(d.id)
            .bind(p.due_at)
            .bind(d.due_at)
            .bind(&d.limit_text)
            .bind(*start)
            .bind(warn_at)
            .bind(i64::try_from(version).unwrap_or(i64::MAX))
            .execute(unit.db())
            .await?;
            unit.count("sla_replanned_total", 1);
            let mut told_again = d.to_proto();
            told_again.work_version = version;
            let envelope = follow_up(
                IDENT.name,
                &told.event.envelope,
                now,
                Payload::DeadlinesArmed(DeadlinesArmed {
                    deadlines: vec![told_again],
                }),
            );
            told.event.span.in_scope(|| unit.emit(envelope));
        }
    }
    Ok(())
}

/// A deadline of an evidence request, armed, in `told`'s round.
fn evidence_deadline(
    told: &Told<'_>,
    name: String,
    limit: &str,
    due_at: DateTime<Utc>,
) -> StoredDeadline {
    let r = told.round;
    StoredDeadline {
        id: Uuid::now_v7(),
        work_id: r.work_id,
        round: r.round,
        name,
        complaint_id: r.complaint_id,
        correlation_id: told.event.envelope.correlation_id.clone(),
        playbook: r.playbook.clone(),
        ticket: r.work.ticket.clone(),
        department: r.work.department.clone(),
        limit_text: limit.to_string(),
        calendar: r.calendar.clone(),
        met_by: "evidence".to_string(),
        due_at,
        state: DeadlineState::Armed,
        settled_at: None,
        remaining_secs: None,
    }
}

/// The complainant's time to answer, after wait `w`: met by evidence in time, breached by
/// evidence too late, cancelled when the department stopped waiting, else still armed.
fn answered(d: StoredDeadline, w: &Wait, now: DateTime<Utc>) -> StoredDeadline {
    match w.ended_at {
        None => d,
        Some(at) if w.supplied => {
            let due = d.due_at;
            d.settled(settle(due, Some(at)).expect("reached"))
        }
        Some(_) => StoredDeadline {
            state: DeadlineState::Cancelled,
            settled_at: Some(now),
            ..d
        },
    }
}
