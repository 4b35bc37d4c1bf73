//! `TrackQuery`: the complainant's own view of their complaint, for the ticket and the secret
//! of their acknowledgement. It is built from the staff view by keeping what is addressed to
//! the complainant (state, promised deadlines, replies, the steps taken) and leaving out who
//! took them, internal notes, compensation, approvals and the complainant's other tickets.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_proto::v1::track_reply::Outcome;
use redress_proto::v1::{
    ComplaintStatus, Deadline, HistoryEntry, PublicStatus, QueryErrorCode, TrackQuery, TrackReply,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::Intake;

fn error(code: QueryErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(crate::handlers::status_query::query_error(
        code, field, message,
    ))
}

pub async fn handle(intake: Arc<Intake>, message: async_nats::Message) -> Bytes {
    let span = crate::handlers::status_query::request_span("intake.complaint.track", &message);
    let outcome = answer(&intake, &message.payload).instrument(span).await;
    if let Outcome::Error(e) = &outcome {
        intake.ctx.metrics.incr(&format!(
            "intake_track_refused_total{{field=\"{}\"}}",
            e.field
        ));
    }
    TrackReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

async fn answer(intake: &Intake, payload: &[u8]) -> Outcome {
    let (q, ticket) = match crate::handlers::status_query::decode_with_ticket(
        payload,
        "a TrackQuery",
        |q: &TrackQuery| &q.ticket,
    ) {
        Ok(v) => v,
        Err(e) => return Outcome::Error(e),
    };
    if q.secret.trim().is_empty() {
        return error(
            QueryErrorCode::Malformed,
            "secret",
            "give the secret of the acknowledgement",
        );
    }
    // An unknown ticket and a wrong secret get the same answer.
    let not_found = || {
        error(
            QueryErrorCode::NotFound,
            "secret",
            "no complaint has this ticket and secret",
        )
    };
    let status =
        match crate::handlers::status_query::load(intake, "ticket = $1", ticket.as_str()).await {
            Ok(Some(s)) => s,
            Ok(None) => return not_found(),
            Err(e) => {
                tracing::error!(error = %e, "status lookup failed");
                return error(
                    QueryErrorCode::Internal,
                    "",
                    "status is not available right now",
                );
            }
        };
    let Ok(id) = Uuid::parse_str(&status.complaint_id) else {
        return not_found();
    };
    if !intake.cipher.check_status_secret(&id, &q.secret) {
        return not_found();
    }
    Outcome::Status(public(status))
}

/// What of the staff view the complainant sees.
pub fn public(s: ComplaintStatus) -> PublicStatus {
    let mut replies = Vec::new();
    let history = s
        .history
        .iter()
        .filter_map(|h| {
            let (event, detail) = match h.event.as_str() {
                // "via <channel>"
                "received" => ("received", h.detail.clone()),
                "complaint.classified" => ("classified", String::new()),
                "work.assigned" => ("assigned", String::new()),
                "work.accepted" => ("accepted", String::new()),
                "work.replied" => {
                    // The line reads "by <person>: <reply>"; person names hold no ": ".
                    let reply = h
                        .detail
                        .split_once(": ")
                        .map(|(_, r)| r.to_string())
                        .unwrap_or_default();
                    replies.push(reply.clone());
                    ("replied", reply)
                }
                // "by <person>: <report>": what the department told the complainant.
                "work.progress_reported" => (
                    "progress",
                    h.detail
                        .split_once(": ")
                        .map(|(_, r)| r.to_string())
                        .unwrap_or_default(),
                ),
                // "by <person>: completion by <day>: <plan>"
                "work.committed" => (
                    "completion date",
                    h.detail
                        .split_once(": completion by ")
                        .map(|(_, r)| r.to_string())
                        .unwrap_or_default(),
                ),
                "work.resolved" => ("resolved", String::new()),
                "complaint.withdrawn" => ("withdrawn", String::new()),
                // "into <ticket> by <person>: <reason>": the complainant sees which ticket.
                "work.merged" => (
                    "merged",
                    h.detail
                        .strip_prefix("into ")
                        .and_then(|d| d.split_once(" by "))
                        .map(|(t, _)| format!("into {t}"))
                        .unwrap_or_default(),
                ),
                "complaint.responded" => ("answered the reply", String::new()),
                "survey.sent" => ("survey sent", String::new()),
                "survey.answered" => ("survey answered", String::new()),
                _ => return None,
            };
            Some(HistoryEntry {
                at: h.at,
                event: event.into(),
                detail,
            })
        })
        .collect();
    let deadlines = s
        .deadlines
        .iter()
        .map(|d| Deadline {
            name: d.name.clone(),
            due_at: d.due_at,
            state: d.state,
            limit: d.limit.clone(),
            round: d.round,
            settled_at: d.settled_at,
            ..Default::default()
        })
        .collect();
    PublicStatus {
        ticket: s.ticket,
        status: s.status,
        received_at: s.received_at,
        updated_at: s.updated_at,
        category: s.category,
        deadlines,
        replies,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &str, detail: &str) -> HistoryEntry {
        HistoryEntry {
            at: None,
            event: event.into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn the_public_view_names_no_staff_and_no_internal_detail() {
        let staff = ComplaintStatus {
            ticket: "RD-261123-000001".into(),
            status: "replied".into(),
            department: "customer-service".into(),
            approval: "approved".into(),
            earlier_tickets: vec!["RD-261101-000009".into()],
            history: vec![
                line("received", "via web"),
                line("work.accepted", "by wang.fang"),
                line(
                    "work.proposed",
                    "by wang.fang: 赔偿, compensation 800.00 CNY",
                ),
                line("approval.decided", "approved by zhao.min: internal note"),
                line("work.progress_reported", "by wang.fang: 已联系快递公司"),
                line("work.replied", "by wang.fang: 已赔偿800元: 请查收"),
                line("sla.breached", "resolution"),
                line(
                    "work.assigned",
                    "from logistics to quality by wang.fang: 转交; understood: 内部理解",
                ),
            ],
            ..Default::default()
        };
        let p = public(staff);
        assert_eq!(p.replies, ["已赔偿800元: 请查收"]);
        let text = format!("{p:?}");
        for hidden in [
            "wang.fang",
            "zhao.min",
            "800.00",
            "internal note",
            "RD-261101",
            "customer-service",
            "内部理解",
        ] {
            assert!(!text.contains(hidden), "{hidden} shown: {text}");
        }
        let events: Vec<&str> = p.history.iter().map(|h| h.event.as_str()).collect();
        assert_eq!(
            events,
            ["received", "accepted", "progress", "replied", "assigned"]
        );
        assert_eq!(p.history[2].detail, "已联系快递公司");
    }
}
