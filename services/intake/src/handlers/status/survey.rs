//! `survey.*`: the survey of the latest round; an answer beats the invitation of its round,
//! a later round beats both.

use chrono::{DateTime, Utc};
use redress_proto::v1::{SurveyAnswered, SurveySent};
use sqlx::PgConnection;
use uuid::Uuid;

pub(super) async fn sent(
    db: &mut PgConnection,
    id: Uuid,
    s: &SurveySent,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    set(db, id, s.round, "sent", now).await?;
    Ok(format!("round {} by {}", s.round, s.channel))
}

pub(super) async fn answered(
    db: &mut PgConnection,
    id: Uuid,
    s: &SurveyAnswered,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    let outcome = if s.satisfied {
        "satisfied"
    } else {
        "dissatisfied"
    };
    set(db, id, s.round, outcome, now).await?;
    let score = s.scores.as_ref().map(|x| x.overall).unwrap_or_default();
    let then = if s.satisfied { "closed" } else { "reopened" };
    Ok(format!("{outcome}, overall {score}/5 {}; {then}", s.comment).replace(" ;", ";"))
}

async fn set(
    db: &mut PgConnection,
    id: Uuid,
    round: u32,
    state: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE complaints SET survey = $3, survey_round = $2, updated_at = $4
         WHERE id = $1 AND (survey_round < $2 OR (survey_round = $2 AND $3 <> 'sent'))",
    )
    .bind(id)
    .bind(round as i32)
    .bind(state)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}
