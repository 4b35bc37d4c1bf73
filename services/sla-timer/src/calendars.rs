//! Calendars are data: the State Council publishes next year's holidays each November, and
//! an organisation changes its own. Every instance watches `sla.calendars_dir`; when what it
//! holds changes, the instance loads it, and every open deadline that depends on a calendar
//! is computed again from when its clock started. A deadline that moves is told again
//! (`sla.armed`, with the due time it had and why), its warning is set again if not given
//! yet or if it now lies ahead, and the timer breaches it at its new time.
//!
//! The last calendar set applied is stored (`calendar_loads`), so a change made while no
//! instance ran is applied at the next start. Replaying is idempotent: a deadline already at
//! its new due time is left alone, so two instances that both notice a change move each
//! deadline once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redress_calendar::CalendarSet;
use redress_platform::envelope::new_event;
use redress_platform::unit::CommitError;
use redress_proto::time::ts;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{DeadlineState, DeadlinesArmed};
use sha2::{Digest as _, Sha256};
use sqlx::Row;

use crate::domain::deadline::{self, Clock};
use crate::handlers::{COLUMNS, StoredDeadline};
use crate::{IDENT, SlaTimer};

/// Deadlines computed again per transaction.
const CHUNK: i64 = 500;

/// What the calendar directory holds, as one fingerprint: every `*.toml` file's name and
/// text, in name order. None without a directory.
pub fn fingerprint(dir: Option<&Path>) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    for (name, text) in redress_calendar::BUILTIN_FILES {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    if let Some(dir) = dir {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            hash.update(path.file_name().unwrap_or_default().as_encoded_bytes());
            hash.update([0]);
            hash.update(std::fs::read(&path)?);
            hash.update([0]);
        }
    }
    Ok(hex::encode(&hash.finalize()[..8]))
}

/// Loads the calendars again; None (with the reason logged) when they do not load or lack a
/// calendar a playbook names, so a broken file never takes deadlines away.
fn load(sla: &SlaTimer) -> Option<CalendarSet> {
    let set = match CalendarSet::builtin_with_dir(sla.settings.calendars_dir.as_deref()) {
        Ok(set) => set,
        Err(e) => {
            tracing::error!(error = %e, "changed calendars do not load; keeping the ones in use");
            sla.ctx
                .metrics
                .incr("sla-timer_calendar_reload_failures_total");
            return None;
        }
    };
    for pb in sla.playbooks.iter() {
        if let Err(e) = set.get(&pb.sla.calendar) {
            tracing::error!(
                playbook = %pb.key, error = %e,
                "changed calendars lack one a playbook needs; keeping the ones in use"
            );
            sla.ctx
                .metrics
                .incr("sla-timer_calendar_reload_failures_total");
            return None;
        }
    }
    set.prepare();
    Some(set)
}

/// Watches the calendar directory every `sla.calendar_poll_ms` until shutdown. First applies
/// a change made while no instance ran.
pub async fn watch(sla: Arc<SlaTimer>) -> anyhow::Result<()> {
    let dir = sla.settings.calendars_dir.clone();
    let mut seen = fingerprint(dir.as_deref()).unwrap_or_default();
    let mut last_applied: Option<String> = None;
    loop {
        let applied = match last_applied.clone() {
            Some(f) => Some(f),
            None => stored_fingerprint(&sla).await.ok().flatten(),
        };
        if applied.as_deref() != Some(seen.as_str()) {
            match replay(&sla, &seen).await {
                Ok(moved) => {
                    if applied.is_some() {
                        tracing::info!(fingerprint = %seen, moved, "calendars changed: deadlines computed again");
                    }
                    last_applied = Some(seen.clone());
                }
                Err(e) => tracing::warn!(error = %e, "replaying deadlines failed, will retry"),
            }
        } else {
            last_applied = applied;
        }
        tokio::select! {
            _ = sla.ctx.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(sla.settings.calendar_poll_ms.max(10))) => {}
        }
        match fingerprint(dir.as_deref()) {
            Ok(now) if now != seen => {
                if let Some(set) = load(&sla) {
                    sla.set_calendars(set);
                    seen = now;
                    sla.ctx.metrics.incr("sla-timer_calendar_reloads_total");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the calendar directory"),
        }
    }
}

async fn stored_fingerprint(sla: &SlaTimer) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT fingerprint FROM calendar_loads ORDER BY applied_at DESC LIMIT 1")
        .fetch_optional(&sla.store.pool)
        .await
}

