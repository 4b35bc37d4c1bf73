//! `redress submit` and `redress status`, and the connection every client verb shares.

use std::path::PathBuf;
use std::process::ExitCode;

use redress_client::{Client, ClientError};
use redress_proto::v1::{Complainant, ComplaintStatus, Contact, ContactKind, SubmitComplaint};

#[derive(clap::Args)]
pub struct Connection {
    /// Data directory of the `redress up` to talk to (ignored when REDRESS_NATS_URL is set).
    #[arg(long, default_value = ".redress")]
    pub data_dir: PathBuf,
    /// Your person key (`redress people issue`), to sign department commands and decisions.
    /// Without it, the keys in <data-dir>/people are used.
    #[arg(long, env = "REDRESS_PERSON_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl Connection {
    pub async fn client(&self) -> anyhow::Result<Client> {
        let (url, root) = crate::discovery::find(&self.data_dir)?;
        let keyring = match &self.key {
            Some(file) => {
                let mut ring = redress_client::people::Keyring::default();
                ring.insert(redress_client::people::PersonKey::read(file)?);
                ring
            }
            None => redress_client::people::Keyring::load_dir(&crate::people::dir(&self.data_dir))?,
        };
        Ok(Client::connect(&url, &root).await?.with_keyring(keyring))
    }
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// phone, sms, email, web, chat, social, weibo, wechat, forum, onsite, letter or referral.
    #[arg(long)]
    channel: String,
    /// The channel's own id of this complaint; sending it again gives the same ticket.
    #[arg(long)]
    external_id: String,
    #[arg(long, default_value = "")]
    name: String,
    /// Phone number, e-mail address, or another way to reach the complainant.
    #[arg(long)]
    contact: String,
    /// phone, email or other; guessed from --contact when left out.
    #[arg(long, value_parser = ["phone", "email", "other"])]
    contact_kind: Option<String>,
    #[arg(long)]
    text: String,
    /// Order, waybill or project number the complaint is about.
    #[arg(long, default_value = "")]
    reference: String,
    /// Outside body that referred the complaint (consumer association, regulator, media).
    #[arg(long, default_value = "")]
    referred_by: String,
    /// Solved where it was made, by this member of staff (with --solution): registered for
    /// the record and sent straight to the survey.
    #[arg(long, requires = "solution")]
    solved_by: Option<String>,
    /// What was done on the spot.
    #[arg(long, requires = "solved_by")]
    solution: Option<String>,
    #[arg(long, default_value = "")]
    playbook: String,
    /// Attachment URI (repeatable).
    #[arg(long = "attachment")]
    attachments: Vec<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Ticket number (e.g. RD-261123-000427) or complaint id.
    ticket: String,
    /// The complainant's secret (from the acknowledgement): show what the complainant sees
    /// instead of the staff view.
    #[arg(long)]
    secret: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

/// Prints a failed call (as `{"error": {code, field, message}}` with `--json` when the
/// service refused it) and returns its exit code.
fn report_error(json: bool, e: &ClientError) -> ExitCode {
    let typed = match e {
        ClientError::Refused(err) => Some((err.code().as_str_name(), &err.field, &err.message)),
        ClientError::Query(err) => Some((err.code().as_str_name(), &err.field, &err.message)),
        _ => None,
    };
    match typed {
        Some((code, field, message)) if json => println!(
            "{}",
            serde_json::json!({ "error": { "code": code, "field": field, "message": message } })
        ),
        _ => eprintln!("error: {e}"),
    }
    refusal_exit(e)
}

fn refusal_exit(e: &ClientError) -> ExitCode {
    match e {
        ClientError::Refused(_) | ClientError::Query(_) => ExitCode::from(3),
        _ => ExitCode::FAILURE,
    }
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let kind = match args.contact_kind.as_deref() {
        None => ContactKind::Unspecified,
        Some("phone") => ContactKind::Phone,
        Some("email") => ContactKind::Email,
        Some("other") => ContactKind::Other,
        Some(k) => anyhow::bail!("--contact-kind {k:?}: use phone, email or other"),
    };
    let request = SubmitComplaint {
        channel: args.channel,
        external_id: args.external_id,
        complainant: Some(Complainant {
            name: args.name,
            contact: Some(Contact {
                kind: kind as i32,
                value: args.contact,
            }),
        }),
        text: args.text,
        attachments: args
            .attachments
            .into_iter()
            .map(|uri| redress_proto::v1::Attachment {
                uri,
                ..Default::default()
            })
            .collect(),
        playbook: args.playbook,
        received_at: None,
        reference: args.reference,
        referred_by: args.referred_by,
        solved: args.solved_by.map(|by| redress_proto::v1::SolvedOnTheSpot {
            by,
            what_was_done: args.solution.unwrap_or_default(),
        }),
    };
    let client = args.connection.client().await?;
    match client.submit(&request).await {
        Ok(a) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ticket": a.ticket, "complaint_id": a.complaint_id, "duplicate": a.duplicate,
                        "repeat": a.repeat, "earlier_tickets": a.earlier_tickets,
                        "status_secret": a.status_secret,
                    })
                );
            } else {
                let mut line = format!(
                    "ticket {} (complaint {}; the complainant follows it with secret {})",
                    a.ticket, a.complaint_id, a.status_secret
                );
                if a.duplicate {
                    line.push_str(", already registered");
                }
                if a.repeat {
                    line.push_str(&format!(", repeat of {}", a.earlier_tickets.join(", ")));
                }
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(args.json, &e)),
    }
}

