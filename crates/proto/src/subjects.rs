//! Every subject, stream and durable consumer name used on the wire. All subjects live under
//! `redress.` so the platform can share a NATS account with other systems.

/// Channels a complaint can arrive by; each is also the last token of its submit subject.
pub const CHANNELS: &[&str] = &[
    "phone", "sms", "email", "web", "chat", "social", "weibo", "wechat", "forum", "onsite",
    "letter", "referral",
];

/// Streams (UPPERCASE) and the subjects each one captures.
pub mod streams {
    /// Submissions from channel adapters; deduplicated by the broker on `<channel>:<external id>`.
    pub const SUBMISSIONS: &str = "SUBMISSIONS";
    pub const SUBMISSIONS_SUBJECTS: &str = "redress.intake.submit.>";
    /// Every state change of every service, retained and replayable.
    pub const EVENTS: &str = "EVENTS";
    pub const EVENTS_SUBJECTS: &str = "redress.evt.>";
    /// Messages to complainants, for channel adapters to deliver.
    pub const NOTIFY: &str = "NOTIFY";
    pub const NOTIFY_SUBJECTS: &str = "redress.notify.>";
    /// Messages a service could not decode or that broke the contract, with the reason.
    pub const DEADLETTER: &str = "DEADLETTER";
    pub const DEADLETTER_SUBJECTS: &str = "redress.dlq.>";
}

pub mod intake {
    /// Stream subject a channel adapter publishes `SubmitComplaint` to.
    pub fn submit(channel: &str) -> String {
        format!("redress.intake.submit.{channel}")
    }

    /// The channel token of a submit subject, if it is one.
    pub fn channel_of_submit(subject: &str) -> Option<&str> {
        subject.strip_prefix("redress.intake.submit.")
    }

    /// `Nats-Msg-Id` of a submission: the broker drops a resend inside its duplicate window.
    pub fn submit_msg_id(channel: &str, external_id: &str) -> String {
        format!("{channel}:{external_id}")
    }

    /// NATS services API: the group and endpoints of intake's request/reply commands.
    pub const SERVICE_NAME: &str = "intake";
    pub const COMMAND_GROUP: &str = "redress.cmd.intake";
    pub const SUBMIT_ENDPOINT: &str = "submit";
    pub const STATUS_ENDPOINT: &str = "status";
    pub const SUBMIT_COMMAND: &str = "redress.cmd.intake.submit";
    pub const STATUS_COMMAND: &str = "redress.cmd.intake.status";

    /// Durable consumer of intake on SUBMISSIONS, shared by all its instances.
    pub const SUBMISSIONS_CONSUMER: &str = "intake-submissions";
}

pub mod events {
    pub const COMPLAINT_RECEIVED: &str = "redress.evt.complaint.received";
}

pub mod notify {
    /// Acknowledgement with the ticket number, for the adapter of `channel` to deliver.
    pub fn ack(channel: &str) -> String {
        format!("redress.notify.{channel}.ack")
    }

    /// A refused stream submission, for the adapter of `channel`.
    pub fn rejected(channel: &str) -> String {
        format!("redress.notify.{channel}.rejected")
    }
}

/// Dead-letter subject of one service.
pub fn dead_letter(service: &str) -> String {
    format!("redress.dlq.{service}")
}

/// Header names carried on messages besides the W3C trace context.
pub mod headers {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    pub const DEAD_LETTER_REASON: &str = "Redress-Dead-Letter-Reason";
}
