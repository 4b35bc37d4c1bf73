//! The integration-test harness. Each test gets its own broker namespace (a subject root of
//! its own) and its own database, on a nats-server and PostgreSQL that the test starts on free
//! ports, unless `REDRESS_TEST_NATS_URL` / `REDRESS_TEST_DATABASE_URL` name existing servers.
//! A test that owns its servers can kill and restart them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

pub use redress_localstack::{Durability, find_server};
use redress_localstack::{NatsServer, PostgresServer, PostgresSpec};
use redress_platform::Config;
use sqlx::{Connection, Executor};

const PG_SUPERUSER: &str = "redress";
const PG_PASSWORD: &str = "redress-test";
/// 32 bytes of hex: the contact-encryption key of test deployments.
/// Intake refuses it unless `intake.allow_test_key` is set, as the harness does.
pub const TEST_CONTACT_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct TestEnv {
    pub root: String,
    /// The test's own administrator (everything allowed).
    nats_url: String,
    /// Per-service and operations URLs of the test's own broker, which admits no one else;
    /// empty on a shared broker (`REDRESS_TEST_NATS_URL`).
    nats_users: std::collections::HashMap<String, String>,
    nats_anonymous_url: Option<String>,
    database_url: String,
    pub nats: Option<NatsServer>,
    pub postgres: Option<PostgresServer>,
    dir: tempfile::TempDir,
    /// Settings merged over the test defaults, e.g. `{"sla": {"tick_ms": 50}}`.
    pub extra_config: serde_json::Value,
    /// A registered key for everyone the shipped playbooks name.
    keyring: redress_client::people::Keyring,
}

/// Logs of tests go to the test's output (shown on failure), filtered by `RUST_LOG`.
pub fn init_test_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let settings = redress_platform::config::TelemetrySettings {
            format: redress_platform::config::LogFormat::Pretty,
            filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        };
        if let Ok((sub, guard)) =
            redress_platform::telemetry::get_subscriber("redress-test", &settings)
        {
            let _ = redress_platform::telemetry::init_subscriber(sub);
            std::mem::forget(guard);
        }
    });
}

fn template_dir() -> anyhow::Result<PathBuf> {
    // One initdb per machine and PostgreSQL version; every test copies it (much faster).
    let dir = std::env::temp_dir().join(format!("redress-pg-template-{}", current_uid()));
    let data = dir.join("data");
    // Tests of one binary run on threads of one process; other processes are kept apart by
    // the staging directory's process id.
    static TEMPLATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if !data.join("PG_VERSION").is_file() {
        std::fs::create_dir_all(&dir)?;
        PostgresServer::initialise(PostgresSpec {
            data_dir: data.clone(),
            port: None,
            superuser: PG_SUPERUSER.into(),
            password: PG_PASSWORD.into(),
            durable: false,
            tls: None,
        })?;
    }
    Ok(data)
}

/// The users of a test's broker: an administrator, each service with its production
/// permissions, and read-only operations.
fn test_users(subjects: &redress_proto::subjects::Subjects) -> Vec<redress_localstack::NatsUser> {
    use redress_proto::access;
    let mut roles = access::standard_users(subjects);
    // A department system, a channel adapter and the tools, as `redress creds issue` makes.
    roles.extend([
        (
            "dept-logistics".to_string(),
            Some(access::department(subjects, "logistics")),
        ),
        (
            "adapter-web".to_string(),
            Some(access::adapter(subjects, "web")),
        ),
        ("approvals".to_string(), Some(access::approvals(subjects))),
        ("surveys".to_string(), Some(access::surveys(subjects))),
    ]);
    let users: Vec<redress_localstack::NatsUser> = roles
        .into_iter()
        .map(|(name, permissions)| redress_localstack::NatsUser {
            name,
            password: uuid::Uuid::new_v4().simple().to_string(),
            publish: permissions.as_ref().map(|p| p.publish.clone()),
            subscribe: permissions.map(|p| p.subscribe),
        })
        .collect();
    users
}

fn current_uid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    // `cp -a` keeps owners and modes, which the server's account needs.
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    anyhow::ensure!(status.success(), "copying the cluster template failed");
    Ok(())
}

fn with_database(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => format!("{url}/{db}"),
    }
}

