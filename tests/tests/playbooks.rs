//! The playbooks built into the binary, each tried on its own examples
//! (`playbooks/<key>/examples.toml`): the real classifier and router put every example where
//! its procedure says it belongs. No broker, no database: the rules are pure functions.

use redress_classification::domain::classify::{Complaint, classify};
use redress_playbook::{Playbooks, Severity, Urgency};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Examples {
    example: Vec<Example>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    text: String,
    channel: String,
    category: String,
    nature: String,
    severity: Severity,
    urgency: Urgency,
    department: String,
}

#[test]
fn every_built_in_playbook_is_sound_and_places_its_examples() {
    let playbooks = Playbooks::builtin().expect("the built-in playbooks load");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    let mut tried = 0;
    for pb in playbooks.iter() {
        let problems = redress_playbook::check::check_text(
            &std::fs::read_to_string(dir.join(&pb.key).join("playbook.toml")).unwrap(),
            Some(&pb.key),
        );
        assert!(problems.is_empty(), "{}: {problems:?}", pb.key);
        let file = dir.join(&pb.key).join("examples.toml");
        if pb.key == "default" && !file.exists() {
            continue;
        }
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let examples: Examples = toml::from_str(&text).unwrap();
        assert!(examples.example.len() >= 5, "{}: too few examples", pb.key);
        for ex in &examples.example {
            let d = classify(
                &pb.classification,
                Complaint {
                    text: &ex.text,
                    channel: &ex.channel,
                    referred_by: "",
                },
            );
            let (department, _rule) =
                redress_routing::domain::route::route(&pb.routing, &d.category, d.severity);
            let got = (
                d.category.as_str(),
                d.nature.as_str(),
                d.severity,
                d.urgency,
                department,
            );
            let want = (
                ex.category.as_str(),
                ex.nature.as_str(),
                ex.severity,
                ex.urgency,
                ex.department.as_str(),
            );
            assert_eq!(got, want, "{}: {:?}", pb.key, ex.text);
            tried += 1;
        }
    }
    assert!(tried >= 5 * 5, "only {tried} examples");
}
