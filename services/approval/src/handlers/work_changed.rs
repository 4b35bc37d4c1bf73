//! `WorkChanged` with the work PROPOSED: opens the proposal's one approval. Above the
//! playbook's thresholds it waits for a person (`approval.requested`); otherwise the policy
//! approves it at once (`approval.decided`, automatic). A proposal told again, by a repeated
//! or a new event, opens nothing new.

use redress_platform::envelope::follow_up;
use redress_platform::events::{Event, outgoing, retry};
use redress_platform::nats::Outcome;
use redress_platform::{inbox, outbox};
use redress_proto::subjects::events;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ApprovalRequested, WorkChanged, WorkState};
use uuid::Uuid;

use super::{APPROVED, PENDING, StoredApproval};
use crate::domain::policy::{Assessment, assess, effective_currency};
use crate::{Approvals, IDENT};

pub async fn handle(approvals: &Approvals, event: &Event, change: WorkChanged) -> Outcome {
    let Some(work) = change.work else {
        return Outcome::DeadLetter("WorkChanged without a work item".into());
    };
    if work.state() != WorkState::Proposed {
        return Outcome::Ack;
    }
    let Some(mut proposal) = work.proposal.clone().filter(|p| !p.proposal_id.is_empty()) else {
        return Outcome::DeadLetter(format!(
            "work {} is PROPOSED without a proposal id",
            work.work_id
        ));
    };
    let Some(complaint_id) = event.complaint_id() else {
        return Outcome::DeadLetter(format!(
            "complaint id {:?} is not a UUID",
            event.envelope.complaint_id
        ));
    };
    let playbook = match approvals.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => return Outcome::DeadLetter(e.to_string()),
    };
    let policy = &playbook.approval;
    let assessment = assess(policy, &playbook.currency, work.severity(), &proposal);
    proposal.currency = effective_currency(&proposal, &playbook.currency);
    let now = approvals.ctx.clock.now();
    let (state, reason, decided_by, note, automatic) = match &assessment {
        Assessment::NeedsDecision { reason } => (PENDING, reason.clone(), "", "", false),
        Assessment::Automatic { note } => (APPROVED, String::new(), "policy", note.as_str(), true),
    };
    let approval = StoredApproval {
        approval_id: Uuid::now_v7(),
        complaint_id,
        ticket: work.ticket.clone(),
        work_id: work.work_id.clone(),
        department: work.department.clone(),
        playbook: playbook.key.clone(),
        proposal,
        reason,
        approver_role: policy.approver_role.clone(),
        state: state.to_string(),
        automatic,
        decided_by: decided_by.to_string(),
        note: note.to_string(),
    };

    let result = async {
        let mut tx = approvals.pool.begin().await?;
        if !inbox::record(&mut tx, &event.message_id).await? {
            return Ok(false);
        }
        let p = &approval.proposal;
        let inserted = sqlx::query(
            "INSERT INTO approvals (approval_id, proposal_id, complaint_id, ticket, work_id,
                 department, round, work_version, severity, playbook, playbook_version,
                 responsibility, remedy, compensation_minor, currency, proposed_by, reason,
                 approver_role, state, automatic, decided_by, note, requested_at, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23, $24)
             ON CONFLICT (proposal_id) DO NOTHING",
        )
        .bind(approval.approval_id)
        .bind(&p.proposal_id)
        .bind(approval.complaint_id)
        .bind(&approval.ticket)
        .bind(&approval.work_id)
        .bind(&approval.department)
        .bind(i32::try_from(work.round.max(1)).unwrap_or(i32::MAX))
        .bind(i64::try_from(work.version).unwrap_or(i64::MAX))
        .bind(work.severity as i16)
        .bind(&approval.playbook)
        .bind(&playbook.version)
        .bind(p.responsibility as i16)
        .bind(&p.remedy)
        .bind(p.compensation_minor)
        .bind(&p.currency)
        .bind(&p.proposed_by)
        .bind(&approval.reason)
        .bind(&approval.approver_role)
        .bind(&approval.state)
        .bind(approval.automatic)
        .bind(&approval.decided_by)
        .bind(&approval.note)
        .bind(now)
        .bind(automatic.then_some(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Opened before, from another event telling the same proposal.
            tx.commit().await?;
            return Ok(false);
        }
        let (name, payload) = if automatic {
            (
                events::APPROVAL_DECIDED,
                Payload::ApprovalDecided(approval.decided()),
            )
        } else {
            (
                events::APPROVAL_REQUESTED,
                Payload::ApprovalRequested(ApprovalRequested {
                    approval_id: approval.approval_id.to_string(),
                    work_id: approval.work_id.clone(),
                    ticket: approval.ticket.clone(),
                    department: approval.department.clone(),
                    proposal: Some(approval.proposal.clone()),
                    reason: approval.reason.clone(),
                    approver_role: approval.approver_role.clone(),
                }),
            )
        };
        let envelope = follow_up(IDENT.name, &event.envelope, now, payload);
        outbox::enqueue(
            &mut tx,
            IDENT.schema,
            &approvals.storage.outbox,
            &[outgoing(approvals.ctx.subjects.event(name), &envelope)],
        )
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(true)
    }
    .await;
    match result {
        Ok(true) => {
            approvals.storage.outbox.wake();
            approvals.ctx.metrics.incr(if automatic {
                "approval_automatic_total"
            } else {
                "approval_requested_total"
            });
            tracing::info!(
                ticket = %approval.ticket, proposal_id = %approval.proposal.proposal_id,
                automatic, reason = %approval.reason, "approval opened"
            );
            Outcome::Ack
        }
        Ok(false) => Outcome::Ack,
        Err(e) => retry(e),
    }
}
