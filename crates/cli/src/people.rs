//! `redress people …`: the keys with which department members and approvers sign what they
//! do. The services take the person acting from the signature, so the name typed after
//! `--as` only picks which key signs; a key is issued by whoever holds the stack's
//! administrator credentials, and revoking it stops its commands at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use redress_client::people::PersonKey;

use crate::client_verbs::Connection;

#[derive(clap::Subcommand)]
pub enum PeopleCommand {
    /// Make a new key for a person and register it; any earlier key of theirs stops working.
    /// The key file (secret) is written to <data-dir>/people/<name>.key unless --out says
    /// where; hand it to the person.
    Issue {
        name: String,
        /// Where to write the key file instead.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove a person's key: every command signed with it is refused from now on.
    Revoke {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// The people with a registered key, and its public key.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Where the key files of a stack's people are kept.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("people")
}

/// Writes `key` readable by its owner only.
pub fn write_key(path: &Path, key: &PersonKey) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.to_file_text().as_bytes())?;
    Ok(())
}

pub async fn run(command: PeopleCommand) -> anyhow::Result<ExitCode> {
    match command {
        PeopleCommand::Issue {
            name,
            out,
            json,
            connection,
        } => {
            let key = PersonKey::generate(&name)?;
            let client = connection.client().await?;
            client.register_person(&key).await?;
            let path = out.unwrap_or_else(|| dir(&connection.data_dir).join(format!("{name}.key")));
            write_key(&path, &key)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "person": name,
                        "public_key": key.public_key(),
                        "key_file": path.display().to_string(),
                    })
                );
            } else {
                println!(
                    "issued a key for {name} (public key {}); key file: {}",
                    key.public_key(),
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PeopleCommand::Revoke { name, connection } => {
            let client = connection.client().await?;
            let had = client.revoke_person(&name).await?;
            let local = dir(&connection.data_dir).join(format!("{name}.key"));
            if local.is_file() {
                std::fs::remove_file(&local)?;
            }
            if had {
                println!("revoked {name}: commands signed with their key are refused");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{name} had no key");
                Ok(ExitCode::from(3))
            }
        }
        PeopleCommand::List { json, connection } => {
            let client = connection.client().await?;
            let people = client.people().await?;
            if json {
                let list: Vec<_> = people
                    .iter()
                    .map(|(n, k)| serde_json::json!({ "person": n, "public_key": k }))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for (name, key) in people {
                    println!("{name}\t{key}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Issues a key to everyone `playbooks` name who has no key file in `data_dir` yet, as the
/// first `redress up` of a data directory does so that its people can act at once. A person
/// revoked later is not issued again: the directory records who was issued.
pub async fn issue_missing(
    client: &redress_client::Client,
    data_dir: &Path,
    playbooks: &redress_playbook::Playbooks,
) -> anyhow::Result<usize> {
    let people_dir = dir(data_dir);
    let issued_list = people_dir.join(".issued");
    let mut issued: std::collections::BTreeSet<String> = std::fs::read_to_string(&issued_list)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let mut made = 0;
    for person in playbooks.iter().flat_map(|p| p.people()) {
        if issued.contains(&person) {
            continue;
        }
        let key = PersonKey::generate(&person)?;
        client.register_person(&key).await?;
        write_key(&people_dir.join(format!("{person}.key")), &key)?;
        issued.insert(person);
        made += 1;
    }
    if made > 0 {
        let text: String = issued.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(&issued_list, text)?;
    }
    Ok(made)
}
