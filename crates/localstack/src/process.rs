use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn port_is_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Finds an executable on PATH or in the usual system directories.
pub(crate) fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Spawns `cmd` so that it dies with this process (a test that panics or a runner killed
/// with -9 leaves no server behind), optionally as another user.
pub(crate) fn spawn(
    mut cmd: Command,
    as_user: Option<(u32, u32)>,
    log: &Path,
) -> std::io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if let Some((uid, gid)) = as_user {
        cmd.uid(uid).gid(gid);
        cmd.env("HOME", "/tmp");
    }
    // SAFETY: prctl and setsid are async-signal-safe; run after the uid switch so the
    // parent-death signal survives it.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::setsid();
            if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

pub(crate) fn signal(child: &Child, sig: Signal) {
    let _ = kill(Pid::from_raw(child.id() as i32), sig);
}

/// Sends `sig`, waits up to `grace` for the process to exit, then kills it.
pub(crate) fn stop_child(child: &mut Child, sig: Signal, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child, sig);
    let start = Instant::now();
    while start.elapsed() < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child, Signal::SIGKILL);
    let _ = child.wait();
}

/// Waits until `port` accepts connections or the child exits.
pub(crate) async fn wait_for_port(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if port_is_open(port) {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}
