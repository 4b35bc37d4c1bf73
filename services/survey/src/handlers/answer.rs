//! `AnswerSurvey` on `<root>.cmd.survey.answer`: the complainant's answer to the latest
//! survey of a ticket. In one transaction with the command's claim: the survey is marked
//! answered and `survey.answered` plus `complaint.closed` or `complaint.reopened` go to the
//! outbox.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_platform::commands::{self, Claim};
use redress_platform::envelope::{Cause, new_event};
use redress_platform::{events, outbox};
use redress_proto::subjects;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::survey_reply::Outcome;
use redress_proto::v1::{
    AnswerSurvey, CommandError, CommandErrorCode, ComplaintClosed, ComplaintReopened,
    SurveyAnswered, SurveyReply, SurveyView,
};
use sqlx::Row;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::answer::{FieldError, SurveyState, ValidAnswer, reopen_reason, satisfied};
use crate::{IDENT, Surveys};

enum Refusal {
    /// The answer cannot be taken as it is; nothing changed.
    Invalid(FieldError),
    /// Storage or configuration failed; the same command may be sent again.
    Internal(String),
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Refusal::Internal(format!("database: {e}"))
    }
}

impl From<FieldError> for Refusal {
    fn from(e: FieldError) -> Self {
        Refusal::Invalid(e)
    }
}

