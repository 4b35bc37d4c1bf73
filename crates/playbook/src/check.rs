//! `redress playbook check`: every problem of a playbook file, each with the line it is on.

use crate::{Playbook, PlaybookError};

/// One problem of a playbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Checks the text of one playbook file, found in a directory named `dir_key` when given.
pub fn check_text(text: &str, dir_key: Option<&str>) -> Vec<Problem> {
    let pb: Playbook = match toml::from_str(text) {
        Ok(pb) => pb,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            return vec![Problem {
                line,
                message: e.message().trim().to_string(),
            }];
        }
    };
    let mut out: Vec<Problem> = pb
        .problems()
        .into_iter()
        .map(|p| match p {
            PlaybookError::Invalid { field, message, .. } => Problem {
                line: locate(text, &field),
                message: format!("{field}: {message}"),
            },
            other => Problem {
                line: 1,
                message: other.to_string(),
            },
        })
        .collect();
    if let Some(dir) = dir_key
        && pb.key != dir
    {
        out.push(Problem {
            line: locate(text, "key"),
            message: format!("key: {:?} must match its directory name {dir:?}", pb.key),
        });
    }
    out.sort_by_key(|p| p.line);
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line a field path (`sla.deadlines[3].met_by`, `routing.fallback`, `key`) is set on:
/// its key inside the table (the n-th of an array of tables) that holds it; that table's
/// header when the key is not written (a default); else the first line.
pub fn locate(text: &str, field: &str) -> usize {
    let segments: Vec<(&str, Option<usize>)> = field
        .split('.')
        .map(|s| match s.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
            None => (s, None),
        })
        .collect();
    // The deepest array of tables the path goes through, and the key right after it.
    let (table, nth, key) = match segments
        .iter()
        .enumerate()
        .rev()
        .find(|(i, (_, idx))| idx.is_some() && *i + 1 < segments.len())
    {
        Some((i, (_, idx))) => (
            segments[..=i]
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join("."),
            *idx,
            segments[i + 1].0,
        ),
        None => {
            let (last, _) = segments[segments.len() - 1];
            let table = segments[..segments.len() - 1]
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(".");
            (table, None, last)
        }
    };
    let mut seen = 0usize;
    let mut inside = table.is_empty();
    let mut header_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line
            .strip_prefix("[[")
            .and_then(|l| l.split_once("]]"))
            .map(|(n, _)| n.trim())
        {
            inside = name == table && nth == Some(seen);
            if name == table {
                seen += 1;
            }
            if inside {
                header_line = Some(i + 1);
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|l| l.split_once(']'))
            .map(|(n, _)| n.trim())
        {
            inside = name == table && nth.is_none();
            if inside {
                header_line = Some(i + 1);
            }
            continue;
        }
        if inside
            && let Some((k, _)) = line.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return i + 1;
        }
    }
    header_line.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "key = \"x\"\n\n[routing]\nfallback = \"nobody\"\n\n[[sla.deadlines]]\nname = \"a\"\nmet_by = \"accepted\"\n\n[[sla.deadlines]]\nname = \"b\"\nmet_by = \"received\"\n";

    #[test]
    fn fields_are_found_on_their_lines() {
        assert_eq!(locate(TEXT, "key"), 1);
        assert_eq!(locate(TEXT, "routing.fallback"), 4);
        assert_eq!(locate(TEXT, "sla.deadlines[0].met_by"), 8);
        assert_eq!(locate(TEXT, "sla.deadlines[1].met_by"), 12);
        // Not written: the table's header.
        assert_eq!(locate(TEXT, "sla.deadlines[1].starts"), 10);
        assert_eq!(locate(TEXT, "nowhere.at_all"), 1);
    }

    #[test]
    fn a_broken_playbook_gets_one_line_per_problem() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../playbooks/default/playbook.toml"),
        )
        .unwrap();
        assert_eq!(check_text(&text, Some("default")), []);
        let broken = text
            .replacen(
                "fallback = \"customer-service\"",
                "fallback = \"nobody\"",
                1,
            )
            .replacen("met_by = \"resolved\"", "met_by = \"received\"", 1);
        let problems = check_text(&broken, Some("other"));
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("key:"), "{messages:?}");
        assert!(messages[1].starts_with("routing.fallback:"), "{messages:?}");
        assert!(messages[2].contains(".met_by: reception"), "{messages:?}");
        let line = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(problems[1].line, line("fallback = \"nobody\""));
        assert_eq!(problems[2].line, line("met_by = \"received\""));
        // Not TOML: the line of the mistake.
        let bad = "key = \"x\"\nname = \n";
        assert_eq!(check_text(bad, None)[0].line, 2);
    }
}
