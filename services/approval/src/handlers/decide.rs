//! `DecideApproval`: an approver approves or rejects the pending approval of a ticket's
//! latest proposal. The decision, its event and its reply commit together; the same command
//! id sent again gets the same reply and changes nothing.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::commands::{Claimed, Refusal};
use redress_platform::envelope::{Cause, new_event};
use redress_proto::v1::approval_reply::Outcome;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ApprovalReply, DecideApproval};

use super::{APPROVED, COLUMNS, PENDING, REJECTED, StoredApproval};
use crate::{Approvals, IDENT};

fn validate(cmd: &DecideApproval) -> Result<(), Refusal> {
    Refusal::require("command_id", &cmd.command_id)?;
    Refusal::require("ticket", &cmd.ticket)?;
    Refusal::token("ticket", &cmd.ticket, 64)?;
    Refusal::require("approver", &cmd.approver)?;
    Refusal::token("approver", &cmd.approver, 100)?;
    Refusal::token("approval_id", &cmd.approval_id, 64)?;
    Refusal::text("note", &cmd.note, 4 * 1024)?;
    if !cmd.approve && cmd.note.trim().is_empty() {
        // The department has to know what to change before it proposes again.
        return Err(Refusal::missing("note", "a rejection must say why"));
    }
    Ok(())
}

