//! `redress work …`: what a department does with the complaints routed to it: list, watch,
//! accept, propose a remedy, reply to the complainant, resolve, hand misrouted work on
//! (transfer), tell the complainant how it stands (progress), record a rejected reply
//! (contest), answer and resolve without a proposal (explain), keep the investigation record
//! (investigate), commit to a completion date (commit), close a duplicate into the ticket it
//! repeats (merge), ask the complainant for evidence (request-evidence), correct the
//! classification (reclassify).

use std::io::Write as _;
use std::process::ExitCode;

use redress_client::{money, requests};
use redress_proto::v1::{
    Propose, Responsibility, WorkChanged, WorkCommand as WorkRequest, WorkState,
    work_command::Action,
};

use crate::client_verbs::Connection;
use crate::view;

#[derive(clap::Subcommand)]
pub enum WorkCommand {
    /// The work of a department: every state but closed, unless --state says otherwise.
    List(ListArgs),
    /// Print the work assigned to a department as it arrives, starting with whatever was
    /// assigned while no watch was running; each item once. Runs until Ctrl-C.
    Watch(WatchArgs),
    /// Take on the work of a complaint.
    Accept(AcceptArgs),
    /// Propose a remedy (and compensation); it goes to approval.
    Propose(ProposeArgs),
    /// Send the department's reply to the complainant.
    Reply(ReplyArgs),
    /// Mark the work resolved; the complainant is asked whether they are satisfied.
    Resolve(ResolveArgs),
    /// Hand misrouted work to another department, saying why and what you understood of the
    /// complaint. Only before a proposal; back to a department it came from only by the
    /// manager.
    Transfer(TransferArgs),
    /// Tell the complainant how the matter stands.
    Progress(ProgressArgs),
    /// Record that the complainant rejected the reply: propose again in the same round.
    Contest(ContestArgs),
    /// The fast path: answer with an explanation and resolve without a proposal (inquiries,
    /// venting, invalid complaints, or --not-liable where the playbook allows it). The survey
    /// follows.
    Explain(ExplainArgs),
    /// Add to the investigation record: notes, the cause found, responsibility, corrective
    /// and preventive actions (who, by when) and file references.
    Investigate(InvestigateArgs),
    /// Commit to the day the work will be done, with the plan: the complainant is told, and
    /// the day becomes a deadline met when the work is resolved.
    Commit(CommitArgs),
    /// Close a duplicate into the ticket it repeats; both complainants are told which ticket
    /// carries on.
    Merge(MergeArgs),
    /// Ask the complainant for evidence: they are told what is needed, with a token to answer
    /// with, and the clocks the playbook names stop until it arrives.
    RequestEvidence(RequestEvidenceArgs),
    /// Correct the classification (nature, category, severity, urgency) with the reason:
    /// deadlines are planned again, and work the routing rules now give to another
    /// department moves there.
    Reclassify(ReclassifyArgs),
}

/// A department key: one subject token.
pub fn department(s: &str) -> Result<String, String> {
    if redress_proto::subjects::is_subject_token(s) {
        Ok(s.to_string())
    } else {
        Err("a department key is lowercase letters, digits, - and _ (e.g. logistics)".into())
    }
}

/// Text that must say something.
pub fn not_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_string())
    }
}

/// `--compensation`: a decimal with at most two places, as minor units (fen).
pub fn amount(s: &str) -> Result<i64, String> {
    money::parse_minor(s).map_err(|e| e.to_string())
}

/// `--currency`: an ISO 4217 code.
pub fn currency(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(s.to_ascii_uppercase())
    } else {
        Err("an ISO 4217 code of three letters, e.g. CNY".into())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Assigned,
    Accepted,
    Proposed,
    Approved,
    Replied,
    Resolved,
    Closed,
}

impl From<StateArg> for WorkState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Assigned => WorkState::Assigned,
            StateArg::Accepted => WorkState::Accepted,
            StateArg::Proposed => WorkState::Proposed,
            StateArg::Approved => WorkState::Approved,
            StateArg::Replied => WorkState::Replied,
            StateArg::Resolved => WorkState::Resolved,
            StateArg::Closed => WorkState::Closed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ResponsibilityArg {
    /// The company is liable.
    #[value(name = "company", alias = "company-liable")]
    Company,
    /// The company is not liable.
    #[value(name = "not-liable")]
    NotLiable,
    /// Partly liable.
    #[value(name = "partly", alias = "partly-liable")]
    Partly,
}

