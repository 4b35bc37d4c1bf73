//! End to end: all six services against a real nats-server with JetStream and a real
//! PostgreSQL, one shared injectable clock. Complaints go in through a channel adapter's
//! path and are driven through their whole life by department, approver and complainant
//! commands; time is moved by the clock, never by sleeping.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message as _;
use redress_client::Client;
use redress_platform::{Clock as _, ManualClock, SharedClock};
use redress_proto::subjects::Stream;
use redress_proto::v1::{
    Accept, AnswerSurvey, ApprovalReply, Complainant, ComplaintStatus, Contact, ContactKind,
    DeadlineState, DecideApproval, Propose, QueryErrorCode, Reply, Resolve, Responsibility,
    SubmitComplaint, SurveyInvitation, SurveyReply, SurveyScores, WorkCommand, WorkCommandReply,
    WorkItem, approval_reply, envelope::Payload, survey_reply, work_command::Action,
    work_command_reply,
};
use redress_testkit::{RunningService, TestEnv, eventually};

const WAIT: Duration = Duration::from_secs(30);

/// Monday 23 November 2026, 10:00 in Shanghai: a working day, inside working hours.
fn monday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

struct Stack {
    env: TestEnv,
    clock: Arc<ManualClock>,
    client: Client,
    services: Vec<RunningService>,
    /// The playbooks of this stack, when a test changed the shipped ones.
    _playbooks: Option<tempfile::TempDir>,
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(None, serde_json::json!({})).await
    }

    /// The stack with the default playbook's TOML passed through `change`.
    async fn with_playbook(change: impl Fn(String) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let shipped = std::path::Path::new(&redress_testkit::playbooks_dir()).join("default");
        let text = std::fs::read_to_string(shipped.join("playbook.toml")).unwrap();
        std::fs::create_dir(dir.path().join("default")).unwrap();
        std::fs::write(dir.path().join("default/playbook.toml"), change(text)).unwrap();
        Self::start_with(Some(dir), serde_json::json!({})).await
    }

    /// The stack with these settings added to the `[sla]` section.
    async fn with_sla(sla: serde_json::Value) -> Self {
        Self::start_with(None, sla).await
    }

    async fn start_with(playbooks: Option<tempfile::TempDir>, sla: serde_json::Value) -> Self {
        let mut env = TestEnv::start().await.unwrap();
        env.extra_config =
            serde_json::json!({ "sla": { "tick_ms": 50 }, "survey": { "tick_ms": 50 } });
        if let serde_json::Value::Object(more) = sla {
            for (k, v) in more {
                env.extra_config["sla"][k] = v;
            }
        }
        if let Some(dir) = &playbooks {
            env.extra_config["playbooks"] = serde_json::json!({ "dir": dir.path() });
        }
        let clock = ManualClock::new(monday_morning());
        let shared: SharedClock = clock.clone();
        let mut services = Vec::new();
        services.push(
            env.start_service("intake", shared.clone(), redress_intake::run)
                .await
                .unwrap(),
        );
        services.push(
            env.start_service(
                "classification",
                shared.clone(),
                redress_classification::run,
            )
            .await
            .unwrap(),
        );
        services.push(
            env.start_service("routing", shared.clone(), redress_routing::run)
                .await
                .unwrap(),
        );
        services.push(
            env.start_service("sla-timer", shared.clone(), redress_sla_timer::run)
                .await
                .unwrap(),
        );
        services.push(
            env.start_service("approval", shared.clone(), redress_approval::run)
                .await
                .unwrap(),
        );
        services.push(
            env.start_service("survey", shared.clone(), redress_survey::run)
                .await
                .unwrap(),
        );
        let client = env.client().await.unwrap();
        Self {
            env,
            clock,
            client,
            services,
            _playbooks: playbooks,
        }
    }

    async fn stop(self) {
        for s in self.services {
            s.stop().await.unwrap();
        }
    }

    /// Submits as a channel adapter that wants its ticket at once.
    async fn submit(&self, external_id: &str, text: &str) -> String {
        self.submit_with(external_id, text, Vec::new()).await.ticket
    }

    /// Submits with attachments; the answer carries the complainant's secret too.
    async fn submit_with(
        &self,
        external_id: &str,
        text: &str,
        attachments: Vec<redress_proto::v1::Attachment>,
    ) -> redress_proto::v1::SubmitAccepted {
        self.client
            .submit(&SubmitComplaint {
                channel: "web".into(),
                external_id: external_id.into(),
                complainant: Some(Complainant {
                    name: "李娜".into(),
                    contact: Some(Contact {
                        kind: ContactKind::Phone as i32,
                        value: format!("+86 139 0000 {:04}", external_id.len() * 37 % 10000),
                    }),
                }),
                text: text.into(),
                attachments,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn status(&self, ticket: &str) -> ComplaintStatus {
        self.client.status_by_ticket(ticket).await.unwrap()
    }

    async fn wait_for(
        &self,
        ticket: &str,
        what: &str,
        check: impl Fn(&ComplaintStatus) -> bool,
    ) -> ComplaintStatus {
        let give_up = std::time::Instant::now() + WAIT;
        loop {
            let s = self.status(ticket).await;
            if check(&s) {
                return s;
            }
            // What the status showed when it did not come, to tell why.
            assert!(
                std::time::Instant::now() < give_up,
                "timed out after {WAIT:?} waiting for {what}; the status: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn request<M: prost::Message, R: prost::Message + Default>(
        &self,
        service: &str,
        verb: &str,
        m: &M,
        person: &str,
    ) -> R {
        let reply = self
            .env
            .request_as(
                person,
                self.env.subjects().command(service, verb),
                m.encode_to_vec(),
            )
            .await
            .unwrap();
        R::decode(reply.payload).unwrap()
    }

    async fn work(
        &self,
        verb: &str,
        ticket: &str,
        dept: &str,
        actor: &str,
        action: Action,
    ) -> WorkItem {
        let reply: WorkCommandReply = self
            .request(
                "routing",
                &format!("{verb}.{dept}"),
                &WorkCommand {
                    command_id: uuid::Uuid::now_v7().to_string(),
                    ticket: ticket.into(),
                    department: dept.into(),
                    actor: actor.into(),
                    action: Some(action),
                },
                actor,
            )
            .await;
        match reply.outcome.unwrap() {
            work_command_reply::Outcome::Work(w) => w,
            work_command_reply::Outcome::Error(e) => panic!("{verb} {ticket} refused: {e:?}"),
        }
    }

    /// Proposes `action` again after a rejection, once routing has read the rejection (until
    /// then the work is still waiting for approval and the proposal is refused).
    async fn propose_again(&self, ticket: &str, dept: &str, actor: &str, action: Action) {
        eventually("proposed again", WAIT, || async {
            let reply: WorkCommandReply = self
                .request(
                    "routing",
                    &format!("propose.{dept}"),
                    &WorkCommand {
                        command_id: uuid::Uuid::now_v7().to_string(),
                        ticket: ticket.into(),
                        department: dept.into(),
                        actor: actor.into(),
                        action: Some(action.clone()),
                    },
                    actor,
                )
                .await;
            matches!(reply.outcome, Some(work_command_reply::Outcome::Work(_)))
        })
        .await;
    }

    /// Takes a delivery complaint through its first round in logistics, as zhou.qiang: waits
    /// for the assignment, accepts, proposes a remedy the policy approves, replies, resolves.
    async fn resolve_in_logistics(&self, ticket: &str) {
        let (dept, who) = ("logistics", "zhou.qiang");
        self.wait_for(ticket, "assignment", |s| s.status == "assigned")
            .await;
        self.work("accept", ticket, dept, who, Action::Accept(Accept {}))
            .await;
        self.offer(ticket, dept, who, "重新派送").await;
        self.work(
            "resolve",
            ticket,
            dept,
            who,
            Action::Resolve(Resolve::default()),
        )
        .await;
    }

    /// Proposes `remedy` without compensation (approved by the policy), waits for the
    /// approval and replies with it, as `actor` of `dept`.
    async fn offer(&self, ticket: &str, dept: &str, actor: &str, remedy: &str) {
        self.work(
            "propose",
            ticket,
            dept,
            actor,
            Action::Propose(Propose {
                responsibility: Responsibility::PartlyLiable as i32,
                remedy: remedy.into(),
                ..Default::default()
            }),
        )
        .await;
        self.wait_for(ticket, "automatic approval", |s| s.status == "approved")
            .await;
        self.work(
            "reply",
            ticket,
            dept,
            actor,
            Action::Reply(Reply {
                message: format!("{remedy}，请确认"),
            }),
        )
        .await;
        self.wait_for(ticket, "replied", |s| s.status == "replied")
            .await;
    }

    async fn decide(
        &self,
        ticket: &str,
        approver: &str,
        approve: bool,
        note: &str,
    ) -> approval_reply::Outcome {
        let reply: ApprovalReply = self
            .request(
                "approval",
                "decide",
                &DecideApproval {
                    command_id: uuid::Uuid::now_v7().to_string(),
                    ticket: ticket.into(),
                    approver: approver.into(),
                    approve,
                    note: note.into(),
                    approval_id: String::new(),
                },
                approver,
            )
            .await;
        reply.outcome.unwrap()
    }

    async fn answer(&self, ticket: &str, overall: u32, comment: &str) -> survey_reply::Outcome {
        let token = self.env.survey_token("web", ticket).await.unwrap();
        let reply: SurveyReply = self
            .request(
                "survey",
                "answer",
                &AnswerSurvey {
                    command_id: uuid::Uuid::now_v7().to_string(),
                    ticket: ticket.into(),
                    scores: Some(SurveyScores {
                        overall,
                        speed: overall,
                        ..Default::default()
                    }),
                    comment: comment.into(),
                    survey_id: String::new(),
                    token,
                },
                "",
            )
            .await;
        reply.outcome.unwrap()
    }
}

fn deadline_state(s: &ComplaintStatus, round: u32, name: &str) -> Option<DeadlineState> {
    s.deadlines
        .iter()
        .find(|d| d.round == round && d.name == name)
        .map(|d| d.state())
}

/// The details of the history lines of `event`, oldest first.
fn details<'a>(s: &'a ComplaintStatus, event: &str) -> Vec<&'a str> {
    s.history
        .iter()
        .filter(|h| h.event == event)
        .map(|h| h.detail.as_str())
        .collect()
}

fn history(s: &ComplaintStatus) -> Vec<&str> {
    s.history.iter().map(|h| h.event.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_major_complaint_goes_through_approval_to_a_satisfied_close() {
    let stack = Stack::start().await;
    let ticket = stack
        .submit("web-1", "快递丢件了，里面是给孩子的生日礼物，要求赔偿800元")
        .await;

    // Classified major (compensation), routed to customer service, deadlines armed.
    let s = stack
        .wait_for(&ticket, "assignment and deadlines", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    assert_eq!(
        (s.category.as_str(), s.severity.as_str()),
        ("delivery", "major")
    );
    assert_eq!(s.department, "customer-service");
    let first = s
        .deadlines
        .iter()
        .find(|d| d.name == "first_response")
        .unwrap();
    assert_eq!(first.limit, "1 hour");
    assert_eq!(
        redress_proto::time::to_unix_micros(first.due_at.as_ref().unwrap()),
        (monday_morning() + chrono::Duration::hours(1)).timestamp_micros()
    );

    stack.clock.advance(chrono::Duration::minutes(20));
    stack
        .work(
            "accept",
            &ticket,
            "customer-service",
            "wang.fang",
            Action::Accept(Accept {}),
        )
        .await;
    stack
        .wait_for(&ticket, "first response met", |s| {
            deadline_state(s, 1, "first_response") == Some(DeadlineState::Met)
        })
        .await;
    stack
        .work(
            "propose",
            &ticket,
            "customer-service",
            "wang.fang",
            Action::Propose(Propose {
                responsibility: Responsibility::CompanyLiable as i32,
                remedy: "赔偿并补发礼物".into(),
                compensation_minor: 80000,
                currency: "CNY".into(),
                kind: 0,
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "approval requested", |s| s.approval == "pending")
        .await;
    // The department cannot reply before the decision; nobody approves their own proposal.
    let nats_reply: WorkCommandReply = stack
        .request(
            "routing",
            "reply.customer-service",
            &WorkCommand {
                command_id: "early-reply".into(),
                ticket: ticket.clone(),
                department: "customer-service".into(),
                actor: "wang.fang".into(),
                action: Some(Action::Reply(Reply {
                    message: "x".into(),
                })),
            },
            "wang.fang",
        )
        .await;
    assert!(matches!(
        nats_reply.outcome,
        Some(work_command_reply::Outcome::Error(_))
    ));
    match stack.decide(&ticket, "zhao.min", true, "同意赔偿").await {
        approval_reply::Outcome::Approval(a) => assert_eq!(a.state, "approved"),
        other => panic!("{other:?}"),
    }
    stack
        .wait_for(&ticket, "approved work", |s| s.status == "approved")
        .await;

    stack.clock.advance(chrono::Duration::hours(2));
    stack
        .work(
            "reply",
            &ticket,
            "customer-service",
            "wang.fang",
            Action::Reply(Reply {
                message: "您好，包裹确认丢失，已赔偿800元并补发礼物。如有疑问请联系客服部王芳。"
                    .into(),
            }),
        )
        .await;
    stack
        .work(
            "resolve",
            &ticket,
            "customer-service",
            "liu.yang",
            Action::Resolve(Resolve {
                summary: "compensated".into(),
            }),
        )
        .await;
    // survey.sent and sla.met both follow work.resolved, from two services: wait for both.
    stack
        .wait_for(&ticket, "survey sent and resolution met", |s| {
            s.survey == "sent" && deadline_state(s, 1, "resolution") == Some(DeadlineState::Met)
        })
        .await;
    let invitations = stack
        .env
        .stream_messages(Stream::Notify, stack.env.subjects().notify_survey("web"))
        .await
        .unwrap();
    assert_eq!(invitations.len(), 1);
    assert_eq!(
        SurveyInvitation::decode(invitations[0].payload.clone())
            .unwrap()
            .ticket,
        ticket
    );

    assert!(matches!(
        stack.answer(&ticket, 5, "处理得很好").await,
        survey_reply::Outcome::Survey(_)
    ));
    // work.closed (routing) and survey.answered (survey) come in any order.
    let s = stack
        .wait_for(&ticket, "closed", |s| {
            s.status == "closed"
                && s.survey == "satisfied"
                && history(s).contains(&"survey.answered")
        })
        .await;
    assert_eq!(s.approval, "approved");
    assert_eq!(s.escalation_level, 0);
    let events = history(&s);
    for expected in [
        "received",
        "complaint.classified",
        "work.assigned",
        "sla.armed",
        "work.accepted",
        "sla.met",
        "work.proposed",
        "approval.requested",
        "approval.decided",
        "work.replied",
        "work.resolved",
        "survey.sent",
        "survey.answered",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    // One line per act: the approver's decision and the complainant's answer are told once,
    // not again by the events that follow from them.
    for consequence in ["work.approved", "complaint.closed", "work.closed"] {
        assert!(
            !events.contains(&consequence),
            "{consequence} repeats an act in {events:?}"
        );
    }
    assert_eq!(
        events.len(),
        events
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            + events
                .iter()
                .filter(|e| **e == "sla.met")
                .count()
                .saturating_sub(1),
        "{events:?}"
    );

    // What the complainant sees with the secret of their acknowledgement (a resend of the
    // submission answers with it again): the reply, the steps and the promised deadlines,
    // and nothing of who handled it, the compensation or the approver's note.
    let resent = stack
        .client
        .submit(&SubmitComplaint {
            channel: "web".into(),
            external_id: "web-1".into(),
            text: "快递丢件了，里面是给孩子的生日礼物，要求赔偿800元".into(),
            complainant: Some(Complainant {
                name: "李娜".into(),
                contact: Some(Contact {
                    kind: ContactKind::Phone as i32,
                    value: "+86 139 0000 0185".into(),
                }),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(resent.duplicate);
    let public = stack
        .client
        .track(&ticket, &resent.status_secret)
        .await
        .unwrap();
    assert_eq!(public.status, "closed");
    assert_eq!(
        public.replies,
        ["您好，包裹确认丢失，已赔偿800元并补发礼物。如有疑问请联系客服部王芳。"]
    );
    assert_eq!(public.deadlines.len(), 2);
    let shown = format!("{public:?}");
    for hidden in [
        "wang.fang",
        "zhao.min",
        "同意赔偿",
        "80000",
        "800.00",
        "customer-service",
    ] {
        assert!(
            !shown.contains(hidden),
            "{hidden} shown to the complainant: {shown}"
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dissatisfied_complainant_reopens_the_complaint() {
    let stack = Stack::start().await;
    let ticket = stack.submit("web-2", "快递三天了还没送到").await;
    let s = stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    assert_eq!(
        (s.department.as_str(), s.severity.as_str()),
        ("logistics", "general")
    );

    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    stack
        .work(
            "propose",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Propose(Propose {
                responsibility: Responsibility::PartlyLiable as i32,
                remedy: "催促派送并致歉".into(),
                compensation_minor: 0,
                currency: String::new(),
                kind: 0,
            }),
        )
        .await;
    // No compensation on a general complaint: the policy approves without a person.
    stack
        .wait_for(&ticket, "automatic approval", |s| s.status == "approved")
        .await;
    stack
        .work(
            "reply",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Reply(Reply {
                message: "已催促派送".into(),
            }),
        )
        .await;
    stack
        .work(
            "resolve",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Resolve(Resolve::default()),
        )
        .await;
    stack
        .wait_for(&ticket, "survey", |s| s.survey == "sent")
        .await;
    stack.answer(&ticket, 2, "还是没收到").await;

    // Round 2: back with the department, with its own deadlines.
    let s = stack
        .wait_for(&ticket, "reopened", |s| {
            s.status == "reopened"
                && s.round == 2
                && s.deadlines.iter().filter(|d| d.round == 2).count() == 2
                && s.survey == "dissatisfied"
                && history(s).contains(&"survey.answered")
        })
        .await;
    assert_eq!(s.survey, "dissatisfied");
    assert_eq!(s.department, "logistics");
    assert!(!history(&s).contains(&"complaint.reopened"));
    let assigned = stack
        .env
        .events(stack.env.subjects().work_assigned("logistics"))
        .await
        .unwrap();
    let rounds: Vec<u32> = assigned
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::WorkChanged(w)) => w.work.as_ref().map(|w| w.round),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, vec![1, 2]);
    let again = stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "sun.hao",
            Action::Accept(Accept {}),
        )
        .await;
    assert_eq!(again.round, 2);
    stack
        .wait_for(&ticket, "in progress again", |s| s.status == "in_progress")
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn work_never_accepted_breaches_and_escalates() {
    let stack = Stack::start().await;
    let ticket = stack.submit("web-3", "发票金额开错了，多收了钱").await;
    let s = stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    assert_eq!(s.department, "finance");

    // 2 business hours from Monday 10:00 is 12:00. The playbook warns at 80% of the time
    // (11:36): at 11:35 nothing has happened, at 11:37 the warning is out.
    stack.clock.advance(chrono::Duration::minutes(95));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        deadline_state(&stack.status(&ticket).await, 1, "first_response"),
        Some(DeadlineState::Armed)
    );
    stack.clock.advance(chrono::Duration::minutes(2));
    stack
        .wait_for(&ticket, "the warning", |s| {
            deadline_state(s, 1, "first_response") == Some(DeadlineState::Warned)
        })
        .await;
    // At 11:59 nothing has breached.
    stack.clock.advance(chrono::Duration::minutes(22));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        deadline_state(&stack.status(&ticket).await, 1, "first_response"),
        Some(DeadlineState::Warned)
    );
    // Due at 12:00, breached after the default minute of grace.
    stack.clock.advance(chrono::Duration::seconds(90));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        deadline_state(&stack.status(&ticket).await, 1, "first_response"),
        Some(DeadlineState::Warned),
        "breached inside the grace"
    );
    stack.clock.advance(chrono::Duration::seconds(60));
    let s = stack
        .wait_for(&ticket, "breach and escalation", |s| {
            s.escalation_level == 1
                && deadline_state(s, 1, "first_response") == Some(DeadlineState::Breached)
        })
        .await;
    assert_eq!(
        deadline_state(&s, 1, "first_response"),
        Some(DeadlineState::Breached)
    );
    assert_eq!(
        deadline_state(&s, 1, "resolution"),
        Some(DeadlineState::Armed)
    );
    let escalations = stack
        .env
        .events(stack.env.subjects().work_escalated("finance"))
        .await
        .unwrap();
    assert_eq!(escalations.len(), 1);
    match &escalations[0].payload {
        Some(Payload::WorkEscalated(e)) => {
            assert_eq!(e.deadline, "first_response");
            assert!(e.escalated_to.contains("gao.yan"), "{}", e.escalated_to);
        }
        other => panic!("{other:?}"),
    }
    let breaches = stack
        .env
        .events(
            stack
                .env
                .subjects()
                .event(redress_proto::EventKind::SlaBreached.name()),
        )
        .await
        .unwrap();
    assert_eq!(breaches.len(), 1);
    let warnings = stack
        .env
        .events(
            stack
                .env
                .subjects()
                .event(redress_proto::EventKind::SlaWarning.name()),
        )
        .await
        .unwrap();
    assert_eq!(warnings.len(), 1, "one warning, for first_response only");
    assert!(history(&s).contains(&"sla.warning"), "{:?}", history(&s));
    stack.stop().await;
}

/// Sends `cmd` to `subject` with exactly these headers and returns the refusal, if any.
async fn raw_work(
    stack: &Stack,
    subject: String,
    cmd: &WorkCommand,
    headers: async_nats::HeaderMap,
) -> Option<redress_proto::v1::CommandError> {
    let nats = stack.env.nats_client().await.unwrap();
    let reply = nats
        .request_with_headers(subject, headers, cmd.encode_to_vec().into())
        .await
        .unwrap();
    match WorkCommandReply::decode(reply.payload).unwrap().outcome {
        Some(work_command_reply::Outcome::Error(e)) => Some(e),
        _ => None,
    }
}

fn forbidden(e: Option<redress_proto::v1::CommandError>, field: &str) {
    let e = e.expect("refused");
    assert_eq!(
        (e.code(), e.field.as_str()),
        (redress_proto::v1::CommandErrorCode::Forbidden, field),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_person_whose_registered_key_signs_a_command_acts() {
    use redress_client::people::{Keyring, PersonKey};
    let stack = Stack::start().await;
    let ticket = stack
        .submit(
            "web-people",
            "快递丢件了，里面是给孩子的生日礼物，要求赔偿800元",
        )
        .await;
    stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    let subjects = stack.env.subjects();
    let accept_subject = subjects.department_command("accept", "customer-service");
    let accept = |actor: &str| WorkCommand {
        command_id: uuid::Uuid::now_v7().to_string(),
        ticket: ticket.clone(),
        department: String::new(),
        actor: actor.into(),
        action: Some(Action::Accept(Accept {})),
    };

    // Unsigned, as anyone on the broker could send it.
    let cmd = accept("wang.fang");
    forbidden(
        raw_work(&stack, accept_subject.clone(), &cmd, Default::default()).await,
        "signature",
    );
    // Signed by a key that claims to be wang.fang but was never registered.
    let impostor = PersonKey::generate("wang.fang").unwrap();
    let mut h = async_nats::HeaderMap::new();
    impostor.sign(&accept_subject, &cmd.encode_to_vec(), &mut h);
    forbidden(
        raw_work(&stack, accept_subject.clone(), &cmd, h).await,
        "signature",
    );
    // Signed by a member of another department who names wang.fang in the body.
    let h = stack
        .env
        .signed("zhou.qiang", &accept_subject, &cmd.encode_to_vec());
    forbidden(
        raw_work(&stack, accept_subject.clone(), &cmd, h).await,
        "actor",
    );
    // wang.fang's own signature, moved to another department's subject.
    let cmd = accept("");
    let h = stack
        .env
        .signed("wang.fang", &accept_subject, &cmd.encode_to_vec());
    forbidden(
        raw_work(
            &stack,
            subjects.department_command("accept", "logistics"),
            &cmd,
            h.clone(),
        )
        .await,
        "signature",
    );
    // The same signed bytes where they were meant to go: accepted, by the signer.
    assert_eq!(
        raw_work(&stack, accept_subject.clone(), &cmd, h).await,
        None
    );
    stack
        .wait_for(&ticket, "accepted by wang.fang", |s| {
            s.history
                .iter()
                .any(|h| h.event == "work.accepted" && h.detail == "by wang.fang")
        })
        .await;

    stack
        .work(
            "propose",
            &ticket,
            "customer-service",
            "wang.fang",
            Action::Propose(Propose {
                responsibility: Responsibility::CompanyLiable as i32,
                remedy: "赔偿".into(),
                compensation_minor: 80000,
                currency: "CNY".into(),
                kind: 0,
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "approval requested", |s| s.approval == "pending")
        .await;

    // The proposer names an approver: refused, whoever is named.
    let decide = |approver: &str| DecideApproval {
        command_id: uuid::Uuid::now_v7().to_string(),
        ticket: ticket.clone(),
        approver: approver.into(),
        approve: true,
        note: "同意".into(),
        approval_id: String::new(),
    };
    let decide_subject = subjects.command("approval", "decide");
    let send_decision = |d: DecideApproval, person: &'static str| {
        let subject = decide_subject.clone();
        let env = &stack.env;
        async move {
            let reply = env
                .request_as(person, subject, d.encode_to_vec())
                .await
                .unwrap();
            match ApprovalReply::decode(reply.payload).unwrap().outcome {
                Some(approval_reply::Outcome::Error(e)) => Some(e),
                _ => None,
            }
        }
    };
    forbidden(
        send_decision(decide("zhao.min"), "wang.fang").await,
        "approver",
    );
    assert_eq!(
        send_decision(decide(""), "wang.fang").await.unwrap().code(),
        redress_proto::v1::CommandErrorCode::Forbidden
    );
    assert_eq!(stack.status(&ticket).await.approval, "pending");

    // A revoked key stops working at once; a newly issued one works.
    assert!(stack.client.revoke_person("zhao.min").await.unwrap());
    match stack
        .client
        .decide_approval(&ticket, "zhao.min", true, "同意")
        .await
    {
        Err(redress_client::ClientError::Command { code, field, .. }) => assert_eq!(
            (code, field.as_str()),
            (redress_proto::v1::CommandErrorCode::Forbidden, "signature")
        ),
        other => panic!("{other:?}"),
    }
    let fresh = PersonKey::generate("zhao.min").unwrap();
    stack.client.register_person(&fresh).await.unwrap();
    let mut ring = Keyring::default();
    ring.insert(fresh);
    let zhao = stack.env.client().await.unwrap().with_keyring(ring);
    let decided = zhao
        .decide_approval(&ticket, "", true, "同意赔偿")
        .await
        .unwrap();
    assert_eq!(
        (decided.state.as_str(), decided.decided_by.as_str()),
        ("approved", "zhao.min")
    );
    stack
        .wait_for(&ticket, "approved work", |s| s.status == "approved")
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawn_complaint_closes_and_its_open_deadlines_are_cancelled_not_met() {
    let stack = Stack::start().await;
    let accepted = stack
        .submit_with("web-withdraw", "快递三天没有送到", Vec::new())
        .await;
    let ticket = accepted.ticket.clone();
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    stack
        .wait_for(&ticket, "first response met", |s| {
            deadline_state(s, 1, "first_response") == Some(DeadlineState::Met)
        })
        .await;

    // Only the complainant may withdraw: the secret of the acknowledgement proves it.
    let refused = |e: redress_client::ClientError| match e {
        redress_client::ClientError::Query(q) => (q.code(), q.field),
        other => panic!("{other:?}"),
    };
    let e = stack
        .client
        .withdraw(&ticket, "guess", "")
        .await
        .unwrap_err();
    assert_eq!(refused(e), (QueryErrorCode::NotFound, "secret".to_string()));
    let e = stack.client.withdraw(&ticket, " ", "").await.unwrap_err();
    assert_eq!(
        refused(e),
        (QueryErrorCode::Malformed, "secret".to_string())
    );

    let w = stack
        .client
        .withdraw(&ticket, &accepted.status_secret, "已经自己取到了")
        .await
        .unwrap();
    assert!(!w.already);
    let again = stack
        .client
        .withdraw(&ticket, &accepted.status_secret, "已经自己取到了")
        .await
        .unwrap();
    assert!(again.already);
    assert_eq!(again.withdrawn_at, w.withdrawn_at);

    // The work closes; what was met stays met, what was open is cancelled, never met.
    let s = stack
        .wait_for(&ticket, "withdrawn everywhere", |s| {
            s.status == "withdrawn"
                && deadline_state(s, 1, "resolution") == Some(DeadlineState::Cancelled)
        })
        .await;
    assert_eq!(
        deadline_state(&s, 1, "first_response"),
        Some(DeadlineState::Met)
    );
    assert!(history(&s).contains(&"complaint.withdrawn"), "{s:?}");
    let pool = stack.env.admin_pool().await.unwrap();
    let work_closed = || async {
        sqlx::query_scalar::<_, i16>("SELECT state FROM routing.work_items WHERE ticket = $1")
            .bind(&ticket)
            .fetch_one(&pool)
            .await
            .unwrap()
            == redress_proto::v1::WorkState::Closed as i16
    };
    eventually("the work closed", WAIT, work_closed).await;
    let sla_cancelled = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT state FROM sla.deadlines WHERE ticket = $1 AND name = 'resolution'",
        )
        .bind(&ticket)
        .fetch_one(&pool)
        .await
        .unwrap()
            == "cancelled"
    };
    eventually("the timer's deadline cancelled", WAIT, sla_cancelled).await;
    let withdrawn_events = stack
        .env
        .events(
            stack
                .env
                .subjects()
                .work_event(redress_proto::v1::WorkChange::Withdrawn, "logistics"),
        )
        .await
        .unwrap();
    assert_eq!(withdrawn_events.len(), 1);
    // Nothing more for the department to do, and nobody to survey.
    let reply: WorkCommandReply = stack
        .request(
            "routing",
            "propose.logistics",
            &WorkCommand {
                command_id: uuid::Uuid::now_v7().to_string(),
                ticket: ticket.clone(),
                department: "logistics".into(),
                actor: "zhou.qiang".into(),
                action: Some(Action::Propose(Propose {
                    responsibility: Responsibility::CompanyLiable as i32,
                    remedy: "补发".into(),
                    ..Default::default()
                })),
            },
            "zhou.qiang",
        )
        .await;
    assert!(
        matches!(
            reply.outcome,
            Some(work_command_reply::Outcome::Error(ref e))
                if e.code() == redress_proto::v1::CommandErrorCode::WrongState
        ),
        "{reply:?}"
    );
    let s = stack.status(&ticket).await;
    assert_eq!(
        (s.status.as_str(), s.survey.as_str()),
        ("withdrawn", "none")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complainant_who_rejects_the_reply_gets_a_new_proposal_in_the_same_round() {
    let stack = Stack::start().await;
    let accepted = stack
        .submit_with("web-respond", "快递三天没有送到", Vec::new())
        .await;
    let (ticket, secret) = (accepted.ticket.clone(), accepted.status_secret.clone());
    stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    let refused = |e: redress_client::ClientError| match e {
        redress_client::ClientError::Query(q) => (q.code(), q.field),
        other => panic!("{other:?}"),
    };
    // Nothing to answer before a reply.
    let e = stack
        .client
        .respond(&ticket, &secret, false, "不行")
        .await
        .unwrap_err();
    assert_eq!(refused(e), (QueryErrorCode::WrongState, "ticket".into()));
    let dept = "logistics";
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    let owned = stack;
    let (stack, ticket) = (&owned, ticket.as_str());
    stack.offer(ticket, dept, "zhou.qiang", "催促派送").await;

    // Only the complainant answers; a rejection says why.
    let e = stack
        .client
        .respond(ticket, "guess", false, "不行")
        .await
        .unwrap_err();
    assert_eq!(refused(e), (QueryErrorCode::NotFound, "secret".into()));
    let e = stack
        .client
        .respond(ticket, &secret, false, " ")
        .await
        .unwrap_err();
    assert_eq!(refused(e), (QueryErrorCode::Malformed, "comment".into()));
    let r = stack
        .client
        .respond(ticket, &secret, false, "催了也没用，要求退款")
        .await
        .unwrap();
    assert!(!r.already);
    let again = stack
        .client
        .respond(ticket, &secret, false, "催了也没用，要求退款")
        .await
        .unwrap();
    assert!(again.already);

    // Back with the department in the same round, the objection in the history.
    let s = stack
        .wait_for(ticket, "back in progress", |s| s.status == "in_progress")
        .await;
    assert_eq!(s.round, 1);
    // A resend that comes after the work moved on is still the same answer (an adapter
    // retrying after a timeout); the other answer is refused, as nothing new was replied.
    let late = stack
        .client
        .respond(ticket, &secret, false, "催了也没用，要求退款")
        .await
        .unwrap();
    assert!(late.already);
    let e = stack
        .client
        .respond(ticket, &secret, true, "")
        .await
        .unwrap_err();
    assert_eq!(refused(e), (QueryErrorCode::WrongState, "accept".into()));
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.contested" && h.detail.contains("要求退款")),
        "{s:?}"
    );
    stack.offer(ticket, dept, "zhou.qiang", "退款").await;
    let r = stack
        .client
        .respond(ticket, &secret, true, "")
        .await
        .unwrap();
    assert!(r.accepted && !r.already);
    stack
        .work(
            "resolve",
            ticket,
            dept,
            "zhou.qiang",
            Action::Resolve(Resolve::default()),
        )
        .await;
    let s = stack
        .wait_for(ticket, "survey", |s| s.survey == "sent")
        .await;
    assert_eq!(s.round, 1, "the negotiation never opened a new round");
    let contested = stack
        .env
        .events(
            stack
                .env
                .subjects()
                .work_event(redress_proto::v1::WorkChange::Contested, dept),
        )
        .await
        .unwrap();
    assert_eq!(contested.len(), 1);
    owned.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_completion_date_is_a_deadline_met_by_resolving() {
    let stack = Stack::start().await;
    let ticket = stack
        .submit_with(
            "web-commit",
            "快递三天了还没送到",
            vec![redress_proto::v1::Attachment {
                uri: "https://files.example.cn/web-commit/waybill.jpg".into(),
                media_type: "image/jpeg".into(),
                size_bytes: 48_213,
                file_name: "waybill.jpg".into(),
                ..Default::default()
            }],
        )
        .await
        .ticket;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    let dept = "logistics";
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    let commit = |day: &str| {
        Action::Commit(redress_proto::v1::CommitDate {
            due_on: day.into(),
            plan: "联系快递公司重新派送".into(),
        })
    };
    // Monday 23 November: Wednesday first, then the plan slips to Friday.
    let w = stack
        .work("commit", &ticket, dept, "zhou.qiang", commit("2026-11-25"))
        .await;
    assert_eq!(w.committed_on, "2026-11-25");
    // The department sees the complaint's attachments, by reference.
    assert_eq!(
        w.attachments
            .iter()
            .map(|a| (a.file_name.as_str(), a.media_type.as_str(), a.size_bytes))
            .collect::<Vec<_>>(),
        [("waybill.jpg", "image/jpeg", 48_213)]
    );
    let due = |s: &ComplaintStatus| {
        s.deadlines
            .iter()
            .find(|d| d.name == "committed_completion")
            .and_then(|d| d.due_at.as_ref().map(|t| (t.seconds, d.state())))
    };
    let s = stack
        .wait_for(&ticket, "the committed deadline", |s| due(s).is_some())
        .await;
    let (wednesday, state) = due(&s).unwrap();
    assert_eq!(state, DeadlineState::Armed);
    // The end of Wednesday's working hours in Shanghai, after its morning.
    let wed_morning = Utc
        .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
        .unwrap()
        .timestamp();
    let thu = Utc
        .with_ymd_and_hms(2026, 11, 25, 16, 0, 0)
        .unwrap()
        .timestamp();
    assert!((wed_morning..thu).contains(&wednesday), "{s:?}");
    stack
        .work("commit", &ticket, dept, "zhou.qiang", commit("2026-11-27"))
        .await;
    stack
        .wait_for(&ticket, "the date moved", |s| {
            due(s).is_some_and(|(t, _)| t > wednesday + 86_400)
        })
        .await;
    // Resolved before the day: met.
    stack.offer(&ticket, dept, "zhou.qiang", "重新派送").await;
    stack
        .work(
            "resolve",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Resolve(Resolve::default()),
        )
        .await;
    let s = stack
        .wait_for(&ticket, "the committed deadline met", |s| {
            due(s).is_some_and(|(_, st)| st == DeadlineState::Met)
        })
        .await;
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.committed" && h.detail.contains("completion by 2026-11-27")),
        "{s:?}"
    );
    // The complainant was told each plan.
    eventually("two plan notices", WAIT, || async {
        stack
            .env
            .stream_messages(Stream::Notify, stack.env.subjects().notify_progress("web"))
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_merges_into_the_ticket_it_repeats_and_both_complainants_are_told() {
    let stack = Stack::start().await;
    let first = stack
        .submit("web-merge-1", "快递三天没送到，单号 SF123")
        .await;
    let second = stack.submit("web-merge-2", "SF123 快递还没到").await;
    for t in [&first, &second] {
        stack
            .wait_for(t, "assignment", |s| {
                s.status == "assigned" && s.deadlines.len() == 2
            })
            .await;
    }
    let merge = |into: &str, reason: &str| {
        Action::Merge(redress_proto::v1::Merge {
            into_ticket: into.into(),
            reason: reason.into(),
        })
    };
    let refused = |outcome: Option<work_command_reply::Outcome>| match outcome {
        Some(work_command_reply::Outcome::Error(e)) => (e.code(), e.field),
        other => panic!("{other:?}"),
    };
    let send = |ticket: &str, action: Action| {
        let command = WorkCommand {
            command_id: uuid::Uuid::now_v7().to_string(),
            ticket: ticket.into(),
            department: "logistics".into(),
            actor: "zhou.qiang".into(),
            action: Some(action),
        };
        let stack = &stack;
        async move {
            let reply: WorkCommandReply = stack
                .request("routing", "merge.logistics", &command, "zhou.qiang")
                .await;
            reply.outcome
        }
    };
    use redress_proto::v1::CommandErrorCode as Code;
    assert_eq!(
        refused(send(&second, merge(&second, "x")).await),
        (Code::Malformed, "merge.into_ticket".into())
    );
    assert_eq!(
        refused(send(&second, merge("RD-000000-0000000", "x")).await),
        (Code::NotFound, "merge.into_ticket".into())
    );
    assert_eq!(
        refused(send(&second, merge(&first, " ")).await),
        (Code::Missing, "merge.reason".into())
    );
    let merged = stack
        .work(
            "merge",
            &second,
            "logistics",
            "zhou.qiang",
            merge(&first, "同一快递单 SF123"),
        )
        .await;
    assert_eq!(
        (merged.state(), merged.merged_into.as_str()),
        (redress_proto::v1::WorkState::Closed, first.as_str())
    );
    // The duplicate is merged, its open deadlines cancelled; the survivor carries on.
    let s = stack
        .wait_for(&second, "merged", |s| {
            s.status == "merged"
                && s.deadlines
                    .iter()
                    .all(|d| d.state() == DeadlineState::Cancelled)
        })
        .await;
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.merged" && h.detail.starts_with(&format!("into {first}"))),
        "{s:?}"
    );
    assert_eq!(stack.status(&first).await.status, "assigned");
    // Both complainants hear which ticket carries on.
    let told = || async {
        stack
            .env
            .stream_messages(Stream::Notify, stack.env.subjects().notify_merged("web"))
            .await
            .unwrap()
            .into_iter()
            .map(|m| {
                redress_proto::v1::ReplyToComplainant::decode(m.payload.clone())
                    .unwrap()
                    .ticket
            })
            .collect::<Vec<_>>()
    };
    eventually("both told", WAIT, || async { told().await.len() == 2 }).await;
    let mut tickets = told().await;
    tickets.sort();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(tickets, both);
    stack.stop().await;
}

/// The whole of a department's work on one complaint: handed on, evidence asked for while the
/// resolution clock stops for a day, the clock resumed with exactly the working time it had
/// left, a committed date, a progress report, a reply the complainant rejects, a new proposal,
/// the resolution and the survey.
#[tokio::test(flavor = "multi_thread")]
async fn evidence_stops_the_clock_and_the_complaint_goes_on_to_the_survey() {
    let owned = Stack::start().await;
    let stack = &owned;
    let accepted = stack
        .submit_with(
            "web-evidence",
            "快递三天没有送到，包裹显示已签收",
            Vec::new(),
        )
        .await;
    let (ticket, secret) = (accepted.ticket.as_str(), accepted.status_secret.as_str());
    let other = stack.submit("web-evidence-other", "快递员态度很差").await;
    for t in [ticket, other.as_str()] {
        stack
            .wait_for(t, "assignment", |s| {
                s.status == "assigned" && s.deadlines.len() == 2
            })
            .await;
    }
    // Misrouted: logistics hands it to quality, which takes it on.
    let w = stack
        .work(
            "transfer",
            ticket,
            "logistics",
            "zhou.qiang",
            Action::Transfer(redress_proto::v1::Transfer {
                to_department: "quality".into(),
                reason: "签收后包裹内商品损坏".into(),
                understood: "客户收到的包裹有破损".into(),
            }),
        )
        .await;
    assert_eq!(w.department, "quality");
    let dept = "quality";
    stack
        .work("accept", ticket, dept, "xu.lin", Action::Accept(Accept {}))
        .await;
    let resolution = |s: &ComplaintStatus| {
        s.deadlines
            .iter()
            .find(|d| d.name == "resolution")
            .map(|d| (d.due_at.as_ref().map_or(0, |t| t.seconds), d.state()))
    };
    // Due Thursday 26 November, 18:00 in Shanghai: three working days from Monday.
    let thursday_close = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
    let s = stack.status(ticket).await;
    assert_eq!(
        resolution(&s),
        Some((thursday_close.timestamp(), DeadlineState::Armed))
    );

    // Monday 10:00: the department asks for the photos; the clock stops.
    let what = |text: &str| {
        Action::RequestEvidence(redress_proto::v1::RequestEvidence { what: text.into() })
    };
    let w = stack
        .work(
            "request_evidence",
            ticket,
            dept,
            "xu.lin",
            what("请提供包裹破损的照片"),
        )
        .await;
    assert_eq!(w.evidence.len(), 1);
    let s = stack
        // The pause and the request are told by two services: either may be read first.
        .wait_for(ticket, "the clock stopped", |s| {
            resolution(s).is_some_and(|(_, st)| st == DeadlineState::Paused)
                && s.status == "awaiting_evidence"
        })
        .await;
    // Stopped Monday 10:00 with 29 working hours left (6.5 on Monday, 7.5 a day after).
    let left = s
        .deadlines
        .iter()
        .find(|d| d.name == "resolution")
        .map(|d| d.remaining_secs);
    assert_eq!(left, Some(29 * 3600), "{s:?}");
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.evidence_requested" && h.detail.contains("破损的照片")),
        "{s:?}"
    );
    // One request at a time.
    let reply: WorkCommandReply = stack
        .request(
            "routing",
            &format!("request_evidence.{dept}"),
            &WorkCommand {
                command_id: uuid::Uuid::now_v7().to_string(),
                ticket: ticket.into(),
                department: dept.into(),
                actor: "xu.lin".into(),
                action: Some(what("还要发票")),
            },
            "xu.lin",
        )
        .await;
    match reply.outcome.unwrap() {
        work_command_reply::Outcome::Error(e) => {
            assert_eq!(e.code(), redress_proto::v1::CommandErrorCode::WrongState)
        }
        other => panic!("a second request while waiting: {other:?}"),
    }
    // The complainant is told, with the token to answer with (kept nowhere but in the notice).
    let notices = stack
        .env
        .stream_messages(
            Stream::Notify,
            stack.env.subjects().notify_evidence_requested("web"),
        )
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
    let notice = redress_proto::v1::ReplyToComplainant::decode(notices[0].payload.clone()).unwrap();
    assert_eq!(notice.ticket, ticket);
    assert!(notice.message.contains("照片") && notice.token.len() == 64);

    // A day later the photos arrive; first through the wrong doors.
    stack.clock.advance(chrono::Duration::days(1));
    let supply = |external_id: &str, ticket: &str, token: &str| redress_proto::v1::SupplyEvidence {
        channel: "web".into(),
        external_id: external_id.into(),
        ticket: ticket.into(),
        token: token.into(),
        text: "照片已上传".into(),
        attachments: vec![redress_proto::v1::Attachment {
            uri: "https://files.example.cn/web-evidence/broken.jpg".into(),
            media_type: "image/jpeg".into(),
            size_bytes: 91_004,
            file_name: "broken.jpg".into(),
            ..Default::default()
        }],
    };
    let refusals = || async {
        stack
            .env
            .stream_messages(Stream::Notify, stack.env.subjects().notify_rejected("web"))
            .await
            .unwrap()
            .into_iter()
            .map(|m| redress_proto::v1::SubmissionRejected::decode(m.payload.clone()).unwrap())
            .map(|r| (r.external_id, r.error.unwrap_or_default().field))
            .collect::<Vec<_>>()
    };
    for m in [
        supply("ev-wrong-ticket", &other, &notice.token),
        supply("ev-wrong-token", ticket, &"0".repeat(64)),
    ] {
        stack
            .client
            .publish_evidence(&m)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    eventually("both refused", WAIT, || async {
        refusals().await.len() == 2
    })
    .await;
    let mut refused = refusals().await;
    refused.sort();
    assert_eq!(
        refused,
        [
            ("ev-wrong-ticket".to_string(), "token".to_string()),
            ("ev-wrong-token".to_string(), "token".to_string()),
        ]
    );
    // The right ticket and token, sent twice by the adapter: one answer.
    for _ in 0..2 {
        stack
            .client
            .publish_evidence(&supply("ev-1", ticket, &notice.token))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // The clock runs again with the 29 working hours it had left on Monday 10:00: from
    // Tuesday 10:00 that is Friday 27 November, 18:00.
    let friday_close = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    stack
        .wait_for(ticket, "the clock resumed", |s| {
            resolution(s) == Some((friday_close.timestamp(), DeadlineState::Armed))
                && deadline_state(s, 1, "evidence_answer_1") == Some(DeadlineState::Met)
                && deadline_state(s, 1, "evidence_request_1") == Some(DeadlineState::Met)
                && s.status == "in_progress"
        })
        .await;
    // The token was good once.
    stack
        .client
        .publish_evidence(&supply("ev-2", ticket, &notice.token))
        .await
        .unwrap()
        .await
        .unwrap();
    eventually("the used token refused", WAIT, || async {
        refusals()
            .await
            .iter()
            .any(|(id, f)| id == "ev-2" && f == "token")
    })
    .await;
    let received = stack
        .env
        .events(
            stack
                .env
                .subjects()
                .work_event(redress_proto::v1::WorkChange::EvidenceReceived, dept),
        )
        .await
        .unwrap();
    assert_eq!(received.len(), 1, "one answer, however often it was sent");
    let Some(Payload::WorkChanged(changed)) = received[0].payload.clone() else {
        panic!("not a work change");
    };
    let files = changed.evidence.unwrap().files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].file_name, "broken.jpg");

    // A completion date, a progress report, a reply the complainant turns down.
    stack
        .work(
            "commit",
            ticket,
            dept,
            "xu.lin",
            Action::Commit(redress_proto::v1::CommitDate {
                due_on: "2026-11-27".into(),
                plan: "补发新商品".into(),
            }),
        )
        .await;
    stack
        .work(
            "progress",
            ticket,
            dept,
            "xu.lin",
            Action::Progress(redress_proto::v1::ReportProgress {
                message: "新商品已安排发出".into(),
            }),
        )
        .await;
    stack.offer(ticket, dept, "xu.lin", "补发新商品").await;
    stack
        .client
        .respond(ticket, secret, false, "还要赔偿运费")
        .await
        .unwrap();
    stack
        .wait_for(ticket, "back for a new proposal", |s| {
            s.status == "in_progress"
        })
        .await;
    stack
        .offer(ticket, dept, "xu.lin", "补发新商品并退还运费")
        .await;
    stack
        .work(
            "resolve",
            ticket,
            dept,
            "xu.lin",
            Action::Resolve(Resolve::default()),
        )
        .await;
    let s = stack
        .wait_for(ticket, "the survey, and the resolution met", |s| {
            s.survey == "sent" && resolution(s).map(|(_, st)| st) == Some(DeadlineState::Met)
        })
        .await;
    assert_eq!(s.round, 1);
    let events = history(&s);
    for e in [
        "work.assigned",
        "work.evidence_requested",
        "complaint.evidence_supplied",
        "work.committed",
        "work.progress_reported",
        "work.contested",
        "work.resolved",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    owned.stop().await;
}

/// A complainant who never sends the evidence: with `on_no_answer = "close"` the work is
/// answered with the playbook's explanation and resolved when the answer time runs out, and
/// with `survey.after_explain = false` it closes without a survey.
#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_evidence_request_closes_as_unsubstantiated() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "answer_within = \"5 working days\"",
            "answer_within = \"1 working day\"",
        )
        .replace("on_no_answer = \"remind\"", "on_no_answer = \"close\"")
        .replace("after_explain = true", "after_explain = false")
    })
    .await;
    let ticket = stack.submit("web-no-evidence", "快递三天没有送到").await;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    let dept = "logistics";
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    stack
        .work(
            "request_evidence",
            &ticket,
            dept,
            "zhou.qiang",
            Action::RequestEvidence(redress_proto::v1::RequestEvidence {
                what: "请提供快递单号截图".into(),
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "waiting", |s| {
            deadline_state(s, 1, "evidence_answer_1") == Some(DeadlineState::Armed)
                && deadline_state(s, 1, "resolution") == Some(DeadlineState::Paused)
        })
        .await;
    // Monday's request, due Tuesday at close of business; Wednesday nobody has answered.
    stack.clock.advance(chrono::Duration::days(2));
    let s = stack
        // Routing closes the work and the SLA timer settles its clocks, each in its own time.
        .wait_for(&ticket, "closed for want of evidence", |s| {
            s.status == "closed"
                && deadline_state(s, 1, "evidence_answer_1") == Some(DeadlineState::Breached)
                && deadline_state(s, 1, "resolution") == Some(DeadlineState::Met)
        })
        .await;
    assert!(
        s.survey.is_empty() || s.survey == "none",
        "no survey: {s:?}"
    );
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.resolved" && h.detail.contains("unsubstantiated")),
        "{s:?}"
    );
    // The complainant was told why.
    let replies = stack
        .env
        .stream_messages(Stream::Notify, stack.env.subjects().notify_reply("web"))
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    let reply = redress_proto::v1::ReplyToComplainant::decode(replies[0].payload.clone()).unwrap();
    assert!(reply.message.contains("证据不足"), "{reply:?}");
    let surveys = stack
        .env
        .stream_messages(Stream::Notify, stack.env.subjects().notify_survey("web"))
        .await
        .unwrap();
    assert!(surveys.is_empty());
    stack.stop().await;
}

/// A department corrects the classification: refused when it changes nothing, names what
/// the playbook does not know or comes from outside the department; otherwise the work
/// follows the routing rules, the deadlines follow the new grade, intake's status shows the
/// new classification and the classification service keeps each correction.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrected_classification_moves_the_work_and_its_deadlines() {
    let stack = Stack::start().await;
    let ticket = stack.submit("web-reclassify", "快递三天没有送到").await;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    let s = stack.status(&ticket).await;
    assert_eq!(
        (s.category.as_str(), s.department.as_str()),
        ("delivery", "logistics")
    );
    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    let change = |category: &str, severity: redress_proto::v1::Severity, reason: &str| {
        Action::Reclassify(redress_proto::v1::Reclassify {
            category: category.into(),
            severity: severity as i32,
            reason: reason.into(),
            ..Default::default()
        })
    };
    use redress_proto::v1::{CommandErrorCode as Code, Severity};
    let refused = |dept: &str, actor: &str, action: Action| {
        let (ticket, dept, actor) = (ticket.clone(), dept.to_string(), actor.to_string());
        let stack = &stack;
        async move {
            let reply: WorkCommandReply = stack
                .request(
                    "routing",
                    &format!("reclassify.{dept}"),
                    &WorkCommand {
                        command_id: uuid::Uuid::now_v7().to_string(),
                        ticket,
                        department: dept,
                        actor: actor.clone(),
                        action: Some(action),
                    },
                    &actor,
                )
                .await;
            match reply.outcome.unwrap() {
                work_command_reply::Outcome::Error(e) => (e.code(), e.field),
                other => panic!("accepted: {other:?}"),
            }
        }
    };
    assert_eq!(
        refused(
            "logistics",
            "zhou.qiang",
            change("nonsense", Severity::Unspecified, "x")
        )
        .await,
        (Code::Malformed, "reclassify.category".to_string())
    );
    assert_eq!(
        refused(
            "logistics",
            "zhou.qiang",
            change("delivery", Severity::General, "x")
        )
        .await,
        (Code::Malformed, "reclassify".to_string())
    );
    assert_eq!(
        refused(
            "logistics",
            "xu.lin",
            change("product_quality", Severity::Unspecified, "x")
        )
        .await,
        (Code::Forbidden, "actor".to_string())
    );
    // The goods were broken, not late: quality's work.
    let w = stack
        .work(
            "reclassify",
            &ticket,
            "logistics",
            "zhou.qiang",
            change(
                "product_quality",
                Severity::Unspecified,
                "包裹内商品损坏，不是延误",
            ),
        )
        .await;
    assert_eq!(
        (w.category.as_str(), w.department.as_str()),
        ("product_quality", "quality")
    );
    // And it is major: two working days from Monday's assignment, and the major route.
    let w = stack
        .work(
            "reclassify",
            &ticket,
            "quality",
            "xu.lin",
            change("", Severity::Major, "涉及多件商品，金额较大"),
        )
        .await;
    assert_eq!(w.department, "customer-service");
    let wednesday_close = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let s = stack
        .wait_for(&ticket, "the new classification and deadline", |s| {
            s.category == "product_quality"
                && s.severity == "major"
                && s.department == "customer-service"
                && s.deadlines.iter().any(|d| {
                    d.name == "resolution"
                        && d.due_at.as_ref().map(|t| t.seconds) == Some(wednesday_close.timestamp())
                })
        })
        .await;
    assert_eq!(
        s.history
            .iter()
            .filter(|h| h.event == "work.reclassified")
            .count(),
        2,
        "{s:?}"
    );
    // Classification keeps both corrections, each with what the rules had said.
    let pool = stack.env.admin_pool().await.unwrap();
    let corrections = || async {
        sqlx::query_as::<_, (String, String, String, String, String)>(
            "SELECT from_category, to_category, from_severity, to_severity, corrected_by
             FROM classification.corrections WHERE ticket = $1",
        )
        .bind(&ticket)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    eventually("two corrections", WAIT, || async {
        corrections().await.len() == 2
    })
    .await;
    let mut kept = corrections().await;
    kept.sort();
    assert_eq!(
        kept,
        [
            (
                "delivery".into(),
                "product_quality".into(),
                "general".into(),
                "general".into(),
                "zhou.qiang".into()
            ),
            (
                "product_quality".into(),
                "product_quality".into(),
                "general".into(),
                "major".into(),
                "xu.lin".into()
            ),
        ]
    );
    stack.stop().await;
}

/// With `transfer_deadlines = "restart"` the receiving department gets the round's open
/// deadlines anew from the transfer.
#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_restarts_the_clocks_when_the_playbook_says_so() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "send_back_by = [\"liu.yang\"]",
            "send_back_by = [\"liu.yang\"]\ntransfer_deadlines = \"restart\"",
        )
    })
    .await;
    let ticket = stack.submit("web-restart", "快递三天没有送到").await;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    // Tuesday 10:00 it goes to quality: three working days from then is Friday 18:00.
    stack.clock.advance(chrono::Duration::days(1));
    stack
        .work(
            "transfer",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Transfer(redress_proto::v1::Transfer {
                to_department: "quality".into(),
                reason: "商品损坏".into(),
                understood: "包裹内商品损坏".into(),
            }),
        )
        .await;
    let friday_close = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    stack
        .wait_for(&ticket, "the resolution clock restarted", |s| {
            s.deadlines.iter().any(|d| {
                d.name == "resolution"
                    && d.state() == DeadlineState::Armed
                    && d.due_at.as_ref().map(|t| t.seconds) == Some(friday_close.timestamp())
            })
        })
        .await;
    stack.stop().await;
}

/// Pest control (000): a complaint solved where it was made is registered, classified and
/// routed for the record, on record as taken on, answered and resolved by whoever solved
/// it, and goes straight to the survey.
#[tokio::test(flavor = "multi_thread")]
async fn a_complaint_solved_on_the_spot_goes_straight_to_the_survey() {
    let stack = Stack::start().await;
    let submission = |what: &str| SubmitComplaint {
        channel: "onsite".into(),
        external_id: format!("onsite-{}", what.len()),
        complainant: Some(Complainant {
            name: "王强".into(),
            contact: Some(Contact {
                kind: ContactKind::Phone as i32,
                value: "+86 138 0000 1234".into(),
            }),
        }),
        text: "快递包裹放在门口被雨淋湿".into(),
        solved: Some(redress_proto::v1::SolvedOnTheSpot {
            by: "zhou.qiang".into(),
            what_was_done: what.into(),
        }),
        ..Default::default()
    };
    match stack.client.submit(&submission(" ")).await {
        Err(redress_client::ClientError::Refused(e)) => {
            assert_eq!(e.field, "solved.what_was_done")
        }
        other => panic!("accepted without what was done: {other:?}"),
    }
    let ticket = stack
        .client
        .submit(&submission("当场更换了包装并重新送达"))
        .await
        .unwrap()
        .ticket;
    let s = stack
        .wait_for(&ticket, "resolved and surveyed", |s| {
            s.survey == "sent"
                && s.deadlines.len() == 2
                && s.deadlines.iter().all(|d| d.state() == DeadlineState::Met)
        })
        .await;
    assert_eq!(s.department, "logistics");
    assert_eq!(s.round, 1);
    let lines: Vec<(&str, &str)> = s
        .history
        .iter()
        .map(|h| (h.event.as_str(), h.detail.as_str()))
        .collect();
    for (event, detail) in [
        ("work.accepted", "zhou.qiang"),
        ("work.replied", "当场更换了包装"),
        ("work.resolved", "solved on the spot"),
    ] {
        assert!(
            lines.iter().any(|(e, d)| *e == event && d.contains(detail)),
            "{event} with {detail:?} missing: {lines:?}"
        );
    }
    stack.stop().await;
}

/// After-sales (003): a progress report every 3 working days until the work is resolved.
/// A report meets the current deadline and starts the next from then; a missed one is
/// breached and the next starts from when it fell due; the resolution meets the last.
#[tokio::test(flavor = "multi_thread")]
async fn progress_reports_meet_a_repeating_deadline_until_resolved() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[[sla.deadlines]]\nname = \"resolution\"\nlimit = \"1 working day\"",
            "[[sla.deadlines]]\nname = \"progress\"\nlimit = \"3 working days\"\n\
             met_by = \"progress\"\nrepeat = true\n\n\
             [[sla.deadlines]]\nname = \"resolution\"\nlimit = \"1 working day\"",
        )
        .replace(
            "name = \"resolution\"\nlimit = \"3 working days\"",
            "name = \"resolution\"\nlimit = \"20 working days\"",
        )
    })
    .await;
    let ticket = stack.submit("web-progress", "快递三天没有送到").await;
    let due = |s: &ComplaintStatus, name: &str| {
        s.deadlines
            .iter()
            .find(|d| d.name == name)
            .map(|d| (d.due_at.as_ref().map_or(0, |t| t.seconds), d.state()))
    };
    let at = |d: u32, h: u32| {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0)
            .unwrap()
            .timestamp()
    };
    // Monday 10:00: the first report is due Thursday 26 November, 18:00 (10:00 UTC).
    stack
        .wait_for(&ticket, "the progress deadline", |s| {
            due(s, "progress") == Some((at(26, 10), DeadlineState::Armed))
        })
        .await;
    let dept = "logistics";
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    // Tuesday 10:00 the complainant is told how it stands: met, and the next is due Friday.
    stack.clock.advance(chrono::Duration::days(1));
    stack
        .work(
            "progress",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Progress(redress_proto::v1::ReportProgress {
                message: "已联系快递公司".into(),
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "met, and the next armed", |s| {
            due(s, "progress").map(|(_, st)| st) == Some(DeadlineState::Met)
                && due(s, "progress_2") == Some((at(27, 10), DeadlineState::Armed))
        })
        .await;
    // Nobody reports by Friday 18:00: breached, and the next runs from then to Wednesday
    // 2 December, 18:00.
    stack
        .clock
        .set(Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap());
    let wednesday = Utc
        .with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
        .unwrap()
        .timestamp();
    stack
        .wait_for(&ticket, "breached, and the next armed", |s| {
            due(s, "progress_2").map(|(_, st)| st) == Some(DeadlineState::Breached)
                && due(s, "progress_3") == Some((wednesday, DeadlineState::Armed))
        })
        .await;
    // The resolution tells the complainant too: the last one is met, none follows.
    stack.offer(&ticket, dept, "zhou.qiang", "重新派送").await;
    stack
        .work(
            "resolve",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Resolve(Resolve::default()),
        )
        .await;
    let s = stack
        .wait_for(&ticket, "the last one met", |s| {
            due(s, "progress_3").map(|(_, st)| st) == Some(DeadlineState::Met)
        })
        .await;
    assert!(due(&s, "progress_4").is_none(), "{s:?}");
    stack.stop().await;
}

/// Correct under lag: an acceptance made in time but still unread when the SLA timer (a
/// lagging instance) breached the first response. When the timer reads it, the breach is
/// retracted (an event and a history line), and routing, which knows the acceptance was in
/// time, escalates nobody.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_read_acceptance_retracts_a_breach_decided_too_early() {
    let mut stack = Stack::start().await;
    let ticket = stack.submit("web-lag", "快递三天没有送到").await;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    // The SLA timer stops reading; the department accepts at 10:00, in time.
    let timer = stack.services.remove(3);
    timer.stop().await.unwrap();
    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    // 13:00: an instance that had not read the acceptance breaches the first response (due
    // 12:00), in its table and on the stream.
    stack
        .clock
        .set(Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap());
    let pool = stack.env.admin_pool().await.unwrap();
    let (work_id, round, complaint_id, due_at): (uuid::Uuid, i32, uuid::Uuid, DateTime<Utc>) =
        sqlx::query_as(
            "UPDATE sla.deadlines SET state = 'breached', settled_at = $2
             WHERE ticket = $1 AND name = 'first_response'
             RETURNING work_id, round, complaint_id, due_at",
        )
        .bind(&ticket)
        .bind(stack.clock.now())
        .fetch_one(&pool)
        .await
        .unwrap();
    let breach = redress_platform::envelope::new_event(
        "sla-timer",
        &redress_platform::envelope::Cause {
            complaint_id,
            ticket: ticket.clone(),
            causation_id: "early-breach".into(),
            correlation_id: complaint_id.to_string(),
            playbook: "default".into(),
        },
        stack.clock.now(),
        Payload::DeadlineBreached(redress_proto::v1::DeadlineSettled {
            deadline: Some(redress_proto::v1::Deadline {
                name: "first_response".into(),
                due_at: redress_proto::time::ts(due_at),
                state: DeadlineState::Breached as i32,
                limit: "2 business hours".into(),
                calendar: "cn-mainland".into(),
                round: round as u32,
                work_id: work_id.to_string(),
                ticket: ticket.clone(),
                department: "logistics".into(),
                settled_at: redress_proto::time::ts(stack.clock.now()),
                met_by: "accepted".into(),
                remaining_secs: 0,
                work_version: 0,
                ..Default::default()
            }),
            retracts_breach: false,
        }),
    );
    stack
        .env
        .publish_event(
            stack
                .env
                .subjects()
                .event_of(redress_proto::EventKind::SlaBreached),
            &breach,
        )
        .await
        .unwrap();
    stack
        .wait_for(&ticket, "the early breach seen", |s| {
            deadline_state(s, 1, "first_response") == Some(DeadlineState::Breached)
        })
        .await;
    // The timer comes back, reads the acceptance and takes the breach back.
    let shared: redress_platform::SharedClock = stack.clock.clone();
    stack.services.push(
        stack
            .env
            .start_service("sla-timer", shared, redress_sla_timer::run)
            .await
            .unwrap(),
    );
    let s = stack
        .wait_for(&ticket, "the breach retracted", |s| {
            deadline_state(s, 1, "first_response") == Some(DeadlineState::Met)
                && s.history
                    .iter()
                    .any(|h| h.detail.contains("met in time after all"))
        })
        .await;
    assert_eq!(s.escalation_level, 0, "nobody was paged: {s:?}");
    let escalated = stack
        .env
        .events(stack.env.subjects().work_escalated("logistics"))
        .await
        .unwrap();
    assert!(escalated.is_empty());
    stack.stop().await;
}

/// After a restart with a backlog, the timer breaches nothing until its consumer has read
/// what is pending: an acceptance made in time, read after its deadline's due time, meets it.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_timer_reads_its_backlog_before_it_breaches() {
    let mut stack = Stack::start().await;
    let ticket = stack.submit("web-backlog", "快递三天没有送到").await;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    let timer = stack.services.remove(3);
    timer.stop().await.unwrap();
    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    // The first response fell due at 12:00; the timer is back at 15:00.
    stack
        .clock
        .set(Utc.with_ymd_and_hms(2026, 11, 23, 7, 0, 0).unwrap());
    let shared: redress_platform::SharedClock = stack.clock.clone();
    stack.services.push(
        stack
            .env
            .start_service("sla-timer", shared, redress_sla_timer::run)
            .await
            .unwrap(),
    );
    stack
        .wait_for(&ticket, "met by the backlog", |s| {
            deadline_state(s, 1, "first_response") == Some(DeadlineState::Met)
        })
        .await;
    let breaches = stack
        .env
        .events(
            stack
                .env
                .subjects()
                .event_of(redress_proto::EventKind::SlaBreached),
        )
        .await
        .unwrap();
    assert!(breaches.is_empty(), "{} breach(es)", breaches.len());
    stack.stop().await;
}

/// Express (002) chains its time limits: each clock starts at the step before it. Receipt
/// starts the record deadline (met by the assignment), the acceptance starts the
/// investigation's, the first investigation entry starts the proposal's, the approval starts
/// the reply's; each is due exactly its limit after the time its own step was taken.
#[tokio::test(flavor = "multi_thread")]
async fn a_chain_of_deadlines_each_starts_at_the_step_before() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[evidence]",
            "[[sla.deadlines]]\nname = \"record\"\nlimit = \"1 hour\"\n\
             starts = \"received\"\nmet_by = \"assigned\"\n\n\
             [[sla.deadlines]]\nname = \"investigate\"\nlimit = \"24 hours\"\n\
             starts = \"accepted\"\nmet_by = \"investigated\"\n\n\
             [[sla.deadlines]]\nname = \"propose\"\nlimit = \"2 hours\"\n\
             starts = \"investigated\"\nmet_by = \"proposed\"\n\n\
             [[sla.deadlines]]\nname = \"answer\"\nlimit = \"1 hour\"\n\
             starts = \"approved\"\nmet_by = \"replied\"\n\n[evidence]",
        )
    })
    .await;
    let dept = "logistics";
    let who = "zhou.qiang";
    let deadline = |s: &ComplaintStatus, name: &str| {
        s.deadlines
            .iter()
            .find(|d| d.name == name)
            .map(|d| (d.state(), d.due_at.as_ref().map_or(0, |t| t.seconds)))
    };
    let t0 = monday_morning();
    let secs = |minutes: i64| (t0 + chrono::Duration::minutes(minutes)).timestamp();
    let ticket = stack.submit("web-chain", "快递三天没有送到").await;
    // Received and assigned at 10:00: the record deadline is born met; nothing the later
    // steps start is armed yet.
    let s = stack
        .wait_for(&ticket, "the record deadline met", |s| {
            deadline(s, "record") == Some((DeadlineState::Met, secs(60)))
                && deadline(s, "first_response").is_some()
        })
        .await;
    assert!(deadline(&s, "investigate").is_none(), "{s:?}");
    assert!(deadline(&s, "propose").is_none(), "{s:?}");

    // Accepted at 10:30: the investigation is due at 10:30 the next day.
    stack.clock.advance(chrono::Duration::minutes(30));
    stack
        .work("accept", &ticket, dept, who, Action::Accept(Accept {}))
        .await;
    stack
        .wait_for(&ticket, "the investigation clock started", |s| {
            deadline(s, "investigate") == Some((DeadlineState::Armed, secs(30 + 24 * 60)))
                && deadline(s, "first_response").map(|d| d.0) == Some(DeadlineState::Met)
        })
        .await;
    assert!(deadline(&stack.status(&ticket).await, "propose").is_none());

    // The first investigation entry at 12:30 meets it and starts the proposal's two hours.
    stack.clock.advance(chrono::Duration::hours(2));
    stack
        .work(
            "investigate",
            &ticket,
            dept,
            who,
            Action::Investigate(redress_proto::v1::Investigate {
                notes: "快递站点滞留".into(),
                ..Default::default()
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "investigated, the proposal clock started", |s| {
            deadline(s, "investigate").map(|d| d.0) == Some(DeadlineState::Met)
                && deadline(s, "propose") == Some((DeadlineState::Armed, secs(150 + 120)))
        })
        .await;

    // Nothing proposed by 14:30: breached by the timer at 15:30.
    stack.clock.advance(chrono::Duration::hours(3));
    stack
        .wait_for(&ticket, "the proposal deadline breached", |s| {
            deadline(s, "propose").map(|d| d.0) == Some(DeadlineState::Breached)
        })
        .await;

    // Proposed and waved through at 15:30: the answer is due at 16:30, and the reply made at
    // once meets it.
    stack.offer(&ticket, dept, who, "重新派送").await;
    let s = stack
        .wait_for(&ticket, "the answer deadline met", |s| {
            deadline(s, "answer") == Some((DeadlineState::Met, secs(330 + 60)))
        })
        .await;
    assert_eq!(
        deadline(&s, "propose").map(|d| d.0),
        Some(DeadlineState::Breached),
        "a proposal after the due time does not undo the breach: {s:?}"
    );
    stack.stop().await;
}

/// Calendars are data: when the State Council's notice adds a day off, the file dropped into
/// the calendar directory moves every open deadline that counts working days across it, the
/// history keeps the old due time with the reason, and a deadline it does not touch stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_calendar_change_moves_an_armed_deadline_and_says_so() {
    let calendars = tempfile::tempdir().unwrap();
    let stack = Stack::with_sla(serde_json::json!({
        "calendars_dir": calendars.path(),
        "calendar_poll_ms": 50,
    }))
    .await;
    let ticket = stack.submit("web-calendar", "快递三天没有送到").await;
    let due = |s: &ComplaintStatus, name: &str| {
        s.deadlines
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.due_at.as_ref().map(|t| t.seconds))
    };
    let thursday_close = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
    let friday_close = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
    // Assigned Monday 10:00: three working days end on Thursday at 18:00.
    let before = stack
        .wait_for(&ticket, "the resolution deadline armed", |s| {
            due(s, "resolution") == Some(thursday_close.timestamp())
                && due(s, "first_response").is_some()
        })
        .await;
    // Wednesday 25 November becomes a day off.
    let (_, shipped) = redress_calendar::BUILTIN_FILES
        .iter()
        .find(|(f, _)| *f == "cn-mainland.toml")
        .unwrap();
    let changed = shipped.replacen(
        "{ name = \"National Day (国庆节)\", from = \"2026-10-01\", to = \"2026-10-07\" },",
        "{ name = \"National Day (国庆节)\", from = \"2026-10-01\", to = \"2026-10-07\" },\n  \
         { name = \"Test closure\", from = \"2026-11-25\", to = \"2026-11-25\" },",
        1,
    );
    assert_ne!(&changed, shipped);
    std::fs::write(calendars.path().join("cn-mainland.toml"), changed).unwrap();
    let s = stack
        .wait_for(&ticket, "the resolution deadline moved to Friday", |s| {
            due(s, "resolution") == Some(friday_close.timestamp())
                && s.history.iter().any(|h| h.detail.contains("moved from"))
        })
        .await;
    // Two business hours from Monday 10:00 do not cross Wednesday: unchanged.
    assert_eq!(due(&s, "first_response"), due(&before, "first_response"));
    let moved: Vec<&str> = s
        .history
        .iter()
        .filter(|h| h.event == "sla.armed" && h.detail.contains("moved from"))
        .map(|h| h.detail.as_str())
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(
        moved[0].contains("resolution")
            && moved[0].contains("2026-11-26 10:00 UTC")
            && moved[0].contains("2026-11-27 10:00 UTC")
            && moved[0].contains("calendar cn-mainland changed"),
        "{moved:?}"
    );
    // The timer keeps to the new time: Thursday evening passes without a breach.
    stack
        .clock
        .set(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
    stack
        .wait_for(
            &ticket,
            "first response breached (it was never accepted)",
            |s| deadline_state(s, 1, "first_response") == Some(DeadlineState::Breached),
        )
        .await;
    assert_eq!(
        deadline_state(&stack.status(&ticket).await, 1, "resolution"),
        Some(DeadlineState::Armed),
        "not breached: due on Friday now, and its warning moved with it (80% is Thursday 21:12)"
    );
    stack.stop().await;
}

