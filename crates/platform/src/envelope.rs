//! Building the one envelope every event travels in.

use chrono::{DateTime, Utc};
use redress_proto::time::ts;
use redress_proto::v1::{Envelope, envelope::Payload};
use uuid::Uuid;

/// Who and what caused an event; copied from the message being handled.
#[derive(Debug, Clone)]
pub struct Cause {
    pub complaint_id: Uuid,
    /// The complaint's ticket, carried on every event (empty only before intake issued one).
    pub ticket: String,
    pub causation_id: String,
    pub correlation_id: String,
    pub playbook: String,
}

/// A new event with a fresh UUIDv7 id (time-ordered, so ids sort by creation).
pub fn new_event(producer: &str, cause: &Cause, at: DateTime<Utc>, payload: Payload) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7().to_string(),
        complaint_id: cause.complaint_id.to_string(),
        occurred_at: ts(at),
        producer: producer.to_string(),
        causation_id: cause.causation_id.clone(),
        correlation_id: cause.correlation_id.clone(),
        playbook: cause.playbook.clone(),
        ticket: cause.ticket.clone(),
        payload: Some(payload),
    }
}

/// A new event caused by `cause_event` (the envelope being handled): same complaint, ticket,
/// correlation and playbook.
pub fn follow_up(
    producer: &str,
    cause_event: &Envelope,
    at: DateTime<Utc>,
    payload: Payload,
) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7().to_string(),
        complaint_id: cause_event.complaint_id.clone(),
        occurred_at: ts(at),
        producer: producer.to_string(),
        causation_id: cause_event.event_id.clone(),
        correlation_id: cause_event.correlation_id.clone(),
        playbook: cause_event.playbook.clone(),
        ticket: cause_event.ticket.clone(),
        payload: Some(payload),
    }
}