/// A fresh database named after `id`: on the server `REDRESS_TEST_DATABASE_URL` names, or
/// on a PostgreSQL of its own in `dir` (returned, so that it lives as long as the caller
/// keeps it). Returns its URL too, as a role that may create roles and schemas.
async fn start_database(dir: &Path, id: &str) -> anyhow::Result<(Option<PostgresServer>, String)> {
    let db_name = format!("redress_{}", &id[..16]);
    let (postgres, server_url) = match std::env::var("REDRESS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            let template = template_dir()?;
            let data = dir.join("pg");
            copy_dir(&template, &data)?;
            let server = PostgresServer::start(PostgresSpec {
                data_dir: data,
                port: None,
                superuser: PG_SUPERUSER.into(),
                password: PG_PASSWORD.into(),
                durable: false,
                tls: None,
            })
            .await?;
            let url = server.url("postgres");
            (Some(server), url)
        }
    };
    let mut admin = sqlx::PgConnection::connect(&server_url).await?;
    admin
        .execute(format!("CREATE DATABASE {db_name}").as_str())
        .await?;
    let _ = admin.close().await;
    Ok((postgres, with_database(&server_url, &db_name)))
}

/// A database alone, without a broker: for benchmarks and tests of a service's storage.
/// PostgreSQL is started (and stopped when this is dropped) as [`TestEnv`] starts it.
pub struct TestDatabase {
    pub postgres: Option<PostgresServer>,
    url: String,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn start() -> anyhow::Result<Self> {
        init_test_tracing();
        let dir = tempfile::Builder::new().prefix("redress-test-").tempdir()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (postgres, url) = start_database(dir.path(), &id).await?;
        Ok(Self {
            postgres,
            url,
            _dir: dir,
        })
    }

    /// URL of a role that may create roles and schemas, on this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The settings a service connects to this database with: as in [`TestEnv::config`], with
    /// the default pool.
    pub fn config(&self) -> Config {
        Config::with_overrides(serde_json::json!({
            "database": {
                "url": self.url,
                "role_secret": "test-role-secret",
            },
            "playbooks": { "dir": playbooks_dir() },
        }))
        .expect("test config is valid")
    }
}

