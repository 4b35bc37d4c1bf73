//! Survey: surveys complainants after resolution and closes or reopens.
//!
//! Messages and where they are handled:
//! - `work.resolved.<department>` (the consumer filters on it): [`handlers::work_changed`],
//!   which sends (or schedules, see [`followup`]) one survey per work item and round.
//! - The clock: [`followup`], which sends scheduled invitations, reminds once and closes
//!   unanswered surveys as "no response" at the end of their window.
//! - `AnswerSurvey` as a request on `<root>.cmd.survey.answer`: [`handlers::answer`], which
//!   publishes `survey.answered` and `complaint.closed` or `complaint.reopened`.
//! - `RecordFollowUp` on `<root>.cmd.survey.follow_up.<department>`:
//!   [`handlers::follow_up`], a follow-up a department member made (by phone), answered the
//!   same way.
//! - `ListFollowUps` on `<root>.cmd.survey.tasks.<department>`: [`handlers::tasks`], the
//!   phone follow-ups the department has to make.

pub mod domain;
pub mod followup;
pub mod handlers;

use std::sync::Arc;

use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Store, Unit};
use redress_playbook::Playbooks;
use redress_proto::EventKind;
use redress_proto::subjects;
use redress_proto::v1::WorkChange;
use redress_proto::v1::envelope::Payload;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "survey",
    schema: "survey",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Surveys {
    pub ctx: ServiceContext,
    pub store: Store,
    pub playbooks: Playbooks,
    /// For follow-up windows and working hours (the playbooks' `sla.calendar`).
    pub calendars: redress_calendar::CalendarSet,
    pub settings: followup::SurveySettings,
}

impl Handler for Surveys {
    type Input = handlers::work_changed::Sending;

    fn parse(&self, event: &Event) -> Parsed<Self::Input> {
        match &event.payload {
            Payload::WorkChanged(change) => handlers::work_changed::parse(self, event, change),
            _ => Parsed::Skip,
        }
    }

    async fn apply(
        &self,
        unit: &mut Unit,
        event: &Event,
        input: &Self::Input,
    ) -> Result<(), Failure> {
        handlers::work_changed::apply(self, unit, event, input).await
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    let settings: followup::SurveySettings = ctx.config.section("survey")?;
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let calendars = redress_calendar::CalendarSet::builtin()?;
    calendars.prepare();
    let surveys = Arc::new(Surveys {
        ctx: ctx.clone(),
        store: host.store(),
        playbooks: host.playbooks("survey").await?,
        calendars,
        settings,
    });
    host.beside(followup::run(surveys.clone()));
    host.consume(
        Filter::Kinds(vec![EventKind::Work(WorkChange::Resolved)]),
        surveys.clone(),
    )
    .await?;
    let commands = host
        .commands("Satisfaction surveys: answers close or reopen complaints")
        .await?;
    commands
        .command(
            subjects::survey::ANSWER,
            subjects::survey::ANSWER,
            "answer",
            {
                let surveys = surveys.clone();
                move |cmd, _| handlers::answer::handle(surveys.clone(), cmd)
            },
        )
        .await?;
    commands
        .command(
            subjects::survey::TASKS,
            &format!("{}.*", subjects::survey::TASKS),
            "tasks",
            {
                let surveys = surveys.clone();
                move |query, m| handlers::tasks::handle(surveys.clone(), query, m)
            },
        )
        .await?;
    commands
        .command(
            subjects::survey::FOLLOW_UP,
            &format!("{}.*", subjects::survey::FOLLOW_UP),
            "follow_up",
            move |cmd, m| handlers::follow_up::handle(surveys.clone(), cmd, m),
        )
        .await?;
    host.serve().await
}

/// The first time after `after` at which the follow-up clock has something to do (an
/// invitation to send, a reminder, an expiry), read as the stack's administrator: for a tool
/// that moves a virtual clock from one timer to the next (`redress playbook simulate`).
pub async fn next_due(
    db: &sqlx::PgPool,
    after: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
    sqlx::query_scalar(&format!(
        "SELECT min(t) FROM (
             SELECT min(send_at) AS t FROM {s}.surveys WHERE state = 'scheduled' AND send_at > $1
             UNION ALL
             SELECT min(remind_at) FROM {s}.surveys
             WHERE state = 'sent' AND reminded_at IS NULL AND remind_at > $1
             UNION ALL
             SELECT min(expire_at) FROM {s}.surveys WHERE state = 'sent' AND expire_at > $1
         ) x",
        s = IDENT.schema
    ))
    .bind(after)
    .fetch_one(db)
    .await
}
