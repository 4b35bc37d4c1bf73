//! `redress report spikes --playbook KEY [--period P] [--json]`: the spike warnings the
//! analytics service told (one per episode), newest first, with their evidence.

use std::process::ExitCode;

use crate::client_verbs::Connection;
use crate::view;

#[derive(clap::Args)]
pub struct SpikesArgs {
    #[arg(long)]
    playbook: String,
    /// Only warnings whose window ends in this period (2026-11, 2026-W48, A..B).
    #[arg(long, default_value = "")]
    period: String,
    /// One JSON object per warning, a line each.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

pub async fn run(args: SpikesArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client().await?;
    let spikes = match client.spikes(&args.playbook, &args.period).await {
        Ok(s) => s,
        Err(e) => return Ok(view::failed(&e, args.json)),
    };
    if args.json {
        for s in &spikes {
            println!("{}", view::proto_json("redress.v1.SpikeDetected", s)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if spikes.is_empty() {
        println!("no spike told for {}", args.playbook);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10}  {:<16}  {:>8}  {:>8}  {:>6}  {:>9}  tell",
        "day", "category", "observed", "expected", "ratio", "chance"
    );
    for s in &spikes {
        println!(
            "{:<10}  {:<16}  {:>8}  {:>8.1}  {:>5.1}x  {:>9.1e}  {}",
            s.day,
            s.category,
            s.observed,
            s.expected,
            s.ratio,
            s.tail_probability,
            s.notify.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