fn rfc3339(ts: &Option<redress_proto::time::Timestamp>) -> String {
    crate::view::rfc3339(ts.as_ref()).unwrap_or_default()
}

fn status_json(s: &ComplaintStatus) -> serde_json::Value {
    serde_json::json!({
        "ticket": s.ticket,
        "complaint_id": s.complaint_id,
        "status": s.status,
        "channel": s.channel,
        "received_at": rfc3339(&s.received_at),
        "updated_at": rfc3339(&s.updated_at),
        "playbook": s.playbook,
        "reference": s.reference,
        "repeat": s.repeat,
        "earlier_tickets": s.earlier_tickets,
        "history": s.history.iter().map(|h| serde_json::json!({
            "at": rfc3339(&h.at), "event": h.event, "detail": h.detail,
        })).collect::<Vec<_>>(),
        "nature": s.nature,
        "category": s.category,
        "severity": s.severity,
        "urgency": s.urgency,
        "department": s.department,
        "round": s.round,
        "approval": s.approval,
        "survey": s.survey,
        "escalation_level": s.escalation_level,
        "deadlines": s.deadlines.iter().map(crate::view::deadline_json).collect::<Vec<_>>(),
    })
}

/// The human form of `redress status`.
fn status_text(s: &ComplaintStatus) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        if !value.is_empty() {
            out.push_str(&format!("{name:<12}{value}\n"));
        }
    };
    field("ticket", &s.ticket);
    field("status", &s.status);
    field("channel", &s.channel);
    field("received", &rfc3339(&s.received_at));
    field("updated", &rfc3339(&s.updated_at));
    field("playbook", &s.playbook);
    field("reference", &s.reference);
    if s.repeat {
        field("repeat of", &s.earlier_tickets.join(", "));
    }
    field("nature", &s.nature);
    field("category", &s.category);
    field("severity", &s.severity);
    field("urgency", &s.urgency);
    field("department", &s.department);
    if s.round > 0 {
        field("round", &s.round.to_string());
    }
    field("approval", &s.approval);
    field("survey", &s.survey);
    if s.escalation_level > 0 {
        field("escalation", &format!("level {}", s.escalation_level));
    }
    if !s.deadlines.is_empty() {
        out.push_str("deadlines\n");
        for line in crate::view::deadline_table(&s.deadlines).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str("history\n");
    for h in &s.history {
        out.push_str(&format!(
            "  {}  {:<12} {}\n",
            rfc3339(&h.at),
            h.event,
            h.detail
        ));
    }
    out
}

/// The complainant's view, as JSON.
fn public_json(s: &redress_proto::v1::PublicStatus) -> serde_json::Value {
    serde_json::json!({
        "ticket": s.ticket,
        "status": s.status,
        "received_at": rfc3339(&s.received_at),
        "updated_at": rfc3339(&s.updated_at),
        "category": s.category,
        "deadlines": s.deadlines.iter().map(crate::view::deadline_json).collect::<Vec<_>>(),
        "replies": s.replies,
        "history": s.history.iter().map(|h| serde_json::json!({
            "at": rfc3339(&h.at), "event": h.event, "detail": h.detail,
        })).collect::<Vec<_>>(),
    })
}

