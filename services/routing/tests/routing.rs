//! Routing against a real nats-server with JetStream and a real PostgreSQL. Upstream and
//! downstream services are played by publishing their events.

use std::time::Duration;

use prost::Message as _;
use redress_platform::clock;
use redress_platform::envelope::{Cause, new_event};
use redress_proto::subjects::Stream;
use redress_proto::v1::WorkChange;
use redress_proto::v1::{
    Accept, ActionKind, ApprovalDecided, CommandErrorCode, ComplaintClassified, ComplaintClosed,
    ComplaintReopened, Contest, Deadline, DeadlineSettled, Envelope, Explain, FileRef, Investigate,
    InvestigationAction, ListWork, ListWorkReply, Propose, Reply, ReplyToComplainant,
    ReportProgress, Resolve, Responsibility, Severity, Transfer, Urgency, WorkChanged, WorkCommand,
    WorkCommandReply, WorkItem, WorkState, envelope::Payload, list_work_reply,
    work_command::Action, work_command_reply,
};
use redress_testkit::{RunningService, TestEnv, eventually};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn start(env: &TestEnv) -> RunningService {
    env.start_service("routing", clock::system(), redress_routing::run)
        .await
        .expect("routing starts")
}

fn cause(complaint: Uuid) -> Cause {
    Cause {
        complaint_id: complaint,
        ticket: String::new(),
        causation_id: "test".into(),
        correlation_id: complaint.to_string(),
        playbook: "default".into(),
    }
}

fn classified(complaint: Uuid, ticket: &str, category: &str, severity: Severity) -> Envelope {
    new_event(
        "classification",
        &cause(complaint),
        chrono::Utc::now(),
        Payload::ComplaintClassified(ComplaintClassified {
            ticket: ticket.into(),
            channel: "sms".into(),
            external_id: format!("ext-{ticket}"),
            nature: "valid".into(),
            category: category.into(),
            severity: severity as i32,
            urgency: Urgency::Normal as i32,
            confidence: 1.0,
            text: "快递丢了".into(),
            ..Default::default()
        }),
    )
}

/// Every work change of `dept` published so far, in order.
async fn changes(env: &TestEnv, change: WorkChange, dept: &str) -> Vec<WorkItem> {
    env.events(env.subjects().work_event(change, dept))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::WorkChanged(WorkChanged { work, .. })) => work,
            _ => None,
        })
        .collect()
}

async fn command(
    env: &TestEnv,
    verb: &str,
    command_id: &str,
    ticket: &str,
    dept: &str,
    actor: &str,
    action: Action,
) -> work_command_reply::Outcome {
    let request = WorkCommand {
        command_id: command_id.into(),
        ticket: ticket.into(),
        department: dept.into(),
        actor: actor.into(),
        action: Some(action),
    };
    let reply = env
        .request_as(
            actor,
            env.subjects().department_command(verb, dept),
            request.encode_to_vec(),
        )
        .await
        .unwrap();
    WorkCommandReply::decode(reply.payload)
        .unwrap()
        .outcome
        .unwrap()
}

fn ok(o: work_command_reply::Outcome) -> WorkItem {
    match o {
        work_command_reply::Outcome::Work(w) => w,
        work_command_reply::Outcome::Error(e) => panic!("refused: {e:?}"),
    }
}

fn refused(o: work_command_reply::Outcome) -> (CommandErrorCode, String) {
    match o {
        work_command_reply::Outcome::Error(e) => (e.code(), e.field),
        work_command_reply::Outcome::Work(w) => panic!("accepted: {w:?}"),
    }
}

fn id() -> String {
    Uuid::now_v7().to_string()
}

