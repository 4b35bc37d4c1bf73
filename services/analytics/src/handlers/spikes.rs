//! `SpikeQuery`: the spike warnings told for a playbook, newest first.

use std::sync::Arc;

use redress_platform::commands::Refusal;
use redress_proto::v1::spike_reply::Outcome;
use redress_proto::v1::{SpikeDetected, SpikeList, SpikeQuery, SpikeReply};

use crate::Analytics;
use crate::domain::period;

pub async fn handle(analytics: Arc<Analytics>, q: SpikeQuery) -> Result<SpikeReply, Refusal> {
    let key = q.playbook.trim();
    let playbook = analytics.rules.playbook(key)?;
    // Days as the playbook's zone names them, compared as text (YYYY-MM-DD sorts as dates).
    let (from, until) = if q.period.trim().is_empty() {
        (String::new(), "9999-12-31".to_string())
    } else {
        let p = period::parse(&q.period, playbook.report.monthly_on_day)
            .map_err(|e| Refusal::malformed("period", e))?;
        (p.from.to_string(), p.until.to_string())
    };
    let details: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT detail FROM spikes WHERE playbook = $1 AND day >= $2 AND day < $3
         ORDER BY day DESC, category",
    )
    .bind(key)
    .bind(from)
    .bind(until)
    .fetch_all(&analytics.store.pool)
    .await?;
    let spikes = details
        .iter()
        .map(|d| <SpikeDetected as prost::Message>::decode(d.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Refusal::internal(format!("stored spike: {e}")))?;
    Ok(SpikeReply {
        outcome: Some(Outcome::List(SpikeList { spikes })),
    })
}
