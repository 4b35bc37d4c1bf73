//! `DecideApproval`: an approver approves or rejects the pending approval of a ticket's
//! latest proposal. The decision, its event and its reply commit together; the same command
//! id sent again gets the same reply and changes nothing.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redress_platform::commands::{self, Claim};
use redress_platform::envelope::{Cause, new_event};
use redress_platform::events::outgoing;
use redress_platform::outbox;
use redress_proto::subjects::events;
use redress_proto::v1::approval_reply::Outcome;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ApprovalReply, CommandError, CommandErrorCode, DecideApproval};
use tracing::Instrument;

use super::{APPROVED, COLUMNS, PENDING, REJECTED, StoredApproval, command_error};
use crate::{Approvals, IDENT};

pub async fn handle(approvals: Arc<Approvals>, message: async_nats::Message) -> Bytes {
    let span = tracing::info_span!("approval.decide", ticket = tracing::field::Empty);
    redress_platform::telemetry::set_parent_from_headers(&span, message.headers.as_ref());
    async {
        let cmd = match DecideApproval::decode(message.payload.clone()) {
            Ok(cmd) => cmd,
            Err(e) => {
                return refused(command_error(
                    CommandErrorCode::Undecodable,
                    "",
                    format!("not a DecideApproval: {e}"),
                ));
            }
        };
        tracing::Span::current().record("ticket", cmd.ticket.as_str());
        if let Err(e) = validate(&cmd) {
            return refused(e);
        }
        match decide(&approvals, &cmd).await {
            Ok(reply) => reply.into(),
            Err(Refusal::Refused(e)) => {
                tracing::info!(code = e.code, field = %e.field, "decision refused");
                refused(e)
            }
            Err(Refusal::Storage(e)) => {
                tracing::error!(error = %e, "deciding failed");
                refused(command_error(
                    CommandErrorCode::Internal,
                    "",
                    "the decision could not be stored right now; send it again",
                ))
            }
        }
    }
    .instrument(span)
    .await
}

fn refused(error: CommandError) -> Bytes {
    ApprovalReply {
        outcome: Some(Outcome::Error(error)),
    }
    .encode_to_vec()
    .into()
}

fn validate(cmd: &DecideApproval) -> Result<(), CommandError> {
    let missing =
        |field: &str, message: &str| Err(command_error(CommandErrorCode::Missing, field, message));
    if cmd.command_id.trim().is_empty() {
        return missing(
            "command_id",
            "every command needs an id, so a resend is harmless",
        );
    }
    if cmd.ticket.trim().is_empty() {
        return missing("ticket", "which ticket's approval is decided");
    }
    if cmd.approver.trim().is_empty() {
        return missing("approver", "who decides");
    }
    if !cmd.approve && cmd.note.trim().is_empty() {
        // The department has to know what to change before it proposes again.
        return missing("note", "a rejection must say why");
    }
    Ok(())
}

enum Refusal {
    Refused(CommandError),
    Storage(sqlx::Error),
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Refusal::Storage(e)
    }
}

/// Returns the encoded reply: the stored one for a command seen before, else the new
/// decision's. A refusal rolls everything back, the claim included, so the same id can be
/// sent again once whatever refused it has changed.
async fn decide(approvals: &Approvals, cmd: &DecideApproval) -> Result<Vec<u8>, Refusal> {
    let mut tx = approvals.pool.begin().await?;
    match commands::claim(&mut tx, &cmd.command_id, &cmd.encode_to_vec()).await? {
        Claim::Done(reply) => return Ok(reply),
        Claim::Conflict => {
            return Err(Refusal::Refused(CommandError {
                code: CommandErrorCode::Malformed as i32,
                field: "command_id".into(),
                message: "this command_id was already used for a different command".into(),
            }));
        }
        Claim::New => {}
    }
    let ticket = cmd.ticket.trim();
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE ticket = $1
         ORDER BY work_version DESC, requested_at DESC LIMIT 1 FOR UPDATE"
    ))
    .bind(ticket)
    .fetch_optional(&mut *tx)
    .await?;
    let refuse = |code, field: &str, message: String| {
        Err(Refusal::Refused(command_error(code, field, message)))
    };
    let Some(row) = row else {
        return refuse(
            CommandErrorCode::NotFound,
            "ticket",
            format!("no approval for ticket {ticket}"),
        );
    };
    let mut approval = StoredApproval::from_row(&row);
    let named = cmd.approval_id.trim();
    if !named.is_empty() && named != approval.approval_id.to_string() {
        return refuse(
            CommandErrorCode::WrongState,
            "approval_id",
            format!("{named} is not the current approval of ticket {ticket}"),
        );
    }
    if approval.state != PENDING {
        return refuse(
            CommandErrorCode::WrongState,
            "ticket",
            format!(
                "the approval of ticket {ticket} is {} already",
                approval.state
            ),
        );
    }
    let Ok(playbook) = approvals.playbooks.get(&approval.playbook) else {
        return refuse(
            CommandErrorCode::Internal,
            "",
            format!("playbook {} is not loaded here", approval.playbook),
        );
    };
    // The role recorded when the approval opened, so a later change of the playbook's
    // approver role does not move a pending approval to other people.
    let may_decide = playbook
        .approval
        .approvers
        .iter()
        .any(|a| a.name == cmd.approver && a.role == approval.approver_role);
    if !may_decide {
        return refuse(
            CommandErrorCode::Forbidden,
            "approver",
            format!(
                "{} is not an approver with the role {}",
                cmd.approver, approval.approver_role
            ),
        );
    }
    if cmd.approver == approval.proposal.proposed_by {
        return refuse(
            CommandErrorCode::Forbidden,
            "approver",
            "nobody approves their own proposal".into(),
        );
    }

    let now = approvals.ctx.clock.now();
    approval.state = if cmd.approve { APPROVED } else { REJECTED }.to_string();
    approval.decided_by = cmd.approver.clone();
    approval.note = cmd.note.trim().to_string();
    approval.automatic = false;
    sqlx::query(
        "UPDATE approvals SET state = $2, decided_by = $3, note = $4, decided_at = $5
         WHERE approval_id = $1",
    )
    .bind(approval.approval_id)
    .bind(&approval.state)
    .bind(&approval.decided_by)
    .bind(&approval.note)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let envelope = new_event(
        IDENT.name,
        &Cause {
            complaint_id: approval.complaint_id,
            causation_id: cmd.command_id.clone(),
            correlation_id: approval.complaint_id.to_string(),
            playbook: approval.playbook.clone(),
        },
        now,
        Payload::ApprovalDecided(approval.decided()),
    );
    outbox::enqueue(
        &mut tx,
        IDENT.schema,
        &approvals.storage.outbox,
        &[outgoing(
            approvals.ctx.subjects.event(events::APPROVAL_DECIDED),
            &envelope,
        )],
    )
    .await?;
    let reply = ApprovalReply {
        outcome: Some(Outcome::Approval(approval.view())),
    }
    .encode_to_vec();
    commands::finish(&mut tx, &cmd.command_id, &reply).await?;
    tx.commit().await?;
    approvals.storage.outbox.wake();
    approvals.ctx.metrics.incr(&format!(
        "approval_decided_total{{approved=\"{}\"}}",
        cmd.approve
    ));
    tracing::info!(
        ticket, approver = %cmd.approver, approved = cmd.approve, "approval decided"
    );
    Ok(reply)
}