/// The escalation ladder: half the resolution time remind the handler, at the breach notify
/// the service manager, two hours after it escalate to the general manager; each rung once.
/// Half the resolution's working time falls on Wednesday at 09:30, where the wall clock's
/// half would be 02:00 that night.
#[tokio::test(flavor = "multi_thread")]
async fn an_escalation_ladder_reminds_in_working_hours_and_climbs_after_the_breach() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[evidence]",
            "[[sla.ladder]]\nat = \"50%\"\ndo = \"remind\"\nto = \"handler\"\n\
             deadlines = [\"resolution\"]\n\n\
             [[sla.ladder]]\nat = \"breach\"\ndo = \"notify\"\nto = \"service manager\"\n\
             deadlines = [\"resolution\"]\n\n\
             [[sla.ladder]]\nat = \"breach + 2 hours\"\ndo = \"escalate\"\n\
             to = \"general manager\"\ndeadlines = [\"resolution\"]\n\n[evidence]",
        )
    })
    .await;
    let ticket = stack.submit("web-ladder", "快递三天没有送到").await;
    let dept = "logistics";
    stack
        .wait_for(&ticket, "assignment", |s| s.deadlines.len() == 2)
        .await;
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    let lines = |s: &ComplaintStatus| -> Vec<(i64, String)> {
        s.history
            .iter()
            .filter(|h| h.event == "sla.escalation")
            .map(|h| (h.at.as_ref().map_or(0, |t| t.seconds), h.detail.clone()))
            .collect()
    };
    // Monday 10:00 to Thursday 18:00 holds 29 working hours (09:00-12:00, 13:30-18:00): half
    // of them have gone on Wednesday at 09:30. At 03:00 that night nothing is due yet.
    let shanghai = |d: u32, h: u32, m: u32| {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap() - chrono::Duration::hours(8)
    };
    stack.clock.set(shanghai(25, 3, 0));
    let pool = stack.env.admin_pool().await.unwrap();
    let opening = shanghai(25, 9, 30);
    eventually("the reminder planned for 09:30", WAIT, || {
        let pool = pool.clone();
        let ticket = ticket.clone();
        async move {
            let at: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT ladder_at FROM sla.deadlines WHERE ticket = $1 AND name = 'resolution'",
            )
            .bind(&ticket)
            .fetch_one(&pool)
            .await
            .unwrap();
            at == Some(opening)
        }
    })
    .await;
    assert!(lines(&stack.status(&ticket).await).is_empty());
    stack.clock.set(opening);
    let s = stack
        .wait_for(&ticket, "the reminder at 09:30", |s| !lines(s).is_empty())
        .await;
    assert_eq!(
        lines(&s),
        [(
            opening.timestamp(),
            "resolution (round 1) at 50%: remind zhou.qiang (due 2026-11-25 01:30 UTC)".into()
        )]
    );
    // Thursday 18:02: breached, and the service manager is told; routing leaves the
    // escalating to the ladder.
    stack.clock.set(shanghai(26, 18, 2));
    let s = stack
        .wait_for(&ticket, "the breach notice", |s| lines(s).len() == 2)
        .await;
    assert!(
        lines(&s)[1].1.contains("at breach: notify service manager"),
        "{s:?}"
    );
    assert_eq!(s.escalation_level, 0, "{s:?}");
    // Two hours later the general manager: the work is escalated, once.
    stack.clock.set(shanghai(26, 20, 5));
    let s = stack
        .wait_for(&ticket, "escalated to the general manager", |s| {
            s.escalation_level == 1 && lines(s).len() == 3
        })
        .await;
    assert!(lines(&s)[2].1.contains("escalate general manager"), "{s:?}");
    stack.clock.set(shanghai(27, 12, 0));
    let s = stack.status(&ticket).await;
    assert_eq!(lines(&s).len(), 3, "each rung once: {s:?}");
    let escalated = details(&s, "work.escalated");
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert!(escalated[0].contains("general manager"), "{escalated:?}");
    stack.stop().await;
}

