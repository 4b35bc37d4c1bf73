//! `redress creds …`: users of the private broker that `redress up` runs, for the systems
//! around the stack (a department's system, a channel adapter, a service run elsewhere, the
//! approval and follow-up tools, operations). A running broker reloads its users at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use redress_platform::Config;

use crate::up::{Role, Secrets, broker_users, write_credentials};

#[derive(clap::Subcommand)]
pub enum CredsCommand {
    /// Make a user (or return the existing one) and print its URL, credentials included.
    Issue(IssueArgs),
    /// Print the `authorization` block for a broker of your own (deploy/nats.conf): the
    /// administrator, the six services and operations, each password read from the
    /// environment variable `REDRESS_NATS_PASSWORD_<USER>` when the server starts.
    NatsConf {
        #[arg(long, default_value = "redress")]
        root: String,
    },
    /// Remove an issued user; its connections are closed when the broker reloads.
    Revoke {
        /// The user's name, as `issue` printed it (e.g. `dept-logistics`).
        user: String,
        #[arg(long, default_value = ".redress")]
        data_dir: PathBuf,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct IssueArgs {
    /// A department's system: its commands and its `dept-<key>` work consumer.
    #[arg(long)]
    dept: Option<String>,
    /// A channel adapter: submissions and evidence of its channel, its notifications.
    #[arg(long)]
    adapter: Option<String>,
    /// One of the six services, to run it elsewhere with `redress serve`.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::services::NAMES))]
    service: Option<String>,
    /// Read-only operations.
    #[arg(long)]
    ops: bool,
    /// The approval tool.
    #[arg(long)]
    approvals: bool,
    /// The follow-up (survey) tool.
    #[arg(long)]
    surveys: bool,
    #[arg(long, default_value = ".redress")]
    data_dir: PathBuf,
}

impl IssueArgs {
    fn role(&self) -> anyhow::Result<Role> {
        let token = |kind: &str, v: &str| {
            anyhow::ensure!(
                redress_proto::subjects::is_subject_token(v),
                "--{kind} must be one subject token (lowercase letters, digits, '-', '_'): {v:?}"
            );
            Ok(v.to_string())
        };
        Ok(match (&self.dept, &self.adapter, &self.service) {
            (Some(d), _, _) => Role::Department(token("dept", d)?),
            (_, Some(c), _) => Role::Adapter(token("adapter", c)?),
            (_, _, Some(s)) => Role::Service(s.clone()),
            _ if self.ops => Role::Ops,
            _ if self.approvals => Role::Approvals,
            _ => Role::Surveys,
        })
    }
}

pub async fn run(config_file: Option<&Path>, command: CredsCommand) -> anyhow::Result<ExitCode> {
    if let CredsCommand::NatsConf { root } = &command {
        print!("{}", nats_conf(root));
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::load(config_file)?;
    let data_dir = match &command {
        CredsCommand::NatsConf { .. } => unreachable!("handled above"),
        CredsCommand::Issue(a) => a.data_dir.clone(),
        CredsCommand::Revoke { data_dir, .. } => data_dir.clone(),
    };
    // The running stack's root, else the configured one.
    let root = crate::discovery::read(&data_dir)
        .map(|s| s.root)
        .unwrap_or_else(|_| config.settings.nats.root.clone());
    match command {
        CredsCommand::NatsConf { .. } => unreachable!("handled above"),
        CredsCommand::Issue(args) => {
            let role = args.role()?;
            let name = role.user();
            let url = apply(&args.data_dir, &root, |s| {
                s.nats_issued.insert(name.clone(), role.clone());
            })?;
            match url.iter().find(|(n, _)| *n == name) {
                Some((_, url)) => {
                    // The broker reloads in the background: return once the user is admitted.
                    until_admitted(url, true).await?;
                    println!("{url}");
                }
                None => {
                    println!("{name}: issued; its URL is written when `redress up` next starts")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CredsCommand::Revoke { user, data_dir } => {
            let mut known = false;
            let before =
                std::fs::read_to_string(data_dir.join("credentials").join(format!("{user}.url")))
                    .ok();
            apply(&data_dir, &root, |s| {
                known = s.nats_issued.remove(&user).is_some();
            })?;
            if let Some(url) = before.filter(|_| known) {
                until_admitted(url.trim(), false).await?;
            }
            if !known {
                eprintln!("error: {user} was not issued by `redress creds issue`");
                return Ok(ExitCode::from(2));
            }
            let _ = std::fs::remove_file(data_dir.join("credentials").join(format!("{user}.url")));
            println!("{user}: revoked");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The environment variable that holds `user`'s password in deploy/nats.conf.
pub fn password_variable(user: &str) -> String {
    format!(
        "REDRESS_NATS_PASSWORD_{}",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

/// The authorization block of a broker for the stack under `root`.
pub fn nats_conf(root: &str) -> String {
    let subjects = redress_proto::subjects::Subjects::new(root);
    // A deployed broker runs each service on its own connection: no `services` union.
    let users: Vec<_> = redress_proto::access::standard_users(&subjects)
        .into_iter()
        .filter(|(name, _)| name != "services")
        .collect();
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "# Generated by `redress creds nats-conf --root {root}`; passwords come from the\n\
         # environment. Anonymous connections are refused.\nauthorization {{\n  users = [\n"
    );
    for (name, permissions) in users {
        out.push_str(&format!(
            "    {{ user: {name:?}, password: ${}",
            password_variable(&name)
        ));
        if let Some(p) = permissions {
            out.push_str(&format!(
                ",\n      permissions: {{ publish: {{ allow: [{}] }},\n                     subscribe: {{ allow: [{}] }}, allow_responses: true }}",
                list(&p.publish),
                list(&p.subscribe)
            ));
        }
        out.push_str(" }\n");
    }
    out.push_str("  ]\n}\n");
    out
}

/// Waits (up to 10 s) until the broker admits `url`'s user, or refuses it.
async fn until_admitted(url: &str, admitted: bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = redress_client::connect_options(url)
            .connection_timeout(std::time::Duration::from_secs(2))
            .connect(url)
            .await
            .is_ok();
        if now == admitted {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the broker did not reload its users within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Changes the issued users, rewrites the broker's users and reloads a running broker.
/// Returns each user's URL when the broker's port is known (it is running).
fn apply(
    data_dir: &Path,
    root: &str,
    change: impl FnOnce(&mut Secrets),
) -> anyhow::Result<Vec<(String, String)>> {
    let secrets_path = data_dir.join("secrets.json");
    anyhow::ensure!(
        secrets_path.is_file(),
        "no stack in {}: run `redress up` there first (or pass --data-dir)",
        data_dir.display()
    );
    let mut secrets = Secrets::load_or_create(&secrets_path)?;
    change(&mut secrets);
    secrets.save(&secrets_path)?;
    let users = broker_users(&mut secrets, &secrets_path, data_dir, root)?;
    let reloaded = redress_localstack::reconfigure(&data_dir.join("nats"), &users)?;
    let port = crate::discovery::read(data_dir)
        .ok()
        .and_then(|stack| stack.nats_url.rsplit(':').next()?.parse::<u16>().ok());
    match (reloaded, port) {
        (true, Some(port)) => {
            write_credentials(data_dir, &users, port)?;
            Ok(users
                .iter()
                .map(|u| (u.name.clone(), u.url(port)))
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// deploy/nats.conf carries the generated block: regenerate it when permissions change.
    #[test]
    fn the_deployed_broker_config_has_the_current_permissions() {
        let deployed = include_str!("../../../deploy/nats.conf");
        assert!(
            deployed.contains(&nats_conf("redress")),
            "deploy/nats.conf is stale: replace its authorization block with \
             `redress creds nats-conf`"
        );
    }

    #[test]
    fn password_variables_are_shell_names() {
        assert_eq!(
            password_variable("sla-timer"),
            "REDRESS_NATS_PASSWORD_SLA_TIMER"
        );
    }
}
