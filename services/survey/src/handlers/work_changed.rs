//! `WorkChanged` with the work RESOLVED: one survey per work item and round, stored together
//! with the `survey.sent` event and the invitation for the complainant's channel.

use prost::Message as _;
use redress_platform::events::{self, Event, retry};
use redress_platform::nats::Outcome;
use redress_platform::outbox::Outgoing;
use redress_platform::{envelope, inbox, outbox};
use redress_proto::subjects::{self, is_subject_token};
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{SurveyInvitation, SurveySent, WorkChanged, WorkState};
use uuid::Uuid;

use crate::domain::answer::SurveyState;
use crate::{IDENT, Surveys};

/// `Nats-Msg-Id` of an invitation: one per survey, whatever republishes it.
pub fn invitation_msg_id(survey_id: Uuid) -> String {
    format!("survey:{survey_id}")
}

pub async fn handle(surveys: &Surveys, event: &Event, change: WorkChanged) -> Outcome {
    let Some(work) = change.work else {
        return Outcome::DeadLetter(format!(
            "work change {} carries no work item",
            event.envelope.event_id
        ));
    };
    // Only the resolution asks for a survey. A CLOSED work item was surveyed already (it is
    // closed by the answer), so a missed RESOLVED is not made up for here.
    if work.state() != WorkState::Resolved {
        return Outcome::Ack;
    }
    let Some(complaint_id) = event.complaint_id() else {
        return Outcome::DeadLetter(format!(
            "work change {} has no valid complaint id ({:?})",
            event.envelope.event_id, event.envelope.complaint_id
        ));
    };
    let playbook = match surveys.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => {
            return Outcome::DeadLetter(format!(
                "work change {} of ticket {}: {e}",
                event.envelope.event_id, work.ticket
            ));
        }
    };
    if work.work_id.is_empty() || work.ticket.is_empty() || work.round == 0 {
        return Outcome::DeadLetter(format!(
            "work change {} lacks work_id, ticket or round",
            event.envelope.event_id
        ));
    }
    // The channel becomes a subject token of the invitation.
    if !is_subject_token(&work.channel) {
        return Outcome::DeadLetter(format!(
            "work {} has no usable channel ({:?})",
            work.work_id, work.channel
        ));
    }

    let now = surveys.ctx.clock.now();
    let survey_id = Uuid::now_v7();
    let sent = envelope::follow_up(
        IDENT.name,
        &event.envelope,
        now,
        Payload::SurveySent(SurveySent {
            survey_id: survey_id.to_string(),
            ticket: work.ticket.clone(),
            work_id: work.work_id.clone(),
            round: work.round,
            channel: work.channel.clone(),
        }),
    );
    let invitation = SurveyInvitation {
        survey_id: survey_id.to_string(),
        ticket: work.ticket.clone(),
        complaint_id: complaint_id.to_string(),
        channel: work.channel.clone(),
        external_id: work.external_id.clone(),
        questions: playbook.survey.questions.clone(),
    };
    let messages = [
        events::outgoing(
            surveys.ctx.subjects.event(subjects::events::SURVEY_SENT),
            &sent,
        ),
        Outgoing {
            msg_id: invitation_msg_id(survey_id),
            subject: surveys.ctx.subjects.notify_survey(&work.channel),
            payload: invitation.encode_to_vec(),
        },
    ];

    let result: sqlx::Result<bool> = async {
        let mut tx = surveys.pool.begin().await?;
        if !inbox::record(&mut tx, &event.message_id).await? {
            return Ok(false);
        }
        // Another event of the same round (a copy under another id, or routing republishing)
        // finds the survey sent: nothing more happens.
        let inserted = sqlx::query(
            "INSERT INTO surveys (survey_id, complaint_id, ticket, work_id, round, channel,
                 external_id, playbook, state, sent_at, caused_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (work_id, round) DO NOTHING",
        )
        .bind(survey_id)
        .bind(complaint_id)
        .bind(&work.ticket)
        .bind(&work.work_id)
        .bind(work.round as i32)
        .bind(&work.channel)
        .bind(&work.external_id)
        .bind(&playbook.key)
        .bind(SurveyState::Sent.as_str())
        .bind(now)
        .bind(&event.envelope.event_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            outbox::enqueue(&mut tx, IDENT.schema, &surveys.storage.outbox, &messages).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
    .await;
    match result {
        Ok(true) => {
            surveys.storage.outbox.wake();
            surveys.ctx.metrics.incr("survey_sent_total");
            tracing::info!(ticket = %work.ticket, round = work.round, %survey_id, "survey sent");
            Outcome::Ack
        }
        Ok(false) => Outcome::Ack,
        Err(e) => retry(e),
    }
}