/// After-sales (003): an urgent complaint arriving outside working hours pages whoever is on
/// call at once, and its deadlines start at the next opening.
#[tokio::test(flavor = "multi_thread")]
async fn an_urgent_complaint_off_hours_pages_on_call_and_its_clocks_start_at_the_opening() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[evidence]",
            "[sla.on_call]\nrota = [\"sun.hao\", \"he.jing\"]\n\n[evidence]",
        )
    })
    .await;
    // Saturday 28 November, 03:00 in Shanghai.
    let saturday = Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 0).unwrap();
    stack.clock.set(saturday);
    let ticket = stack
        .submit("web-oncall", "紧急！快递包裹漏液，很危险")
        .await;
    let s = stack
        .wait_for(&ticket, "the page and the deadlines", |s| {
            s.history.iter().any(|h| h.event == "sla.escalation")
                && s.deadlines.iter().any(|d| d.name == "first_response")
        })
        .await;
    assert_eq!(s.urgency, "emergency", "{s:?}");
    let page = s
        .history
        .iter()
        .find(|h| h.event == "sla.escalation")
        .unwrap();
    assert_eq!(
        page.at.as_ref().map(|t| t.seconds),
        Some(saturday.timestamp())
    );
    assert!(
        page.detail == "page sun.hao (off hours)" || page.detail == "page he.jing (off hours)",
        "{page:?}"
    );
    // Thirty minutes from Monday 09:00, not from Saturday 03:00.
    let monday_0930 = Utc.with_ymd_and_hms(2026, 11, 30, 1, 30, 0).unwrap();
    let first = s
        .deadlines
        .iter()
        .find(|d| d.name == "first_response")
        .unwrap();
    assert_eq!(
        first.due_at.as_ref().map(|t| t.seconds),
        Some(monday_0930.timestamp()),
        "{s:?}"
    );
    stack.stop().await;
}

