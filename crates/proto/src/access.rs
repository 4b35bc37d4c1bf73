//! Who may publish and subscribe to what on the broker: one set of permissions per service,
//! derived from the subjects and the event catalogue, so that a credential of one service
//! cannot publish another's events, send commands or touch streams it does not use.

use crate::EventKind;
use crate::subjects::{Stream, Subjects};

/// The services that run on the broker.
pub const SERVICES: [&str; 7] = [
    "intake",
    "classification",
    "routing",
    "sla-timer",
    "approval",
    "survey",
    "analytics",
];

/// Subjects a credential may publish to and subscribe to (NATS wildcards allowed). Replies
/// to requests a credential received are always allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Permissions {
    /// Everything the given permissions allow, merged (one process running several
    /// services on one connection).
    pub fn union<'a>(all: impl IntoIterator<Item = &'a Permissions>) -> Permissions {
        let mut out = Permissions::default();
        for p in all {
            for s in &p.publish {
                if !out.publish.contains(s) {
                    out.publish.push(s.clone());
                }
            }
            for s in &p.subscribe {
                if !out.subscribe.contains(s) {
                    out.subscribe.push(s.clone());
                }
            }
        }
        out
    }
}

/// What the JetStream API lets a service do on the platform's streams: create and update
/// them (every service brings them up to date at start), create and read its consumers,
/// pull and acknowledge messages. Not: delete or purge a stream.
fn jetstream_use(subjects: &Subjects) -> Vec<String> {
    let mut p = vec!["$JS.API.INFO".to_string()];
    for stream in Stream::ALL {
        let name = subjects.stream_name(stream);
        p.extend([
            format!("$JS.API.STREAM.CREATE.{name}"),
            format!("$JS.API.STREAM.UPDATE.{name}"),
            format!("$JS.API.STREAM.INFO.{name}"),
            format!("$JS.API.CONSUMER.CREATE.{name}"),
            format!("$JS.API.CONSUMER.CREATE.{name}.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{name}.>"),
            format!("$JS.API.CONSUMER.INFO.{name}.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{name}.>"),
            format!("$JS.ACK.{name}.>"),
        ]);
    }
    p
}

/// Reading the key-value bucket `bucket`, never writing it: people's public keys
/// (`<ROOT>_PEOPLE`, to verify who signed a command) or complaints' text keys
/// (`<ROOT>_TEXT_KEYS`, to open the complaint text sealed on the event stream).
fn bucket_read(bucket: &str) -> Vec<String> {
    let stream = format!("KV_{bucket}");
    vec![
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
    ]
}

/// Services that read the complaint text: classification classifies it, routing shows it to
/// the department.
pub const READ_TEXT: [&str; 2] = ["classification", "routing"];

/// Services whose commands are signed by the person acting.
pub const VERIFY_PEOPLE: [&str; 3] = ["routing", "approval", "survey"];

/// The permissions of one service.
pub fn service(subjects: &Subjects, name: &str) -> Permissions {
    let root = subjects.root();
    let mut publish = jetstream_use(subjects);
    for kind in EventKind::ALL {
        if kind.producer() == name {
            publish.push(subjects.event_for(kind, "*"));
        }
    }
    publish.push(subjects.dead_letter(name));
    if VERIFY_PEOPLE.contains(&name) {
        publish.extend(bucket_read(&subjects.people_bucket()));
    }
    if READ_TEXT.contains(&name) {
        publish.extend(bucket_read(&subjects.text_keys_bucket()));
    }
    // A service pings its own command endpoints to learn that they are reachable.
    publish.push(format!("$SRV.PING.{}", subjects.service_name(name)));
    // Analytics refolds its facts from the stream when its schema is new: it deletes its own
    // consumer on the events stream, so that the next one starts at the first event.
    if name == "analytics" {
        publish.push(format!(
            "$JS.API.CONSUMER.DELETE.{}.{}",
            subjects.stream_name(Stream::Events),
            crate::subjects::events_consumer(name)
        ));
    }
    // Messages for complainants: acknowledgements and refusals (intake), replies (routing),
    // surveys (survey).
    if matches!(name, "intake" | "routing" | "survey") {
        publish.push(format!("{root}.notify.>"));
    }
    // Erasure deletes one complaint's raw submission and the messages sent to them: single
    // messages, never a purge or the stream.
    if name == "intake" {
        // Intake makes the text-key bucket, writes each complaint's key and purges it when
        // the complaint is erased.
        let bucket = subjects.text_keys_bucket();
        publish.extend([
            format!("$JS.API.STREAM.CREATE.KV_{bucket}"),
            format!("$JS.API.STREAM.INFO.KV_{bucket}"),
            format!("$KV.{bucket}.>"),
        ]);
        for stream in [Stream::Submissions, Stream::Evidence, Stream::Notify] {
            publish.push(format!(
                "$JS.API.STREAM.MSG.DELETE.{}",
                subjects.stream_name(stream)
            ));
        }
    }
    let subscribe = vec![
        "_INBOX.>".to_string(),
        format!("{}.>", subjects.command_group(name)),
        // The NATS services API (discovery and stats of command endpoints).
        "$SRV.>".to_string(),
    ];
    Permissions { publish, subscribe }
}

