//! `redress playbook check [KEY…] [--playbooks DIR]`: every problem of the playbooks a stack
//! would load (the built-in ones, or an organisation's directory), one line each as
//! `file:line: message`. Exit 0 when all are sound, 2 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use redress_playbook::check::check_text;

#[derive(clap::Subcommand)]
pub enum PlaybookCommand {
    /// Check playbooks: syntax, unknown names, clocks that can never start or be met, rules
    /// and chains that can never match.
    Check(CheckArgs),
    /// Show what a playbook will do before it goes live: the real services on a private
    /// broker and database, a virtual clock, and a scenario of client verbs at given times.
    Simulate(crate::simulate::SimulateArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Only these playbooks (default: all).
    keys: Vec<String>,
    /// A directory of `<key>/playbook.toml` to check instead of the built-in playbooks.
    #[arg(long)]
    playbooks: Option<PathBuf>,
}

pub fn run(command: &PlaybookCommand) -> anyhow::Result<ExitCode> {
    match command {
        PlaybookCommand::Check(args) => check(args),
        PlaybookCommand::Simulate(_) => unreachable!("run in the async runtime"),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    // (file as shown, directory key, text)
    let mut files: Vec<(String, String, String)> = Vec::new();
    match &args.playbooks {
        None => {
            for (key, text) in redress_playbook::BUILTIN {
                files.push((
                    format!("<built in>/{key}/playbook.toml"),
                    key.to_string(),
                    text.to_string(),
                ));
            }
        }
        Some(dir) => {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
                .collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let file = entry.path().join("playbook.toml");
                if !file.is_file() {
                    continue;
                }
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                files.push((
                    file.display().to_string(),
                    entry.file_name().to_string_lossy().to_string(),
                    text,
                ));
            }
        }
    }
    for key in &args.keys {
        if !files.iter().any(|(_, k, _)| k == key) {
            println!("{key}: no such playbook");
            return Ok(ExitCode::from(2));
        }
    }
    let mut problems = 0;
    let mut checked = 0;
    for (file, key, text) in &files {
        if !args.keys.is_empty() && !args.keys.contains(key) {
            continue;
        }
        checked += 1;
        for p in check_text(text, Some(key)) {
            println!("{file}:{}: {}", p.line, p.message);
            problems += 1;
        }
    }
    if problems > 0 {
        return Ok(ExitCode::from(2));
    }
    println!("{checked} playbook(s) sound");
    Ok(ExitCode::SUCCESS)
}