/// A pause across a weekend that holds a make-up working day (调休): Saturday 10 October 2026
/// is worked after the National Day holiday. Assigned Thursday 8 October 10:00, three working
/// days end on Monday 12 October 18:00 (Friday, the make-up Saturday, Monday). Evidence asked
/// for on Friday 10:00 stops the clock with 21 h 30 min of working time left (6.5 h on Friday,
/// 7.5 h on the Saturday, 7.5 h on Monday); supplied on Sunday 15:00, outside working time,
/// the clock resumes at Monday's opening and ends on Wednesday 14 October, 17:00.
#[tokio::test(flavor = "multi_thread")]
async fn a_pause_across_a_make_up_weekend_resumes_with_the_exact_time_left() {
    let stack = Stack::start().await;
    let shanghai = |m: u32, d: u32, h: u32| {
        Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap() - chrono::Duration::hours(8)
    };
    stack.clock.set(shanghai(10, 8, 10));
    let ticket = stack.submit("web-tiaoxiu", "快递三天没有送到").await;
    let dept = "logistics";
    let resolution = |s: &ComplaintStatus| {
        s.deadlines
            .iter()
            .find(|d| d.name == "resolution")
            .map(|d| {
                (
                    d.due_at.as_ref().map_or(0, |t| t.seconds),
                    d.state(),
                    d.remaining_secs,
                )
            })
    };
    stack
        .wait_for(&ticket, "due Monday 18:00", |s| {
            resolution(s) == Some((shanghai(10, 12, 18).timestamp(), DeadlineState::Armed, 0))
        })
        .await;
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    stack.clock.set(shanghai(10, 9, 10));
    stack
        .work(
            "request_evidence",
            &ticket,
            dept,
            "zhou.qiang",
            Action::RequestEvidence(redress_proto::v1::RequestEvidence {
                what: "请提供快递单号".into(),
            }),
        )
        .await;
    let s = stack
        .wait_for(&ticket, "paused", |s| {
            resolution(s).is_some_and(|(_, st, _)| st == DeadlineState::Paused)
        })
        .await;
    assert_eq!(
        resolution(&s).map(|r| r.2),
        Some(21 * 3600 + 30 * 60),
        "21 h 30 min of working time left: {s:?}"
    );
    let notices = stack
        .env
        .stream_messages(
            Stream::Notify,
            stack.env.subjects().notify_evidence_requested("web"),
        )
        .await
        .unwrap();
    let token = redress_proto::v1::ReplyToComplainant::decode(notices[0].payload.clone())
        .unwrap()
        .token;
    stack.clock.set(shanghai(10, 11, 15));
    stack
        .client
        .publish_evidence(&redress_proto::v1::SupplyEvidence {
            channel: "web".into(),
            external_id: "ev-tiaoxiu".into(),
            ticket: ticket.clone(),
            token,
            text: "单号 SF1234567890".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .await
        .unwrap();
    let wednesday_1700 = shanghai(10, 14, 17).timestamp();
    stack
        .wait_for(&ticket, "resumed, due Wednesday 17:00", |s| {
            resolution(s) == Some((wednesday_1700, DeadlineState::Armed, 0))
        })
        .await;
    stack.stop().await;
}

/// Follow-up in a window (after-sales, 003): the survey goes out on day 5 after the reply,
/// inside working hours (day 5 is a Saturday: Monday 09:00), is reminded once after 8
/// business hours, and at the end of its 2-day window closes the complaint as "no response".
#[tokio::test(flavor = "multi_thread")]
async fn a_survey_waits_for_its_window_is_reminded_once_and_expires_to_no_response() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "satisfied_min = 4",
            "satisfied_min = 4\nsend_after = \"5 days\"\nworking_hours = true\n\
             remind_after = \"8 business hours\"\nexpire_after = \"2 days\"",
        )
    })
    .await;
    let ticket = stack.submit("web-window", "快递三天没有送到").await;
    stack.resolve_in_logistics(&ticket).await;
    let shanghai = |m: u32, d: u32, h: u32, min: u32| {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap() - chrono::Duration::hours(8)
    };
    let monday_0900 = shanghai(11, 30, 9, 0);
    let pool = stack.env.admin_pool().await.unwrap();
    let row = || {
        let pool = pool.clone();
        let ticket = ticket.clone();
        async move {
            sqlx::query_as::<_, (String, Option<DateTime<Utc>>)>(
                "SELECT state, send_at FROM survey.surveys WHERE ticket = $1",
            )
            .bind(&ticket)
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };
    // Replied Monday 23 November 10:00: day 5 is Saturday the 28th, so Monday 09:00.
    eventually("the survey scheduled", WAIT, || async {
        row().await == Some(("scheduled".to_string(), Some(monday_0900)))
    })
    .await;
    let invitations = || async {
        stack
            .env
            .stream_messages(Stream::Notify, stack.env.subjects().notify_survey("web"))
            .await
            .unwrap()
            .into_iter()
            .map(|m| SurveyInvitation::decode(m.payload.clone()).unwrap())
            .filter(|i| i.ticket == ticket)
            .collect::<Vec<_>>()
    };
    // Saturday 10:30, the fifth day, is not a working day: nothing yet.
    stack.clock.set(shanghai(11, 28, 10, 30));
    let s = stack.status(&ticket).await;
    assert_eq!(s.survey, "none", "{s:?}");
    stack.clock.set(monday_0900);
    stack
        .wait_for(&ticket, "the survey sent on Monday", |s| s.survey == "sent")
        .await;
    let sent = invitations().await;
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].reminder);
    let sent_at = stack
        .status(&ticket)
        .await
        .history
        .iter()
        .find(|h| h.event == "survey.sent")
        .and_then(|h| h.at.as_ref().map(|t| t.seconds));
    assert_eq!(sent_at, Some(monday_0900.timestamp()));
    // Eight business hours later (7.5 on Monday, 0.5 on Tuesday): Tuesday 09:30.
    stack.clock.set(shanghai(12, 1, 9, 30));
    eventually("one reminder", WAIT, || async {
        invitations().await.len() == 2
    })
    .await;
    let both = invitations().await;
    assert!(both[1].reminder && both[1].token != both[0].token);
    // The history tells the reminder, and the survey still waits for its answer.
    let s = stack
        .wait_for(&ticket, "the reminder in the history", |s| {
            s.history
                .iter()
                .any(|h| h.event == "survey.sent" && h.detail.contains("reminded"))
        })
        .await;
    let reminded: Vec<_> = s
        .history
        .iter()
        .filter(|h| h.event == "survey.sent")
        .map(|h| (h.at.as_ref().map(|t| t.seconds), h.detail.clone()))
        .collect();
    assert_eq!(
        reminded,
        [
            (Some(monday_0900.timestamp()), "round 1 by web".to_string()),
            (
                Some(shanghai(12, 1, 9, 30).timestamp()),
                "round 1: reminded by web".to_string()
            ),
        ]
    );
    assert_eq!(s.survey, "sent", "{s:?}");
    // The window ends Wednesday 09:00: closed as no response, reminded only once.
    stack.clock.set(shanghai(12, 2, 9, 1));
    let s = stack
        .wait_for(&ticket, "closed as no response", |s| {
            s.survey == "no_response" && s.status == "closed"
        })
        .await;
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "complaint.closed" && h.detail.contains("no response")),
        "{s:?}"
    );
    assert_eq!(invitations().await.len(), 2);
    // Too late to answer, with either token.
    match stack.answer(&ticket, 5, "").await {
        survey_reply::Outcome::Error(e) => {
            assert_eq!(e.code(), redress_proto::v1::CommandErrorCode::WrongState)
        }
        other => panic!("answered after expiry: {other:?}"),
    }
    stack.stop().await;
}

