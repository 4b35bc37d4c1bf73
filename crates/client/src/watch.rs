//! The work assigned to a department, through its own durable consumer on the events stream:
//! the broker keeps the department's place while it is offline, so a department system that
//! starts again receives what was assigned meanwhile, and an item it acknowledged is not
//! delivered to it again.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{
        AckPolicy, DeliverPolicy, PullConsumer,
        pull::{self, MessagesErrorKind},
    },
};
use futures::StreamExt as _;
use prost::Message as _;
use redress_proto::subjects::{self, Stream};
use redress_proto::v1::{Envelope, WorkChanged, envelope::Payload};

use crate::{Client, ClientError};

/// How long the broker waits for the acknowledgement of a delivered item before it delivers
/// it again. Items are acknowledged once the caller has had them, so this bounds how long a
/// caller may spend on one item without seeing it twice from the broker (the watch itself
/// drops such repeats; see [`RecentSequences`]).
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Few items pulled ahead: they wait in this process, unacknowledged, while the caller works.
const PULL_BATCH: usize = 8;

impl Client {
    /// Watches the work assigned to `department` (every `WorkChanged` on
    /// `<root>.evt.work.assigned.<department>`, a reopened complaint's new round included),
    /// through the durable consumer [`subjects::department_consumer`]. The first watch of a
    /// department starts at the beginning of the stream; later ones continue where the last
    /// acknowledged item left off.
    ///
    /// Several watchers of one department share the consumer and so split the items between
    /// them.
    pub async fn watch_work(&self, department: &str) -> Result<WorkWatch, ClientError> {
        if !subjects::is_subject_token(department) {
            return Err(ClientError::Invalid {
                field: "department",
                message: format!(
                    "{department:?} is not a department key (lowercase letters, digits, - and _)"
                ),
            });
        }
        let stream_name = self.subjects.stream_name(Stream::Events);
        let stream = self.js.get_stream(&stream_name).await.map_err(|e| {
            ClientError::Watch(format!(
                "the events stream {stream_name} is not available: {e}"
            ))
        })?;
        let name = subjects::department_consumer(department);
        let filter_subject = self.subjects.work_assigned(department);
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some(format!("work assigned to {department}")),
                    filter_subject: filter_subject.clone(),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    // A department seen for the first time gets what was assigned before it
                    // ever connected, not only what comes after.
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ClientError::Watch(format!("cannot set up consumer {name}: {e}")))?;
        let info = consumer
            .info()
            .await
            .map_err(|e| ClientError::Watch(format!("consumer {name}: {e}")))?;
        // The name is fixed by the department, so a consumer made under it by something else
        // would silently deliver the wrong messages.
        if info.config.filter_subject != filter_subject {
            return Err(ClientError::Watch(format!(
                "consumer {name} exists but reads {:?}, not {filter_subject:?}",
                info.config.filter_subject
            )));
        }
        Ok(WorkWatch {
            consumer,
            keys: crate::sealed::TextKeys::new(self.nats.clone(), &self.subjects),
            name,
            messages: None,
            unacked: None,
            recent: RecentSequences::new(4096),
            ended: false,
        })
    }
}

/// The items assigned to one department, each handed out once. [`WorkWatch::next`]
/// acknowledges the item it handed out before (the caller asking for the next one has dealt
/// with it); [`WorkWatch::ack`] does so at once and [`WorkWatch::close`] before stopping.
/// An item handed out but never acknowledged (the process died while dealing with it) comes
/// again to the next watch of the department.
pub struct WorkWatch {
    consumer: PullConsumer,
    /// Opens the complaint text, which travels sealed.
    keys: crate::sealed::TextKeys,
    name: String,
    messages: Option<pull::Stream>,
    unacked: Option<jetstream::Message>,
    recent: RecentSequences,
    ended: bool,
}

impl WorkWatch {
    /// The name of the durable consumer.
    pub fn consumer_name(&self) -> &str {
        &self.name
    }