impl From<ResponsibilityArg> for Responsibility {
    fn from(r: ResponsibilityArg) -> Self {
        match r {
            ResponsibilityArg::Company => Responsibility::CompanyLiable,
            ResponsibilityArg::NotLiable => Responsibility::NotLiable,
            ResponsibilityArg::Partly => Responsibility::PartlyLiable,
        }
    }
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// The department whose work to list.
    #[arg(long, value_parser = department)]
    pub dept: String,
    /// Only work in this state (repeatable).
    #[arg(long = "state", value_enum)]
    pub states: Vec<StateArg>,
    /// At most this many items.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The department whose assigned work to watch.
    #[arg(long, value_parser = department)]
    pub dept: String,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Who acts on which complaint: common to every command on one work item.
#[derive(clap::Args)]
pub struct Acting {
    /// Ticket number, e.g. RD-261123-000001.
    #[arg(value_parser = not_blank)]
    pub ticket: String,
    /// The department you act for; it must own the work.
    #[arg(long, value_parser = department)]
    pub dept: String,
    /// Your name as a member of the department; your key signs the command.
    #[arg(long = "as", value_name = "NAME", value_parser = not_blank)]
    pub actor: String,
    /// Id of an earlier attempt of this same command, to retry it without doing it twice.
    #[arg(long, value_parser = not_blank)]
    pub command_id: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(clap::Args)]
pub struct AcceptArgs {
    #[command(flatten)]
    pub acting: Acting,
}

#[derive(clap::Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// Whose fault it was.
    #[arg(long, value_enum)]
    pub responsibility: ResponsibilityArg,
    /// What will be done: apology and explanation, refund, re-ship, repair …
    #[arg(long, value_parser = not_blank)]
    pub remedy: String,
    /// Compensation, e.g. 800.00 (at most two decimal places).
    // Hyphen values reach the parser, so "-5" is refused as an amount, not as a flag.
    #[arg(long, value_name = "AMOUNT", value_parser = amount, allow_hyphen_values = true)]
    pub compensation: Option<i64>,
    /// Currency of the compensation (default: the playbook's).
    #[arg(long, value_parser = currency, requires = "compensation")]
    pub currency: Option<String>,
    /// What the proposal is: compensation, refund, rectification, preventive or apology
    /// (default: compensation with an amount, else apology). Approval chains may be chosen
    /// by it.
    #[arg(long, value_parser = proposal_kind)]
    pub kind: Option<redress_proto::v1::ProposalKind>,
}

fn proposal_kind(s: &str) -> Result<redress_proto::v1::ProposalKind, String> {
    redress_proto::v1::ProposalKind::key_of(s.trim())
        .ok_or_else(|| format!("{s:?}: compensation, refund, rectification, preventive or apology"))
}

#[derive(clap::Args)]
pub struct ReplyArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// What the complainant is told: the matter, what was done, the result, the basis, and
    /// whom to contact next.
    #[arg(long, value_parser = not_blank)]
    pub message: String,
}

#[derive(clap::Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// How it was settled.
    #[arg(long, default_value = "")]
    pub summary: String,
}

#[derive(clap::Args)]
pub struct TransferArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// The department that should handle it.
    #[arg(long, value_parser = department)]
    pub to: String,
    /// Why it is not yours.
    #[arg(long, value_parser = not_blank)]
    pub reason: String,
    /// What you understood of the complaint: nothing is handed on before somebody has
    /// understood it.
    #[arg(long, value_parser = not_blank)]
    pub understood: String,
}

#[derive(clap::Args)]
pub struct ProgressArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// What the complainant is told: where the matter stands and what comes next.
    #[arg(long, value_parser = not_blank)]
    pub message: String,
}

