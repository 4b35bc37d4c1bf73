//! Department commands: accept, propose, reply, resolve, transfer, progress, contest,
//! explain, investigate, commit, merge, request_evidence. Each is checked against who signed
//! it (a member of the department that owns the work) and the work's state, changes the
//! work in one transaction with its event, and answers with the work item or a typed error.

use std::sync::Arc;

use prost::Message as _;
use redress_platform::Unit;
use redress_platform::commands::{Claimed, CommandUnit, Refusal};
use redress_proto::subjects;
use redress_proto::v1::{
    CommandErrorCode, Explain, ReplyToComplainant, WorkChange, WorkCommand, WorkCommandReply,
    WorkState, work_command::Action, work_command_reply::Outcome,
};

use crate::domain::work;
use crate::{Caused, Routing, Told, store};

impl From<work::Refusal> for Refusal {
    fn from(r: work::Refusal) -> Self {
        let message = r.to_string();
        match r {
            work::Refusal::Missing { field } => Refusal::missing(field, message),
            work::Refusal::Malformed { field, .. } => Refusal::malformed(field, message),
            work::Refusal::Forbidden { field, .. } => Refusal::forbidden(field, message),
            work::Refusal::WrongState { .. } => Refusal::wrong_state("ticket", message),
        }
    }
}

pub async fn handle(
    routing: Arc<Routing>,
    verb: &'static str,
    mut cmd: WorkCommand,
    message: async_nats::Message,
) -> Result<WorkCommandReply, Refusal> {
    tracing::Span::current().record("ticket", cmd.ticket.trim());
    bind_department(&routing, &message.subject, &mut cmd)?;
    let person = redress_platform::people::signer(&routing.ctx.people, &message).await?;
    redress_platform::people::bind("actor", &mut cmd.actor, &person)?;
    run(&routing, verb, cmd).await
}

/// The department is the one in the subject (which broker permissions can restrict); a
/// command that names another in its body is refused.
fn bind_department(routing: &Routing, subject: &str, cmd: &mut WorkCommand) -> Result<(), Refusal> {
    let Some(dept) = routing.ctx.subjects.department_of_command(subject) else {
        return Err(Refusal::malformed(
            "department",
            format!("{subject} does not end in a department"),
        ));
    };
    let named = cmd.department.trim();
    if named.is_empty() {
        cmd.department = dept.to_string();
    } else if named != dept {
        return Err(Refusal::forbidden(
            "department",
            format!("sent on the subject of {dept} for {named}"),
        ));
    }
    Ok(())
}

/// Free text a department writes: at most this many bytes.
const MAX_TEXT: usize = 16 * 1024;

