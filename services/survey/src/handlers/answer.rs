//! `AnswerSurvey` on `<root>.cmd.survey.answer`: the complainant's answer to the latest
//! survey of a ticket. In one transaction with the command's claim: the survey is marked
//! answered and `survey.answered` plus `complaint.closed` or `complaint.reopened` go to the
//! outbox.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::commands::{Claimed, Refusal};
use redress_platform::envelope::{Cause, new_event};
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::survey_reply::Outcome;
use redress_proto::v1::{
    AnswerSurvey, ComplaintClosed, ComplaintReopened, SurveyAnswered, SurveyReply, SurveyView,
};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::answer::{SurveyState, ValidAnswer, reopen_reason, satisfied, token_matches};
use crate::{IDENT, Surveys};

pub async fn handle(surveys: Arc<Surveys>, cmd: AnswerSurvey) -> Result<SurveyReply, Refusal> {
    tracing::Span::current().record("ticket", cmd.ticket.trim());
    let answer = ValidAnswer::parse(cmd)?;
    apply(&surveys, &answer).await
}

/// The whole answer in one transaction; returns the reply to send (the stored one for a
/// resent command id). Refusals roll back, claim included, so a refused command id can be
/// used again once what refused it has changed.
async fn apply(surveys: &Surveys, answer: &ValidAnswer) -> Result<SurveyReply, Refusal> {
    let request = AnswerSurvey {
        command_id: answer.command_id.clone(),
        ticket: answer.ticket.clone(),
        scores: Some(answer.scores),
        comment: answer.comment.clone(),
        survey_id: answer.survey_id.clone(),
        token: answer.token.clone(),
    }
    .encode_to_vec();
    let mut unit = match surveys
        .store
        .claim::<SurveyReply>(&answer.command_id, &request)
        .await?
    {
        Claimed::Done(reply) => return Ok(reply),
        Claimed::New(unit) => unit,
    };
    // The row lock makes a concurrent answer to the same survey wait and then see it
    // answered, so exactly one answer wins.
    let Some(row) = sqlx::query(
        "SELECT survey_id, complaint_id, ticket, work_id, round, playbook, state, token_hash,
             reminder_token_hash
         FROM surveys WHERE ticket = $1
         ORDER BY round DESC, sent_at DESC, survey_id DESC
         LIMIT 1
         FOR UPDATE",
    )
    .bind(&answer.ticket)
    .fetch_optional(unit.db())
    .await?
    else {
        return Err(Refusal::not_found(
            "ticket",
            format!("no survey was sent for {}", answer.ticket),
        ));
    };
    let survey_id: Uuid = row.get("survey_id");
    let complaint_id: Uuid = row.get("complaint_id");
    let ticket: String = row.get("ticket");
    let work_id: Uuid = row.get("work_id");
    let work_id = work_id.to_string();
    let round = row.get::<i32, _>("round") as u32;
    let playbook_key: String = row.get("playbook");
    let state: String = row.get("state");
    if !answer.survey_id.is_empty() && answer.survey_id != survey_id.to_string() {
        return Err(Refusal::wrong_state(
            "survey_id",
            format!(
                "{} is not the current survey of {ticket} (round {round})",
                answer.survey_id
            ),
        ));
    }
    // Before the state: whoever lacks the token learns nothing about the survey.
    let token_hash: Option<Vec<u8>> = row.get("token_hash");
    let reminder_hash: Option<Vec<u8>> = row.get("reminder_token_hash");
    if !token_matches(&answer.token, token_hash.as_deref())
        && !token_matches(&answer.token, reminder_hash.as_deref())
    {
        return Err(Refusal::forbidden(
            "token",
            format!("not the token of the survey sent for {ticket}"),
        ));
    }
    SurveyState::parse(&state)
        .ok_or_else(|| Refusal::internal(format!("survey {survey_id} is in state {state:?}")))?
        .check_answerable(&ticket)?;
    let playbook = surveys
        .playbooks
        .get(&playbook_key)
        .map_err(|e| Refusal::internal(format!("survey {survey_id}: {e}")))?;

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
    .execute(unit.db())
    .await?;

    let cause = Cause {
        complaint_id,
        ticket: ticket.clone(),
        causation_id: answer.command_id.clone(),
        correlation_id: complaint_id.to_string(),
        playbook: playbook_key,
    };
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
    let outcome = if is_satisfied {
        Payload::ComplaintClosed(ComplaintClosed {
            ticket: ticket.clone(),
            work_id,
            round,
            survey_id: survey_id.to_string(),
            no_response: false,
        })
    } else {
        Payload::ComplaintReopened(ComplaintReopened {
            ticket: ticket.clone(),
            work_id,
            round,
            survey_id: survey_id.to_string(),
            reason: reopen_reason(scores.overall, min, &answer.comment),
        })
    };
    let outcome = new_event(IDENT.name, &cause, now, outcome);
    unit.emit(answered);
    unit.emit(outcome);
    unit.count(
        format!("survey_answers_total{{satisfied=\"{is_satisfied}\"}}"),
        1,
    );
    tracing::info!(
        round,
        overall = scores.overall,
        satisfied = is_satisfied,
        "survey answered"
    );
    unit.finish(SurveyReply {
        outcome: Some(Outcome::Survey(SurveyView {
            survey_id: survey_id.to_string(),
            ticket: ticket.clone(),
            round,
            state: SurveyState::Answered.as_str().into(),
            satisfied: is_satisfied,
            scores: Some(scores),
            comment: answer.comment.clone(),
        })),
    })
    .await
}
