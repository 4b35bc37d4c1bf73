//! `redress report --playbook KEY --period 2026-11 [--format md|json|csv|html]`: the key
//! figures of a playbook's complaints over a period (and slice), from the analytics service.
//! Markdown is what a manager pastes into a meeting note; JSON the figures as the service gives
//! them (field names of the `Kpis` message); CSV one `metric,value` row per figure; HTML one
//! page with charts, to open or print. All but JSON are rendered as the analytics service
//! renders its own reports.

use std::process::ExitCode;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use redress_analytics::render;
use redress_proto::v1::{KpiQuery, Kpis};
use serde_json::Value;

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
pub struct ReportArgs {
    #[arg(long)]
    playbook: String,
    /// 2026-11 (the playbook's month), 2026-W48, or 2026-11-02..2026-11-08.
    #[arg(long)]
    period: String,
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
    /// The same as `--format json`.
    #[arg(long)]
    json: bool,
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

pub async fn run(mut args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.json {
        args.format = Format::Json;
    }
    let query = KpiQuery {
        playbook: args.playbook.clone(),
        period: args.period.clone(),
        department: args.dept.clone().unwrap_or_default(),
        category: args.category.clone().unwrap_or_default(),
        channel: args.channel.clone().unwrap_or_default(),
        severity: args.severity.clone().unwrap_or_default(),
    };
    let client = args.connection.client().await?;
    let kpis = match client.kpis(&query).await {
        Ok(k) => k,
        Err(e) => return Ok(view::failed(&e, args.format == Format::Json)),
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&as_json(&kpis)?)?),
        Format::Csv => print!("{}", render::csv(&kpis)),
        Format::Md => print!("{}", render::markdown(&kpis)),
        Format::Html => print!("{}", render::html(&kpis)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The figures as JSON, named as in the contract.
fn as_json(k: &Kpis) -> anyhow::Result<Value> {
    let pool = DescriptorPool::decode(redress_proto::DESCRIPTORS)?;
    let desc = pool
        .get_message_by_name("redress.v1.Kpis")
        .ok_or_else(|| anyhow::anyhow!("Kpis in the descriptors"))?;
    let msg = DynamicMessage::decode(desc, prost::Message::encode_to_vec(k).as_slice())?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    Ok(msg.serialize_with_options(serde_json::value::Serializer, &options)?)
}
