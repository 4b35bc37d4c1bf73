//! The command methods against stand-in services on a real broker: each request reaches the
//! subject of its verb with a command id, each reply or typed refusal comes back as the
//! caller's value or `ClientError`, and a missing or silent service is told apart.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use prost::Message as _;
use redress_client::{ClientError, requests};
use redress_proto::v1::{
    AnswerSurvey, ApprovalList, ApprovalReply, ApprovalView, CommandError, CommandErrorCode,
    DecideApproval, ListApprovals, ListApprovalsReply, ListWork, ListWorkReply, Propose,
    Responsibility, SurveyReply, SurveyScores, SurveyView, WorkCommand, WorkCommandReply, WorkItem,
    WorkList, WorkState, approval_reply, list_approvals_reply, list_work_reply, survey_reply,
    work_command::Action, work_command_reply,
};
use redress_testkit::TestEnv;

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

/// Answers every request on `subject` with `answer(request body)`, as a service would.
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

fn is_v7(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)
}

/// The routing stand-in echoes what it received in the work item it returns: the command id
/// in `work_id`, the actor in `accepted_by`, the action's text in `reply`.
fn echo_work(body: Bytes, state: WorkState) -> Vec<u8> {
    let cmd = WorkCommand::decode(body).unwrap();
    let text = match &cmd.action {
        Some(Action::Accept(_)) => "accept".to_string(),
        Some(Action::Propose(p)) => format!("{}:{}", p.remedy, p.compensation_minor),
        Some(Action::Reply(r)) => r.message.clone(),
        Some(Action::Resolve(r)) => r.summary.clone(),
        Some(Action::Transfer(t)) => format!("{}:{}:{}", t.to_department, t.reason, t.understood),
        Some(Action::Progress(p)) => p.message.clone(),
        Some(Action::Contest(c)) => c.objection.clone(),
        Some(Action::Explain(e)) => format!("{}:{}:{}", e.message, e.not_liable, e.basis),
        Some(Action::Investigate(i)) => format!("{}:{}", i.notes, i.cause),
        Some(Action::Commit(c)) => format!("{}:{}", c.due_on, c.plan),
        Some(Action::Merge(m)) => format!("{}:{}", m.into_ticket, m.reason),
        Some(Action::RequestEvidence(r)) => r.what.clone(),
        Some(Action::Reclassify(r)) => r.reason.clone(),
        None => "none".into(),
    };
    WorkCommandReply {
        outcome: Some(work_command_reply::Outcome::Work(WorkItem {
            work_id: cmd.command_id,
            ticket: cmd.ticket,
            department: cmd.department,
            state: state as i32,
            round: 1,
            version: 2,
            accepted_by: cmd.actor,
            reply: text,
            ..Default::default()
        })),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn work_commands_go_to_their_verbs_and_return_the_work() {
    let env = TestEnv::start().await.unwrap();
    let s = env.subjects();
    for (verb, state) in [
        ("accept", WorkState::Accepted),
        ("propose", WorkState::Proposed),
        ("reply", WorkState::Replied),
        ("resolve", WorkState::Resolved),
    ] {
        stand_in(&env, s.command("routing", &format!("{verb}.*")), move |b| {
            echo_work(b, state)
        })
        .await;
    }
    let client = env.client().await.unwrap();

    let w = client
        .accept("RD-261123-000001", "logistics", "wang.fang")
        .await
        .unwrap();
    assert_eq!(w.state(), WorkState::Accepted);
    assert_eq!(
        (
            w.ticket.as_str(),
            w.department.as_str(),
            w.accepted_by.as_str()
        ),
        ("RD-261123-000001", "logistics", "wang.fang")
    );
    assert!(is_v7(&w.work_id), "command id {:?}", w.work_id);
    let again = client
        .accept("RD-261123-000001", "logistics", "wang.fang")
        .await
        .unwrap();
    assert_ne!(again.work_id, w.work_id, "each call makes a new command id");

    let proposal = Propose {
        responsibility: Responsibility::CompanyLiable as i32,
        remedy: "refund".into(),
        compensation_minor: 80_000,
        currency: "CNY".into(),
        kind: 0,
    };
    let p = client
        .propose("RD-261123-000001", "logistics", "wang.fang", proposal)
        .await
        .unwrap();
    assert_eq!(
        (p.state(), p.reply.as_str()),
        (WorkState::Proposed, "refund:80000")
    );
    let r = client
        .reply("RD-261123-000001", "logistics", "wang.fang", "we are sorry")
        .await
        .unwrap();
    assert_eq!(
        (r.state(), r.reply.as_str()),
        (WorkState::Replied, "we are sorry")
    );
    let d = client
        .resolve("RD-261123-000001", "logistics", "wang.fang", "refunded")
        .await
        .unwrap();
    assert_eq!(
        (d.state(), d.reply.as_str()),
        (WorkState::Resolved, "refunded")
    );

    // A kept request keeps its id, so a resend is recognisable as the same command.
    let kept = requests::accept("RD-261123-000001", "logistics", "wang.fang");
    let first = client.send_work_command(kept.clone()).await.unwrap();
    let second = client.send_work_command(kept.clone()).await.unwrap();
    assert_eq!(first.work_id, kept.command_id);
    assert_eq!(second.work_id, kept.command_id);
    let mut blank = kept;
    blank.command_id.clear();
    assert!(is_v7(
        &client.send_work_command(blank).await.unwrap().work_id
    ));
}

#[tokio::test]
async fn a_refusal_keeps_code_field_and_message() {
    let env = TestEnv::start().await.unwrap();
    stand_in(&env, env.subjects().command("routing", "accept.*"), |_| {
        WorkCommandReply {
            outcome: Some(work_command_reply::Outcome::Error(CommandError {
                code: CommandErrorCode::Forbidden as i32,
                field: "department".into(),
                message: "the work belongs to quality".into(),
            })),
        }
        .encode_to_vec()
    })
    .await;
    let client = env.client().await.unwrap();
    let e = client
        .accept("RD-261123-000001", "logistics", "wang.fang")
        .await
        .unwrap_err();
    match &e {
        ClientError::Command {
            code,
            field,
            message,
        } => {
            assert_eq!(*code, CommandErrorCode::Forbidden);
            assert_eq!(field, "department");
            assert_eq!(message, "the work belongs to quality");
        }
        other => panic!("expected a command error, got {other:?}"),
    }
    assert!(e.is_refusal());
}

#[tokio::test]
async fn no_service_and_a_silent_service_are_told_apart() {
    let env = TestEnv::start().await.unwrap();
    let client = env
        .client()
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let e = client.list_approvals(10).await.unwrap_err();
    assert!(matches!(e, ClientError::NoResponders("approval")), "{e:?}");

    // Subscribed but never answering: the caller gets a timeout, not a hang.
    let nats = env.nats_client().await.unwrap();
    let _sub = nats
        .subscribe(env.subjects().command("survey", "answer"))
        .await
        .unwrap();
    subscriptions_in_place(&nats).await;
    let started = std::time::Instant::now();
    let e = client
        .answer_survey("RD-1", "token", SurveyScores::default(), "")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout("survey", _)), "{e:?}");
    assert!(!e.is_refusal());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn lists_decisions_and_answers_round_trip() {
    let env = TestEnv::start().await.unwrap();
    let s = env.subjects();
    stand_in(&env, s.command("routing", "list.*"), |b| {
        let q = ListWork::decode(b).unwrap();
        // One item per requested state, in the requested department, at most `limit`.
        let items = q
            .states
            .iter()
            .take(q.limit as usize)
            .map(|st| WorkItem {
                department: q.department.clone(),
                state: *st,
                ..Default::default()
            })
            .collect();
        ListWorkReply {
            outcome: Some(list_work_reply::Outcome::List(WorkList { items })),
        }
        .encode_to_vec()
    })
    .await;
    stand_in(&env, s.command("approval", "decide"), |b| {
        let d = DecideApproval::decode(b).unwrap();
        assert!(is_v7(&d.command_id));
        ApprovalReply {
            outcome: Some(approval_reply::Outcome::Approval(ApprovalView {
                ticket: d.ticket,
                state: if d.approve { "approved" } else { "rejected" }.into(),
                decided_by: d.approver,
                note: d.note,
                ..Default::default()
            })),
        }
        .encode_to_vec()
    })
    .await;
    stand_in(&env, s.command("approval", "list"), |b| {
        let q = ListApprovals::decode(b).unwrap();
        ListApprovalsReply {
            outcome: Some(list_approvals_reply::Outcome::List(ApprovalList {
                items: (0..q.limit)
                    .map(|i| ApprovalView {
                        ticket: format!("RD-{i}"),
                        state: "pending".into(),
                        ..Default::default()
                    })
                    .collect(),
            })),
        }
        .encode_to_vec()
    })
    .await;
    stand_in(&env, s.command("survey", "answer"), |b| {
        let a = AnswerSurvey::decode(b).unwrap();
        assert!(is_v7(&a.command_id));
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
    let client = env.client().await.unwrap();

    let items = client
        .list_work("quality", &[WorkState::Assigned, WorkState::Proposed], 10)
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].state(), WorkState::Proposed);
    assert!(items.iter().all(|w| w.department == "quality"));
    assert_eq!(
        client
            .list_work("quality", &[WorkState::Assigned, WorkState::Proposed], 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let a = client
        .decide_approval("RD-7", "zhao.min", false, "too much")
        .await
        .unwrap();
    assert_eq!(
        (
            a.ticket.as_str(),
            a.state.as_str(),
            a.decided_by.as_str(),
            a.note.as_str()
        ),
        ("RD-7", "rejected", "zhao.min", "too much")
    );
    assert_eq!(client.list_approvals(3).await.unwrap().len(), 3);

    let scores = SurveyScores {
        overall: 2,
        attitude: 1,
        ..Default::default()
    };
    let v = client
        .answer_survey("RD-7", "token-7", scores, "nobody called back")
        .await
        .unwrap();
    assert!(!v.satisfied);
    assert_eq!(v.scores.unwrap().attitude, 1);
    assert_eq!(v.comment, "nobody called back");
}