/// Computes every open deadline again with the calendars in use, in chunks of `CHUNK` rows
/// each committed with its events, and records `fingerprint` as applied. Returns how many
/// moved.
pub async fn replay(sla: &SlaTimer, fingerprint: &str) -> Result<u64, CommitError> {
    let calendars = sla.calendars();
    let mut after = uuid::Uuid::nil();
    let mut moved = 0;
    loop {
        let moved_before = moved;
        let now = sla.ctx.clock.now();
        let mut unit = sla.store.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, started_at, base_due_at, warn_at, warned_at, told_version, at_once
             FROM deadlines
             WHERE state IN ('armed', 'paused') AND id > $1
             ORDER BY id LIMIT $2 FOR UPDATE"
        ))
        .bind(after)
        .bind(CHUNK)
        .fetch_all(unit.db())
        .await?;
        let Some(last) = rows.last() else {
            sqlx::query(
                "INSERT INTO calendar_loads (fingerprint, applied_at, moved) VALUES ($1, $2, $3)",
            )
            .bind(fingerprint)
            .bind(now)
            .bind(i64::try_from(moved).unwrap_or(i64::MAX))
            .execute(unit.db())
            .await?;
            unit.commit().await?;
            return Ok(moved);
        };
        after = last.get("id");
        for row in &rows {
            let mut d = StoredDeadline::from_row(row);
            let Ok(calendar) = calendars.get(&d.calendar) else {
                continue;
            };
            let started: DateTime<Utc> = row.get("started_at");
            let base: Option<DateTime<Utc>> = row.get("base_due_at");
            let new_base = if d.name == deadline::COMMITTED {
                let day = d
                    .limit_text
                    .trim_start_matches("by ")
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                deadline::committed_due_in(calendar, &day)
            } else {
                deadline::due_after(calendar, &d.limit_text, started)
            };
            let Ok(new_base) = new_base else {
                continue;
            };
            // A deadline that waited on the complainant keeps the business time the waits
            // gave back.
            let due = if base.is_some() {
                let waits: Vec<deadline::Wait> = sqlx::query(
                    "SELECT requested_at, ended_at FROM pauses WHERE work_id = $1 AND round = $2",
                )
                .bind(d.work_id.uuid())
                .bind(d.round)
                .fetch_all(unit.db())
                .await?
                .iter()
                .map(|w| (w.get("requested_at"), w.get("ended_at")))
                .collect();
                match deadline::with_waits(calendar, &d.limit_text, new_base, &waits) {
                    Ok(Clock::Running(due)) => due,
                    Ok(Clock::Paused(..)) | Err(_) => d.due_at,
                }
            } else {
                new_base
            };
            let unchanged_base = base.unwrap_or(d.due_at) == new_base;
            if d.state == DeadlineState::Paused {
                // Stopped: only what it resumes from changes; it is told when it resumes.
                if !unchanged_base {
                    sqlx::query("UPDATE deadlines SET base_due_at = $2 WHERE id = $1")
                        .bind(d.id)
                        .bind(new_base)
                        .execute(unit.db())
                        .await?;
                }
                continue;
            }
            if due == d.due_at {
                continue;
            }
            let pct = sla
                .playbooks
                .get(&d.playbook)
                .ok()
                .and_then(|pb| pb.sla.warn_at_percent);
            let warn_at: Option<DateTime<Utc>> = match pct {
                Some(pct) if !d.name.starts_with("evidence_") => Some(deadline::share_at(
                    Some(calendar),
                    deadline::Measure::new(&d.limit_text, row.get("at_once")),
                    started,
                    due,
                    pct,
                )),
                _ => row.get("warn_at"),
            };
            // A warning already given stands unless its point now lies ahead: then it is given
            // again when that comes.
            let warned_at: Option<DateTime<Utc>> = row.get("warned_at");
            let warned_at = warned_at.filter(|_| warn_at.is_none_or(|w| w <= now));
            sqlx::query(
                "UPDATE deadlines SET due_at = $2, base_due_at = CASE WHEN base_due_at IS NULL
                     THEN NULL ELSE $3 END, warn_at = $4, warned_at = $5,
                     ladder_at = CASE WHEN ladder_at IS NULL THEN NULL ELSE started_at END
                 WHERE id = $1",
            )
            .bind(d.id)
            .bind(due)
            .bind(new_base)
            .bind(warn_at)
            .bind(warned_at)
            .execute(unit.db())
            .await?;
            let previous = d.due_at;
            d.due_at = due;
            let mut told = d.to_proto();
            told.previous_due_at = ts(previous);
            told.moved_because = format!("calendar {} changed", d.calendar);
            told.work_version = u64::try_from(row.get::<i64, _>("told_version")).unwrap_or(0);
            tracing::info!(
                ticket = %d.ticket, deadline = %d.name, from = %previous, to = %due,
                "deadline moved by a calendar change"
            );
            unit.emit(new_event(
                IDENT.name,
                &d.cause(),
                now,
                Payload::DeadlinesArmed(DeadlinesArmed {
                    deadlines: vec![told],
                }),
            ));
            moved += 1;
        }
        unit.count("sla_moved_total", moved - moved_before);
        unit.commit().await?;
    }
}
