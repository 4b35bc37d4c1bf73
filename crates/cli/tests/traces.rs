//! Traces as an operator sees them: one `redress serve` process running all six services
//! exports over OTLP/HTTP to a receiver in this test (standing in for Jaeger or Tempo); one
//! complaint is driven from submission to closed with the CLI. Every service must appear
//! under its own `service.name`, and the spans of that complaint must be found by its ticket.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use redress_proto::v1::{Complainant, Contact, ContactKind, SubmitComplaint};
use redress_testkit::{TestEnv, eventually};

/// Every service, as `redress serve` names them.
const SERVICES: [&str; 7] = redress_proto::access::SERVICES;

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    attributes: BTreeMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// An OTLP/HTTP (protobuf) trace receiver on a free port.
async fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut got = store.lock().unwrap();
                for rs in request.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .map(|a| text(&a.value))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.push(Received {
                                service: service.clone(),
                                name: s.name.clone(),
                                trace_id: s.trace_id.clone(),
                                attributes: s
                                    .attributes
                                    .iter()
                                    .map(|a| (a.key.clone(), text(&a.value)))
                                    .collect(),
                            });
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn with_otlp(mut c: Command, env: &TestEnv, otlp: &str) -> Command {
    c.envs(env.env_vars())
        .env("RUST_LOG", "warn")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .current_dir(env.dir());
    c
}

fn cli(env: &TestEnv, otlp: &str, args: &[&str]) {
    let out = with_otlp(Command::new(env!("CARGO_BIN_EXE_redress")), env, otlp)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redress {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Stack(Child);

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complaints_whole_life_is_found_by_its_ticket_under_each_services_name() {
    let env = TestEnv::start().await.unwrap();
    let (otlp, spans) = receiver().await;
    let _stack = Stack(
        with_otlp(Command::new(env!("CARGO_BIN_EXE_redress")), &env, &otlp)
            .arg("serve")
            .args(SERVICES)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let client = env.client().await.unwrap();
    let mut submitted = None;
    for _ in 0..300 {
        // The stack is up once intake answers.
        match client
            .submit(&SubmitComplaint {
                channel: "web".into(),
                external_id: "trace-1".into(),
                complainant: Some(Complainant {
                    name: "顾客".into(),
                    contact: Some(Contact {
                        kind: ContactKind::Phone as i32,
                        value: "13700001111".into(),
                    }),
                }),
                text: "快递三天了还没送到".into(),
                ..Default::default()
            })
            .await
        {
            Ok(a) => {
                submitted = Some(a);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let ticket = submitted.expect("the stack came up").ticket;
    let status = |want: &'static str| {
        let client = &client;
        let ticket = ticket.clone();
        async move {
            client
                .status_by_ticket(&ticket)
                .await
                .is_ok_and(|s| s.status == want)
        }
    };
    eventually("assigned", Duration::from_secs(60), || status("assigned")).await;
    let acting = ["--dept", "logistics", "--as", "zhou.qiang"];
    cli(
        &env,
        &otlp,
        &[&["work", "accept", &ticket][..], &acting].concat(),
    );
    cli(
        &env,
        &otlp,
        &[
            &["work", "propose", &ticket][..],
            &acting,
            &["--responsibility", "company", "--remedy", "re-ship"],
        ]
        .concat(),
    );
    // No compensation on a general complaint: the policy approves at once.
    eventually("approved", Duration::from_secs(60), || status("approved")).await;
    cli(
        &env,
        &otlp,
        &[
            &["work", "reply", &ticket][..],
            &acting,
            &["--message", "已重新发货"],
        ]
        .concat(),
    );
    cli(
        &env,
        &otlp,
        &[
            &["work", "resolve", &ticket][..],
            &acting,
            &["--summary", "re-shipped"],
        ]
        .concat(),
    );
    eventually("survey sent", Duration::from_secs(60), || {
        let client = &client;
        let ticket = ticket.clone();
        async move {
            client
                .status_by_ticket(&ticket)
                .await
                .is_ok_and(|s| s.survey == "sent")
        }
    })
    .await;
    let token = env.survey_token("web", &ticket).await.unwrap();
    cli(
        &env,
        &otlp,
        &[
            "survey", "answer", &ticket, "--token", &token, "--score", "5",
        ],
    );
    eventually("closed", Duration::from_secs(60), || status("closed")).await;

    // What a backend's search by the ticket finds: every service, under its own name.
    let found = || {
        spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.attributes.get("ticket") == Some(&ticket))
            .cloned()
            .collect::<Vec<_>>()
    };
    // Span names say what happened; the spans of each act reach the receiver a moment after
    // the act (batched export). Analytics folds whatever has queued up in one unit at a
    // time, so its spans may come after every other service's.
    let expected = [
        "intake.complaint.submit",
        "classification.complaint.received",
        "routing.complaint.classified",
        "sla-timer.work.assigned",
        "routing.work.accept",
        "approval.work.proposed",
        "routing.approval.decided",
        "survey.work.resolved",
        "survey.answer",
        "routing.complaint.closed",
        "intake.complaint.closed",
        "analytics.complaint.closed",
    ];
    eventually(
        "the spans of every act",
        Duration::from_secs(30),
        || async {
            let names: BTreeSet<String> = found().into_iter().map(|s| s.name).collect();
            expected.iter().all(|e| names.contains(*e))
        },
    )
    .await;
    let spans_of_ticket = found();
    let names: BTreeSet<&str> = spans_of_ticket.iter().map(|s| s.service.as_str()).collect();
    println!("services found by ticket {ticket}: {names:?}");
    assert!(SERVICES.iter().all(|s| names.contains(*s)), "{names:?}");
    // A span for each act, none for events a service only skipped.
    assert!(
        !spans_of_ticket
            .iter()
            .any(|s| s.name == "intake.complaint.received"),
        "intake skips its own complaint.received"
    );
    // The submission's trace reaches every service its events pass through, and the CLI's
    // commands continue the operator's own traces.
    let submit_trace = &spans_of_ticket
        .iter()
        .find(|s| s.name == "intake.complaint.submit")
        .unwrap()
        .trace_id;
    let in_submit_trace: BTreeSet<&str> = spans_of_ticket
        .iter()
        .filter(|s| &s.trace_id == submit_trace)
        .map(|s| s.service.as_str())
        .collect();
    for s in ["intake", "classification", "routing", "sla-timer"] {
        assert!(
            in_submit_trace.contains(s),
            "{s} missing from the submission's trace: {in_submit_trace:?}"
        );
    }
    let all = spans.lock().unwrap().clone();
    let accept = spans_of_ticket
        .iter()
        .find(|s| s.name == "routing.work.accept")
        .unwrap();
    assert!(
        all.iter()
            .any(|s| s.service == "redress-cli" && s.trace_id == accept.trace_id),
        "the accept command's trace does not start at the CLI"
    );
}
