//! Client SDK for channel adapters and department systems: submit complaints (through the
//! stream or as a request), query their status, act on a department's work (accept, propose,
//! reply, resolve, list), decide approvals, pass on survey answers, and watch the work
//! assigned to a department. Every call carries the caller's trace context, so the work it
//! starts is part of the caller's trace.
//!
//! Commands that change something carry a command id (UUIDv7): the service answers a resent
//! id with its first answer and changes nothing, so a caller that timed out can safely send
//! the same request again. The convenience methods ([`Client::accept`] …) make a fresh id
//! each call; to be able to retry, build the request with [`requests`] (or set `command_id`
//! yourself), keep it, and send it with [`Client::send_work_command`],
//! [`Client::send_decision`] or [`Client::send_survey_answer`].

mod commands;
pub mod money;
pub mod notifications;
pub mod people;
pub mod requests;
pub mod sealed;
pub mod trace;
mod watch;

pub use watch::WorkWatch;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use prost::Message;
use redress_proto::subjects::{self, Subjects, headers};
use redress_proto::v1::{
    CommandError, CommandErrorCode, ComplaintStatus, QueryError, StatusQuery, StatusReply,
    SubmitAccepted, SubmitComplaint, SubmitComplaintResult, SubmitError, status_query,
    status_reply, submit_complaint_result,
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
    /// Signing or the people registry: no key for the person acting, a bad key file, or the
    /// bucket could not be written.
    #[error("{0}")]
    People(String),
    /// A service refused a command (routing, approval, survey) with a typed error.
    #[error("{}", command_error_text(*.code, .field, .message))]
    Command {
        code: CommandErrorCode,
        /// The field at fault, e.g. "department" or "scores.overall"; may be empty.
        field: String,
        message: String,
    },
    /// The request was not sent because it cannot be right (checked before sending).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The department's consumer on the events stream could not be set up or read.
    #[error("watching work failed: {0}")]
    Watch(String),
}

impl ClientError {
    /// Whether the service answered and refused: the request reached a service and was
    /// judged, as opposed to not arriving, not being answered in time, or not being sent.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ClientError::Refused(_) | ClientError::Query(_) | ClientError::Command { .. }
        )
    }
}

impl From<CommandError> for ClientError {
    fn from(e: CommandError) -> Self {
        ClientError::Command {
            code: e.code(),
            field: e.field,
            message: e.message,
        }
    }
}

/// The code as one lowercase word, e.g. `wrong_state` for `COMMAND_ERROR_CODE_WRONG_STATE`.
pub fn command_error_code_word(code: CommandErrorCode) -> String {
    let name = code.as_str_name();
    name.strip_prefix("COMMAND_ERROR_CODE_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// `<code> <field>: <message>`, without the field when the service named none.
fn command_error_text(code: CommandErrorCode, field: &str, message: &str) -> String {
    let code = command_error_code_word(code);
    if field.is_empty() {
        format!("{code}: {message}")
    } else {
        format!("{code} {field}: {message}")
    }
}

#[derive(Clone)]
pub struct Client {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
    timeout: Duration,
    /// The keys of the people this client acts for (department members, approvers).
    keyring: people::Keyring,
}

/// The stream of the key-value bucket `bucket`, keeping `history` values per key, made by
/// hand as a key-value bucket is laid out: the KV create call of the client library sends
/// settings that nats-server 2.9 answers in a form the library cannot read.
pub fn kv_bucket_stream(
    bucket: &str,
    description: &str,
    history: i64,
) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        discard: jetstream::stream::DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        deny_delete: true,
        ..Default::default()
    }
}

