//! `redress report --playbook KEY --period 2026-11 [--format md|json|csv|html]`: the key
//! figures of a playbook's complaints over a period (and slice), from the analytics service.
//! Markdown is what a manager pastes into a meeting note; JSON the figures as the service gives
//! them (field names of the `Kpis` message); CSV one `metric,value` row per figure; HTML one
//! page with charts, to open or print. All but JSON are rendered as the analytics service
//! renders its own reports.

use std::process::ExitCode;

use redress_analytics::render;
use redress_proto::v1::{KpiQuery, Kpis};

use crate::client_verbs::Connection;
use crate::view;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Csv,
    Html,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    what: Option<ReportWhat>,
    #[arg(long, required = true)]
    playbook: Option<String>,
    /// 2026-11 (the playbook's month), 2026-W48, or 2026-11-02..2026-11-08. With --stored,
    /// may be left out for the newest report made.
    #[arg(long)]
    period: Option<String>,
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
    /// The same as `--format json`.
    #[arg(long)]
    json: bool,
    /// The report the analytics service made on schedule (figures as they stood when it was
    /// made, as `report.published` announced), instead of the figures now.
    #[arg(long, conflicts_with_all = ["dept", "category", "channel", "severity"])]
    stored: bool,
    /// Only complaints a department handled.
    #[arg(long)]
    dept: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    channel: Option<String>,
    /// general or major.
    #[arg(long)]
    severity: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(clap::Subcommand)]
pub enum ReportWhat {
    /// The spike warnings told (once per episode), newest first, with their evidence.
    Spikes(crate::report_spikes::SpikesArgs),
}

pub async fn run(mut args: ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(ReportWhat::Spikes(spikes)) = args.what {
        return crate::report_spikes::run(spikes).await;
    }
    if args.json {
        args.format = Format::Json;
    }
    let json = args.format == Format::Json;
    let playbook = args.playbook.clone().unwrap_or_default();
    let period = args.period.clone().unwrap_or_default();
    let client = args.connection.client().await?;
    if args.stored {
        let report = match client.stored_report(&playbook, &period).await {
            Ok(r) => r,
            Err(e) => return Ok(view::failed(&e, json)),
        };
        let kpis = report.kpis.clone().unwrap_or_default();
        match args.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&view::proto_json(
                    "redress.v1.StoredReport",
                    &report
                )?)?
            ),
            other => {
                let made = redress_proto::time::opt_to_chrono(&report.made_at);
                if other == Format::Md {
                    println!(
                        "_The {} report, made {}._\n",
                        report.kind,
                        made.map(|t| t.to_rfc3339()).unwrap_or_default()
                    );
                }
                show(other, &kpis)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        !period.is_empty(),
        "--period is needed (2026-11, 2026-W48 or A..B)"
    );
    let query = KpiQuery {
        playbook,
        period,
        department: args.dept.clone().unwrap_or_default(),
        category: args.category.clone().unwrap_or_default(),
        channel: args.channel.clone().unwrap_or_default(),
        severity: args.severity.clone().unwrap_or_default(),
    };
    let kpis = match client.kpis(&query).await {
        Ok(k) => k,
        Err(e) => return Ok(view::failed(&e, json)),
    };
    show(args.format, &kpis)?;
    Ok(ExitCode::SUCCESS)
}

fn show(format: Format, kpis: &Kpis) -> anyhow::Result<()> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&view::proto_json("redress.v1.Kpis", kpis)?)?
        ),
        Format::Csv => print!("{}", render::csv(kpis)),
        Format::Md => print!("{}", render::markdown(kpis)),
        Format::Html => print!("{}", render::html(kpis)),
    }
    Ok(())
}
