//! What the platform sent to complainants on one channel (`<root>.notify.<channel>.>`), read
//! back from the stream the way an adapter would receive it: acknowledgements, refusals,
//! replies, progress reports, evidence requests and survey invitations. For adapters being built and for people trying the stack
//! by hand; a production adapter consumes with its own durable consumer instead.

use async_nats::jetstream;
use futures::StreamExt as _;
use prost::Message as _;
use redress_proto::subjects::Stream;
use redress_proto::v1::{
    Acknowledgement, ReplyToComplainant, SubmissionRejected, SurveyInvitation,
};

use crate::{Client, ClientError};

#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    Ack(Acknowledgement),
    Rejected(SubmissionRejected),
    Reply(ReplyToComplainant),
    /// The department telling the complainant how the matter stands.
    Progress(ReplyToComplainant),
    /// A duplicate was merged: the message names the ticket that carries on.
    Merged(ReplyToComplainant),
    /// The department needs evidence: the message says what, `token` is what the answer
    /// (`SupplyEvidence`) presents.
    EvidenceRequested(ReplyToComplainant),
    /// An evidence request is still unanswered.
    EvidenceReminder(ReplyToComplainant),
    Survey(SurveyInvitation),
    /// A kind this client does not know, or bytes it could not decode.
    Other {
        subject: String,
    },
}

impl Notification {
    fn decode(kind: &str, subject: &str, payload: &[u8]) -> Self {
        let other = || Notification::Other {
            subject: subject.to_string(),
        };
        match kind {
            "ack" => Acknowledgement::decode(payload).map_or_else(|_| other(), Self::Ack),
            "rejected" => {
                SubmissionRejected::decode(payload).map_or_else(|_| other(), Self::Rejected)
            }
            "reply" => ReplyToComplainant::decode(payload).map_or_else(|_| other(), Self::Reply),
            "progress" => {
                ReplyToComplainant::decode(payload).map_or_else(|_| other(), Self::Progress)
            }
            "merged" => ReplyToComplainant::decode(payload).map_or_else(|_| other(), Self::Merged),
            "evidence_requested" => ReplyToComplainant::decode(payload)
                .map_or_else(|_| other(), Self::EvidenceRequested),
            "evidence_reminder" => {
                ReplyToComplainant::decode(payload).map_or_else(|_| other(), Self::EvidenceReminder)
            }
            "survey" => SurveyInvitation::decode(payload).map_or_else(|_| other(), Self::Survey),
            _ => other(),
        }
    }

    /// The ticket it is about (none for a refused submission).
    pub fn ticket(&self) -> &str {
        match self {
            Notification::Ack(a) => &a.ticket,
            Notification::Reply(r)
            | Notification::Progress(r)
            | Notification::Merged(r)
            | Notification::EvidenceRequested(r)
            | Notification::EvidenceReminder(r) => &r.ticket,
            Notification::Survey(s) => &s.ticket,
            Notification::Rejected(_) | Notification::Other { .. } => "",
        }
    }
}

impl Client {
    /// Every notification still kept for `channel`, oldest first.
    pub async fn notifications(&self, channel: &str) -> Result<Vec<Notification>, ClientError> {
        let failed = |e: &dyn std::fmt::Display| ClientError::Request(e.to_string());
        let stream = self
            .js
            .get_stream(self.subjects.stream_name(Stream::Notify))
            .await
            .map_err(|e| failed(&e))?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                filter_subject: self.subjects.notify_channel(channel),
                ack_policy: jetstream::consumer::AckPolicy::None,
                inactive_threshold: std::time::Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut left = consumer
            .clone()
            .info()
            .await
            .map_err(|e| failed(&e))?
            .num_pending as usize;
        let prefix = format!("{}.notify.{channel}.", self.subjects.root());
        let mut out = Vec::new();
        while left > 0 {
            let mut batch = consumer
                .fetch()
                .max_messages(left.min(500))
                .expires(std::time::Duration::from_secs(2))
                .messages()
                .await
                .map_err(|e| failed(&e))?;
            let mut got = 0;
            while let Some(m) = batch.next().await {
                let m = m.map_err(|e| failed(&e))?;
                got += 1;
                let kind = m.subject.strip_prefix(prefix.as_str()).unwrap_or_default();
                out.push(Notification::decode(kind, &m.subject, &m.payload));
            }
            if got == 0 {
                break;
            }
            left = left.saturating_sub(got);
        }
        Ok(out)
    }
}
