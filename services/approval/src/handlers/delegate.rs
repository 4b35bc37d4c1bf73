//! `DelegateApproval`: an approver hands their approvals to another person for a range of
//! days (holiday cover). The approver delegating signs it; the delegate then decides in
//! their place on those days, and every such decision names both.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::commands::{Claimed, Refusal};
use redress_proto::v1::delegate_reply::Outcome;
use redress_proto::v1::{DelegateApproval, DelegateReply, DelegationView};

use crate::Approvals;

fn day(field: &'static str, s: &str) -> Result<chrono::NaiveDate, Refusal> {
    Refusal::require(field, s)?;
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| Refusal::malformed(field, format!("{:?} is not a day (YYYY-MM-DD)", s.trim())))
}

pub async fn handle(
    approvals: Arc<Approvals>,
    mut cmd: DelegateApproval,
    message: async_nats::Message,
) -> Result<DelegateReply, Refusal> {
    let person = redress_platform::people::signer(&approvals.ctx.people, &message).await?;
    redress_platform::people::bind("delegator", &mut cmd.delegator, &person)?;
    Refusal::require("command_id", &cmd.command_id)?;
    Refusal::require("delegate", &cmd.delegate)?;
    Refusal::token("delegate", &cmd.delegate, 100)?;
    let from = day("from_day", &cmd.from_day)?;
    let until = day("until_day", &cmd.until_day)?;
    if until < from {
        return Err(Refusal::malformed(
            "until_day",
            format!("{until} is before {from}"),
        ));
    }
    let key = if cmd.playbook.trim().is_empty() {
        "default"
    } else {
        cmd.playbook.trim()
    };
    let playbook = approvals
        .playbooks
        .get(key)
        .map_err(|e| Refusal::not_found("playbook", e.to_string()))?;
    let delegate = cmd.delegate.trim();
    if !playbook.approval.approvers.iter().any(|a| a.name == person) {
        return Err(Refusal::forbidden(
            "delegator",
            format!("{person} is not an approver of playbook {key}: nothing to delegate"),
        ));
    }
    if delegate == person {
        return Err(Refusal::malformed("delegate", "delegating to oneself"));
    }
    if !playbook.people().contains(delegate) {
        return Err(Refusal::not_found(
            "delegate",
            format!("{delegate} is not a person of playbook {key}"),
        ));
    }
    let mut unit = match approvals
        .store
        .claim::<DelegateReply>(&cmd.command_id, &cmd.encode_to_vec())
        .await?
    {
        Claimed::Done(reply) => return Ok(reply),
        Claimed::New(unit) => unit,
    };
    let now = approvals.ctx.clock.now();
    sqlx::query(
        "INSERT INTO delegations (command_id, playbook, delegator, delegate, from_day, until_day,
             recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&cmd.command_id)
    .bind(key)
    .bind(&person)
    .bind(delegate)
    .bind(from)
    .bind(until)
    .bind(now)
    .execute(unit.db())
    .await?;
    unit.count("approval_delegations_total", 1);
    tracing::info!(delegator = %person, %delegate, %from, %until, "approvals delegated");
    unit.finish(DelegateReply {
        outcome: Some(Outcome::Delegation(DelegationView {
            delegator: person,
            delegate: delegate.to_string(),
            from_day: from.to_string(),
            until_day: until.to_string(),
            playbook: key.to_string(),
        })),
    })
    .await
}
