//! `work.resolved`: one survey per work item and round, stored together with the
//! `survey.sent` event and the invitation for the complainant's channel.

use redress_platform::Unit;
use redress_platform::envelope;
use redress_platform::events::{Event, Failure, Parsed};
use redress_proto::subjects::is_subject_token;
use redress_proto::types::WorkId;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{SurveyInvitation, SurveySent, WorkChanged, WorkItem, WorkState};
use uuid::Uuid;

use crate::domain::answer::SurveyState;
use crate::{IDENT, Surveys};

/// `Nats-Msg-Id` of an invitation: one per survey, whatever republishes it.
pub fn invitation_msg_id(survey_id: Uuid) -> String {
    format!("survey:{survey_id}")
}

/// A resolved work item that asks for a survey.
pub struct Sending {
    work: WorkItem,
    work_id: WorkId,
    complaint_id: Uuid,
    playbook: String,
    questions: Vec<String>,
}

pub fn parse(surveys: &Surveys, event: &Event, change: &WorkChanged) -> Parsed<Sending> {
    let Some(work) = &change.work else {
        return Parsed::Reject(format!(
            "work change {} carries no work item",
            event.envelope.event_id
        ));
    };
    // Only the resolution asks for a survey. A CLOSED work item was surveyed already (it is
    // closed by the answer), so a missed RESOLVED is not made up for here.
    if work.state() != WorkState::Resolved {
        return Parsed::Skip;
    }
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject(format!(
            "work change {} has no valid complaint id ({:?})",
            event.envelope.event_id, event.envelope.complaint_id
        ));
    };
    let playbook = match surveys.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => {
            return Parsed::Reject(format!(
                "work change {} of ticket {}: {e}",
                event.envelope.event_id, work.ticket
            ));
        }
    };
    if work.ticket.is_empty() || work.round == 0 {
        return Parsed::Reject(format!(
            "work change {} lacks ticket or round",
            event.envelope.event_id
        ));
    }
    // An explained round that the playbook does not survey is closed by routing.
    if work.explained && !playbook.survey.after_explain {
        return Parsed::Skip;
    }
    let work_id = match WorkId::parse(&work.work_id) {
        Ok(id) => id,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    // The channel becomes a subject token of the invitation.
    if !is_subject_token(&work.channel) {
        return Parsed::Reject(format!(
            "work {} has no usable channel ({:?})",
            work.work_id, work.channel
        ));
    }
    Parsed::Handle(Sending {
        work: work.clone(),
        work_id,
        complaint_id,
        playbook: playbook.key.clone(),
        questions: playbook.survey.questions.clone(),
    })
}

pub async fn apply(
    surveys: &Surveys,
    unit: &mut Unit,
    event: &Event,
    s: &Sending,
) -> Result<(), Failure> {
    let work = &s.work;
    let now = surveys.ctx.clock.now();
    let survey_id = Uuid::now_v7();
    let (token, token_hash) = crate::domain::answer::new_token();
    // Another event of the same round (a copy under another id, or routing republishing)
    // finds the survey sent: nothing more happens.
    let inserted = sqlx::query(
        "INSERT INTO surveys (survey_id, complaint_id, ticket, work_id, round, channel,
             external_id, playbook, state, sent_at, caused_by, token_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (work_id, round) DO NOTHING",
    )
    .bind(survey_id)
    .bind(s.complaint_id)
    .bind(&work.ticket)
    .bind(s.work_id.uuid())
    .bind(work.round as i32)
    .bind(&work.channel)
    .bind(&work.external_id)
    .bind(&s.playbook)
    .bind(SurveyState::Sent.as_str())
    .bind(now)
    .bind(&event.envelope.event_id)
    .bind(&token_hash)
    .execute(unit.db())
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(());
    }
    unit.emit(envelope::follow_up(
        IDENT.name,
        &event.envelope,
        now,
        Payload::SurveySent(SurveySent {
            survey_id: survey_id.to_string(),
            ticket: work.ticket.clone(),
            work_id: s.work_id.to_string(),
            round: work.round,
            channel: work.channel.clone(),
        }),
    ));
    let subject = unit.subjects().notify_survey(&work.channel);
    unit.send(
        subject,
        invitation_msg_id(survey_id),
        &SurveyInvitation {
            survey_id: survey_id.to_string(),
            ticket: work.ticket.clone(),
            complaint_id: s.complaint_id.to_string(),
            channel: work.channel.clone(),
            external_id: work.external_id.clone(),
            questions: s.questions.clone(),
            token,
        },
    );
    unit.count("survey_sent_total", 1);
    tracing::info!(round = work.round, %survey_id, "survey sent");
    Ok(())
}