#[derive(clap::Args)]
pub struct ContestArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// What the complainant objected to.
    #[arg(long, value_parser = not_blank)]
    pub objection: String,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// What the complainant is told.
    #[arg(long, value_parser = not_blank)]
    pub message: String,
    /// You find the company is not at fault.
    #[arg(long)]
    pub not_liable: bool,
    /// The approved material the answer rests on, e.g. "退换货政策 第3条".
    #[arg(long, default_value = "")]
    pub basis: String,
}

#[derive(clap::Args)]
pub struct InvestigateArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// What was looked at and found.
    #[arg(long, default_value = "")]
    pub notes: String,
    /// The cause found.
    #[arg(long, default_value = "")]
    pub cause: String,
    /// Whose fault it is, once determined.
    #[arg(long, value_enum)]
    pub responsibility: Option<ResponsibilityArg>,
    /// A corrective action: "WHAT;OWNER;YYYY-MM-DD" (repeatable).
    #[arg(long = "corrective", value_name = "WHAT;OWNER;DUE", value_parser = action)]
    pub corrective: Vec<(String, String, String)>,
    /// A preventive action: "WHAT;OWNER;YYYY-MM-DD" (repeatable).
    #[arg(long = "preventive", value_name = "WHAT;OWNER;DUE", value_parser = action)]
    pub preventive: Vec<(String, String, String)>,
    /// A file reference: "URI;MEDIA-TYPE;SIZE" (repeatable), e.g.
    /// "s3://evidence/RD-1/photo.jpg;image/jpeg;48213".
    #[arg(long = "file", value_name = "URI;TYPE;SIZE", value_parser = file)]
    pub files: Vec<(String, String, u64)>,
}

#[derive(clap::Args)]
pub struct CommitArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// The day it will be done (YYYY-MM-DD).
    #[arg(long, value_parser = day)]
    pub by: String,
    /// What will be done, as the complainant is told.
    #[arg(long, value_parser = not_blank)]
    pub plan: String,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// The ticket that carries on.
    #[arg(long, value_parser = not_blank)]
    pub into: String,
    /// Why it repeats that ticket.
    #[arg(long, value_parser = not_blank)]
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SeverityArg {
    General,
    Major,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UrgencyArg {
    Normal,
    Urgent,
    Emergency,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["nature", "category", "severity", "urgency"])))]
pub struct ReclassifyArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// The nature it really is (one of the playbook's).
    #[arg(long)]
    pub nature: Option<String>,
    /// The category it really is (one of the playbook's).
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long, value_enum)]
    pub severity: Option<SeverityArg>,
    #[arg(long, value_enum)]
    pub urgency: Option<UrgencyArg>,
    /// Why the classification was wrong.
    #[arg(long, value_parser = not_blank)]
    pub reason: String,
}

impl ReclassifyArgs {
    fn change(&self) -> redress_proto::v1::Reclassify {
        use redress_proto::v1::{Severity, Urgency};
        redress_proto::v1::Reclassify {
            nature: self.nature.clone().unwrap_or_default(),
            category: self.category.clone().unwrap_or_default(),
            severity: match self.severity {
                None => Severity::Unspecified,
                Some(SeverityArg::General) => Severity::General,
                Some(SeverityArg::Major) => Severity::Major,
            } as i32,
            urgency: match self.urgency {
                None => Urgency::Unspecified,
                Some(UrgencyArg::Normal) => Urgency::Normal,
                Some(UrgencyArg::Urgent) => Urgency::Urgent,
                Some(UrgencyArg::Emergency) => Urgency::Emergency,
            } as i32,
            reason: self.reason.clone(),
        }
    }
}

#[derive(clap::Args)]
pub struct RequestEvidenceArgs {
    #[command(flatten)]
    pub acting: Acting,
    /// What is needed and why, as the complainant is told.
    #[arg(long, value_parser = not_blank)]
    pub what: String,
}

/// A day, YYYY-MM-DD.
pub fn day(s: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("{s:?} is not a day (YYYY-MM-DD)"))
}

