//! `sla.*`: each deadline of each round; met and breached are final, and warned beats armed.

use redress_proto::EventKind;
use redress_proto::time::opt_to_chrono;
use redress_proto::v1::{Deadline, DeadlineSettled, DeadlineState, DeadlinesArmed};
use sqlx::PgConnection;
use uuid::Uuid;

pub(super) async fn armed(
    db: &mut PgConnection,
    id: Uuid,
    a: &DeadlinesArmed,
) -> sqlx::Result<String> {
    for d in &a.deadlines {
        upsert(db, id, d, d.state()).await?;
    }
    let names: Vec<String> = a
        .deadlines
        .iter()
        .map(|d| format!("{} ({})", d.name, d.limit))
        .collect();
    Ok(names.join(", "))
}

pub(super) async fn settled(
    db: &mut PgConnection,
    id: Uuid,
    kind: EventKind,
    s: &DeadlineSettled,
) -> sqlx::Result<String> {
    let Some(d) = &s.deadline else {
        return Ok(String::new());
    };
    let state = match kind {
        EventKind::SlaMet => DeadlineState::Met,
        EventKind::SlaWarning => DeadlineState::Warned,
        _ => DeadlineState::Breached,
    };
    upsert(db, id, d, state).await?;
    Ok(format!("{} (round {})", d.name, d.round))
}

/// Met and breached are final, and warned beats armed: a late "armed" undoes neither.
async fn upsert(
    db: &mut PgConnection,
    id: Uuid,
    d: &Deadline,
    state: DeadlineState,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO deadlines (complaint_id, round, name, due_at, state, limit_text, calendar,
             settled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (complaint_id, round, name) DO UPDATE SET
             due_at = COALESCE(EXCLUDED.due_at, deadlines.due_at),
             limit_text = CASE WHEN EXCLUDED.limit_text = '' THEN deadlines.limit_text
                               ELSE EXCLUDED.limit_text END,
             calendar = CASE WHEN EXCLUDED.calendar = '' THEN deadlines.calendar
                             ELSE EXCLUDED.calendar END,
             state = CASE WHEN deadlines.state IN ($9, $10) THEN deadlines.state
                          WHEN deadlines.state = $11 AND EXCLUDED.state = $12
                               THEN deadlines.state
                          ELSE EXCLUDED.state END,
             settled_at = COALESCE(deadlines.settled_at, EXCLUDED.settled_at)",
    )
    .bind(id)
    .bind(d.round as i32)
    .bind(&d.name)
    .bind(opt_to_chrono(&d.due_at))
    .bind(state as i16)
    .bind(&d.limit)
    .bind(&d.calendar)
    .bind(opt_to_chrono(&d.settled_at))
    .bind(DeadlineState::Met as i16)
    .bind(DeadlineState::Breached as i16)
    .bind(DeadlineState::Warned as i16)
    .bind(DeadlineState::Armed as i16)
    .execute(db)
    .await?;
    Ok(())
}
