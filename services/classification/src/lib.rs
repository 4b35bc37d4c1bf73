//! Classification: decides nature, category, severity and urgency of each complaint by the
//! rules of its playbook.
//!
//! Messages and where they are handled:
//! - `complaint.received`: [`handlers::complaint_received`], which publishes
//!   `complaint.classified`.
//! - `work.reclassified` (a department's correction): [`handlers::work_reclassified`].

pub mod domain;
pub mod handlers;

use std::sync::Arc;

use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Unit};
use redress_playbook::Playbooks;
use redress_proto::EventKind;
use redress_proto::v1::WorkChange;
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

/// What classification reads from an event before its transaction.
pub enum Input {
    Received(Box<handlers::complaint_received::Received>),
    Corrected(Box<handlers::work_reclassified::Correction>),
}

impl Handler for Classifier {
    type Input = Input;

    fn parse(&self, event: &Event) -> Parsed<Self::Input> {
        match &event.payload {
            Payload::ComplaintReceived(received) => {
                handlers::complaint_received::parse(self, event, received)
                    .map(|r| Input::Received(Box::new(r)))
            }
            Payload::WorkChanged(w) if w.change() == WorkChange::Reclassified => {
                handlers::work_reclassified::parse(self, event, w)
                    .map(|c| Input::Corrected(Box::new(c)))
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
        self.apply_batch(unit, &[(event, input)]).await
    }

    /// New complaints together (one statement for the batch's decisions), corrections one
    /// by one.
    async fn apply_batch(
        &self,
        unit: &mut Unit,
        batch: &[(&Event, &Self::Input)],
    ) -> Result<(), Failure> {
        let received: Vec<(&Event, &handlers::complaint_received::Received)> = batch
            .iter()
            .filter_map(|(e, i)| match i {
                Input::Received(r) => Some((*e, &**r)),
                Input::Corrected(_) => None,
            })
            .collect();
        if !received.is_empty() {
            handlers::complaint_received::record(self, unit, &received).await?;
        }
        for (event, input) in batch {
            if let Input::Corrected(c) = input {
                handlers::work_reclassified::record(self, unit, event, c).await?;
            }
        }
        Ok(())
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
        Filter::Kinds(vec![
            EventKind::ComplaintReceived,
            EventKind::Work(WorkChange::Reclassified),
        ]),
        classifier,
    )
    .await?;
    host.serve().await
}
