//! Every subject, stream and durable consumer name used on the wire.
//!
//! Names hang off a root (`redress` in production) so that several isolated deployments, or
//! several test cases, can share one NATS account without seeing each other's messages.

/// Channels a complaint can arrive by; each is also the last token of its submit subject.
pub const CHANNELS: &[&str] = &[
    "phone", "sms", "email", "web", "chat", "social", "weibo", "wechat", "forum", "onsite",
    "letter", "referral",
];

pub const DEFAULT_ROOT: &str = "redress";

/// Header names carried on messages besides the W3C trace context.
pub mod headers {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    pub const DEAD_LETTER_REASON: &str = "Redress-Dead-Letter-Reason";
    /// The person acting in a command, who signed it (see `redress_client::people`).
    pub const PERSON: &str = "Redress-Person";
    /// Hex Ed25519 signature of the person over the command's subject and body.
    pub const PERSON_SIGNATURE: &str = "Redress-Signature";
}

/// Streams of the platform. Stream names are UPPERCASE and carry the root as a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Submissions from channel adapters; deduplicated by the broker on `<channel>:<external id>`.
    Submissions,
    /// Every state change of every service, retained and replayable.
    Events,
    /// Messages to complainants, for channel adapters to deliver.
    Notify,
    /// Messages a service could not decode or that broke the contract, with the reason.
    DeadLetter,
    /// Complainants' answers to evidence requests, from channel adapters; deduplicated like
    /// submissions.
    Evidence,
}

impl Stream {
    pub const ALL: [Stream; 5] = [
        Stream::Submissions,
        Stream::Events,
        Stream::Notify,
        Stream::DeadLetter,
        Stream::Evidence,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Stream::Submissions => "SUBMISSIONS",
            Stream::Events => "EVENTS",
            Stream::Notify => "NOTIFY",
            Stream::DeadLetter => "DEADLETTER",
            Stream::Evidence => "EVIDENCE",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Stream::Submissions => "intake.submit",
            Stream::Events => "evt",
            Stream::Notify => "notify",
            Stream::DeadLetter => "dlq",
            Stream::Evidence => "intake.evidence",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    root: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT)
    }
}

impl Subjects {
    /// `root` must be one subject token of lowercase letters, digits, `-` or `_`.
    pub fn new(root: impl Into<String>) -> Self {
        let root = root.into();
        assert!(
            !root.is_empty()
                && root.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'_'),
            "subject root must be a single lowercase token, got {root:?}"
        );
        Self { root }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn stream_name(&self, stream: Stream) -> String {
        format!(
            "{}_{}",
            self.root.to_ascii_uppercase().replace('-', "_"),
            stream.suffix()
        )
    }

    /// The key-value bucket of people's public keys (`<ROOT>_PEOPLE`): person name → key.
    pub fn people_bucket(&self) -> String {
        format!(
            "{}_PEOPLE",
            self.root.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The key-value bucket of complaints' text keys (`<ROOT>_TEXT_KEYS`): complaint id →
    /// the 32-byte key that opens the complaint's text on the event stream. Erasure purges
    /// the entry.
    pub fn text_keys_bucket(&self) -> String {
        format!(
            "{}_TEXT_KEYS",
            self.root.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The subject that writes `complaint_id`'s entry of the text-key bucket.
    pub fn text_key(&self, complaint_id: &str) -> String {
        format!("$KV.{}.{complaint_id}", self.text_keys_bucket())
    }

    /// The wildcard subject a stream captures.
    pub fn stream_subjects(&self, stream: Stream) -> String {
        format!("{}.{}.>", self.root, stream.token())
    }

    /// Stream subject a channel adapter publishes `SubmitComplaint` to.
    pub fn submit(&self, channel: &str) -> String {
        format!("{}.intake.submit.{channel}", self.root)
    }

    /// The channel token of a submit subject, if it is one.
    pub fn channel_of_submit<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.root.as_str())
            .and_then(|s| s.strip_prefix(".intake.submit."))
    }

    /// Stream subject a channel adapter publishes `SupplyEvidence` to.
    pub fn evidence(&self, channel: &str) -> String {
        format!("{}.intake.evidence.{channel}", self.root)
    }

    /// The channel token of an evidence subject, if it is one.
    pub fn channel_of_evidence<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.root.as_str())
            .and_then(|s| s.strip_prefix(".intake.evidence."))
    }