impl TestEnv {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Durability::Default).await
    }

    /// Like [`TestEnv::start`], with the test's own broker kept as `durability` says (a
    /// `SyncAlways` broker needs nats-server 2.10+; see [`redress_localstack::find_server`]).
    pub async fn start_with(durability: Durability) -> anyhow::Result<Self> {
        init_test_tracing();
        let dir = tempfile::Builder::new().prefix("redress-test-").tempdir()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let root = format!("t{}", &id[..12]);

        let mut nats_users = std::collections::HashMap::new();
        let mut nats_anonymous_url = None;
        let (nats, nats_url) = match std::env::var("REDRESS_TEST_NATS_URL") {
            Ok(url) if !url.is_empty() => (None, url),
            _ => {
                // The broker admits only these users, each with the permissions it would
                // have in production, so every test also proves the permissions suffice.
                let subjects = redress_proto::subjects::Subjects::new(root.clone());
                let users = test_users(&subjects);
                // A free port may be taken by another test's broker before ours binds it;
                // ours then does not come up, and another port is tried.
                let mut attempt = 0;
                let (server, port) = loop {
                    attempt += 1;
                    let port = redress_localstack::free_port()?;
                    match NatsServer::start_secured(
                        &dir.path().join(format!("nats-{attempt}")),
                        Some(port),
                        durability,
                        users.clone(),
                    )
                    .await
                    {
                        Ok(server) => break (server, port),
                        Err(e) if attempt < 3 => {
                            tracing::warn!(error = %e, port, "test broker did not start; another port");
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                for u in &users {
                    nats_users.insert(u.name.clone(), u.url(port));
                }
                nats_anonymous_url = Some(server.url());
                (Some(server), nats_users["admin"].clone())
            }
        };

        let (postgres, database_url) = start_database(dir.path(), &id).await?;
        let keyring = register_people(&nats_url, &root).await?;
        // Where the CLI run in the test's directory finds them, as after `redress up`.
        let people_dir = dir.path().join(".redress").join("people");
        std::fs::create_dir_all(&people_dir)?;
        for key in keyring.iter() {
            std::fs::write(
                people_dir.join(format!("{}.key", key.name())),
                key.to_file_text(),
            )?;
        }
        Ok(Self {
            keyring,
            root,
            nats_url,
            nats_users,
            nats_anonymous_url,
            database_url,
            nats,
            postgres,
            dir,
            extra_config: serde_json::json!({}),
        })
    }

    /// The broker as this test's administrator, who may do anything.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// The broker as `user` would connect (`intake`, `routing`, …, `ops`); the
    /// administrator's for a name without a user of its own or on a shared broker.
    pub fn nats_url_for(&self, user: &str) -> &str {
        self.nats_users
            .get(user)
            .map(String::as_str)
            .unwrap_or(&self.nats_url)
    }

    /// The broker's address without credentials (only on the test's own broker).
    pub fn nats_anonymous_url(&self) -> Option<&str> {
        self.nats_anonymous_url.as_deref()
    }

    /// URL of a role that may create roles and schemas, on this test's database.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The settings a service of this test runs with: this test's broker namespace and
    /// database, short timeouts, and the test contact key.
    pub fn config_values(&self) -> serde_json::Value {
        serde_json::json!({
            "nats": { "url": self.nats_url, "root": self.root, "connect_timeout_secs": 30 },
            "database": {
                "url": self.database_url,
                "role_secret": "test-role-secret",
                "max_connections": 8,
            },
            "consumer": { "ack_wait_secs": 5, "retry_delay_ms": 200 },
            "outbox": { "poll_interval_ms": 200 },
            "intake": { "contact_key": TEST_CONTACT_KEY, "allow_test_key": true },
            "playbooks": { "dir": playbooks_dir() },
        })
    }

    pub fn config(&self) -> Config {
        let mut values = self.config_values();
        merge(&mut values, &self.extra_config);
        Config::with_overrides(values).expect("test config is valid")
    }

    /// The same settings as environment variables, for services run as separate processes.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            ("REDRESS_NATS_URL".into(), self.nats_url.clone()),
            ("REDRESS_NATS__ROOT".into(), self.root.clone()),
            ("REDRESS_DATABASE_URL".into(), self.database_url.clone()),
            (
                "REDRESS_DATABASE__ROLE_SECRET".into(),
                "test-role-secret".into(),
            ),
            ("REDRESS_DATABASE__MAX_CONNECTIONS".into(), "8".into()),
            ("REDRESS_CONSUMER__ACK_WAIT_SECS".into(), "5".into()),
            ("REDRESS_CONSUMER__RETRY_DELAY_MS".into(), "200".into()),
            ("REDRESS_OUTBOX__POLL_INTERVAL_MS".into(), "200".into()),
            (
                "REDRESS_INTAKE__CONTACT_KEY".into(),
                TEST_CONTACT_KEY.into(),
            ),
            ("REDRESS_INTAKE__ALLOW_TEST_KEY".into(), "true".into()),
            ("REDRESS_PLAYBOOKS__DIR".into(), playbooks_dir()),
        ]
    }

    /// Keys of everyone the shipped playbooks name, registered with the test's broker.
    pub fn keyring(&self) -> &redress_client::people::Keyring {
        &self.keyring
    }

    /// Headers that sign `payload` on `subject` as `person` (who must be in the keyring).
    pub fn signed(&self, person: &str, subject: &str, payload: &[u8]) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        self.keyring
            .get(person)
            .unwrap_or_else(|| panic!("no test key for {person}"))
            .sign(subject, payload, &mut h);
        h
    }

    /// Sends `payload` to `subject` as a request signed by `person`, or unsigned when the
    /// keyring has no key for them (which the services refuse).
    pub async fn request_as(
        &self,
        person: &str,
        subject: String,
        payload: Vec<u8>,
    ) -> anyhow::Result<async_nats::Message> {
        let mut h = async_nats::HeaderMap::new();
        if let Some(key) = self.keyring.get(person) {
            key.sign(&subject, &payload, &mut h);
        }
        let nats = self.nats_client().await?;
        Ok(nats
            .request_with_headers(subject, h, payload.into())
            .await?)
    }

    /// The token of the latest survey invitation sent for `ticket` on `channel`, as the
    /// channel's adapter received it.
    pub async fn survey_token(&self, channel: &str, ticket: &str) -> anyhow::Result<String> {
        use redress_client::notifications::Notification;
        self.client()
            .await?
            .notifications(channel)
            .await?
            .into_iter()
            .filter_map(|n| match n {
                Notification::Survey(s) if s.ticket == ticket => Some(s.token),
                _ => None,
            })
            .next_back()
            .ok_or_else(|| anyhow::anyhow!("no survey was sent for {ticket} on {channel}"))
    }

    /// The SDK as this test's administrator, signing as any person of the playbooks.
    pub async fn client(&self) -> anyhow::Result<redress_client::Client> {
        Ok(redress_client::Client::connect(&self.nats_url, &self.root)
            .await?
            .with_keyring(self.keyring.clone()))
    }

    pub async fn nats_client(&self) -> anyhow::Result<async_nats::Client> {
        Ok(redress_client::connect_options(&self.nats_url)
            .max_reconnects(None)
            .connect(self.nats_url.as_str())
            .await?)
    }

    /// A superuser pool on this test's database, for assertions.
    pub async fn admin_pool(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.database_url)
            .await?)
    }

    fn own_nats(&mut self) -> &mut NatsServer {
        self.nats
            .as_mut()
            .expect("this test needs its own nats-server; unset REDRESS_TEST_NATS_URL")
    }

    fn own_postgres(&mut self) -> &mut PostgresServer {
        self.postgres
            .as_mut()
            .expect("this test needs its own PostgreSQL; unset REDRESS_TEST_DATABASE_URL")
    }

    /// kill -9 of the broker.
    pub fn kill_nats(&mut self) {
        self.own_nats().kill();
    }

    /// Starts the broker again on the same port and store; stops it cleanly first if it runs.
    pub async fn restart_nats(&mut self) -> anyhow::Result<()> {
        Ok(self.own_nats().restart().await?)
    }

    /// kill -9 of the postmaster.
    pub fn kill_postgres(&mut self) {
        self.own_postgres().kill();
    }

    pub async fn restart_postgres(&mut self) -> anyhow::Result<()> {
        Ok(self.own_postgres().restart().await?)
    }
}

