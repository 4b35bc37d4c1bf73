//! `survey.*`: the survey of the latest round; an answer beats the invitation of its round,
//! a later round beats both.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_proto::v1::{ComplaintClosed, SurveyAnswered, SurveySent};
use sqlx::PgConnection;
use uuid::Uuid;

/// The batch's latest survey state of each complaint.
#[derive(Default)]
pub(super) struct Batch {
    latest: HashMap<Uuid, (i32, &'static str)>,
}

impl Batch {
    /// The rule the update applies to the stored row, applied within the batch first.
    fn set(&mut self, id: Uuid, round: u32, state: &'static str) {
        let round = i32::try_from(round).unwrap_or(i32::MAX);
        let beats = |(r, _): &(i32, &str)| *r < round || (*r == round && state != "sent");
        if self.latest.get(&id).is_none_or(beats) {
            self.latest.insert(id, (round, state));
        }
    }

    /// Takes an invitation; returns its history line.
    pub(super) fn sent(&mut self, id: Uuid, s: &SurveySent) -> String {
        if s.sample {
            // A closed complaint surveyed again: its own survey stays as it ended.
            return format!("sample re-survey of round {} by {}", s.round, s.channel);
        }
        if s.reminder {
            // The invitation of the round again: the survey's state is as the invitation left it.
            return format!("round {}: reminded by {}", s.round, s.channel);
        }
        self.set(id, s.round, "sent");
        if s.channel == "phone" {
            return format!(
                "round {}: no answer in the survey's window; {} to follow up by phone",
                s.round, s.department
            );
        }
        format!("round {} by {}", s.round, s.channel)
    }

    /// Takes a survey closed unanswered at the end of its window; returns its history line.
    pub(super) fn unanswered(&mut self, id: Uuid, c: &ComplaintClosed) -> String {
        self.set(id, c.round, "no_response");
        format!(
            "round {}: no answer to the survey in its window; closed as no response",
            c.round
        )
    }

    /// Takes an answer; returns its history line, which also tells what it led to.
    pub(super) fn answered(&mut self, id: Uuid, s: &SurveyAnswered) -> String {
        let (outcome, then) = match (s.satisfied, s.sample) {
            (true, false) => ("satisfied", "closed"),
            (false, false) => ("dissatisfied", "reopened"),
            (true, true) => ("satisfied", "sample re-survey, stays closed"),
            (false, true) => ("dissatisfied", "sample re-survey, stays closed"),
        };
        if !s.sample {
            self.set(id, s.round, outcome);
        }
        let score = s.scores.as_ref().map(|x| x.overall).unwrap_or_default();
        let comment = s.comment.trim();
        let by = if s.recorded_by.is_empty() {
            String::new()
        } else {
            format!(" (follow-up by {}, recorded by {})", s.via, s.recorded_by)
        };
        if comment.is_empty() {
            format!("{outcome}, overall {score}/5{by}; {then}")
        } else {
            format!("{outcome}, overall {score}/5 {comment}{by}; {then}")
        }
    }

    pub(super) async fn store(self, db: &mut PgConnection, now: DateTime<Utc>) -> sqlx::Result<()> {
        if self.latest.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let (mut rounds, mut states) = (Vec::new(), Vec::new());
        for (id, (r, s)) in self.latest {
            ids.push(id);
            rounds.push(r);
            states.push(s);
        }
        sqlx::query(
            "UPDATE complaints c SET survey = u.state, survey_round = u.round, updated_at = $4
             FROM unnest($1::uuid[], $2::int4[], $3::text[]) AS u(id, round, state)
             WHERE c.id = u.id
               AND (c.survey_round < u.round OR (c.survey_round = u.round AND u.state <> 'sent'))",
        )
        .bind(&ids)
        .bind(&rounds)
        .bind(&states)
        .bind(now)
        .execute(db)
        .await?;
        Ok(())
    }
}