    /// An event subject: `<root>.evt.<aggregate>.<event>[.<more>]`.
    pub fn event(&self, name: &str) -> String {
        format!("{}.evt.{name}", self.root)
    }

    pub fn complaint_received(&self) -> String {
        self.event_of(crate::EventKind::ComplaintReceived)
    }

    /// Acknowledgement with the ticket number, for the adapter of `channel` to deliver.
    pub fn notify_ack(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.ack", self.root)
    }

    /// A refused stream submission, for the adapter of `channel`.
    pub fn notify_rejected(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.rejected", self.root)
    }

    /// Everything addressed to the complainants of one channel.
    pub fn notify_channel(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.>", self.root)
    }

    /// `<root>.evt.work.<change>.<department>`: a change of a department's work item.
    pub fn work_event(&self, change: crate::v1::WorkChange, department: &str) -> String {
        self.event_for(crate::EventKind::Work(change), department)
    }

    /// What a department system subscribes to for the work assigned to it.
    pub fn work_assigned(&self, department: &str) -> String {
        self.work_event(crate::v1::WorkChange::Assigned, department)
    }

    /// Where a department's manager hears of escalations.
    pub fn work_escalated(&self, department: &str) -> String {
        self.event_for(crate::EventKind::WorkEscalated, department)
    }

    /// Every event: each service's one durable consumer filters on this and ignores what it
    /// does not handle (nats-server 2.9 allows one filter subject per consumer).
    pub fn all_events(&self) -> String {
        self.stream_subjects(Stream::Events)
    }

    /// The department's reply, for the adapter of `channel` to deliver.
    pub fn notify_reply(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.reply", self.root)
    }

    /// A progress report of the department, for the adapter of `channel` to deliver.
    pub fn notify_progress(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.progress", self.root)
    }

    /// A duplicate was merged into another ticket, for the adapter of `channel` to tell.
    pub fn notify_merged(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.merged", self.root)
    }

    /// A request for evidence, with the token to answer it with, for the adapter of
    /// `channel` to deliver.
    pub fn notify_evidence_requested(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.evidence_requested", self.root)
    }

    /// A reminder of an unanswered evidence request, for the adapter of `channel`.
    pub fn notify_evidence_reminder(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.evidence_reminder", self.root)
    }

    /// The satisfaction survey, for the adapter of `channel` to deliver.
    pub fn notify_survey(&self, channel: &str) -> String {
        format!("{}.notify.{channel}.survey", self.root)
    }

    /// Dead-letter subject of one service.
    pub fn dead_letter(&self, service: &str) -> String {
        format!("{}.dlq.{service}", self.root)
    }

    /// Request/reply command group of a service (NATS services API).
    pub fn command_group(&self, service: &str) -> String {
        format!("{}.cmd.{service}", self.root)
    }

    pub fn command(&self, service: &str, verb: &str) -> String {
        format!("{}.cmd.{service}.{verb}", self.root)
    }

    /// A department's command to routing: `<root>.cmd.routing.<verb>.<department>`. The
    /// department is in the subject so that broker permissions can give each department's
    /// credentials its own commands and no one else's.
    pub fn department_command(&self, verb: &str, department: &str) -> String {
        format!("{}.cmd.routing.{verb}.{department}", self.root)
    }

    /// The department token of a department command's subject.
    pub fn department_of_command<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.root.as_str())?
            .strip_prefix(".cmd.routing.")?
            .split_once('.')
            .map(|(_, dept)| dept)
            .filter(|d| is_subject_token(d))
    }

    /// NATS services API name of a service; the root keeps namespaces apart in `$SRV.PING`.
    pub fn service_name(&self, service: &str) -> String {
        if self.root == DEFAULT_ROOT {
            service.to_string()
        } else {
            format!("{}-{service}", self.root)
        }
    }
}

/// `Nats-Msg-Id` of a submission: the broker drops a resend inside its duplicate window.
pub fn submit_msg_id(channel: &str, external_id: &str) -> String {
    format!("{channel}:{external_id}")
}

/// The durable consumer through which a service reads the events stream, shared by all its
/// instances.
pub fn events_consumer(service: &str) -> String {
    format!("{service}-events")
}

