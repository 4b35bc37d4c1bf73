//! The timer: one task per instance that breaches the armed deadlines that have come due.
//! Deadlines are rows, not sleeping tasks, so a restart loses none, and `SKIP LOCKED` lets
//! the instances share the due rows without any breaching one twice.

use std::sync::Arc;
use std::time::Duration;

use redress_platform::envelope::new_event;
use redress_platform::unit::CommitError;
use redress_proto::v1::DeadlineState;
use sqlx::Row as _;
use tokio::time::MissedTickBehavior;

use crate::handlers::{COLUMNS, StoredDeadline, state_name};
use crate::{IDENT, SlaTimer};

/// Waits (at most `sla.catch_up_secs`) until the instance's consumer of work events has
/// nothing pending: after a restart with a backlog, work done in time is still on its way,
/// and breaching before it is read would page managers about work that was on time.
async fn wait_caught_up(sla: &SlaTimer) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(sla.settings.catch_up_secs);
    let stream = sla
        .ctx
        .subjects
        .stream_name(redress_proto::subjects::Stream::Events);
    let consumer = redress_proto::subjects::events_consumer(IDENT.name);
    loop {
        let pending = match sla.ctx.js.get_stream(&stream).await {
            Ok(s) => match s.consumer_info(&consumer).await {
                Ok(info) => info.num_pending + info.num_ack_pending as u64,
                Err(_) => 0,
            },
            Err(_) => 0,
        };
        if pending == 0 || tokio::time::Instant::now() >= give_up {
            if pending > 0 {
                tracing::warn!(pending, "sla timer starts before its consumer caught up");
            }
            return;
        }
        tracing::info!(pending, "sla timer waits for its consumer to catch up");
        tokio::select! {
            _ = sla.ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(sla.settings.tick_ms.max(50))) => {}
        }
    }
}

/// Ticks every `sla.tick_ms` until shutdown.
pub async fn run(sla: Arc<SlaTimer>) -> anyhow::Result<()> {
    wait_caught_up(&sla).await;
    let mut ticks = tokio::time::interval(Duration::from_millis(sla.settings.tick_ms.max(1)));
    // After a slow tick (database away), one catch-up run is enough: it takes every due row.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sla.ctx.shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        if let Err(e) = warn_due(&sla).await {
            tracing::warn!(error = %e, "sla timer: warning of deadlines failed, will retry");
        }
        loop {
            match breach_due(&sla).await {
                Ok(n) if n as i64 >= sla.settings.batch_size => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sla timer: breaching due deadlines failed, will retry");
                    break;
                }
            }
        }
        // After the breaches, so that a rung at the breach finds the deadline breached.
        loop {
            match climb_due(&sla).await {
                Ok(n) if n as i64 >= sla.settings.batch_size => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sla timer: escalation ladder failed, will retry");
                    break;
                }
            }
        }
    }
}

