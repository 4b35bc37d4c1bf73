//! The survey service against a real nats-server with JetStream and a real PostgreSQL, with
//! routing and the channel adapter played by the test.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message as _;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::{Clock as _, ManualClock};
use redress_playbook::Playbooks;
use redress_proto::subjects::Stream;
use redress_proto::time::from_unix_micros;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::survey_reply::Outcome;
use redress_proto::v1::{
    AnswerSurvey, CommandError, CommandErrorCode, Envelope, SurveyInvitation, SurveyReply,
    SurveyScores, SurveyView, WorkChanged, WorkItem, WorkState,
};
use redress_testkit::{RunningService, TestEnv, eventually, playbooks_dir};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 6, 30, 0).unwrap()
}

async fn start(env: &TestEnv, clock: Arc<ManualClock>) -> RunningService {
    env.start_service("survey", clock, redress_survey::run)
        .await
        .expect("survey starts")
}

/// One complaint's work item, as routing holds it.
#[derive(Clone)]
struct Work {
    complaint_id: Uuid,
    ticket: String,
    work_id: String,
    channel: String,
}

impl Work {
    fn new(ticket: &str, channel: &str) -> Self {
        Self {
            complaint_id: Uuid::now_v7(),
            ticket: ticket.into(),
            work_id: Uuid::now_v7().to_string(),
            channel: channel.into(),
        }
    }

    /// A work change as routing publishes it (a fresh event id each call).
    fn changed(&self, state: WorkState, round: u32, version: u64) -> Envelope {
        new_event(
            "routing",
            &Cause {
                complaint_id: self.complaint_id,
                ticket: self.ticket.clone(),
                causation_id: format!("cmd-{version}"),
                correlation_id: self.complaint_id.to_string(),
                playbook: "default".into(),
            },
            t0(),
            Payload::WorkChanged(WorkChanged {
                work: Some(WorkItem {
                    work_id: self.work_id.clone(),
                    ticket: self.ticket.clone(),
                    department: "logistics".into(),
                    state: state as i32,
                    round,
                    version,
                    category: "delivery".into(),
                    channel: self.channel.clone(),
                    external_id: format!("ext-{}", self.ticket),
                    text: "快递没收到".into(),
                    ..Default::default()
                }),
                actor: "zhou.qiang".into(),
                note: String::new(),
                change: Self::change(state) as i32,
                ..Default::default()
            }),
        )
    }

    fn change(state: WorkState) -> redress_proto::v1::WorkChange {
        match state {
            WorkState::Accepted => redress_proto::v1::WorkChange::Accepted,
            WorkState::Resolved => redress_proto::v1::WorkChange::Resolved,
            WorkState::Closed => redress_proto::v1::WorkChange::Closed,
            _ => redress_proto::v1::WorkChange::Assigned,
        }
    }

    fn change_subject(env: &TestEnv, state: WorkState) -> String {
        env.subjects().work_event(Self::change(state), "logistics")
    }

