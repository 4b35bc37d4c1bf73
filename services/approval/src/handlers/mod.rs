//! One module per message approval handles, and the approval rows they share.

pub mod decide;
pub mod delegate;
pub mod list;
pub mod work_changed;

use redress_proto::types::WorkId;
use redress_proto::v1::{
    ApprovalDecided, ApprovalDecisionView, ApprovalRequested, ApprovalView, Proposal,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// Columns of an approval row as the handlers read it.
pub(crate) const COLUMNS: &str = "approval_id, proposal_id, complaint_id, ticket, work_id, \
     department, playbook, responsibility, remedy, compensation_minor, currency, proposed_by, \
     reason, approver_role, state, automatic, decided_by, note, chain, step_roles, step_needs, \
     step, kind, round, severity, category, \
     (SELECT count(*)::int4 FROM approvals o WHERE o.work_id = approvals.work_id \
        AND o.round = approvals.round AND o.work_version <= approvals.work_version) AS attempt";

/// A stored approval.
#[derive(Debug, Clone)]
pub(crate) struct StoredApproval {
    pub approval_id: Uuid,
    pub complaint_id: Uuid,
    pub ticket: String,
    pub work_id: WorkId,
    pub department: String,
    pub playbook: String,
    pub proposal: Proposal,
    pub reason: String,
    pub approver_role: String,
    pub state: String,
    pub automatic: bool,
    pub decided_by: String,
    pub note: String,
    /// The chain that decides it (empty: the threshold policy's one step).
    pub chain: String,
    /// Each step's role and how many of its approvers must approve.
    pub steps: Vec<(String, i32)>,
    /// The step deciding now (0-based).
    pub step: i32,
    /// The work's handling round, and which approval of the round this is (from 1).
    pub round: i32,
    pub attempt: i32,
    pub severity: i16,
    pub category: String,
}

impl StoredApproval {
    pub fn from_row(row: &PgRow) -> Self {
        Self {
            approval_id: row.get("approval_id"),
            complaint_id: row.get("complaint_id"),
            ticket: row.get("ticket"),
            work_id: WorkId(row.get("work_id")),
            department: row.get("department"),
            playbook: row.get("playbook"),
            proposal: Proposal {
                proposal_id: row.get("proposal_id"),
                responsibility: i32::from(row.get::<i16, _>("responsibility")),
                remedy: row.get("remedy"),
                compensation_minor: row.get("compensation_minor"),
                currency: row.get("currency"),
                proposed_by: row.get("proposed_by"),
                kind: i32::from(row.get::<i16, _>("kind")),
            },
            reason: row.get("reason"),
            approver_role: row.get("approver_role"),
            state: row.get("state"),
            automatic: row.get("automatic"),
            decided_by: row.get("decided_by"),
            note: row.get("note"),
            chain: row.get("chain"),
            steps: row
                .get::<Vec<String>, _>("step_roles")
                .into_iter()
                .zip(row.get::<Vec<i32>, _>("step_needs"))
                .collect(),
            step: row.get("step"),
            round: row.get("round"),
            attempt: row.get("attempt"),
            severity: row.get("severity"),
            category: row.get("category"),
        }
    }

    pub fn view(&self) -> ApprovalView {
        ApprovalView {
            approval_id: self.approval_id.to_string(),
            ticket: self.ticket.clone(),
            work_id: self.work_id.to_string(),
            department: self.department.clone(),
            state: self.state.clone(),
            proposal: Some(self.proposal.clone()),
            reason: self.reason.clone(),
            approver_role: self.approver_role.clone(),
            decided_by: self.decided_by.clone(),
            note: self.note.clone(),
            chain: self.chain.clone(),
            step: u32::try_from(self.step + 1).unwrap_or(1),
            steps: u32::try_from(self.steps.len()).unwrap_or(1),
            decisions: Vec::new(),
        }
    }

    /// The view with every decision made so far.
    pub async fn view_with_decisions(
        &self,
        db: &mut sqlx::PgConnection,
    ) -> sqlx::Result<ApprovalView> {
        let mut view = self.view();
        view.decisions = sqlx::query(
            "SELECT step, approver, delegate, approve, note, at FROM approval_decisions
             WHERE approval_id = $1 ORDER BY at, step, approver",
        )
        .bind(self.approval_id)
        .fetch_all(db)
        .await?
        .iter()
        .map(|r| ApprovalDecisionView {
            step: u32::try_from(r.get::<i32, _>("step") + 1).unwrap_or(1),
            approver: r.get("approver"),
            delegate: r.get::<Option<String>, _>("delegate").unwrap_or_default(),
            approve: r.get("approve"),
            note: r.get("note"),
            at: redress_proto::time::ts(r.get("at")),
        })
        .collect();
        Ok(view)
    }

    /// `approval.requested` for `step` (from 1), asking `role`, saying `reason`.
    pub fn requested(&self, reason: String, role: &str, step: usize) -> ApprovalRequested {
        ApprovalRequested {
            approval_id: self.approval_id.to_string(),
            work_id: self.work_id.to_string(),
            ticket: self.ticket.clone(),
            department: self.department.clone(),
            proposal: Some(self.proposal.clone()),
            reason,
            approver_role: role.to_string(),
            step: u32::try_from(step).unwrap_or(u32::MAX),
            steps: u32::try_from(self.steps.len()).unwrap_or(u32::MAX),
            round: u32::try_from(self.round).unwrap_or_default(),
            attempt: u32::try_from(self.attempt).unwrap_or_default(),
            severity: i32::from(self.severity),
            category: self.category.clone(),
        }
    }

    /// The decision as an event payload; only meaningful once decided.
    pub fn decided(&self) -> ApprovalDecided {
        ApprovalDecided {
            approval_id: self.approval_id.to_string(),
            work_id: self.work_id.to_string(),
            ticket: self.ticket.clone(),
            proposal_id: self.proposal.proposal_id.clone(),
            approved: self.state == APPROVED,
            decided_by: self.decided_by.clone(),
            note: self.note.clone(),
            automatic: self.automatic,
            department: self.department.clone(),
        }
    }
}

pub(crate) const PENDING: &str = "pending";
pub(crate) const APPROVED: &str = "approved";
pub(crate) const REJECTED: &str = "rejected";
