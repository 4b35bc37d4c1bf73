//! `redress survey answer`: the complainant's answer to the satisfaction survey, entered as a
//! channel adapter (or an agent on the phone) received it; `redress survey follow-up`: a call
//! the department made, recorded by a member; `redress survey tasks`: the calls it has to
//! make.

use std::process::ExitCode;

use redress_client::requests;
use redress_proto::v1::{AnswerSurvey, SurveyScores, SurveyView};

use crate::client_verbs::Connection;
use crate::view;
use crate::work::not_blank;

#[derive(clap::Subcommand)]
pub enum SurveyCommand {
    /// Record the complainant's answer: satisfied closes the complaint, dissatisfied reopens
    /// it for another round.
    Answer(AnswerArgs),
    /// Record a follow-up you made with the complainant yourself (by phone, or a web form
    /// filled in for them), as a member of the department that handled the complaint; it
    /// counts as their answer.
    FollowUp(FollowUpArgs),
    /// The phone follow-ups your department has to make: surveys that went unanswered to the
    /// end of their window where the playbook says the department calls, oldest first.
    Tasks(TasksArgs),
}

#[derive(clap::Args)]
pub struct TasksArgs {
    /// Your department.
    #[arg(long, value_parser = not_blank)]
    pub dept: String,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// The scores and comment of an answer, by the complainant or recorded by the department.
#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Overall satisfaction, 1 (very dissatisfied) to 5 (very satisfied).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub score: u32,
    /// Speed of handling, 1 to 5.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub speed: Option<u32>,
    /// Whether the remedy worked, 1 to 5.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub effectiveness: Option<u32>,
    /// Attitude of the staff, 1 to 5.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub attitude: Option<u32>,
    /// How well the complainant was kept informed, 1 to 5.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub transparency: Option<u32>,
    #[arg(long, default_value = "")]
    pub comment: String,
}

impl ScoreArgs {
    pub fn scores(&self) -> SurveyScores {
        SurveyScores {
            overall: self.score,
            // 0 is "not given" on the wire.
            speed: self.speed.unwrap_or(0),
            effectiveness: self.effectiveness.unwrap_or(0),
            attitude: self.attitude.unwrap_or(0),
            transparency: self.transparency.unwrap_or(0),
        }
    }
}

#[derive(clap::Args)]
pub struct FollowUpArgs {
    /// Ticket of the complaint followed up.
    #[arg(value_parser = not_blank)]
    pub ticket: String,
    /// The department that handled it (yours).
    #[arg(long, value_parser = not_blank)]
    pub dept: String,
    /// Your name (your key signs the record); you must be a member of the department.
    #[arg(long = "as", value_name = "NAME", value_parser = not_blank)]
    pub recorded_by: String,
    /// phone or web.
    #[arg(long, default_value = "phone")]
    pub via: String,
    #[command(flatten)]
    pub answer: ScoreArgs,
    /// Id of an earlier attempt of this same record, to retry it without recording it twice.
    #[arg(long, value_parser = not_blank)]
    pub command_id: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(clap::Args)]
pub struct AnswerArgs {
    /// Ticket of the surveyed complaint.
    #[arg(value_parser = not_blank)]
    pub ticket: String,
    #[command(flatten)]
    pub answer: ScoreArgs,
    /// Id of an earlier attempt of this same answer, to retry it without recording it twice.
    #[arg(long, value_parser = not_blank)]
    pub command_id: Option<String>,
    /// The token of the complainant's invitation (`redress notifications` shows what was
    /// sent): without it nobody answers a complainant's survey.
    #[arg(long, value_parser = not_blank)]
    pub token: String,
    /// The survey answered (from the invitation): refused if it is not the current one.
    #[arg(long, value_parser = not_blank)]
    pub survey_id: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

impl AnswerArgs {
    pub fn request(&self) -> AnswerSurvey {
        let mut a = requests::answer(
            &self.ticket,
            &self.token,
            self.answer.scores(),
            &self.answer.comment,
        );
        if let Some(id) = &self.command_id {
            a.command_id = id.clone();
        }
        if let Some(id) = &self.survey_id {
            a.survey_id = id.clone();
        }
        a
    }
}

/// `RD-261123-000001 survey answered (round 1): satisfied, overall 5`
pub fn answer_line(s: &SurveyView) -> String {
    let verdict = if s.satisfied {
        "satisfied"
    } else {
        "not satisfied"
    };
    let overall = s.scores.as_ref().map(|sc| sc.overall).unwrap_or(0);
    format!(
        "{} survey {} (round {}): {verdict}, overall {overall}",
        s.ticket, s.state, s.round
    )
}

pub async fn run(command: SurveyCommand) -> anyhow::Result<ExitCode> {
    match command {
        SurveyCommand::Answer(args) => answer(args).await,
        SurveyCommand::FollowUp(args) => follow_up(args).await,
        SurveyCommand::Tasks(args) => tasks(args).await,
    }
}

async fn tasks(args: TasksArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    match client.list_follow_ups(&args.dept, args.limit).await {
        Ok(items) => {
            if args.json {
                let items: Vec<_> = items
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "ticket": t.ticket,
                            "round": t.round,
                            "department": t.department,
                            "playbook": t.playbook,
                            "sent_at": view::rfc3339(t.sent_at.as_ref()),
                            "due_since": view::rfc3339(t.due_since.as_ref()),
                            "reminded": t.reminded,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else if items.is_empty() {
                println!("no phone follow-ups waiting for {}", args.dept);
            } else {
                for t in &items {
                    println!(
                        "{}  round {}  unanswered since {}{}  (redress survey follow-up {} --dept {} --as NAME --score N)",
                        t.ticket,
                        t.round,
                        view::rfc3339(t.due_since.as_ref()).unwrap_or_else(|| "-".into()),
                        if t.reminded { ", reminded once" } else { "" },
                        t.ticket,
                        t.department,
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(view::failed(&e, args.json)),
    }
}

async fn follow_up(args: FollowUpArgs) -> anyhow::Result<ExitCode> {
    let request = redress_proto::v1::RecordFollowUp {
        command_id: args
            .command_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        ticket: args.ticket.clone(),
        department: args.dept.clone(),
        recorded_by: args.recorded_by.clone(),
        scores: Some(args.answer.scores()),
        comment: args.answer.comment.clone(),
        via: args.via.clone(),
    };
    let command_id = request.command_id.clone();
    let client = args.connection.client().await?;
    Ok(answered(
        client.record_follow_up(request).await,
        args.json,
        &command_id,
    ))
}

/// What an answer or a recorded follow-up came to, as the verb prints it.
fn answered(
    outcome: Result<SurveyView, redress_client::ClientError>,
    json: bool,
    command_id: &str,
) -> ExitCode {
    match outcome {
        Ok(s) => {
            if json {
                println!("{}", view::survey_json(&s));
            } else {
                println!("{}", answer_line(&s));
            }
            ExitCode::SUCCESS
        }
        Err(e) => view::failed_command(&e, json, command_id),
    }
}

async fn answer(args: AnswerArgs) -> anyhow::Result<ExitCode> {
    let request = args.request();
    let command_id = request.command_id.clone();
    let client = args.connection.client().await?;
    Ok(answered(
        client.send_survey_answer(request).await,
        args.json,
        &command_id,
    ))
}
