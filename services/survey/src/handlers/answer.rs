//! `AnswerSurvey` on `<root>.cmd.survey.answer`: the complainant's answer to the latest
//! survey of a ticket. In one transaction with the command's claim: the survey is marked
//! answered and `survey.answered` plus `complaint.closed` or `complaint.reopened` go to the
//! outbox.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::Unit;
use redress_platform::commands::{Claimed, CommandUnit, Refusal};
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
    let survey = Current::load(&mut unit, &answer.ticket).await?;
    if !answer.survey_id.is_empty() && answer.survey_id != survey.survey_id.to_string() {
        return Err(Refusal::wrong_state(
            "survey_id",
            format!(
                "{} is not the current survey of {} (round {})",
                answer.survey_id, survey.ticket, survey.round
            ),
        ));
    }
    // Before the state: whoever lacks the token learns nothing about the survey.
    if !token_matches(&answer.token, survey.token_hash.as_deref())
        && !token_matches(&answer.token, survey.reminder_hash.as_deref())
    {
        return Err(Refusal::forbidden(
            "token",
            format!("not the token of the survey sent for {}", survey.ticket),
        ));
    }
    SurveyState::parse(&survey.state)
        .ok_or_else(|| {
            Refusal::internal(format!(
                "survey {} is in state {:?}",
                survey.survey_id, survey.state
            ))
        })?
        .check_answerable(&survey.ticket)?;
    record(surveys, unit, survey, answer, "token", "").await
}

/// The latest survey of a ticket, locked: a concurrent answer to the same survey waits and
/// then sees it answered, so exactly one answer wins.
pub(crate) struct Current {
    pub survey_id: Uuid,
    pub complaint_id: Uuid,
    pub ticket: String,
    pub work_id: String,
    pub round: u32,
    pub playbook: String,
    pub state: String,
    pub department: String,
    pub sample: bool,
    channel: String,
    external_id: String,
    token_hash: Option<Vec<u8>>,
    reminder_hash: Option<Vec<u8>>,
}

impl Current {
    pub(crate) async fn load(unit: &mut Unit, ticket: &str) -> Result<Self, Refusal> {
        let Some(row) = sqlx::query(
            "SELECT survey_id, complaint_id, ticket, work_id, round, playbook, state, department,
                 sample, channel, external_id, token_hash, reminder_token_hash
             FROM surveys WHERE ticket = $1
             ORDER BY round DESC, sent_at DESC, survey_id DESC
             LIMIT 1
             FOR UPDATE",
        )
        .bind(ticket)
        .fetch_optional(unit.db())
        .await?
        else {
            return Err(Refusal::not_found(
                "ticket",
                format!("no survey was sent for {ticket}"),
            ));
        };
        Ok(Self {
            survey_id: row.get("survey_id"),
            complaint_id: row.get("complaint_id"),
            ticket: row.get("ticket"),
            work_id: row.get::<Uuid, _>("work_id").to_string(),
            round: row.get::<i32, _>("round") as u32,
            playbook: row.get("playbook"),
            state: row.get("state"),
            department: row.get("department"),
            sample: row.get("sample"),
            channel: row.get("channel"),
            external_id: row.get("external_id"),
            token_hash: row.get("token_hash"),
            reminder_hash: row.get("reminder_token_hash"),
        })
    }
}

/// Records an answer to `survey` (by the complainant's token, or a follow-up the department
/// recorded), publishes `survey.answered` and what it leads to, and finishes the command.
pub(crate) async fn record(
    surveys: &Surveys,
    mut unit: CommandUnit,
    survey: Current,
    answer: &ValidAnswer,
    via: &str,
    recorded_by: &str,
) -> Result<SurveyReply, Refusal> {
    let Current {
        survey_id,
        complaint_id,
        ticket,
        work_id,
        round,
        playbook: playbook_key,
        department,
        sample,
        channel,
        external_id,
        ..
    } = survey;
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
             satisfied = $11, answered_via = $12, recorded_by = NULLIF($13, '')
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
    .bind(via)
    .bind(recorded_by)
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
            via: via.to_string(),
            recorded_by: recorded_by.to_string(),
            sample,
        }),
    );
    unit.emit(answered);
    if sample {
        // The complaint was closed long ago: the answer is counted, nothing reopens.
        unit.count(
            format!("survey_sample_answers_total{{satisfied=\"{is_satisfied}\"}}"),
            1,
        );
        return finish(unit, survey_id, ticket, round, is_satisfied, answer).await;
    }
    let work_uuid: Uuid = work_id.parse().unwrap_or_default();
    let outcome = if is_satisfied {
        Payload::ComplaintClosed(ComplaintClosed {
            ticket: ticket.clone(),
            work_id: work_id.clone(),
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
    unit.emit(outcome);
    if is_satisfied && let Ok(calendar) = surveys.calendars.get(&playbook.sla.calendar) {
        let closed = crate::followup::Stored {
            survey_id,
            complaint_id,
            ticket: ticket.clone(),
            work_id: work_uuid,
            round,
            channel,
            external_id,
            playbook: playbook.key.clone(),
            caused_by: answer.command_id.clone(),
            sample: false,
            department: department.clone(),
        };
        crate::followup::schedule_sample(
            &mut unit,
            &playbook.survey,
            calendar,
            &closed,
            &department,
            now,
        )
        .await?;
    }
    unit.count(
        format!("survey_answers_total{{satisfied=\"{is_satisfied}\",via=\"{via}\"}}"),
        1,
    );
    tracing::info!(
        round,
        overall = scores.overall,
        satisfied = is_satisfied,
        via,
        "survey answered"
    );
    finish(unit, survey_id, ticket, round, is_satisfied, answer).await
}

async fn finish(
    unit: CommandUnit,
    survey_id: Uuid,
    ticket: String,
    round: u32,
    is_satisfied: bool,
    answer: &ValidAnswer,
) -> Result<SurveyReply, Refusal> {
    unit.finish(SurveyReply {
        outcome: Some(Outcome::Survey(SurveyView {
            survey_id: survey_id.to_string(),
            ticket,
            round,
            state: SurveyState::Answered.as_str().into(),
            satisfied: is_satisfied,
            scores: Some(answer.scores),
            comment: answer.comment.clone(),
        })),
    })
    .await
}