async fn track(args: &StatusArgs, secret: &str) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    match client.track(args.ticket.trim(), secret).await {
        Ok(s) => {
            if args.json {
                println!("{}", public_json(&s));
            } else {
                println!("{}  {}", s.ticket, s.status);
                for d in &s.deadlines {
                    println!("  {} due {} ({:?})", d.name, rfc3339(&d.due_at), d.state());
                }
                for h in &s.history {
                    println!("  {}  {}  {}", rfc3339(&h.at), h.event, h.detail);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(args.json, &e)),
    }
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(secret) = &args.secret {
        return track(&args, secret).await;
    }
    let client = args.connection.client().await?;
    let key = args.ticket.trim();
    let result = if uuid::Uuid::parse_str(key).is_ok() {
        client.status_by_id(key).await
    } else {
        client.status_by_ticket(key).await
    };
    match result {
        Ok(s) => {
            if args.json {
                println!("{}", status_json(&s));
            } else {
                print!("{}", status_text(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(args.json, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_proto::v1::{Deadline, DeadlineState, HistoryEntry};

    fn at(rfc3339: &str) -> Option<redress_proto::time::Timestamp> {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
        Some(redress_proto::time::from_unix_micros(t.timestamp_micros()))
    }

    fn sample() -> ComplaintStatus {
        ComplaintStatus {
            ticket: "RD-261123-000001".into(),
            complaint_id: "0194f3c2-0000-7000-8000-000000000001".into(),
            status: "in_progress".into(),
            channel: "phone".into(),
            received_at: at("2026-11-23T08:00:00+08:00"),
            playbook: "default".into(),
            nature: "valid".into(),
            category: "delivery".into(),
            severity: "major".into(),
            urgency: "urgent".into(),
            department: "logistics".into(),
            round: 2,
            approval: "pending".into(),
            survey: "dissatisfied".into(),
            escalation_level: 1,
            deadlines: vec![Deadline {
                name: "first_response".into(),
                due_at: at("2026-11-24T17:30:00+08:00"),
                state: DeadlineState::Armed as i32,
                limit: "1 working day".into(),
                round: 2,
                ..Default::default()
            }],
            history: vec![HistoryEntry {
                at: at("2026-11-23T08:00:00+08:00"),
                event: "received".into(),
                detail: "by phone".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn status_json_keeps_the_old_fields_and_adds_the_lifecycle() {
        let j = status_json(&sample());
        assert_eq!(j["ticket"], "RD-261123-000001");
        assert_eq!(j["status"], "in_progress");
        assert_eq!(j["received_at"], "2026-11-23T00:00:00.000Z");
        assert_eq!(j["history"][0]["event"], "received");
        assert_eq!(j["severity"], "major");
        assert_eq!(j["department"], "logistics");
        assert_eq!(j["round"], 2);
        assert_eq!(j["approval"], "pending");
        assert_eq!(j["survey"], "dissatisfied");
        assert_eq!(j["escalation_level"], 1);
        let d = &j["deadlines"][0];
        assert_eq!(d["name"], "first_response");
        assert_eq!(d["due_at"], "2026-11-24T09:30:00.000Z");
        assert_eq!(d["state"], "armed");
        assert_eq!(d["round"], 2);
        assert_eq!(d["limit"], "1 working day");
    }

    #[test]
    fn status_text_shows_deadlines_and_history() {
        let t = status_text(&sample());
        assert!(t.contains("department  logistics\n"), "{t}");
        assert!(t.contains("escalation  level 1\n"), "{t}");
        let deadlines = t.find("deadlines\n").expect("a deadlines section");
        let history = t.find("history\n").expect("a history section");
        assert!(deadlines < history);
        assert!(t.contains("first_response"), "{t}");
        assert!(t.contains("armed"), "{t}");
        assert!(t.contains("received     by phone"), "{t}");
    }
}

#[derive(clap::Args)]
pub struct EraseArgs {
    /// Ticket whose complainant asked for their personal data to be deleted.
    ticket: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `redress erase`: the complainant's right to deletion.
pub async fn erase(args: EraseArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    match client.erase(args.ticket.trim()).await {
        Ok(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ticket": e.ticket, "complaint_id": e.complaint_id,
                        "erased_at": rfc3339(&e.erased_at), "already": e.already,
                        "submissions_deleted": e.submissions_deleted,
                        "notifications_deleted": e.notifications_deleted,
                    })
                );
            } else {
                println!(
                    "{} erased{}: data key destroyed, text and contact blanked, {} submission and {} notification messages deleted",
                    e.ticket,
                    if e.already { " (already)" } else { "" },
                    e.submissions_deleted,
                    e.notifications_deleted
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(args.json, &e)),
    }
}

#[derive(clap::Args)]
pub struct WithdrawArgs {
    /// Ticket the complainant withdraws.
    ticket: String,
    /// The complainant's secret (from the acknowledgement): only they may withdraw.
    #[arg(long)]
    secret: String,
    /// Why, in the complainant's words.
    #[arg(long, default_value = "")]
    reason: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `redress withdraw`: the complainant takes the complaint back, as their channel's adapter
/// would send it.
pub async fn withdraw(args: WithdrawArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    match client
        .withdraw(args.ticket.trim(), args.secret.trim(), &args.reason)
        .await
    {
        Ok(w) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ticket": w.ticket, "complaint_id": w.complaint_id,
                        "withdrawn_at": rfc3339(&w.withdrawn_at), "already": w.already,
                    })
                );
            } else {
                println!(
                    "{} withdrawn{}: the work closes, open deadlines are cancelled",
                    w.ticket,
                    if w.already { " (already)" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(args.json, &e)),
    }
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("answer").required(true).args(["accept", "reject"])))]
pub struct RespondArgs {
    /// Ticket whose reply the complainant answers.
    ticket: String,
    /// The complainant's secret (from the acknowledgement).
    #[arg(long)]
    secret: String,
    /// The complainant agrees with the reply.
    #[arg(long)]
    accept: bool,
    /// The complainant rejects the reply: the department proposes again.
    #[arg(long, requires = "comment")]
    reject: bool,
    /// What the complainant says (required with --reject).
    #[arg(long, default_value = "")]
    comment: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `redress respond`: the complainant's answer to the reply, as their channel's adapter would
/// send it.
pub async fn respond(args: RespondArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    match client
        .respond(
            args.ticket.trim(),
            args.secret.trim(),
            args.accept,
            &args.comment,
        )
        .await
    {
        Ok(r) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ticket": r.ticket, "accepted": r.accepted,
                        "responded_at": rfc3339(&r.responded_at), "already": r.already,
                    })
                );
            } else {
                println!(
                    "{}: the reply was {}{}",
                    r.ticket,
                    if r.accepted {
                        "accepted"
                    } else {
                        "rejected; the department proposes again"
                    },
                    if r.already { " (already)" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(args.json, &e)),
    }
}

#[derive(clap::Args)]
pub struct EvidenceArgs {
    /// Ticket whose evidence request the complainant answers.
    ticket: String,
    /// The token of the evidence request (from the evidence_requested notification).
    #[arg(long)]
    token: String,
    /// What the complainant says.
    #[arg(long, default_value = "")]
    text: String,
    /// A file reference: "URI;MEDIA-TYPE;SIZE" (repeatable).
    #[arg(long = "file", value_name = "URI;TYPE;SIZE", value_parser = crate::work::file)]
    files: Vec<(String, String, u64)>,
    /// The channel the complainant answers through.
    #[arg(long, default_value = "web")]
    channel: String,
    /// The channel's id of this message (a resend with the same id is the same answer);
    /// a fresh one when not given.
    #[arg(long)]
    external_id: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `redress evidence`: the complainant's answer to an evidence request, published to the
/// evidence stream as their channel's adapter would. A refusal comes back as a notification
/// (`redress notifications --channel C`).
pub async fn evidence(args: EvidenceArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    let external_id = args
        .external_id
        .clone()
        .unwrap_or_else(|| format!("evidence-{}", uuid::Uuid::now_v7()));
    let message = redress_proto::v1::SupplyEvidence {
        channel: args.channel.clone(),
        external_id: external_id.clone(),
        ticket: args.ticket.trim().to_string(),
        token: args.token.trim().to_string(),
        text: args.text.clone(),
        attachments: args
            .files
            .iter()
            .map(|(uri, media_type, size)| redress_proto::v1::Attachment {
                uri: uri.clone(),
                media_type: media_type.clone(),
                size_bytes: *size,
                ..Default::default()
            })
            .collect(),
    };
    let ack = client.publish_evidence(&message).await?;
    ack.await
        .map_err(|e| anyhow::anyhow!("the broker did not take the evidence: {e}"))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "ticket": message.ticket, "channel": args.channel, "external_id": external_id,
                "queued": true,
            })
        );
    } else {
        println!(
            "{}: evidence queued as {external_id} on {}; a refusal would arrive as a \
             notification (redress notifications --channel {})",
            message.ticket, args.channel, args.channel
        );
    }
    Ok(ExitCode::SUCCESS)
}
