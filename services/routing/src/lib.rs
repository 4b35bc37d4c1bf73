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
//! - `complaint.withdrawn`: [`handlers::complaint_withdrawn`]
//! - `complaint.responded`: [`handlers::complaint_responded`]
//! - `complaint.evidence_supplied`: [`handlers::complaint_evidence_supplied`]
//! - commands `<root>.cmd.routing.<verb>.<dept>`, verbs accept, propose, reply, resolve,
//!   transfer, progress, contest, explain, investigate, commit, merge, request_evidence,
//!   reclassify:
//!   [`handlers::work_command`]
//! - command `<root>.cmd.routing.list.<dept>`: [`handlers::list_work`]

pub mod domain;
pub mod handlers;
mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use redress_platform::envelope::{Cause, new_event};
use redress_platform::events::Filter;
use redress_platform::{Host, ServiceContext, ServiceIdent, Store};
use redress_playbook::Playbooks;
use redress_proto::EventKind;
use redress_proto::subjects;
use redress_proto::v1::{Envelope, WorkChange, WorkChanged, envelope::Payload};

use domain::work::Work;

pub const IDENT: ServiceIdent = ServiceIdent {
    name: "routing",
    schema: "routing",
};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Shared by every handler of one running instance.
pub struct Routing {
    pub ctx: ServiceContext,
    pub store: Store,
    pub playbooks: Playbooks,
}

impl Routing {
    fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// The event that announces `change` of `w`, caused by `cause` (an event being handled,
    /// or a command). Only the assignment carries the complaint text (sealed): the department
    /// reads it there, and no later change needs it again.
    fn work_changed(
        &self,
        w: &Work,
        change: WorkChange,
        actor: &str,
        note: &str,
        cause: Caused<'_>,
    ) -> Envelope {
        self.work_changed_with(w, change, actor, note, cause, Told::default())
    }

    /// Stores `w` after `change` (with its line in routing's history) and announces it, both
    /// in `unit`.
    pub(crate) async fn record(
        &self,
        unit: &mut redress_platform::Unit,
        w: &Work,
        change: WorkChange,
        actor: &str,
        note: &str,
        cause: Caused<'_>,
    ) -> sqlx::Result<()> {
        store::save(unit.db(), w, change.token(), actor, note, self.now()).await?;
        unit.emit(self.work_changed(w, change, actor, note, cause));
        Ok(())
    }

    /// A round answered with an explanation and resolved closes at once when the playbook
    /// surveys no such rounds (`survey.after_explain = false`).
    pub(crate) async fn close_unsurveyed(
        &self,
        unit: &mut redress_platform::Unit,
        w: &mut Work,
        playbook: &redress_playbook::Playbook,
        actor: &str,
        cause: Caused<'_>,
    ) -> sqlx::Result<()> {
        if let Some(change) = w.close_unsurveyed(playbook) {
            let note = "closed without a survey (survey.after_explain = false)";
            self.record(unit, w, change, actor, note, cause).await?;
        }
        Ok(())
    }

    /// [`Routing::work_changed`] with what only some changes tell.
    fn work_changed_with(
        &self,
        w: &Work,
        change: WorkChange,
        actor: &str,
        note: &str,
        cause: Caused<'_>,
        told: Told,
    ) -> Envelope {
        let mut work = w.to_proto();
        if change != WorkChange::Assigned {
            work.text.clear();
            work.sealed_text.clear();
        }
        let payload = Payload::WorkChanged(WorkChanged {
            work: Some(work),
            actor: actor.to_string(),
            note: note.to_string(),
            change: change as i32,
            transfer: told.transfer,
            sealed_note: told.sealed_note,
            investigation: told.investigation,
            evidence_token_sha256: told.evidence_token_sha256,
            evidence: told.evidence,
            reclassification: told.reclassification,
        });
        cause.envelope(w, self.now(), payload)
    }
}

/// Why text for the complainant cannot be sealed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error("the complainant's data was erased; there is nobody to write to")]
    Erased,
    #[error("the complaint's key is not available yet")]
    NotYet,
    #[error("the complaint's key cannot be read right now")]
    Unavailable,
}