/// Takes the deadlines whose next rung of the escalation ladder may have come, one batch in
/// one transaction: each rung reached is told once (`sla.escalation`) and the deadline moves
/// on to its next rung. A reminder or warning that falls outside working hours waits for the
/// next opening (not for emergency work); a rung after the breach waits for the breach; a
/// reminder or warning the breach overtook is skipped. Returns how many rows it looked at.
pub async fn climb_due(sla: &SlaTimer) -> Result<usize, CommitError> {
    use crate::domain::ladder;
    use redress_playbook::RungAt;

    let now = sla.ctx.clock.now();
    let mut unit = sla.store.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, started_at, ladder_next, at_once FROM deadlines
         WHERE ladder_at <= $1 AND ladder_at IS NOT NULL AND state IN ('armed', 'breached')
         ORDER BY ladder_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(sla.settings.batch_size.max(1))
    .fetch_all(unit.db())
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let calendars = sla.calendars();
    let grace = chrono::Duration::seconds(sla.settings.grace_secs.min(86_400) as i64);
    for row in &rows {
        let d = StoredDeadline::from_row(row);
        let started: chrono::DateTime<chrono::Utc> = row.get("started_at");
        let next: i32 = row.get("ladder_next");
        let at_once: bool = row.get("at_once");
        let measure = crate::domain::deadline::Measure::new(&d.limit_text, at_once);
        let steps = match sla.playbooks.get(&d.playbook) {
            Ok(pb) => ladder::of(pb, &d.name),
            Err(_) => Vec::new(),
        };
        let (Some(step), Ok(calendar)) = (
            usize::try_from(next).ok().and_then(|n| steps.get(n)),
            calendars.get(&d.calendar),
        ) else {
            // No rung left (or the playbook no longer has them).
            set_ladder(&mut unit, &d, next, None).await?;
            continue;
        };
        let Ok(planned) = ladder::due(calendar, &step.when, measure, started, d.due_at) else {
            set_ladder(&mut unit, &d, next, None).await?;
            continue;
        };
        let breached = d.state == DeadlineState::Breached;
        let after_breach = matches!(step.when, RungAt::Breach(_));
        if !after_breach && breached {
            // The breach overtook it: a reminder now would say less than the breach did.
            let then = following(calendar, &steps, next + 1, measure, (started, d.due_at));
            set_ladder(&mut unit, &d, next + 1, then).await?;
            continue;
        }
        if after_breach && met_late(&mut unit, &d).await? {
            // Done after all, late: the breach stands, but nobody is chased any further.
            set_ladder(&mut unit, &d, next, None).await?;
            continue;
        }
        let ready = if after_breach {
            planned.max(d.due_at + grace)
        } else {
            planned
        };
        if ready > now || (after_breach && !breached) {
            // Moved later (a pause, a new plan, a calendar), or the breach is still to come.
            set_ladder(&mut unit, &d, next, Some(ready.max(now))).await?;
            continue;
        }
        if step.rung.action.waits_for_working_hours() && !at_once {
            let opening = ladder::next_opening(calendar, now).unwrap_or(now);
            if opening > now {
                set_ladder(&mut unit, &d, next, Some(opening)).await?;
                continue;
            }
        }
        let to = recipient(sla, &mut unit, &d, &step.rung.to).await?;
        let span = tracing::info_span!(
            "deadline",
            otel.name = "sla-timer.deadline.escalation",
            redress.service = IDENT.name,
            ticket = %d.ticket,
            complaint_id = %d.complaint_id,
            deadline = %d.name,
        );
        let payload = redress_proto::v1::envelope::Payload::DeadlineEscalation(
            redress_proto::v1::LadderStep {
                deadline: Some(d.to_proto()),
                rung: u32::try_from(step.index).unwrap_or(u32::MAX),
                action: step.rung.action.as_str().to_string(),
                to: to.clone(),
                at: step.rung.at.clone(),
                planned_at: redress_proto::time::ts(planned),
                department: d.department.clone(),
            },
        );
        // Entered only around the emit: no guard may be held across an await.
        span.in_scope(|| unit.emit(new_event(IDENT.name, &d.cause(), now, payload)));
        tracing::info!(
            deadline = %d.name, rung = %step.rung.at, action = step.rung.action.as_str(), %to,
            "escalation ladder"
        );
        unit.count("sla_ladder_total", 1);
        let then = following(calendar, &steps, next + 1, measure, (started, d.due_at));
        set_ladder(&mut unit, &d, next + 1, then).await?;
    }
    unit.commit().await?;
    Ok(rows.len())
}

/// Whether the round took the step that meets `d` (after it fell due).
async fn met_late(unit: &mut redress_platform::Unit, d: &StoredDeadline) -> sqlx::Result<bool> {
    let step = match redress_playbook::Step::parse(&d.met_by) {
        Some(redress_playbook::Step::Progress) => redress_playbook::Step::Resolved,
        // An approval step is done once a later step is asked or the approval decided.
        Some(redress_playbook::Step::StepDecided) => {
            return sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deadlines d
                     WHERE d.id = $1 AND (
                         EXISTS (SELECT 1 FROM approval_ends e WHERE e.approval_id = d.approval_id)
                         OR EXISTS (SELECT 1 FROM approval_steps s
                                    WHERE s.approval_id = d.approval_id
                                      AND s.step > d.approval_step)))",
            )
            .bind(d.id)
            .fetch_one(unit.db())
            .await;
        }
        Some(step) => step,
        None => return Ok(false),
    };
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM steps WHERE work_id = $1 AND round = $2 AND step = $3)",
    )
    .bind(d.work_id.uuid())
    .bind(d.round)
    .bind(step.as_str())
    .fetch_one(unit.db())
    .await
}

