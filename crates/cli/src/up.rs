//! `redress up`: the whole stack in the foreground.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use redress_localstack::{Durability, NatsServer, PostgresServer, PostgresSpec};
use redress_platform::Config;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor};

use crate::discovery::{self, StackFile};

/// Secrets the local stack generates once and keeps in its data directory (mode 0600).
#[derive(Serialize, Deserialize)]
struct Secrets {
    postgres_password: String,
    role_secret: String,
    contact_key: String,
}

fn random_hex(bytes: usize) -> String {
    let buf: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(buf)
}

impl Secrets {
    fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if let Ok(raw) = std::fs::read(path) {
            return serde_json::from_slice(&raw)
                .with_context(|| format!("{} is damaged", path.display()));
        }
        let s = Secrets {
            postgres_password: random_hex(16),
            role_secret: random_hex(32),
            contact_key: random_hex(32),
        };
        std::fs::write(path, serde_json::to_vec_pretty(&s)?)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(s)
    }
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty())
}

/// The `[stack]` section: how `redress up` runs its private servers.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StackSettings {
    /// Run the private nats-server with `sync_interval: always` (fsync before every
    /// acknowledgement; needs nats-server 2.10+). `redress up --durable` sets it too.
    pub durable_broker: bool,
}

pub async fn run(
    config_file: Option<&Path>,
    data_dir: &Path,
    only: &[String],
    durable: bool,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("create data directory {}", data_dir.display()))?;
    let data_dir = std::fs::canonicalize(data_dir)?;
    let secrets = Secrets::load_or_create(&data_dir.join("secrets.json"))?;
    let base = Config::load(config_file)?;
    let _telemetry = redress_platform::telemetry::init("redress", &base.settings.telemetry)?;
    let shutdown = redress_platform::shutdown::on_signals();

    let mut nats_server = None;
    let nats_url = if env_set("REDRESS_NATS_URL") {
        println!("nats: {} (from REDRESS_NATS_URL)", base.settings.nats.url);
        base.settings.nats.url.clone()
    } else {
        let stack: StackSettings = base.section("stack")?;
        let durability = if durable || stack.durable_broker {
            Durability::SyncAlways
        } else {
            Durability::Default
        };
        let server = NatsServer::start_with(&data_dir.join("nats"), None, durability).await?;
        let url = server.url();
        let version = redress_localstack::version_of(server.binary())
            .map(|(a, b)| format!("{a}.{b}"))
            .unwrap_or_default();
        println!(
            "nats: {url} (nats-server {version} at {}, pid {}, {}, data in {})",
            server.binary().display(),
            server.pid().unwrap_or(0),
            match durability {
                Durability::SyncAlways => "fsync before every acknowledgement",
                Durability::Default => "fsync every 2 minutes",
            },
            data_dir.join("nats").display()
        );
        nats_server = Some(server);
        url
    };

    let mut pg_server = None;
    let database_url = if env_set("REDRESS_DATABASE_URL") {
        println!("postgres: from REDRESS_DATABASE_URL");
        None
    } else {
        let server = PostgresServer::start(PostgresSpec {
            data_dir: data_dir.join("postgres"),
            port: None,
            superuser: "redress".into(),
            password: secrets.postgres_password.clone(),
            durable: true,
        })
        .await?;
        let mut admin = sqlx::PgConnection::connect(&server.url("postgres")).await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'redress')",
        )
        .fetch_one(&mut admin)
        .await?;
        if !exists {
            admin.execute("CREATE DATABASE redress").await?;
        }
        let _ = admin.close().await;
        println!(
            "postgres: 127.0.0.1:{} database redress (pid {}, data in {})",
            server.port(),
            server.pid().unwrap_or(0),
            data_dir.join("postgres").display()
        );
        let url = server.url("redress");
        pg_server = Some(server);
        Some(url)
    };

    let mut overrides = serde_json::json!({
        "nats": { "url": nats_url },
        "database": { "role_secret": secrets.role_secret },
    });
    if let Some(url) = &database_url {
        overrides["database"]["url"] = url.clone().into();
    }
    let intake: redress_intake::IntakeSettings = base.section("intake")?;
    if intake.contact_key.is_none() {
        overrides["intake"] = serde_json::json!({ "contact_key": secrets.contact_key });
    }
    if base.settings.health.addr.is_none() {
        overrides["health"] = serde_json::json!({ "addr": "127.0.0.1:0" });
    }
    let config = base.merged(overrides)?;
    // Provisioning is its own step, with the administrator's URL; the services then run as
    // their own roles and do not provision.
    if config.settings.database.provision {
        crate::services::provision(&config, &crate::services::NAMES.map(String::from)).await?;
    }
    let config = config.merged(serde_json::json!({ "database": { "provision": false } }))?;

    discovery::write(
        &data_dir,
        &StackFile {
            nats_url: nats_url.clone(),
            root: config.settings.nats.root.clone(),
            pid: std::process::id(),
            database_url: database_url.clone(),
        },
    )?;
    let names: Vec<String> = if only.is_empty() {
        crate::services::NAMES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        let mut names = only.to_vec();
        names.dedup();
        names
    };
    let result = crate::services::run_services(config, &names, shutdown).await;
    discovery::remove(&data_dir);
    // Services are down; now the servers they used, cleanly.
    if let Some(mut pg) = pg_server {
        pg.stop();
    }
    if let Some(mut nats) = nats_server {
        nats.stop();
    }
    println!("stopped");
    result
}
