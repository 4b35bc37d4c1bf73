//! `complaint.classified`: nature, category, severity and urgency.

use chrono::{DateTime, Utc};
use redress_proto::v1::{ComplaintClassified, Severity, Urgency};
use sqlx::PgConnection;
use uuid::Uuid;

pub(super) fn severity_name(s: i32) -> &'static str {
    match Severity::try_from(s).unwrap_or_default() {
        Severity::General => "general",
        Severity::Major => "major",
        Severity::Unspecified => "",
    }
}

fn urgency_name(u: i32) -> &'static str {
    match Urgency::try_from(u).unwrap_or_default() {
        Urgency::Normal => "normal",
        Urgency::Urgent => "urgent",
        Urgency::Emergency => "emergency",
        Urgency::Unspecified => "",
    }
}

pub(super) async fn apply(
    db: &mut PgConnection,
    id: Uuid,
    c: &ComplaintClassified,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    sqlx::query(
        "UPDATE complaints SET nature = $2, category = $3, severity = $4, urgency = $5,
             status = CASE WHEN status = 'received' THEN 'classified' ELSE status END,
             updated_at = $6
         WHERE id = $1",
    )
    .bind(id)
    .bind(&c.nature)
    .bind(&c.category)
    .bind(severity_name(c.severity))
    .bind(urgency_name(c.urgency))
    .bind(now)
    .execute(db)
    .await?;
    let rules: Vec<&str> = c.hits.iter().map(|h| h.rule.as_str()).collect();
    Ok(format!(
        "{} / {} / {} / {} (rules: {})",
        c.nature,
        c.category,
        severity_name(c.severity),
        urgency_name(c.urgency),
        if rules.is_empty() {
            "defaults".to_string()
        } else {
            rules.join(", ")
        }
    ))
}
