//! `redress submit` and `redress status`.

use std::path::PathBuf;
use std::process::ExitCode;

use redress_client::{Client, ClientError};
use redress_proto::v1::{Complainant, ComplaintStatus, Contact, ContactKind, SubmitComplaint};

#[derive(clap::Args)]
pub struct Connection {
    /// Data directory of the `redress up` to talk to (ignored when REDRESS_NATS_URL is set).
    #[arg(long, default_value = ".redress")]
    pub data_dir: PathBuf,
}

impl Connection {
    pub async fn client(&self) -> anyhow::Result<Client> {
        let (url, root) = crate::discovery::find(&self.data_dir)?;
        Ok(Client::connect(&url, &root).await?)
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
    #[arg(long)]
    contact_kind: Option<String>,
    #[arg(long)]
    text: String,
    /// Order, waybill or project number the complaint is about.
    #[arg(long, default_value = "")]
    reference: String,
    /// Outside body that referred the complaint (consumer association, regulator, media).
    #[arg(long, default_value = "")]
    referred_by: String,
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
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
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
                    })
                );
            } else {
                let mut line = format!("ticket {} (complaint {})", a.ticket, a.complaint_id);
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
        Err(e) => {
            if let (true, ClientError::Refused(err)) = (args.json, &e) {
                println!(
                    "{}",
                    serde_json::json!({ "error": { "code": err.code().as_str_name(), "field": err.field, "message": err.message } })
                );
            } else {
                eprintln!("error: {e}");
            }
            Ok(refusal_exit(&e))
        }
    }
}

fn rfc3339(ts: &Option<redress_proto::time::Timestamp>) -> String {
    ts.as_ref()
        .and_then(|t| {
            chrono::DateTime::from_timestamp_micros(redress_proto::time::to_unix_micros(t))
        })
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
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
    })
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
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
                println!("ticket      {}", s.ticket);
                println!("status      {}", s.status);
                println!("channel     {}", s.channel);
                println!("received    {}", rfc3339(&s.received_at));
                println!("playbook    {}", s.playbook);
                if s.repeat {
                    println!("repeat of   {}", s.earlier_tickets.join(", "));
                }
                println!("history");
                for h in &s.history {
                    println!("  {}  {:<12} {}", rfc3339(&h.at), h.event, h.detail);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if let (true, ClientError::Query(err)) = (args.json, &e) {
                println!(
                    "{}",
                    serde_json::json!({ "error": { "code": err.code().as_str_name(), "field": err.field, "message": err.message } })
                );
            } else {
                eprintln!("error: {e}");
            }
            Ok(refusal_exit(&e))
        }
    }
}