fn check_shape(verb: &str, cmd: &WorkCommand) -> Result<(), Refusal> {
    Refusal::require("command_id", &cmd.command_id)?;
    Refusal::require("ticket", &cmd.ticket)?;
    Refusal::token("ticket", &cmd.ticket, 64)?;
    Refusal::token("actor", &cmd.actor, 100)?;
    let given = match &cmd.action {
        None => return Err(Refusal::missing("action", "action is required")),
        Some(Action::Accept(_)) => subjects::routing::ACCEPT,
        Some(Action::Propose(p)) => {
            Refusal::text("propose.remedy", &p.remedy, MAX_TEXT)?;
            Refusal::token("propose.currency", &p.currency, 3)?;
            subjects::routing::PROPOSE
        }
        Some(Action::Reply(r)) => {
            Refusal::text("reply.message", &r.message, MAX_TEXT)?;
            subjects::routing::REPLY
        }
        Some(Action::Resolve(r)) => {
            Refusal::text("resolve.summary", &r.summary, MAX_TEXT)?;
            subjects::routing::RESOLVE
        }
        Some(Action::Transfer(t)) => {
            Refusal::token("transfer.to_department", &t.to_department, 64)?;
            Refusal::text("transfer.reason", &t.reason, MAX_TEXT)?;
            Refusal::text("transfer.understood", &t.understood, MAX_TEXT)?;
            subjects::routing::TRANSFER
        }
        Some(Action::Progress(p)) => {
            Refusal::text("progress.message", &p.message, MAX_TEXT)?;
            subjects::routing::PROGRESS
        }
        Some(Action::Contest(c)) => {
            Refusal::text("contest.objection", &c.objection, MAX_TEXT)?;
            subjects::routing::CONTEST
        }
        Some(Action::Explain(e)) => {
            Refusal::text("explain.message", &e.message, MAX_TEXT)?;
            Refusal::text("explain.basis", &e.basis, 1024)?;
            subjects::routing::EXPLAIN
        }
        Some(Action::Investigate(i)) => {
            Refusal::text("investigate.notes", &i.notes, MAX_TEXT)?;
            Refusal::text("investigate.cause", &i.cause, MAX_TEXT)?;
            for a in &i.actions {
                Refusal::text("investigate.actions.what", &a.what, 4096)?;
                Refusal::token("investigate.actions.owner", &a.owner, 100)?;
                Refusal::token("investigate.actions.due_on", &a.due_on, 10)?;
            }
            for f in &i.files {
                Refusal::token("investigate.files.uri", &f.uri, 2048)?;
                Refusal::token("investigate.files.media_type", &f.media_type, 255)?;
                Refusal::text("investigate.files.file_name", &f.file_name, 255)?;
            }
            subjects::routing::INVESTIGATE
        }
        Some(Action::Commit(c)) => {
            Refusal::token("commit.due_on", &c.due_on, 10)?;
            Refusal::text("commit.plan", &c.plan, MAX_TEXT)?;
            subjects::routing::COMMIT
        }
        Some(Action::Merge(m)) => {
            Refusal::require("merge.into_ticket", &m.into_ticket)?;
            Refusal::token("merge.into_ticket", &m.into_ticket, 64)?;
            Refusal::text("merge.reason", &m.reason, MAX_TEXT)?;
            subjects::routing::MERGE
        }
        Some(Action::RequestEvidence(r)) => {
            Refusal::text("request_evidence.what", &r.what, MAX_TEXT)?;
            subjects::routing::REQUEST_EVIDENCE
        }
        Some(Action::Reclassify(r)) => {
            Refusal::token("reclassify.nature", &r.nature, 64)?;
            Refusal::token("reclassify.category", &r.category, 64)?;
            Refusal::text("reclassify.reason", &r.reason, MAX_TEXT)?;
            subjects::routing::RECLASSIFY
        }
    };
    if given != verb {
        return Err(Refusal::malformed(
            "action",
            format!("a {given} action sent to the {verb} command"),
        ));
    }
    Ok(())
}

