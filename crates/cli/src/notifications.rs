//! `redress notifications`: what was sent to complainants on a channel, as its adapter
//! receives it (acknowledgements, refusals, replies, evidence requests and survey invitations with their
//! tokens).

use std::process::ExitCode;

use redress_client::notifications::Notification;

use crate::client_verbs::Connection;

#[derive(clap::Args)]
pub struct NotificationsArgs {
    /// The channel whose messages to show (web, phone, sms, …).
    #[arg(long)]
    channel: String,
    /// Only those about this ticket.
    #[arg(long)]
    ticket: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

fn to_json(n: &Notification) -> serde_json::Value {
    use serde_json::json;
    match n {
        Notification::Ack(a) => json!({
            "kind": "ack", "ticket": a.ticket, "external_id": a.external_id, "message": a.message,
            "status_secret": a.status_secret,
        }),
        Notification::Rejected(r) => json!({
            "kind": "rejected", "external_id": r.external_id,
            "field": r.error.as_ref().map(|e| e.field.clone()).unwrap_or_default(),
            "message": r.error.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
        }),
        Notification::Reply(r) => json!({
            "kind": "reply", "ticket": r.ticket, "department": r.department, "message": r.message,
        }),
        Notification::Progress(r) => json!({
            "kind": "progress", "ticket": r.ticket, "department": r.department, "message": r.message,
        }),
        Notification::Merged(r) => json!({
            "kind": "merged", "ticket": r.ticket, "message": r.message,
        }),
        Notification::EvidenceRequested(r) => json!({
            "kind": "evidence_requested", "ticket": r.ticket, "department": r.department,
            "message": r.message, "token": r.token,
        }),
        Notification::EvidenceReminder(r) => json!({
            "kind": "evidence_reminder", "ticket": r.ticket, "message": r.message,
        }),
        Notification::Survey(s) => json!({
            "kind": "survey", "ticket": s.ticket, "survey_id": s.survey_id,
            "questions": s.questions, "token": s.token,
        }),
        Notification::Other { subject } => json!({ "kind": "other", "subject": subject }),
    }
}

fn line(n: &Notification) -> String {
    match n {
        Notification::Ack(a) => format!(
            "ack     {}  secret {}  {}",
            a.ticket, a.status_secret, a.message
        ),
        Notification::Rejected(r) => format!(
            "refused {}  {}",
            r.external_id,
            r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
        ),
        Notification::Reply(r) => format!("reply   {}  {}", r.ticket, r.message),
        Notification::Progress(r) => format!("progress {}  {}", r.ticket, r.message),
        Notification::Merged(r) => format!("merged  {}  {}", r.ticket, r.message),
        Notification::EvidenceRequested(r) => {
            format!("evidence {}  token {}  {}", r.ticket, r.token, r.message)
        }
        Notification::EvidenceReminder(r) => format!("reminder {}  {}", r.ticket, r.message),
        Notification::Survey(s) => format!(
            "survey  {}  survey {} token {}",
            s.ticket, s.survey_id, s.token
        ),
        Notification::Other { subject } => format!("other   {subject}"),
    }
}

pub async fn run(args: NotificationsArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        redress_proto::subjects::is_subject_token(&args.channel),
        "--channel must be one subject token: {:?}",
        args.channel
    );
    let client = args.connection.client().await?;
    let all = client.notifications(&args.channel).await?;
    let shown: Vec<&Notification> = all
        .iter()
        .filter(|n| args.ticket.as_deref().is_none_or(|t| n.ticket() == t))
        .collect();
    if args.json {
        let list: Vec<_> = shown.iter().map(|n| to_json(n)).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for n in shown {
            println!("{}", line(n));
        }
    }
    Ok(ExitCode::SUCCESS)
}