/// Express (002) follows up by web form or phone: a member of the department that handled
/// the complaint records the phone follow-up with the same scores, and it counts as the
/// complainant's answer. Someone outside the department cannot record one.
#[tokio::test(flavor = "multi_thread")]
async fn a_phone_follow_up_recorded_by_the_department_answers_the_survey() {
    let stack = Stack::start().await;
    let ticket = stack.submit("web-phone", "快递三天没有送到").await;
    stack.resolve_in_logistics(&ticket).await;
    stack
        .wait_for(&ticket, "the survey sent", |s| s.survey == "sent")
        .await;
    let record = |who: &str, department: &str| redress_proto::v1::RecordFollowUp {
        command_id: uuid::Uuid::now_v7().to_string(),
        ticket: ticket.clone(),
        department: department.into(),
        recorded_by: who.into(),
        scores: Some(SurveyScores {
            overall: 5,
            speed: 4,
            ..Default::default()
        }),
        comment: "电话回访：已收到包裹".into(),
        via: "phone".into(),
    };
    let send = |who: &'static str, department: &'static str| {
        let m = record(who, department);
        let stack = &stack;
        async move {
            let reply: SurveyReply = stack
                .request("survey", &format!("follow_up.{department}"), &m, who)
                .await;
            reply.outcome.unwrap()
        }
    };
    // Quality did not handle it.
    match send("xu.lin", "quality").await {
        survey_reply::Outcome::Error(e) => assert_eq!(e.field, "department", "{e:?}"),
        other => panic!("recorded by another department: {other:?}"),
    }
    match send("zhou.qiang", "logistics").await {
        survey_reply::Outcome::Survey(v) => assert!(v.satisfied, "{v:?}"),
        other => panic!("the follow-up was refused: {other:?}"),
    }
    let s = stack
        .wait_for(&ticket, "closed by the follow-up", |s| {
            s.status == "closed" && s.survey == "satisfied"
        })
        .await;
    assert!(
        s.history.iter().any(|h| h.event == "survey.answered"
            && h.detail
                .contains("follow-up by phone, recorded by zhou.qiang")),
        "{s:?}"
    );
    // Once: the survey is answered now.
    match send("zhou.qiang", "logistics").await {
        survey_reply::Outcome::Error(e) => {
            assert_eq!(e.code(), redress_proto::v1::CommandErrorCode::WrongState)
        }
        other => panic!("a second follow-up was recorded: {other:?}"),
    }
    stack.stop().await;
}

