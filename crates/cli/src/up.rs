//! `redress up`: the whole stack in the foreground.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use redress_localstack::{Durability, NatsServer, NatsUser, PostgresServer, PostgresSpec};
use redress_platform::Config;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor};

use crate::discovery::{self, StackFile};

/// A user of the private broker beyond the stack's own, made by `redress creds issue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Department(String),
    Adapter(String),
    Service(String),
    Ops,
    Approvals,
    Surveys,
}

impl Role {
    /// The user's name on the broker.
    pub fn user(&self) -> String {
        match self {
            Role::Department(d) => format!("dept-{d}"),
            Role::Adapter(c) => format!("adapter-{c}"),
            Role::Service(s) => s.clone(),
            Role::Ops => "ops".into(),
            Role::Approvals => "approvals".into(),
            Role::Surveys => "surveys".into(),
        }
    }

    fn permissions(
        &self,
        subjects: &redress_proto::subjects::Subjects,
    ) -> redress_proto::access::Permissions {
        use redress_proto::access;
        match self {
            Role::Department(d) => access::department(subjects, d),
            Role::Adapter(c) => access::adapter(subjects, c),
            Role::Service(s) => access::service(subjects, s),
            Role::Ops => access::operations(subjects),
            Role::Approvals => access::approvals(subjects),
            Role::Surveys => access::surveys(subjects),
        }
    }
}

/// Secrets the local stack generates once and keeps in its data directory (mode 0600).
#[derive(Serialize, Deserialize)]
pub struct Secrets {
    postgres_password: String,
    role_secret: String,
    contact_key: String,
    /// Password of each user of the private broker, made on first use.
    #[serde(default)]
    nats_passwords: std::collections::BTreeMap<String, String>,
    /// Users issued by `redress creds issue`, by name.
    #[serde(default)]
    pub nats_issued: std::collections::BTreeMap<String, Role>,
}

fn random_hex(bytes: usize) -> String {
    let buf: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(buf)
}

impl Secrets {
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if let Ok(raw) = std::fs::read(path) {
            return serde_json::from_slice(&raw)
                .with_context(|| format!("{} is damaged", path.display()));
        }
        let s = Secrets {
            postgres_password: random_hex(16),
            role_secret: random_hex(32),
            contact_key: random_hex(32),
            nats_passwords: Default::default(),
            nats_issued: Default::default(),
        };
        s.save(path)?;
        Ok(s)
    }

    /// The contact key `redress up` generated for the stack in `data_dir`, if any.
    pub fn contact_key_of(data_dir: &Path) -> Option<String> {
        let raw = std::fs::read(data_dir.join("secrets.json")).ok()?;
        serde_json::from_slice::<Secrets>(&raw)
            .ok()
            .map(|s| s.contact_key)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    }
}

/// The users of the private broker, which admits no one else: `admin` (the CLI on this
/// machine: everything), `services` (all seven in one process), each service alone (for
/// `redress serve` elsewhere) and read-only `ops`. Each user's URL, credentials included, is
/// written to `credentials/<user>.url` (mode 0600).
pub fn broker_users(
    secrets: &mut Secrets,
    secrets_path: &Path,
    data_dir: &Path,
    root: &str,
) -> anyhow::Result<Vec<NatsUser>> {
    let subjects = redress_proto::subjects::Subjects::new(root);
    let mut wanted = redress_proto::access::standard_users(&subjects);
    for (name, role) in &secrets.nats_issued {
        if !wanted.iter().any(|(n, _)| n == name) {
            wanted.push((name.clone(), Some(role.permissions(&subjects))));
        }
    }
    secrets
        .nats_passwords
        .retain(|name, _| wanted.iter().any(|(n, _)| n == name));
    let mut changed = false;
    let mut users = Vec::new();
    for (name, permissions) in wanted {
        let password = secrets
            .nats_passwords
            .entry(name.clone())
            .or_insert_with(|| {
                changed = true;
                random_hex(24)
            })
            .clone();
        users.push(NatsUser {
            name,
            password,
            publish: permissions.as_ref().map(|p| p.publish.clone()),
            subscribe: permissions.map(|p| p.subscribe),
        });
    }
    if changed {
        secrets.save(secrets_path)?;
    }
    std::fs::create_dir_all(data_dir.join("credentials"))?;
    std::fs::set_permissions(
        data_dir.join("credentials"),
        std::fs::Permissions::from_mode(0o700),
    )?;
    Ok(users)
}

