//! `work.resolved`: one survey per work item and round, stored together with the
//! `survey.sent` event and the invitation for the complainant's channel.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure, Parsed};
use redress_proto::subjects::is_subject_token;
use redress_proto::time::opt_to_chrono;
use redress_proto::types::WorkId;
use redress_proto::v1::{WorkChanged, WorkItem, WorkState};
use uuid::Uuid;

use crate::domain::answer::SurveyState;
use crate::{Surveys, followup};

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
    let playbook = surveys
        .playbooks
        .get(&s.playbook)
        .map_err(|e| Failure::Reject(e.to_string()))?;
    let calendar = surveys
        .calendars
        .get(&playbook.sla.calendar)
        .map_err(|e| Failure::Reject(format!("calendar {:?}: {e}", playbook.sla.calendar)))?;
    // The window counts from the reply (the resolution, for work answered without one).
    let replied = opt_to_chrono(&work.replied_at)
        .or_else(|| opt_to_chrono(&work.resolved_at))
        .or_else(|| event.occurred_at())
        .unwrap_or(now);
    let send_at = followup::send_time(&playbook.survey, calendar, replied, now);
    let stored = followup::Stored {
        survey_id: Uuid::now_v7(),
        complaint_id: s.complaint_id,
        ticket: work.ticket.clone(),
        work_id: s.work_id.uuid(),
        round: work.round,
        channel: work.channel.clone(),
        external_id: work.external_id.clone(),
        playbook: s.playbook.clone(),
        caused_by: event.envelope.event_id.clone(),
        sample: false,
        department: work.department.clone(),
    };
    let state = if send_at <= now {
        SurveyState::Sent
    } else {
        SurveyState::Scheduled
    };
    // Another event of the same round (a copy under another id, or routing republishing)
    // finds the survey stored: nothing more happens.
    let inserted = sqlx::query(
        "INSERT INTO surveys (survey_id, complaint_id, ticket, work_id, round, channel,
             external_id, playbook, state, sent_at, caused_by, send_at, department)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $12)
         ON CONFLICT (work_id, round, sample) DO NOTHING",
    )
    .bind(stored.survey_id)
    .bind(stored.complaint_id)
    .bind(&stored.ticket)
    .bind(stored.work_id)
    .bind(work.round as i32)
    .bind(&stored.channel)
    .bind(&stored.external_id)
    .bind(&stored.playbook)
    .bind(state.as_str())
    .bind(send_at)
    .bind(&stored.caused_by)
    .bind(&work.department)
    .execute(unit.db())
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(());
    }
    if state == SurveyState::Scheduled {
        unit.count("survey_scheduled_total", 1);
        tracing::info!(round = work.round, survey_id = %stored.survey_id, %send_at, "survey scheduled");
        return Ok(());
    }
    // In the resolution's trace: the invitation follows from it.
    followup::send_now(unit, &stored, &playbook.survey, calendar, now).await?;
    tracing::info!(round = work.round, survey_id = %stored.survey_id, "survey sent");
    Ok(())
}