/// After-sales (003): a complainant dissatisfied a second time is not simply reopened again;
/// the third round climbs to the manager the playbook names.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_dissatisfied_round_climbs_to_the_named_manager() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "satisfied_min = 4",
            "satisfied_min = 4\nsecond_dissatisfied_to = \"service manager\"",
        )
    })
    .await;
    let ticket = stack.submit("web-twice", "快递三天没有送到").await;
    let dept = "logistics";
    for round in 1..=2u32 {
        stack
            .wait_for(&ticket, "assigned", |s| {
                s.round == round && (s.status == "assigned" || s.status == "reopened")
            })
            .await;
        stack
            .work(
                "accept",
                &ticket,
                dept,
                "zhou.qiang",
                Action::Accept(Accept {}),
            )
            .await;
        stack.offer(&ticket, dept, "zhou.qiang", "重新派送").await;
        stack
            .work(
                "resolve",
                &ticket,
                dept,
                "zhou.qiang",
                Action::Resolve(Resolve::default()),
            )
            .await;
        stack
            .wait_for(&ticket, "the survey of the round", |s| {
                s.survey == "sent" && s.round == round
            })
            .await;
        stack.answer(&ticket, 1, "还是没收到").await;
        let s = stack
            .wait_for(&ticket, "reopened", |s| s.round == round + 1)
            .await;
        if round == 1 {
            assert_eq!(s.escalation_level, 0, "the first is only reopened: {s:?}");
        }
    }
    let s = stack
        .wait_for(&ticket, "escalated in round 3", |s| s.escalation_level == 1)
        .await;
    let escalated = details(&s, "work.escalated");
    assert_eq!(escalated.len(), 1, "{s:?}");
    assert!(escalated[0].contains("service manager"), "{escalated:?}");
    stack.stop().await;
}

