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

use async_nats::service::ServiceExt;
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
    let subjects = &ctx.subjects;
    let concurrency = ctx.config.settings.consumer.concurrency;

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

    let service = ctx
        .nats
        .service_builder()
        .description("Sign-off on proposals above the playbook's thresholds")
        .start(
            subjects.service_name(IDENT.name),
            env!("CARGO_PKG_VERSION").to_string(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("start NATS service: {e}"))?;
    let group = service.group(subjects.command_group(IDENT.name));
    let decide = group
        .endpoint(subjects::approval::DECIDE)
        .await
        .map_err(|e| anyhow::anyhow!("decide endpoint: {e}"))?;
    let list = group
        .endpoint(subjects::approval::LIST)
        .await
        .map_err(|e| anyhow::anyhow!("list endpoint: {e}"))?;
    let decide_task = {
        let approvals = approvals.clone();
        tokio::spawn(redress_platform::commands::serve(
            decide,
            concurrency,
            ctx.shutdown.clone(),
            move |m| handlers::decide::handle(approvals.clone(), m),
        ))
    };
    let list_task = {
        let approvals = approvals.clone();
        tokio::spawn(redress_platform::commands::serve(
            list,
            concurrency,
            ctx.shutdown.clone(),
            move |m| handlers::list::handle(approvals.clone(), m),
        ))
    };

    // Ready means reachable: the server must have our subscriptions before we say so.
    redress_platform::commands::confirm_subscriptions(
        &ctx.nats,
        &subjects.service_name(IDENT.name),
    )
    .await?;
    ctx.health.set_ready(IDENT.name, true);
    tracing::info!(service = IDENT.name, "serving");
    ctx.shutdown.cancelled().await;
    ctx.health.set_ready(IDENT.name, false);
    let _ = consumer.await;
    let _ = decide_task.await;
    let _ = list_task.await;
    let _ = service.stop().await;
    match Arc::try_unwrap(approvals) {
        Ok(approvals) => approvals.storage.close().await,
        Err(approvals) => approvals.pool.close().await,
    }
    Ok(())
}
