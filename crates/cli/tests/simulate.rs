//! `redress playbook simulate` as an organisation runs it: the express playbook on a
//! scenario, with the real services on a private broker and database and a virtual clock.

use std::process::Command;

use serde_json::Value;

fn simulate(dir: &std::path::Path, scenario: &str, extra: &[&str]) -> (i32, String, String) {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
        .args([
            "playbook",
            "simulate",
            "--playbook",
            "express",
            "--scenario",
        ])
        .arg(&file)
        .args(extra)
        .current_dir(dir)
        .env_remove("REDRESS_NATS_URL")
        .env_remove("REDRESS_DATABASE_URL")
        .env_remove("REDRESS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

const SCENARIO: &str = r#"
start = "2026-03-06T08:30:00+08:00"
[[step]]
at = "2026-03-06T09:00:00+08:00"
do = "submit --channel phone --external-id c1 --name 张三 --contact 13800138000 --text '快递丢件了'"
[[step]]
at = "+10m"
do = "work accept {c1} --dept claims --as xu.lin"
[[step]]
at = "+3d"
do = "status {c1} --json"
"#;

#[test]
fn a_scenario_runs_on_the_virtual_clock_and_shows_every_event_and_step_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = simulate(dir.path(), SCENARIO, &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // Every time in the playbook's offset, and never going back.
    let at: Vec<&str> = lines.iter().map(|l| l["at"].as_str().unwrap()).collect();
    assert!(at.iter().all(|a| a.ends_with("+08:00")), "{at:?}");
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    let steps: Vec<&Value> = lines.iter().filter(|l| l.get("do").is_some()).collect();
    assert_eq!(steps.len(), 3, "{out}");
    assert!(steps.iter().all(|s| s["exit"] == 0), "{out}");
    let ticket = steps[0]["output"]["ticket"].as_str().unwrap().to_string();
    assert_eq!(steps[2]["output"]["ticket"], ticket.as_str());
    assert_eq!(steps[2]["at"], "2026-03-09T09:10:00+08:00");
    let events: Vec<(&str, &Value, &Value)> = lines
        .iter()
        .filter_map(|l| Some((l.get("event")?.as_str()?, &l["data"], l)))
        .collect();
    let names: Vec<&str> = events.iter().map(|(e, _, _)| *e).collect();
    for expected in [
        "complaint.received",
        "complaint.classified",
        "work.assigned",
        "sla.armed",
        "work.accepted",
        "sla.met",
        "sla.breached",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // Every event about a complaint is c1's, named by its ticket and external id; the one
    // about many is express's weekly analysis, made on Monday 9 March for the week before.
    let (about_many, about_c1): (Vec<_>, Vec<_>) = events
        .iter()
        .partition(|(e, _, _)| *e == "report.published");
    assert!(
        about_c1
            .iter()
            .all(|(_, _, l)| l["ticket"] == ticket.as_str() && l["external_id"] == "c1"),
        "{out}"
    );
    assert_eq!(about_many.len(), 1, "{out}");
    assert_eq!(about_many[0].1["period"], "2026-W10");
    assert_eq!(about_many[0].2["at"], "2026-03-09T09:00:00+08:00");
    // Routed by the playbook: a lost parcel is a safety complaint for claims.
    let assigned = events
        .iter()
        .find(|(e, _, _)| *e == "work.assigned")
        .unwrap();
    assert_eq!(assigned.1["work"]["department"], "claims");
    // Accepted Friday 09:10 and never investigated: the 24-hour clock falls due Saturday
    // 09:10 and the timer breaches it once its minute of grace has passed, as production
    // would: a stop the clock made on its way to Monday, before the last step.
    let breach = events
        .iter()
        .position(|(e, d, _)| *e == "sla.breached" && d["deadline"]["name"] == "investigate")
        .unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(events[breach].2["at"], "2026-03-07T09:11:00+08:00");
    assert_eq!(
        events[breach].1["deadline"]["due_at"],
        "2026-03-07T01:10:00Z"
    );
    let last_step = lines.iter().rposition(|l| l.get("do").is_some()).unwrap();
    let breach_line = lines
        .iter()
        .position(|l| std::ptr::eq(l, events[breach].2))
        .unwrap();
    assert!(breach_line < last_step);
}

#[test]
fn a_bad_scenario_is_refused_with_its_step_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (scenario, says) in [
        (
            "start = \"2026-03-06T08:30:00+08:00\"\n[[step]]\nat = \"+1m\"\ndo = \"approvals\"\n\
             [[step]]\nat = \"+1m\"\ndo = \"launch --now\"\n",
            "step 2: unknown verb \"launch\"",
        ),
        (
            "start = \"2026-03-06T08:30:00+08:00\"\n[[step]]\nat = \"+1m\"\ndo = \"status {c2}\"\n",
            "step 1: {c2} is no complaint",
        ),
        (
            "start = \"2026-03-06T08:30:00+08:00\"\n[[step]]\nat = \"+2h\"\ndo = \"approvals\"\n\
             [[step]]\nat = \"2026-03-06T09:00:00+08:00\"\ndo = \"approvals\"\n",
            "step 2: at \"2026-03-06T09:00:00+08:00\" is before the step before it",
        ),
    ] {
        let (code, out, err) = simulate(dir.path(), scenario, &[]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(says), "{err}");
        assert!(out.is_empty(), "{out}");
    }
}