/// Express (002) surveys a sample of closed complaints again later: chosen by the playbook's
/// share, sent after its delay inside working hours, answered like any survey, and the
/// complaint stays closed whatever the answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_sampled_closed_complaint_is_surveyed_again_and_stays_closed() {
    let stack = Stack::with_playbook(|toml| {
        // [survey] is the playbook's last table.
        toml.replace(
            "satisfied_min = 4",
            "satisfied_min = 4\nworking_hours = true",
        ) + "\n[survey.resample]\npercent = 100\nafter = \"30 days\"\n"
    })
    .await;
    let ticket = stack.submit("web-sample", "快递三天没有送到").await;
    stack.resolve_in_logistics(&ticket).await;
    stack
        .wait_for(&ticket, "the survey", |s| s.survey == "sent")
        .await;
    stack.answer(&ticket, 5, "满意").await;
    stack
        .wait_for(&ticket, "closed", |s| s.status == "closed")
        .await;
    // Closed Monday 23 November 10:00; thirty days on is Wednesday 23 December, 10:00.
    stack
        .clock
        .set(Utc.with_ymd_and_hms(2026, 12, 23, 2, 30, 0).unwrap());
    let s = stack
        .wait_for(&ticket, "the sample re-survey sent", |s| {
            s.history
                .iter()
                .any(|h| h.event == "survey.sent" && h.detail.starts_with("sample re-survey"))
        })
        .await;
    assert_eq!(
        s.survey, "satisfied",
        "the complaint's own survey stays: {s:?}"
    );
    match stack.answer(&ticket, 2, "后来又坏了").await {
        survey_reply::Outcome::Survey(v) => assert!(!v.satisfied),
        other => panic!("the sample answer was refused: {other:?}"),
    }
    let s = stack
        .wait_for(&ticket, "the sample answered", |s| {
            s.history.iter().any(|h| {
                h.event == "survey.answered" && h.detail.contains("sample re-survey, stays closed")
            })
        })
        .await;
    assert_eq!((s.status.as_str(), s.round), ("closed", 1), "{s:?}");
    stack.stop().await;
}

/// After-sales (003): a major complaint's proposal goes to the service manager first, then
/// to the general managers, all of whom must sign; a rejection at the second step sends it
/// back to the department, which proposes again in the same round.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_step_chain_with_an_all_of_step_and_a_rejection_at_the_second() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[survey]",
            "[[approval.approvers]]\nname = \"he.jing\"\nrole = \"service_manager\"\n\n\
             [[approval.chains]]\nname = \"major\"\nseverity = \"major\"\n\n\
             [[approval.chains.steps]]\nrole = \"service_manager\"\n\n\
             [[approval.chains.steps]]\nrole = \"general_manager\"\nneed = \"all\"\n\n[survey]",
        )
    })
    .await;
    let ticket = stack
        .submit("web-chain-approval", "快递丢件，我要去消协投诉")
        .await;
    let s = stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    assert_eq!(s.severity, "major", "{s:?}");
    let dept = s.department.clone();
    let member = "wang.fang";
    stack
        .work("accept", &ticket, &dept, member, Action::Accept(Accept {}))
        .await;
    let propose = |remedy: &'static str| {
        Action::Propose(Propose {
            responsibility: Responsibility::CompanyLiable as i32,
            remedy: remedy.into(),
            compensation_minor: 20_000,
            currency: String::new(),
            kind: 0,
        })
    };
    stack
        .work("propose", &ticket, &dept, member, propose("赔偿200元"))
        .await;
    stack
        .wait_for(&ticket, "pending at step 1", |s| s.approval == "pending")
        .await;
    let refused = |o: approval_reply::Outcome| match o {
        approval_reply::Outcome::Error(e) => e,
        other => panic!("not refused: {other:?}"),
    };
    let pending = |o: approval_reply::Outcome| match o {
        approval_reply::Outcome::Approval(v) => v,
        other => panic!("refused: {other:?}"),
    };
    // The general manager may not go first.
    let e = refused(stack.decide(&ticket, "zhao.min", true, "").await);
    assert_eq!(e.field, "approver", "{e:?}");
    let v = pending(stack.decide(&ticket, "he.jing", true, "同意").await);
    assert_eq!(
        (v.state.as_str(), v.approver_role.as_str()),
        ("pending", "general_manager")
    );
    // All of the general managers: one is not enough.
    let v = pending(stack.decide(&ticket, "zhao.min", true, "").await);
    assert_eq!(v.state, "pending");
    // Every decision so far, in the view `redress approvals --json` shows.
    assert_eq!((v.chain.as_str(), v.step, v.steps), ("major", 2, 2));
    let decided: Vec<(u32, &str, bool)> = v
        .decisions
        .iter()
        .map(|d| (d.step, d.approver.as_str(), d.approve))
        .collect();
    assert_eq!(decided, [(1, "he.jing", true), (2, "zhao.min", true)]);
    let e = refused(stack.decide(&ticket, "zhao.min", true, "").await);
    assert_eq!(e.field, "approver", "once per step: {e:?}");
    let v = pending(
        stack
            .decide(&ticket, "chen.jie", false, "赔偿金额需要核实，请附上凭证")
            .await,
    );
    assert_eq!(v.state, "rejected");

    // Every step and decision is in the history, the partial one at the all-of step too
    // (the lines may be written in any order).
    stack
        .wait_for(&ticket, "every decision told", |s| {
            let requested = details(s, "approval.requested");
            s.approval == "rejected"
                && requested.iter().any(|d| d.contains("step 2 of 2"))
                && requested
                    .iter()
                    .any(|d| d.contains("approved by zhao.min, 1 more of general_manager"))
                && details(s, "approval.decided")
                    .iter()
                    .any(|d| d.contains("rejected by chen.jie: 赔偿金额需要核实"))
        })
        .await;
    // Back with the department (once routing has read the rejection), proposed again in
    // the same round: the whole chain signs.
    stack
        .propose_again(&ticket, &dept, member, propose("赔偿200元（附凭证）"))
        .await;
    stack
        .wait_for(&ticket, "pending again", |s| s.approval == "pending")
        .await;
    for approver in ["he.jing", "zhao.min", "chen.jie"] {
        pending(stack.decide(&ticket, approver, true, "").await);
    }
    let s = stack
        .wait_for(&ticket, "approved", |s| {
            s.approval == "approved" && s.status == "approved"
        })
        .await;
    assert_eq!(s.round, 1);
    stack.stop().await;
}

/// Holiday cover: a general manager hands their approvals to a colleague for some days. The
/// colleague cannot decide before those days, decides on them in the manager's name, and a
/// delegation to the proposer does not let anyone approve their own proposal.
#[tokio::test(flavor = "multi_thread")]
async fn a_delegation_counts_only_in_its_days_and_never_for_ones_own_proposal() {
    let stack = Stack::start().await;
    let ticket = stack
        .submit("web-delegation", "快递丢件，我要去消协投诉")
        .await;
    let s = stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    let dept = s.department.clone();
    let member = "wang.fang";
    stack
        .work("accept", &ticket, &dept, member, Action::Accept(Accept {}))
        .await;
    stack
        .work(
            "propose",
            &ticket,
            &dept,
            member,
            Action::Propose(Propose {
                responsibility: Responsibility::CompanyLiable as i32,
                remedy: "赔偿800元".into(),
                compensation_minor: 80_000,
                currency: String::new(),
                kind: 0,
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "pending", |s| s.approval == "pending")
        .await;
    let delegate = |from: &'static str, to: &'static str, first: &str, last: &str| {
        let m = redress_proto::v1::DelegateApproval {
            command_id: uuid::Uuid::now_v7().to_string(),
            delegator: from.into(),
            delegate: to.into(),
            from_day: first.into(),
            until_day: last.into(),
            playbook: String::new(),
        };
        let stack = &stack;
        async move {
            let reply: redress_proto::v1::DelegateReply =
                stack.request("approval", "delegate", &m, from).await;
            match reply.outcome.unwrap() {
                redress_proto::v1::delegate_reply::Outcome::Delegation(d) => d,
                other => panic!("delegation refused: {other:?}"),
            }
        }
    };
    // Monday 23 November: zhao.min is away Tuesday to Monday; chen.jie hands over to the
    // proposer herself.
    delegate("zhao.min", "liu.yang", "2026-11-24", "2026-11-30").await;
    delegate("chen.jie", member, "2026-11-23", "2026-11-30").await;
    let refused = |o: approval_reply::Outcome| match o {
        approval_reply::Outcome::Error(e) => e,
        other => panic!("not refused: {other:?}"),
    };
    let e = refused(stack.decide(&ticket, "liu.yang", true, "").await);
    assert!(e.message.contains("nor covering"), "before the days: {e:?}");
    let e = refused(stack.decide(&ticket, member, true, "").await);
    assert!(e.message.contains("own proposal"), "{e:?}");
    // Tuesday: liu.yang decides in zhao.min's name.
    stack.clock.advance(chrono::Duration::days(1));
    match stack.decide(&ticket, "liu.yang", true, "代批").await {
        approval_reply::Outcome::Approval(v) => {
            assert_eq!(
                (v.state.as_str(), v.decided_by.as_str()),
                ("approved", "liu.yang for zhao.min")
            );
            assert_eq!(
                (
                    v.decisions[0].approver.as_str(),
                    v.decisions[0].delegate.as_str()
                ),
                ("zhao.min", "liu.yang")
            );
        }
        other => panic!("the delegate was refused: {other:?}"),
    }
    let s = stack
        .wait_for(&ticket, "approved", |s| s.approval == "approved")
        .await;
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "approval.decided" && h.detail.contains("liu.yang for zhao.min")),
        "{s:?}"
    );
    stack.stop().await;
}

