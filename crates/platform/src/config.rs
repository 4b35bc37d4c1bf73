//! Layered configuration: built-in defaults, then an optional TOML file, then `REDRESS_`
//! environment variables (`REDRESS_INTAKE__REPEAT_WINDOW_DAYS=30` sets `intake.repeat_window_days`;
//! the common `REDRESS_NATS_URL` and `REDRESS_DATABASE_URL` are accepted as they are).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub health: HealthSettings,
    pub consumer: ConsumerSettings,
    pub outbox: OutboxSettings,
    pub streams: StreamSettings,
    pub playbooks: PlaybookSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaybookSettings {
    /// Directory holding one sub-directory per playbook (`<dir>/<key>/playbook.toml`); none
    /// means the playbooks built into the binary.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NatsSettings {
    pub url: String,
    /// Subject root; see `redress_proto::subjects::Subjects`.
    pub root: String,
    /// How long to keep retrying the first connection before giving up.
    pub connect_timeout_secs: u64,
    /// Certificate (PEM) of the authority that signed the broker's TLS certificate. When
    /// set, the connection must be TLS (use a `tls://` URL for a broker that requires it).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A URL whose role may create roles and schemas: each service provisions its own role
    /// and schema with it, then connects as that role. Leave provisioning to operators by
    /// setting `provision = false` and giving each service its own URL in `urls`.
    pub url: SecretString,
    pub provision: bool,
    /// Secret from which each service role's password is derived; defaults to the password
    /// in `url`.
    pub role_secret: Option<SecretString>,
    /// Per-service URLs (keyed by service name), used as they are.
    #[serde(default)]
    pub urls: BTreeMap<String, SecretString>,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// A statement running longer is cancelled (its unit of work is retried).
    pub statement_timeout_ms: u64,
    /// A statement waiting longer for a lock is cancelled, so that a stuck transaction
    /// elsewhere cannot hold a service's work queue.
    pub lock_timeout_ms: u64,
    /// A session idle this long inside a transaction is ended by the server, releasing its
    /// locks (a process frozen between statements).
    pub idle_in_transaction_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    /// `RUST_LOG`-style filter; `RUST_LOG` itself wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthSettings {
    /// Address of the health/readiness/metrics endpoint; none means no endpoint.
    pub addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerSettings {
    pub ack_wait_secs: u64,
    pub max_deliver: i64,
    pub max_ack_pending: i64,
    /// Commands answered at once by one instance.
    pub concurrency: usize,
    /// Most messages one unit of work applies; a batch takes what has queued up, so under
    /// light load it is one message.
    pub batch_size: usize,
    /// Batches of one consumer applied at once by one instance.
    pub batches_in_flight: usize,
    /// How long a batch waits for more messages, from the moment nothing more is waiting
    /// after its first, before it is applied. Zero
    /// (the default) for every consumer on a complaint's path, which must never wait; a
    /// consumer nobody waits on (analytics) lingers so that it folds more per unit of work
    /// and takes the CPU in fewer, larger slices.
    #[serde(default)]
    pub linger_ms: u64,
    /// Delay before a message whose handling failed for a transient reason comes back; it
    /// doubles with each delivery up to `max_retry_delay_ms`.
    pub retry_delay_ms: u64,
    pub max_retry_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxSettings {
    /// Fallback poll when no NOTIFY arrives (lost connection, another instance's commit).
    pub poll_interval_ms: u64,
    pub batch_size: i64,
    pub inbox_retention_days: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamSettings {
    pub replicas: usize,
    /// Window in which the broker drops a publish whose Nats-Msg-Id it has seen.
    pub duplicate_window_secs: u64,
    pub notify_max_age_days: u64,
    pub dead_letter_max_age_days: u64,
    /// Submissions hold names and contacts in the clear; intake keeps them (encrypted) once
    /// registered, so the stream only needs to outlast an intake outage.
    pub submissions_max_age_days: u64,
    /// The event history: long enough for yearly analysis and for a new consumer to replay;
    /// archive before it ages out (README). 0 keeps events for ever.
    pub events_max_age_days: u64,
    /// A cap on the event history's size, oldest dropped first; -1 for none. Set it below
    /// the broker's storage, or a full disk stops every relay.
    pub events_max_bytes: i64,
}

fn defaults() -> serde_json::Value {
    serde_json::json!({
        "nats": { "url": "nats://127.0.0.1:4222", "root": "redress", "connect_timeout_secs": 60 },
        "database": {
            "url": "postgres://redress@127.0.0.1:5432/redress",
            "provision": true,
            "max_connections": 16,
            "acquire_timeout_secs": 30,
            "statement_timeout_ms": 30000,
            "lock_timeout_ms": 10000,
            "idle_in_transaction_timeout_ms": 60000,
        },
        "telemetry": { "format": "pretty", "filter": crate::telemetry::DEFAULT_FILTER },
        "health": { "addr": null },
        "consumer": {
            "ack_wait_secs": 30,
            "max_deliver": 100,
            "max_ack_pending": 2000,
            "concurrency": 64,
            "batch_size": 256,
            "batches_in_flight": 4,
            "linger_ms": 0,
            "retry_delay_ms": 1000,
            "max_retry_delay_ms": 30000,
        },
        "outbox": { "poll_interval_ms": 1000, "batch_size": 256, "inbox_retention_days": 14 },
        "playbooks": { "dir": null },
        "streams": {
            "replicas": 1,
            "duplicate_window_secs": 120,
            "notify_max_age_days": 7,
            "submissions_max_age_days": 30,
            "events_max_age_days": 400,
            "events_max_bytes": -1,
            "dead_letter_max_age_days": 30,
        },
    })
}

/// A configuration error (boxed: figment's error is large and travels up many frames).
pub type ConfigError = Box<figment::Error>;

/// The whole layered configuration: common settings plus each service's own section, which
/// a service extracts with [`Config::section`].
#[derive(Debug, Clone)]
pub struct Config {
    figment: Figment,
    pub settings: Settings,
}

impl Config {
    /// Defaults, then `file` (or `$REDRESS_CONFIG`, or `./redress.toml` when present), then
    /// the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file: PathBuf = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("REDRESS_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("redress.toml"));
        let figment = Figment::from(Serialized::defaults(defaults()))
            .merge(Toml::file(file))
            .merge(environment());
        Self::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings = figment.extract().map_err(Box::new)?;
        Ok(Self { figment, settings })
    }

    /// Built-in defaults with `overrides` on top (tests and the stack runner use this).
    pub fn with_overrides(overrides: impl Serialize) -> Result<Self, ConfigError> {
        Self::from_figment(
            Figment::from(Serialized::defaults(defaults())).merge(Serialized::defaults(overrides)),
        )
    }

    /// Layers more values on top of this configuration.
    pub fn merged(&self, overrides: impl Serialize) -> Result<Self, ConfigError> {
        Self::from_figment(self.figment.clone().merge(Serialized::defaults(overrides)))
    }

    /// A service's own section, e.g. `[intake]`; missing keys fall back to `T::default()`.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: Default + Serialize + for<'de> Deserialize<'de>,
    {
        Figment::from(Serialized::defaults(T::default()))
            .merge(Serialized::defaults(
                self.figment
                    .find_value(name)
                    .unwrap_or_else(|_| figment::value::Value::from(figment::value::Dict::new())),
            ))
            .extract()
            .map_err(Box::new)
    }
}

fn environment() -> Env {
    Env::prefixed("REDRESS_")
        .ignore(&["CONFIG"])
        // Keys reach the map as written in the environment (upper case); figment lowercases
        // them afterwards.
        .map(|key| match key.as_str().to_ascii_lowercase().as_str() {
            "nats_url" => "nats.url".into(),
            "nats_root" => "nats.root".into(),
            "database_url" => "database.url".into(),
            other => other.replace("__", ".").into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Section {
        window: u32,
        name: String,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn layers_apply_in_order_and_secrets_do_not_print() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "r.toml",
                "[nats]\nurl = \"nats://file:1\"\n[intake]\nwindow = 3\n",
            )?;
            jail.set_env("REDRESS_DATABASE_URL", "postgres://u:hunter2@h/db");
            jail.set_env("REDRESS_INTAKE__NAME", "from-env");
            let c = Config::load(Some(Path::new("r.toml"))).map_err(|e| *e)?;
            assert_eq!(c.settings.nats.url, "nats://file:1");
            assert_eq!(
                c.settings.database.url.expose_secret(),
                "postgres://u:hunter2@h/db"
            );
            assert!(!format!("{:?}", c.settings).contains("hunter2"));
            let s: Section = c.section("intake").map_err(|e| *e)?;
            assert_eq!(
                s,
                Section {
                    window: 3,
                    name: "from-env".into()
                }
            );
            let missing: Section = c.section("nope").map_err(|e| *e)?;
            assert_eq!(missing, Section::default());
            Ok(())
        });
    }
}