/// When rung `n` of `steps` falls due for a deadline counted in `measure` that runs from
/// `started` to `due`; none past the last.
fn following(
    calendar: &redress_calendar::Calendar,
    steps: &[crate::domain::ladder::Step<'_>],
    n: i32,
    measure: crate::domain::deadline::Measure<'_>,
    (started, due): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
) -> Option<chrono::DateTime<chrono::Utc>> {
    let step = steps.get(usize::try_from(n).ok()?)?;
    crate::domain::ladder::due(calendar, &step.when, measure, started, due).ok()
}

async fn set_ladder(
    unit: &mut redress_platform::Unit,
    d: &StoredDeadline,
    next: i32,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE deadlines SET ladder_next = $2, ladder_at = $3 WHERE id = $1")
        .bind(d.id)
        .bind(next)
        .bind(at)
        .execute(unit.db())
        .await
        .map(|_| ())
}

/// The person a rung's `to` names for this deadline: who took the work on (else the
/// department's manager), the department's manager, or the person or role as written.
async fn recipient(
    sla: &SlaTimer,
    unit: &mut redress_platform::Unit,
    d: &StoredDeadline,
    to: &str,
) -> sqlx::Result<String> {
    let manager = || {
        sla.playbooks
            .get(&d.playbook)
            .ok()
            .and_then(|pb| pb.department(&d.department))
            .map(|dept| dept.manager.clone())
            .unwrap_or_else(|| format!("the manager of {}", d.department))
    };
    Ok(match to {
        "department_manager" => manager(),
        "handler" => {
            let handler: Option<String> = sqlx::query_scalar(
                "SELECT handler FROM progress WHERE work_id = $1 AND round = $2",
            )
            .bind(d.work_id.uuid())
            .bind(d.round)
            .fetch_optional(unit.db())
            .await?
            .flatten();
            handler.unwrap_or_else(manager)
        }
        other => other.to_string(),
    })
}

/// Breaches one batch of due deadlines and publishes `sla.breached` for each, in one
/// transaction. Returns how many it breached.
pub async fn breach_due(sla: &SlaTimer) -> Result<usize, CommitError> {
    let now = sla.ctx.clock.now();
    // Strictly before now (less the grace): work that gets there at the due instant is in
    // time (as `domain::deadline::settle` has it), so the due instant itself is not late yet.
    let mut unit = sla.store.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, repeat_of IS NOT NULL AS repeats FROM deadlines
         WHERE state = 'armed' AND due_at < $1
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now - chrono::Duration::seconds(sla.settings.grace_secs.min(86_400) as i64))
    .bind(sla.settings.batch_size.max(1))
    .fetch_all(unit.db())
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let breached: Vec<StoredDeadline> = rows
        .iter()
        .map(|row| {
            let mut d = StoredDeadline::from_row(row);
            d.state = DeadlineState::Breached;
            d.settled_at = Some(now);
            d
        })
        .collect();
    let ids: Vec<uuid::Uuid> = breached.iter().map(|d| d.id).collect();
    sqlx::query("UPDATE deadlines SET state = $2, settled_at = $3 WHERE id = ANY($1)")
        .bind(&ids)
        .bind(state_name(DeadlineState::Breached))
        .bind(now)
        .execute(unit.db())
        .await?;
    for d in &breached {
        let span = tracing::info_span!(
            "deadline",
            otel.name = "sla-timer.deadline.breach",
            redress.service = IDENT.name,
            ticket = %d.ticket,
            complaint_id = %d.complaint_id,
            deadline = %d.name,
        );
        let _entered = span.enter();
        if let Some(payload) = d.settled_event() {
            unit.emit(new_event(IDENT.name, &d.cause(), now, payload));
        }
        tracing::info!(
            work_id = %d.work_id, round = d.round, deadline = %d.name, due_at = %d.due_at,
            "deadline breached"
        );
    }
    // A repeating deadline starts again from when it fell due.
    let repeating = rows
        .iter()
        .zip(&breached)
        .filter(|(row, _)| row.get::<bool, _>("repeats"))
        .map(|(_, d)| d);
    for d in repeating {
        if let Some(next) = crate::handlers::arm_next(unit.db(), sla, d, d.due_at, now).await? {
            unit.emit(new_event(
                IDENT.name,
                &next.cause(),
                now,
                redress_proto::v1::envelope::Payload::DeadlinesArmed(
                    redress_proto::v1::DeadlinesArmed {
                        deadlines: vec![next.to_proto()],
                    },
                ),
            ));
        }
    }
    unit.count("sla_breached_total", breached.len() as u64);
    unit.commit().await?;
    Ok(breached.len())
}

/// Warns of armed deadlines whose warning time has come and that are not due yet (one due
/// already gets its breach instead): one `sla.warning` per deadline, in one transaction with
/// the mark that it was sent.
pub async fn warn_due(sla: &SlaTimer) -> Result<usize, CommitError> {
    let now = sla.ctx.clock.now();
    let mut unit = sla.store.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM deadlines
         WHERE state = 'armed' AND warned_at IS NULL AND warn_at <= $1 AND due_at > $1
         ORDER BY warn_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(sla.settings.batch_size.max(1))
    .fetch_all(unit.db())
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let warned: Vec<StoredDeadline> = rows.iter().map(StoredDeadline::from_row).collect();
    let ids: Vec<uuid::Uuid> = warned.iter().map(|d| d.id).collect();
    sqlx::query("UPDATE deadlines SET warned_at = $2 WHERE id = ANY($1)")
        .bind(&ids)
        .bind(now)
        .execute(unit.db())
        .await?;
    for d in &warned {
        let span = tracing::info_span!(
            "deadline",
            otel.name = "sla-timer.deadline.warn",
            redress.service = IDENT.name,
            ticket = %d.ticket,
            complaint_id = %d.complaint_id,
            deadline = %d.name,
        );
        let _entered = span.enter();
        let mut deadline = d.to_proto();
        deadline.state = DeadlineState::Warned as i32;
        let payload = redress_proto::v1::envelope::Payload::DeadlineWarned(
            redress_proto::v1::DeadlineSettled {
                deadline: Some(deadline),
                retracts_breach: false,
            },
        );
        unit.emit(new_event(IDENT.name, &d.cause(), now, payload));
    }
    unit.count("sla_warned_total", warned.len() as u64);
    unit.commit().await?;
    Ok(warned.len())
}
