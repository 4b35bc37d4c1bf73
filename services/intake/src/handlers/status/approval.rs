//! `approval.*`: the approval of the latest proposal; a decision beats the request for it,
//! a later proposal beats both.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_proto::v1::{ApprovalDecided, ApprovalRequested};
use sqlx::PgConnection;
use uuid::Uuid;

/// The batch's latest approval state of each complaint.
#[derive(Default)]
pub(super) struct Batch {
    latest: HashMap<Uuid, (String, &'static str)>,
}

impl Batch {
    /// The rule the update applies to the stored row, applied within the batch first.
    fn set(&mut self, id: Uuid, proposal: String, state: &'static str) {
        let beats =
            |(p, _): &(String, &str)| *p < proposal || (*p == proposal && state != "pending");
        if self.latest.get(&id).is_none_or(beats) {
            self.latest.insert(id, (proposal, state));
        }
    }

    /// Takes a request for approval; returns its history line.
    pub(super) fn requested(&mut self, id: Uuid, r: &ApprovalRequested) -> String {
        let proposal = r
            .proposal
            .as_ref()
            .map(|p| p.proposal_id.clone())
            .unwrap_or_default();
        self.set(id, proposal, "pending");
        if r.steps > 1 {
            format!(
                "{} (step {} of {}: {})",
                r.reason, r.step, r.steps, r.approver_role
            )
        } else {
            format!("{} ({})", r.reason, r.approver_role)
        }
    }

    /// Takes a decision; returns its history line.
    pub(super) fn decided(&mut self, id: Uuid, d: &ApprovalDecided) -> String {
        let state = if d.approved { "approved" } else { "rejected" };
        self.set(id, d.proposal_id.clone(), state);
        match (d.automatic, d.note.is_empty()) {
            (true, _) => format!("{state} by policy (no approval needed)"),
            (false, true) => format!("{state} by {}", d.decided_by),
            (false, false) => format!("{state} by {}: {}", d.decided_by, d.note),
        }
    }

    pub(super) async fn store(self, db: &mut PgConnection, now: DateTime<Utc>) -> sqlx::Result<()> {
        if self.latest.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let (mut proposals, mut states) = (Vec::new(), Vec::new());
        for (id, (p, s)) in self.latest {
            ids.push(id);
            proposals.push(p);
            states.push(s);
        }
        sqlx::query(
            "UPDATE complaints c SET approval = u.state, approval_proposal = u.proposal,
                 updated_at = $4
             FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, proposal, state)
             WHERE c.id = u.id
               AND (c.approval_proposal < u.proposal
                    OR (c.approval_proposal = u.proposal AND u.state <> 'pending'))",
        )
        .bind(&ids)
        .bind(&proposals)
        .bind(&states)
        .bind(now)
        .execute(db)
        .await?;
        Ok(())
    }
}