async fn run(routing: &Routing, verb: &str, cmd: WorkCommand) -> Result<WorkCommandReply, Refusal> {
    check_shape(verb, &cmd)?;
    let request = [verb.as_bytes(), b":", &cmd.encode_to_vec()].concat();
    let mut unit = match routing
        .store
        .claim::<WorkCommandReply>(&cmd.command_id, &request)
        .await?
    {
        Claimed::Done(reply) => return Ok(reply),
        Claimed::New(unit) => unit,
    };
    let ticket = cmd.ticket.trim();
    let Some(mut work) = store::lock_by_ticket(unit.db(), ticket).await? else {
        return Err(Refusal::not_found(
            "ticket",
            format!("no work for ticket {ticket}"),
        ));
    };
    let playbook = routing
        .playbooks
        .get(&work.playbook)
        .map_err(|e| Refusal::new(CommandErrorCode::Internal, "", e.to_string()))?;
    // Whoever the playbook names to settle disputes over routing may send transferred work
    // back without being a member of the department holding it; the transfer itself checks
    // that it is a send-back.
    let arbiter = matches!(
        cmd.action,
        Some(Action::Transfer(_) | Action::Reclassify(_))
    ) && playbook
        .routing
        .send_back_by
        .iter()
        .any(|a| a == cmd.actor.trim());
    if arbiter {
        work.owned_by(cmd.department.trim())?;
    } else {
        work.authorise(playbook, cmd.department.trim(), cmd.actor.trim())?;
    }
    let actor = cmd.actor.trim();
    let now = routing.now();
    if let Some(Action::Explain(e)) = &cmd.action {
        return explain(routing, unit, work, playbook, actor, e, &cmd.command_id).await;
    }
    let mut told = Told::default();
    let mut merged: Option<work::Work> = None;
    let mut evidence_token = String::new();
    let (change, note) = match cmd.action.as_ref().expect("checked") {
        Action::Accept(_) => (work.accept(actor, now)?, String::new()),
        Action::Propose(p) => (work.propose(actor, p, &playbook.currency)?, String::new()),
        Action::Reply(r) => {
            let change = work.reply(&r.message, now)?;
            work.sealed_reply = seal(routing, &work, work.reply.as_deref().unwrap_or_default())
                .await?
                .unwrap_or_default();
            (change, String::new())
        }
        Action::Resolve(r) => (work.resolve(now)?, r.summary.trim().to_string()),
        Action::Transfer(t) => {
            let mut hop = work.transfer(playbook, actor, t)?;
            // The receiving department's clocks start again when the playbook says so.
            if playbook.routing.transfer_deadlines == redress_playbook::TransferDeadlines::Restart {
                work.assigned_at = now;
            }
            // What was understood retells the complaint: sealed like it.
            if let Some(sealed) = seal(routing, &work, &hop.understood).await? {
                hop.understood.clear();
                told.sealed_note = sealed;
            }
            store::record_transfer(unit.db(), &work, &hop, &told.sealed_note, actor, now).await?;
            let note = format!("from {}: {}", hop.from_department, hop.reason);
            told.transfer = Some(hop);
            (WorkChange::Assigned, note)
        }
        Action::Progress(p) => {
            let change = work.report_progress(&p.message)?;
            (
                change,
                sealed_note(routing, &work, &p.message, &mut told).await?,
            )
        }
        Action::Contest(c) => {
            let change = work.contest(&c.objection)?;
            (
                change,
                sealed_note(routing, &work, &c.objection, &mut told).await?,
            )
        }
        Action::Investigate(i) => {
            let change = work.investigate(i)?;
            store::record_investigation(unit.db(), &work, i, actor, now).await?;
            let note = investigation_summary(i);
            told.investigation = Some(i.clone());
            (change, note)
        }
        Action::Commit(c) => {
            // Routing keeps no calendar: "today" is yesterday in UTC, so that no zone ahead
            // of or behind UTC sees its own today refused.
            let today = (now - chrono::Duration::days(1)).date_naive();
            let change = work.commit(c, today)?;
            (
                change,
                sealed_note(routing, &work, &c.plan, &mut told).await?,
            )
        }
        Action::Merge(m) => {
            let into = m.into_ticket.trim();
            if into == work.ticket {
                return Err(Refusal::malformed(
                    "merge.into_ticket",
                    format!("{into} cannot be merged into itself"),
                ));
            }
            // Read, not locked: the survivor does not change, and two merges in opposite
            // directions must not wait for each other.
            let Some(survivor) = store::find_by_ticket(unit.db(), into).await? else {
                return Err(Refusal::not_found(
                    "merge.into_ticket",
                    format!("no work for ticket {into}"),
                ));
            };
            let change = work.merge_into(&survivor, &m.reason)?;
            merged = Some(survivor);
            (change, m.reason.trim().to_string())
        }
        Action::RequestEvidence(r) => {
            let change = work.request_evidence(&r.what, now)?;
            let what = r.what.trim();
            let sealed = seal(routing, &work, what).await?;
            let request = work.evidence.last_mut().expect("just requested");
            let note = match sealed {
                Some(sealed) => {
                    // On the event too, for the complaint's history.
                    told.sealed_note = sealed.clone();
                    request.sealed_what = sealed;
                    format!("request {}", request.seq)
                }
                None => format!("request {}: {what}", request.seq),
            };
            let (token, hash) = redress_platform::tokens::new_token();
            evidence_token = token;
            told.evidence_token_sha256 = hash;
            (change, note)
        }
        Action::Reclassify(r) => {
            let (change, was) = work.reclassify(playbook, r)?;
            let note = correction_note(&was, &work);
            told.reclassification = Some(was);
            (change, note)
        }
        Action::Explain(_) => unreachable!("handled above"),
    };
    work.stop_waiting_unless_accepted(now);
    // The routing history names a hop as a transfer, though the event is an assignment.
    let token = if told.transfer.is_some() {
        "transferred"
    } else {
        change.token()
    };
    store::save(unit.db(), &work, token, actor, &note, now).await?;
    unit.emit(routing.work_changed_with(
        &work,
        change,
        actor,
        &note,
        Caused::Command(&cmd.command_id),
        told,
    ));
    // A correction the routing rules send elsewhere follows as a transfer.
    if matches!(cmd.action, Some(Action::Reclassify(_)))
        && let Some(hop) = work.reroute(playbook)
    {
        store::record_transfer(unit.db(), &work, &hop, &[], actor, now).await?;
        let note = format!("from {}: {}", hop.from_department, hop.reason);
        store::save(unit.db(), &work, "transferred", actor, &note, now).await?;
        unit.emit(routing.work_changed_with(
            &work,
            WorkChange::Assigned,
            actor,
            &note,
            Caused::Command(&cmd.command_id),
            Told {
                transfer: Some(hop),
                ..Told::default()
            },
        ));
    }
    match &cmd.action {
        Some(Action::Reply(_)) => {
            let reply = work.reply.clone().unwrap_or_default();
            notify(
                &mut unit,
                &work,
                Notice::Reply,
                notice_id("reply", &work),
                &reply,
            );
        }
        Some(Action::RequestEvidence(r)) => {
            let id = notice_id("evidence", &work);
            notify(
                &mut unit,
                &work,
                Notice::EvidenceRequested {
                    token: &evidence_token,
                },
                id,
                &r.what,
            );
        }
        Some(Action::Progress(p)) => {
            let id = notice_id("progress", &work);
            notify(&mut unit, &work, Notice::Progress, id, &p.message);
        }
        Some(Action::Commit(c)) => {
            let plan = format!("{} (completion by {})", c.plan.trim(), c.due_on.trim());
            let id = notice_id("progress", &work);
            notify(&mut unit, &work, Notice::Progress, id, &plan);
        }
        Some(Action::Merge(_)) => {
            let survivor = merged.as_ref().expect("set by the merge");
            let (d, s) = (&work.ticket, &survivor.ticket);
            let message = format!(
                "您的投诉 {d} 与投诉 {s} 为同一事项，已合并到 {s} 处理。Complaint {d} repeats {s} and is handled under {s}."
            );
            // Both complainants hear which ticket carries on.
            let id = notice_id("merged", &work);
            notify(&mut unit, &work, Notice::Merged, id, &message);
            let id = format!("merged-into:{}:{}", survivor.work_id, work.work_id);
            notify(&mut unit, survivor, Notice::Merged, id, &message);
        }
        _ => {}
    }
    tracing::info!(change = change.token(), actor, "work changed");
    unit.finish(WorkCommandReply {
        outcome: Some(Outcome::Work(work.to_proto())),
    })
    .await
}

