//! Loading the playbooks a service works by, and recording in the service's own schema which
//! version of its part it loaded.

use redress_playbook::Playbooks;

use crate::service::ServiceContext;

/// Loads every playbook (from the configured directory, else those built in) and records `section` of each (the
/// part this service uses) with its version.
pub async fn load(
    ctx: &ServiceContext,
    pool: &sqlx::PgPool,
    section: &str,
) -> anyhow::Result<Playbooks> {
    let playbooks = match &ctx.config.settings.playbooks.dir {
        Some(dir) => Playbooks::load_dir(dir)?,
        None => Playbooks::builtin()?,
    };
    for pb in playbooks.iter() {
        crate::db::record_playbook(pool, &pb.key, &pb.version, &pb.section(section)).await?;
        tracing::info!(playbook = %pb.key, version = %pb.version, section, "playbook loaded");
    }
    Ok(playbooks)
}
