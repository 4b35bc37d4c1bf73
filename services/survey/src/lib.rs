//! Survey: surveys complainants after resolution and closes or reopens.
//!
//! Messages and where they are handled:
//! - `WorkChanged` events whose work item is RESOLVED (every other event is acknowledged and
//!   ignored): [`handlers::work_changed`], which sends one survey per work item and round.
//! - `AnswerSurvey` as a request on `<root>.cmd.survey.answer`: [`handlers::answer`], which
//!   publishes `survey.answered` and `complaint.closed` or `complaint.reopened`.

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
    name: "survey",
    schema: "survey",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Surveys {
    pub ctx: ServiceContext,
    pub pool: PgPool,
    pub(crate) storage: Storage,
    pub playbooks: Playbooks,
}

impl Surveys {
    pub async fn new(ctx: ServiceContext) -> anyhow::Result<Arc<Self>> {
        let storage = Storage::open(&ctx, &IDENT, &MIGRATOR).await?;
        let playbooks = redress_platform::playbooks::load(&ctx, &storage.pool, "survey").await?;
        Ok(Arc::new(Self {
            ctx,
            pool: storage.pool.clone(),
            storage,
            playbooks,
        }))
    }
}

async fn dispatch(surveys: Arc<Surveys>, event: Event) -> Outcome {
    match &event.payload {
        Payload::WorkChanged(change) => {
            let change = change.clone();
            handlers::work_changed::handle(&surveys, &event, change).await
        }
        _ => Outcome::Ack,
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    ctx.health.register(IDENT.name);
    let surveys = Surveys::new(ctx.clone()).await?;
    let subjects = &ctx.subjects;
    let concurrency = ctx.config.settings.consumer.concurrency;

    let consumer = {
        let surveys = surveys.clone();
        events::spawn_consumer(
            &ctx,
            IDENT.name,
            ctx.subjects
                .work_event(redress_proto::subjects::events::WORK_RESOLVED, "*"),
            move |event| dispatch(surveys.clone(), event),
        )
        .await?
    };

    let service = ctx
        .nats
        .service_builder()
        .description("Satisfaction surveys: answers close or reopen complaints")
        .start(
            subjects.service_name(IDENT.name),
            env!("CARGO_PKG_VERSION").to_string(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("start NATS service: {e}"))?;
    let group = service.group(subjects.command_group(IDENT.name));
    let answer = group
        .endpoint(subjects::survey::ANSWER)
        .await
        .map_err(|e| anyhow::anyhow!("answer endpoint: {e}"))?;
    let answer_task = {
        let surveys = surveys.clone();
        tokio::spawn(redress_platform::commands::serve(
            answer,
            concurrency,
            ctx.shutdown.clone(),
            move |m| handlers::answer::handle(surveys.clone(), m),
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
    let _ = answer_task.await;
    let _ = service.stop().await;
    match Arc::try_unwrap(surveys) {
        Ok(surveys) => surveys.storage.close().await,
        Err(surveys) => surveys.pool.close().await,
    }
    Ok(())
}