/// The durable consumer of a department system on its assigned work: it keeps its place
/// while the department is offline.
pub fn department_consumer(department: &str) -> String {
    format!("dept-{department}")
}

/// Whether `name` can be a department key: one subject token (lowercase letters, digits,
/// `-`, `_`).
pub fn is_subject_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub mod routing {
    pub const SERVICE: &str = "routing";
    pub const ACCEPT: &str = "accept";
    pub const PROPOSE: &str = "propose";
    pub const REPLY: &str = "reply";
    pub const RESOLVE: &str = "resolve";
    pub const TRANSFER: &str = "transfer";
    pub const PROGRESS: &str = "progress";
    pub const CONTEST: &str = "contest";
    pub const EXPLAIN: &str = "explain";
    pub const INVESTIGATE: &str = "investigate";
    pub const COMMIT: &str = "commit";
    pub const MERGE: &str = "merge";
    pub const REQUEST_EVIDENCE: &str = "request_evidence";
    pub const RECLASSIFY: &str = "reclassify";
    pub const LIST: &str = "list";
}

pub mod approval {
    pub const SERVICE: &str = "approval";
    pub const DECIDE: &str = "decide";
    pub const LIST: &str = "list";
    /// An approver hands their approvals to another person for a range of days.
    pub const DELEGATE: &str = "delegate";
}

pub mod analytics {
    pub const SERVICE: &str = "analytics";
    /// The key figures of a playbook over a period (`KpiQuery`).
    pub const KPIS: &str = "kpis";
    /// A report made on schedule (`ReportFetch`).
    pub const REPORT: &str = "report";
    /// The spike warnings told (`SpikeQuery`).
    pub const SPIKES: &str = "spikes";
}

pub mod survey {
    pub const SERVICE: &str = "survey";
    pub const ANSWER: &str = "answer";
    /// `follow_up.<department>`: a follow-up made by the department, recorded by a member.
    pub const FOLLOW_UP: &str = "follow_up";
    /// `tasks.<department>`: the phone follow-ups the department has to make.
    pub const TASKS: &str = "tasks";
}

pub mod intake {
    pub const SERVICE: &str = "intake";
    pub const SUBMIT: &str = "submit";
    pub const STATUS: &str = "status";
    /// The complainant's own view (ticket plus secret), for channel adapters.
    pub const TRACK: &str = "track";
    /// Erasure of a complainant's personal data (administrator only).
    pub const ERASE: &str = "erase";
    /// The complainant withdraws the complaint (ticket plus secret), for channel adapters.
    pub const WITHDRAW: &str = "withdraw";
    /// The complainant accepts or rejects the reply (ticket plus secret), for channel adapters.
    pub const RESPOND: &str = "respond";
    /// Durable consumer of intake on the submissions stream, shared by all its instances.
    pub const SUBMISSIONS_CONSUMER: &str = "intake-submissions";
    /// Durable consumer of intake on the evidence stream.
    pub const EVIDENCE_CONSUMER: &str = "intake-evidence";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hang_off_the_root() {
        let s = Subjects::new("t-1");
        assert_eq!(s.stream_name(Stream::Events), "T_1_EVENTS");
        assert_eq!(
            s.stream_subjects(Stream::Submissions),
            "t-1.intake.submit.>"
        );
        assert_eq!(s.submit("sms"), "t-1.intake.submit.sms");
        assert_eq!(s.channel_of_submit("t-1.intake.submit.sms"), Some("sms"));
        assert_eq!(s.channel_of_submit("redress.intake.submit.sms"), None);
        assert_eq!(s.complaint_received(), "t-1.evt.complaint.received");
        assert_eq!(s.command("intake", "submit"), "t-1.cmd.intake.submit");
        assert_eq!(Subjects::default().service_name("intake"), "intake");
        let accept = s.department_command("accept", "logistics");
        assert_eq!(accept, "t-1.cmd.routing.accept.logistics");
        assert_eq!(s.department_of_command(&accept), Some("logistics"));
        assert_eq!(s.department_of_command("t-1.cmd.routing.accept"), None);
    }

    #[test]
    #[should_panic]
    fn a_root_with_a_dot_is_refused() {
        Subjects::new("a.b");
    }
}
