//! `ReportFetch`: a report the timer made on schedule, with the figures as they stood then.

use std::sync::Arc;

use redress_platform::commands::Refusal;
use redress_proto::time::ts;
use redress_proto::v1::report_fetch_reply::Outcome;
use redress_proto::v1::{Kpis, ReportFetch, ReportFetchReply, StoredReport};
use sqlx::Row;
use uuid::Uuid;

use crate::Analytics;

pub async fn handle(
    analytics: Arc<Analytics>,
    q: ReportFetch,
) -> Result<ReportFetchReply, Refusal> {
    let playbook = q.playbook.trim();
    analytics.rules.playbook(playbook)?;
    let period = q.period.trim();
    let row = sqlx::query(
        "SELECT report_id, kind, period, made_at, kpis FROM reports
         WHERE playbook = $1 AND ($2 = '' OR period = $2)
         ORDER BY made_at DESC, due_at DESC LIMIT 1",
    )
    .bind(playbook)
    .bind(period)
    .fetch_optional(&analytics.store.pool)
    .await?
    .ok_or_else(|| {
        Refusal::not_found(
            "period",
            if period.is_empty() {
                format!("no report of {playbook} has been made yet")
            } else {
                format!("no report of {playbook} for {period} has been made (yet)")
            },
        )
    })?;
    let kpis: Vec<u8> = row.get("kpis");
    let kpis = <Kpis as prost::Message>::decode(kpis.as_slice())
        .map_err(|e| Refusal::internal(format!("stored report: {e}")))?;
    Ok(ReportFetchReply {
        outcome: Some(Outcome::Report(StoredReport {
            report_id: row.get::<Uuid, _>("report_id").to_string(),
            playbook: playbook.to_string(),
            period: row.get("period"),
            kind: row.get("kind"),
            made_at: ts(row.get("made_at")),
            kpis: Some(kpis),
        })),
    })
}
