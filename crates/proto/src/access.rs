//! Who may publish and subscribe to what on the broker: one set of permissions per service,
//! derived from the subjects and the event catalogue, so that a credential of one service
//! cannot publish another's events, send commands or touch streams it does not use.

use crate::EventKind;
use crate::subjects::{Stream, Subjects};

/// The services that run on the broker.
pub const SERVICES: [&str; 6] = [
    "intake",
    "classification",
    "routing",
    "sla-timer",
    "approval",
    "survey",
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
    // A service pings its own command endpoints to learn that they are reachable.
    publish.push(format!("$SRV.PING.{}", subjects.service_name(name)));
    // Messages for complainants: acknowledgements and refusals (intake), replies (routing),
    // surveys (survey).
    if matches!(name, "intake" | "routing" | "survey") {
        publish.push(format!("{root}.notify.>"));
    }
    let subscribe = vec![
        "_INBOX.>".to_string(),
        format!("{}.>", subjects.command_group(name)),
        // The NATS services API (discovery and stats of command endpoints).
        "$SRV.>".to_string(),
    ];
    Permissions { publish, subscribe }
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
