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

    let mut commands = CommandService::start(
        &ctx,
        IDENT.name,
        env!("CARGO_PKG_VERSION"),
        "Satisfaction surveys: answers close or reopen complaints",
    )
    .await?;
    {
        let surveys = surveys.clone();
        commands
            .endpoint(
                subjects::survey::ANSWER,
                subjects::survey::ANSWER,
                move |m| handlers::answer::handle(surveys.clone(), m),
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
    match Arc::try_unwrap(surveys) {
        Ok(surveys) => surveys.storage.close().await,
        Err(surveys) => surveys.pool.close().await,
    }
    Ok(())
}
