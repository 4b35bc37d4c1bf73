use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::LocalStackError;
use crate::process::{find_binary, spawn, stop_child, wait_for_port};

/// A nats-server with JetStream, storing its streams under its own directory.
pub struct NatsServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts on `port` (a free one when `None`) with its store under `dir`.
    pub async fn start(dir: &Path, port: Option<u16>) -> Result<Self, LocalStackError> {
        let binary = std::env::var_os("REDRESS_NATS_SERVER_BIN")
            .map(PathBuf::from)
            .or_else(|| find_binary("nats-server", &[]))
            .ok_or(LocalStackError::BinaryMissing(
                "nats-server",
                "REDRESS_NATS_URL",
            ))?;
        std::fs::create_dir_all(dir)?;
        let port = match port {
            Some(p) => p,
            None => crate::free_port()?,
        };
        let mut server = Self {
            binary,
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        server.launch().await?;
        Ok(server)
    }

    async fn launch(&mut self) -> Result<(), LocalStackError> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.dir.join("jetstream"))
            .args(["-n", "redress-local"]);
        let log = self.log_path();
        let mut child = spawn(cmd, None, &log)?;
        // A restart right after a kill may find the port still held for a moment.
        if !wait_for_port(&mut child, self.port, Duration::from_secs(15)).await {
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
