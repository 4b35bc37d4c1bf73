//! `redress approve`, `redress reject`, `redress approvals` and `redress delegate`: decisions
//! on proposals that need one (compensation above the playbook's threshold, major complaints,
//! the playbook's chains), and holiday cover for the approvers.

use std::process::ExitCode;

use redress_client::requests;
use redress_proto::v1::{ApprovalView, DecideApproval};

use crate::client_verbs::Connection;
use crate::view;
use crate::work::not_blank;

#[derive(clap::Args)]
pub struct ApproveArgs {
    /// Ticket whose current proposal waits for approval.
    #[arg(value_parser = not_blank)]
    pub ticket: String,
    /// Your name (your key signs the decision); you must be an approver of the playbook.
    #[arg(long = "as", value_name = "NAME", value_parser = not_blank)]
    pub approver: String,
    #[arg(long, default_value = "")]
    pub note: String,
    /// Id of an earlier attempt of this same decision, to retry it without deciding twice.
    #[arg(long, value_parser = not_blank)]
    pub command_id: Option<String>,
    /// The approval you looked at (`redress approvals`): refused if another is pending now.
    #[arg(long, value_parser = not_blank)]
    pub approval_id: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(clap::Args)]
pub struct RejectArgs {
    /// Ticket whose current proposal waits for approval.
    #[arg(value_parser = not_blank)]
    pub ticket: String,
    /// Your name (your key signs the decision); you must be an approver of the playbook.
    #[arg(long = "as", value_name = "NAME", value_parser = not_blank)]
    pub approver: String,
    /// Why: the department sees it and proposes again.
    #[arg(long, value_parser = not_blank)]
    pub note: String,
    /// Id of an earlier attempt of this same decision, to retry it without deciding twice.
    #[arg(long, value_parser = not_blank)]
    pub command_id: Option<String>,
    /// The approval you looked at (`redress approvals`): refused if another is pending now.
    #[arg(long, value_parser = not_blank)]
    pub approval_id: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(clap::Args)]
pub struct ApprovalsArgs {
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

fn decision(
    ticket: &str,
    approver: &str,
    approve: bool,
    note: &str,
    id: &Option<String>,
    approval_id: &Option<String>,
) -> DecideApproval {
    let mut d = requests::decide(ticket, approver, approve, note);
    if let Some(id) = id {
        d.command_id = id.clone();
    }
    if let Some(a) = approval_id {
        d.approval_id = a.clone();
    }
    d
}

impl ApproveArgs {
    pub fn request(&self) -> DecideApproval {
        decision(
            &self.ticket,
            &self.approver,
            true,
            &self.note,
            &self.command_id,
            &self.approval_id,
        )
    }
}

impl RejectArgs {
    pub fn request(&self) -> DecideApproval {
        decision(
            &self.ticket,
            &self.approver,
            false,
            &self.note,
            &self.command_id,
            &self.approval_id,
        )
    }
}

/// `RD-261123-000001 approved by li.qiang (logistics): company liable, refund, 800.00 CNY`
pub fn decision_line(a: &ApprovalView) -> String {
    let mut line = format!("{} {}", a.ticket, a.state);
    if !a.decided_by.is_empty() {
        line.push_str(&format!(" by {}", a.decided_by));
    }
    if !a.department.is_empty() {
        line.push_str(&format!(" ({})", a.department));
    }
    if let Some(p) = &a.proposal {
        line.push_str(&format!(": {}", view::proposal_text(p)));
    }
    if !a.note.is_empty() {
        line.push_str(&format!(" — {}", a.note));
    }
    line
}

pub async fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let request = args.request();
    decide(request, args.json, &args.connection).await
}

pub async fn reject(args: RejectArgs) -> anyhow::Result<ExitCode> {
    let request = args.request();
    decide(request, args.json, &args.connection).await
}

async fn decide(
    request: DecideApproval,
    json: bool,
    connection: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = connection.client().await?;
    let command_id = request.command_id.clone();
    match client.send_decision(request).await {
        Ok(a) => {
            if json {
                println!("{}", view::approval_json(&a));
            } else {
                println!("{}", decision_line(&a));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(view::failed_command(&e, json, &command_id)),
    }
}

pub async fn list(args: ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    match client.list_approvals(args.limit).await {
        Ok(items) => {
            if args.json {
                let items: Vec<_> = items.iter().map(view::approval_json).collect();
                println!("{}", serde_json::Value::Array(items));
            } else if items.is_empty() {
                println!("no approvals pending");
            } else {
                print!("{}", view::approval_table(&items));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(view::failed(&e, args.json)),
    }
}

#[derive(clap::Args)]
pub struct DelegateArgs {
    /// Who decides in your place.
    #[arg(long = "to", value_name = "NAME", value_parser = not_blank)]
    pub delegate: String,
    /// First day covered (YYYY-MM-DD, in the playbook calendar's zone).
    #[arg(long = "from", value_name = "DAY", value_parser = not_blank)]
    pub from_day: String,
    /// Last day covered, inclusive.
    #[arg(long = "until", value_name = "DAY", value_parser = not_blank)]
    pub until_day: String,
    /// Your name (your key signs it); you must be an approver of the playbook.
    #[arg(long = "as", value_name = "NAME", value_parser = not_blank)]
    pub delegator: String,
    #[arg(long, default_value = "default")]
    pub playbook: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn delegate(args: DelegateArgs) -> anyhow::Result<ExitCode> {
    let request = redress_proto::v1::DelegateApproval {
        command_id: uuid::Uuid::now_v7().to_string(),
        delegator: args.delegator.clone(),
        delegate: args.delegate.clone(),
        from_day: args.from_day.clone(),
        until_day: args.until_day.clone(),
        playbook: args.playbook.clone(),
    };
    let command_id = request.command_id.clone();
    let client = args.connection.client().await?;
    match client.delegate_approvals(request).await {
        Ok(d) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "delegator": d.delegator,
                        "delegate": d.delegate,
                        "from_day": d.from_day,
                        "until_day": d.until_day,
                        "playbook": d.playbook,
                    })
                );
            } else {
                println!(
                    "{} decides for {} from {} to {} (playbook {})",
                    d.delegate, d.delegator, d.from_day, d.until_day, d.playbook
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(crate::view::failed_command(&e, args.json, &command_id)),
    }
}
