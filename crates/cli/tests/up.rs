//! `redress up` as a newcomer uses it: start, wait for `ready`, submit and query with the
//! client verbs (no flags: they find the stack from the directory), Ctrl-C, start again and
//! find the earlier complaint.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn redress(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redress"));
    c.current_dir(dir)
        .env_remove("REDRESS_NATS_URL")
        .env_remove("REDRESS_DATABASE_URL")
        .env("RUST_LOG", "warn");
    c
}

/// Starts `redress up` and returns once it printed `ready`, with everything it printed.
#[allow(clippy::zombie_processes)] // the caller waits for it in `ctrl_c`
fn up(dir: &Path) -> (Child, Vec<String>) {
    let mut child = redress(dir)
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no `ready` from redress up; it printed {lines:?}"));
        let ready = line == "ready";
        lines.push(line);
        if ready {
            // Keep draining so the process never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, lines);
        }
    }
}

fn ctrl_c(mut child: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "redress up exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redress up did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn up_serves_the_client_verbs_stops_on_ctrl_c_and_keeps_complaints_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (child, printed) = up(dir.path());
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("nats: nats://127.0.0.1:")),
        "{printed:?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("postgres: 127.0.0.1:")),
        "{printed:?}"
    );

    let submitted = json(redress(dir.path()).args([
        "submit",
        "--channel",
        "phone",
        "--external-id",
        "call-42",
        "--name",
        "李雷",
        "--contact",
        "13800138000",
        "--text",
        "安装师傅迟到三个小时",
        "--json",
    ]));
    let ticket = submitted["ticket"].as_str().unwrap().to_string();
    assert_eq!(submitted["duplicate"], false);
    let status = json(redress(dir.path()).args(["status", &ticket, "--json"]));
    assert_eq!(status["status"], "received");
    assert_eq!(status["channel"], "phone");
    assert!(status["received_at"].as_str().unwrap().starts_with("20"));

    let refused = redress(dir.path())
        .args([
            "submit",
            "--channel",
            "fax",
            "--external-id",
            "x",
            "--contact",
            "a@b.cn",
            "--text",
            "t",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    let refused: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(refused["error"]["field"], "channel");

    ctrl_c(child);
    assert!(!dir.path().join(".redress/stack.json").exists());

    let (child, _) = up(dir.path());
    let again = json(redress(dir.path()).args(["status", &ticket, "--json"]));
    assert_eq!(again["ticket"], ticket.as_str());
    let resend = json(redress(dir.path()).args([
        "submit",
        "--channel",
        "phone",
        "--external-id",
        "call-42",
        "--contact",
        "13800138000",
        "--text",
        "安装师傅迟到三个小时",
        "--json",
    ]));
    assert_eq!(resend["ticket"], ticket.as_str());
    assert_eq!(resend["duplicate"], true);
    ctrl_c(child);
}
