//! How the client verbs print what the services answer: JSON (snake_case fields, enum values
//! as lowercase words, RFC 3339 timestamps, absent values as null) and human text.

use std::process::ExitCode;

use redress_client::{ClientError, command_error_code_word, money};
use redress_proto::time::Timestamp;
use redress_proto::v1::{
    ApprovalView, Deadline, DeadlineState, Proposal, Responsibility, Severity, SurveyScores,
    SurveyView, Urgency, WorkItem, WorkState,
};
use serde_json::{Value, json};

/// Exit code of a command the service refused with a typed error.
pub const REFUSED: u8 = 3;

/// `WORK_STATE_ACCEPTED` → `accepted`; the unspecified value → `None`.
fn word(name: &str, prefix: &str) -> Option<String> {
    let w = name.strip_prefix(prefix).unwrap_or(name);
    (w != "UNSPECIFIED").then(|| w.to_ascii_lowercase())
}

pub fn state_word(s: WorkState) -> Option<String> {
    word(s.as_str_name(), "WORK_STATE_")
}

pub fn severity_word(s: Severity) -> Option<String> {
    word(s.as_str_name(), "SEVERITY_")
}

pub fn urgency_word(u: Urgency) -> Option<String> {
    word(u.as_str_name(), "URGENCY_")
}

pub fn deadline_state_word(s: DeadlineState) -> Option<String> {
    word(s.as_str_name(), "DEADLINE_STATE_")
}

/// The words `--responsibility` takes, so what is printed can be typed back in.
pub fn responsibility_word(r: Responsibility) -> Option<&'static str> {
    match r {
        Responsibility::CompanyLiable => Some("company"),
        Responsibility::NotLiable => Some("not-liable"),
        Responsibility::PartlyLiable => Some("partly"),
        Responsibility::Unspecified => None,
    }
}