/// `--corrective` / `--preventive`: what, owner and due day, separated by `;`.
pub fn action(s: &str) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = s.splitn(3, ';').map(str::trim).collect();
    match parts.as_slice() {
        [what, owner, due] if !what.is_empty() && !owner.is_empty() => {
            chrono::NaiveDate::parse_from_str(due, "%Y-%m-%d")
                .map_err(|_| format!("{due:?} is not a day (YYYY-MM-DD)"))?;
            Ok((what.to_string(), owner.to_string(), due.to_string()))
        }
        _ => Err("WHAT;OWNER;YYYY-MM-DD".into()),
    }
}

/// `--file`: URI, media type and size, separated by `;`.
pub fn file(s: &str) -> Result<(String, String, u64), String> {
    let parts: Vec<&str> = s.splitn(3, ';').map(str::trim).collect();
    match parts.as_slice() {
        [uri, media, size] if uri.contains("://") && !media.is_empty() => {
            let size = size
                .parse::<u64>()
                .map_err(|_| format!("{size:?} is not a size in bytes"))?;
            Ok((uri.to_string(), media.to_string(), size))
        }
        _ => Err("URI;MEDIA-TYPE;SIZE, e.g. s3://evidence/photo.jpg;image/jpeg;48213".into()),
    }
}

impl InvestigateArgs {
    pub fn entry(&self) -> redress_proto::v1::Investigate {
        use redress_proto::v1::{ActionKind, FileRef, InvestigationAction};
        let actions = |kind: ActionKind, list: &[(String, String, String)]| {
            list.iter()
                .map(|(what, owner, due)| InvestigationAction {
                    kind: kind as i32,
                    what: what.clone(),
                    owner: owner.clone(),
                    due_on: due.clone(),
                })
                .collect::<Vec<_>>()
        };
        let mut all = actions(ActionKind::Corrective, &self.corrective);
        all.extend(actions(ActionKind::Preventive, &self.preventive));
        redress_proto::v1::Investigate {
            notes: self.notes.clone(),
            cause: self.cause.clone(),
            responsibility: self
                .responsibility
                .map(|r| Responsibility::from(r) as i32)
                .unwrap_or_default(),
            actions: all,
            files: self
                .files
                .iter()
                .map(|(uri, media_type, size)| FileRef {
                    uri: uri.clone(),
                    media_type: media_type.clone(),
                    size_bytes: *size,
                    file_name: uri.rsplit('/').next().unwrap_or_default().to_string(),
                })
                .collect(),
        }
    }
}

impl ProposeArgs {
    pub fn proposal(&self) -> Propose {
        Propose {
            responsibility: Responsibility::from(self.responsibility) as i32,
            remedy: self.remedy.clone(),
            compensation_minor: self.compensation.unwrap_or(0),
            currency: self.currency.clone().unwrap_or_default(),
            kind: self.kind.map_or(0, |k| k as i32),
        }
    }
}