pub fn write_credentials(data_dir: &Path, users: &[NatsUser], port: u16) -> anyhow::Result<()> {
    for u in users {
        let path = data_dir.join("credentials").join(format!("{}.url", u.name));
        std::fs::write(&path, format!("{}\n", u.url(port)))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
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

/// A private stack's servers and the configuration its services run with, started by
/// `redress up` and by `redress playbook simulate`.
pub struct Stack {
    pub config: Config,
    pub data_dir: std::path::PathBuf,
    /// The URL the command line and other tools use (the broker's admin).
    pub cli_nats_url: String,
    /// The stack database as its superuser sees it, when the stack started it.
    pub database_url: Option<String>,
    nats_server: Option<NatsServer>,
    pg_server: Option<PostgresServer>,
}

impl Stack {
    /// Stops the servers the stack started (the services first, by whoever ran them).
    pub fn stop(self) {
        discovery::remove(&self.data_dir);
        if let Some(mut pg) = self.pg_server {
            pg.stop();
        }
        if let Some(mut nats) = self.nats_server {
            nats.stop();
        }
    }
}

pub async fn run(
    config_file: Option<&Path>,
    data_dir: &Path,
    only: &[String],
    durable: bool,
    playbooks: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let base = crate::services::with_playbooks(Config::load(config_file)?, playbooks)?;
    let _telemetry = redress_platform::telemetry::init("redress", &base.settings.telemetry)?;
    let shutdown = redress_platform::shutdown::on_signals();
    let stack = start(base, data_dir, durable, true, false).await?;
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
    let result = crate::services::run_services(
        stack.config.clone(),
        &names,
        shutdown,
        redress_platform::clock::system(),
        true,
    )
    .await;
    // Services are down; now the servers they used, cleanly.
    stack.stop();
    println!("stopped");
    result
}

/// Starts the servers `base` does not name (a private nats-server and PostgreSQL in
/// `data_dir`; with `private`, both whatever REDRESS_NATS_URL and REDRESS_DATABASE_URL say),
/// provisions the services' roles and issues the playbooks' people their keys; `announce`
/// prints what was started where.
pub async fn start(
    base: Config,
    data_dir: &Path,
    durable: bool,
    announce: bool,
    private: bool,
) -> anyhow::Result<Stack> {
    let env_set = |name: &str| !private && env_set(name);
    macro_rules! say {
        ($($t:tt)*) => { if announce { println!($($t)*); } };
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("create data directory {}", data_dir.display()))?;
    let data_dir = std::fs::canonicalize(data_dir)?;
    let secrets_path = data_dir.join("secrets.json");
    let mut secrets = Secrets::load_or_create(&secrets_path)?;

    let mut nats_server = None;
    // The services' URL and the CLI's (the same unless the private broker has users).
    let (nats_url, cli_nats_url) = if env_set("REDRESS_NATS_URL") {
        say!(
            "nats: {} (from REDRESS_NATS_URL)",
            redress_client::redacted(&base.settings.nats.url)
        );
        (
            base.settings.nats.url.clone(),
            base.settings.nats.url.clone(),
        )
    } else {
        let stack: StackSettings = base.section("stack")?;
        let durability = if durable || stack.durable_broker {
            Durability::SyncAlways
        } else {
            Durability::Default
        };
        let users = broker_users(
            &mut secrets,
            &secrets_path,
            &data_dir,
            &base.settings.nats.root,
        )?;
        let server =
            NatsServer::start_secured(&data_dir.join("nats"), None, durability, users.clone())
                .await?;
        write_credentials(&data_dir, &users, server.port())?;
        let url = server.url();
        let version = redress_localstack::version_of(server.binary())
            .map(|(a, b)| format!("{a}.{b}"))
            .unwrap_or_default();
        say!(
            "nats: {url} (nats-server {version} at {}, pid {}, {}, data in {})",
            server.binary().display(),
            server.pid().unwrap_or(0),
            match durability {
                Durability::SyncAlways => "fsync before every acknowledgement",
                Durability::Default => "fsync every 2 minutes",
            },
            data_dir.join("nats").display()
        );
        say!(
            "nats: anonymous connections refused; each user's URL is in {}",
            data_dir.join("credentials").display()
        );
        let url_of = |name: &str| {
            users
                .iter()
                .find(|u| u.name == name)
                .map(|u| u.url(server.port()))
                .expect("made above")
        };
        let urls = (url_of("services"), url_of("admin"));
        nats_server = Some(server);
        urls
    };

    let mut pg_server = None;
    let database_url = if env_set("REDRESS_DATABASE_URL") {
        say!("postgres: from REDRESS_DATABASE_URL");
        None
    } else {
        let server = PostgresServer::start(PostgresSpec {
            data_dir: data_dir.join("postgres"),
            port: None,
            superuser: "redress".into(),
            password: secrets.postgres_password.clone(),
            durable: true,
            tls: None,
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
        say!(
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
        crate::services::provision(&config, &crate::services::NAMES.map(String::from), announce)
            .await?;
    }
    let config = config.merged(serde_json::json!({ "database": { "provision": false } }))?;

    discovery::write(
        &data_dir,
        &StackFile {
            nats_url: cli_nats_url.clone(),
            root: config.settings.nats.root.clone(),
            pid: std::process::id(),
            database_url: database_url.clone(),
        },
    )?;
    // People sign what they do; the first start of a data directory issues a key to each
    // person the playbooks name (people/<name>.key), so that the stack can be tried at once.
    let admin = redress_client::Client::connect(&cli_nats_url, &config.settings.nats.root).await?;
    let playbooks = match &config.settings.playbooks.dir {
        Some(dir) => redress_playbook::Playbooks::load_dir(dir)?,
        None => redress_playbook::Playbooks::builtin()?,
    };
    let issued = crate::people::issue_missing(&admin, &data_dir, &playbooks).await?;
    if issued > 0 {
        say!(
            "people: issued {issued} keys into {} (`redress people issue|revoke NAME`)",
            crate::people::dir(&data_dir).display()
        );
    }
    Ok(Stack {
        config,
        data_dir,
        cli_nats_url,
        database_url,
        nats_server,
        pg_server,
    })
}