/// An approval has a time limit like any step: a clock started by the proposal and met by
/// the approval. Not decided in time, it breaches and climbs the ladder to the general
/// manager's superior named by the playbook.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_not_decided_in_time_breaches_and_climbs() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[evidence]",
            "[[sla.deadlines]]\nname = \"approval\"\nlimit = \"4 business hours\"\n\
             starts = \"proposed\"\nmet_by = \"approved\"\n\n\
             [[sla.ladder]]\nat = \"breach\"\ndo = \"escalate\"\nto = \"general manager\"\n\
             deadlines = [\"approval\"]\n\n[evidence]",
        )
    })
    .await;
    let ticket = stack
        .submit("web-approval-late", "快递丢件，我要去消协投诉")
        .await;
    let s = stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    let dept = s.department.clone();
    stack
        .work(
            "accept",
            &ticket,
            &dept,
            "wang.fang",
            Action::Accept(Accept {}),
        )
        .await;
    stack
        .work(
            "propose",
            &ticket,
            &dept,
            "wang.fang",
            Action::Propose(Propose {
                responsibility: Responsibility::CompanyLiable as i32,
                remedy: "赔偿800元".into(),
                compensation_minor: 80_000,
                currency: String::new(),
                kind: 0,
            }),
        )
        .await;
    // Proposed Monday 10:00: four business hours end at 15:30 (lunch 12:00–13:30).
    let due = Utc.with_ymd_and_hms(2026, 11, 23, 7, 30, 0).unwrap();
    stack
        .wait_for(&ticket, "the approval clock", |s| {
            s.deadlines.iter().any(|d| {
                d.name == "approval"
                    && d.state() == DeadlineState::Armed
                    && d.due_at.as_ref().map(|t| t.seconds) == Some(due.timestamp())
            })
        })
        .await;
    stack.clock.set(due + chrono::Duration::minutes(5));
    let s = stack
        .wait_for(&ticket, "breached and escalated", |s| {
            deadline_state(s, 1, "approval") == Some(DeadlineState::Breached)
                && s.escalation_level == 1
        })
        .await;
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.escalated" && h.detail.contains("general manager")),
        "{s:?}"
    );
    // Decided late, the breach stands; the work goes on.
    match stack.decide(&ticket, "zhao.min", true, "同意").await {
        approval_reply::Outcome::Approval(v) => assert_eq!(v.state, "approved"),
        other => panic!("{other:?}"),
    }
    stack
        .wait_for(&ticket, "approved", |s| s.status == "approved")
        .await;
    assert_eq!(
        deadline_state(&stack.status(&ticket).await, 1, "approval"),
        Some(DeadlineState::Breached)
    );
    stack.stop().await;
}

/// A survey unanswered at the end of its window can become a phone follow-up task for the
/// department (survey.on_expiry = "phone") instead of closing as no response; the
/// department's record of the call answers it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_survey_becomes_a_phone_task_for_the_department() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "satisfied_min = 4",
            "satisfied_min = 4\nexpire_after = \"1 day\"\non_expiry = \"phone\"",
        )
    })
    .await;
    let ticket = stack.submit("web-phone-task", "快递三天没有送到").await;
    stack.resolve_in_logistics(&ticket).await;
    stack
        .wait_for(&ticket, "the survey", |s| s.survey == "sent")
        .await;
    stack
        .clock
        .advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    let s = stack
        .wait_for(&ticket, "the phone task", |s| {
            s.history.iter().any(|h| {
                h.event == "survey.sent" && h.detail.contains("logistics to follow up by phone")
            })
        })
        .await;
    assert_ne!(s.status, "closed", "{s:?}");
    // The department's list of calls to make has it (and another department's has not).
    let tasks = stack.client.list_follow_ups("logistics", 0).await.unwrap();
    let listed: Vec<(&str, u32, bool)> = tasks
        .iter()
        .map(|t| (t.ticket.as_str(), t.round, t.due_since.is_some()))
        .collect();
    assert_eq!(listed, [(ticket.as_str(), 1, true)]);
    assert!(
        stack
            .client
            .list_follow_ups("finance", 0)
            .await
            .unwrap()
            .is_empty()
    );
    let reply: SurveyReply = stack
        .request(
            "survey",
            "follow_up.logistics",
            &redress_proto::v1::RecordFollowUp {
                command_id: uuid::Uuid::now_v7().to_string(),
                ticket: ticket.clone(),
                department: "logistics".into(),
                recorded_by: "zhou.qiang".into(),
                scores: Some(SurveyScores {
                    overall: 4,
                    ..Default::default()
                }),
                comment: "电话回访".into(),
                via: String::new(),
            },
            "zhou.qiang",
        )
        .await;
    assert!(
        matches!(reply.outcome, Some(survey_reply::Outcome::Survey(ref v)) if v.satisfied),
        "{reply:?}"
    );
    stack
        .wait_for(&ticket, "closed by the call", |s| s.status == "closed")
        .await;
    assert!(
        stack
            .client
            .list_follow_ups("logistics", 0)
            .await
            .unwrap()
            .is_empty(),
        "the call was made"
    );
    stack.stop().await;
}

/// After-sales (003 §3): preventive measures are approved by the general manager, whatever
/// they cost; an apology on the same complaint is approved by the policy.
#[tokio::test(flavor = "multi_thread")]
async fn a_chain_chosen_by_the_kind_of_proposal() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[survey]",
            "[[approval.chains]]\nname = \"prevention\"\nkinds = [\"preventive\"]\n\
             category = \"delivery\"\n\n\
             [[approval.chains.steps]]\nrole = \"general_manager\"\n\n[survey]",
        )
    })
    .await;
    let ticket = stack.submit("web-kind", "快递三天没有送到").await;
    let dept = "logistics";
    stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    stack
        .work(
            "accept",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    let w = stack
        .work(
            "propose",
            &ticket,
            dept,
            "zhou.qiang",
            Action::Propose(Propose {
                responsibility: Responsibility::CompanyLiable as i32,
                remedy: "增加中转站交接扫描".into(),
                kind: redress_proto::v1::ProposalKind::Preventive as i32,
                ..Default::default()
            }),
        )
        .await;
    assert_eq!(
        w.proposal.as_ref().map(|p| p.kind()),
        Some(redress_proto::v1::ProposalKind::Preventive)
    );
    let s = stack
        .wait_for(&ticket, "waiting for the general manager", |s| {
            s.approval == "pending"
        })
        .await;
    assert!(
        details(&s, "approval.requested")
            .iter()
            .any(|d| d.contains("chain prevention")),
        "{s:?}"
    );
    match stack.decide(&ticket, "zhao.min", true, "同意").await {
        approval_reply::Outcome::Approval(v) => assert_eq!(v.state, "approved"),
        other => panic!("{other:?}"),
    }
    stack
        .wait_for(&ticket, "approved", |s| s.status == "approved")
        .await;
    stack.stop().await;
}

/// Each step of an approval chain has its own clock (sla.deadlines with starts =
/// "step_asked"): the service manager decides in time, the general manager does not, and the
/// late step climbs the ladder; a proposal made again after a rejection gets clocks of its
/// own.
#[tokio::test(flavor = "multi_thread")]
async fn each_approval_step_has_its_own_clock_and_a_late_one_climbs() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[evidence]",
            "[[sla.deadlines]]\nname = \"approval_step\"\nlimit = \"2 business hours\"\n\
             starts = \"step_asked\"\nmet_by = \"step_decided\"\n\n\
             [[sla.ladder]]\nat = \"breach\"\ndo = \"escalate\"\nto = \"general manager\"\n\
             deadlines = [\"approval_step\"]\n\n\
             [[sla.ladder]]\nat = \"breach + 2 hours\"\ndo = \"notify\"\nto = \"zhao.min\"\n\
             deadlines = [\"approval_step\"]\n\n[evidence]",
        )
        .replace(
            "[survey]",
            "[[approval.approvers]]\nname = \"he.jing\"\nrole = \"service_manager\"\n\n\
             [[approval.chains]]\nname = \"major\"\nseverity = \"major\"\n\n\
             [[approval.chains.steps]]\nrole = \"service_manager\"\n\n\
             [[approval.chains.steps]]\nrole = \"general_manager\"\n\n[survey]",
        )
    })
    .await;
    let ticket = stack
        .submit("web-step-clocks", "快递丢件，我要去消协投诉")
        .await;
    let s = stack
        .wait_for(&ticket, "assignment", |s| s.status == "assigned")
        .await;
    let dept = s.department.clone();
    let member = "wang.fang";
    stack
        .work("accept", &ticket, &dept, member, Action::Accept(Accept {}))
        .await;
    let propose = |remedy: &'static str| {
        Action::Propose(Propose {
            responsibility: Responsibility::CompanyLiable as i32,
            remedy: remedy.into(),
            compensation_minor: 20_000,
            currency: String::new(),
            kind: 0,
        })
    };
    stack
        .work("propose", &ticket, &dept, member, propose("赔偿200元"))
        .await;
    let due_of = |s: &ComplaintStatus, name: &str| {
        s.deadlines
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.due_at.as_ref().map(|t| t.seconds))
    };
    // Asked Monday 10:00: two business hours, due at 12:00.
    let s = stack
        .wait_for(&ticket, "step 1's clock", |s| {
            deadline_state(s, 1, "approval_step_1") == Some(DeadlineState::Armed)
        })
        .await;
    let monday = monday_morning();
    assert_eq!(
        due_of(&s, "approval_step_1"),
        Some((monday + chrono::Duration::hours(2)).timestamp())
    );
    stack.clock.set(monday + chrono::Duration::hours(1));
    match stack.decide(&ticket, "he.jing", true, "同意").await {
        approval_reply::Outcome::Approval(v) => assert_eq!(v.step, 2, "{v:?}"),
        other => panic!("{other:?}"),
    }
    // Step 1 met at 11:00; step 2 asked then, due at 14:30 (lunch 12:00–13:30 is not
    // working time).
    let s = stack
        .wait_for(&ticket, "step 2's clock", |s| {
            deadline_state(s, 1, "approval_step_1") == Some(DeadlineState::Met)
                && deadline_state(s, 1, "approval_step_2") == Some(DeadlineState::Armed)
        })
        .await;
    let step2_due = monday + chrono::Duration::hours(4) + chrono::Duration::minutes(30);
    assert_eq!(due_of(&s, "approval_step_2"), Some(step2_due.timestamp()));
    stack.clock.set(step2_due + chrono::Duration::minutes(5));
    let s = stack
        .wait_for(&ticket, "step 2 breached and climbed", |s| {
            deadline_state(s, 1, "approval_step_2") == Some(DeadlineState::Breached)
                && s.escalation_level == 1
        })
        .await;
    assert!(
        s.history
            .iter()
            .any(|h| h.event == "work.escalated" && h.detail.contains("general manager")),
        "{s:?}"
    );
    // Rejected late: the breach stands. The proposal made again has clocks of its own.
    match stack.decide(&ticket, "zhao.min", false, "请附上凭证").await {
        approval_reply::Outcome::Approval(v) => assert_eq!(v.state, "rejected"),
        other => panic!("{other:?}"),
    }
    stack
        .wait_for(&ticket, "rejected", |s| s.approval == "rejected")
        .await;
    // Decided, late: the breach stands, but the ladder climbs no further (the rung two hours
    // after the breach is never told).
    stack.clock.advance(chrono::Duration::hours(3));
    stack
        .propose_again(&ticket, &dept, member, propose("赔偿200元（附凭证）"))
        .await;
    let s = stack
        .wait_for(&ticket, "the second proposal's first clock", |s| {
            deadline_state(s, 1, "approval_step_1_2") == Some(DeadlineState::Armed)
        })
        .await;
    assert!(
        !details(&s, "sla.escalation")
            .iter()
            .any(|d| d.contains("zhao.min")),
        "{s:?}"
    );
    assert_eq!(
        deadline_state(&s, 1, "approval_step_2"),
        Some(DeadlineState::Breached)
    );
    assert_eq!(
        deadline_state(&s, 1, "approval_step_1"),
        Some(DeadlineState::Met)
    );
    stack.stop().await;
}

/// Open deadlines follow the work: transferred with the clocks running on (the default),
/// a breach afterwards notifies the manager of the department that holds it now.
#[tokio::test(flavor = "multi_thread")]
async fn a_transferred_deadline_escalates_to_the_department_that_has_the_work() {
    let stack = Stack::with_playbook(|toml| {
        toml.replace(
            "[evidence]",
            "[[sla.ladder]]\nat = \"breach\"\ndo = \"notify\"\nto = \"department_manager\"\n\
             deadlines = [\"resolution\"]\n\n[evidence]",
        )
    })
    .await;
    let ticket = stack.submit("web-follow", "快递三天没有送到").await;
    stack
        .wait_for(&ticket, "assignment", |s| {
            s.status == "assigned" && s.deadlines.len() == 2
        })
        .await;
    stack
        .work(
            "accept",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Accept(Accept {}),
        )
        .await;
    stack
        .work(
            "transfer",
            &ticket,
            "logistics",
            "zhou.qiang",
            Action::Transfer(redress_proto::v1::Transfer {
                to_department: "quality".into(),
                reason: "商品损坏".into(),
                understood: "包裹内商品损坏".into(),
            }),
        )
        .await;
    stack
        .wait_for(&ticket, "in quality", |s| s.department == "quality")
        .await;
    // Monday 10:00 + 3 working days: due Thursday 18:00; breached after it.
    stack.clock.advance(chrono::Duration::days(4));
    let s = stack
        .wait_for(&ticket, "the breach told to quality's manager", |s| {
            details(s, "sla.escalation")
                .iter()
                .any(|d| d.contains("he.jing"))
        })
        .await;
    assert!(
        !details(&s, "sla.escalation")
            .iter()
            .any(|d| d.contains("sun.hao")),
        "{s:?}"
    );
    stack.stop().await;
}
