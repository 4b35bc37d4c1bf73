//! Analytics: keeps a fact table per complaint and per handling round from every event, and
//! answers the key figures of any period and slice from them.
//!
//! Messages and where they are handled:
//! - Every event (one durable consumer on all of them): [`handlers::facts`], which folds
//!   what each event tells into the facts. Times keep the earliest told, states the most
//!   final, attributes the newest work version, so events read in any order, or twice,
//!   leave the same facts.
//! - `KpiQuery` as a request on `<root>.cmd.analytics.kpis`: [`handlers::kpis`].

pub mod domain;
pub mod handlers;

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
}

/// The playbooks, and the calendars in which their business time and days are counted.
pub struct Rules {
    pub playbooks: Playbooks,
    pub calendars: redress_calendar::CalendarSet,
}

impl Rules {
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
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
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
    });
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
            move |query, _| handlers::kpis::handle(analytics.clone(), query),
        )
        .await?;
    host.serve().await
}