/// The one line an investigation entry leaves in routing's history: the cause and the
/// responsibility, and how many actions and files came with it.
fn investigation_summary(i: &redress_proto::v1::Investigate) -> String {
    let mut parts = Vec::new();
    if !i.cause.trim().is_empty() {
        parts.push(format!("cause: {}", i.cause.trim()));
    }
    match redress_proto::v1::Responsibility::try_from(i.responsibility).unwrap_or_default() {
        redress_proto::v1::Responsibility::Unspecified => {}
        r => parts.push(format!(
            "responsibility: {}",
            r.as_str_name()
                .trim_start_matches("RESPONSIBILITY_")
                .to_ascii_lowercase()
                .replace('_', " ")
        )),
    }
    if !i.actions.is_empty() {
        parts.push(format!("{} action(s)", i.actions.len()));
    }
    if !i.files.is_empty() {
        parts.push(format!("{} file(s)", i.files.len()));
    }
    if parts.is_empty() {
        parts.push("notes".to_string());
    }
    parts.join("; ")
}

/// "nature communicative → valid; severity general → major: <reason>".
fn correction_note(was: &redress_proto::v1::Reclassification, now: &work::Work) -> String {
    use redress_proto::v1::{Severity, Urgency};
    let severity = |s: i32| Severity::key_of(s).to_string();
    let urgency = |u: i32| Urgency::key_of(u).to_string();
    let mut parts = Vec::new();
    for (what, from, to) in [
        ("nature", was.nature.clone(), now.nature.clone()),
        ("category", was.category.clone(), now.category.clone()),
        ("severity", severity(was.severity), severity(now.severity)),
        ("urgency", urgency(was.urgency), urgency(now.urgency)),
    ] {
        if from != to {
            parts.push(format!("{what} {from} → {to}"));
        }
    }
    format!("{}: {}", parts.join("; "), was.reason)
}

/// What a complainant is sent through the adapter of their channel.
#[derive(Clone, Copy)]
pub(crate) enum Notice<'a> {
    Reply,
    Progress,
    Merged,
    /// With the token the answer must present.
    EvidenceRequested {
        token: &'a str,
    },
    EvidenceReminder,
}

