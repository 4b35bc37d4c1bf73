//! Classification: decides nature, category, severity and urgency of each complaint by the
//! rules of its playbook.
//!
//! Messages and where they are handled:
//! - `complaint.received` (the consumer filters on it): [`handlers::complaint_received`],
//!   which publishes `complaint.classified`.

pub mod domain;
pub mod handlers;

use std::sync::Arc;

use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Unit};
use redress_playbook::Playbooks;
use redress_proto::EventKind;
use redress_proto::v1::envelope::Payload;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "classification",
    schema: "classification",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Classifier {
    pub ctx: ServiceContext,
    pub playbooks: Playbooks,
}

impl Handler for Classifier {
    type Input = handlers::complaint_received::Received;

    fn parse(&self, event: &Event) -> Parsed<Self::Input> {
        match &event.payload {
            Payload::ComplaintReceived(received) => {
                handlers::complaint_received::parse(self, event, received)
            }
            _ => Parsed::Skip,
        }
    }

    async fn apply(
        &self,
        unit: &mut Unit,
        event: &Event,
        input: &Self::Input,
    ) -> Result<(), Failure> {
        handlers::complaint_received::record(self, unit, &[(event, input)]).await
    }

    async fn apply_batch(
        &self,
        unit: &mut Unit,
        batch: &[(&Event, &Self::Input)],
    ) -> Result<(), Failure> {
        handlers::complaint_received::record(self, unit, batch).await
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let playbooks = host.playbooks("classification").await?;
    let classifier = Arc::new(Classifier {
        ctx: ctx.clone(),
        playbooks,
    });
    host.consume(
        Filter::Kinds(vec![EventKind::ComplaintReceived]),
        classifier,
    )
    .await?;
    host.serve().await
}