pub fn rfc3339(ts: Option<&Timestamp>) -> Option<String> {
    ts.and_then(|t| chrono::DateTime::from_timestamp_micros(redress_proto::time::to_unix_micros(t)))
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

fn text_or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

pub fn proposal_json(p: &Proposal) -> Value {
    json!({
        "proposal_id": p.proposal_id,
        "responsibility": responsibility_word(p.responsibility()),
        "remedy": p.remedy,
        "compensation_minor": p.compensation_minor,
        "compensation": money::format_minor(p.compensation_minor),
        "currency": p.currency,
        "proposed_by": p.proposed_by,
    })
}

pub fn work_json(w: &WorkItem) -> Value {
    json!({
        "ticket": w.ticket,
        "work_id": w.work_id,
        "department": w.department,
        "state": state_word(w.state()),
        "round": w.round,
        "version": w.version,
        "nature": w.nature,
        "category": w.category,
        "severity": severity_word(w.severity()),
        "urgency": urgency_word(w.urgency()),
        "channel": w.channel,
        "external_id": w.external_id,
        "text": w.text,
        "text_erased": w.text_erased,
        "proposal": w.proposal.as_ref().map(proposal_json),
        "assigned_at": rfc3339(w.assigned_at.as_ref()),
        "accepted_by": w.accepted_by,
        "reply": w.reply,
        "escalation_level": w.escalation_level,
        "routing_rule": w.routing_rule,
        "previous_departments": w.previous_departments,
        "contests": w.contests,
        "committed_on": w.committed_on,
        "merged_into": w.merged_into,
        "attachments": w.attachments.iter().map(|a| json!({
            "uri": a.uri, "media_type": a.media_type, "size_bytes": a.size_bytes,
            "file_name": a.file_name,
        })).collect::<Vec<_>>(),
    })
}

pub fn approval_json(a: &ApprovalView) -> Value {
    json!({
        "approval_id": a.approval_id,
        "ticket": a.ticket,
        "work_id": a.work_id,
        "department": a.department,
        "state": a.state,
        "proposal": a.proposal.as_ref().map(proposal_json),
        "reason": a.reason,
        "approver_role": a.approver_role,
        "decided_by": a.decided_by,
        "note": a.note,
        "chain": a.chain,
        "step": a.step,
        "steps": a.steps,
        "decisions": a.decisions.iter().map(|d| json!({
            "step": d.step,
            "approver": d.approver,
            "delegate": d.delegate,
            "approve": d.approve,
            "note": d.note,
            "at": d.at.as_ref().map(|t| t.to_string()),
        })).collect::<Vec<_>>(),
    })
}

/// Optional survey dimensions: 0 means not given.
fn score(n: u32) -> Value {
    if n == 0 { Value::Null } else { json!(n) }
}

pub fn scores_json(s: &SurveyScores) -> Value {
    json!({
        "overall": s.overall,
        "speed": score(s.speed),
        "effectiveness": score(s.effectiveness),
        "attitude": score(s.attitude),
        "transparency": score(s.transparency),
    })
}

pub fn survey_json(s: &SurveyView) -> Value {
    json!({
        "survey_id": s.survey_id,
        "ticket": s.ticket,
        "round": s.round,
        "state": s.state,
        "satisfied": s.satisfied,
        "scores": s.scores.as_ref().map(scores_json),
        "comment": s.comment,
    })
}

pub fn deadline_json(d: &Deadline) -> Value {
    json!({
        "name": d.name,
        "due_at": rfc3339(d.due_at.as_ref()),
        "state": deadline_state_word(d.state()),
        "round": d.round,
        "limit": d.limit,
        "calendar": d.calendar,
        "department": d.department,
        "settled_at": rfc3339(d.settled_at.as_ref()),
        "remaining_secs": (d.remaining_secs > 0).then_some(d.remaining_secs),
    })
}

/// "company liable, refund the fare, 800.00 CNY"
pub fn proposal_text(p: &Proposal) -> String {
    let mut parts = Vec::new();
    match p.responsibility() {
        Responsibility::CompanyLiable => parts.push("company liable".to_string()),
        Responsibility::NotLiable => parts.push("not liable".to_string()),
        Responsibility::PartlyLiable => parts.push("partly liable".to_string()),
        Responsibility::Unspecified => {}
    }
    if !p.remedy.is_empty() {
        parts.push(p.remedy.clone());
    }
    if p.compensation_minor != 0 {
        parts.push(
            format!(
                "{} {}",
                money::format_minor(p.compensation_minor),
                p.currency
            )
            .trim_end()
            .to_string(),
        );
    }
    parts.join(", ")
}

/// `RD-261123-000001 accepted by wang.fang (logistics, round 1)`
pub fn work_line(w: &WorkItem, actor: &str) -> String {
    format!(
        "{} {} by {} ({}, round {})",
        w.ticket,
        or_dash(state_word(w.state())),
        actor,
        w.department,
        w.round
    )
}

pub fn work_table(items: &[WorkItem]) -> String {
    table(
        &[
            "TICKET",
            "STATE",
            "ROUND",
            "CATEGORY",
            "SEVERITY",
            "ASSIGNED AT",
            "ACCEPTED BY",
        ],
        items
            .iter()
            .map(|w| {
                vec![
                    w.ticket.clone(),
                    or_dash(state_word(w.state())),
                    w.round.to_string(),
                    text_or_dash(&w.category),
                    or_dash(severity_word(w.severity())),
                    or_dash(rfc3339(w.assigned_at.as_ref())),
                    text_or_dash(&w.accepted_by),
                ]
            })
            .collect(),
    )
}

pub fn approval_table(items: &[ApprovalView]) -> String {
    table(
        &[
            "TICKET",
            "DEPARTMENT",
            "PROPOSED BY",
            "PROPOSAL",
            "REASON",
            "APPROVER",
        ],
        items
            .iter()
            .map(|a| {
                let p = a.proposal.clone().unwrap_or_default();
                vec![
                    a.ticket.clone(),
                    text_or_dash(&a.department),
                    text_or_dash(&p.proposed_by),
                    text_or_dash(&proposal_text(&p)),
                    text_or_dash(&a.reason),
                    text_or_dash(&a.approver_role),
                ]
            })
            .collect(),
    )
}

pub fn deadline_table(items: &[Deadline]) -> String {
    table(
        &[
            "ROUND",
            "DEADLINE",
            "LIMIT",
            "DUE AT",
            "STATE",
            "SETTLED AT",
        ],
        items
            .iter()
            .map(|d| {
                vec![
                    d.round.to_string(),
                    d.name.clone(),
                    text_or_dash(&d.limit),
                    or_dash(rfc3339(d.due_at.as_ref())),
                    or_dash(deadline_state_word(d.state()).map(|w| {
                        if d.remaining_secs > 0 {
                            let m = d.remaining_secs / 60;
                            format!("{w} ({}h{:02}m left)", m / 60, m % 60)
                        } else {
                            w
                        }
                    })),
                    or_dash(rfc3339(d.settled_at.as_ref())),
                ]
            })
            .collect(),
    )
}

/// Columns in a terminal: CJK characters take two.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            if redress_analytics::render::is_wide(c) {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Left-aligned columns two spaces apart; no trailing spaces.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| display_width(h)).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - display_width(cell) + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Prints a failed call and gives its exit code: 3 when the service refused the command
/// (on stdout as `{"error": …}` with `--json`, so a script reads one stream), 1 otherwise.
pub fn failed(e: &ClientError, json: bool) -> ExitCode {
    match e {
        ClientError::Command {
            code,
            field,
            message,
        } => {
            if json {
                println!(
                    "{}",
                    json!({ "error": {
                        "code": command_error_code_word(*code), "field": field, "message": message,
                    }})
                );
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(REFUSED)
        }
        _ => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Like [`failed`], for a command that changes something: when it is unknown whether the
/// service got it, says how to resend it without doing it twice.
pub fn failed_command(e: &ClientError, json: bool, command_id: &str) -> ExitCode {
    let code = failed(e, json);
    if matches!(e, ClientError::Timeout(..) | ClientError::Request(_)) {
        eprintln!(
            "it may have been done: to retry safely, run the same command again with \
             --command-id {command_id}"
        );
    }
    code
}

/// A contract message (`name`, e.g. `redress.v1.Kpis`) as JSON, fields named as in the
/// .proto, through the descriptors compiled with the contracts: no message is spelled out
/// by hand.
pub fn proto_json(name: &str, message: &impl prost::Message) -> anyhow::Result<Value> {
    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
    let pool = DescriptorPool::decode(redress_proto::DESCRIPTORS)?;
    let desc = pool
        .get_message_by_name(name)
        .ok_or_else(|| anyhow::anyhow!("{name} in the descriptors"))?;
    let msg = DynamicMessage::decode(desc, message.encode_to_vec().as_slice())?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    Ok(msg.serialize_with_options(serde_json::value::Serializer, &options)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_proto::v1::CommandErrorCode;

    #[test]
    fn enum_values_are_lowercase_words() {
        assert_eq!(state_word(WorkState::Accepted).as_deref(), Some("accepted"));
        assert_eq!(state_word(WorkState::Unspecified), None);
        assert_eq!(severity_word(Severity::Major).as_deref(), Some("major"));
        assert_eq!(
            urgency_word(Urgency::Emergency).as_deref(),
            Some("emergency")
        );
        assert_eq!(
            deadline_state_word(DeadlineState::Armed).as_deref(),
            Some("armed")
        );
        assert_eq!(
            responsibility_word(Responsibility::NotLiable),
            Some("not-liable")
        );
    }

    #[test]
    fn work_json_has_the_fields_scripts_read() {
        let w = WorkItem {
            ticket: "RD-261123-000001".into(),
            department: "logistics".into(),
            state: WorkState::Proposed as i32,
            severity: Severity::Major as i32,
            round: 1,
            version: 3,
            assigned_at: Some(redress_proto::time::from_unix_micros(
                chrono::DateTime::parse_from_rfc3339("2026-11-23T17:20:00.5+08:00")
                    .unwrap()
                    .timestamp_micros(),
            )),
            proposal: Some(Proposal {
                responsibility: Responsibility::PartlyLiable as i32,
                compensation_minor: 80_000,
                currency: "CNY".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let j = work_json(&w);
        assert_eq!(j["ticket"], "RD-261123-000001");
        assert_eq!(j["state"], "proposed");
        assert_eq!(j["department"], "logistics");
        assert_eq!(j["round"], 1);
        assert_eq!(j["version"], 3);
        assert_eq!(j["severity"], "major");
        assert_eq!(j["urgency"], Value::Null);
        assert_eq!(j["assigned_at"], "2026-11-23T09:20:00.500Z");
        assert_eq!(j["proposal"]["responsibility"], "partly");
        assert_eq!(j["proposal"]["compensation"], "800.00");
        assert_eq!(j["proposal"]["compensation_minor"], 80_000);
        assert_eq!(
            work_line(&w, "wang.fang"),
            "RD-261123-000001 proposed by wang.fang (logistics, round 1)"
        );
    }

    #[test]
    fn tables_line_up_even_with_chinese() {
        let t = table(
            &["A", "B"],
            vec![
                vec!["客服".into(), "x".into()],
                vec!["abcde".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A      B\n客服   x\nabcde  y\n");
    }

    #[test]
    fn a_refusal_exits_3_and_anything_else_1() {
        let refused = ClientError::Command {
            code: CommandErrorCode::WrongState,
            field: "state".into(),
            message: "m".into(),
        };
        assert_eq!(failed(&refused, false), ExitCode::from(3));
        assert_eq!(failed(&ClientError::Empty, false), ExitCode::FAILURE);
    }
}