/// Use of one named durable consumer on `stream` whose filter is exactly `filter`: the
/// create subject names both, so the credential cannot widen what it reads.
fn one_consumer(subjects: &Subjects, stream: Stream, consumer: &str, filter: &str) -> Vec<String> {
    let name = subjects.stream_name(stream);
    vec![
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.INFO.{name}"),
        format!("$JS.API.CONSUMER.CREATE.{name}.{consumer}.{filter}"),
        format!("$JS.API.CONSUMER.INFO.{name}.{consumer}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{name}.{consumer}"),
        format!("$JS.ACK.{name}.{consumer}.>"),
    ]
}

/// A department's system: its own department commands (`cmd.routing.<verb>.<dept>`), the
/// status of complaints, and its `dept-<dept>` consumer of the work assigned to it. Nothing
/// of another department, no event.
pub fn department(subjects: &Subjects, department: &str) -> Permissions {
    let mut publish = one_consumer(
        subjects,
        Stream::Events,
        &crate::subjects::department_consumer(department),
        &subjects.work_assigned(department),
    );
    publish.push(subjects.department_command("*", department));
    publish.push(subjects.command("intake", "status"));
    for verb in [
        crate::subjects::survey::FOLLOW_UP,
        crate::subjects::survey::TASKS,
    ] {
        publish.push(subjects.command(
            crate::subjects::survey::SERVICE,
            &format!("{verb}.{department}"),
        ));
    }
    // The text of the work assigned to it arrives sealed; the watch opens it.
    publish.extend(bucket_read(&subjects.text_keys_bucket()));
    Permissions {
        publish,
        subscribe: vec!["_INBOX.>".to_string()],
    }
}

/// A channel adapter: submissions and evidence of its own channel (stream and request),
/// the complainant's view of status (`track`, which needs the complainant's secret; not the
/// staff's `status`), the complainant's withdrawal and answer to a reply (`withdraw`,
/// `respond`, with the same secret), and
/// what is addressed to its complainants (`notify.<channel>.>`).
pub fn adapter(subjects: &Subjects, channel: &str) -> Permissions {
    let root = subjects.root();
    let notify = format!("{root}.notify.{channel}.>");
    let mut publish = one_consumer(
        subjects,
        Stream::Notify,
        &format!("adapter-{channel}"),
        &notify,
    );
    publish.extend([
        subjects.submit(channel),
        subjects.evidence(channel),
        subjects.command("intake", "submit"),
        subjects.command("intake", "track"),
        subjects.command("intake", "withdraw"),
        subjects.command("intake", "respond"),
    ]);
    Permissions {
        publish,
        subscribe: vec!["_INBOX.>".to_string(), notify],
    }
}

/// The approval tool: approval's commands only.
pub fn approvals(subjects: &Subjects) -> Permissions {
    Permissions {
        publish: vec![format!("{}.>", subjects.command_group("approval"))],
        subscribe: vec!["_INBOX.>".to_string()],
    }
}

