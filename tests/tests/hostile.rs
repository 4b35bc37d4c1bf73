//! Hostile input against the whole stack (all six services, a real nats-server with
//! JetStream and a real PostgreSQL): randomly mutated submissions on both intake paths,
//! mutated commands to every command service, garbage and forged events, and the cases a
//! review found stalling the stack. Afterwards every consumer has settled every message
//! (nothing retried for ever), every request was answered, every service still runs, and
//! 50 ordinary complaints submitted next are all assigned.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use prost::Message as _;
use redress_platform::clock;
use redress_platform::envelope::{Cause, new_event};
use redress_proto::subjects::Stream;
use redress_proto::v1::{
    ApprovalDecided, Attachment, Complainant, ComplaintStatus, Contact, ContactKind,
    DecideApproval, SubmitComplaint, WorkChange, WorkChanged, WorkCommand, WorkItem,
    envelope::Payload, work_command::Action,
};
use redress_testkit::{RunningService, TestEnv, eventually};

/// Mutated submissions, half on the stream path and half by request.
const SUBMISSIONS: usize = 500;
/// Mutated commands, spread over the command services.
const COMMANDS: usize = 300;
/// Ordinary complaints that must get through afterwards.
const NORMAL: usize = 50;
/// Mutated answers to evidence requests, on the evidence stream.
const EVIDENCE: usize = 100;

/// xorshift64*: the same cases on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One way of damaging an encoded message.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    match rng.below(7) {
        // Bit flips.
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        // Truncation.
        1 => {
            let at = rng.below(bytes.len());
            bytes.truncate(at);
        }
        // A huge length where a length or tag was.
        2 => {
            let i = rng.below(bytes.len());
            bytes.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        // Invalid UTF-8 inside a string.
        3 => {
            let i = bytes.len() / 2;
            bytes[i] = 0xc3;
            if i + 1 < bytes.len() {
                bytes[i + 1] = 0x28;
            }
        }
        // Random bytes appended.
        4 => {
            for _ in 0..rng.below(64) + 1 {
                bytes.push(rng.next() as u8);
            }
        }
        // A byte range duplicated.
        5 => {
            let a = rng.below(bytes.len());
            let b = (a + rng.below(32)).min(bytes.len());
            let copy = bytes[a..b].to_vec();
            bytes.splice(b..b, copy);
        }
        // Pure noise.
        _ => {
            bytes = (0..rng.below(256) + 1).map(|_| rng.next() as u8).collect();
        }
    }
    bytes
}

