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