fn encode(outcome: Outcome) -> Bytes {
    SurveyReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

fn error(code: CommandErrorCode, field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error(CommandError {
        code: code as i32,
        field: field.into(),
        message: message.into(),
    })
}

pub async fn handle(surveys: Arc<Surveys>, message: async_nats::Message) -> Bytes {
    let span = tracing::info_span!("survey.answer", ticket = tracing::field::Empty);
    redress_platform::telemetry::set_parent_from_headers(&span, message.headers.as_ref());
    async {
        let cmd = match AnswerSurvey::decode(message.payload.clone()) {
            Ok(c) => c,
            Err(e) => {
                count_refusal(&surveys, "COMMAND_ERROR_CODE_UNDECODABLE", "");
                return encode(error(
                    CommandErrorCode::Undecodable,
                    "",
                    format!("not an AnswerSurvey: {e}"),
                ));
            }
        };
        let answer = match ValidAnswer::parse(cmd) {
            Ok(a) => a,
            Err(e) => {
                count_refusal(&surveys, e.code_name(), &e.field);
                return encode(Outcome::Error(e.into()));
            }
        };
        tracing::Span::current().record("ticket", answer.ticket.as_str());
        match apply(&surveys, &answer).await {
            Ok(reply) => reply,
            Err(Refusal::Invalid(e)) => {
                count_refusal(&surveys, e.code_name(), &e.field);
                encode(Outcome::Error(e.into()))
            }
            Err(Refusal::Internal(e)) => {
                tracing::error!(error = %e, "answering the survey failed");
                encode(error(
                    CommandErrorCode::Internal,
                    "",
                    "the answer could not be stored right now; send it again",
                ))
            }
        }
    }
    .instrument(span)
    .await
}

fn count_refusal(surveys: &Surveys, code: &str, field: &str) {
    tracing::info!(code, field, "survey answer refused");
    surveys.ctx.metrics.incr(&format!(
        "survey_answers_refused_total{{code=\"{code}\",field=\"{field}\"}}"
    ));
}

/// The whole answer in one transaction; returns the reply to send (the stored one for a
/// resent command id). Refusals roll back, claim included, so a refused command id can be
/// used again once what refused it has changed.
async fn apply(surveys: &Surveys, answer: &ValidAnswer) -> Result<Bytes, Refusal> {
    let mut tx = surveys.pool.begin().await?;
    let request = AnswerSurvey {
        command_id: answer.command_id.clone(),
        ticket: answer.ticket.clone(),
        scores: Some(answer.scores),
        comment: answer.comment.clone(),
        survey_id: answer.survey_id.clone(),
    }
    .encode_to_vec();
    match commands::claim(&mut tx, &answer.command_id, &request).await? {
        Claim::Done(reply) => return Ok(reply.into()),
        Claim::Conflict => {
            return Err(Refusal::Invalid(FieldError::new(
                CommandErrorCode::Malformed,
                "command_id",
                "this command_id was already used for a different command",
            )));
        }
        Claim::New => {}
    }
    // The row lock makes a concurrent answer to the same survey wait and then see it
    // answered, so exactly one answer wins.
    let Some(row) = sqlx::query(
        "SELECT survey_id, complaint_id, ticket, work_id, round, playbook, state
         FROM surveys WHERE ticket = $1
         ORDER BY round DESC, sent_at DESC, survey_id DESC
         LIMIT 1
         FOR UPDATE",
    )
    .bind(&answer.ticket)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(FieldError::new(
            CommandErrorCode::NotFound,
            "ticket",
            format!("no survey was sent for {}", answer.ticket),
        )
        .into());
    };
    let survey_id: Uuid = row.get("survey_id");
    let complaint_id: Uuid = row.get("complaint_id");
    let ticket: String = row.get("ticket");
    let work_id: String = row.get("work_id");
    let round = row.get::<i32, _>("round") as u32;
    let playbook_key: String = row.get("playbook");
    let state: String = row.get("state");
    if !answer.survey_id.is_empty() && answer.survey_id != survey_id.to_string() {
        return Err(FieldError::new(
            CommandErrorCode::WrongState,
            "survey_id",
            format!(
                "{} is not the current survey of {ticket} (round {round})",
                answer.survey_id
            ),
        )
        .into());
    }
    SurveyState::parse(&state)
        .ok_or_else(|| Refusal::Internal(format!("survey {survey_id} is in state {state:?}")))?
        .check_answerable(&ticket)?;
    let playbook = surveys
        .playbooks
        .get(&playbook_key)
        .map_err(|e| Refusal::Internal(format!("survey {survey_id}: {e}")))?;

    let min = playbook.survey.satisfied_min;
    let scores = answer.scores;
    let is_satisfied = satisfied(scores.overall, min);
    let now = surveys.ctx.clock.now();
    sqlx::query(
        "UPDATE surveys SET state = $2, answered_at = $3, answer_command_id = $4, overall = $5,
             speed = $6, effectiveness = $7, attitude = $8, transparency = $9, comment = $10,
             satisfied = $11
         WHERE survey_id = $1",
    )
    .bind(survey_id)
    .bind(SurveyState::Answered.as_str())
    .bind(now)
    .bind(&answer.command_id)
    .bind(scores.overall as i16)
    .bind(scores.speed as i16)
    .bind(scores.effectiveness as i16)
    .bind(scores.attitude as i16)
    .bind(scores.transparency as i16)
    .bind(&answer.comment)
    .bind(is_satisfied)
    .execute(&mut *tx)
    .await?;

    let cause = Cause {
        complaint_id,
        causation_id: answer.command_id.clone(),
        correlation_id: complaint_id.to_string(),
        playbook: playbook_key,
    };
    let subjects = &surveys.ctx.subjects;
    let answered = new_event(
        IDENT.name,
        &cause,
        now,
        Payload::SurveyAnswered(SurveyAnswered {
            survey_id: survey_id.to_string(),
            ticket: ticket.clone(),
            work_id: work_id.clone(),
            round,
            scores: Some(scores),
            comment: answer.comment.clone(),
            satisfied: is_satisfied,
        }),
    );
    let (name, outcome) = if is_satisfied {
        (
            subjects::events::COMPLAINT_CLOSED,
            Payload::ComplaintClosed(ComplaintClosed {
                ticket: ticket.clone(),
                work_id,
                round,
                survey_id: survey_id.to_string(),
            }),
        )
    } else {
        (
            subjects::events::COMPLAINT_REOPENED,
            Payload::ComplaintReopened(ComplaintReopened {
                ticket: ticket.clone(),
                work_id,
                round,
                survey_id: survey_id.to_string(),
                reason: reopen_reason(scores.overall, min, &answer.comment),
            }),
        )
    };
    let outcome = new_event(IDENT.name, &cause, now, outcome);
    let reply = encode(Outcome::Survey(SurveyView {
        survey_id: survey_id.to_string(),
        ticket: ticket.clone(),
        round,
        state: SurveyState::Answered.as_str().into(),
        satisfied: is_satisfied,
        scores: Some(scores),
        comment: answer.comment.clone(),
    }));
    commands::finish(&mut tx, &answer.command_id, &reply).await?;
    outbox::enqueue(
        &mut tx,
        IDENT.schema,
        &surveys.storage.outbox,
        &[
            events::outgoing(subjects.event(subjects::events::SURVEY_ANSWERED), &answered),
            events::outgoing(subjects.event(name), &outcome),
        ],
    )
    .await?;
    tx.commit().await?;
    surveys.storage.outbox.wake();
    surveys.ctx.metrics.incr(&format!(
        "survey_answers_total{{satisfied=\"{is_satisfied}\"}}"
    ));
    tracing::info!(%ticket, round, overall = scores.overall, satisfied = is_satisfied, "survey answered");
    Ok(reply)
}