/// A service running inside the test process.
pub struct RunningService {
    pub shutdown: redress_platform::Shutdown,
    pub metrics: redress_platform::health::Metrics,
    pub health: redress_platform::health::Health,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Asks the service to stop and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.await?
    }
}

impl TestEnv {
    /// Starts a service with this test's configuration and waits until it is serving.
    pub async fn start_service<F, Fut>(
        &self,
        name: &str,
        clock: redress_platform::SharedClock,
        run: F,
    ) -> anyhow::Result<RunningService>
    where
        F: FnOnce(redress_platform::ServiceContext) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let health = redress_platform::health::Health::default();
        let metrics = redress_platform::health::Metrics::default();
        let shutdown = redress_platform::Shutdown::new();
        health.register(name);
        let config = self
            .config()
            .merged(serde_json::json!({ "nats": { "url": self.nats_url_for(name) } }))?;
        let ctx = redress_platform::ServiceContext::connect(
            config,
            name,
            clock,
            shutdown.clone(),
            health.clone(),
            metrics.clone(),
        )
        .await?;
        let mut handle = tokio::spawn(run(ctx));
        tokio::select! {
            _ = health.wait_ready() => {}
            r = &mut handle => {
                r??;
                anyhow::bail!("{name} stopped before it was ready");
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {
                anyhow::bail!("{name} not ready after 60 s");
            }
        }
        Ok(RunningService {
            shutdown,
            metrics,
            health,
            handle,
        })
    }
}

impl TestEnv {
    /// Every message stored on `subject` in `stream` of this test's namespace, in order (read
    /// with a throwaway consumer, so the services' consumers are untouched).
    pub async fn stream_messages(
        &self,
        stream: redress_proto::subjects::Stream,
        subject: String,
    ) -> anyhow::Result<Vec<async_nats::jetstream::Message>> {
        let name = redress_proto::subjects::Subjects::new(self.root.clone()).stream_name(stream);
        self.stream_messages_of(&name, subject).await
    }

