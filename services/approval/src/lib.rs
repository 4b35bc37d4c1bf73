//! Approval: collects sign-off on proposals above the playbook's thresholds.
//!
//! Its schema, role, migrations and outbox relay run; its message handlers arrive with the
//! walking-skeleton work, one module per message, like intake's.

use redress_platform::{ServiceContext, ServiceIdent};

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "approval",
    schema: "approval",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    redress_platform::service::run_without_handlers(ctx, IDENT, &MIGRATOR).await
}