impl Routing {
    /// `text` sealed with the complaint's text key, like the complaint itself: it goes on
    /// the event stream and may address the complainant by name. None only for work from
    /// before sealing, whose complaint has no text key.
    pub(crate) async fn seal(&self, work: &Work, text: &str) -> Result<Option<Vec<u8>>, SealError> {
        use redress_platform::sealed::Lookup;
        match self.ctx.text_keys.lookup(&work.complaint_id).await {
            Ok(Lookup::Key(key)) => Ok(Some(key.seal(text, &work.complaint_id))),
            Ok(Lookup::Erased) => Err(SealError::Erased),
            Ok(Lookup::NotYet) if work.sealed_text.is_empty() => Ok(None),
            Ok(Lookup::NotYet) => Err(SealError::NotYet),
            Err(e) => {
                tracing::error!(error = %e, "text key lookup failed");
                Err(SealError::Unavailable)
            }
        }
    }
}

/// What a work event tells beyond the work item, the actor and the note.
#[derive(Default)]
pub(crate) struct Told {
    /// The hop, when the assignment is a transfer.
    pub transfer: Option<redress_proto::v1::WorkTransfer>,
    /// Text to or from the complainant, sealed with the complaint's text key.
    pub sealed_note: Vec<u8>,
    /// The entry of the investigation record.
    pub investigation: Option<redress_proto::v1::Investigate>,
    /// The hash of the token an evidence request sent the complainant.
    pub evidence_token_sha256: Vec<u8>,
    /// The evidence that ended a wait.
    pub evidence: Option<redress_proto::v1::ComplaintEvidenceSupplied>,
    /// The classification before a correction.
    pub reclassification: Option<redress_proto::v1::Reclassification>,
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
                    ticket: w.ticket.clone(),
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
    let mut host = Host::open(ctx.clone(), IDENT, &MIGRATOR).await?;
    let routing = Arc::new(Routing {
        ctx: ctx.clone(),
        store: host.store(),
        playbooks: host.playbooks("routing").await?,
    });
    host.consume(
        Filter::Kinds(vec![
            EventKind::ComplaintClassified,
            EventKind::ApprovalDecided,
            EventKind::SlaBreached,
            EventKind::SlaEscalation,
            EventKind::ComplaintClosed,
            EventKind::ComplaintReopened,
            EventKind::ComplaintWithdrawn,
            EventKind::ComplaintResponded,
            EventKind::ComplaintEvidenceSupplied,
        ]),
        routing.clone(),
    )
    .await?;
    let commands = host
        .commands("Assigns complaints to departments and carries their work")
        .await?;
    // `<verb>.<department>`: the department in the subject lets broker permissions keep each
    // department's credentials to its own commands.
    for (verb, what) in [
        (subjects::routing::ACCEPT, "work.accept"),
        (subjects::routing::PROPOSE, "work.propose"),
        (subjects::routing::REPLY, "work.reply"),
        (subjects::routing::RESOLVE, "work.resolve"),
        (subjects::routing::TRANSFER, "work.transfer"),
        (subjects::routing::PROGRESS, "work.progress"),
        (subjects::routing::CONTEST, "work.contest"),
        (subjects::routing::EXPLAIN, "work.explain"),
        (subjects::routing::INVESTIGATE, "work.investigate"),
        (subjects::routing::COMMIT, "work.commit"),
        (subjects::routing::MERGE, "work.merge"),
        (subjects::routing::REQUEST_EVIDENCE, "work.request_evidence"),
        (subjects::routing::RECLASSIFY, "work.reclassify"),
    ] {
        let routing = routing.clone();
        commands
            .command(verb, &format!("{verb}.*"), what, move |cmd, m| {
                handlers::work_command::handle(routing.clone(), verb, cmd, m)
            })
            .await?;
    }
    {
        let routing = routing.clone();
        let list = subjects::routing::LIST;
        commands
            .command(list, &format!("{list}.*"), "work.list", move |query, m| {
                handlers::list_work::handle(routing.clone(), query, m)
            })
            .await?;
    }
    host.serve().await
}
