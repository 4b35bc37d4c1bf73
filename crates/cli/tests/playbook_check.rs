//! `redress playbook check` as an organisation runs it on its own playbooks directory.

use std::process::Command;

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
        .arg("playbook")
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn the_built_in_playbooks_are_sound() {
    let (code, out) = check(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sound"), "{out}");
}

#[test]
fn every_problem_is_one_line_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../playbooks/default/playbook.toml"),
    )
    .unwrap();
    let broken = shipped
        .replacen(
            "fallback = \"customer-service\"",
            "fallback = \"nobody\"",
            1,
        )
        .replacen(
            "met_by = \"accepted\"\nurgency = \"emergency\"",
            "starts = \"replied\"\nmet_by = \"accepted\"\nurgency = \"emergency\"",
            1,
        );
    assert_ne!(broken, shipped);
    std::fs::create_dir(dir.path().join("default")).unwrap();
    let file = dir.path().join("default/playbook.toml");
    std::fs::write(&file, &broken).unwrap();
    let (code, out) = check(&["--playbooks", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let at = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert_eq!(
        lines[0],
        format!(
            "{}:{}: routing.fallback: \"nobody\" is not a department",
            file.display(),
            at("fallback = \"nobody\"")
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}:{}: sla.deadlines[0].met_by:",
            file.display(),
            at("met_by = \"accepted\"")
        )) && lines[1].contains("can never be met"),
        "{out}"
    );
    let (code, out) = check(&["nope"]);
    assert_eq!(code, 2, "{out}");
}