    async fn publish(&self, env: &TestEnv, state: WorkState, round: u32, version: u64) -> Envelope {
        let e = self.changed(state, round, version);
        env.publish_event(Self::change_subject(env, state), &e)
            .await
            .unwrap();
        e
    }
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn events_of(env: &TestEnv, name: &str) -> Vec<Envelope> {
    env.events(env.subjects().event(name)).await.unwrap()
}

async fn invitations(env: &TestEnv, channel: &str) -> Vec<async_nats::jetstream::Message> {
    env.stream_messages(Stream::Notify, env.subjects().notify_survey(channel))
        .await
        .unwrap()
}

/// Until the consumer has handled everything on the stream and the outbox is published, so
/// that "still one" is asserted after the copies were seen.
async fn settled(env: &TestEnv, pool: &sqlx::PgPool) {
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    let stream = js
        .get_stream(env.subjects().stream_name(Stream::Events))
        .await
        .unwrap();
    eventually(
        "the consumer to drain and the outbox to empty",
        WAIT,
        || {
            let stream = stream.clone();
            async move {
                let mut consumer = stream
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>(
                        &redress_platform::events::Filter::Kinds(vec![
                            redress_proto::EventKind::Work(redress_proto::v1::WorkChange::Resolved),
                        ])
                        .consumers("survey", &env.subjects())[0]
                            .0,
                    )
                    .await
                    .unwrap();
                let info = consumer.info().await.unwrap();
                info.num_pending == 0
                    && info.num_ack_pending == 0
                    && count(pool, "SELECT count(*) FROM survey.outbox").await == 0
            }
        },
    )
    .await;
}

async fn surveys_of(pool: &sqlx::PgPool, work: &Work) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM survey.surveys WHERE work_id = $1")
        .bind(work.work_id.parse::<Uuid>().unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn send_raw(env: &TestEnv, bytes: Vec<u8>) -> (Vec<u8>, SurveyReply) {
    let nats = env.nats_client().await.unwrap();
    let reply = nats
        .request(env.subjects().command("survey", "answer"), bytes.into())
        .await
        .unwrap();
    let body = reply.payload.to_vec();
    let decoded = SurveyReply::decode(reply.payload).unwrap();
    (body, decoded)
}

fn answer(command_id: &str, ticket: &str, overall: u32, comment: &str) -> AnswerSurvey {
    AnswerSurvey {
        command_id: command_id.into(),
        ticket: ticket.into(),
        scores: Some(SurveyScores {
            overall,
            speed: 4,
            ..Default::default()
        }),
        comment: comment.into(),
        survey_id: String::new(),
        token: String::new(),
    }
}

/// The token of the latest invitation sent for `ticket` on any channel, as the complainant
/// received it; a made-up one when none was sent.
async fn token_of(env: &TestEnv, ticket: &str) -> String {
    env.stream_messages(Stream::Notify, env.subjects().notify_survey("*"))
        .await
        .unwrap()
        .iter()
        .map(|m| SurveyInvitation::decode(m.payload.clone()).unwrap())
        .rfind(|i| i.ticket == ticket)
        .map(|i| i.token)
        .unwrap_or_else(|| "no-invitation".into())
}

/// Sends `cmd`, with the complainant's token when it has none.
async fn send(env: &TestEnv, cmd: &AnswerSurvey) -> Outcome {
    let mut cmd = cmd.clone();
    if cmd.token.is_empty() {
        cmd.token = token_of(env, cmd.ticket.trim()).await;
    }
    send_raw(env, cmd.encode_to_vec())
        .await
        .1
        .outcome
        .expect("every reply has an outcome")
}

fn accepted(outcome: Outcome) -> SurveyView {
    match outcome {
        Outcome::Survey(v) => v,
        Outcome::Error(e) => panic!("refused: {e:?}"),
    }
}

fn refused(outcome: Outcome) -> CommandError {
    match outcome {
        Outcome::Error(e) => e,
        Outcome::Survey(v) => panic!("accepted: {v:?}"),
    }
}

fn code_and_field(e: &CommandError) -> (CommandErrorCode, &str) {
    (e.code(), e.field.as_str())
}

/// Resolves `work` and waits until its survey is stored.
async fn resolve(env: &TestEnv, pool: &sqlx::PgPool, work: &Work, round: u32) {
    let before = surveys_of(pool, work).await;
    work.publish(env, WorkState::Resolved, round, 10 * u64::from(round))
        .await;
    eventually("the survey", WAIT, || async {
        surveys_of(pool, work).await == before + 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolved_work_item_gets_one_survey_and_one_invitation_however_often_it_comes() {
    let env = TestEnv::start().await.unwrap();
    let clock = ManualClock::new(t0());
    let service = start(&env, clock.clone()).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new("RD-20261125-000001", "sms");

    // Earlier states ask for nothing.
    work.publish(&env, WorkState::Accepted, 1, 2).await;
    clock.advance(chrono::Duration::minutes(5));
    let resolved = work.publish(&env, WorkState::Resolved, 1, 6).await;
    // The same event without a Nats-Msg-Id, so the broker keeps it and the inbox must not.
    let js = async_nats::jetstream::new(env.nats_client().await.unwrap());
    js.publish(
        Work::change_subject(&env, WorkState::Resolved),
        resolved.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // The same change under another event id, and the closing that follows: no new survey.
    let resolved_again = work.publish(&env, WorkState::Resolved, 1, 6).await;
    work.publish(&env, WorkState::Closed, 1, 7).await;

    eventually("the survey", WAIT, || async {
        surveys_of(&pool, &work).await == 1
    })
    .await;
    settled(&env, &pool).await;
    assert_eq!(surveys_of(&pool, &work).await, 1);

    let sent = events_of(&env, redress_proto::EventKind::SurveySent.name()).await;
    assert_eq!(sent.len(), 1, "one survey.sent");
    let Some(Payload::SurveySent(s)) = sent[0].payload.clone() else {
        panic!("not a SurveySent: {:?}", sent[0].payload)
    };
    assert_eq!(s.ticket, work.ticket);
    assert_eq!(s.work_id, work.work_id);
    assert_eq!(s.round, 1);
    assert_eq!(s.channel, "sms");
    assert_eq!(sent[0].producer, "survey");
    // The two resolutions are handled concurrently; whichever came first caused the survey.
    assert!(
        [&resolved.event_id, &resolved_again.event_id].contains(&&sent[0].causation_id),
        "caused by {}",
        sent[0].causation_id
    );
    assert_eq!(sent[0].complaint_id, work.complaint_id.to_string());
    assert_eq!(
        sent[0].occurred_at,
        Some(from_unix_micros(clock.now().timestamp_micros()))
    );

    let invites = invitations(&env, "sms").await;
    assert_eq!(invites.len(), 1, "one invitation");
    let msg_id = invites[0]
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|v| v.as_str().to_string());
    assert_eq!(msg_id, Some(format!("survey:{}", s.survey_id)));
    let invitation = SurveyInvitation::decode(invites[0].payload.clone()).unwrap();
    let questions = Playbooks::load_dir(playbooks_dir().as_ref())
        .unwrap()
        .get("default")
        .unwrap()
        .survey
        .questions
        .clone();
    assert_eq!(invitation.token.len(), 64, "a 256-bit token in hex");
    assert_eq!(
        invitation,
        SurveyInvitation {
            survey_id: s.survey_id.clone(),
            ticket: work.ticket.clone(),
            complaint_id: work.complaint_id.to_string(),
            channel: "sms".into(),
            external_id: format!("ext-{}", work.ticket),
            questions,
            token: invitation.token.clone(),
            reminder: false,
        }
    );
    // Only its hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM survey.surveys")
        .fetch_one(&pool)
        .await
        .unwrap();
    use sha2::Digest as _;
    assert_eq!(
        stored,
        sha2::Sha256::digest(invitation.token.as_bytes()).to_vec()
    );

    let row: (Uuid, String, i32, String, DateTime<Utc>, String) = sqlx::query_as(
        "SELECT survey_id, ticket, round, state, sent_at, playbook FROM survey.surveys",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.0.to_string(), s.survey_id);
    assert_eq!(row.1, work.ticket);
    assert_eq!(row.2, 1);
    assert_eq!(row.3, "sent");
    assert_eq!(row.4, clock.now());
    assert_eq!(row.5, "default");
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_satisfied_answer_closes_and_a_dissatisfied_one_reopens() {
    let env = TestEnv::start().await.unwrap();
    let clock = ManualClock::new(t0());
    let service = start(&env, clock.clone()).await;
    let pool = env.admin_pool().await.unwrap();
    let pleased = Work::new("RD-20261125-000002", "sms");
    let unhappy = Work::new("RD-20261125-000003", "wechat");
    resolve(&env, &pool, &pleased, 1).await;
    resolve(&env, &pool, &unhappy, 1).await;
    clock.advance(chrono::Duration::hours(2));

    // Knowing the ticket is not enough: without the invitation's token, or with another
    // survey's, nothing is answered.
    let mut forged = answer("forged-1", &pleased.ticket, 1, "");
    forged.token = "0".repeat(64);
    let e = refused(send(&env, &forged).await);
    assert_eq!(code_and_field(&e), (CommandErrorCode::Forbidden, "token"));
    forged.command_id = "forged-2".into();
    forged.token = token_of(&env, &unhappy.ticket).await;
    let e = refused(send(&env, &forged).await);
    assert_eq!(code_and_field(&e), (CommandErrorCode::Forbidden, "token"));
    let (_, reply) = send_raw(
        &env,
        answer("forged-3", &pleased.ticket, 1, "").encode_to_vec(),
    )
    .await;
    assert_eq!(
        code_and_field(&refused(reply.outcome.unwrap())),
        (CommandErrorCode::Missing, "token")
    );

    let mut first = answer("answer-1", &pleased.ticket, 5, "很满意");
    first.token = token_of(&env, &pleased.ticket).await;
    let (first_bytes, first_reply) = send_raw(&env, first.encode_to_vec()).await;
    let view = accepted(first_reply.outcome.unwrap());
    assert_eq!(view.ticket, pleased.ticket);
    assert_eq!(view.state, "answered");
    assert!(view.satisfied);
    assert_eq!(view.round, 1);
    assert_eq!(view.comment, "很满意");
    assert_eq!(view.scores.unwrap().overall, 5);

    let view = accepted(
        send(
            &env,
            &answer("answer-2", &unhappy.ticket, 2, "退款还没到账"),
        )
        .await,
    );
    assert!(!view.satisfied);

    eventually("closed and reopened", WAIT, || async {
        events_of(&env, redress_proto::EventKind::ComplaintClosed.name())
            .await
            .len()
            == 1
            && events_of(&env, redress_proto::EventKind::ComplaintReopened.name())
                .await
                .len()
                == 1
    })
    .await;
    let closed = events_of(&env, redress_proto::EventKind::ComplaintClosed.name()).await;
    let Some(Payload::ComplaintClosed(c)) = closed[0].payload.clone() else {
        panic!("not a ComplaintClosed")
    };
    assert_eq!(c.ticket, pleased.ticket);
    assert_eq!(c.work_id, pleased.work_id);
    assert_eq!(c.round, 1);
    assert_eq!(c.survey_id, view_survey_id(&pool, &pleased, 1).await);
    assert_eq!(closed[0].producer, "survey");
    assert_eq!(closed[0].causation_id, "answer-1");
    assert_eq!(closed[0].correlation_id, pleased.complaint_id.to_string());
    assert_eq!(closed[0].complaint_id, pleased.complaint_id.to_string());
    assert_eq!(closed[0].playbook, "default");
    assert_eq!(
        closed[0].occurred_at,
        Some(from_unix_micros(clock.now().timestamp_micros()))
    );

    let reopened = events_of(&env, redress_proto::EventKind::ComplaintReopened.name()).await;
    let Some(Payload::ComplaintReopened(r)) = reopened[0].payload.clone() else {
        panic!("not a ComplaintReopened")
    };
    assert_eq!(r.ticket, unhappy.ticket);
    assert_eq!(r.round, 1);
    assert!(r.reason.contains("退款还没到账"), "{}", r.reason);
    assert!(r.reason.contains("2/5"), "{}", r.reason);
    assert_eq!(reopened[0].causation_id, "answer-2");

    let answered = events_of(&env, redress_proto::EventKind::SurveyAnswered.name()).await;
    assert_eq!(answered.len(), 2);
    let Some(Payload::SurveyAnswered(a)) = answered
        .iter()
        .find(|e| e.causation_id == "answer-1")
        .and_then(|e| e.payload.clone())
    else {
        panic!("no survey.answered for answer-1")
    };
    assert!(a.satisfied);
    assert_eq!(a.comment, "很满意");
    assert_eq!(a.scores.unwrap().speed, 4);

    // A second answer to an answered survey is refused; resending the first is not.
    let again = refused(send(&env, &answer("answer-3", &pleased.ticket, 1, "")).await);
    assert_eq!(
        code_and_field(&again),
        (CommandErrorCode::WrongState, "ticket")
    );
    let (resent_bytes, _) = send_raw(&env, first.encode_to_vec()).await;
    assert_eq!(
        resent_bytes, first_bytes,
        "a resent command gets the same reply"
    );
    settled(&env, &pool).await;
    assert_eq!(
        events_of(&env, redress_proto::EventKind::SurveyAnswered.name())
            .await
            .len(),
        2
    );
    assert_eq!(
        events_of(&env, redress_proto::EventKind::ComplaintClosed.name())
            .await
            .len(),
        1
    );

    let row: (String, i16, i16, bool, DateTime<Utc>, String) = sqlx::query_as(
        "SELECT state, overall, speed, satisfied, answered_at, answer_command_id
         FROM survey.surveys WHERE work_id = $1",
    )
    .bind(pleased.work_id.parse::<Uuid>().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "answered".into(),
            5,
            4,
            true,
            clock.now(),
            "answer-1".into()
        )
    );

    // Routing reopens: round 2 is resolved and surveyed; the ticket's answer now goes to it.
    resolve(&env, &pool, &unhappy, 2).await;
    // An answer naming round 1's survey does not land on round 2's.
    let mut stale = answer("answer-stale", &unhappy.ticket, 5, "");
    stale.survey_id = view_survey_id(&pool, &unhappy, 1).await;
    let err = refused(send(&env, &stale).await);
    assert_eq!(
        (err.code(), err.field.as_str()),
        (CommandErrorCode::WrongState, "survey_id")
    );
    let view = accepted(send(&env, &answer("answer-4", &unhappy.ticket, 4, "")).await);
    assert_eq!(view.round, 2);
    assert!(view.satisfied);
    eventually("the round-2 closing", WAIT, || async {
        events_of(&env, redress_proto::EventKind::ComplaintClosed.name())
            .await
            .len()
            == 2
    })
    .await;
    let closed = events_of(&env, redress_proto::EventKind::ComplaintClosed.name()).await;
    let Some(Payload::ComplaintClosed(c)) = closed[1].payload.clone() else {
        panic!("not a ComplaintClosed")
    };
    assert_eq!((c.ticket.as_str(), c.round), (unhappy.ticket.as_str(), 2));
    assert_eq!(
        sent_for(&env, &unhappy).await,
        2,
        "one invitation per round"
    );
    service.stop().await.unwrap();
}

async fn view_survey_id(pool: &sqlx::PgPool, work: &Work, round: i32) -> String {
    let id: Uuid = sqlx::query_scalar(
        "SELECT survey_id FROM survey.surveys WHERE work_id = $1 AND round = $2",
    )
    .bind(work.work_id.parse::<Uuid>().unwrap())
    .bind(round)
    .fetch_one(pool)
    .await
    .unwrap();
    id.to_string()
}

async fn sent_for(env: &TestEnv, work: &Work) -> usize {
    invitations(env, &work.channel)
        .await
        .into_iter()
        .filter(|m| SurveyInvitation::decode(m.payload.clone()).unwrap().ticket == work.ticket)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_answers_get_typed_errors_naming_the_field_and_change_nothing() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new("RD-20261125-000004", "email");
    resolve(&env, &pool, &work, 1).await;

    let e = refused(send(&env, &answer("bad-1", &work.ticket, 9, "")).await);
    assert_eq!(
        code_and_field(&e),
        (CommandErrorCode::Malformed, "scores.overall")
    );
    let mut cmd = answer("bad-2", &work.ticket, 3, "");
    cmd.scores = None;
    let e = refused(send(&env, &cmd).await);
    assert_eq!(
        code_and_field(&e),
        (CommandErrorCode::Malformed, "scores.overall")
    );
    let mut cmd = answer("bad-3", &work.ticket, 3, "");
    cmd.scores.as_mut().unwrap().transparency = 6;
    let e = refused(send(&env, &cmd).await);
    assert_eq!(
        code_and_field(&e),
        (CommandErrorCode::Malformed, "scores.transparency")
    );
    let e = refused(send(&env, &answer("", &work.ticket, 3, "")).await);
    assert_eq!(
        code_and_field(&e),
        (CommandErrorCode::Missing, "command_id")
    );
    let e = refused(send(&env, &answer("bad-4", " ", 3, "")).await);
    assert_eq!(code_and_field(&e), (CommandErrorCode::Missing, "ticket"));
    let e = refused(send(&env, &answer("bad-5", &work.ticket, 3, &"差".repeat(2000))).await);
    assert_eq!(code_and_field(&e), (CommandErrorCode::Malformed, "comment"));
    let e = refused(send(&env, &answer("bad-6", "RD-20991231-999999", 3, "")).await);
    assert_eq!(code_and_field(&e), (CommandErrorCode::NotFound, "ticket"));
    let (_, reply) = send_raw(&env, vec![0xff, 0xff, 0xff, 0x01]).await;
    let e = refused(reply.outcome.unwrap());
    assert_eq!(e.code(), CommandErrorCode::Undecodable);

    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM survey.surveys WHERE state = 'sent'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM survey.command_replies").await,
        0
    );
    assert!(
        events_of(&env, redress_proto::EventKind::SurveyAnswered.name())
            .await
            .is_empty()
    );
    assert!(
        service
            .metrics
            .render()
            .contains("code=\"COMMAND_ERROR_CODE_MALFORMED\",field=\"scores.overall\"} 2"),
        "{}",
        service.metrics.render()
    );

    // A refused command id is not used up: corrected, it goes through.
    let view = accepted(send(&env, &answer("bad-1", &work.ticket, 3, "")).await);
    assert!(!view.satisfied);
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn of_answers_sent_at_once_exactly_one_counts() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new("RD-20261125-000005", "web");
    resolve(&env, &pool, &work, 1).await;

    // The test holds the survey row while the answers arrive, so that all of them are inside
    // their transactions at once, whatever the machine's speed.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM survey.surveys WHERE work_id = $1 FOR UPDATE")
        .bind(work.work_id.parse::<Uuid>().unwrap())
        .execute(&mut *blocker)
        .await
        .unwrap();
    const N: u32 = 5;
    let answers = futures::future::join_all((0..N).map(|i| {
        let env = &env;
        let ticket = work.ticket.clone();
        async move { send(env, &answer(&format!("race-{i}"), &ticket, 1 + i % 5, "")).await }
    }));
    let release = async {
        eventually("every answer waiting on the survey row", WAIT, || async {
            count(
                &pool,
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE '%surveys%'",
            )
            .await
                == i64::from(N)
        })
        .await;
        blocker.commit().await.unwrap();
    };
    let (outcomes, ()) = tokio::join!(answers, release);
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Survey(_)))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
    for o in &outcomes {
        if let Outcome::Error(e) = o {
            assert_eq!(code_and_field(e), (CommandErrorCode::WrongState, "ticket"));
        }
    }
    settled(&env, &pool).await;
    assert_eq!(
        events_of(&env, redress_proto::EventKind::SurveyAnswered.name())
            .await
            .len(),
        1
    );
    let decided = events_of(&env, redress_proto::EventKind::ComplaintClosed.name())
        .await
        .len()
        + events_of(&env, redress_proto::EventKind::ComplaintReopened.name())
            .await
            .len();
    assert_eq!(decided, 1);
    service.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn work_of_an_unknown_playbook_is_dead_lettered_with_the_reason() {
    let env = TestEnv::start().await.unwrap();
    let service = start(&env, ManualClock::new(t0())).await;
    let pool = env.admin_pool().await.unwrap();
    let work = Work::new("RD-20261125-000006", "sms");
    let mut stray = work.changed(WorkState::Resolved, 1, 6);
    stray.playbook = "no-such-playbook".into();
    env.publish_event(Work::change_subject(&env, WorkState::Resolved), &stray)
        .await
        .unwrap();
    let letters = || async {
        env.stream_messages(Stream::DeadLetter, env.subjects().dead_letter("survey"))
            .await
            .unwrap()
    };
    eventually("the dead letter", WAIT, || async {
        !letters().await.is_empty()
    })
    .await;
    let letter = redress_proto::v1::DeadLetter::decode(letters().await[0].payload.clone()).unwrap();
    assert!(
        letter.reason.contains("no-such-playbook"),
        "{}",
        letter.reason
    );
    // The next good change is still handled.
    resolve(&env, &pool, &work, 1).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM survey.surveys").await, 1);
    service.stop().await.unwrap();
}
