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
    }
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
        if let Some(next) =
            crate::handlers::arm_next(unit.db(), &sla.calendars(), d, d.due_at, now).await?
        {
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
