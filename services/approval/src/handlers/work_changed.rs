//! `work.proposed`: opens the proposal's one approval. Above the playbook's thresholds it
//! waits for a person (`approval.requested`); otherwise the policy approves it at once
//! (`approval.decided`, automatic). A proposal told again, by a repeated or a new event,
//! opens nothing new.

use redress_platform::Unit;
use redress_platform::envelope::follow_up;
use redress_platform::events::{Event, Failure, Parsed};
use redress_proto::types::WorkId;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{WorkChanged, WorkState};
use uuid::Uuid;

use super::{APPROVED, PENDING, StoredApproval};
use crate::domain::policy::{Assessment, assess, effective_currency};
use crate::{Approvals, IDENT};

/// The approval a proposal opens, as the policy assessed it.
pub struct Opening {
    approval: StoredApproval,
    work_version: i64,
    playbook_version: String,
}

pub fn parse(approvals: &Approvals, event: &Event, change: &WorkChanged) -> Parsed<Opening> {
    let Some(work) = &change.work else {
        return Parsed::Reject("WorkChanged without a work item".into());
    };
    if work.state() != WorkState::Proposed {
        return Parsed::Skip;
    }
    let Some(mut proposal) = work.proposal.clone().filter(|p| !p.proposal_id.is_empty()) else {
        return Parsed::Reject(format!(
            "work {} is PROPOSED without a proposal id",
            work.work_id
        ));
    };
    let work_id = match WorkId::parse(&work.work_id) {
        Ok(id) => id,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject(format!(
            "complaint id {:?} is not a UUID",
            event.envelope.complaint_id
        ));
    };
    let playbook = match approvals.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => return Parsed::Reject(e.to_string()),
    };
    let policy = &playbook.approval;
    let severity = redress_playbook::Severity::from_proto(work.severity())
        .unwrap_or(redress_playbook::Severity::General);
    let chain = policy.chains.iter().find(|c| {
        c.matches(&redress_playbook::ChainInput {
            severity,
            compensation_minor: proposal.compensation_minor.max(0),
            department: &work.department,
            category: &work.category,
            kind: proposal.kind().key(),
        })
    });
    let assessment = match chain {
        // A chain decides whoever the threshold would have asked.
        Some(c) if c.steps.is_empty() => Assessment::Automatic {
            note: format!("chain {} needs no approver", c.name),
        },
        Some(c) => Assessment::NeedsDecision {
            reason: format!(
                "chain {}: {}",
                c.name,
                c.steps
                    .iter()
                    .map(|s| format!("{} ({})", s.role, s.need))
                    .collect::<Vec<_>>()
                    .join(" then ")
            ),
        },
        None => assess(policy, &playbook.currency, work.severity(), &proposal),
    };
    let steps: Vec<(String, i32)> = match chain {
        Some(c) => c
            .steps
            .iter()
            .map(|s| {
                let holders = policy.approvers.iter().filter(|a| a.role == s.role).count();
                let need = s.needed(holders).unwrap_or(1);
                (s.role.clone(), i32::try_from(need).unwrap_or(1))
            })
            .collect(),
        None => vec![(policy.approver_role.clone(), 1)],
    };
    proposal.currency = effective_currency(&proposal, &playbook.currency);
    let (state, reason, decided_by, note, automatic) = match assessment {
        Assessment::NeedsDecision { reason } => (PENDING, reason, "", String::new(), false),
        Assessment::Automatic { note } => (APPROVED, String::new(), "policy", note, true),
    };
    Parsed::Handle(Opening {
        approval: StoredApproval {
            approval_id: Uuid::now_v7(),
            complaint_id,
            ticket: work.ticket.clone(),
            work_id,
            department: work.department.clone(),
            playbook: playbook.key.clone(),
            proposal,
            reason,
            approver_role: steps
                .first()
                .map(|(role, _)| role.clone())
                .unwrap_or_else(|| policy.approver_role.clone()),
            state: state.to_string(),
            automatic,
            decided_by: decided_by.to_string(),
            note,
            chain: chain.map(|c| c.name.clone()).unwrap_or_default(),
            steps,
            step: 0,
            round: i32::try_from(work.round.max(1)).unwrap_or(i32::MAX),
            // Known once stored, among the round's other approvals.
            attempt: 0,
            severity: work.severity as i16,
            category: work.category.clone(),
        },
        work_version: i64::try_from(work.version).unwrap_or(i64::MAX),
        playbook_version: playbook.version.clone(),
    })
}

pub async fn apply(
    approvals: &Approvals,
    unit: &mut Unit,
    event: &Event,
    opening: &Opening,
) -> Result<(), Failure> {
    let approval = &opening.approval;
    let p = &approval.proposal;
    let now = approvals.ctx.clock.now();
    let inserted = sqlx::query(
        "INSERT INTO approvals (approval_id, proposal_id, complaint_id, ticket, work_id,
             department, round, work_version, severity, playbook, playbook_version,
             responsibility, remedy, compensation_minor, currency, proposed_by, reason,
             approver_role, state, automatic, decided_by, note, requested_at, decided_at, chain,
             step_roles, step_needs, kind, category)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)
         ON CONFLICT (proposal_id) DO NOTHING",
    )
    .bind(approval.approval_id)
    .bind(&p.proposal_id)
    .bind(approval.complaint_id)
    .bind(&approval.ticket)
    .bind(approval.work_id.uuid())
    .bind(&approval.department)
    .bind(approval.round)
    .bind(opening.work_version)
    .bind(approval.severity)
    .bind(&approval.playbook)
    .bind(&opening.playbook_version)
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
    .bind(approval.automatic.then_some(now))
    .bind(&approval.chain)
    .bind(
        approval
            .steps
            .iter()
            .map(|(r, _)| r.clone())
            .collect::<Vec<_>>(),
    )
    .bind(approval.steps.iter().map(|(_, n)| *n).collect::<Vec<_>>())
    .bind(p.kind as i16)
    .bind(&approval.category)
    .execute(unit.db())
    .await?;
    if inserted.rows_affected() == 0 {
        // Opened before, from another event telling the same proposal.
        return Ok(());
    }
    let mut approval = approval.clone();
    approval.attempt = sqlx::query_scalar(
        "SELECT count(*)::int4 FROM approvals
         WHERE work_id = $1 AND round = $2 AND work_version <= $3",
    )
    .bind(approval.work_id.uuid())
    .bind(approval.round)
    .bind(opening.work_version)
    .fetch_one(unit.db())
    .await?;
    let payload = if approval.automatic {
        Payload::ApprovalDecided(approval.decided())
    } else {
        Payload::ApprovalRequested(approval.requested(
            approval.reason.clone(),
            &approval.approver_role,
            1,
        ))
    };
    unit.emit(follow_up(IDENT.name, &event.envelope, now, payload));
    unit.count(
        if approval.automatic {
            "approval_automatic_total"
        } else {
            "approval_requested_total"
        },
        1,
    );
    tracing::info!(
        proposal_id = %p.proposal_id, automatic = approval.automatic,
        reason = %approval.reason, "approval opened"
    );
    Ok(())
}
