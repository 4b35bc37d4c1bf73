//! Department commands: accept, propose, reply, resolve. Each is checked against who sends
//! it (a member of the department that owns the work) and the work's state, changes the
//! work in one transaction with its event, and answers with the work item or a typed error.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_platform::commands::{Claim, claim, finish};
use redress_platform::outbox;
use redress_proto::subjects;
use redress_proto::v1::{
    CommandError, CommandErrorCode, ReplyToComplainant, WorkCommand, WorkCommandReply,
    work_command::Action, work_command_reply::Outcome,
};

use crate::domain::work::Refusal;
use crate::{Caused, IDENT, Routing, store};

fn error(code: CommandErrorCode, field: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: code as i32,
        field: field.to_string(),
        message: message.into(),
    }
}

impl From<Refusal> for CommandError {
    fn from(r: Refusal) -> Self {
        let message = r.to_string();
        match r {
            Refusal::Missing { field } => error(CommandErrorCode::Missing, field, message),
            Refusal::Malformed { field, .. } => error(CommandErrorCode::Malformed, field, message),
            Refusal::Forbidden { field, .. } => error(CommandErrorCode::Forbidden, field, message),
            Refusal::WrongState { .. } => error(CommandErrorCode::WrongState, "ticket", message),
        }
    }
}

fn encode(outcome: Outcome) -> Bytes {
    WorkCommandReply {
        outcome: Some(outcome),
    }
    .encode_to_vec()
    .into()
}

pub async fn handle(
    routing: Arc<Routing>,
    verb: &'static str,
    message: async_nats::Message,
) -> Bytes {
    let span = tracing::info_span!("routing.command", verb, ticket = tracing::field::Empty);
    redress_platform::telemetry::set_parent_from_headers(&span, message.headers.as_ref());
    let _guard = span.enter();
    let reply = match WorkCommand::decode(message.payload.clone()) {
        Err(e) => Err(error(
            CommandErrorCode::Undecodable,
            "",
            format!("not a WorkCommand: {e}"),
        )),
        Ok(mut cmd) => {
            span.record("ticket", cmd.ticket.as_str());
            drop(_guard);
            match bind_department(&routing, &message.subject, &mut cmd) {
                Ok(()) => run(&routing, verb, cmd).await,
                Err(e) => Err(e),
            }
        }
    };
    match reply {
        Ok(bytes) => bytes,
        Err(e) => {
            routing.ctx.metrics.incr(&format!(
                "routing_commands_refused_total{{verb=\"{verb}\",code=\"{}\"}}",
                e.code().as_str_name()
            ));
            tracing::info!(verb, field = %e.field, message = %e.message, "command refused");
            encode(Outcome::Error(e))
        }
    }
}

/// The department is the one in the subject (which broker permissions can restrict); a
/// command that names another in its body is refused.
fn bind_department(
    routing: &Routing,
    subject: &str,
    cmd: &mut WorkCommand,
) -> Result<(), CommandError> {
    let Some(dept) = routing.ctx.subjects.department_of_command(subject) else {
        return Err(error(
            CommandErrorCode::Malformed,
            "department",
            format!("{subject} does not end in a department"),
        ));
    };
    let named = cmd.department.trim();
    if named.is_empty() {
        cmd.department = dept.to_string();
    } else if named != dept {
        return Err(error(
            CommandErrorCode::Forbidden,
            "department",
            format!("sent on the subject of {dept} for {named}"),
        ));
    }
    Ok(())
}

