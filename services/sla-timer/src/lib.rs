//! Sla-timer: arms the deadlines of every handling round from business calendars, settles
//! them as the work moves on, and breaches those that fall due first.
//!
//! Messages and where they are handled:
//! - `work.*` events (the consumer filters on them): [`handlers::work_changed`], which arms a
//!   round's deadlines (`sla.armed`) and marks them met (`sla.met`) when the work reaches the
//!   state each one waits for.
//! - `approval.requested` and `approval.decided` (each on its own consumer):
//!   [`handlers::approval_step`], which arms and settles the clock of each step of an
//!   approval chain.
//! - The clock: [`timer`], which every `sla.tick_ms` warns of deadlines most of whose time
//!   has gone (`sla.warning`) and breaches the armed deadlines that are due (`sla.breached`).
//! - The calendar directory: [`calendars`], which moves open deadlines when a business
//!   calendar changes (`sla.armed` with the due time each had).

pub mod calendars;
pub mod domain;
pub mod handlers;
mod settings;
pub mod timer;

use std::sync::Arc;

use anyhow::Context as _;
use redress_calendar::CalendarSet;
use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Store, Unit};
use redress_playbook::Playbooks;
use redress_proto::v1::envelope::Payload;

pub use settings::SlaSettings;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "sla-timer",
    schema: "sla",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct SlaTimer {
    pub ctx: ServiceContext,
    pub store: Store,
    pub settings: SlaSettings,
    pub playbooks: Playbooks,
    /// Swapped whole when the calendar directory changes (see [`calendars`]).
    calendars: std::sync::RwLock<Arc<CalendarSet>>,
}

impl SlaTimer {
    /// The business calendars in use now.
    pub fn calendars(&self) -> Arc<CalendarSet> {
        self.calendars
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_calendars(&self, set: CalendarSet) {
        *self
            .calendars
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
    }
}

impl Handler for SlaTimer {
    type Input = handlers::work_changed::Round;

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
        handlers::work_changed::apply_all(self, unit, &[(event, input)]).await
    }

    async fn apply_batch(
        &self,
        unit: &mut Unit,
        batch: &[(&Event, &Self::Input)],
    ) -> Result<(), Failure> {
        handlers::work_changed::apply_all(self, unit, batch).await
    }
}

/// The approval events, for the clocks of approval steps; shares the instance's state.
pub struct ApprovalSteps(pub Arc<SlaTimer>);

impl Handler for ApprovalSteps {
    type Input = handlers::approval_step::Told;

    fn parse(&self, event: &Event) -> Parsed<Self::Input> {
        match &event.payload {
            Payload::ApprovalRequested(r) => {
                handlers::approval_step::parse_requested(&self.0, event, r)
            }
            Payload::ApprovalDecided(d) => {
                handlers::approval_step::parse_decided(&self.0, event, d)
            }
            _ => Parsed::Skip,
        }
    }

    async fn apply(
        &self,
        unit: &mut Unit,
        event: &Event,
        input: &Self::Input,
    ) -> Result<(), Failure> {
        handlers::approval_step::apply(&self.0, unit, event, input).await
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    let settings: SlaSettings = ctx.config.section("sla")?;
    let calendars = CalendarSet::builtin_with_dir(settings.calendars_dir.as_deref())
        .context("loading business calendars")?;
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let playbooks = host.playbooks("sla").await?;
    // A playbook naming a calendar nobody has would leave its complaints without deadlines;
    // better not to start.
    for pb in playbooks.iter() {
        calendars
            .get(&pb.sla.calendar)
            .with_context(|| format!("playbook {}: sla.calendar", pb.key))?;
    }
    calendars.prepare();
    let sla = Arc::new(SlaTimer {
        ctx: ctx.clone(),
        store: host.store(),
        settings,
        playbooks,
        calendars: std::sync::RwLock::new(Arc::new(calendars)),
    });
    host.consume(Filter::Subject(ctx.subjects.event("work.>")), sla.clone())
        .await?;
    host.consume(
        Filter::Kinds(vec![
            redress_proto::catalogue::EventKind::ApprovalRequested,
            redress_proto::catalogue::EventKind::ApprovalDecided,
        ]),
        Arc::new(ApprovalSteps(sla.clone())),
    )
    .await?;
    host.beside(timer::run(sla.clone()));
    host.beside(calendars::watch(sla.clone()));
    tracing::info!(tick_ms = sla.settings.tick_ms, "sla timer ticking");
    host.serve().await
}

/// The first time after `after` at which this service's timer has something to do (a
/// deadline due, a warning, a rung of the ladder), read as the stack's administrator: for a
/// tool that moves a virtual clock from one timer to the next (`redress playbook simulate`).
pub async fn next_due(
    db: &sqlx::PgPool,
    settings: &SlaSettings,
    after: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
    // A deadline is breached once its time and the grace have passed, not at that instant.
    let grace = chrono::Duration::seconds(settings.grace_secs.min(86_400) as i64)
        + chrono::Duration::microseconds(1);
    sqlx::query_scalar(&format!(
        "SELECT min(t) FROM (
             SELECT min(due_at) + $2 AS t FROM {s}.deadlines
             WHERE state = 'armed' AND due_at + $2 > $1
             UNION ALL
             SELECT min(warn_at) FROM {s}.deadlines
             WHERE state = 'armed' AND warned_at IS NULL AND warn_at > $1
             UNION ALL
             SELECT min(ladder_at) FROM {s}.deadlines
             WHERE ladder_at > $1 AND state IN ('armed', 'breached')
         ) x",
        s = IDENT.schema
    ))
    .bind(after)
    .bind(grace)
    .fetch_one(db)
    .await
}
