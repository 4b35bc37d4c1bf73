//! Approval against a real nats-server with JetStream and a real PostgreSQL: proposals
//! open approvals by the playbook's policy, approvers decide them by command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::{ManualClock, SharedClock};
use redress_proto::subjects;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{
    ApprovalDecided, ApprovalReply, ApprovalRequested, ApprovalView, CommandError,
    CommandErrorCode, DecideApproval, Envelope, ListApprovals, ListApprovalsReply, Proposal,
    Responsibility, Severity, Urgency, WorkChanged, WorkItem, WorkState, approval_reply,
    list_approvals_reply,
};
use redress_testkit::{RunningService, TestEnv, eventually};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

fn monday_10() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00")
        .unwrap()
        .with_timezone(&Utc)
}

struct Running {
    env: TestEnv,
    service: RunningService,
    nats: async_nats::Client,
    pool: sqlx::PgPool,
    clock: std::sync::Arc<ManualClock>,
}

async fn start() -> Running {
    let env = TestEnv::start().await.unwrap();
    let clock = ManualClock::new(monday_10());
    let service = env
        .start_service(
            "approval",
            clock.clone() as SharedClock,
            redress_approval::run,
        )
        .await
        .expect("approval starts");
    let nats = env.nats_client().await.unwrap();
    let pool = env.admin_pool().await.unwrap();
    Running {
        env,
        service,
        nats,
        pool,
        clock,
    }
}

/// One complaint's work item, as routing would describe it.
struct Work {
    complaint_id: Uuid,
    work_id: String,
    ticket: String,
    severity: Severity,
    version: AtomicU64,
}

impl Work {
    fn new(severity: Severity) -> Self {
        let id = Uuid::now_v7();
        Self {
            complaint_id: id,
            work_id: Uuid::now_v7().to_string(),
            ticket: format!("RD-20261123-{}", &id.simple().to_string()[24..]),
            severity,
            version: AtomicU64::new(2),
        }
    }

    fn proposed(&self, proposal: Proposal) -> Envelope {
        let item = WorkItem {
            work_id: self.work_id.clone(),
            ticket: self.ticket.clone(),
            department: "logistics".into(),
            state: WorkState::Proposed as i32,
            round: 1,
            version: self.version.fetch_add(1, Ordering::Relaxed) + 1,
            category: "delivery".into(),
            severity: self.severity as i32,
            urgency: Urgency::Normal as i32,
            channel: "sms".into(),
            proposal: Some(proposal),
            accepted_by: "zhou.qiang".into(),
            ..Default::default()
        };
        new_event(
            "routing",
            &Cause {
                complaint_id: self.complaint_id,
                ticket: self.ticket.clone(),
                causation_id: "test".into(),
                correlation_id: self.complaint_id.to_string(),
                playbook: "default".into(),
            },
            monday_10(),
            Payload::WorkChanged(WorkChanged {
                work: Some(item),
                actor: "zhou.qiang".into(),
                note: String::new(),
                change: redress_proto::v1::WorkChange::Proposed as i32,
                ..Default::default()
            }),
        )
    }
}

fn proposal(compensation_minor: i64, proposed_by: &str) -> Proposal {
    Proposal {
        proposal_id: Uuid::now_v7().to_string(),
        responsibility: Responsibility::CompanyLiable as i32,
        remedy: "re-ship and compensate".into(),
        compensation_minor,
        currency: "CNY".into(),
        proposed_by: proposed_by.into(),
        kind: 0,
    }
}

impl Running {
    async fn publish(&self, envelope: &Envelope) {
        self.env
            .publish_event(
                self.env
                    .subjects()
                    .work_event(redress_proto::v1::WorkChange::Proposed, "logistics"),
                envelope,
            )
            .await
            .unwrap();
    }

    async fn envelopes(&self, name: &str) -> Vec<Envelope> {
        self.env
            .events(self.env.subjects().event(name))
            .await
            .unwrap()
    }

    async fn wait_for(&self, name: &str, n: usize) -> Vec<Envelope> {
        eventually(&format!("{n} {name} event(s)"), WAIT, || async {
            self.envelopes(name).await.len() >= n
        })
        .await;
        self.envelopes(name).await
    }

