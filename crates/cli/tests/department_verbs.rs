//! The department, approval and survey verbs as a user runs them, against a real broker with
//! stand-in services: what they print (human and JSON), their exit codes (0 done, 2 bad
//! input, 3 refused, 1 no answer), and `work watch` picking up what was assigned while it
//! was not running, each item once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use prost::Message as _;
use redress_proto::v1::{
    ApprovalList, ApprovalReply, ApprovalView, CommandError, CommandErrorCode, DecideApproval,
    Envelope, ListApprovalsReply, ListWork, ListWorkReply, Proposal, Severity, SurveyReply,
    SurveyView, WorkChanged, WorkCommand, WorkCommandReply, WorkItem, WorkList, WorkState,
    approval_reply, envelope::Payload, list_approvals_reply, list_work_reply, survey_reply,
    work_command::Action, work_command_reply,
};
use redress_testkit::TestEnv;

fn redress(env: &TestEnv) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redress"));
    c.env("REDRESS_NATS_URL", env.nats_url())
        .env("REDRESS_NATS__ROOT", &env.root)
        .env("RUST_LOG", "warn")
        .current_dir(env.dir());
    c
}

fn run(env: &TestEnv, args: &[&str]) -> Output {
    redress(env).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?} / {:?}", stdout(o), stderr(o)))
}

/// Returns once the server has processed every subscription `nats` made so far: it handles a
/// connection's messages in order, so a message to ourselves that comes back proves them in
/// place (`flush` only empties our own buffer).
async fn subscriptions_in_place(nats: &async_nats::Client) {
    let probe = nats.new_inbox();
    let mut sub = nats.subscribe(probe.clone()).await.unwrap();
    nats.publish(probe, Bytes::new()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("the probe comes back");
}

async fn stand_in<F>(env: &TestEnv, subject: String, answer: F)
where
    F: Fn(Bytes) -> Vec<u8> + Send + 'static,
{
    let nats = env.nats_client().await.unwrap();
    let mut sub = nats.subscribe(subject).await.unwrap();
    subscriptions_in_place(&nats).await;
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                nats.publish(reply, answer(m.payload).into()).await.unwrap();
            }
        }
    });
}

/// Routing as far as these verbs can tell: a work item in the state the verb leads to; work
/// of the "quality" department refuses anyone acting for another.
fn routing(body: Bytes) -> Vec<u8> {
    let cmd = WorkCommand::decode(body).unwrap();
    if cmd.ticket == "RD-261123-000009" && cmd.department != "quality" {
        return WorkCommandReply {
            outcome: Some(work_command_reply::Outcome::Error(CommandError {
                code: CommandErrorCode::Forbidden as i32,
                field: "department".into(),
                message: "the work belongs to quality".into(),
            })),
        }
        .encode_to_vec();
    }
    let (state, proposal) = match &cmd.action {
        Some(Action::Accept(_)) => (WorkState::Accepted, None),
        Some(Action::Propose(p)) => (
            WorkState::Proposed,
            Some(Proposal {
                proposal_id: "p1".into(),
                responsibility: p.responsibility,
                remedy: p.remedy.clone(),
                compensation_minor: p.compensation_minor,
                currency: if p.currency.is_empty() {
                    "CNY".into()
                } else {
                    p.currency.clone()
                },
                proposed_by: cmd.actor.clone(),
                kind: p.kind,
            }),
        ),
        Some(Action::Reply(_)) => (WorkState::Replied, None),
        Some(Action::Resolve(_)) => (WorkState::Resolved, None),
        Some(Action::Transfer(_)) => (WorkState::Assigned, None),
        Some(Action::Progress(_)) => (WorkState::Accepted, None),
        Some(Action::Contest(_)) => (WorkState::Accepted, None),
        Some(Action::Explain(_)) => (WorkState::Resolved, None),
        Some(Action::Investigate(_)) => (WorkState::Accepted, None),
        Some(Action::Commit(_)) => (WorkState::Accepted, None),
        Some(Action::Merge(_)) => (WorkState::Closed, None),
        Some(Action::RequestEvidence(_)) => (WorkState::Accepted, None),
        Some(Action::Reclassify(_)) => (WorkState::Accepted, None),
        None => (WorkState::Unspecified, None),
    };
    let department = match &cmd.action {
        Some(Action::Transfer(t)) => t.to_department.clone(),
        _ => cmd.department,
    };
    WorkCommandReply {
        outcome: Some(work_command_reply::Outcome::Work(WorkItem {
            work_id: "w1".into(),
            ticket: cmd.ticket,
            department,
            state: state as i32,
            round: 1,
            version: 2,
            severity: Severity::Major as i32,
            accepted_by: cmd.actor,
            proposal,
            ..Default::default()
        })),
    }
    .encode_to_vec()
}