/// Connect options for `url` with the credentials it carries (`nats://user:password@host`):
/// async-nats parses but does not send them. A URL without credentials connects
/// anonymously, which a broker with accounts refuses.
///
/// A broker with TLS: a `tls://` URL, and the authority's certificate in the file named by
/// `REDRESS_NATS__TLS_CA_FILE` (the same variable the services read) when the system's
/// roots do not hold it.
pub fn connect_options(url: &str) -> async_nats::ConnectOptions {
    let ca = std::env::var_os("REDRESS_NATS__TLS_CA_FILE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    connect_options_tls(url, ca.as_deref())
}

/// [`connect_options`] trusting the authority whose certificate is in `ca_file`, and
/// requiring TLS when one is given.
pub fn connect_options_tls(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> async_nats::ConnectOptions {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(ca) = ca_file {
        options = options
            .add_root_certificates(ca.to_path_buf())
            .require_tls(true);
    }
    match url.parse::<async_nats::ServerAddr>() {
        Ok(addr) if addr.has_user_pass() => match (addr.username(), addr.password()) {
            (Some(user), Some(password)) => {
                options.user_and_password(user.to_string(), password.to_string())
            }
            _ => options,
        },
        _ => options,
    }
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let creds = &rest[..at - scheme.len() - 3];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl Client {
    pub async fn connect(url: &str, root: &str) -> Result<Self, ClientError> {
        let nats = connect_options(url)
            .name("redress-client")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| ClientError::Connect {
                url: redacted(url),
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
            keyring: people::Keyring::default(),
        }
    }

    /// Signs department commands and decisions with these people's keys.
    pub fn with_keyring(mut self, keyring: people::Keyring) -> Self {
        self.keyring = keyring;
        self
    }

    pub fn keyring(&self) -> &people::Keyring {
        &self.keyring
    }

    /// The key to sign as `person`; with no person named, the only key the keyring holds.
    fn signer(&self, person: &str) -> Result<&people::PersonKey, ClientError> {
        let person = person.trim();
        if person.is_empty() {
            if self.keyring.len() == 1 {
                return Ok(self.keyring.iter().next().expect("one key"));
            }
            return Err(ClientError::People(
                "name the person acting: this client holds no key or several".into(),
            ));
        }
        self.keyring.get(person).ok_or_else(|| {
            ClientError::People(format!(
                "no key for {person}: issue one with `redress people issue {person}`, or give its key file"
            ))
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.js.set_timeout(timeout);
        self
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// Sends `request` to `<root>.cmd.<service>.<verb>` and decodes the reply as `R`.
    async fn call<R: Message + Default>(
        &self,
        service: &'static str,
        verb: &str,
        request: &impl Message,
    ) -> Result<R, ClientError> {
        let reply = self
            .request(service, verb, request.encode_to_vec(), None)
            .await?;
        Ok(R::decode(reply)?)
    }

    /// Like `call`, signed by `person` (see [`people`]).
    async fn call_as<R: Message + Default>(
        &self,
        service: &'static str,
        verb: &str,
        request: &impl Message,
        person: &str,
    ) -> Result<R, ClientError> {
        let signer = self.signer(person)?;
        let reply = self
            .request(service, verb, request.encode_to_vec(), Some(signer))
            .await?;
        Ok(R::decode(reply)?)
    }

    async fn request(
        &self,
        service: &'static str,
        verb: &str,
        body: Vec<u8>,
        signer: Option<&people::PersonKey>,
    ) -> Result<bytes::Bytes, ClientError> {
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("client.{service}.{verb}"),
        );
        let mut h = HeaderMap::new();
        span.in_scope(|| trace::inject_context(&mut h));
        if h.get(trace::TRACEPARENT).is_none() {
            // No tracer in this process: a trace of its own all the same, so that the
            // services' spans of this command are one trace.
            h.insert(trace::TRACEPARENT, trace::fresh_traceparent().as_str());
        }
        let subject = self.subjects.command(service, verb);
        if let Some(key) = signer {
            key.sign(&subject, &body, &mut h);
        }
        let call = self.nats.request_with_headers(subject, h, body.into());
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
                None,
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

    /// Publishes the complainant's answer to an evidence request to the evidence stream
    /// (the adapter's path, deduplicated on `<channel>:<external_id>` like submissions).
    /// A refusal comes back on `notify.<channel>.rejected` ([`Client::notifications`]).
    pub async fn publish_evidence(
        &self,
        evidence: &redress_proto::v1::SupplyEvidence,
    ) -> Result<PublishAckFuture, ClientError> {
        let mut h = HeaderMap::new();
        h.insert(
            headers::MSG_ID,
            subjects::submit_msg_id(&evidence.channel, &evidence.external_id).as_str(),
        );
        trace::inject_context(&mut h);
        self.js
            .publish_with_headers(
                self.subjects.evidence(&evidence.channel),
                h,
                evidence.encode_to_vec().into(),
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
                None,
            )
            .await?;
        match StatusReply::decode(reply)?.outcome {
            Some(status_reply::Outcome::Status(s)) => Ok(s),
            Some(status_reply::Outcome::Error(e)) => Err(ClientError::Query(e)),
            None => Err(ClientError::Empty),
        }
    }

    /// Erases the complainant's personal data of `ticket` (their right to deletion): the
    /// complaint's data key, its text and contact, its raw submission and the messages sent
    /// to them. Needs the administrator's credentials; sending it again is harmless.
    pub async fn erase(&self, ticket: &str) -> Result<redress_proto::v1::Erasure, ClientError> {
        use redress_proto::v1::{EraseComplaint, EraseReply, erase_reply};
        let reply = self
            .request(
                subjects::intake::SERVICE,
                subjects::intake::ERASE,
                EraseComplaint {
                    ticket: ticket.to_string(),
                }
                .encode_to_vec(),
                None,
            )
            .await?;
        match EraseReply::decode(reply)?.outcome {
            Some(erase_reply::Outcome::Erased(e)) => Ok(e),
            Some(erase_reply::Outcome::Error(e)) => Err(ClientError::Query(e)),
            None => Err(ClientError::Empty),
        }
    }

    /// The complainant's own view of their complaint, for the ticket and the secret of
    /// the acknowledgement (`SubmitAccepted.status_secret`, `Acknowledgement.status_secret`).
    /// What a channel adapter shows the complainant; staff use the status methods.
    pub async fn track(
        &self,
        ticket: &str,
        secret: &str,
    ) -> Result<redress_proto::v1::PublicStatus, ClientError> {
        use redress_proto::v1::{TrackQuery, TrackReply, track_reply};
        let query = TrackQuery {
            ticket: ticket.to_string(),
            secret: secret.to_string(),
        };
        let reply = self
            .request(
                subjects::intake::SERVICE,
                subjects::intake::TRACK,
                query.encode_to_vec(),
                None,
            )
            .await?;
        match TrackReply::decode(reply)?.outcome {
            Some(track_reply::Outcome::Status(s)) => Ok(s),
            Some(track_reply::Outcome::Error(e)) => Err(ClientError::Query(e)),
            None => Err(ClientError::Empty),
        }
    }

    /// The complainant accepts or rejects the department's reply (a rejection needs a
    /// `comment`), proving who they are with the acknowledgement's secret, as
    /// [`Client::track`]. A rejection sends the work back for a new proposal in the same
    /// round.
    pub async fn respond(
        &self,
        ticket: &str,
        secret: &str,
        accept: bool,
        comment: &str,
    ) -> Result<redress_proto::v1::Response, ClientError> {
        use redress_proto::v1::{RespondReply, RespondToReply, respond_reply};
        let request = RespondToReply {
            ticket: ticket.to_string(),
            secret: secret.to_string(),
            accept,
            comment: comment.to_string(),
        };
        let reply = self
            .request(
                subjects::intake::SERVICE,
                subjects::intake::RESPOND,
                request.encode_to_vec(),
                None,
            )
            .await?;
        match RespondReply::decode(reply)?.outcome {
            Some(respond_reply::Outcome::Responded(r)) => Ok(r),
            Some(respond_reply::Outcome::Error(e)) => Err(ClientError::Query(e)),
            None => Err(ClientError::Empty),
        }
    }

    /// The complainant withdraws the complaint, proving who they are with the secret of the
    /// acknowledgement, as [`Client::track`]. The work closes, open deadlines are cancelled
    /// and no survey follows; asking again answers the same withdrawal (`already`).
    pub async fn withdraw(
        &self,
        ticket: &str,
        secret: &str,
        reason: &str,
    ) -> Result<redress_proto::v1::Withdrawal, ClientError> {
        use redress_proto::v1::{WithdrawComplaint, WithdrawReply, withdraw_reply};
        let request = WithdrawComplaint {
            ticket: ticket.to_string(),
            secret: secret.to_string(),
            reason: reason.to_string(),
        };
        let reply = self
            .request(
                subjects::intake::SERVICE,
                subjects::intake::WITHDRAW,
                request.encode_to_vec(),
                None,
            )
            .await?;
        match WithdrawReply::decode(reply)?.outcome {
            Some(withdraw_reply::Outcome::Withdrawn(w)) => Ok(w),
            Some(withdraw_reply::Outcome::Error(e)) => Err(ClientError::Query(e)),
            None => Err(ClientError::Empty),
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("nats://intake:s3cret@127.0.0.1:4222"),
            "nats://intake:***@127.0.0.1:4222"
        );
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_error_keeps_code_field_and_message() {
        let e = ClientError::from(CommandError {
            code: CommandErrorCode::WrongState as i32,
            field: "work.state".into(),
            message: "the work is not accepted yet".into(),
        });
        match &e {
            ClientError::Command {
                code,
                field,
                message,
            } => {
                assert_eq!(*code, CommandErrorCode::WrongState);
                assert_eq!(field, "work.state");
                assert_eq!(message, "the work is not accepted yet");
            }
            other => panic!("not a command error: {other:?}"),
        }
        assert!(e.is_refusal());
        assert_eq!(
            e.to_string(),
            "wrong_state work.state: the work is not accepted yet"
        );
    }

    #[test]
    fn a_command_error_without_a_field_reads_cleanly() {
        let e = ClientError::from(CommandError {
            code: CommandErrorCode::Internal as i32,
            field: String::new(),
            message: "database unavailable".into(),
        });
        assert_eq!(e.to_string(), "internal: database unavailable");
    }

    #[test]
    fn an_unknown_code_is_unspecified_not_a_panic() {
        let e = ClientError::from(CommandError {
            code: 99,
            field: "x".into(),
            message: "y".into(),
        });
        assert_eq!(e.to_string(), "unspecified x: y");
    }

    #[test]
    fn transport_failures_are_not_refusals() {
        assert!(!ClientError::Timeout("routing", Duration::from_secs(1)).is_refusal());
        assert!(!ClientError::NoResponders("routing").is_refusal());
        assert!(!ClientError::Empty.is_refusal());
    }
}