/// Sends `message` to the complainant of `to` as `notice`, under `msg_id` (the broker drops
/// a repeat).
pub(crate) fn notify(
    unit: &mut Unit,
    to: &work::Work,
    notice: Notice<'_>,
    msg_id: String,
    message: &str,
) {
    let subjects = unit.subjects();
    let (subject, token) = match notice {
        Notice::Reply => (subjects.notify_reply(&to.channel), ""),
        Notice::Progress => (subjects.notify_progress(&to.channel), ""),
        Notice::Merged => (subjects.notify_merged(&to.channel), ""),
        Notice::EvidenceRequested { token } => {
            (subjects.notify_evidence_requested(&to.channel), token)
        }
        Notice::EvidenceReminder => (subjects.notify_evidence_reminder(&to.channel), ""),
    };
    unit.send(
        subject,
        msg_id,
        &ReplyToComplainant {
            ticket: to.ticket.clone(),
            complaint_id: to.complaint_id.to_string(),
            channel: to.channel.clone(),
            external_id: to.external_id.clone(),
            department: to.department.clone(),
            message: message.trim().to_string(),
            token: token.to_string(),
        },
    );
}

/// The id of the notice a work change sends: one per change.
pub(crate) fn notice_id(kind: &str, work: &work::Work) -> String {
    format!("{kind}:{}:{}", work.work_id, work.version)
}

/// The fast path in one unit: accept (if nobody has), reply with the explanation, resolve.
/// Each step is its own event, so everything downstream (deadlines met, the reply sent, the
/// survey) happens exactly as on the long path.
async fn explain(
    routing: &Routing,
    mut unit: CommandUnit,
    mut work: work::Work,
    playbook: &redress_playbook::Playbook,
    actor: &str,
    e: &Explain,
    command_id: &str,
) -> Result<WorkCommandReply, Refusal> {
    let now = routing.now();
    // A refusal at any step drops the unit: the claim, the acceptance and its event roll
    // back together, so nothing is half done.
    if work.state == WorkState::Assigned {
        work.accept(actor, now)?;
        store::save(
            unit.db(),
            &work,
            WorkChange::Accepted.token(),
            actor,
            "",
            now,
        )
        .await?;
        unit.emit(routing.work_changed(
            &work,
            WorkChange::Accepted,
            actor,
            "",
            Caused::Command(command_id),
        ));
    }
    let change = work.explain(playbook, e, now)?;
    work.stop_waiting_unless_accepted(now);
    work.sealed_reply = seal(routing, &work, work.reply.as_deref().unwrap_or_default())
        .await?
        .unwrap_or_default();
    store::save(unit.db(), &work, change.token(), actor, "", now).await?;
    unit.emit(routing.work_changed(&work, change, actor, "", Caused::Command(command_id)));
    let reply = work.reply.clone().unwrap_or_default();
    notify(
        &mut unit,
        &work,
        Notice::Reply,
        notice_id("reply", &work),
        &reply,
    );
    let basis = if e.basis.trim().is_empty() {
        String::new()
    } else {
        format!("; basis: {}", e.basis.trim())
    };
    let why = if e.not_liable {
        "not the company's fault".to_string()
    } else {
        format!("{} complaint", work.nature)
    };
    let note = format!("explained without a proposal: {why}{basis}");
    let change = work.resolve(now)?;
    store::save(unit.db(), &work, change.token(), actor, &note, now).await?;
    unit.emit(routing.work_changed(&work, change, actor, &note, Caused::Command(command_id)));
    routing
        .close_unsurveyed(
            &mut unit,
            &mut work,
            playbook,
            actor,
            Caused::Command(command_id),
        )
        .await?;
    tracing::info!(actor, "work explained and resolved");
    unit.finish(WorkCommandReply {
        outcome: Some(Outcome::Work(work.to_proto())),
    })
    .await
}

/// Text to or from the complainant (a progress report, an objection): sealed on the event,
/// never kept in clear in routing's history, whose note says only that there is one. Work from
/// before sealing, whose complaint has no key, carries it in clear in the note.
async fn sealed_note(
    routing: &Routing,
    work: &work::Work,
    text: &str,
    told: &mut Told,
) -> Result<String, Refusal> {
    match seal(routing, work, text.trim()).await? {
        Some(sealed) => {
            told.sealed_note = sealed;
            Ok(String::new())
        }
        None => Ok(text.trim().to_string()),
    }
}

