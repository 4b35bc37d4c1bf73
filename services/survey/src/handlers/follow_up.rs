//! `RecordFollowUp` on `<root>.cmd.survey.follow_up.<department>`: a member of the
//! department that handled the round records the follow-up they made with the complainant
//! (by phone, or a web form filled in for them), with the same scores as an answer. The
//! signer is the recorder; the department in the subject, the command and the survey must
//! agree, and the signer must be one of its members. The answer then counts as the
//! complainant's would: closed when satisfied, reopened when not.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::commands::{Claimed, Refusal};
use redress_proto::v1::{RecordFollowUp, SurveyReply};

use super::answer::{Current, record};
use crate::Surveys;
use crate::domain::answer::{SurveyState, ValidAnswer};

pub async fn handle(
    surveys: Arc<Surveys>,
    mut cmd: RecordFollowUp,
    message: async_nats::Message,
) -> Result<SurveyReply, Refusal> {
    tracing::Span::current().record("ticket", cmd.ticket.trim());
    let person = redress_platform::people::signer(&surveys.ctx.people, &message).await?;
    redress_platform::people::bind("recorded_by", &mut cmd.recorded_by, &person)?;
    let (answer, via) = ValidAnswer::parse_follow_up(&cmd)?;
    let department = cmd.department.trim();
    let in_subject = message.subject.rsplit('.').next().unwrap_or_default();
    if in_subject != department {
        return Err(Refusal::forbidden(
            "department",
            format!("sent for department {in_subject}, but names {department}"),
        ));
    }
    let mut unit = match surveys
        .store
        .claim::<SurveyReply>(&answer.command_id, &cmd.encode_to_vec())
        .await?
    {
        Claimed::Done(reply) => return Ok(reply),
        Claimed::New(unit) => unit,
    };
    let survey = Current::load(&mut unit, &answer.ticket).await?;
    if survey.department != department {
        return Err(Refusal::forbidden(
            "department",
            format!(
                "{} (round {}) was handled by {}, not {department}",
                survey.ticket, survey.round, survey.department
            ),
        ));
    }
    let playbook = surveys
        .playbooks
        .get(&survey.playbook)
        .map_err(|e| Refusal::internal(e.to_string()))?;
    let member = playbook
        .department(department)
        .is_some_and(|d| d.manager == person || d.members.contains(&person));
    if !member {
        return Err(Refusal::forbidden(
            "recorded_by",
            format!("{person} is not a member of {department}"),
        ));
    }
    // A follow-up may be made before the invitation goes out (the window has not opened)
    // as well as while it waits; not after an answer or the window's end.
    let state = SurveyState::parse(&survey.state).ok_or_else(|| {
        Refusal::internal(format!(
            "survey {} is in state {:?}",
            survey.survey_id, survey.state
        ))
    })?;
    if state != SurveyState::Scheduled {
        state.check_answerable(&survey.ticket)?;
    }
    record(&surveys, unit, survey, &answer, via, &person).await
}