    /// The next assigned item, waiting as long as it takes. Broker restarts and lost
    /// connections are waited out. `Some(Err)` is an item that could not be decoded (it is
    /// not delivered again; the watch goes on) or the end of the consumer, after which
    /// `None` follows.
    pub async fn next(&mut self) -> Option<Result<WorkChanged, ClientError>> {
        if self.ended {
            return None;
        }
        if let Err(e) = self.ack().await {
            // Not fatal: the broker delivers the item again and `recent` drops it.
            tracing::warn!(error = %e, consumer = %self.name, "acknowledgement not confirmed");
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let messages = match &mut self.messages {
                Some(m) => m,
                None => match self
                    .consumer
                    .stream()
                    .max_messages_per_batch(PULL_BATCH)
                    .heartbeat(Duration::from_secs(5))
                    .expires(Duration::from_secs(30))
                    .messages()
                    .await
                {
                    Ok(m) => self.messages.insert(m),
                    Err(e) => {
                        tracing::warn!(error = %e, consumer = %self.name, "cannot pull, retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                },
            };
            let message = match messages.next().await {
                Some(Ok(m)) => m,
                None => {
                    self.messages = None;
                    continue;
                }
                Some(Err(e)) => match e.kind() {
                    MessagesErrorKind::ConsumerDeleted => {
                        self.ended = true;
                        return Some(Err(ClientError::Watch(format!(
                            "consumer {} was deleted",
                            self.name
                        ))));
                    }
                    MessagesErrorKind::MissingHeartbeat => continue,
                    _ => {
                        tracing::debug!(error = %e, consumer = %self.name, "pull error, retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                },
            };
            backoff = Duration::from_millis(100);
            let sequence = message.info().ok().map(|i| i.stream_sequence);
            if let Some(seq) = sequence
                && self.recent.contains(seq)
            {
                // Delivered again because its acknowledgement was lost or came late: the
                // caller has had it already.
                let _ = message.ack().await;
                continue;
            }
            match decode(&message.payload) {
                Ok((complaint_id, mut change)) => {
                    let item = change.work.as_mut().expect("decode checked it");
                    if let Err(e) = self.keys.open_work_item(item, &complaint_id).await {
                        // The broker's key bucket did not answer: the item comes again.
                        tracing::warn!(error = %e, consumer = %self.name, "text not opened, retrying");
                        let _ = message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    if let Some(seq) = sequence {
                        self.recent.insert(seq);
                    }
                    self.unacked = Some(message);
                    return Some(Ok(change));
                }
                Err(e) => {
                    // It would fail the same way every time it came back.
                    let _ = message.ack_with(AckKind::Term).await;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Acknowledges the item last handed out, waiting for the broker to confirm.
    pub async fn ack(&mut self) -> Result<(), ClientError> {
        if let Some(m) = self.unacked.take() {
            m.double_ack()
                .await
                .map_err(|e| ClientError::Watch(format!("acknowledging failed: {e}")))?;
        }
        Ok(())
    }

    /// Acknowledges the last item and stops.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ack().await
    }

    /// The watch as a `Stream`; each item is acknowledged when the next one is asked for.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<WorkChanged, ClientError>> {
        futures::stream::unfold(self, |mut watch| async move {
            watch.next().await.map(|item| (item, watch))
        })
    }
}

/// The complaint id and the `WorkChanged` an events-stream message carries.
pub(crate) fn decode(payload: &[u8]) -> Result<(uuid::Uuid, WorkChanged), ClientError> {
    let envelope = Envelope::decode(payload)?;
    let id = uuid::Uuid::parse_str(&envelope.complaint_id).map_err(|_| ClientError::Invalid {
        field: "complaint_id",
        message: format!("{:?} is not a complaint id", envelope.complaint_id),
    })?;
    match envelope.payload {
        Some(Payload::WorkChanged(w)) if w.work.is_some() => Ok((id, w)),
        Some(Payload::WorkChanged(_)) => Err(ClientError::Invalid {
            field: "work",
            message: "a work.assigned event without its work item".into(),
        }),
        _ => Err(ClientError::Invalid {
            field: "payload",
            message: "a work.assigned event that does not carry WorkChanged".into(),
        }),
    }
}

/// Stream positions handed out lately, so that a redelivery of one is dropped. Bounded: a
/// redelivery comes within the ack wait, long before thousands of newer items.
pub(crate) struct RecentSequences {
    order: VecDeque<u64>,
    set: HashSet<u64>,
    capacity: usize,
}

impl RecentSequences {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::with_capacity(capacity),
            set: HashSet::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.set.contains(&seq)
    }

    pub(crate) fn insert(&mut self, seq: u64) {
        if !self.set.insert(seq) {
            return;
        }
        self.order.push_back(seq);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_proto::v1::{ComplaintClosed, WorkItem};

    #[test]
    fn a_work_changed_envelope_decodes() {
        let change = WorkChanged {
            work: Some(WorkItem {
                ticket: "RD-1".into(),
                department: "logistics".into(),
                round: 2,
                ..Default::default()
            }),
            actor: "routing".into(),
            note: String::new(),
            change: redress_proto::v1::WorkChange::Assigned as i32,
            ..Default::default()
        };
        let id = uuid::Uuid::now_v7();
        let envelope = Envelope {
            event_id: "e1".into(),
            complaint_id: id.to_string(),
            payload: Some(Payload::WorkChanged(change.clone())),
            ..Default::default()
        };
        assert_eq!(decode(&envelope.encode_to_vec()).unwrap(), (id, change));
    }

    #[test]
    fn other_payloads_and_garbage_are_errors() {
        let id = uuid::Uuid::now_v7().to_string();
        let other = Envelope {
            complaint_id: id.clone(),
            payload: Some(Payload::ComplaintClosed(ComplaintClosed::default())),
            ..Default::default()
        };
        assert!(matches!(
            decode(&other.encode_to_vec()),
            Err(ClientError::Invalid {
                field: "payload",
                ..
            })
        ));
        let empty_work = Envelope {
            complaint_id: id,
            payload: Some(Payload::WorkChanged(WorkChanged::default())),
            ..Default::default()
        };
        assert!(matches!(
            decode(&empty_work.encode_to_vec()),
            Err(ClientError::Invalid { field: "work", .. })
        ));
        assert!(matches!(
            decode(b"\xff\xff\xff"),
            Err(ClientError::Decode(_))
        ));
        let anonymous = Envelope {
            payload: Some(Payload::WorkChanged(change_with_item())),
            ..Default::default()
        };
        assert!(matches!(
            decode(&anonymous.encode_to_vec()),
            Err(ClientError::Invalid {
                field: "complaint_id",
                ..
            })
        ));
    }

    fn change_with_item() -> WorkChanged {
        WorkChanged {
            work: Some(WorkItem::default()),
            ..Default::default()
        }
    }

    #[test]
    fn recent_sequences_forget_the_oldest() {
        let mut r = RecentSequences::new(3);
        for s in 1..=4 {
            r.insert(s);
        }
        assert!(!r.contains(1));
        assert!(r.contains(2) && r.contains(3) && r.contains(4));
        r.insert(3);
        r.insert(5);
        assert!(!r.contains(2));
        assert!(r.contains(3) && r.contains(5));
    }
}