/// The request a work verb sends.
pub fn request(command: &WorkCommand) -> Option<WorkRequest> {
    let (acting, mut request) = match command {
        WorkCommand::Accept(a) => (
            &a.acting,
            requests::accept(&a.acting.ticket, &a.acting.dept, &a.acting.actor),
        ),
        WorkCommand::Propose(p) => (
            &p.acting,
            requests::propose(
                &p.acting.ticket,
                &p.acting.dept,
                &p.acting.actor,
                p.proposal(),
            ),
        ),
        WorkCommand::Reply(r) => (
            &r.acting,
            requests::reply(
                &r.acting.ticket,
                &r.acting.dept,
                &r.acting.actor,
                &r.message,
            ),
        ),
        WorkCommand::Resolve(r) => (
            &r.acting,
            requests::resolve(
                &r.acting.ticket,
                &r.acting.dept,
                &r.acting.actor,
                &r.summary,
            ),
        ),
        WorkCommand::Transfer(t) => (
            &t.acting,
            requests::transfer(
                &t.acting.ticket,
                &t.acting.dept,
                &t.acting.actor,
                &t.to,
                &t.reason,
                &t.understood,
            ),
        ),
        WorkCommand::Progress(p) => (
            &p.acting,
            requests::progress(
                &p.acting.ticket,
                &p.acting.dept,
                &p.acting.actor,
                &p.message,
            ),
        ),
        WorkCommand::Contest(c) => (
            &c.acting,
            requests::contest(
                &c.acting.ticket,
                &c.acting.dept,
                &c.acting.actor,
                &c.objection,
            ),
        ),
        WorkCommand::Explain(e) => (
            &e.acting,
            requests::explain(
                &e.acting.ticket,
                &e.acting.dept,
                &e.acting.actor,
                &e.message,
                e.not_liable,
                &e.basis,
            ),
        ),
        WorkCommand::Investigate(i) => (
            &i.acting,
            requests::investigate(&i.acting.ticket, &i.acting.dept, &i.acting.actor, i.entry()),
        ),
        WorkCommand::Commit(c) => (
            &c.acting,
            requests::commit(
                &c.acting.ticket,
                &c.acting.dept,
                &c.acting.actor,
                &c.by,
                &c.plan,
            ),
        ),
        WorkCommand::Merge(m) => (
            &m.acting,
            requests::merge(
                &m.acting.ticket,
                &m.acting.dept,
                &m.acting.actor,
                &m.into,
                &m.reason,
            ),
        ),
        WorkCommand::RequestEvidence(r) => (
            &r.acting,
            requests::request_evidence(&r.acting.ticket, &r.acting.dept, &r.acting.actor, &r.what),
        ),
        WorkCommand::Reclassify(r) => (
            &r.acting,
            requests::reclassify(
                &r.acting.ticket,
                &r.acting.dept,
                &r.acting.actor,
                r.change(),
            ),
        ),
        WorkCommand::List(_) | WorkCommand::Watch(_) => return None,
    };
    if let Some(id) = &acting.command_id {
        request.command_id = id.clone();
    }
    Some(request)
}

pub async fn run(command: WorkCommand) -> anyhow::Result<ExitCode> {
    let request = request(&command);
    match command {
        WorkCommand::List(args) => list(args).await,
        WorkCommand::Watch(args) => watch(args).await,
        WorkCommand::Accept(AcceptArgs { acting })
        | WorkCommand::Propose(ProposeArgs { acting, .. })
        | WorkCommand::Reply(ReplyArgs { acting, .. })
        | WorkCommand::Resolve(ResolveArgs { acting, .. })
        | WorkCommand::Transfer(TransferArgs { acting, .. })
        | WorkCommand::Progress(ProgressArgs { acting, .. })
        | WorkCommand::Contest(ContestArgs { acting, .. })
        | WorkCommand::Explain(ExplainArgs { acting, .. })
        | WorkCommand::Investigate(InvestigateArgs { acting, .. })
        | WorkCommand::Commit(CommitArgs { acting, .. })
        | WorkCommand::Merge(MergeArgs { acting, .. })
        | WorkCommand::RequestEvidence(RequestEvidenceArgs { acting, .. })
        | WorkCommand::Reclassify(ReclassifyArgs { acting, .. }) => {
            act(acting, request.expect("a work command")).await
        }
    }
}

