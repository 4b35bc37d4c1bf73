//! Sla-timer: arms the deadlines of every handling round from business calendars, settles
//! them as the work moves on, and breaches those that fall due first.
//!
//! Messages and where they are handled:
//! - `WorkChanged` events (every other event is acknowledged and ignored):
//!   [`handlers::work_changed`], which arms a round's deadlines (`sla.armed`) and marks them
//!   met (`sla.met`) when the work reaches the state each one waits for.
//! - The clock: [`timer`], which every `sla.tick_ms` breaches the armed deadlines that are due
//!   (`sla.breached`).

pub mod domain;
pub mod handlers;
mod settings;
pub mod timer;

use std::sync::Arc;

use anyhow::Context as _;
use redress_calendar::CalendarSet;
use redress_platform::events::{self, Event};
use redress_platform::nats::Outcome;
use redress_platform::service::Storage;
use redress_platform::{ServiceContext, ServiceIdent};
use redress_playbook::Playbooks;
use redress_proto::v1::envelope::Payload;
use sqlx::PgPool;

pub use settings::SlaSettings;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "sla-timer",
    schema: "sla",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct SlaTimer {
    pub ctx: ServiceContext,
    pub pool: PgPool,
    pub(crate) storage: Storage,
    pub settings: SlaSettings,
    pub playbooks: Playbooks,
    pub calendars: CalendarSet,
}

impl SlaTimer {
    pub async fn new(ctx: ServiceContext) -> anyhow::Result<Arc<Self>> {
        let settings: SlaSettings = ctx.config.section("sla")?;
        let calendars = CalendarSet::builtin_with_dir(settings.calendars_dir.as_deref())
            .context("loading business calendars")?;
        let storage = Storage::open(&ctx, &IDENT, &MIGRATOR).await?;
        let playbooks = redress_platform::playbooks::load(&ctx, &storage.pool, "sla").await?;
        // A playbook naming a calendar nobody has would leave its complaints without
        // deadlines; better not to start.
        for pb in playbooks.iter() {
            calendars
                .get(&pb.sla.calendar)
                .with_context(|| format!("playbook {}: sla.calendar", pb.key))?;
        }
        calendars.prepare();
        Ok(Arc::new(Self {
            ctx,
            pool: storage.pool.clone(),
            storage,
            settings,
            playbooks,
            calendars,
        }))
    }
}

async fn dispatch(sla: Arc<SlaTimer>, event: Event) -> Outcome {
    match &event.payload {
        Payload::WorkChanged(change) => {
            let change = change.clone();
            handlers::work_changed::handle(&sla, &event, change).await
        }
        _ => Outcome::Ack,
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    ctx.health.register(IDENT.name);
    let sla = SlaTimer::new(ctx.clone()).await?;

    let consumer = {
        let sla = sla.clone();
        events::spawn_consumer(
            &ctx,
            IDENT.name,
            ctx.subjects.event("work.>"),
            move |event| dispatch(sla.clone(), event),
        )
        .await?
    };
    let timer = tokio::spawn(timer::run(sla.clone()));

    ctx.health.set_ready(IDENT.name, true);
    tracing::info!(
        service = IDENT.name,
        tick_ms = sla.settings.tick_ms,
        "serving"
    );
    ctx.shutdown.cancelled().await;
    ctx.health.set_ready(IDENT.name, false);
    let _ = consumer.await;
    let _ = timer.await;
    match Arc::try_unwrap(sla) {
        Ok(sla) => sla.storage.close().await,
        Err(sla) => sla.pool.close().await,
    }
    Ok(())
}
