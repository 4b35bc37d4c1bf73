//! Approval: collects sign-off on proposals above the playbook's thresholds.
//!
//! Messages and where they are handled:
//! - `WorkChanged` events whose work item is PROPOSED (every other event is acknowledged and
//!   ignored): [`handlers::work_changed`], which opens one approval per proposal and either
//!   asks for a decision (`approval.requested`) or lets the policy approve it at once
//!   (`approval.decided`, automatic).
//! - `DecideApproval` as a request on `<root>.cmd.approval.decide`: [`handlers::decide`].
//! - `ListApprovals` as a request on `<root>.cmd.approval.list`: [`handlers::list`].

pub mod domain;
pub mod handlers;

use std::sync::Arc;

use redress_platform::commands::CommandService;
use redress_platform::events::{self, Event};
use redress_platform::nats::Outcome;
use redress_platform::service::Storage;
use redress_platform::{ServiceContext, ServiceIdent};
use redress_playbook::Playbooks;
use redress_proto::subjects;
use redress_proto::v1::envelope::Payload;
use sqlx::PgPool;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "approval",
    schema: "approval",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Approvals {
    pub ctx: ServiceContext,
    pub pool: PgPool,
    pub(crate) storage: Storage,
    pub playbooks: Playbooks,
}

impl Approvals {
    pub async fn new(ctx: ServiceContext) -> anyhow::Result<Arc<Self>> {
        let storage = Storage::open(&ctx, &IDENT, &MIGRATOR).await?;
        let playbooks = redress_platform::playbooks::load(&ctx, &storage.pool, "approval").await?;
        Ok(Arc::new(Self {
            ctx,
            pool: storage.pool.clone(),
            storage,
            playbooks,
        }))
    }
}

async fn dispatch(approvals: Arc<Approvals>, event: Event) -> Outcome {
    match &event.payload {
        Payload::WorkChanged(change) => {
            let change = change.clone();
            handlers::work_changed::handle(&approvals, &event, change).await
        }
        _ => Outcome::Ack,
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    ctx.health.register(IDENT.name);
    let approvals = Approvals::new(ctx.clone()).await?;

    let consumer = {
        let approvals = approvals.clone();
        events::spawn_consumer(
            &ctx,
            IDENT.name,
            ctx.subjects
                .work_event(redress_proto::subjects::events::WORK_PROPOSED, "*"),
            move |event| dispatch(approvals.clone(), event),
        )
        .await?
    };

    let mut commands = CommandService::start(
        &ctx,
        IDENT.name,
        env!("CARGO_PKG_VERSION"),
        "Sign-off on proposals above the playbook's thresholds",
    )
    .await?;
    {
        let approvals = approvals.clone();
        commands
            .endpoint(
                subjects::approval::DECIDE,
                subjects::approval::DECIDE,
                move |m| handlers::decide::handle(approvals.clone(), m),
            )
            .await?;
    }
    {
        let approvals = approvals.clone();
        commands
            .endpoint(
                subjects::approval::LIST,
                subjects::approval::LIST,
                move |m| handlers::list::handle(approvals.clone(), m),
            )
            .await?;
    }

    // Ready means reachable: the server must have our subscriptions before we say so.
    commands.reachable(&ctx.nats).await?;
    ctx.health.set_ready(IDENT.name, true);
    tracing::info!(service = IDENT.name, "serving");
    ctx.shutdown.cancelled().await;
    ctx.health.set_ready(IDENT.name, false);
    let _ = consumer.await;
    commands.stop().await;
    match Arc::try_unwrap(approvals) {
        Ok(approvals) => approvals.storage.close().await,
        Err(approvals) => approvals.pool.close().await,
    }
    Ok(())
}
