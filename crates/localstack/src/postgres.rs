use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::Signal;
use sqlx::Connection;

use crate::LocalStackError;
use crate::process::{find_binary, spawn, stop_child, wait_for_port};

/// How to run a private PostgreSQL cluster.
#[derive(Debug, Clone)]
pub struct PostgresSpec {
    /// The cluster's data directory (created by initdb when it holds no cluster yet).
    pub data_dir: PathBuf,
    pub port: Option<u16>,
    pub superuser: String,
    pub password: String,
    /// Off only for throwaway test clusters: skips fsync, which a process crash does not need
    /// but a machine crash does.
    pub durable: bool,
    /// When set, the server speaks TLS with this certificate and admits TCP clients only
    /// over TLS (`hostssl` in pg_hba.conf).
    pub tls: Option<crate::TlsFiles>,
}

/// A PostgreSQL server this process started. PostgreSQL refuses to run as root, so when we
/// are root it runs as the unprivileged `postgres` account.
pub struct PostgresServer {
    spec: PostgresSpec,
    bin_dir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

fn bin_dir() -> Result<PathBuf, LocalStackError> {
    if let Some(dir) = std::env::var_os("REDRESS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    // Debian keeps the server binaries per major version, off PATH; prefer the newest.
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").is_file())
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versioned.pop() {
        return Ok(dir);
    }
    find_binary("initdb", &[])
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or(LocalStackError::BinaryMissing(
            "PostgreSQL (initdb, postgres)",
            "REDRESS_DATABASE_URL",
        ))
}

fn unprivileged_user() -> Result<Option<(u32, u32)>, LocalStackError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let name = std::env::var("REDRESS_PG_USER").unwrap_or_else(|_| "postgres".into());
    match nix::unistd::User::from_name(&name) {
        Ok(Some(u)) => Ok(Some((u.uid.as_raw(), u.gid.as_raw()))),
        _ => Err(LocalStackError::Other(format!(
            "PostgreSQL will not run as root and there is no '{name}' account to run it as; \
             create one, set REDRESS_PG_USER, or set REDRESS_DATABASE_URL"
        ))),
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

impl PostgresServer {
    /// Initialises the cluster if needed, then starts it.
    pub async fn start(spec: PostgresSpec) -> Result<Self, LocalStackError> {
        let bin_dir = bin_dir()?;
        let run_as = unprivileged_user()?;
        let port = match spec.port {
            Some(p) => p,
            None => crate::free_port()?,
        };
        let mut server = Self {
            spec,
            bin_dir,
            port,
            run_as,
            child: None,
        };
        server.init()?;
        server.launch().await?;
        Ok(server)
    }

    fn log_path(&self) -> PathBuf {
        let name = self
            .spec
            .data_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pg".into());
        self.spec.data_dir.with_file_name(format!("{name}.log"))
    }

    fn init(&self) -> Result<(), LocalStackError> {
        let data = &self.spec.data_dir;
        if data.join("PG_VERSION").is_file() {
            return Ok(());
        }
        let parent = data
            .parent()
            .ok_or_else(|| LocalStackError::Other("data dir has no parent".into()))?;
        std::fs::create_dir_all(parent)?;
        // The server's account must be able to reach its data directory.
        if self.run_as.is_some() {
            let mut p = parent.to_path_buf();
            loop {
                let mode = std::fs::metadata(&p)?.permissions().mode();
                if mode & 0o001 == 0 {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode | 0o711))?;
                }
                if !p.pop() {
                    break;
                }
            }
        }
        let staging = parent.join(format!(
            ".{}.initdb-{}",
            data.file_name().and_then(|n| n.to_str()).unwrap_or("pg"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        let pwfile = parent.join(format!(".pwfile-{}", std::process::id()));
        std::fs::write(&pwfile, format!("{}\n", self.spec.password))?;
        if let Some((uid, gid)) = self.run_as {
            chown_tree(&staging, uid, gid)?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))?;
        let mut cmd = Command::new(self.bin_dir.join("initdb"));
        cmd.arg("-D")
            .arg(&staging)
            .args([
                "-U",
                &self.spec.superuser,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        if !self.spec.durable {
            cmd.arg("--no-sync");
        }
        let log = self.log_path();
        let mut child = spawn(cmd, self.run_as, &log)?;
        let status = child.wait()?;
        let _ = std::fs::remove_file(&pwfile);
        if !status.success() {
            return Err(LocalStackError::Other(format!(
                "initdb failed; see {}",
                log.display()
            )));
        }
        // Only a complete cluster ever appears under the real name; if another process won
        // the race, its cluster is as good as ours.
        if std::fs::rename(&staging, data).is_err() && data.join("PG_VERSION").is_file() {
            let _ = std::fs::remove_dir_all(&staging);
            return Ok(());
        }
        if !data.join("PG_VERSION").is_file() {
            return Err(LocalStackError::Other(format!(
                "could not move the new cluster into {}",
                data.display()
            )));
        }
        Ok(())
    }

    /// Copies the certificate and key into the data directory, owned by the server's account
    /// with the key private (PostgreSQL refuses a key others can read), and admits TCP
    /// clients over TLS only.
    fn install_tls(&self, tls: &crate::TlsFiles) -> Result<(PathBuf, PathBuf), LocalStackError> {
        let data = &self.spec.data_dir;
        let (cert, key) = (data.join("server.crt"), data.join("server.key"));
        std::fs::copy(&tls.cert, &cert)?;
        std::fs::copy(&tls.key, &key)?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba)?
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}"),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&hba, rules + "\n")?;
        if let Some((uid, gid)) = self.run_as {
            for f in [&cert, &key, &hba] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid))?;
            }
        }
        Ok((cert, key))
    }

