//! Follow-up in a window (回访): when an invitation goes out, one reminder, and expiry.
//!
//! A resolved round's survey is stored at once; when the playbook says to wait
//! (`survey.send_after`, counted from the reply) or to keep to working hours, it is stored
//! `scheduled` and this task sends it when its time comes. An invitation unanswered after
//! `survey.remind_after` gets one reminder with a token of its own (either answers); one
//! unanswered after `survey.expire_after` expires, and the complaint closes as "no
//! response". Each step claims its rows with `FOR UPDATE SKIP LOCKED` and commits with its
//! events, so instances share the work and none is done twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redress_calendar::{Calendar, DeadlineSpan};
use redress_platform::Unit;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::unit::CommitError;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ComplaintClosed, SurveyInvitation, SurveySent};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::answer::SurveyState;
use crate::{IDENT, Surveys};

/// The `[survey]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SurveySettings {
    /// How often scheduled invitations, reminders and expiries are looked for.
    pub tick_ms: u64,
}

impl Default for SurveySettings {
    fn default() -> Self {
        Self { tick_ms: 1000 }
    }
}

const BATCH: i64 = 100;

fn to_jiff(t: DateTime<Utc>) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(t.timestamp_micros()).ok()
}

fn from_jiff(t: jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.as_microsecond())
}

/// `limit` after `from` in `calendar`; None when the limit does not parse (the playbook
/// was checked when it loaded) or falls outside the calendar's range.
pub fn after(calendar: &Calendar, limit: &str, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let span: DeadlineSpan = limit.parse().ok()?;
    from_jiff(calendar.deadline(to_jiff(from)?, span).ok()?.timestamp())
}

/// The first instant at or after `at` inside working hours, when the playbook keeps
/// follow-ups to them; `at` otherwise.
pub fn in_hours(
    survey: &redress_playbook::Survey,
    calendar: &Calendar,
    at: DateTime<Utc>,
) -> DateTime<Utc> {
    if !survey.working_hours {
        return at;
    }
    to_jiff(at)
        .and_then(|t| calendar.next_working_instant(t).ok())
        .and_then(from_jiff)
        .unwrap_or(at)
}

/// When the survey of a round replied at `replied` should go out, seen at `now`.
pub fn send_time(
    survey: &redress_playbook::Survey,
    calendar: &Calendar,
    replied: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let at = survey
        .send_after
        .as_deref()
        .and_then(|limit| after(calendar, limit, replied))
        .unwrap_or(now)
        .max(now);
    in_hours(survey, calendar, at)
}

/// One stored survey, as sending or expiring it needs.
pub(crate) struct Stored {
    pub survey_id: Uuid,
    pub complaint_id: Uuid,
    pub ticket: String,
    pub work_id: Uuid,
    pub round: u32,
    pub channel: String,
    pub external_id: String,
    pub playbook: String,
    pub caused_by: String,
    /// A sample re-survey of a closed complaint.
    pub sample: bool,
    pub department: String,
}

impl Stored {
    fn from_row(row: &sqlx::postgres::PgRow) -> Self {
        Self {
            survey_id: row.get("survey_id"),
            complaint_id: row.get("complaint_id"),
            ticket: row.get("ticket"),
            work_id: row.get("work_id"),
            round: u32::try_from(row.get::<i32, _>("round")).unwrap_or(0),
            channel: row.get("channel"),
            external_id: row.get("external_id"),
            playbook: row.get("playbook"),
            caused_by: row.get("caused_by"),
            sample: row.get("sample"),
            department: row.get("department"),
        }
    }

    /// `survey.sent` for this survey, on `channel`: the invitation or its reminder.
    fn sent(&self, channel: &str, reminder: bool) -> Payload {
        Payload::SurveySent(SurveySent {
            survey_id: self.survey_id.to_string(),
            ticket: self.ticket.clone(),
            work_id: self.work_id.to_string(),
            round: self.round,
            channel: channel.to_string(),
            sample: self.sample,
            department: self.department.clone(),
            reminder,
        })
    }

    fn cause(&self) -> Cause {
        Cause {
            complaint_id: self.complaint_id,
            ticket: self.ticket.clone(),
            causation_id: self.caused_by.clone(),
            correlation_id: self.complaint_id.to_string(),
            playbook: self.playbook.clone(),
        }
    }
}

