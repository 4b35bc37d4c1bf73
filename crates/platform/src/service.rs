//! What every service receives to run: its identity, configuration, connections, clock,
//! shutdown signal, health and counters.

use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream;
use redress_playbook::Playbooks;
use redress_proto::subjects::Subjects;

use crate::clock::SharedClock;
use crate::commands::CommandService;
use crate::config::Config;
use crate::events::{Filter, Handler};
use crate::health::{Health, Metrics};
use crate::shutdown::Shutdown;
use crate::unit::Store;

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
    /// People's public keys, to verify who signed a command.
    pub people: redress_client::people::Registry,
    /// Complaints' text keys, to open the text sealed on the event stream.
    pub text_keys: redress_client::sealed::TextKeys,
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
            people: redress_client::people::Registry::new(nats.clone(), &subjects),
            text_keys: redress_client::sealed::TextKeys::new(nats.clone(), &subjects),
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

/// A running service: its store and relay, its consumers, commands and side tasks, and the
/// one way they start, report ready and stop. A service's `run` declares what it consumes,
/// which commands it serves and what runs beside it, then calls [`Host::serve`].
pub struct Host {
    pub ctx: ServiceContext,
    ident: ServiceIdent,
    store: Store,
    relay: tokio::task::JoinHandle<()>,
    commands: Option<CommandService>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Host {
    /// Provisions (when configured to) and connects the service's schema, runs its
    /// migrations and starts its outbox relay; the service counts as not ready until
    /// [`Host::serve`].
    pub async fn open(
        ctx: ServiceContext,
        ident: ServiceIdent,
        migrator: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<Self> {
        ctx.health.register(ident.name);
        let pool = crate::db::connect(&ctx.config.settings.database, &ident).await?;
        crate::db::migrate(&pool, &ident, migrator).await?;
        let waker = crate::outbox::Waker::default();
        let relay = crate::telemetry::spawn(crate::outbox::run_relay(
            pool.clone(),
            ctx.nats.clone(),
            ctx.js.clone(),
            ident.schema.to_string(),
            waker.clone(),
            ctx.config.settings.outbox.clone(),
            ctx.metrics.clone(),
            ctx.shutdown.clone(),
        ));
        let store = Store::new(
            pool,
            ident.schema,
            ctx.subjects.clone(),
            waker,
            ctx.metrics.clone(),
            ctx.nats.server_info().max_payload,
        );
        Ok(Self {
            ctx,
            ident,
            store,
            relay,
            commands: None,
            tasks: Vec::new(),
        })
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Loads every playbook and records the version of `section` (this service's part of
    /// each) in the service's schema.
    pub async fn playbooks(&self, section: &str) -> anyhow::Result<Playbooks> {
        crate::playbooks::load(&self.ctx, &self.store.pool, section).await
    }

    /// Consumes the events `filter` names with `handler`.
    pub async fn consume<H: Handler>(
        &mut self,
        filter: Filter,
        handler: Arc<H>,
    ) -> anyhow::Result<()> {
        for (durable, subject) in filter.consumers(self.ident.name, &self.ctx.subjects) {
            let task = crate::events::spawn_consumer(
                &self.ctx,
                self.store.clone(),
                self.ident.name,
                &durable,
                subject,
                handler.clone(),
            )
            .await?;
            self.tasks.push(task);
        }
        Ok(())
    }

    /// The service's commands (a NATS service named after it, started on first use).
    pub async fn commands(&mut self, description: &str) -> anyhow::Result<&mut CommandService> {
        if self.commands.is_none() {
            self.commands = Some(
                CommandService::start(
                    &self.ctx,
                    self.ident.name,
                    env!("CARGO_PKG_VERSION"),
                    description,
                )
                .await?,
            );
        }
        Ok(self.commands.as_mut().expect("started above"))
    }

    /// Runs `task` beside the consumers (a timer, another stream's consumer) until it ends;
    /// it must end on the context's shutdown signal.
    pub fn beside<F>(&mut self, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.push(crate::telemetry::spawn(task));
    }

    /// Reports ready once the broker routes requests to every command endpoint, serves until
    /// the shutdown signal, then lets every part finish what it holds and closes the store.
    pub async fn serve(self) -> anyhow::Result<()> {
        let name = self.ident.name;
        if let Some(commands) = &self.commands {
            // Ready means reachable: the server must have our subscriptions before we say so.
            commands.reachable(&self.ctx.nats).await?;
        }
        self.ctx.health.set_ready(name, true);
        tracing::info!(service = name, "serving");
        self.ctx.shutdown.cancelled().await;
        self.ctx.health.set_ready(name, false);
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(service = name, error = %e, "a part stopped with an error")
                }
                Err(e) => tracing::warn!(service = name, error = %e, "a part panicked"),
            }
        }
        if let Some(commands) = self.commands {
            commands.stop().await;
        }
        let _ = self.relay.await;
        self.store.pool.close().await;
        Ok(())
    }
}