    async fn launch(&mut self) -> Result<(), LocalStackError> {
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.spec.data_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=400",
                "-c",
                "shared_buffers=128MB",
            ]);
        if !self.spec.durable {
            cmd.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        if let Some(tls) = &self.spec.tls {
            let (cert, key) = self.install_tls(tls)?;
            cmd.args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!("ssl_cert_file={}", cert.display()))
                .arg("-c")
                .arg(format!("ssl_key_file={}", key.display()));
        }
        // More server settings, e.g. `shared_preload_libraries=pg_stat_statements` to see
        // what each statement costs: `name=value` pairs separated by spaces.
        if let Ok(extra) = std::env::var("REDRESS_POSTGRES_SETTINGS") {
            for setting in extra.split_whitespace() {
                cmd.args(["-c", setting]);
            }
        }
        let log = self.log_path();
        let mut child = spawn(cmd, self.run_as, &log)?;
        if !wait_for_port(&mut child, self.port, Duration::from_secs(30)).await {
            stop_child(&mut child, Signal::SIGKILL, Duration::ZERO);
            return Err(LocalStackError::NotReady {
                what: "PostgreSQL",
                secs: 30,
                log: log.display().to_string(),
            });
        }
        // The port opens before recovery ends ("the database system is starting up").
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match sqlx::PgConnection::connect(&self.url("postgres")).await {
                Ok(c) => {
                    let _ = c.close().await;
                    break;
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        return Err(LocalStackError::NotReady {
                            what: "PostgreSQL",
                            secs: 60,
                            log: log.display().to_string(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    stop_child(&mut child, Signal::SIGKILL, Duration::ZERO);
                    return Err(LocalStackError::Other(format!(
                        "PostgreSQL never accepted a login: {e}"
                    )));
                }
            }
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the superuser on database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{db}",
            self.spec.superuser, self.spec.password, self.port
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9 of the postmaster.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Signal::SIGKILL, Duration::ZERO);
        }
    }

    /// Fast shutdown: ends sessions, checkpoints, exits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Signal::SIGINT, Duration::from_secs(20));
        }
    }

    /// Starts again on the same port. After a kill -9 the old backends may hold the shared
    /// memory for a moment, so this retries.
    pub async fn restart(&mut self) -> Result<(), LocalStackError> {
        self.kill();
        let mut last = None;
        for _ in 0..40 {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(last.expect("tried at least once"))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.spec.durable {
            self.stop();
        } else {
            // Throwaway clusters: immediate shutdown, nothing worth checkpointing.
            if let Some(mut c) = self.child.take() {
                stop_child(&mut c, Signal::SIGQUIT, Duration::from_secs(5));
            }
        }
    }
}

impl PostgresServer {
    /// Creates a cluster at `spec.data_dir` without starting it (for test templates).
    pub fn initialise(spec: PostgresSpec) -> Result<(), LocalStackError> {
        let server = Self {
            port: 0,
            bin_dir: bin_dir()?,
            run_as: unprivileged_user()?,
            spec,
            child: None,
        };
        server.init()
    }
}
