//! Classification: decides nature, category, severity and urgency of each complaint by the
//! rules of its playbook.
//!
//! Messages and where they are handled:
//! - `complaint.received` (every other event is acknowledged and ignored):
//!   [`handlers::complaint_received`], which publishes `complaint.classified`.

pub mod domain;
pub mod handlers;

use std::sync::Arc;

use redress_platform::events::{self, Event};
use redress_platform::nats::Outcome;
use redress_platform::service::Storage;
use redress_platform::{ServiceContext, ServiceIdent};
use redress_playbook::Playbooks;
use redress_proto::v1::envelope::Payload;
use sqlx::PgPool;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "classification",
    schema: "classification",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Classifier {
    pub ctx: ServiceContext,
    pub pool: PgPool,
    pub(crate) storage: Storage,
    pub playbooks: Playbooks,
}

impl Classifier {
    pub async fn new(ctx: ServiceContext) -> anyhow::Result<Arc<Self>> {
        let storage = Storage::open(&ctx, &IDENT, &MIGRATOR).await?;
        let playbooks =
            redress_platform::playbooks::load(&ctx, &storage.pool, "classification").await?;
        Ok(Arc::new(Self {
            ctx,
            pool: storage.pool.clone(),
            storage,
            playbooks,
        }))
    }
}

async fn dispatch(classifier: Arc<Classifier>, event: Event) -> Outcome {
    match &event.payload {
        Payload::ComplaintReceived(received) => {
            let received = received.clone();
            handlers::complaint_received::handle(&classifier, &event, received).await
        }
        _ => Outcome::Ack,
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    ctx.health.register(IDENT.name);
    let classifier = Classifier::new(ctx.clone()).await?;
    let consumer = {
        let classifier = classifier.clone();
        events::spawn_consumer(
            &ctx,
            IDENT.name,
            ctx.subjects.complaint_received(),
            move |event| dispatch(classifier.clone(), event),
        )
        .await?
    };
    ctx.health.set_ready(IDENT.name, true);
    tracing::info!(service = IDENT.name, "serving");
    ctx.shutdown.cancelled().await;
    ctx.health.set_ready(IDENT.name, false);
    let _ = consumer.await;
    match Arc::try_unwrap(classifier) {
        Ok(classifier) => classifier.storage.close().await,
        Err(classifier) => classifier.pool.close().await,
    }
    Ok(())
}
