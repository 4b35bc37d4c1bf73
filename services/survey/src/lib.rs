//! Survey: surveys complainants after resolution and closes or reopens.
//!
//! Its schema, role, migrations and outbox relay run; its message handlers arrive with the
//! walking-skeleton work, one module per message, like intake's.

use redress_platform::{ServiceContext, ServiceIdent};

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "survey",
    schema: "survey",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    redress_platform::service::run_without_handlers(ctx, IDENT, &MIGRATOR).await
}