async fn assigned(
    env: &TestEnv,
    ticket: &str,
    category: &str,
    severity: Severity,
) -> (Uuid, WorkItem) {
    let complaint = Uuid::now_v7();
    let subjects = env.subjects();
    env.publish_event(
        subjects.event(redress_proto::EventKind::ComplaintClassified.name()),
        &classified(complaint, ticket, category, severity),
    )
    .await
    .unwrap();
    let dept = if severity == Severity::Major {
        "customer-service"
    } else {
        "logistics"
    };
    let find = || async {
        changes(env, WorkChange::Assigned, dept)
            .await
            .into_iter()
            .find(|w| w.ticket == ticket)
    };
    eventually("work assigned", WAIT, || async { find().await.is_some() }).await;
    (complaint, find().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn classified_work_goes_to_its_department_once() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let complaint = Uuid::now_v7();
    let event = classified(complaint, "T-1", "delivery", Severity::General);
    let subject = env
        .subjects()
        .event(redress_proto::EventKind::ComplaintClassified.name());
    env.publish_event(subject.clone(), &event).await.unwrap();
    // The same classification again, and a second classification event of the same complaint.
    env.publish_event(subject.clone(), &event).await.unwrap();
    env.publish_event(
        subject,
        &classified(complaint, "T-1", "delivery", Severity::General),
    )
    .await
    .unwrap();
    eventually("assignment", WAIT, || async {
        !changes(&env, WorkChange::Assigned, "logistics")
            .await
            .is_empty()
    })
    .await;
    // Give the duplicates time to be (not) handled, then count.
    let pool = env.admin_pool().await.unwrap();
    eventually("all three handled", WAIT, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM routing.inbox")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 2
    })
    .await;
    let work = changes(&env, WorkChange::Assigned, "logistics").await;
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].state(), WorkState::Assigned);
    assert_eq!((work[0].round, work[0].version), (1, 1));
    assert_eq!(work[0].routing_rule, "route.delivery");
    assert_eq!(work[0].text, "快递丢了");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.work_items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    routing.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_carries_work_through_approval_reply_resolve_and_close() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let (complaint, _) = assigned(&env, "T-2", "delivery", Severity::General).await;

    // Not a member, another department, a step out of order: refused, nothing changes.
    let (code, field) = refused(
        command(
            &env,
            "accept",
            &id(),
            "T-2",
            "logistics",
            "ma.li",
            Action::Accept(Accept {}),
        )
        .await,
    );
    assert_eq!(
        (code, field.as_str()),
        (CommandErrorCode::Forbidden, "actor")
    );
    let (code, field) = refused(
        command(
            &env,
            "accept",
            &id(),
            "T-2",
            "finance",
            "ma.li",
            Action::Accept(Accept {}),
        )
        .await,
    );
    assert_eq!(
        (code, field.as_str()),
        (CommandErrorCode::Forbidden, "department")
    );
    let (code, _) = refused(
        command(
            &env,
            "resolve",
            &id(),
            "T-2",
            "logistics",
            "zhou.qiang",
            Action::Resolve(Resolve::default()),
        )
        .await,
    );
    assert_eq!(code, CommandErrorCode::WrongState);
    let (code, _) = refused(
        command(
            &env,
            "accept",
            &id(),
            "T-404",
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await,
    );
    assert_eq!(code, CommandErrorCode::NotFound);
    let (code, field) = refused(
        command(
            &env,
            "propose",
            &id(),
            "T-2",
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await,
    );
    assert_eq!(
        (code, field.as_str()),
        (CommandErrorCode::Malformed, "action")
    );

    // The department is the subject's (broker permissions restrict subjects): a body that
    // names another department is refused.
    let nats = env.nats_client().await.unwrap();
    let smuggled = WorkCommand {
        command_id: id(),
        ticket: "T-2".into(),
        department: "logistics".into(),
        actor: "zhou.qiang".into(),
        action: Some(Action::Accept(Accept {})),
    };
    let reply = nats
        .request(
            env.subjects().department_command("accept", "finance"),
            smuggled.encode_to_vec().into(),
        )
        .await
        .unwrap();
    let (code, field) = refused(
        WorkCommandReply::decode(reply.payload)
            .unwrap()
            .outcome
            .unwrap(),
    );
    assert_eq!(
        (code, field.as_str()),
        (CommandErrorCode::Forbidden, "department")
    );

    // Accept, resent with the same command id: one change, the same answer.
    let accept_id = id();
    let first = ok(command(
        &env,
        "accept",
        &accept_id,
        "T-2",
        "logistics",
        "zhou.qiang",
        Action::Accept(Accept {}),
    )
    .await);
    let again = ok(command(
        &env,
        "accept",
        &accept_id,
        "T-2",
        "logistics",
        "zhou.qiang",
        Action::Accept(Accept {}),
    )
    .await);
    assert_eq!(first, again);
    // The same id for another command is refused, never answered with the first reply.
    let (code, field) = refused(
        command(
            &env,
            "accept",
            &accept_id,
            "T-2",
            "logistics",
            "sun.hao",
            Action::Accept(Accept {}),
        )
        .await,
    );
    assert_eq!(
        (code, field.as_str()),
        (CommandErrorCode::Malformed, "command_id")
    );
    assert_eq!((first.state(), first.version), (WorkState::Accepted, 2));

    let propose = Propose {
        responsibility: Responsibility::CompanyLiable as i32,
        remedy: "重新发货并致歉".into(),
        compensation_minor: 80000,
        currency: String::new(),
        kind: 0,
    };
    let proposed = ok(command(
        &env,
        "propose",
        &id(),
        "T-2",
        "logistics",
        "zhou.qiang",
        Action::Propose(propose),
    )
    .await);
    let proposal = proposed.proposal.clone().unwrap();
    assert_eq!(proposal.currency, "CNY");
    assert_eq!(proposed.state(), WorkState::Proposed);
    let (code, _) = refused(
        command(
            &env,
            "reply",
            &id(),
            "T-2",
            "logistics",
            "zhou.qiang",
            Action::Reply(Reply {
                message: "x".into(),
            }),
        )
        .await,
    );
    assert_eq!(
        code,
        CommandErrorCode::WrongState,
        "no reply before approval"
    );

    // The approver rejects: back to the department, which proposes again; then approved.
    let decided = |approved: bool, proposal_id: String, note: &str| {
        new_event(
            "approval",
            &cause(complaint),
            chrono::Utc::now(),
            Payload::ApprovalDecided(ApprovalDecided {
                approval_id: id(),
                work_id: proposed.work_id.clone(),
                ticket: "T-2".into(),
                proposal_id,
                approved,
                decided_by: "zhao.min".into(),
                note: note.into(),
                automatic: false,
                department: "logistics".into(),
            }),
        )
    };
    let decided_subject = env
        .subjects()
        .event(redress_proto::EventKind::ApprovalDecided.name());
    env.publish_event(
        decided_subject.clone(),
        &decided(false, proposal.proposal_id.clone(), "too much"),
    )
    .await
    .unwrap();
    eventually("rejection", WAIT, || async {
        !changes(&env, WorkChange::Rejected, "logistics")
            .await
            .is_empty()
    })
    .await;
    let propose = Propose {
        responsibility: Responsibility::CompanyLiable as i32,
        remedy: "重新发货".into(),
        compensation_minor: 20000,
        currency: "CNY".into(),
        kind: 0,
    };
    let second = ok(command(
        &env,
        "propose",
        &id(),
        "T-2",
        "logistics",
        "zhou.qiang",
        Action::Propose(propose),
    )
    .await);
    // A late approval of the rejected proposal changes nothing.
    env.publish_event(
        decided_subject.clone(),
        &decided(true, proposal.proposal_id.clone(), ""),
    )
    .await
    .unwrap();
    env.publish_event(
        decided_subject,
        &decided(true, second.proposal.unwrap().proposal_id, ""),
    )
    .await
    .unwrap();
    eventually("approval", WAIT, || async {
        !changes(&env, WorkChange::Approved, "logistics")
            .await
            .is_empty()
    })
    .await;
    assert_eq!(
        changes(&env, WorkChange::Approved, "logistics").await.len(),
        1
    );

    let replied = ok(command(
        &env,
        "reply",
        &id(),
        "T-2",
        "logistics",
        "zhou.qiang",
        Action::Reply(Reply {
            message: "已重新发货".into(),
        }),
    )
    .await);
    assert_eq!(replied.state(), WorkState::Replied);
    // The notice goes out through the outbox after the command's reply.
    eventually("the reply notice", WAIT, || async {
        !env.stream_messages(Stream::Notify, env.subjects().notify_reply("sms"))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let replies = env
        .stream_messages(Stream::Notify, env.subjects().notify_reply("sms"))
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    let reply = ReplyToComplainant::decode(replies[0].payload.clone()).unwrap();
    assert_eq!(
        (reply.ticket.as_str(), reply.message.as_str()),
        ("T-2", "已重新发货")
    );
    let resolved = ok(command(
        &env,
        "resolve",
        &id(),
        "T-2",
        "logistics",
        "sun.hao",
        Action::Resolve(Resolve {
            summary: "done".into(),
        }),
    )
    .await);
    assert_eq!(resolved.state(), WorkState::Resolved);

    env.publish_event(
        env.subjects()
            .event(redress_proto::EventKind::ComplaintClosed.name()),
        &new_event(
            "survey",
            &cause(complaint),
            chrono::Utc::now(),
            Payload::ComplaintClosed(ComplaintClosed {
                ticket: "T-2".into(),
                work_id: resolved.work_id.clone(),
                round: 1,
                survey_id: id(),
                no_response: false,
            }),
        ),
    )
    .await
    .unwrap();
    eventually("closed", WAIT, || async {
        !changes(&env, WorkChange::Closed, "logistics")
            .await
            .is_empty()
    })
    .await;
    let closed = changes(&env, WorkChange::Closed, "logistics").await;
    assert_eq!(closed[0].state(), WorkState::Closed);
    // accepted, proposed, rejected, proposed, approved, replied, resolved, closed
    assert_eq!(closed[0].version, 9);

    // Closed work is no longer listed as open.
    let nats = env.nats_client().await.unwrap();
    let reply = nats
        .request(
            env.subjects().department_command("list", "logistics"),
            ListWork {
                department: "logistics".into(),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        )
        .await
        .unwrap();
    match ListWorkReply::decode(reply.payload)
        .unwrap()
        .outcome
        .unwrap()
    {
        list_work_reply::Outcome::List(l) => assert!(l.items.is_empty(), "{l:?}"),
        other => panic!("{other:?}"),
    }
    routing.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dissatisfaction_reopens_and_breaches_escalate_once_each() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let (complaint, work) = assigned(&env, "T-3", "delivery", Severity::General).await;

    // A breach, delivered twice, escalates once; a second deadline escalates one level up.
    let breach = |name: &str, round: u32| {
        new_event(
            "sla-timer",
            &cause(complaint),
            chrono::Utc::now(),
            Payload::DeadlineBreached(DeadlineSettled {
                deadline: Some(Deadline {
                    name: name.into(),
                    work_id: work.work_id.clone(),
                    round,
                    ..Default::default()
                }),
                retracts_breach: false,
            }),
        )
    };
    let subject = env
        .subjects()
        .event(redress_proto::EventKind::SlaBreached.name());
    let first = breach("first_response", 1);
    env.publish_event(subject.clone(), &first).await.unwrap();
    env.publish_event(subject.clone(), &breach("first_response", 1))
        .await
        .unwrap();
    env.publish_event(subject.clone(), &breach("resolution", 1))
        .await
        .unwrap();
    let escalated = env.subjects().work_escalated("logistics");
    eventually("two escalations", WAIT, || async {
        env.events(escalated.clone()).await.unwrap().len() >= 2
    })
    .await;
    let pool = env.admin_pool().await.unwrap();
    eventually("all breaches handled", WAIT, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM routing.inbox")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 4
    })
    .await;
    let levels: Vec<(u32, String)> = env
        .events(escalated)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::WorkEscalated(x)) => Some((x.level, x.escalated_to)),
            _ => None,
        })
        .collect();
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert_eq!(levels[0].0, 1);
    assert!(levels[0].1.contains("sun.hao"), "{levels:?}");
    assert_eq!(levels[1], (2, "service manager".to_string()));

    // Through to resolved, then the complainant is not satisfied: round 2 is assigned.
    ok(command(
        &env,
        "accept",
        &id(),
        "T-3",
        "logistics",
        "zhou.qiang",
        Action::Accept(Accept {}),
    )
    .await);
    // The command's own reply names the proposal; its event may not be published yet.
    let proposed = ok(command(
        &env,
        "propose",
        &id(),
        "T-3",
        "logistics",
        "zhou.qiang",
        Action::Propose(Propose {
            responsibility: Responsibility::NotLiable as i32,
            remedy: "explained".into(),
            ..Default::default()
        }),
    )
    .await);
    let proposal_id = proposed.proposal.clone().unwrap().proposal_id;
    env.publish_event(
        env.subjects()
            .event(redress_proto::EventKind::ApprovalDecided.name()),
        &new_event(
            "approval",
            &cause(complaint),
            chrono::Utc::now(),
            Payload::ApprovalDecided(ApprovalDecided {
                work_id: work.work_id.clone(),
                proposal_id,
                approved: true,
                automatic: true,
                decided_by: "policy".into(),
                ..Default::default()
            }),
        ),
    )
    .await
    .unwrap();
    eventually("approved", WAIT, || async {
        !changes(&env, WorkChange::Approved, "logistics")
            .await
            .is_empty()
    })
    .await;
    ok(command(
        &env,
        "reply",
        &id(),
        "T-3",
        "logistics",
        "zhou.qiang",
        Action::Reply(Reply {
            message: "explained".into(),
        }),
    )
    .await);
    ok(command(
        &env,
        "resolve",
        &id(),
        "T-3",
        "logistics",
        "zhou.qiang",
        Action::Resolve(Resolve::default()),
    )
    .await);
    let reopened = new_event(
        "survey",
        &cause(complaint),
        chrono::Utc::now(),
        Payload::ComplaintReopened(ComplaintReopened {
            ticket: "T-3".into(),
            work_id: work.work_id.clone(),
            round: 1,
            survey_id: id(),
            reason: "still no parcel".into(),
        }),
    );
    let subject = env
        .subjects()
        .event(redress_proto::EventKind::ComplaintReopened.name());
    env.publish_event(subject.clone(), &reopened).await.unwrap();
    env.publish_event(subject, &reopened).await.unwrap();
    eventually("round 2", WAIT, || async {
        changes(&env, WorkChange::Assigned, "logistics").await.len() == 2
    })
    .await;
    let rounds = changes(&env, WorkChange::Assigned, "logistics").await;
    assert_eq!(rounds[1].round, 2);
    assert_eq!(rounds[1].state(), WorkState::Assigned);
    assert!(rounds[1].proposal.is_none());
    // A breach of round 1 arriving now escalates nothing.
    let late = breach("resolution_late", 1);
    env.publish_event(
        env.subjects()
            .event(redress_proto::EventKind::SlaBreached.name()),
        &late,
    )
    .await
    .unwrap();
    eventually("the late breach to be handled", WAIT, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM routing.inbox WHERE message_id = $1")
            .bind(&late.event_id)
            .fetch_one(&pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    // Round 2 can be accepted again by the department.
    let again = ok(command(
        &env,
        "accept",
        &id(),
        "T-3",
        "logistics",
        "sun.hao",
        Action::Accept(Accept {}),
    )
    .await);
    assert_eq!((again.round, again.state()), (2, WorkState::Accepted));
    assert_eq!(
        env.events(env.subjects().work_escalated("logistics"))
            .await
            .unwrap()
            .len(),
        2
    );
    routing.stop().await.unwrap();
}

/// Every work event of `ticket` on the stream, in order, with its payload.
async fn work_events(env: &TestEnv, ticket: &str) -> Vec<WorkChanged> {
    env.events(env.subjects().event("work.>"))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::WorkChanged(w))
                if w.work.as_ref().is_some_and(|i| i.ticket == ticket) =>
            {
                Some(w)
            }
            _ => None,
        })
        .collect()
}