const COLUMNS: &str = "survey_id, complaint_id, ticket, work_id, round, channel, external_id, \
     playbook, caused_by, sample, department";

/// Sends the invitation (or its reminder) of `s`, with a new token whose hash is returned,
/// and announces it as `survey.sent` (the reminder with `reminder` set), so that the
/// complaint's history shows the complainant was asked again.
pub(crate) fn invite(
    unit: &mut Unit,
    s: &Stored,
    questions: &[String],
    now: DateTime<Utc>,
    reminder: bool,
) -> Vec<u8> {
    let (token, token_hash) = crate::domain::answer::new_token();
    unit.emit(new_event(
        IDENT.name,
        &s.cause(),
        now,
        s.sent(&s.channel, reminder),
    ));
    let subject = unit.subjects().notify_survey(&s.channel);
    let msg_id = if reminder {
        format!("survey-reminder:{}", s.survey_id)
    } else if s.sample {
        format!("survey-sample:{}", s.survey_id)
    } else {
        crate::handlers::work_changed::invitation_msg_id(s.survey_id)
    };
    unit.send(
        subject,
        msg_id,
        &SurveyInvitation {
            survey_id: s.survey_id.to_string(),
            ticket: s.ticket.clone(),
            complaint_id: s.complaint_id.to_string(),
            channel: s.channel.clone(),
            external_id: s.external_id.clone(),
            questions: questions.to_vec(),
            token,
            reminder,
        },
    );
    token_hash
}

/// Whether the ticket is in the playbook's sample of closed complaints: the same answer on
/// every instance and every time.
pub fn sampled(ticket: &str, percent: u32) -> bool {
    use sha2::{Digest as _, Sha256};
    let h = Sha256::digest(ticket.as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
    (n % 100) < u64::from(percent)
}

/// Schedules the sample re-survey of a round closed now, when the playbook samples it.
pub(crate) async fn schedule_sample(
    unit: &mut Unit,
    survey: &redress_playbook::Survey,
    calendar: &Calendar,
    closed: &Stored,
    department: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let Some(r) = &survey.resample else {
        return Ok(());
    };
    if !sampled(&closed.ticket, r.percent) {
        return Ok(());
    }
    let Some(at) = after(calendar, &r.after, now) else {
        return Ok(());
    };
    let send_at = in_hours(survey, calendar, at);
    let stored = sqlx::query(
        "INSERT INTO surveys (survey_id, complaint_id, ticket, work_id, round, channel,
             external_id, playbook, state, sent_at, caused_by, send_at, department, sample)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $12, true)
         ON CONFLICT (work_id, round, sample) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(closed.complaint_id)
    .bind(&closed.ticket)
    .bind(closed.work_id)
    .bind(i32::try_from(closed.round).unwrap_or(i32::MAX))
    .bind(&closed.channel)
    .bind(&closed.external_id)
    .bind(&closed.playbook)
    .bind(SurveyState::Scheduled.as_str())
    .bind(send_at)
    .bind(&closed.caused_by)
    .bind(department)
    .execute(unit.db())
    .await?;
    if stored.rows_affected() == 1 {
        unit.count("survey_samples_scheduled_total", 1);
    }
    Ok(())
}

/// Sends the invitation of stored survey `s` now: the invitation and `survey.sent`, the
/// token's hash, and when it is reminded of and expires.
pub(crate) async fn send_now(
    unit: &mut Unit,
    s: &Stored,
    survey: &redress_playbook::Survey,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let hash = invite(unit, s, &survey.questions, now, false);
    let (remind_at, expire_at) = reminders(survey, calendar, now);
    sqlx::query(
        "UPDATE surveys SET state = $2, sent_at = $3, token_hash = $4, remind_at = $5,
             expire_at = $6
         WHERE survey_id = $1",
    )
    .bind(s.survey_id)
    .bind(SurveyState::Sent.as_str())
    .bind(now)
    .bind(&hash)
    .bind(remind_at)
    .bind(expire_at)
    .execute(unit.db())
    .await?;
    unit.count("survey_sent_total", 1);
    Ok(())
}

/// When a survey sent at `sent` is reminded of and expires.
pub fn reminders(
    survey: &redress_playbook::Survey,
    calendar: &Calendar,
    sent: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let at = |limit: &Option<String>| limit.as_deref().and_then(|l| after(calendar, l, sent));
    (at(&survey.remind_after), at(&survey.expire_after))
}

