//! Every scenario under `tests/scenarios/<playbook>/` run through `redress playbook simulate`
//! against its playbook: each must meet all of its `[[expect]]`s (exit 0).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_shipped_scenario_meets_its_expectations() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let key = dir.file_name().unwrap().to_string_lossy().to_string();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "toml") {
                files.push((key.clone(), f));
            }
        }
    }
    files.sort();
    assert!(!files.is_empty());
    // Two at a time: each runs its own broker, database and services.
    let failed = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((key, file)) = files.get(i) else {
                        break;
                    };
                    let work = tempfile::tempdir().unwrap();
                    let out = Command::new(env!("CARGO_BIN_EXE_redress"))
                        .args([
                            "playbook",
                            "simulate",
                            "--json",
                            "--playbook",
                            key,
                            "--scenario",
                        ])
                        .arg(file)
                        .current_dir(work.path())
                        .env_remove("REDRESS_NATS_URL")
                        .env_remove("REDRESS_DATABASE_URL")
                        .env_remove("REDRESS_CONFIG")
                        .output()
                        .unwrap();
                    if !out.status.success() {
                        failed.lock().unwrap().push(format!(
                            "{}: exit {:?}\n{}",
                            file.display(),
                            out.status.code(),
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