fn transfer(to: &str, reason: &str, understood: &str) -> Action {
    Action::Transfer(Transfer {
        to_department: to.into(),
        reason: reason.into(),
        understood: understood.into(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn misrouted_work_is_handed_on_once_understood_and_never_bounced_back() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let (_, work) = assigned(&env, "T-7", "delivery", Severity::General).await;
    assert_eq!(work.department, "logistics");
    let understood = "包裹到了但商品有裂痕，客户要换货";

    // Refusals: nothing understood, no reason, an unknown or the same department, not a
    // member, another department's subject.
    for (action, actor, dept, code, field) in [
        (
            transfer("quality", "not a delivery problem", " "),
            "zhou.qiang",
            "logistics",
            CommandErrorCode::Missing,
            "transfer.understood",
        ),
        (
            transfer("quality", "", understood),
            "zhou.qiang",
            "logistics",
            CommandErrorCode::Missing,
            "transfer.reason",
        ),
        (
            transfer("marketing", "x", understood),
            "zhou.qiang",
            "logistics",
            CommandErrorCode::Malformed,
            "transfer.to_department",
        ),
        (
            transfer("logistics", "x", understood),
            "zhou.qiang",
            "logistics",
            CommandErrorCode::Malformed,
            "transfer.to_department",
        ),
        (
            transfer("quality", "x", understood),
            "xu.lin",
            "logistics",
            CommandErrorCode::Forbidden,
            "actor",
        ),
        (
            transfer("quality", "x", understood),
            "xu.lin",
            "quality",
            CommandErrorCode::Forbidden,
            "department",
        ),
    ] {
        let (c, f) = refused(command(&env, "transfer", &id(), "T-7", dept, actor, action).await);
        assert_eq!((c, f.as_str()), (code, field));
    }

    // Logistics accepts, then finds it is a quality matter: handed on, twice the same
    // command, one hop.
    ok(command(
        &env,
        "accept",
        &id(),
        "T-7",
        "logistics",
        "zhou.qiang",
        Action::Accept(Accept {}),
    )
    .await);
    let hop = id();
    let moved = ok(command(
        &env,
        "transfer",
        &hop,
        "T-7",
        "logistics",
        "zhou.qiang",
        transfer("quality", "商品破损，不是物流延误", understood),
    )
    .await);
    let again = ok(command(
        &env,
        "transfer",
        &hop,
        "T-7",
        "logistics",
        "zhou.qiang",
        transfer("quality", "商品破损，不是物流延误", understood),
    )
    .await);
    assert_eq!(moved, again);
    assert_eq!(
        (moved.department.as_str(), moved.state(), moved.round),
        ("quality", WorkState::Assigned, 1)
    );
    assert_eq!(moved.previous_departments, ["logistics"]);
    assert!(moved.accepted_by.is_empty());
    // The receiving department gets it as an assignment, text and hop included.
    eventually("the transfer's assignment", WAIT, || async {
        changes(&env, WorkChange::Assigned, "quality")
            .await
            .iter()
            .any(|w| w.ticket == "T-7")
    })
    .await;
    let events = work_events(&env, "T-7").await;
    let hops: Vec<_> = events.iter().filter_map(|e| e.transfer.clone()).collect();
    assert_eq!(hops.len(), 1, "{events:?}");
    assert_eq!(
        (
            hops[0].from_department.as_str(),
            hops[0].to_department.as_str(),
            hops[0].understood.as_str(),
            hops[0].sent_back
        ),
        ("logistics", "quality", understood, false)
    );
    let to_quality = events.iter().find(|e| e.transfer.is_some()).unwrap();
    assert_eq!(to_quality.work.as_ref().unwrap().text, "快递丢了");
    // The old department can no longer act on it.
    let (c, f) = refused(
        command(
            &env,
            "accept",
            &id(),
            "T-7",
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await,
    );
    assert_eq!((c, f.as_str()), (CommandErrorCode::Forbidden, "department"));

    // No bouncing: a member of quality cannot send it back; quality's manager can.
    let (c, f) = refused(
        command(
            &env,
            "transfer",
            &id(),
            "T-7",
            "quality",
            "xu.lin",
            transfer("logistics", "物流也有责任", understood),
        )
        .await,
    );
    assert_eq!((c, f.as_str()), (CommandErrorCode::Forbidden, "actor"));
    let back = ok(command(
        &env,
        "transfer",
        &id(),
        "T-7",
        "quality",
        "he.jing",
        transfer("logistics", "外包装压坏，运输造成", understood),
    )
    .await);
    assert_eq!(back.department, "logistics");
    assert_eq!(back.previous_departments, ["logistics", "quality"]);
    // The playbook's arbiter (routing.send_back_by) may send it back too without being a
    // member of the holding department, but not hand it anywhere new.
    ok(command(
        &env,
        "transfer",
        &id(),
        "T-7",
        "logistics",
        "sun.hao",
        transfer("quality", "还是质量问题", understood),
    )
    .await);
    let (c, f) = refused(
        command(
            &env,
            "transfer",
            &id(),
            "T-7",
            "quality",
            "liu.yang",
            transfer("finance", "退款", understood),
        )
        .await,
    );
    assert_eq!((c, f.as_str()), (CommandErrorCode::Forbidden, "actor"));
    let settled = ok(command(
        &env,
        "transfer",
        &id(),
        "T-7",
        "quality",
        "liu.yang",
        transfer("logistics", "运输损坏，由物流部处理", understood),
    )
    .await);
    assert_eq!(settled.department, "logistics");

    // Once a remedy is proposed the work stays where it is.
    ok(command(
        &env,
        "accept",
        &id(),
        "T-7",
        "logistics",
        "sun.hao",
        Action::Accept(Accept {}),
    )
    .await);
    ok(command(
        &env,
        "propose",
        &id(),
        "T-7",
        "logistics",
        "sun.hao",
        Action::Propose(Propose {
            responsibility: Responsibility::CompanyLiable as i32,
            remedy: "换货".into(),
            ..Default::default()
        }),
    )
    .await);
    let (c, _) = refused(
        command(
            &env,
            "transfer",
            &id(),
            "T-7",
            "logistics",
            "sun.hao",
            transfer("finance", "退款", understood),
        )
        .await,
    );
    assert_eq!(c, CommandErrorCode::WrongState);

    // The routing history shows every hop.
    let pool = env.admin_pool().await.unwrap();
    let hops: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT from_department, to_department, transferred_by, sent_back
         FROM routing.transfers ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        hops,
        [
            (
                "logistics".into(),
                "quality".into(),
                "zhou.qiang".into(),
                false
            ),
            ("quality".into(), "logistics".into(), "he.jing".into(), true),
            ("logistics".into(), "quality".into(), "sun.hao".into(), true),
            (
                "quality".into(),
                "logistics".into(),
                "liu.yang".into(),
                true
            ),
        ]
    );
    let transferred: i64 =
        sqlx::query_scalar("SELECT count(*) FROM routing.transitions WHERE change = 'transferred'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(transferred, 4);
    routing.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_reaches_the_complainant_and_a_contested_reply_goes_back_for_a_new_proposal() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let (complaint, _) = assigned(&env, "T-8", "delivery", Severity::General).await;
    let progress = |message: &str| {
        Action::Progress(ReportProgress {
            message: message.into(),
        })
    };
    let act = |verb: &'static str, action: Action| {
        let env = &env;
        async move { command(env, verb, &id(), "T-8", "logistics", "zhou.qiang", action).await }
    };
    // Nothing to report before the work is taken on; nothing contested before a reply.
    let (c, _) = refused(act("progress", progress("在查")).await);
    assert_eq!(c, CommandErrorCode::WrongState);
    ok(act("accept", Action::Accept(Accept {})).await);
    let (c, f) = refused(act("progress", progress("  ")).await);
    assert_eq!(
        (c, f.as_str()),
        (CommandErrorCode::Missing, "progress.message")
    );
    let (c, _) = refused(
        act(
            "contest",
            Action::Contest(Contest {
                objection: "不接受".into(),
            }),
        )
        .await,
    );
    assert_eq!(c, CommandErrorCode::WrongState);

    let reported = ok(act("progress", progress("已联系快递公司，三天内答复您")).await);
    assert_eq!(reported.state(), WorkState::Accepted);
    eventually("the progress notice", WAIT, || async {
        !env.stream_messages(Stream::Notify, env.subjects().notify_progress("sms"))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let notices = env
        .stream_messages(Stream::Notify, env.subjects().notify_progress("sms"))
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
    let notice = ReplyToComplainant::decode(notices[0].payload.clone()).unwrap();
    assert_eq!(
        (notice.ticket.as_str(), notice.message.as_str()),
        ("T-8", "已联系快递公司，三天内答复您")
    );

    // Propose, approved, reply; the complainant rejects the reply on the phone.
    let approve = |proposal_id: String, work_id: String| {
        new_event(
            "approval",
            &cause(complaint),
            chrono::Utc::now(),
            Payload::ApprovalDecided(ApprovalDecided {
                approval_id: id(),
                work_id,
                ticket: "T-8".into(),
                proposal_id,
                approved: true,
                decided_by: "zhao.min".into(),
                note: String::new(),
                automatic: true,
                department: "logistics".into(),
            }),
        )
    };
    let decided_subject = env
        .subjects()
        .event(redress_proto::EventKind::ApprovalDecided.name());
    let mut last_version = reported.version;
    for (round_trip, remedy) in [(1, "致歉"), (2, "致歉并补偿50元")] {
        let proposed = ok(act(
            "propose",
            Action::Propose(Propose {
                responsibility: Responsibility::CompanyLiable as i32,
                remedy: remedy.into(),
                ..Default::default()
            }),
        )
        .await);
        assert!(proposed.version > last_version);
        env.publish_event(
            decided_subject.clone(),
            &approve(
                proposed.proposal.unwrap().proposal_id,
                proposed.work_id.clone(),
            ),
        )
        .await
        .unwrap();
        eventually("approved", WAIT, || async {
            changes(&env, WorkChange::Approved, "logistics").await.len() == round_trip
        })
        .await;
        let replied = ok(act(
            "reply",
            Action::Reply(Reply {
                message: format!("{remedy}，请确认"),
            }),
        )
        .await);
        last_version = replied.version;
        if round_trip == 1 {
            let contested = ok(act(
                "contest",
                Action::Contest(Contest {
                    objection: "只道歉不够".into(),
                }),
            )
            .await);
            assert_eq!(
                (contested.state(), contested.round, contested.contests),
                (WorkState::Accepted, 1, 1)
            );
            assert!(contested.proposal.is_none() && contested.reply.is_empty());
            last_version = contested.version;
        }
    }
    let resolved = ok(act("resolve", Action::Resolve(Resolve::default())).await);
    assert_eq!((resolved.round, resolved.contests), (1, 1));
    let (c, _) = refused(act("progress", progress("已解决")).await);
    assert_eq!(
        c,
        CommandErrorCode::WrongState,
        "nothing reported after resolving"
    );

    let events = work_events(&env, "T-8").await;
    let contested: Vec<_> = events
        .iter()
        .filter(|e| e.change() == WorkChange::Contested)
        .collect();
    assert_eq!(contested.len(), 1);
    assert_eq!(
        contested[0].note, "只道歉不够",
        "work from before sealing: in clear"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.change() == WorkChange::ProgressReported)
            .count(),
        1
    );
    routing.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn inquiries_and_what_is_not_the_companys_fault_are_explained_and_resolved_in_one_step() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let explain = |message: &str, not_liable: bool| {
        Action::Explain(Explain {
            message: message.into(),
            not_liable,
            basis: "退换货政策 第3条".into(),
        })
    };
    // A valid complaint: explained only when the department finds the company not at fault.
    assigned(&env, "T-9", "delivery", Severity::General).await;
    let (c, f) = refused(
        command(
            &env,
            "explain",
            &id(),
            "T-9",
            "logistics",
            "zhou.qiang",
            explain("按政策不予赔偿", false),
        )
        .await,
    );
    assert_eq!((c, f.as_str()), (CommandErrorCode::Forbidden, "explain"));
    let (c, f) = refused(
        command(
            &env,
            "explain",
            &id(),
            "T-9",
            "logistics",
            "zhou.qiang",
            explain(" ", true),
        )
        .await,
    );
    assert_eq!(
        (c, f.as_str()),
        (CommandErrorCode::Missing, "explain.message")
    );
    let once = id();
    let done = ok(command(
        &env,
        "explain",
        &once,
        "T-9",
        "logistics",
        "zhou.qiang",
        explain("快递已按时签收，签收记录见附件", true),
    )
    .await);
    assert_eq!(done.state(), WorkState::Resolved);
    assert!(done.proposal.is_none());
    assert_eq!(done.accepted_by, "zhou.qiang");
    let again = ok(command(
        &env,
        "explain",
        &once,
        "T-9",
        "logistics",
        "zhou.qiang",
        explain("快递已按时签收，签收记录见附件", true),
    )
    .await);
    assert_eq!(done, again);
    // Each step is its own event, as on the long path: downstream meets the deadlines,
    // sends the reply and the survey without knowing of the fast path.
    eventually("the assignment and three steps", WAIT, || async {
        work_events(&env, "T-9").await.len() == 4
    })
    .await;
    let mut events = work_events(&env, "T-9").await;
    events.sort_by_key(|e| e.work.as_ref().map(|w| w.version));
    let steps: Vec<WorkChange> = events.iter().map(|e| e.change()).collect();
    assert_eq!(
        steps,
        [
            WorkChange::Assigned,
            WorkChange::Accepted,
            WorkChange::Replied,
            WorkChange::Resolved
        ]
    );
    let resolved = events.pop().unwrap();
    assert_eq!(
        resolved.note,
        "explained without a proposal: not the company's fault; basis: 退换货政策 第3条"
    );
    eventually("the reply notice", WAIT, || async {
        env.stream_messages(Stream::Notify, env.subjects().notify_reply("sms"))
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;

    // An inquiry (communicative), already accepted: explained by its nature.
    let complaint = Uuid::now_v7();
    let mut inquiry = classified(complaint, "T-10", "delivery", Severity::General);
    if let Some(Payload::ComplaintClassified(c)) = inquiry.payload.as_mut() {
        c.nature = "communicative".into();
    }
    env.publish_event(
        env.subjects()
            .event(redress_proto::EventKind::ComplaintClassified.name()),
        &inquiry,
    )
    .await
    .unwrap();
    eventually("the inquiry assigned", WAIT, || async {
        changes(&env, WorkChange::Assigned, "logistics")
            .await
            .iter()
            .any(|w| w.ticket == "T-10")
    })
    .await;
    ok(command(
        &env,
        "accept",
        &id(),
        "T-10",
        "logistics",
        "sun.hao",
        Action::Accept(Accept {}),
    )
    .await);
    let done = ok(command(
        &env,
        "explain",
        &id(),
        "T-10",
        "logistics",
        "zhou.qiang",
        explain("快递一般三天内送达，可在官网查询物流", false),
    )
    .await);
    assert_eq!(
        (done.state(), done.accepted_by.as_str()),
        (WorkState::Resolved, "sun.hao")
    );
    let (c, _) = refused(
        command(
            &env,
            "explain",
            &id(),
            "T-10",
            "logistics",
            "zhou.qiang",
            explain("again", false),
        )
        .await,
    );
    assert_eq!(c, CommandErrorCode::WrongState);
    routing.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawal_closes_the_work_even_when_it_comes_before_the_assignment() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    let withdrawn = |complaint: Uuid, ticket: &str| {
        new_event(
            "intake",
            &cause(complaint),
            chrono::Utc::now(),
            Payload::ComplaintWithdrawn(redress_proto::v1::ComplaintWithdrawn {
                ticket: ticket.into(),
            }),
        )
    };
    let subject = env
        .subjects()
        .event(redress_proto::EventKind::ComplaintWithdrawn.name());

    // Withdrawn while the department works on it: closed once, however often told.
    let (complaint, _) = assigned(&env, "T-11", "delivery", Severity::General).await;
    ok(command(
        &env,
        "accept",
        &id(),
        "T-11",
        "logistics",
        "zhou.qiang",
        Action::Accept(Accept {}),
    )
    .await);
    for _ in 0..2 {
        env.publish_event(subject.clone(), &withdrawn(complaint, "T-11"))
            .await
            .unwrap();
    }
    // Withdrawn before routing heard of the classification: retried until the work exists.
    let early = Uuid::now_v7();
    env.publish_event(subject.clone(), &withdrawn(early, "T-12"))
        .await
        .unwrap();
    env.publish_event(
        env.subjects()
            .event(redress_proto::EventKind::ComplaintClassified.name()),
        &classified(early, "T-12", "delivery", Severity::General),
    )
    .await
    .unwrap();
    eventually("both withdrawn", WAIT, || async {
        changes(&env, WorkChange::Withdrawn, "logistics")
            .await
            .len()
            >= 2
    })
    .await;
    let closed = changes(&env, WorkChange::Withdrawn, "logistics").await;
    let mut tickets: Vec<&str> = closed.iter().map(|w| w.ticket.as_str()).collect();
    tickets.sort_unstable();
    assert_eq!(tickets, ["T-11", "T-12"], "each once");
    assert!(closed.iter().all(|w| w.state() == WorkState::Closed));
    let (c, _) = refused(
        command(
            &env,
            "progress",
            &id(),
            "T-11",
            "logistics",
            "zhou.qiang",
            Action::Progress(ReportProgress {
                message: "还在查".into(),
            }),
        )
        .await,
    );
    assert_eq!(c, CommandErrorCode::WrongState);
    routing.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_investigation_record_keeps_cause_responsibility_actions_and_files() {
    let env = TestEnv::start().await.unwrap();
    let routing = start(&env).await;
    assigned(&env, "T-13", "delivery", Severity::General).await;
    let entry = Investigate {
        notes: "调取了快递站监控".into(),
        cause: "快递员未按地址派送".into(),
        responsibility: Responsibility::CompanyLiable as i32,
        actions: vec![
            InvestigationAction {
                kind: ActionKind::Corrective as i32,
                what: "重新派送".into(),
                owner: "zhou.qiang".into(),
                due_on: "2026-12-02".into(),
            },
            InvestigationAction {
                kind: ActionKind::Preventive as i32,
                what: "派送前电话确认".into(),
                owner: "sun.hao".into(),
                due_on: "2026-12-31".into(),
            },
        ],
        files: vec![FileRef {
            uri: "s3://evidence/T-13/cctv.mp4".into(),
            media_type: "video/mp4".into(),
            size_bytes: 12_000_000,
            file_name: "cctv.mp4".into(),
        }],
    };
    let investigate = |entry: Investigate| Action::Investigate(entry);
    // Accept first; an entry must say something; actions need an owner and a real day;
    // files are references with a scheme.
    let (c, _) = refused(
        command(
            &env,
            "investigate",
            &id(),
            "T-13",
            "logistics",
            "zhou.qiang",
            investigate(entry.clone()),
        )
        .await,
    );
    assert_eq!(c, CommandErrorCode::WrongState);
    ok(command(
        &env,
        "accept",
        &id(),
        "T-13",
        "logistics",
        "zhou.qiang",
        Action::Accept(Accept {}),
    )
    .await);
    for (bad, field) in [
        (Investigate::default(), "investigate"),
        (
            Investigate {
                actions: vec![InvestigationAction {
                    due_on: "2026-02-30".into(),
                    ..entry.actions[0].clone()
                }],
                ..Default::default()
            },
            "investigate.actions.due_on",
        ),
        (
            Investigate {
                actions: vec![InvestigationAction {
                    owner: String::new(),
                    ..entry.actions[0].clone()
                }],
                ..Default::default()
            },
            "investigate.actions.owner",
        ),
        (
            Investigate {
                files: vec![FileRef {
                    uri: "cctv.mp4".into(),
                    ..entry.files[0].clone()
                }],
                ..Default::default()
            },
            "investigate.files.uri",
        ),
    ] {
        let (_, f) = refused(
            command(
                &env,
                "investigate",
                &id(),
                "T-13",
                "logistics",
                "zhou.qiang",
                investigate(bad),
            )
            .await,
        );
        assert_eq!(f, field);
    }
    let recorded = ok(command(
        &env,
        "investigate",
        &id(),
        "T-13",
        "logistics",
        "zhou.qiang",
        investigate(entry.clone()),
    )
    .await);
    assert_eq!(
        recorded.state(),
        WorkState::Accepted,
        "the state does not move"
    );
    eventually("the entry's event", WAIT, || async {
        !changes(&env, WorkChange::Investigated, "logistics")
            .await
            .is_empty()
    })
    .await;
    let told: Vec<_> = work_events(&env, "T-13")
        .await
        .into_iter()
        .filter(|e| e.change() == WorkChange::Investigated)
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].investigation.as_ref(), Some(&entry));
    assert_eq!(
        told[0].note,
        "cause: 快递员未按地址派送; responsibility: company liable; 2 action(s); 1 file(s)"
    );
    let pool = env.admin_pool().await.unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT entry FROM routing.investigations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(Investigate::decode(stored.as_slice()).unwrap(), entry);
    routing.stop().await.unwrap();
}