fn complaint(external_id: &str, text: &str) -> SubmitComplaint {
    SubmitComplaint {
        channel: "web".into(),
        external_id: external_id.into(),
        complainant: Some(Complainant {
            name: "刘洋".into(),
            contact: Some(Contact {
                kind: ContactKind::Phone as i32,
                value: "13800001234".into(),
            }),
        }),
        text: text.into(),
        attachments: vec![Attachment {
            uri: "s3://evidence/photo.jpg".into(),
            media_type: "image/jpeg".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The specific cases that once stalled intake or a relay.
fn known_bad() -> Vec<SubmitComplaint> {
    let mut cases = Vec::new();
    let mut c = complaint("kb-nul", "包裹\u{0}丢了");
    cases.push(c.clone());
    c = complaint("kb-4714bc", "快递丢了");
    c.received_at = Some(redress_proto::time::Timestamp {
        seconds: -210_898_425_600,
        nanos: 0,
    });
    cases.push(c.clone());
    c = complaint("kb-262143bc", "快递丢了");
    c.received_at = Some(redress_proto::time::Timestamp {
        seconds: -8_334_601_228_800,
        nanos: 0,
    });
    cases.push(c.clone());
    c = complaint("kb-year-1", "快递丢了");
    c.received_at = Some(redress_proto::time::from_unix_micros(
        -62_135_596_800_000_000,
    ));
    cases.push(c.clone());
    c = complaint("kb-media-type", "快递丢了");
    c.attachments[0].media_type = format!("image/{}", "x".repeat(900_000));
    cases.push(c.clone());
    c = complaint("kb-controls", "快递\u{1b}[31m丢了\u{7}");
    cases.push(c);
    cases
}

async fn start_all(env: &TestEnv) -> Vec<RunningService> {
    let clock = clock::system();
    vec![
        env.start_service("intake", clock.clone(), redress_intake::run)
            .await
            .unwrap(),
        env.start_service("classification", clock.clone(), redress_classification::run)
            .await
            .unwrap(),
        env.start_service("routing", clock.clone(), redress_routing::run)
            .await
            .unwrap(),
        env.start_service("sla-timer", clock.clone(), redress_sla_timer::run)
            .await
            .unwrap(),
        env.start_service("approval", clock.clone(), redress_approval::run)
            .await
            .unwrap(),
        env.start_service("survey", clock, redress_survey::run)
            .await
            .unwrap(),
    ]
}

/// Sends a raw request and says whether any answer came (an error reply counts: what must
/// not happen is silence or a crash).
async fn answered(nats: &async_nats::Client, subject: String, body: Vec<u8>) -> bool {
    answered_with(nats, subject, async_nats::HeaderMap::new(), body).await
}

async fn answered_with(
    nats: &async_nats::Client,
    subject: String,
    headers: async_nats::HeaderMap,
    body: Vec<u8>,
) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(10),
            nats.request_with_headers(subject, headers, body.into())
        )
        .await,
        Ok(Ok(_))
    )
}

/// Every durable consumer of `stream` has nothing pending and nothing awaiting an ack.
async fn settled(js: &async_nats::jetstream::Context, stream: &str) -> Result<(), String> {
    let s = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    let names: Vec<String> = s
        .consumer_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    for name in names {
        let info = s
            .consumer_info(&name)
            .await
            .map_err(|e| e.to_string())?
            .clone();
        if info.num_pending > 0 || info.num_ack_pending > 0 {
            return Err(format!(
                "{name}: {} pending, {} awaiting ack",
                info.num_pending, info.num_ack_pending
            ));
        }
    }
    Ok(())
}

fn forged_cause(ticket: &str) -> Cause {
    let id = uuid::Uuid::now_v7();
    Cause {
        complaint_id: id,
        ticket: ticket.into(),
        causation_id: "forged".into(),
        correlation_id: id.to_string(),
        playbook: "default".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_is_refused_or_dead_lettered_and_delays_nothing() {
    let env = TestEnv::start().await.unwrap();
    let services = start_all(&env).await;
    let client = env.client().await.unwrap();
    let nats = env.nats_client().await.unwrap();
    let js = async_nats::jetstream::new(nats.clone());
    let subjects = env.subjects();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);

    // A complaint in flight, so that commands and forged events have something to aim at.
    let target = client
        .submit(&complaint("target", "快递三天了还没送到"))
        .await
        .unwrap()
        .ticket;
    let pool = env.admin_pool().await.unwrap();
    eventually("the target assigned", Duration::from_secs(60), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM routing.work_items WHERE ticket = $1")
            .bind(&target)
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
            == 1
    })
    .await;

    // 1. Mutated submissions: the stream path (each with its own message id, so that the
    // broker keeps them all) and the request path (each must be answered).
    let mut acks = Vec::new();
    let mut unanswered: Vec<String> = Vec::new();
    for i in 0..SUBMISSIONS {
        let base = complaint(&format!("fz-{i}"), "收到的杯子是破损的，质量太差，要求退款");
        let bytes = mutate(&mut rng, base.encode_to_vec());
        if i % 2 == 0 {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("fuzz-{i}").as_str());
            acks.push(
                js.publish_with_headers(subjects.submit("web"), h, bytes.into())
                    .await
                    .unwrap(),
            );
        } else if !answered(&nats, subjects.command("intake", "submit"), bytes).await {
            unanswered.push(format!("submission {i}"));
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    // The known cases, on both paths; and a message id of kilobytes.
    for (i, case) in known_bad().into_iter().enumerate() {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("known-{i}").as_str());
        js.publish_with_headers(subjects.submit("web"), h, case.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
        let mut by_request = case.clone();
        by_request.external_id.push_str("-req");
        if !answered(
            &nats,
            subjects.command("intake", "submit"),
            by_request.encode_to_vec(),
        )
        .await
        {
            unanswered.push(format!("known case {i}"));
        }
    }
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", "k".repeat(3000).as_str());
    js.publish_with_headers(
        subjects.submit("web"),
        h,
        complaint("kb-long-id", "快递丢了").encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    // Mutated evidence: none has a token of an open request, so none is stored; each is
    // refused with a typed error or dead-lettered.
    let mut acks = Vec::new();
    for i in 0..EVIDENCE {
        let base = redress_proto::v1::SupplyEvidence {
            channel: "web".into(),
            external_id: format!("ev-fz-{i}"),
            ticket: target.clone(),
            token: "ab".repeat(32),
            text: "照片见附件".into(),
            attachments: vec![redress_proto::v1::Attachment {
                uri: "https://files.example.cn/p.jpg".into(),
                media_type: "image/jpeg".into(),
                size_bytes: 1024,
                ..Default::default()
            }],
        };
        let bytes = mutate(&mut rng, base.encode_to_vec());
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("ev-fuzz-{i}").as_str());
        acks.push(
            js.publish_with_headers(subjects.evidence("web"), h, bytes.into())
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }

    // 2. Mutated commands to every command service, and oversized fields.
    let accept = WorkCommand {
        command_id: "c".into(),
        ticket: target.clone(),
        department: "logistics".into(),
        // Blank: a signed mutation binds it to its signer and goes on to the validators.
        actor: String::new(),
        action: Some(Action::Accept(Default::default())),
    }
    .encode_to_vec();
    let decide = DecideApproval {
        command_id: "d".into(),
        ticket: target.clone(),
        approver: String::new(),
        approve: true,
        note: "ok".into(),
        ..Default::default()
    }
    .encode_to_vec();
    // Who signs each: every other mutation is signed by a member of another department (who
    // may act on none of this), so that it reaches the validators behind the signature.
    let targets = [
        (
            subjects.department_command("accept", "logistics"),
            accept.clone(),
            "wang.fang",
        ),
        (
            subjects.department_command("resolve", "logistics"),
            accept,
            "wang.fang",
        ),
        (subjects.command("approval", "decide"), decide, "wang.fang"),
        (
            subjects.command("survey", "answer"),
            vec![0x0a, 0x01, 0x41],
            "",
        ),
        (
            subjects.command("intake", "status"),
            vec![0x0a, 0x01, 0x41],
            "",
        ),
    ];
    for i in 0..COMMANDS {
        let (subject, base, person) = &targets[i % targets.len()];
        let bytes = mutate(&mut rng, base.clone());
        let headers = if i % 2 == 0 && !person.is_empty() {
            env.signed(person, subject, &bytes)
        } else {
            async_nats::HeaderMap::new()
        };
        if !answered_with(&nats, subject.clone(), headers, bytes).await {
            unanswered.push(format!("command {i} to {subject}"));
        }
    }
    // Under the broker's 1 MiB, far over any cap.
    let huge = "大".repeat(300_000);
    let mut big = DecideApproval::decode(targets[2].1.as_slice()).unwrap();
    big.command_id = "huge-note".into();
    big.note = huge;
    let (subject, body) = (subjects.command("approval", "decide"), big.encode_to_vec());
    if !answered_with(
        &nats,
        subject.clone(),
        env.signed("zhao.min", &subject, &body),
        body,
    )
    .await
    {
        unanswered.push("the huge approval note".into());
    }

    // 3. Garbage and forged events.
    for i in 0..100 {
        let subject = match i % 3 {
            0 => subjects.complaint_received(),
            1 => subjects.work_event(WorkChange::Resolved, "logistics"),
            _ => subjects.event("approval.decided"),
        };
        let noise: Vec<u8> = (0..rng.below(200) + 1).map(|_| rng.next() as u8).collect();
        js.publish(subject, noise.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let forged_decision = new_event(
        "mallory",
        &forged_cause(&target),
        chrono::Utc::now(),
        Payload::ApprovalDecided(ApprovalDecided {
            ticket: target.clone(),
            decided_by: "mallory".into(),
            approved: true,
            ..Default::default()
        }),
    );
    let forged_resolution = new_event(
        "mallory",
        &forged_cause(&target),
        chrono::Utc::now(),
        Payload::WorkChanged(WorkChanged {
            work: Some(WorkItem {
                ticket: target.clone(),
                department: "logistics".into(),
                ..Default::default()
            }),
            change: WorkChange::Resolved as i32,
            ..Default::default()
        }),
    );
    for (subject, envelope) in [
        (subjects.event("approval.decided"), &forged_decision),
        (
            subjects.work_event(WorkChange::Resolved, "logistics"),
            &forged_resolution,
        ),
    ] {
        js.publish(subject, envelope.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    // 4. Ordinary complaints, submitted the way an adapter does, must all be assigned.
    let started = Instant::now();
    let mut tickets = Vec::new();
    for i in 0..NORMAL {
        tickets.push(
            client
                .submit(&complaint(&format!("normal-{i}"), "快递三天了还没送到"))
                .await
                .unwrap()
                .ticket,
        );
    }
    eventually(
        "the ordinary complaints assigned",
        Duration::from_secs(60),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM routing.work_items WHERE ticket = ANY($1)",
            )
            .bind(&tickets)
            .fetch_one(&pool)
            .await
            .unwrap()
                == NORMAL as i64
        },
    )
    .await;
    let assigned_after = started.elapsed();

    // Nothing is retried for ever: every consumer settles every message.
    let deadline = Instant::now() + Duration::from_secs(90);
    for stream in [Stream::Submissions, Stream::Evidence, Stream::Events] {
        let name = subjects.stream_name(stream);
        loop {
            match settled(&js, &name).await {
                Ok(()) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "{name} never settles: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }
    assert!(
        unanswered.is_empty(),
        "requests that got no answer: {unanswered:?}"
    );

    // The forgeries changed nothing: the target is still assigned, not resolved or approved.
    let status: ComplaintStatus = client.status_by_ticket(&target).await.unwrap();
    let state: i16 = sqlx::query_scalar("SELECT state FROM routing.work_items WHERE ticket = $1")
        .bind(&target)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        state,
        redress_proto::v1::WorkState::Assigned as i16,
        "{status:?}"
    );
    let surveys: i64 = sqlx::query_scalar("SELECT count(*) FROM survey.surveys")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    assert_eq!(surveys, 0, "a forged resolution sent a survey");
    // None of the known cases stored a complaint whose text or date the database refuses.
    let stored_bad: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM intake.complaints
         WHERE external_id IN ('kb-nul', 'kb-4714bc', 'kb-262143bc', 'kb-year-1',
                               'kb-media-type', 'kb-controls')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored_bad, 0);
    let long_id: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM intake.complaints WHERE external_id = 'kb-long-id'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        long_id, 1,
        "a long message id is no reason to refuse a complaint"
    );

    let evidence: i64 = sqlx::query_scalar("SELECT count(*) FROM intake.evidence")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(evidence, 0, "evidence without a request's token was stored");

    // What happened to the mutated submissions, for the record.
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM intake.complaints WHERE external_id LIKE 'fz-%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let letters = env
        .stream_messages(Stream::DeadLetter, subjects.dead_letter("intake"))
        .await
        .unwrap()
        .len();
    let rejected = env
        .stream_messages(Stream::Notify, subjects.notify_rejected("web"))
        .await
        .unwrap()
        .len();
    println!(
        "hostile: {SUBMISSIONS} mutated submissions ({registered} registered as valid), \
         {rejected} refused on the stream path with a typed error, {letters} intake dead \
         letters, {EVIDENCE} mutated evidence answers none stored, {COMMANDS} mutated \
         commands all answered; {NORMAL} ordinary complaints \
         assigned {:.1} s after the first was submitted",
        assigned_after.as_secs_f64()
    );
    for service in services {
        // A service that crashed would have ended its run with an error.
        service.stop().await.unwrap();
    }
}