    /// Every message the stream named `stream` holds on `subject`, in order.
    pub async fn stream_messages_of(
        &self,
        stream: &str,
        subject: String,
    ) -> anyhow::Result<Vec<async_nats::jetstream::Message>> {
        use futures::StreamExt;
        let js = async_nats::jetstream::new(self.nats_client().await?);
        let s = js.get_stream(stream).await?;
        let consumer = s
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                filter_subject: subject,
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await?;
        let mut left = consumer.clone().info().await?.num_pending as usize;
        let mut out = Vec::new();
        while left > 0 {
            let batch: Vec<_> = consumer
                .fetch()
                .max_messages(left.min(500))
                .expires(std::time::Duration::from_secs(2))
                .messages()
                .await?
                .filter_map(|m| async move { m.ok() })
                .collect()
                .await;
            if batch.is_empty() {
                break;
            }
            left -= batch.len();
            out.extend(batch);
        }
        Ok(out)
    }
}

/// A key for each person of the shipped playbooks, registered in the test's people bucket
/// as `redress people issue` does.
async fn register_people(
    nats_url: &str,
    root: &str,
) -> anyhow::Result<redress_client::people::Keyring> {
    let playbooks = redress_playbook::Playbooks::load_dir(Path::new(&playbooks_dir()))?;
    let client = redress_client::Client::connect(nats_url, root).await?;
    let mut keyring = redress_client::people::Keyring::default();
    let people: std::collections::BTreeSet<String> =
        playbooks.iter().flat_map(|p| p.people()).collect();
    for person in people {
        let key = redress_client::people::PersonKey::generate(&person)?;
        client.register_person(&key).await?;
        keyring.insert(key);
    }
    Ok(keyring)
}

/// The playbooks shipped in the repository, whichever crate's test is running.
pub fn playbooks_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../playbooks").to_string()
}

fn merge(into: &mut serde_json::Value, from: &serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after `timeout`.
/// (Waiting for asynchronous work to land, never for time to pass: tests move the clock.)
pub async fn eventually<F, Fut>(what: &str, timeout: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

impl TestEnv {
    /// Publishes an event envelope to this test's events stream as a service would (with
    /// `Nats-Msg-Id` = event id), waiting for the broker to store it.
    pub async fn publish_event(
        &self,
        subject: String,
        envelope: &redress_proto::v1::Envelope,
    ) -> anyhow::Result<()> {
        use redress_proto::Message as _;
        let js = async_nats::jetstream::new(self.nats_client().await?);
        // Tests may play an upstream service before any service has created the streams.
        redress_platform::nats::ensure_streams(
            &js,
            &self.subjects(),
            &self.config().settings.streams,
        )
        .await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            redress_proto::subjects::headers::MSG_ID,
            envelope.event_id.as_str(),
        );
        js.publish_with_headers(subject, headers, envelope.encode_to_vec().into())
            .await?
            .await?;
        Ok(())
    }

    /// Writes `complaint_id`'s text key into the text-key bucket (made if missing), as
    /// intake's relay does, waiting for the broker to store it.
    pub async fn put_text_key(
        &self,
        complaint_id: uuid::Uuid,
        key: [u8; 32],
    ) -> anyhow::Result<()> {
        let subjects = self.subjects();
        let js = async_nats::jetstream::new(self.nats_client().await?);
        js.get_or_create_stream(redress_client::sealed::bucket_stream(
            &subjects.text_keys_bucket(),
        ))
        .await?;
        js.publish(
            subjects.text_key(&complaint_id.to_string()),
            key.to_vec().into(),
        )
        .await?
        .await?;
        Ok(())
    }

    /// The decoded envelopes stored on `subject` of the events stream, in order.
    pub async fn events(
        &self,
        subject: String,
    ) -> anyhow::Result<Vec<redress_proto::v1::Envelope>> {
        use redress_proto::Message as _;
        self.stream_messages(redress_proto::subjects::Stream::Events, subject)
            .await?
            .into_iter()
            .map(|m| Ok(redress_proto::v1::Envelope::decode(m.payload.clone())?))
            .collect()
    }

    /// The subjects of this test's namespace.
    pub fn subjects(&self) -> redress_proto::subjects::Subjects {
        redress_proto::subjects::Subjects::new(self.root.clone())
    }
}