/// Ticks every `survey.tick_ms` until shutdown.
pub async fn run(surveys: Arc<Surveys>) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(Duration::from_millis(surveys.settings.tick_ms.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = surveys.ctx.shutdown.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        for (what, step) in [
            ("sending scheduled surveys", Step::Send),
            ("reminding", Step::Remind),
            ("expiring", Step::Expire),
        ] {
            loop {
                match due(&surveys, step).await {
                    Ok(n) if n as i64 >= BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "survey follow-up: {what} failed, will retry");
                        break;
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Step {
    Send,
    Remind,
    Expire,
}

/// One batch of one step, in one transaction.
async fn due(surveys: &Surveys, step: Step) -> Result<usize, CommitError> {
    let now = surveys.ctx.clock.now();
    let mut unit = surveys.store.begin().await?;
    let filter = match step {
        Step::Send => "state = 'scheduled' AND send_at <= $1 ORDER BY send_at",
        Step::Remind => {
            "state = 'sent' AND reminded_at IS NULL AND remind_at <= $1 ORDER BY remind_at"
        }
        Step::Expire => "state = 'sent' AND expire_at <= $1 ORDER BY expire_at",
    };
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM surveys WHERE {filter} LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(BATCH)
    .fetch_all(unit.db())
    .await?;
    let calendars = &surveys.calendars;
    for row in &rows {
        let s = Stored::from_row(row);
        let Ok(playbook) = surveys.playbooks.get(&s.playbook) else {
            continue;
        };
        let survey = &playbook.survey;
        let Ok(calendar) = calendars.get(&playbook.sla.calendar) else {
            continue;
        };
        match step {
            Step::Send => {
                send_now(&mut unit, &s, survey, calendar, now).await?;
            }
            Step::Remind => {
                // Never at night: a reminder that falls outside working hours waits.
                let opening = in_hours(survey, calendar, now);
                if opening > now {
                    sqlx::query("UPDATE surveys SET remind_at = $2 WHERE survey_id = $1")
                        .bind(s.survey_id)
                        .bind(opening)
                        .execute(unit.db())
                        .await?;
                    continue;
                }
                let hash = invite(&mut unit, &s, &survey.questions, now, true);
                sqlx::query(
                    "UPDATE surveys SET reminded_at = $2, reminder_token_hash = $3
                     WHERE survey_id = $1",
                )
                .bind(s.survey_id)
                .bind(now)
                .bind(&hash)
                .execute(unit.db())
                .await?;
                unit.count("survey_reminded_total", 1);
            }
            Step::Expire => {
                sqlx::query("UPDATE surveys SET state = $2, expired_at = $3 WHERE survey_id = $1")
                    .bind(s.survey_id)
                    .bind(SurveyState::Expired.as_str())
                    .bind(now)
                    .execute(unit.db())
                    .await?;
                if s.sample {
                    // The complaint is closed already: an unanswered sample is only counted.
                    unit.count("survey_sample_unanswered_total", 1);
                    continue;
                }
                if survey.on_expiry == redress_playbook::OnExpiry::Phone {
                    // The department calls: the survey is open again, on the phone.
                    sqlx::query(
                        "UPDATE surveys SET state = $2, expire_at = NULL WHERE survey_id = $1",
                    )
                    .bind(s.survey_id)
                    .bind(SurveyState::Sent.as_str())
                    .execute(unit.db())
                    .await?;
                    unit.emit(new_event(
                        IDENT.name,
                        &s.cause(),
                        now,
                        s.sent("phone", false),
                    ));
                    unit.count("survey_phone_tasks_total", 1);
                    continue;
                }
                unit.emit(new_event(
                    IDENT.name,
                    &s.cause(),
                    now,
                    Payload::ComplaintClosed(ComplaintClosed {
                        ticket: s.ticket.clone(),
                        work_id: s.work_id.to_string(),
                        round: s.round,
                        survey_id: s.survey_id.to_string(),
                        no_response: true,
                    }),
                ));
                unit.count("survey_no_response_total", 1);
                tracing::info!(ticket = %s.ticket, round = s.round, "survey expired unanswered");
            }
        }
    }
    unit.commit().await?;
    Ok(rows.len())
}
