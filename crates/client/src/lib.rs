//! Client SDK for channel adapters and department systems: submit complaints (through the
//! stream or as a request), query their status. Every call carries the caller's trace
//! context, so the work it starts is part of the caller's trace.

pub mod trace;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use prost::Message;
use redress_proto::subjects::{self, Subjects, headers};
use redress_proto::v1::{
    ComplaintStatus, QueryError, StatusQuery, StatusReply, SubmitAccepted, SubmitComplaint,
    SubmitComplaintResult, SubmitError, status_query, status_reply, submit_complaint_result,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("no instance of {0} is running")]
    NoResponders(&'static str),
    #[error("{0} did not answer within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("refused: {} ({})", .0.message, .0.field)]
    Refused(SubmitError),
    #[error("{}", .0.message)]
    Query(QueryError),
    #[error("an answer could not be decoded: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("publishing failed: {0}")]
    Publish(String),
    #[error("the answer was empty")]
    Empty,
}

#[derive(Clone)]
pub struct Client {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
    timeout: Duration,
}

impl Client {
    pub async fn connect(url: &str, root: &str) -> Result<Self, ClientError> {
        let nats = async_nats::ConnectOptions::new()
            .name("redress-client")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| ClientError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_nats(nats, root))
    }

    pub fn from_nats(nats: async_nats::Client, root: &str) -> Self {
        Self {
            js: jetstream::new(nats.clone()),
            nats,
            subjects: Subjects::new(root),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    async fn request(
        &self,
        service: &'static str,
        verb: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, ClientError> {
        let mut h = HeaderMap::new();
        trace::inject_context(&mut h);
        let call =
            self.nats
                .request_with_headers(self.subjects.command(service, verb), h, body.into());
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(ClientError::Timeout(service, self.timeout)),
            Ok(Err(e)) => match e.kind() {
                async_nats::client::RequestErrorKind::NoResponders => {
                    Err(ClientError::NoResponders(service))
                }
                async_nats::client::RequestErrorKind::TimedOut => {
                    Err(ClientError::Timeout(service, self.timeout))
                }
                _ => Err(ClientError::Request(e.to_string())),
            },
            Ok(Ok(m)) => Ok(m.payload),
        }
    }

    /// Submits and waits for the ticket. A resend of the same channel + external id answers
    /// with the original ticket and `duplicate: true`.
    pub async fn submit(&self, complaint: &SubmitComplaint) -> Result<SubmitAccepted, ClientError> {
        let reply = self
            .request(
                subjects::intake::SERVICE,
                subjects::intake::SUBMIT,
                complaint.encode_to_vec(),
            )
            .await?;
        match SubmitComplaintResult::decode(reply)?.outcome {
            Some(submit_complaint_result::Outcome::Accepted(a)) => Ok(a),
            Some(submit_complaint_result::Outcome::Error(e)) => Err(ClientError::Refused(e)),
            None => Err(ClientError::Empty),
        }
    }

    /// Publishes to the submissions stream (the adapter's durable path): once this returns,
    /// the submission is stored by the broker even if every service is down. The returned
    /// future resolves when the broker has it.
    pub async fn publish_submission(
        &self,
        complaint: &SubmitComplaint,
    ) -> Result<PublishAckFuture, ClientError> {
        let mut h = HeaderMap::new();
        h.insert(
            headers::MSG_ID,
            subjects::submit_msg_id(&complaint.channel, &complaint.external_id).as_str(),
        );
        trace::inject_context(&mut h);
        self.js
            .publish_with_headers(
                self.subjects.submit(&complaint.channel),
                h,
                complaint.encode_to_vec().into(),
            )
            .await
            .map_err(|e| ClientError::Publish(e.to_string()))
    }

    pub async fn status_by_ticket(&self, ticket: &str) -> Result<ComplaintStatus, ClientError> {
        self.status(status_query::Key::Ticket(ticket.to_string()))
            .await
    }

    pub async fn status_by_id(&self, complaint_id: &str) -> Result<ComplaintStatus, ClientError> {
        self.status(status_query::Key::ComplaintId(complaint_id.to_string()))
            .await
    }

    async fn status(&self, key: status_query::Key) -> Result<ComplaintStatus, ClientError> {
        let query = StatusQuery { key: Some(key) };
        let reply = self
            .request(
                subjects::intake::SERVICE,
                subjects::intake::STATUS,
                query.encode_to_vec(),
            )
            .await?;
        match StatusReply::decode(reply)?.outcome {
            Some(status_reply::Outcome::Status(s)) => Ok(s),
            Some(status_reply::Outcome::Error(e)) => Err(ClientError::Query(e)),
            None => Err(ClientError::Empty),
        }
    }
}