/// A refusal rolls everything back, the claim included, so the same id can be sent again
/// once whatever refused it has changed. The approver is whoever signed the command.
pub async fn handle(
    approvals: Arc<Approvals>,
    mut cmd: DecideApproval,
    message: async_nats::Message,
) -> Result<ApprovalReply, Refusal> {
    tracing::Span::current().record("ticket", cmd.ticket.as_str());
    let person = redress_platform::people::signer(&approvals.ctx.people, &message).await?;
    redress_platform::people::bind("approver", &mut cmd.approver, &person)?;
    validate(&cmd)?;
    let mut unit = match approvals
        .store
        .claim::<ApprovalReply>(&cmd.command_id, &cmd.encode_to_vec())
        .await?
    {
        Claimed::Done(reply) => return Ok(reply),
        Claimed::New(unit) => unit,
    };
    let ticket = cmd.ticket.trim();
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE ticket = $1
         ORDER BY work_version DESC, requested_at DESC LIMIT 1 FOR UPDATE"
    ))
    .bind(ticket)
    .fetch_optional(unit.db())
    .await?;
    let Some(row) = row else {
        return Err(Refusal::not_found(
            "ticket",
            format!("no approval for ticket {ticket}"),
        ));
    };
    let mut approval = StoredApproval::from_row(&row);
    let named = cmd.approval_id.trim();
    if !named.is_empty() && named != approval.approval_id.to_string() {
        return Err(Refusal::wrong_state(
            "approval_id",
            format!("{named} is not the current approval of ticket {ticket}"),
        ));
    }
    if approval.state != PENDING {
        return Err(Refusal::wrong_state(
            "ticket",
            format!(
                "the approval of ticket {ticket} is {} already",
                approval.state
            ),
        ));
    }
    let Ok(playbook) = approvals.playbooks.get(&approval.playbook) else {
        return Err(Refusal::internal(format!(
            "playbook {} is not loaded here",
            approval.playbook
        )));
    };
    // The steps recorded when the approval opened, so a later change of the playbook does
    // not move a pending approval to other people.
    let step = usize::try_from(approval.step).unwrap_or(0);
    let Some((role, need)) = approval.steps.get(step).cloned() else {
        return Err(Refusal::internal(format!(
            "approval {} is at step {} of {}",
            approval.approval_id,
            step + 1,
            approval.steps.len()
        )));
    };
    let holds = |name: &str| {
        playbook
            .approval
            .approvers
            .iter()
            .any(|a| a.name == name && a.role == role)
    };
    // Whose approval this is: the signer's own, or, on the days it covers, that of an
    // approver of the role who delegated to the signer.
    let on_behalf: String = if holds(&cmd.approver) {
        cmd.approver.clone()
    } else {
        let today = approvals.today(playbook);
        let delegators: Vec<String> = sqlx::query_scalar(
            "SELECT delegator FROM delegations
             WHERE delegate = $1 AND playbook = $2 AND from_day <= $3 AND until_day >= $3
             ORDER BY recorded_at",
        )
        .bind(&cmd.approver)
        .bind(&approval.playbook)
        .bind(today)
        .fetch_all(unit.db())
        .await?;
        match delegators.into_iter().find(|d| holds(d)) {
            Some(d) => d,
            None => {
                return Err(Refusal::forbidden(
                    "approver",
                    format!(
                        "{} is not an approver with the role {role}, nor covering for one today",
                        cmd.approver
                    ),
                ));
            }
        }
    };
    let proposer = &approval.proposal.proposed_by;
    if &cmd.approver == proposer || &on_behalf == proposer {
        return Err(Refusal::forbidden(
            "approver",
            "nobody approves their own proposal, directly or through a delegation",
        ));
    }
    // "zhou.qiang for zhao.min" when a delegate decides.
    let signed_as = if on_behalf == cmd.approver {
        cmd.approver.clone()
    } else {
        format!("{} for {on_behalf}", cmd.approver)
    };

    let now = approvals.ctx.clock.now();
    let note = cmd.note.trim().to_string();
    let recorded = sqlx::query(
        "INSERT INTO approval_decisions (approval_id, step, approver, approve, note, at, delegate)
         VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, $3))
         ON CONFLICT (approval_id, step, approver) DO NOTHING",
    )
    .bind(approval.approval_id)
    .bind(approval.step)
    .bind(&on_behalf)
    .bind(cmd.approve)
    .bind(&note)
    .bind(now)
    .bind(&cmd.approver)
    .execute(unit.db())
    .await?
    .rows_affected();
    if recorded == 0 {
        return Err(Refusal::wrong_state(
            "approver",
            format!("{on_behalf} decided this step already"),
        ));
    }
    let approvals_here: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM approval_decisions WHERE approval_id = $1 AND step = $2 AND approve",
    )
    .bind(approval.approval_id)
    .bind(approval.step)
    .fetch_one(unit.db())
    .await?;
    let cause = Cause {
        complaint_id: approval.complaint_id,
        ticket: approval.ticket.clone(),
        causation_id: cmd.command_id.clone(),
        correlation_id: approval.complaint_id.to_string(),
        playbook: approval.playbook.clone(),
    };
    let step_done = cmd.approve && approvals_here >= i64::from(need);
    let last = step + 1 >= approval.steps.len();
    if cmd.approve && !step_done {
        // More of this step's role must approve: still pending, and told so (the history
        // keeps every decision).
        tracing::info!(approver = %cmd.approver, step = step + 1, "approved; the step needs more");
        unit.emit(new_event(
            IDENT.name,
            &cause,
            now,
            Payload::ApprovalRequested(approval.requested(
                format!(
                    "{}; approved by {signed_as}, {} more of {role} to approve",
                    approval.reason,
                    i64::from(need) - approvals_here
                ),
                &role,
                step + 1,
            )),
        ));
    } else if step_done && !last {
        // On to the next step's role, told as a new request.
        approval.step += 1;
        let (next_role, _) = approval.steps[step + 1].clone();
        approval.approver_role = next_role.clone();
        sqlx::query("UPDATE approvals SET step = $2, approver_role = $3 WHERE approval_id = $1")
            .bind(approval.approval_id)
            .bind(approval.step)
            .bind(&next_role)
            .execute(unit.db())
            .await?;
        unit.emit(new_event(
            IDENT.name,
            &cause,
            now,
            Payload::ApprovalRequested(approval.requested(
                format!(
                    "{}; step {} approved by {signed_as}",
                    approval.reason,
                    step + 1,
                ),
                &next_role,
                step + 2,
            )),
        ));
    } else {
        // A rejection at any step, or the last step's approval, decides the proposal.
        approval.state = if cmd.approve { APPROVED } else { REJECTED }.to_string();
        approval.decided_by = signed_as.clone();
        approval.note = note;
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
        .execute(unit.db())
        .await?;
        unit.emit(new_event(
            IDENT.name,
            &cause,
            now,
            Payload::ApprovalDecided(approval.decided()),
        ));
    }
    unit.count(
        format!("approval_decided_total{{approved=\"{}\"}}", cmd.approve),
        1,
    );
    tracing::info!(approver = %cmd.approver, approved = cmd.approve, "approval decided");
    let view = approval.view_with_decisions(unit.db()).await?;
    unit.finish(ApprovalReply {
        outcome: Some(Outcome::Approval(view)),
    })
    .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any decision either is refused or has a ticket, an approver and an approval id
        /// that are short tokens, a note within 4 KiB without control characters, and a note
        /// on every rejection.
        #[test]
        fn any_decision_is_refused_or_sound(
            ticket in prop_oneof![Just("RD-20261123-000007".to_string()), ".{0,80}"],
            approver in prop_oneof![Just("zhao.min".to_string()), ".{0,120}"],
            approval_id in prop_oneof![Just(String::new()), ".{0,80}"],
            note in prop_oneof![Just(String::new()), ".{0,64}", "[\u{0}-\u{1f}a]{0,8}"],
            long in prop_oneof![Just(0usize), 0usize..6_000],
            approve in any::<bool>(),
        ) {
            let cmd = DecideApproval {
                command_id: "d-1".into(),
                ticket,
                approver,
                approve,
                note: format!("{note}{}", "x".repeat(long)),
                approval_id,
            };
            if validate(&cmd).is_ok() {
                for (v, max) in [(&cmd.ticket, 64), (&cmd.approver, 100), (&cmd.approval_id, 64)] {
                    let v = v.trim();
                    prop_assert!(v.len() <= max);
                    prop_assert!(!v.chars().any(|c| c.is_control() || c.is_whitespace()));
                }
                prop_assert!(!cmd.approver.trim().is_empty());
                prop_assert!(cmd.note.len() <= 4 * 1024);
                prop_assert!(!cmd
                    .note
                    .chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')));
                prop_assert!(cmd.approve || !cmd.note.trim().is_empty());
            }
        }
    }
}