async fn act(acting: Acting, request: WorkRequest) -> anyhow::Result<ExitCode> {
    let client = acting.connection.client().await?;
    let command_id = request.command_id.clone();
    let request_action = request.action.clone();
    match client.send_work_command(request).await {
        Ok(work) => {
            if acting.json {
                println!("{}", view::work_json(&work));
            } else if matches!(&request_action, Some(Action::Transfer(_))) {
                println!(
                    "{} transferred to {} by {}",
                    work.ticket, work.department, acting.actor
                );
            } else if matches!(&request_action, Some(Action::Merge(_))) {
                println!(
                    "{} merged into {} by {}; both complainants were told",
                    work.ticket, work.merged_into, acting.actor
                );
            } else if matches!(&request_action, Some(Action::Reclassify(_))) {
                println!(
                    "{} reclassified by {}: {} / {}; now with {}",
                    work.ticket, acting.actor, work.nature, work.category, work.department
                );
            } else if matches!(&request_action, Some(Action::RequestEvidence(_))) {
                let seq = work.evidence.last().map_or(0, |p| p.seq);
                println!(
                    "{}: evidence request {seq} sent to the complainant by {}; the playbook's \
                     waiting clocks are paused",
                    work.ticket, acting.actor
                );
            } else if matches!(&request_action, Some(Action::Commit(_))) {
                println!(
                    "{}: completion committed for {}, by {}; the complainant was told",
                    work.ticket, work.committed_on, acting.actor
                );
            } else if matches!(&request_action, Some(Action::Investigate(_))) {
                println!(
                    "{}: investigation recorded by {} ({})",
                    work.ticket, acting.actor, work.department
                );
            } else if matches!(&request_action, Some(Action::Progress(_))) {
                println!(
                    "{}: the complainant was told how it stands, by {} ({})",
                    work.ticket, acting.actor, work.department
                );
            } else {
                let mut line = view::work_line(&work, &acting.actor);
                if let Some(p) = work
                    .proposal
                    .as_ref()
                    .filter(|_| work.state() == WorkState::Proposed)
                {
                    line.push_str(&format!(": {}", view::proposal_text(p)));
                }
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(view::failed_command(&e, acting.json, &command_id)),
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    let states: Vec<WorkState> = args.states.iter().map(|s| (*s).into()).collect();
    match client.list_work(&args.dept, &states, args.limit).await {
        Ok(items) => {
            if args.json {
                let items: Vec<_> = items.iter().map(view::work_json).collect();
                println!("{}", serde_json::Value::Array(items));
            } else if items.is_empty() {
                println!("no work for {}", args.dept);
            } else {
                print!("{}", view::work_table(&items));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(view::failed(&e, args.json)),
    }
}

/// One line per assigned item.
pub fn watch_line(change: &WorkChanged) -> String {
    let w = change.work.clone().unwrap_or_default();
    let mut text: String = if w.text_erased {
        "(text erased)".into()
    } else {
        w.text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    if text.chars().count() > 60 {
        text = text.chars().take(59).collect::<String>() + "…";
    }
    let mut line = format!(
        "{}  {}  round {}  {}/{}/{}",
        view::rfc3339(w.assigned_at.as_ref()).unwrap_or_else(|| "-".into()),
        w.ticket,
        w.round,
        if w.category.is_empty() {
            "-"
        } else {
            &w.category
        },
        view::severity_word(w.severity()).unwrap_or_else(|| "-".into()),
        view::urgency_word(w.urgency()).unwrap_or_else(|| "-".into()),
    );
    if !text.is_empty() {
        line.push_str("  ");
        line.push_str(&text);
    }
    line
}

pub fn watch_json(change: &WorkChanged) -> serde_json::Value {
    let mut v = view::work_json(&change.work.clone().unwrap_or_default());
    v["actor"] = change.actor.clone().into();
    v["note"] = change.note.clone().into();
    v
}

async fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before anything is printed, so a Ctrl-C between two items is not lost.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let client = args.connection.client().await?;
    let mut watch = match client.watch_work(&args.dept).await {
        Ok(w) => w,
        Err(e) => return Ok(view::failed(&e, args.json)),
    };
    if !args.json {
        eprintln!(
            "watching work assigned to {} (consumer {}); Ctrl-C to stop",
            args.dept,
            watch.consumer_name()
        );
    }
    let mut stdout = std::io::stdout();
    let code = loop {
        let item = tokio::select! {
            _ = interrupt.recv() => break ExitCode::SUCCESS,
            _ = terminate.recv() => break ExitCode::SUCCESS,
            item = watch.next() => item,
        };
        match item {
            Some(Ok(change)) => {
                let line = if args.json {
                    watch_json(&change).to_string()
                } else {
                    watch_line(&change)
                };
                if writeln!(stdout, "{line}")
                    .and_then(|_| stdout.flush())
                    .is_err()
                {
                    // Whoever read the output is gone; the item stays unacknowledged and
                    // comes to the next watch.
                    return Ok(ExitCode::FAILURE);
                }
                // Printed: now it counts as received.
                if let Err(e) = watch.ack().await {
                    eprintln!("warning: {e}");
                }
            }
            Some(Err(e)) => eprintln!("warning: {e}"),
            None => break ExitCode::FAILURE,
        }
    };
    if let Err(e) = watch.close().await {
        eprintln!("warning: {e}");
    }
    Ok(code)
}