fn check_shape(verb: &str, cmd: &WorkCommand) -> Result<(), CommandError> {
    if cmd.command_id.trim().is_empty() {
        return Err(error(
            CommandErrorCode::Missing,
            "command_id",
            "command_id is required",
        ));
    }
    if cmd.ticket.trim().is_empty() {
        return Err(error(
            CommandErrorCode::Missing,
            "ticket",
            "ticket is required",
        ));
    }
    let given = match &cmd.action {
        None => {
            return Err(error(
                CommandErrorCode::Missing,
                "action",
                "action is required",
            ));
        }
        Some(Action::Accept(_)) => subjects::routing::ACCEPT,
        Some(Action::Propose(_)) => subjects::routing::PROPOSE,
        Some(Action::Reply(_)) => subjects::routing::REPLY,
        Some(Action::Resolve(_)) => subjects::routing::RESOLVE,
    };
    if given != verb {
        return Err(error(
            CommandErrorCode::Malformed,
            "action",
            format!("a {given} action sent to the {verb} command"),
        ));
    }
    Ok(())
}

async fn run(routing: &Routing, verb: &str, cmd: WorkCommand) -> Result<Bytes, CommandError> {
    check_shape(verb, &cmd)?;
    let internal = |e: sqlx::Error| {
        tracing::error!(error = %e, "command failed");
        error(
            CommandErrorCode::Internal,
            "",
            "storage unavailable, try again",
        )
    };
    let mut tx = routing.pool.begin().await.map_err(internal)?;
    let request = [verb.as_bytes(), b":", &cmd.encode_to_vec()].concat();
    match claim(&mut tx, &cmd.command_id, &request)
        .await
        .map_err(internal)?
    {
        Claim::Done(reply) => return Ok(reply.into()),
        Claim::Conflict => {
            return Err(error(
                CommandErrorCode::Malformed,
                "command_id",
                "this command_id was already used for a different command",
            ));
        }
        Claim::New => {}
    }
    let ticket = cmd.ticket.trim();
    let Some(mut work) = store::lock_by_ticket(&mut tx, ticket)
        .await
        .map_err(internal)?
    else {
        return Err(error(
            CommandErrorCode::NotFound,
            "ticket",
            format!("no work for ticket {ticket}"),
        ));
    };
    let playbook = routing
        .playbooks
        .get(&work.playbook)
        .map_err(|e| error(CommandErrorCode::Internal, "", e.to_string()))?;
    work.authorise(playbook, cmd.department.trim(), cmd.actor.trim())?;
    let actor = cmd.actor.trim();
    let now = routing.now();
    let (change, note) = match cmd.action.as_ref().expect("checked") {
        Action::Accept(_) => (work.accept(actor, now)?, String::new()),
        Action::Propose(p) => (work.propose(actor, p, &playbook.currency)?, String::new()),
        Action::Reply(r) => (work.reply(&r.message, now)?, String::new()),
        Action::Resolve(r) => (work.resolve(now)?, r.summary.trim().to_string()),
    };
    store::save(&mut tx, &work, change, actor, &note, now)
        .await
        .map_err(internal)?;
    let mut messages = vec![routing.work_changed(
        &work,
        change,
        actor,
        &note,
        Caused::Command(&cmd.command_id),
    )];
    if let Some(Action::Reply(_)) = &cmd.action {
        let reply = ReplyToComplainant {
            ticket: work.ticket.clone(),
            complaint_id: work.complaint_id.to_string(),
            channel: work.channel.clone(),
            external_id: work.external_id.clone(),
            department: work.department.clone(),
            message: work.reply.clone().unwrap_or_default(),
        };
        messages.push(redress_platform::outbox::Outgoing {
            msg_id: format!("reply:{}:{}", work.work_id, work.version),
            subject: routing.ctx.subjects.notify_reply(&work.channel),
            payload: reply.encode_to_vec(),
        });
    }
    outbox::enqueue(&mut tx, IDENT.schema, &routing.storage.outbox, &messages)
        .await
        .map_err(internal)?;
    let reply = encode(Outcome::Work(work.to_proto()));
    finish(&mut tx, &cmd.command_id, &reply)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    routing.storage.outbox.wake();
    tracing::info!(ticket, change, actor, "work changed");
    Ok(reply)
}
