//! Routing: keeps departments and routing rules, assigns each classified complaint to the
//! responsible department, and holds the department's work item through accept, propose,
//! approval, reply, resolve, close and reopen. Every change is a `work.<change>.<dept>`
//! event; a department system follows its own `work.assigned.<dept>`.
//!
//! Messages and where they are handled:
//! - `complaint.classified`: [`handlers::complaint_classified`]
//! - `approval.decided`: [`handlers::approval_decided`]
//! - `sla.breached`: [`handlers::sla_breached`]
//! - `complaint.closed`: [`handlers::complaint_closed`]
//! - `complaint.reopened`: [`handlers::complaint_reopened`]
//! - commands `<root>.cmd.routing.{accept,propose,reply,resolve}.<dept>`:
//!   [`handlers::work_command`]
//! - command `<root>.cmd.routing.list.<dept>`: [`handlers::list_work`]

pub mod domain;
pub mod handlers;
mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_platform::commands::CommandService;
use redress_platform::envelope::{Cause, new_event};
use redress_platform::events::outgoing;
use redress_platform::outbox::Outgoing;
use redress_platform::service::Storage;
use redress_platform::{ServiceContext, ServiceIdent};
use redress_playbook::Playbooks;
use redress_proto::subjects;
use redress_proto::v1::{Envelope, WorkChanged, envelope::Payload};
use sqlx::PgPool;

use domain::work::Work;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "routing",
    schema: "routing",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Routing {
    pub ctx: ServiceContext,
    pub pool: PgPool,
    pub playbooks: Playbooks,
    storage: Storage,
}

impl Routing {
    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// The event that announces a change of `w`, caused by `cause` (an event being handled,
    /// or a command).
    fn work_changed(
        &self,
        w: &Work,
        change: &str,
        actor: &str,
        note: &str,
        cause: Caused<'_>,
    ) -> Outgoing {
        let payload = Payload::WorkChanged(WorkChanged {
            work: Some(w.to_proto()),
            actor: actor.to_string(),
            note: note.to_string(),
        });
        let envelope = cause.envelope(w, self.now(), payload);
        outgoing(
            self.ctx.subjects.work_event(change, &w.department),
            &envelope,
        )
    }
}

/// What caused a change: an event, or a command with its id.
#[derive(Clone, Copy)]
pub(crate) enum Caused<'a> {
    Event(&'a Envelope),
    Command(&'a str),
}

impl Caused<'_> {
    fn envelope(self, w: &Work, now: DateTime<Utc>, payload: Payload) -> Envelope {
        match self {
            Caused::Event(e) => redress_platform::envelope::follow_up(IDENT.name, e, now, payload),
            Caused::Command(command_id) => new_event(
                IDENT.name,
                &Cause {
                    complaint_id: w.complaint_id,
                    causation_id: command_id.to_string(),
                    correlation_id: w.correlation_id.clone(),
                    playbook: w.playbook.clone(),
                },
                now,
                payload,
            ),
        }
    }
}

/// Runs one instance of routing until the context's shutdown signal.
pub async fn run(ctx: ServiceContext) -> anyhow::Result<()> {
    ctx.health.register(IDENT.name);
    let storage = Storage::open(&ctx, &IDENT, &MIGRATOR).await?;
    let playbooks = redress_platform::playbooks::load(&ctx, &storage.pool, "routing").await?;
    let routing = Arc::new(Routing {
        pool: storage.pool.clone(),
        ctx: ctx.clone(),
        playbooks,
        storage,
    });
    let events = {
        let routing = routing.clone();
        redress_platform::events::spawn_consumer(
            &ctx,
            IDENT.name,
            ctx.subjects.all_events(),
            move |event| handlers::on_event(routing.clone(), event),
        )
        .await?
    };

    let mut commands = CommandService::start(
        &ctx,
        IDENT.name,
        env!("CARGO_PKG_VERSION"),
        "Assigns complaints to departments and carries their work",
    )
    .await?;
    // `<verb>.<department>`: the department in the subject lets broker permissions keep each
    // department's credentials to its own commands.
    for verb in [
        subjects::routing::ACCEPT,
        subjects::routing::PROPOSE,
        subjects::routing::REPLY,
        subjects::routing::RESOLVE,
    ] {
        let routing = routing.clone();
        commands
            .endpoint(verb, &format!("{verb}.*"), move |m| {
                handlers::work_command::handle(routing.clone(), verb, m)
            })
            .await?;
    }
    {
        let routing = routing.clone();
        let list = subjects::routing::LIST;
        commands
            .endpoint(list, &format!("{list}.*"), move |m| {
                handlers::list_work::handle(routing.clone(), m)
            })
            .await?;
    }
    commands.reachable(&ctx.nats).await?;
    ctx.health.set_ready(IDENT.name, true);
    tracing::info!(service = IDENT.name, "serving");
    ctx.shutdown.cancelled().await;
    ctx.health.set_ready(IDENT.name, false);
    let _ = events.await;
    commands.stop().await;
    match Arc::try_unwrap(routing) {
        Ok(r) => r.storage.close().await,
        Err(r) => r.pool.close().await,
    }
    Ok(())
}