async fn start_stand_ins(env: &TestEnv) {
    let s = env.subjects();
    for verb in [
        "accept",
        "propose",
        "reply",
        "resolve",
        "transfer",
        "progress",
        "contest",
        "explain",
        "investigate",
    ] {
        stand_in(env, s.command("routing", &format!("{verb}.*")), routing).await;
    }
    stand_in(env, s.command("routing", "list.*"), |b| {
        let q = ListWork::decode(b).unwrap();
        let items = q
            .states
            .iter()
            .map(|st| WorkItem {
                ticket: format!("RD-261123-00000{st}"),
                department: q.department.clone(),
                state: *st,
                round: 1,
                category: "delivery".into(),
                ..Default::default()
            })
            .collect();
        ListWorkReply {
            outcome: Some(list_work_reply::Outcome::List(WorkList { items })),
        }
        .encode_to_vec()
    })
    .await;
    stand_in(env, s.command("approval", "decide"), |b| {
        let d = DecideApproval::decode(b).unwrap();
        ApprovalReply {
            outcome: Some(approval_reply::Outcome::Approval(ApprovalView {
                ticket: d.ticket,
                department: "logistics".into(),
                state: if d.approve { "approved" } else { "rejected" }.into(),
                decided_by: d.approver,
                note: d.note,
                ..Default::default()
            })),
        }
        .encode_to_vec()
    })
    .await;
    stand_in(env, s.command("approval", "list"), |_| {
        ListApprovalsReply {
            outcome: Some(list_approvals_reply::Outcome::List(ApprovalList {
                items: vec![ApprovalView {
                    ticket: "RD-261123-000001".into(),
                    department: "logistics".into(),
                    state: "pending".into(),
                    reason: "compensation 800.00 CNY above 500.00".into(),
                    approver_role: "general_manager".into(),
                    proposal: Some(Proposal {
                        compensation_minor: 80_000,
                        currency: "CNY".into(),
                        proposed_by: "wang.fang".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
            })),
        }
        .encode_to_vec()
    })
    .await;
    stand_in(env, s.command("survey", "answer"), |b| {
        let a = redress_proto::v1::AnswerSurvey::decode(b).unwrap();
        let scores = a.scores.unwrap_or_default();
        SurveyReply {
            outcome: Some(survey_reply::Outcome::Survey(SurveyView {
                ticket: a.ticket,
                round: 1,
                state: "answered".into(),
                satisfied: scores.overall >= 4,
                scores: Some(scores),
                comment: a.comment,
                ..Default::default()
            })),
        }
        .encode_to_vec()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verbs_print_their_result_and_exit_with_the_documented_codes() {
    let env = TestEnv::start().await.unwrap();

    // Nothing answers yet: 1, with the service named and how to retry.
    let o = run(
        &env,
        &[
            "work",
            "accept",
            "RD-261123-000001",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("routing"), "{}", stderr(&o));

    start_stand_ins(&env).await;

    let o = run(
        &env,
        &[
            "work",
            "accept",
            "RD-261123-000001",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "RD-261123-000001 accepted by wang.fang (logistics, round 1)\n"
    );

    let o = run(
        &env,
        &[
            "work",
            "propose",
            "RD-261123-000001",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--responsibility",
            "company",
            "--remedy",
            "refund",
            "--compensation",
            "800",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["ticket"], "RD-261123-000001");
    assert_eq!(j["state"], "proposed");
    assert_eq!(j["department"], "logistics");
    assert_eq!(j["round"], 1);
    assert_eq!(j["version"], 2);
    assert_eq!(j["severity"], "major");
    assert_eq!(j["proposal"]["responsibility"], "company");
    assert_eq!(j["proposal"]["compensation_minor"], 80_000);
    assert_eq!(j["proposal"]["compensation"], "800.00");

    // Bad input never leaves the machine: 2, naming the flag.
    let o = run(
        &env,
        &[
            "work",
            "propose",
            "RD-261123-000001",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--responsibility",
            "company",
            "--remedy",
            "refund",
            "--compensation",
            "800.001",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--compensation"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());

    // Refused by the service: 3, with code, field and message.
    let o = run(
        &env,
        &[
            "work",
            "reply",
            "RD-261123-000009",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--message",
            "hi",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o).trim(),
        "error: forbidden department: the work belongs to quality"
    );
    let o = run(
        &env,
        &[
            "work",
            "reply",
            "RD-261123-000009",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--message",
            "hi",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let j = json(&o);
    assert_eq!(j["error"]["code"], "forbidden");
    assert_eq!(j["error"]["field"], "department");
    assert_eq!(j["error"]["message"], "the work belongs to quality");

    let o = run(
        &env,
        &[
            "work",
            "resolve",
            "RD-261123-000001",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--summary",
            "refunded",
        ],
    );
    assert_eq!(
        stdout(&o),
        "RD-261123-000001 resolved by wang.fang (logistics, round 1)\n"
    );

    let o = run(
        &env,
        &[
            "work",
            "list",
            "--dept",
            "logistics",
            "--state",
            "assigned",
            "--state",
            "accepted",
            "--json",
        ],
    );
    let j = json(&o);
    assert_eq!(j.as_array().unwrap().len(), 2);
    assert_eq!(j[1]["state"], "accepted");
    let o = run(
        &env,
        &["work", "list", "--dept", "logistics", "--state", "assigned"],
    );
    let out = stdout(&o);
    assert!(out.starts_with("TICKET"), "{out}");
    assert!(out.contains("RD-261123-000001  assigned"), "{out}");

    let o = run(&env, &["approve", "RD-261123-000001", "--as", "zhao.min"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "RD-261123-000001 approved by zhao.min (logistics)\n"
    );
    let o = run(
        &env,
        &[
            "reject",
            "RD-261123-000001",
            "--as",
            "zhao.min",
            "--note",
            "too much",
            "--json",
        ],
    );
    let j = json(&o);
    assert_eq!(
        (j["state"].as_str(), j["note"].as_str()),
        (Some("rejected"), Some("too much"))
    );
    let o = run(&env, &["approvals", "--json"]);
    let j = json(&o);
    assert_eq!(j[0]["reason"], "compensation 800.00 CNY above 500.00");
    assert_eq!(j[0]["proposal"]["compensation"], "800.00");
    let o = run(&env, &["approvals"]);
    assert!(stdout(&o).contains("800.00 CNY"), "{}", stdout(&o));

    let o = run(
        &env,
        &[
            "survey",
            "answer",
            "RD-261123-000001",
            "--token",
            "t",
            "--score",
            "2",
            "--speed",
            "1",
            "--json",
        ],
    );
    let j = json(&o);
    assert_eq!(j["satisfied"], false);
    assert_eq!(j["scores"]["overall"], 2);
    assert_eq!(j["scores"]["speed"], 1);
    assert_eq!(j["scores"]["attitude"], serde_json::Value::Null);
    let o = run(
        &env,
        &[
            "survey",
            "answer",
            "RD-261123-000001",
            "--token",
            "t",
            "--score",
            "5",
        ],
    );
    assert_eq!(
        stdout(&o),
        "RD-261123-000001 survey answered (round 1): satisfied, overall 5\n"
    );
    let o = run(
        &env,
        &[
            "survey",
            "answer",
            "RD-261123-000001",
            "--token",
            "t",
            "--score",
            "7",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
}

fn assigned(ticket: &str, round: u32) -> Envelope {
    Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        complaint_id: uuid::Uuid::now_v7().to_string(),
        producer: "routing".into(),
        payload: Some(Payload::WorkChanged(WorkChanged {
            work: Some(WorkItem {
                ticket: ticket.into(),
                department: "logistics".into(),
                state: WorkState::Assigned as i32,
                round,
                version: 1,
                category: "delivery".into(),
                text: "包裹三天没到".into(),
                ..Default::default()
            }),
            actor: "routing".into(),
            change: redress_proto::v1::WorkChange::Assigned as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// `redress work watch`, with its stdout lines arriving on a channel.
fn watch(env: &TestEnv) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = redress(env)
        .args(["work", "watch", "--dept", "logistics", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn next_ticket(rx: &std::sync::mpsc::Receiver<String>) -> (String, u64) {
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a line from work watch");
    let j: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(j["state"], "assigned");
    assert_eq!(j["actor"], "routing");
    (
        j["ticket"].as_str().unwrap().to_string(),
        j["round"].as_u64().unwrap(),
    )
}

fn ctrl_c(mut child: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "work watch exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "work watch did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn work_watch_catches_up_after_being_away_and_shows_each_item_once() {
    let env = TestEnv::start().await.unwrap();
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    redress_platform::nats::ensure_streams(&js, &env.subjects(), &env.config().settings.streams)
        .await
        .unwrap();
    let s = env.subjects();
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-261123-000001", 1),
    )
    .await
    .unwrap();

    let (child, rx) = watch(&env);
    assert_eq!(next_ticket(&rx), ("RD-261123-000001".into(), 1));
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-261123-000002", 1),
    )
    .await
    .unwrap();
    assert_eq!(next_ticket(&rx), ("RD-261123-000002".into(), 1));
    ctrl_c(child);

    // While nobody watches.
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-261123-000003", 1),
    )
    .await
    .unwrap();
    env.publish_event(
        s.work_assigned("logistics"),
        &assigned("RD-261123-000001", 2),
    )
    .await
    .unwrap();

    let (child, rx) = watch(&env);
    assert_eq!(next_ticket(&rx), ("RD-261123-000003".into(), 1));
    assert_eq!(next_ticket(&rx), ("RD-261123-000001".into(), 2));
    // Nothing printed before comes again.
    assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
    ctrl_c(child);

    // A bad department is bad input.
    let o = run(&env, &["work", "watch", "--dept", "Logistics"]);
    assert_eq!(o.status.code(), Some(2));
}
