//! `redress up` as a newcomer uses it: start, wait for `ready`, submit and query with the
//! client verbs (no flags: they find the stack from the directory), Ctrl-C, start again and
//! find the earlier complaint.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn redress(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redress"));
    c.current_dir(dir)
        .env_remove("REDRESS_NATS_URL")
        .env_remove("REDRESS_DATABASE_URL")
        .env("RUST_LOG", "warn")
        // From any directory: the playbooks are built into the binary.
        .env_remove("REDRESS_PLAYBOOKS__DIR");
    c
}

/// Polls `redress status --json` until `check` holds.
fn status_until(
    dir: &Path,
    ticket: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = json(redress(dir).args(["status", ticket, "--json"]));
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    // The broker admits only the users `redress up` made; their URLs are private files.
    let address = printed
        .iter()
        .find_map(|l| l.strip_prefix("nats: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let ops_file = dir.path().join(".redress/credentials/ops.url");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&ops_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let ops_url = std::fs::read_to_string(&ops_file)
        .unwrap()
        .trim()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let anonymous = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(address.as_str())
            .await;
        assert!(anonymous.is_err(), "an anonymous client was admitted");
        redress_client::connect_options(&ops_url)
            .connect(address.as_str())
            .await
            .expect("the operations user is admitted");
    });

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
    assert!(
        ["received", "classified", "assigned"].contains(&status["status"].as_str().unwrap()),
        "{status}"
    );
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

    walk_through_its_whole_life(dir.path(), &ticket);

    // A second caller takes their complaint back; only their secret lets them.
    let second = json(redress(dir.path()).args([
        "submit",
        "--channel",
        "phone",
        "--external-id",
        "call-43",
        "--contact",
        "13800138001",
        "--text",
        "空调不制冷",
        "--json",
    ]));
    let second_ticket = second["ticket"].as_str().unwrap().to_string();
    let secret = second["status_secret"].as_str().unwrap().to_string();
    let wrong = redress(dir.path())
        .args(["withdraw", &second_ticket, "--secret", "guess", "--json"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(3));
    let w = json(redress(dir.path()).args([
        "withdraw",
        &second_ticket,
        "--secret",
        &secret,
        "--reason",
        "已经修好了",
        "--json",
    ]));
    assert_eq!(w["already"], false, "{w}");
    status_until(dir.path(), &second_ticket, "withdrawn", |s| {
        s["status"] == "withdrawn"
            && s["history"]
                .as_array()
                .is_some_and(|h| h.iter().any(|l| l["event"] == "complaint.withdrawn"))
    });

    // Every contact is sealed under the stack's one key (id 0): nothing to re-seal.
    let rekeyed = json(redress(dir.path()).args(["ops", "rekey", "--json"]));
    assert_eq!(rekeyed["resealed"], 0, "{rekeyed}");
    assert_eq!(rekeyed["values_by_key_id"]["0"], 2, "{rekeyed}");

    // The complainant's right to deletion, by the administrator; the facts stay.
    let erased = json(redress(dir.path()).args(["erase", &ticket, "--json"]));
    assert_eq!(erased["already"], false, "{erased}");
    assert_eq!(
        erased["notifications_deleted"], 5,
        "ack, progress, two replies, survey: {erased}"
    );
    let after = json(redress(dir.path()).args(["status", &ticket, "--json"]));
    assert_eq!(after["status"], "closed");
    for gone in [
        "师傅迟到属实",
        "两天内答复您",
        "六百元不够来回路费",
        "客户要求补偿上门费",
    ] {
        assert!(
            !after.to_string().contains(gone),
            "{gone}: written to or by the complainant: {after}"
        );
    }
    // The department's copy of the text can no longer be opened; the work item stays.
    let closed = json(redress(dir.path()).args([
        "work",
        "list",
        "--dept",
        "logistics",
        "--state",
        "closed",
        "--json",
    ]));
    let item = closed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["ticket"] == ticket.as_str())
        .unwrap_or_else(|| panic!("{closed}"));
    assert_eq!(
        (&item["text"], &item["text_erased"]),
        (&json!(""), &json!(true))
    );
    let rekeyed = json(redress(dir.path()).args(["ops", "rekey", "--json"]));
    assert_eq!(
        rekeyed["values_by_key_id"],
        serde_json::json!({"0": 1}),
        "only the withdrawn complaint's contact is left: {rekeyed}"
    );

    // Started from an empty directory, the stack serves every built-in playbook: a lost
    // parcel named for express is classified, routed and armed by express's rules.
    let express = json(redress(dir.path()).args([
        "submit",
        "--channel",
        "phone",
        "--external-id",
        "call-express",
        "--contact",
        "13800138001",
        "--playbook",
        "express",
        "--text",
        "快递丢件了",
        "--json",
    ]));
    let express_ticket = express["ticket"].as_str().unwrap().to_string();
    let status = status_until(dir.path(), &express_ticket, "express deadlines", |s| {
        s["deadlines"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["name"] == "respond"))
    });
    assert_eq!(status["playbook"], "express", "{status}");
    assert_eq!(status["category"], "safety", "{status}");
    assert_eq!(status["department"], "claims", "{status}");
    let respond = status["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "respond")
        .unwrap();
    assert_eq!(respond["limit"], "1 hour", "{status}");

    // A department's system gets a user of its own while the stack runs; it lists its own
    // department's work and not another's; revoked, it no longer connects.
    let issued = redress(dir.path())
        .args(["creds", "issue", "--dept", "logistics"])
        .output()
        .unwrap();
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let dept_url = String::from_utf8(issued.stdout).unwrap().trim().to_string();
    assert!(dept_url.starts_with("nats://dept-logistics:"), "{dept_url}");
    let as_dept = |dept: &str| {
        redress(dir.path())
            .env("REDRESS_NATS_URL", &dept_url)
            .args(["work", "list", "--dept", dept, "--json"])
            .output()
            .unwrap()
    };
    let own = as_dept("logistics");
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    assert!(
        !as_dept("finance").status.success(),
        "another department's work was listed"
    );
    let revoked = redress(dir.path())
        .args(["creds", "revoke", "dept-logistics"])
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let after = as_dept("logistics");
    assert!(!after.status.success(), "a revoked user still connects");

    // People: `up` issued a private key to each person of the playbooks; a key revoked
    // stops signing at once, and one issued again signs with the new key only.
    let key_file = dir.path().join(".redress/people/zhao.min.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let listed = json(redress(dir.path()).args(["people", "list", "--json"]));
    assert!(
        listed.as_array().unwrap().iter().any(
            |p| p["person"] == "zhao.min" && p["public_key"].as_str().unwrap().starts_with('U')
        ),
        "{listed}"
    );
    let old_key = dir.path().join("zhao.min.old.key");
    std::fs::copy(&key_file, &old_key).unwrap();
    let people = |args: &[&str]| {
        let o = redress(dir.path()).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    people(&["people", "revoke", "zhao.min"]);
    assert!(!key_file.exists());
    let approvals = |key: &std::path::Path| {
        redress(dir.path())
            .args(["approvals", "--json", "--key"])
            .arg(key)
            .output()
            .unwrap()
    };
    // Listing needs no signature; deciding does (nothing is pending here, so the refusal
    // that matters is the signature's, which comes first).
    assert!(approvals(&old_key).status.success());
    let decide = |key: &std::path::Path| {
        redress(dir.path())
            .args(["approve", &ticket, "--as", "zhao.min", "--json", "--key"])
            .arg(key)
            .output()
            .unwrap()
    };
    let refused = decide(&old_key);
    assert_eq!(refused.status.code(), Some(3));
    let refused: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(refused["error"]["field"], "signature", "{refused}");
    people(&["people", "issue", "zhao.min"]);
    let after = decide(&key_file);
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_ne!(after["error"]["field"], "signature", "{after}");
    let still_old = decide(&old_key);
    let still_old: serde_json::Value = serde_json::from_slice(&still_old.stdout).unwrap();
    assert_eq!(still_old["error"]["field"], "signature", "{still_old}");

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

/// The README's walk: department, approver and complainant verbs take one complaint from
/// assignment to closed.
fn walk_through_its_whole_life(dir: &Path, ticket: &str) {
    let d = "customer-service";
    let s = status_until(dir, ticket, "assignment", |s| {
        s["status"] == "assigned" && s["deadlines"].as_array().is_some_and(|d| d.len() == 2)
    });
    assert_eq!(s["department"], d);
    assert_eq!(s["category"], "other");
    assert_eq!(s["severity"], "general");
    for deadline in s["deadlines"].as_array().unwrap() {
        assert_eq!(deadline["state"], "armed", "{deadline}");
        assert!(
            deadline["due_at"].as_str().unwrap().starts_with("20"),
            "{deadline}"
        );
        assert!(deadline["name"].is_string());
    }
    let listed = json(redress(dir).args(["work", "list", "--dept", d, "--json"]));
    let item = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["ticket"] == ticket)
        .unwrap_or_else(|| panic!("{listed}"));
    // Sealed on the way, in clear for the department.
    assert_eq!(item["text"], "安装师傅迟到三个小时", "{item}");
    assert_eq!(item["text_erased"], false);

    // Someone from another department may not touch it: exit 3 with the field at fault.
    let other = redress(dir)
        .args([
            "work", "accept", ticket, "--dept", "finance", "--as", "ma.li", "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(3));

    // Customer service finds it is the installers' matter and hands it on, saying what it
    // understood; logistics may not simply send it back.
    let understood = "安装师傅迟到三个小时，客户要求补偿上门费";
    let w = json(redress(dir).args([
        "work",
        "transfer",
        ticket,
        "--dept",
        d,
        "--as",
        "wang.fang",
        "--to",
        "logistics",
        "--reason",
        "安装由物流部安排",
        "--understood",
        understood,
        "--json",
    ]));
    assert_eq!(w["department"], "logistics", "{w}");
    assert_eq!(w["previous_departments"], json!(["customer-service"]));
    let d = "logistics";
    let bounce = redress(dir)
        .args([
            "work",
            "transfer",
            ticket,
            "--dept",
            d,
            "--as",
            "zhou.qiang",
            "--to",
            "customer-service",
            "--reason",
            "不归我们",
            "--understood",
            understood,
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(bounce.status.code(), Some(3), "a bounce is refused");
    let act = |verb: &str, more: &[&str]| {
        let mut args = vec![
            "work",
            verb,
            ticket,
            "--dept",
            d,
            "--as",
            "zhou.qiang",
            "--json",
        ];
        args.extend_from_slice(more);
        json(redress(dir).args(&args))
    };
    let w = act("accept", &[]);
    assert_eq!(w["state"], "accepted");
    act(
        "progress",
        &["--message", "已联系安装公司核实，两天内答复您"],
    );
    // Two proposals in one round: the complainant rejects the first reply.
    for (i, (amount, reply)) in [
        ("600.00", "您好：师傅迟到属实，已致歉并补偿上门费600元。"),
        (
            "800.00",
            "您好：师傅迟到属实，已致歉并补偿上门费800元。如有疑问请联系客服部。",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let w = act(
            "propose",
            &[
                "--responsibility",
                "company",
                "--remedy",
                "致歉并补偿上门费",
                "--compensation",
                amount,
            ],
        );
        assert_eq!(w["state"], "proposed");
        status_until(dir, ticket, "approval requested", |s| {
            s["approval"] == "pending"
        });
        let pending = json(redress(dir).args(["approvals", "--json"]));
        assert!(
            pending
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["ticket"] == ticket),
            "{pending}"
        );
        let a = json(redress(dir).args([
            "approve", ticket, "--as", "zhao.min", "--note", "同意", "--json",
        ]));
        assert_eq!(a["state"], "approved");
        status_until(dir, ticket, "approved work", |s| s["status"] == "approved");
        act("reply", &["--message", reply]);
        if i == 0 {
            let w = act("contest", &["--objection", "六百元不够来回路费"]);
            assert_eq!(
                (w["state"].clone(), w["contests"].clone()),
                (json!("accepted"), json!(1))
            );
        }
    }
    act("resolve", &[]);
    status_until(dir, ticket, "survey sent", |s| s["survey"] == "sent");
    // The reply travels sealed; the department and the status history read it in clear.
    let reply = "师傅迟到属实，已致歉并补偿上门费800元";
    let resolved =
        json(redress(dir).args(["work", "list", "--dept", d, "--state", "resolved", "--json"]));
    assert!(
        resolved.as_array().unwrap().iter().any(
            |w| w["ticket"] == ticket && w["reply"].as_str().is_some_and(|r| r.contains(reply))
        ),
        "{resolved}"
    );
    // The history tells the hop, the report and the objection, each opened for the reader.
    let history = json(redress(dir).args(["status", ticket, "--json"])).to_string();
    for told in [
        reply,
        "from customer-service to logistics by wang.fang",
        understood,
        "两天内答复您",
        "六百元不够来回路费",
    ] {
        assert!(history.contains(told), "{told} not in {history}");
    }
    // The token reaches the complainant with the invitation, through the channel's adapter.
    let sent = json(redress(dir).args([
        "notifications",
        "--channel",
        "phone",
        "--ticket",
        ticket,
        "--json",
    ]));
    let kinds: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ack", "progress", "reply", "reply", "survey"],
        "{sent}"
    );
    let token = sent[4]["token"].as_str().unwrap().to_string();
    let without = redress(dir)
        .args([
            "survey", "answer", ticket, "--token", "guess", "--score", "1", "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(without.status.code(), Some(3));
    json(redress(dir).args([
        "survey",
        "answer",
        ticket,
        "--token",
        &token,
        "--score",
        "5",
        "--comment",
        "满意",
        "--json",
    ]));
    // The status hears of the close, the survey and the deadlines from different services,
    // in any order: wait for all of them.
    let s = status_until(dir, ticket, "closed, satisfied, every deadline met", |s| {
        s["status"] == "closed"
            && s["survey"] == "satisfied"
            && s["deadlines"]
                .as_array()
                .is_some_and(|d| d.iter().all(|d| d["state"] == "met"))
    });
    assert_eq!(s["approval"], "approved");
}
