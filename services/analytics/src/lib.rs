//! Analytics: keeps a fact table per complaint and per handling round from every event, and
//! answers the key figures of any period and slice from them.
//!
//! Messages and where they are handled:
//! - Every event (one durable consumer on all of them): [`handlers::facts`], which folds
//!   what each event tells into the facts. Times keep the earliest told, states the most
//!   final, attributes the newest work version, so events read in any order, or twice,
//!   leave the same facts.
//! - `KpiQuery` as a request on `<root>.cmd.analytics.kpis`: [`handlers::kpis`].
//! - `ReportFetch` on `<root>.cmd.analytics.report`: [`handlers::report`].
//! - `SpikeQuery` on `<root>.cmd.analytics.spikes`: [`handlers::spikes`].
//! - By the clock: scheduled reports (`report.published`) and the daily spike check
//!   (`analytics.spike`): [`timer`].
//!
//! The facts are a projection of the event stream: a schema dropped (or lost) is refilled
//! from every event the stream still holds (`events_max_age_days`) when the service starts.

pub mod domain;
pub mod handlers;
/// Reports from the key figures: Markdown, CSV, and HTML with charts.
pub mod render;
pub mod timer;

pub use timer::{AnalyticsSettings, caught_up, next_due};

use std::sync::Arc;

use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Store, Unit};
use redress_playbook::Playbooks;
use redress_proto::subjects;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "analytics",
    schema: "analytics",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Analytics {
    pub ctx: ServiceContext,
    pub store: Store,
    pub rules: Rules,
    pub settings: AnalyticsSettings,
}

/// The playbooks, and the calendars in which their business time and days are counted.
pub struct Rules {
    pub playbooks: Playbooks,
    pub calendars: redress_calendar::CalendarSet,
}

impl Rules {
    /// Playbook `key` as a request names it, or the refusal naming the field.
    pub fn playbook(
        &self,
        key: &str,
    ) -> Result<&redress_playbook::Playbook, redress_platform::commands::Refusal> {
        self.playbooks.get(key).map_err(|_| {
            redress_platform::commands::Refusal::not_found(
                "playbook",
                format!("no playbook {key:?}"),
            )
        })
    }

    /// The calendar of playbook `key`; none for a playbook not loaded.
    pub fn calendar_of(&self, key: &str) -> Option<&redress_calendar::Calendar> {
        let playbook = self.playbooks.get(key).ok()?;
        self.calendars.get(&playbook.sla.calendar).ok()
    }
}

impl Handler for Analytics {
    type Input = handlers::facts::Fact;

    fn parse(&self, event: &Event) -> Parsed<Self::Input> {
        handlers::facts::parse(event)
    }

    async fn apply(
        &self,
        unit: &mut Unit,
        event: &Event,
        input: &Self::Input,
    ) -> Result<(), Failure> {
        let told = handlers::facts::Told::of(event)
            .ok_or_else(|| Failure::Reject("an event of no complaint".into()))?;
        handlers::facts::apply(&self.rules, unit.db(), &told, input).await
    }

    async fn apply_batch(
        &self,
        unit: &mut Unit,
        batch: &[(&Event, &Self::Input)],
    ) -> Result<(), Failure> {
        let items = batch
            .iter()
            .map(|(event, fact)| {
                handlers::facts::Told::of(event)
                    .map(|told| (told, *fact))
                    .ok_or_else(|| Failure::Reject("an event of no complaint".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        handlers::facts::apply_batch(&self.rules, unit.db(), &items).await
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(mut ctx: ServiceContext) -> anyhow::Result<()> {
    let settings: AnalyticsSettings = ctx.config.section("analytics")?;
    ctx.config.settings.consumer.batch_size = settings.batch_size;
    ctx.config.settings.consumer.batches_in_flight = settings.batches_in_flight;
    ctx.config.settings.consumer.linger_ms = settings.linger_ms;
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let calendars = redress_calendar::CalendarSet::builtin()?;
    calendars.prepare();
    let analytics = Arc::new(Analytics {
        ctx: ctx.clone(),
        store: host.store(),
        rules: Rules {
            playbooks: host.playbooks("report").await?,
            calendars,
        },
        settings,
    });
    rebuild_if_new(&analytics).await?;
    let measured =
        handlers::facts::measure_recorded(&analytics.store.pool, &analytics.rules).await?;
    if measured > 0 {
        tracing::info!(
            measured,
            "durations of facts recorded before they were kept"
        );
    }
    host.consume(Filter::All, analytics.clone()).await?;
    let commands = host
        .commands("Analytics: key figures of complaint handling")
        .await?;
    commands
        .command(
            subjects::analytics::KPIS,
            subjects::analytics::KPIS,
            "kpis",
            {
                let analytics = analytics.clone();
                move |query, _| handlers::kpis::handle(analytics.clone(), query)
            },
        )
        .await?;
    commands
        .command(
            subjects::analytics::REPORT,
            subjects::analytics::REPORT,
            "report",
            {
                let analytics = analytics.clone();
                move |query, _| handlers::report::handle(analytics.clone(), query)
            },
        )
        .await?;
    commands
        .command(
            subjects::analytics::SPIKES,
            subjects::analytics::SPIKES,
            "spikes",
            {
                let analytics = analytics.clone();
                move |query, _| handlers::spikes::handle(analytics.clone(), query)
            },
        )
        .await?;
    host.beside(timer::run(analytics));
    host.serve().await
}

/// A schema with no origin was just made. If the service's consumer already exists, the
/// schema had been dropped while the stream kept its events: the consumer is deleted, so that
/// it is made again from the stream's first event and the facts are folded anew (they come
/// out the same whatever the order or repetition). The origin is then written, so this
/// happens once.
async fn rebuild_if_new(analytics: &Analytics) -> anyhow::Result<()> {
    let db = &analytics.store.pool;
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM origin)")
        .fetch_one(db)
        .await?;
    if known {
        return Ok(());
    }
    let ctx = &analytics.ctx;
    let stream = ctx
        .subjects
        .stream_name(redress_proto::subjects::Stream::Events);
    let consumer = subjects::events_consumer(IDENT.name);
    if let Ok(stream) = ctx.js.get_stream(&stream).await
        && stream.consumer_info(&consumer).await.is_ok()
    {
        tracing::warn!(
            consumer,
            "analytics schema is new: refolding the facts from the stream"
        );
        stream.delete_consumer(&consumer).await?;
    }
    sqlx::query(
        "INSERT INTO origin (started_at, handled_until) VALUES ($1, $1) ON CONFLICT DO NOTHING",
    )
    .bind(ctx.clock.now())
    .execute(db)
    .await?;
    Ok(())
}
