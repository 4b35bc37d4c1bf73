//! Department commands: accept, propose, reply, resolve. Each is checked against who sends
//! it (a member of the department that owns the work) and the work's state, changes the
//! work in one transaction with its event, and answers with the work item or a typed error.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::commands::{Claimed, Refusal};
use redress_proto::subjects;
use redress_proto::v1::{
    CommandErrorCode, ReplyToComplainant, WorkCommand, WorkCommandReply, work_command::Action,
    work_command_reply::Outcome,
};

use crate::domain::work;
use crate::{Caused, Routing, store};

impl From<work::Refusal> for Refusal {
    fn from(r: work::Refusal) -> Self {
        let message = r.to_string();
        match r {
            work::Refusal::Missing { field } => Refusal::missing(field, message),
            work::Refusal::Malformed { field, .. } => Refusal::malformed(field, message),
            work::Refusal::Forbidden { field, .. } => Refusal::forbidden(field, message),
            work::Refusal::WrongState { .. } => Refusal::wrong_state("ticket", message),
        }
    }
}

pub async fn handle(
    routing: Arc<Routing>,
    verb: &'static str,
    mut cmd: WorkCommand,
    message: async_nats::Message,
) -> Result<WorkCommandReply, Refusal> {
    tracing::Span::current().record("ticket", cmd.ticket.trim());
    bind_department(&routing, &message.subject, &mut cmd)?;
    run(&routing, verb, cmd).await
}

/// The department is the one in the subject (which broker permissions can restrict); a
/// command that names another in its body is refused.
fn bind_department(routing: &Routing, subject: &str, cmd: &mut WorkCommand) -> Result<(), Refusal> {
    let Some(dept) = routing.ctx.subjects.department_of_command(subject) else {
        return Err(Refusal::malformed(
            "department",
            format!("{subject} does not end in a department"),
        ));
    };
    let named = cmd.department.trim();
    if named.is_empty() {
        cmd.department = dept.to_string();
    } else if named != dept {
        return Err(Refusal::forbidden(
            "department",
            format!("sent on the subject of {dept} for {named}"),
        ));
    }
    Ok(())
}

/// Free text a department writes: at most this many bytes.
const MAX_TEXT: usize = 16 * 1024;

fn check_shape(verb: &str, cmd: &WorkCommand) -> Result<(), Refusal> {
    Refusal::require("command_id", &cmd.command_id)?;
    Refusal::require("ticket", &cmd.ticket)?;
    Refusal::token("ticket", &cmd.ticket, 64)?;
    Refusal::token("actor", &cmd.actor, 100)?;
    let given = match &cmd.action {
        None => return Err(Refusal::missing("action", "action is required")),
        Some(Action::Accept(_)) => subjects::routing::ACCEPT,
        Some(Action::Propose(p)) => {
            Refusal::text("propose.remedy", &p.remedy, MAX_TEXT)?;
            Refusal::token("propose.currency", &p.currency, 3)?;
            subjects::routing::PROPOSE
        }
        Some(Action::Reply(r)) => {
            Refusal::text("reply.message", &r.message, MAX_TEXT)?;
            subjects::routing::REPLY
        }
        Some(Action::Resolve(r)) => {
            Refusal::text("resolve.summary", &r.summary, MAX_TEXT)?;
            subjects::routing::RESOLVE
        }
    };
    if given != verb {
        return Err(Refusal::malformed(
            "action",
            format!("a {given} action sent to the {verb} command"),
        ));
    }
    Ok(())
}

async fn run(routing: &Routing, verb: &str, cmd: WorkCommand) -> Result<WorkCommandReply, Refusal> {
    check_shape(verb, &cmd)?;
    let request = [verb.as_bytes(), b":", &cmd.encode_to_vec()].concat();
    let mut unit = match routing
        .store
        .claim::<WorkCommandReply>(&cmd.command_id, &request)
        .await?
    {
        Claimed::Done(reply) => return Ok(reply),
        Claimed::New(unit) => unit,
    };
    let ticket = cmd.ticket.trim();
    let Some(mut work) = store::lock_by_ticket(unit.db(), ticket).await? else {
        return Err(Refusal::not_found(
            "ticket",
            format!("no work for ticket {ticket}"),
        ));
    };
    let playbook = routing
        .playbooks
        .get(&work.playbook)
        .map_err(|e| Refusal::new(CommandErrorCode::Internal, "", e.to_string()))?;
    work.authorise(playbook, cmd.department.trim(), cmd.actor.trim())?;
    let actor = cmd.actor.trim();
    let now = routing.now();
    let (change, note) = match cmd.action.as_ref().expect("checked") {
        Action::Accept(_) => (work.accept(actor, now)?, String::new()),
        Action::Propose(p) => (work.propose(actor, p, &playbook.currency)?, String::new()),
        Action::Reply(r) => (work.reply(&r.message, now)?, String::new()),
        Action::Resolve(r) => (work.resolve(now)?, r.summary.trim().to_string()),
    };
    store::save(unit.db(), &work, change.token(), actor, &note, now).await?;
    unit.emit(routing.work_changed(
        &work,
        change,
        actor,
        &note,
        Caused::Command(&cmd.command_id),
    ));
    if let Some(Action::Reply(_)) = &cmd.action {
        let subject = unit.subjects().notify_reply(&work.channel);
        unit.send(
            subject,
            format!("reply:{}:{}", work.work_id, work.version),
            &ReplyToComplainant {
                ticket: work.ticket.clone(),
                complaint_id: work.complaint_id.to_string(),
                channel: work.channel.clone(),
                external_id: work.external_id.clone(),
                department: work.department.clone(),
                message: work.reply.clone().unwrap_or_default(),
            },
        );
    }
    tracing::info!(change = change.token(), actor, "work changed");
    unit.finish(WorkCommandReply {
        outcome: Some(Outcome::Work(work.to_proto())),
    })
    .await
}