/// `text` sealed for `work`'s complaint ([`Routing::seal`]), or why the command cannot go on.
async fn seal(
    routing: &Routing,
    work: &work::Work,
    text: &str,
) -> Result<Option<Vec<u8>>, Refusal> {
    routing.seal(work, text).await.map_err(|e| match e {
        crate::SealError::Erased => Refusal::wrong_state("ticket", format!("{}: {e}", work.ticket)),
        e => Refusal::internal(format!("{e}; send the command again")),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redress_proto::v1::{
        Accept, CommitDate, Contest, Explain, Investigate, Merge, Propose, Reclassify, Reply,
        ReportProgress, RequestEvidence, Resolve, Transfer,
    };

    use super::*;

    const VERBS: [&str; 13] = [
        subjects::routing::ACCEPT,
        subjects::routing::PROPOSE,
        subjects::routing::REPLY,
        subjects::routing::RESOLVE,
        subjects::routing::TRANSFER,
        subjects::routing::PROGRESS,
        subjects::routing::CONTEST,
        subjects::routing::EXPLAIN,
        subjects::routing::INVESTIGATE,
        subjects::routing::COMMIT,
        subjects::routing::MERGE,
        subjects::routing::REQUEST_EVIDENCE,
        subjects::routing::RECLASSIFY,
    ];

    fn stray_control(s: &str) -> bool {
        s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    }

    fn valid(i: usize) -> WorkCommand {
        WorkCommand {
            command_id: "c-1".into(),
            ticket: "RD-20261123-000007".into(),
            department: "logistics".into(),
            actor: "li.wei".into(),
            action: Some(match i % 13 {
                0 => Action::Accept(Accept::default()),
                1 => Action::Propose(Propose {
                    remedy: "退款".into(),
                    currency: "CNY".into(),
                    ..Default::default()
                }),
                2 => Action::Reply(Reply {
                    message: "已处理".into(),
                }),
                3 => Action::Resolve(Resolve {
                    summary: "done".into(),
                }),
                4 => Action::Transfer(Transfer {
                    to_department: "quality".into(),
                    reason: "质量问题".into(),
                    understood: "产品坏了".into(),
                }),
                5 => Action::Progress(ReportProgress {
                    message: "正在处理".into(),
                }),
                6 => Action::Contest(Contest {
                    objection: "不满意".into(),
                }),
                12 => Action::Reclassify(Reclassify {
                    nature: "valid".into(),
                    category: "delivery".into(),
                    reason: "误判为咨询".into(),
                    ..Default::default()
                }),
                11 => Action::RequestEvidence(RequestEvidence {
                    what: "请提供签收单照片".into(),
                }),
                10 => Action::Merge(Merge {
                    into_ticket: "RD-20261123-000003".into(),
                    reason: "同一快递单".into(),
                }),
                9 => Action::Commit(CommitDate {
                    due_on: "2026-12-10".into(),
                    plan: "更换管道".into(),
                }),
                8 => Action::Investigate(Investigate {
                    notes: "查看了签收记录".into(),
                    cause: "快递员未送货上门".into(),
                    ..Default::default()
                }),
                _ => Action::Explain(Explain {
                    message: "按规定不予退款".into(),
                    not_liable: true,
                    basis: "退款政策第3条".into(),
                }),
            }),
        }
    }

    /// What every command that passes the shape check satisfies.
    fn holds(verb: &str, cmd: &WorkCommand) -> Result<(), TestCaseError> {
        for (v, max) in [(&cmd.ticket, 64), (&cmd.actor, 100)] {
            let v = v.trim();
            prop_assert!(v.len() <= max);
            prop_assert!(!v.chars().any(|c| c.is_control() || c.is_whitespace()));
        }
        prop_assert!(!cmd.command_id.trim().is_empty() && !cmd.ticket.trim().is_empty());
        let (given, text) = match cmd.action.as_ref().expect("an action") {
            Action::Accept(_) => (subjects::routing::ACCEPT, ""),
            Action::Propose(p) => (subjects::routing::PROPOSE, p.remedy.as_str()),
            Action::Reply(r) => (subjects::routing::REPLY, r.message.as_str()),
            Action::Resolve(r) => (subjects::routing::RESOLVE, r.summary.as_str()),
            Action::Transfer(t) => {
                prop_assert!(t.to_department.trim().len() <= 64);
                prop_assert!(!stray_control(&t.understood) && t.understood.len() <= MAX_TEXT);
                (subjects::routing::TRANSFER, t.reason.as_str())
            }
            Action::Progress(p) => (subjects::routing::PROGRESS, p.message.as_str()),
            Action::Contest(c) => (subjects::routing::CONTEST, c.objection.as_str()),
            Action::Explain(e) => {
                prop_assert!(e.basis.len() <= 1024 && !stray_control(&e.basis));
                (subjects::routing::EXPLAIN, e.message.as_str())
            }
            Action::Investigate(i) => {
                prop_assert!(i.cause.len() <= MAX_TEXT && !stray_control(&i.cause));
                (subjects::routing::INVESTIGATE, i.notes.as_str())
            }
            Action::Commit(c) => {
                prop_assert!(c.due_on.trim().len() <= 10);
                (subjects::routing::COMMIT, c.plan.as_str())
            }
            Action::Merge(m) => {
                let into = m.into_ticket.trim();
                prop_assert!(!into.is_empty() && into.len() <= 64);
                (subjects::routing::MERGE, m.reason.as_str())
            }
            Action::RequestEvidence(r) => (subjects::routing::REQUEST_EVIDENCE, r.what.as_str()),
            Action::Reclassify(r) => {
                prop_assert!(r.nature.trim().len() <= 64 && r.category.trim().len() <= 64);
                (subjects::routing::RECLASSIFY, r.reason.as_str())
            }
        };
        prop_assert_eq!(given, verb);
        prop_assert!(text.len() <= MAX_TEXT && !stray_control(text));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Byte-level damage to valid commands of every verb, sent to any verb: the check
        /// never panics, and what passes is a command the handlers can store and publish.
        #[test]
        fn damaged_commands_are_refused_or_sound(
            which in 0usize..13,
            verb in 0usize..13,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
            filler in proptest::collection::vec(any::<u8>(), 0..40_000),
        ) {
            let mut bytes = valid(which).encode_to_vec();
            for (at, byte, how) in edits {
                let i = at.index(bytes.len().max(1)).min(bytes.len());
                match how {
                    0 if i < bytes.len() => bytes[i] ^= byte,
                    1 => bytes.truncate(i),
                    _ => bytes.insert(i, byte),
                }
            }
            if let Ok(mut cmd) = WorkCommand::decode(bytes.as_slice()) {
                // Now and then a field far over its cap, made of arbitrary bytes.
                if filler.len() > 20_000 {
                    cmd.actor = String::from_utf8_lossy(&filler).into_owned();
                }
                if check_shape(VERBS[verb], &cmd).is_ok() {
                    holds(VERBS[verb], &cmd)?;
                }
            }
        }

        /// Field-level: any strings in any field.
        #[test]
        fn any_fields_are_refused_or_sound(
            which in 0usize..13,
            verb in 0usize..13,
            ticket in ".{0,80}",
            actor in prop_oneof![Just("li.wei".to_string()), ".{0,120}"],
            text in prop_oneof![Just("好".to_string()), ".{0,64}", "[\u{0}-\u{1f}a]{0,8}"],
            long in 0usize..20_000,
        ) {
            let mut cmd = valid(which);
            cmd.ticket = ticket;
            cmd.actor = actor;
            let text = format!("{text}{}", "x".repeat(long));
            match cmd.action.as_mut().expect("an action") {
                Action::Accept(_) => {}
                Action::Propose(p) => p.remedy = text,
                Action::Reply(r) => r.message = text,
                Action::Resolve(r) => r.summary = text,
                Action::Transfer(t) => t.reason = text,
                Action::Progress(p) => p.message = text,
                Action::Contest(c) => c.objection = text,
                Action::Explain(e) => e.message = text,
                Action::Investigate(i) => i.notes = text,
                Action::Commit(c) => c.plan = text,
                Action::Merge(m) => m.reason = text,
                Action::RequestEvidence(r) => r.what = text,
                Action::Reclassify(r) => r.reason = text,
            }
            if check_shape(VERBS[verb], &cmd).is_ok() {
                holds(VERBS[verb], &cmd)?;
            }
        }
    }
}
