//! What every service receives to run: its identity, configuration, connections, clock,
//! shutdown signal, health and counters.

use async_nats::jetstream;
use redress_proto::subjects::Subjects;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::health::{Health, Metrics};
use crate::shutdown::Shutdown;

/// A service's name (as on the command line and in `$SRV` discovery) and its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceIdent {
    pub name: &'static str,
    pub schema: &'static str,
}

#[derive(Clone)]
pub struct ServiceContext {
    pub config: Config,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub subjects: Subjects,
    pub clock: SharedClock,
    pub shutdown: Shutdown,
    pub health: Health,
    pub metrics: Metrics,
}

impl ServiceContext {
    /// Connects to NATS and makes sure the platform's streams exist.
    pub async fn connect(
        config: Config,
        process_name: &str,
        clock: SharedClock,
        shutdown: Shutdown,
        health: Health,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let nats = crate::nats::connect(&config.settings.nats, process_name).await?;
        let js = jetstream::new(nats.clone());
        let subjects = Subjects::new(config.settings.nats.root.clone());
        crate::nats::ensure_streams(&js, &subjects, &config.settings.streams).await?;
        health.watch_nats(nats.clone());
        Ok(Self {
            config,
            nats,
            js,
            subjects,
            clock,
            shutdown,
            health,
            metrics,
        })
    }
}

/// A service's database pool and its outbox relay, running.
pub struct Storage {
    pub pool: sqlx::PgPool,
    /// Wake the relay with it after committing outbox messages.
    pub outbox: crate::outbox::Waker,
    relay: tokio::task::JoinHandle<()>,
}

impl Storage {
    /// Provisions (when configured to) and connects the service's schema, runs its
    /// migrations and starts its outbox relay.
    pub async fn open(
        ctx: &ServiceContext,
        ident: &ServiceIdent,
        migrator: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<Self> {
        let pool = crate::db::connect(&ctx.config.settings.database, ident).await?;
        crate::db::migrate(&pool, ident, migrator).await?;
        let outbox = crate::outbox::Waker::default();
        let relay = tokio::spawn(crate::outbox::run_relay(
            pool.clone(),
            ctx.js.clone(),
            ident.schema.to_string(),
            outbox.clone(),
            ctx.config.settings.outbox.clone(),
            ctx.metrics.clone(),
            ctx.shutdown.clone(),
        ));
        Ok(Self {
            pool,
            outbox,
            relay,
        })
    }

    /// Waits for the relay to stop (after shutdown) and closes the pool.
    pub async fn close(self) {
        let _ = self.relay.await;
        self.pool.close().await;
    }
}

/// Runs a service whose message handlers are not written yet: its schema, role, migrations
/// and relay are real and it reports ready, but it consumes nothing.
pub async fn run_without_handlers(
    ctx: ServiceContext,
    ident: ServiceIdent,
    migrator: &sqlx::migrate::Migrator,
) -> anyhow::Result<()> {
    ctx.health.register(ident.name);
    let storage = Storage::open(&ctx, &ident, migrator).await?;
    ctx.health.set_ready(ident.name, true);
    tracing::info!(service = ident.name, "serving (no message handlers yet)");
    ctx.shutdown.cancelled().await;
    storage.close().await;
    Ok(())
}
