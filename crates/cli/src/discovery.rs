//! How client verbs find the stack: `REDRESS_NATS_URL` when set, otherwise the stack file that
//! `redress up` writes into its data directory while it runs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct StackFile {
    pub nats_url: String,
    pub root: String,
    pub pid: u32,
    /// The private PostgreSQL's admin URL (for `redress bench --e2e`); none when the stack
    /// uses a server of its own. The file is readable by its owner only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("stack.json")
}

pub fn write(data_dir: &Path, stack: &StackFile) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = data_dir.join(".stack.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(stack)?)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path(data_dir))?;
    Ok(())
}

pub fn remove(data_dir: &Path) {
    let _ = std::fs::remove_file(path(data_dir));
}

/// The NATS URL and subject root of the stack to talk to.
pub fn find(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let root = std::env::var("REDRESS_NATS__ROOT")
        .or_else(|_| std::env::var("REDRESS_NATS_ROOT"))
        .ok();
    if let Ok(url) = std::env::var("REDRESS_NATS_URL")
        && !url.is_empty()
    {
        return Ok((url, root.unwrap_or_else(|| "redress".into())));
    }
    let file = path(data_dir);
    let raw = std::fs::read(&file).with_context(|| {
        format!(
            "no running stack found ({} is missing): start one with `redress up`, or set \
             REDRESS_NATS_URL",
            file.display()
        )
    })?;
    let stack: StackFile = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not a stack file", file.display()))?;
    Ok((stack.nats_url, root.unwrap_or(stack.root)))
}

/// The stack file of the stack running in `data_dir`.
pub fn read(data_dir: &Path) -> anyhow::Result<StackFile> {
    let raw = std::fs::read(path(data_dir))?;
    Ok(serde_json::from_slice(&raw)?)
}

/// The admin URL of the private PostgreSQL of the stack in `data_dir`, when it has one.
pub fn database_url(data_dir: &Path) -> Option<String> {
    let raw = std::fs::read(path(data_dir)).ok()?;
    serde_json::from_slice::<StackFile>(&raw).ok()?.database_url
}
