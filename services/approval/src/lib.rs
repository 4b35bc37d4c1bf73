//! Approval: collects sign-off on proposals above the playbook's thresholds.
//!
//! Messages and where they are handled:
//! - `work.proposed.<department>` (the consumer filters on it): [`handlers::work_changed`],
//!   which opens one approval per proposal and either asks for a decision
//!   (`approval.requested`) or lets the policy approve it at once (`approval.decided`,
//!   automatic).
//! - `DecideApproval` as a request on `<root>.cmd.approval.decide`: [`handlers::decide`].
//! - `ListApprovals` as a request on `<root>.cmd.approval.list`: [`handlers::list`].

pub mod domain;
pub mod handlers;

use std::sync::Arc;

use redress_platform::events::{Event, Failure, Filter, Handler, Parsed};
use redress_platform::{Host, ServiceContext, ServiceIdent, Store, Unit};
use redress_playbook::Playbooks;
use redress_proto::EventKind;
use redress_proto::subjects;
use redress_proto::v1::WorkChange;
use redress_proto::v1::envelope::Payload;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "approval",
    schema: "approval",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Approvals {
    pub ctx: ServiceContext,
    pub store: Store,
    pub playbooks: Playbooks,
    /// For the day a delegation covers, in the playbook calendar's zone.
    pub calendars: redress_calendar::CalendarSet,
}

impl Approvals {
    /// Today in the zone of `playbook`'s calendar (UTC when it has none).
    pub fn today(&self, playbook: &redress_playbook::Playbook) -> chrono::NaiveDate {
        let now = self.ctx.clock.now();
        let zoned = self
            .calendars
            .get(&playbook.sla.calendar)
            .ok()
            .and_then(|c| {
                let t = jiff::Timestamp::from_microsecond(now.timestamp_micros()).ok()?;
                let d = t.to_zoned(c.zone().clone()).date();
                chrono::NaiveDate::from_ymd_opt(
                    i32::from(d.year()),
                    u32::try_from(d.month()).ok()?,
                    u32::try_from(d.day()).ok()?,
                )
            });
        zoned.unwrap_or_else(|| now.date_naive())
    }
}

impl Handler for Approvals {
    type Input = handlers::work_changed::Opening;

    fn parse(&self, event: &Event) -> Parsed<Self::Input> {
        match &event.payload {
            Payload::WorkChanged(change) => handlers::work_changed::parse(self, event, change),
            _ => Parsed::Skip,
        }
    }

    async fn apply(
        &self,
        unit: &mut Unit,
        event: &Event,
        input: &Self::Input,
    ) -> Result<(), Failure> {
        handlers::work_changed::apply(self, unit, event, input).await
    }
}

/// Runs one instance until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let approvals = Arc::new(Approvals {
        ctx: ctx.clone(),
        store: host.store(),
        playbooks: host.playbooks("approval").await?,
        calendars: redress_calendar::CalendarSet::builtin()?,
    });
    host.consume(
        Filter::Kinds(vec![EventKind::Work(WorkChange::Proposed)]),
        approvals.clone(),
    )
    .await?;
    let commands = host
        .commands("Sign-off on proposals above the playbook's thresholds")
        .await?;
    {
        let approvals = approvals.clone();
        commands
            .command(
                subjects::approval::DECIDE,
                subjects::approval::DECIDE,
                "decide",
                move |cmd, message| handlers::decide::handle(approvals.clone(), cmd, message),
            )
            .await?;
    }
    {
        let approvals = approvals.clone();
        commands
            .command(
                subjects::approval::LIST,
                subjects::approval::LIST,
                "list",
                move |query, _| handlers::list::handle(approvals.clone(), query),
            )
            .await?;
    }
    {
        let approvals = approvals.clone();
        commands
            .command(
                subjects::approval::DELEGATE,
                subjects::approval::DELEGATE,
                "delegate",
                move |cmd, message| handlers::delegate::handle(approvals.clone(), cmd, message),
            )
            .await?;
    }
    host.serve().await
}
