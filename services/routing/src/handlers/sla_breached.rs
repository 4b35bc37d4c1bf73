//! `sla.breached`: escalate the work, once per breached deadline, to the next level of the
//! playbook's chain (the department's manager first). A complainant's time to answer an
//! evidence request (`evidence_answer_<n>`) that runs out does what the playbook's
//! `evidence.on_no_answer` says: remind the complainant (and escalate), or close the work as
//! unsubstantiated with the playbook's explanation.

use redress_platform::Unit;
use redress_platform::events::{Event, Failure};
use redress_proto::types::WorkId;
use redress_proto::v1::{Deadline, DeadlineSettled, WorkEscalated, envelope::Payload};

use redress_playbook::NoAnswer;
use redress_proto::v1::WorkChange;

use super::Input;
use super::work_command::{Notice, notice_id, notify};
use crate::domain::route::escalated_to;
use crate::{Caused, IDENT, Routing, store};

/// The breached deadline and the work it belongs to.
pub struct Breach {
    work_id: WorkId,
    deadline: Deadline,
}

pub fn parse(b: &DeadlineSettled) -> Result<Input, String> {
    let Some(deadline) = &b.deadline else {
        return Err("sla.breached without a deadline".into());
    };
    Ok(Input::Breached(Box::new(Breach {
        work_id: super::work_id(&deadline.work_id)?,
        deadline: deadline.clone(),
    })))
}

pub async fn apply(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    b: &Breach,
) -> Result<(), Failure> {
    let deadline = &b.deadline;
    let work = super::lock(unit, b.work_id).await?;
    let Ok(playbook) = routing.playbooks.get(&work.playbook) else {
        return Err(Failure::Reject(format!(
            "unknown playbook {:?}",
            work.playbook
        )));
    };
    if let Some(seq) = evidence_answer_seq(&deadline.name)
        && work.waiting_for_evidence().is_some_and(|p| p.seq == seq)
        && deadline.round == work.round
    {
        match playbook.evidence.on_no_answer {
            NoAnswer::Close => {
                return close_unanswered(routing, unit, event, work, playbook, seq).await;
            }
            NoAnswer::Remind => {
                let message = format!(
                    "您的投诉 {t} 仍在等待您补充材料（第 {seq} 次请求），请使用先前通知中的凭证尽快提交。\
                     Complaint {t} is still waiting for the evidence we asked for (request \
                     {seq}); please send it with the token of our earlier message.",
                    t = work.ticket
                );
                let id = format!("evidence-reminder:{}:{}:{seq}", work.work_id, work.round);
                notify(unit, &work, Notice::EvidenceReminder, id, &message);
                unit.count("routing_evidence_reminded_total", 1);
            }
        }
    }
    // The step happened in time and the breach came from a timer that had not heard of it
    // yet: nobody is paged about work that was on time (the timer retracts the breach).
    let due = redress_proto::time::opt_to_chrono(&deadline.due_at);
    let reached = match deadline.met_by.as_str() {
        "accepted" => work.accepted_at,
        "replied" => work.replied_at,
        "resolved" | "progress" => work.resolved_at,
        _ => None,
    };
    if deadline.round == work.round
        && let (Some(at), Some(due)) = (reached, due)
        && at <= due
    {
        tracing::info!(deadline = %deadline.name, "breached too early: the step was in time");
        unit.count("routing_early_breaches_ignored_total", 1);
        return Ok(());
    }
    // The playbook's ladder says who hears of a breach, and when: its rungs escalate.
    if playbook.sla.ladder.iter().any(|r| {
        r.covers(&deadline.name) && matches!(r.when(), Ok(redress_playbook::RungAt::Breach(_)))
    }) {
        return Ok(());
    }
    let why = format!("{} breached", deadline.name);
    escalate(
        routing,
        unit,
        event,
        work,
        deadline,
        &deadline.name,
        None,
        &why,
    )
    .await
}

