//! `work.*`: status, department, round and escalation from routing's work item; the newest
//! version wins, and the escalation level only grows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_proto::types::Money;
use redress_proto::v1::{WorkChange, WorkChanged, WorkEscalated, WorkState};
use sqlx::PgConnection;

use crate::domain::crypto::ContactCipher;
use uuid::Uuid;

/// The public status a work item in `state` and `round` stands for.
fn work_status(state: WorkState, round: u32) -> &'static str {
    match state {
        WorkState::Assigned if round > 1 => "reopened",
        WorkState::Assigned => "assigned",
        WorkState::Accepted => "in_progress",
        WorkState::Proposed => "awaiting_approval",
        WorkState::Approved => "approved",
        WorkState::Replied => "replied",
        WorkState::Resolved => "resolved",
        WorkState::Closed => "closed",
        WorkState::Unspecified => "",
    }
}

/// Replies, progress reports and objections opened, by complaint and work-item version.
pub(super) type Replies = HashMap<(Uuid, u64), String>;

/// Opens the sealed replies of `changes` with each complaint's text key, which intake derives
/// from the data key it keeps (no lookup on the broker). An erased complaint's reply stays
/// unread: its history line names only who replied.
pub(super) async fn open_replies(
    cipher: &ContactCipher,
    db: &mut PgConnection,
    changes: &[(Uuid, &WorkChanged)],
) -> sqlx::Result<Replies> {
    let sealed: Vec<(Uuid, u64, &[u8])> = changes
        .iter()
        .filter_map(|(id, w)| {
            let work = w.work.as_ref()?;
            // A progress report or an objection carries its own sealed note; a reply is the
            // work item's.
            let sealed = if !w.sealed_note.is_empty() {
                w.sealed_note.as_slice()
            } else if w.change() == WorkChange::Replied
                || (w.change() == WorkChange::Unspecified && work.state() == WorkState::Replied)
            {
                work.sealed_reply.as_slice()
            } else {
                return None;
            };
            (!sealed.is_empty()).then_some((*id, work.version, sealed))
        })
        .collect();
    if sealed.is_empty() {
        return Ok(Replies::new());
    }
    let ids: Vec<Uuid> = sealed.iter().map(|(id, _, _)| *id).collect();
    let wrapped: HashMap<Uuid, Vec<u8>> = sqlx::query_as(
        "SELECT complaint_id, wrapped FROM complaint_keys WHERE complaint_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?
    .into_iter()
    .collect();
    Ok(sealed
        .into_iter()
        .map(|(id, version, bytes)| {
            let reply = wrapped
                .get(&id)
                .and_then(|w| cipher.data_key(w, &id).ok())
                .and_then(|k| k.text_key().open(bytes, &id).ok())
                .unwrap_or_default();
            ((id, version), reply)
        })
        .collect())
}

struct Newest {
    version: i64,
    status: &'static str,
    department: String,
    round: i32,
    escalation_level: i32,
}

/// The batch's newest work item of each complaint, and its highest escalation.
#[derive(Default)]
pub(super) struct Batch {
    newest: HashMap<Uuid, Newest>,
    escalation: HashMap<Uuid, i32>,
}

impl Batch {
    /// Takes one work change; returns its history line. `replies` holds the replies of the
    /// batch opened (see [`open_replies`]).
    pub(super) fn changed(&mut self, id: Uuid, w: &WorkChanged, replies: &Replies) -> String {
        let Some(work) = &w.work else {
            return String::new();
        };
        let state = work.state();
        let version = i64::try_from(work.version).unwrap_or(i64::MAX);
        if self.newest.get(&id).is_none_or(|n| n.version < version) {
            self.newest.insert(
                id,
                Newest {
                    version,
                    status: if w.change() == WorkChange::Merged {
                        "merged"
                    } else if state == WorkState::Accepted
                        && work.evidence.last().is_some_and(|p| p.ended_at.is_none())
                    {
                        "awaiting_evidence"
                    } else {
                        work_status(state, work.round)
                    },
                    department: work.department.clone(),
                    round: i32::try_from(work.round).unwrap_or(i32::MAX),
                    escalation_level: i32::try_from(work.escalation_level).unwrap_or(i32::MAX),
                },
            );
        }
        let opened = |fallback: &str| {
            replies
                .get(&(id, work.version))
                .cloned()
                .unwrap_or_else(|| fallback.to_string())
        };
        if let Some(t) = &w.transfer {
            let back = if t.sent_back { " (sent back)" } else { "" };
            let understood = opened(&t.understood);
            let understood = if understood.is_empty() {
                String::new()
            } else {
                format!("; understood: {understood}")
            };
            return format!(
                "from {} to {}{back} by {}: {}{understood}",
                t.from_department, t.to_department, w.actor, t.reason
            );
        }
        match w.change() {
            WorkChange::ProgressReported => return format!("by {}: {}", w.actor, opened(&w.note)),
            WorkChange::Contested => {
                return format!("recorded by {}: {}", w.actor, opened(&w.note));
            }
            // Whatever state the work is in, the line tells the entry, not the state.
            WorkChange::Investigated => return format!("by {}: {}", w.actor, w.note),
            WorkChange::Merged => {
                return format!("into {} by {}: {}", work.merged_into, w.actor, w.note);
            }
            WorkChange::Reclassified => return format!("by {}: {}", w.actor, w.note),
            WorkChange::EvidenceRequested => {
                let seq = work.evidence.last().map_or(0, |p| p.seq);
                return format!("request {seq} by {}: {}", w.actor, opened(&w.note));
            }
            WorkChange::Committed => {
                return format!(
                    "by {}: completion by {}: {}",
                    w.actor,
                    work.committed_on,
                    opened(&w.note)
                );
            }
            _ => {}
        }
        match state {
            WorkState::Assigned => format!(
                "to {} (round {}, rule {})",
                work.department, work.round, work.routing_rule
            ),
            WorkState::Proposed => work
                .proposal
                .as_ref()
                .map(|p| {
                    let comp = if p.compensation_minor > 0 {
                        format!(
                            ", compensation {}",
                            Money::new(p.compensation_minor, &p.currency)
                        )
                    } else {
                        String::new()
                    };
                    format!("by {}: {}{comp}", p.proposed_by, p.remedy)
                })
                .unwrap_or_default(),
            WorkState::Replied => format!("by {}: {}", w.actor, opened(&work.reply)),
            _ if w.note.is_empty() => format!("by {}", w.actor),
            _ => format!("by {}: {}", w.actor, w.note),
        }
    }

    /// Takes one escalation; returns its history line.
    pub(super) fn escalated(&mut self, id: Uuid, e: &WorkEscalated) -> String {
        let level = i32::try_from(e.level).unwrap_or(i32::MAX);
        let top = self.escalation.entry(id).or_default();
        *top = (*top).max(level);
        format!(
            "{} breached; level {} to {}",
            e.deadline, e.level, e.escalated_to
        )
    }

    pub(super) async fn store(self, db: &mut PgConnection, now: DateTime<Utc>) -> sqlx::Result<()> {
        if !self.newest.is_empty() {
            let mut ids = Vec::new();
            let (mut versions, mut statuses, mut departments, mut rounds, mut levels) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (id, n) in self.newest {
                ids.push(id);
                versions.push(n.version);
                statuses.push(n.status);
                departments.push(n.department);
                rounds.push(n.round);
                levels.push(n.escalation_level);
            }
            sqlx::query(
                // A withdrawn complaint stays withdrawn whatever late work event arrives.
                "UPDATE complaints c SET status = CASE WHEN c.withdrawn_at IS NULL
                                                  THEN u.status ELSE 'withdrawn' END,
                     department = u.department,
                     round = u.round, escalation_level = GREATEST(c.escalation_level, u.level),
                     work_version = u.version, updated_at = $7
                 FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::int4[],
                             $6::int4[]) AS u(id, version, status, department, round, level)
                 WHERE c.id = u.id AND c.work_version < u.version",
            )
            .bind(&ids)
            .bind(&versions)
            .bind(&statuses)
            .bind(&departments)
            .bind(&rounds)
            .bind(&levels)
            .bind(now)
            .execute(&mut *db)
            .await?;
        }
        if !self.escalation.is_empty() {
            let (ids, levels): (Vec<Uuid>, Vec<i32>) = self.escalation.into_iter().unzip();
            sqlx::query(
                "UPDATE complaints c SET escalation_level = GREATEST(c.escalation_level, u.level),
                     updated_at = $3
                 FROM unnest($1::uuid[], $2::int4[]) AS u(id, level)
                 WHERE c.id = u.id",
            )
            .bind(&ids)
            .bind(&levels)
            .bind(now)
            .execute(db)
            .await?;
        }
        Ok(())
    }
}