/// The follow-up tool: survey's commands and complaint status.
pub fn surveys(subjects: &Subjects) -> Permissions {
    Permissions {
        publish: vec![
            format!("{}.>", subjects.command_group("survey")),
            subjects.command("intake", "status"),
        ],
        subscribe: vec!["_INBOX.>".to_string()],
    }
}

/// The users every Redress broker has, with their permissions (`None`: everything):
/// `admin`, `services` (all seven on one connection), each service, and `ops`.
pub fn standard_users(subjects: &Subjects) -> Vec<(String, Option<Permissions>)> {
    let each: Vec<(String, Permissions)> = SERVICES
        .iter()
        .map(|s| (s.to_string(), service(subjects, s)))
        .collect();
    let mut users = vec![
        ("admin".to_string(), None),
        (
            "services".to_string(),
            Some(Permissions::union(each.iter().map(|(_, p)| p))),
        ),
    ];
    users.extend(each.into_iter().map(|(n, p)| (n, Some(p))));
    users.push(("ops".to_string(), Some(operations(subjects))));
    users
}

/// Read-only operations: stream and consumer information; nothing sent, nothing changed.
pub fn operations(subjects: &Subjects) -> Permissions {
    let mut publish = vec![
        "$JS.API.INFO".to_string(),
        "$JS.API.STREAM.NAMES".to_string(),
        "$JS.API.STREAM.LIST".to_string(),
    ];
    for stream in Stream::ALL {
        let name = subjects.stream_name(stream);
        publish.extend([
            format!("$JS.API.STREAM.INFO.{name}"),
            format!("$JS.API.CONSUMER.INFO.{name}.>"),
            format!("$JS.API.CONSUMER.NAMES.{name}"),
            format!("$JS.API.CONSUMER.LIST.{name}"),
        ]);
    }
    Permissions {
        publish,
        subscribe: vec!["_INBOX.>".to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_publishes_its_own_events_only() {
        let s = Subjects::new("redress");
        let approval = service(&s, "approval");
        assert!(
            approval
                .publish
                .contains(&"redress.evt.approval.decided".to_string())
        );
        assert!(!approval.publish.iter().any(|p| p.contains(".evt.work.")));
        let routing = service(&s, "routing");
        assert!(
            routing
                .publish
                .contains(&"redress.evt.work.resolved.*".to_string())
        );
        assert!(
            !routing
                .publish
                .iter()
                .any(|p| p.contains("approval.decided"))
        );
        assert!(
            !routing
                .publish
                .iter()
                .any(|p| p.contains("DELETE") || p.contains("PURGE"))
        );
        assert!(
            routing
                .subscribe
                .contains(&"redress.cmd.routing.>".to_string())
        );
        // Reads people's keys, never writes them.
        assert!(
            routing
                .publish
                .contains(&"$JS.API.DIRECT.GET.KV_REDRESS_PEOPLE.>".to_string())
        );
        assert!(!routing.publish.iter().any(|p| p.contains("$KV.")));
        assert!(!approval.publish.iter().any(|p| p.contains("$KV.")));
    }

    #[test]
    fn a_department_reaches_its_own_commands_and_work_only() {
        let s = Subjects::new("redress");
        let p = department(&s, "logistics");
        assert!(
            p.publish
                .contains(&"redress.cmd.routing.*.logistics".to_string())
        );
        assert!(p.publish.contains(
            &"$JS.API.CONSUMER.CREATE.REDRESS_EVENTS.dept-logistics.redress.evt.work.assigned.logistics"
                .to_string()
        ));
        assert!(
            !p.publish
                .iter()
                .any(|x| x.contains(".evt.") && !x.starts_with("$JS"))
        );
        assert!(!p.publish.iter().any(|x| x.contains("finance")));
    }

    #[test]
    fn operations_send_nothing() {
        let ops = operations(&Subjects::new("redress"));
        assert!(ops.publish.iter().all(|p| p.starts_with("$JS.API.")));
        assert!(
            !ops.publish
                .iter()
                .any(|p| p.contains("CREATE") || p.contains("DELETE"))
        );
    }
}