/// Raises the work's escalation level for `deadline` once per `key` (the deadline's name for
/// a breach, with the rung for a rung of the ladder): to `to`, else to the next level of the
/// playbook's chain; `why` goes into the history.
#[allow(clippy::too_many_arguments)]
pub(super) async fn escalate(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    mut work: crate::domain::work::Work,
    deadline: &Deadline,
    key: &str,
    to: Option<&str>,
    why: &str,
) -> Result<(), Failure> {
    let now = routing.now();
    let id = work.work_id;
    let already: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM escalations WHERE work_id = $1 AND round = $2 AND deadline = $3)",
    )
    .bind(id)
    .bind(deadline.round as i32)
    .bind(key)
    .fetch_one(unit.db())
    .await?;
    if already {
        return Ok(());
    }
    let Some(level) = work.escalate(deadline.round) else {
        return Ok(());
    };
    let to = match to {
        Some(to) => to.to_string(),
        None => {
            let Ok(playbook) = routing.playbooks.get(&work.playbook) else {
                return Err(Failure::Reject(format!(
                    "unknown playbook {:?}",
                    work.playbook
                )));
            };
            escalated_to(&playbook.routing, &work.department, level)
        }
    };
    sqlx::query(
        "INSERT INTO escalations (work_id, round, deadline, level, escalated_to, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(deadline.round as i32)
    .bind(key)
    .bind(level as i32)
    .bind(&to)
    .bind(now)
    .execute(unit.db())
    .await?;
    let note = format!("{why}; escalated to {to}");
    store::save(unit.db(), &work, "escalated", IDENT.name, &note, now).await?;
    let mut item = work.to_proto();
    item.text.clear();
    item.sealed_text.clear();
    unit.emit(Caused::Event(&event.envelope).envelope(
        &work,
        now,
        Payload::WorkEscalated(WorkEscalated {
            work: Some(item),
            deadline: deadline.name.clone(),
            due_at: deadline.due_at,
            level,
            escalated_to: to.clone(),
        }),
    ));
    tracing::warn!(deadline = %deadline.name, level, escalated_to = %to, "escalated");
    Ok(())
}

/// The request number of an `evidence_answer_<n>` deadline.
fn evidence_answer_seq(name: &str) -> Option<u32> {
    name.strip_prefix("evidence_answer_")?.parse().ok()
}

/// The complainant never sent the evidence: the work is answered with the playbook's
/// explanation and resolved, exactly as an explanation by the department would be, so the
/// survey and the deadlines follow as usual.
async fn close_unanswered(
    routing: &Routing,
    unit: &mut Unit,
    event: &Event,
    mut work: crate::domain::work::Work,
    playbook: &redress_playbook::Playbook,
    seq: u32,
) -> Result<(), Failure> {
    let now = routing.now();
    let actor = IDENT.name;
    let message = playbook.evidence.close_message.trim().to_string();
    let Some(change) = work.close_unanswered(&message, now) else {
        return Ok(());
    };
    work.sealed_reply = match routing.seal(&work, &message).await {
        Ok(sealed) => sealed.unwrap_or_default(),
        Err(crate::SealError::Erased) => Vec::new(),
        Err(e) => return Err(Failure::Retry(e.to_string())),
    };
    let cause = Caused::Event(&event.envelope);
    routing
        .record(unit, &work, change, actor, "", cause)
        .await?;
    notify(
        unit,
        &work,
        Notice::Reply,
        notice_id("reply", &work),
        &message,
    );
    let limit = playbook
        .evidence
        .answer_within
        .as_deref()
        .unwrap_or("the time allowed");
    let note = format!("closed as unsubstantiated: no evidence for request {seq} within {limit}");
    let change = work
        .resolve(now)
        .map_err(|r| Failure::Reject(r.to_string()))?;
    debug_assert_eq!(change, WorkChange::Resolved);
    routing
        .record(unit, &work, change, actor, &note, cause)
        .await?;
    routing
        .close_unsurveyed(unit, &mut work, playbook, actor, cause)
        .await?;
    unit.count("routing_evidence_lapsed_total", 1);
    tracing::info!(seq, "closed for want of evidence");
    Ok(())
}