    async fn handled(&self, ids: &[String]) {
        eventually("the events to be handled", WAIT, || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM approval.inbox WHERE message_id = ANY($1)",
            )
            .bind(ids)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            n as usize == ids.len()
        })
        .await;
    }

    /// Sends `payload` signed by `person` (unsigned when the test has no key for them).
    async fn decide_raw(&self, person: &str, payload: Vec<u8>) -> Vec<u8> {
        let subject = self
            .env
            .subjects()
            .command(subjects::approval::SERVICE, subjects::approval::DECIDE);
        self.env
            .request_as(person, subject, payload)
            .await
            .unwrap()
            .payload
            .to_vec()
    }

    async fn decide(&self, cmd: &DecideApproval) -> Result<ApprovalView, CommandError> {
        let reply = ApprovalReply::decode(
            self.decide_raw(&cmd.approver, cmd.encode_to_vec())
                .await
                .as_slice(),
        )
        .unwrap();
        match reply.outcome.expect("a reply has an outcome") {
            approval_reply::Outcome::Approval(v) => Ok(v),
            approval_reply::Outcome::Error(e) => Err(e),
        }
    }

    async fn list(&self, limit: u32) -> Vec<ApprovalView> {
        let subject = self
            .env
            .subjects()
            .command(subjects::approval::SERVICE, subjects::approval::LIST);
        let reply = self
            .nats
            .request(subject, ListApprovals { limit }.encode_to_vec().into())
            .await
            .unwrap();
        match ListApprovalsReply::decode(reply.payload).unwrap().outcome {
            Some(list_approvals_reply::Outcome::List(l)) => l.items,
            other => panic!("list failed: {other:?}"),
        }
    }

    async fn states(&self, work: &Work) -> Vec<(String, bool, String)> {
        sqlx::query_as(
            "SELECT state, automatic, decided_by FROM approval.approvals WHERE work_id = $1
             ORDER BY work_version",
        )
        .bind(work.work_id.parse::<Uuid>().unwrap())
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

fn decide_cmd(ticket: &str, approver: &str, approve: bool, note: &str) -> DecideApproval {
    DecideApproval {
        command_id: Uuid::now_v7().to_string(),
        ticket: ticket.into(),
        approver: approver.into(),
        approve,
        note: note.into(),
        approval_id: String::new(),
    }
}

fn requested(e: &Envelope) -> ApprovalRequested {
    match &e.payload {
        Some(Payload::ApprovalRequested(r)) => r.clone(),
        other => panic!("not ApprovalRequested: {other:?}"),
    }
}

fn decided(e: &Envelope) -> ApprovalDecided {
    match &e.payload {
        Some(Payload::ApprovalDecided(d)) => d.clone(),
        other => panic!("not ApprovalDecided: {other:?}"),
    }
}

fn code(e: &CommandError) -> CommandErrorCode {
    CommandErrorCode::try_from(e.code).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn compensation_above_the_threshold_waits_for_an_approver() {
    let r = start().await;
    let work = Work::new(Severity::General);
    let p = proposal(80_000, "zhou.qiang");
    let cause = work.proposed(p.clone());
    r.publish(&cause).await;

    let events = r
        .wait_for(redress_proto::EventKind::ApprovalRequested.name(), 1)
        .await;
    let req = requested(&events[0]);
    assert_eq!(req.reason, "compensation 800.00 CNY above 500.00 CNY");
    assert_eq!(req.approver_role, "general_manager");
    assert_eq!(req.ticket, work.ticket);
    assert_eq!(req.work_id, work.work_id);
    assert_eq!(req.department, "logistics");
    assert_eq!(req.proposal.as_ref(), Some(&p));
    assert_eq!(events[0].causation_id, cause.event_id);
    assert_eq!(events[0].complaint_id, work.complaint_id.to_string());
    assert_eq!(events[0].producer, "approval");
    assert_eq!(
        r.states(&work).await,
        [("pending".to_string(), false, String::new())]
    );

    let pending = r.list(0).await;
    assert_eq!(pending.len(), 1);
    let view = &pending[0];
    assert_eq!(view.approval_id, req.approval_id);
    assert_eq!(view.state, "pending");
    assert_eq!(view.ticket, work.ticket);
    assert_eq!(view.reason, req.reason);
    assert_eq!(view.proposal.as_ref(), Some(&p));
    assert!(
        r.envelopes(redress_proto::EventKind::ApprovalDecided.name())
            .await
            .is_empty()
    );
    r.service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn small_compensation_on_a_general_complaint_is_approved_by_policy() {
    let r = start().await;
    let work = Work::new(Severity::General);
    let p = proposal(30_000, "zhou.qiang");
    r.publish(&work.proposed(p.clone())).await;

    let events = r
        .wait_for(redress_proto::EventKind::ApprovalDecided.name(), 1)
        .await;
    let d = decided(&events[0]);
    assert!(d.approved);
    assert!(d.automatic);
    assert_eq!(d.decided_by, "policy");
    assert_eq!(d.proposal_id, p.proposal_id);
    assert_eq!(d.ticket, work.ticket);
    assert_eq!(d.department, "logistics");
    assert_eq!(
        r.states(&work).await,
        [("approved".to_string(), true, "policy".to_string())]
    );
    assert!(
        r.envelopes(redress_proto::EventKind::ApprovalRequested.name())
            .await
            .is_empty()
    );
    assert!(r.list(0).await.is_empty());

    // Nothing is left for a person to decide.
    let e = r
        .decide(&decide_cmd(&work.ticket, "zhao.min", true, ""))
        .await
        .unwrap_err();
    assert_eq!(
        (code(&e), e.field.as_str()),
        (CommandErrorCode::WrongState, "ticket")
    );
    r.service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_major_complaint_needs_a_decision_even_without_compensation() {
    let r = start().await;
    let work = Work::new(Severity::Major);
    r.publish(&work.proposed(proposal(0, "wang.fang"))).await;
    let events = r
        .wait_for(redress_proto::EventKind::ApprovalRequested.name(), 1)
        .await;
    assert_eq!(requested(&events[0]).reason, "major complaint");
    assert_eq!(r.states(&work).await[0].0, "pending");
    r.service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn only_another_approver_decides_and_a_decision_is_final() {
    let r = start().await;
    let work = Work::new(Severity::General);
    // An approver made the proposal: they may not approve it themselves.
    let p = proposal(80_000, "zhao.min");
    r.publish(&work.proposed(p.clone())).await;
    let req = requested(
        &r.wait_for(redress_proto::EventKind::ApprovalRequested.name(), 1)
            .await[0],
    );

    let refused = |e: CommandError| (code(&e), e.field);
    let e = r
        .decide(&decide_cmd(&work.ticket, "wang.fang", true, ""))
        .await
        .unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::Forbidden, "approver".into()));
    let e = r
        .decide(&decide_cmd(&work.ticket, "zhao.min", true, ""))
        .await
        .unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::Forbidden, "approver".into()));
    let e = r
        .decide(&decide_cmd(&work.ticket, "chen.jie", false, "  "))
        .await
        .unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::Missing, "note".into()));
    let e = r
        .decide(&decide_cmd("RD-19990101-000000", "chen.jie", true, ""))
        .await
        .unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::NotFound, "ticket".into()));
    let mut no_id = decide_cmd(&work.ticket, "chen.jie", true, "");
    no_id.command_id.clear();
    let e = r.decide(&no_id).await.unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::Missing, "command_id".into()));
    let mut no_ticket = decide_cmd(&work.ticket, "chen.jie", true, "");
    no_ticket.ticket.clear();
    let e = r.decide(&no_ticket).await.unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::Missing, "ticket".into()));
    let garbage =
        ApprovalReply::decode(r.decide_raw("", vec![0xff, 0xff, 0xff]).await.as_slice()).unwrap();
    match garbage.outcome {
        Some(approval_reply::Outcome::Error(e)) => {
            assert_eq!(code(&e), CommandErrorCode::Undecodable)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        r.envelopes(redress_proto::EventKind::ApprovalDecided.name())
            .await
            .is_empty()
    );
    assert_eq!(r.states(&work).await[0].0, "pending");

    let cmd = decide_cmd(&work.ticket, "chen.jie", true, "goodwill, first delay");
    let first = r.decide_raw(&cmd.approver, cmd.encode_to_vec()).await;
    let view = match ApprovalReply::decode(first.as_slice()).unwrap().outcome {
        Some(approval_reply::Outcome::Approval(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(view.state, "approved");
    assert_eq!(view.decided_by, "chen.jie");
    assert_eq!(view.approval_id, req.approval_id);
    let events = r
        .wait_for(redress_proto::EventKind::ApprovalDecided.name(), 1)
        .await;
    let d = decided(&events[0]);
    assert!(d.approved);
    assert!(!d.automatic);
    assert_eq!(d.decided_by, "chen.jie");
    assert_eq!(d.note, "goodwill, first delay");
    assert_eq!(d.proposal_id, p.proposal_id);
    assert_eq!(d.approval_id, req.approval_id);
    assert_eq!(d.work_id, work.work_id);
    assert_eq!(events[0].causation_id, cmd.command_id);
    assert_eq!(events[0].correlation_id, work.complaint_id.to_string());
    assert_eq!(events[0].complaint_id, work.complaint_id.to_string());
    assert_eq!(events[0].playbook, "default");

    // The same command again: the same answer, nothing new.
    let again = r.decide_raw(&cmd.approver, cmd.encode_to_vec()).await;
    assert_eq!(again, first);
    // Another decision on a decided approval.
    let e = r
        .decide(&decide_cmd(&work.ticket, "zhao.min", false, "too much"))
        .await
        .unwrap_err();
    assert_eq!(refused(e), (CommandErrorCode::WrongState, "ticket".into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        r.envelopes(redress_proto::EventKind::ApprovalDecided.name())
            .await
            .len(),
        1
    );
    assert_eq!(
        r.states(&work).await,
        [("approved".to_string(), false, "chen.jie".to_string())]
    );
    assert!(r.list(0).await.is_empty());
    r.service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_rejection_the_next_proposal_is_the_one_decided() {
    let r = start().await;
    let work = Work::new(Severity::General);
    r.publish(&work.proposed(proposal(90_000, "zhou.qiang")))
        .await;
    r.wait_for(redress_proto::EventKind::ApprovalRequested.name(), 1)
        .await;
    let rejected = r
        .decide(&decide_cmd(
            &work.ticket,
            "zhao.min",
            false,
            "offer a voucher instead",
        ))
        .await
        .unwrap();
    assert_eq!(rejected.state, "rejected");
    assert_eq!(rejected.note, "offer a voucher instead");
    let d = decided(
        &r.wait_for(redress_proto::EventKind::ApprovalDecided.name(), 1)
            .await[0],
    );
    assert!(!d.approved);

    let second = proposal(60_000, "zhou.qiang");
    r.publish(&work.proposed(second.clone())).await;
    r.wait_for(redress_proto::EventKind::ApprovalRequested.name(), 2)
        .await;
    // A decision meant for the rejected proposal does not land on the new one.
    let mut stale = decide_cmd(&work.ticket, "chen.jie", true, "");
    stale.approval_id = rejected.approval_id.clone();
    let refused = r.decide(&stale).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.field.as_str()),
        (CommandErrorCode::WrongState, "approval_id")
    );
    let approved = r
        .decide(&decide_cmd(&work.ticket, "zhao.min", true, ""))
        .await
        .unwrap();
    assert_eq!(
        approved.proposal.map(|p| p.proposal_id),
        Some(second.proposal_id)
    );
    let states: Vec<_> = r.states(&work).await.into_iter().map(|s| s.0).collect();
    assert_eq!(states, ["rejected", "approved"]);
    r.service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_proposal_told_twice_opens_one_approval() {
    let r = start().await;
    let work = Work::new(Severity::General);
    let p = proposal(80_000, "zhou.qiang");
    let first = work.proposed(p.clone());
    r.publish(&first).await;
    r.publish(&first).await;
    let again = work.proposed(p);
    r.publish(&again).await;
    r.handled(&[first.event_id, again.event_id]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        r.envelopes(redress_proto::EventKind::ApprovalRequested.name())
            .await
            .len(),
        1
    );
    assert_eq!(r.states(&work).await.len(), 1);
    assert_eq!(r.list(0).await.len(), 1);
    r.service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_approvals_are_listed_oldest_first_up_to_the_limit() {
    let r = start().await;
    let works: Vec<Work> = (0..3).map(|_| Work::new(Severity::General)).collect();
    for (i, w) in works.iter().enumerate() {
        r.clock.advance(chrono::Duration::minutes(5));
        r.publish(&w.proposed(proposal(60_000, "zhou.qiang"))).await;
        r.wait_for(redress_proto::EventKind::ApprovalRequested.name(), i + 1)
            .await;
    }
    let tickets: Vec<_> = r.list(0).await.into_iter().map(|v| v.ticket).collect();
    let expected: Vec<_> = works.iter().map(|w| w.ticket.clone()).collect();
    assert_eq!(tickets, expected);
    let two: Vec<_> = r.list(2).await.into_iter().map(|v| v.ticket).collect();
    assert_eq!(two, expected[..2]);
    r.service.stop().await.unwrap();
}
