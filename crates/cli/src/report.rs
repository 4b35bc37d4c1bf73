//! `redress report --playbook KEY --period 2026-11 [--format md|json|csv]`: the key figures of
//! a playbook's complaints over a period (and slice), from the analytics service. Markdown
//! is what a manager pastes into a meeting note; JSON the figures as the service gives them
//! (field names of the `Kpis` message); CSV one `metric,value` row per figure.

use std::process::ExitCode;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use redress_proto::v1::{DurationStats, KpiQuery, Kpis};
use serde_json::Value;

use crate::client_verbs::Connection;
use crate::view;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Csv,
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
        Format::Csv => print!("{}", csv(&as_json(&kpis)?)),
        Format::Md => print!("{}", markdown(&kpis)),
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

/// One `metric,value` row per figure, nested names joined by dots, list items by key.
fn csv(v: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, x, out);
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    let key = x
                        .get("key")
                        .or_else(|| x.get("deadline"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| (i + 1).to_string());
                    match x {
                        Value::Object(m) => {
                            for (k, y) in m {
                                if k != "key" && k != "deadline" {
                                    walk(&format!("{prefix}.{key}.{k}"), y, out);
                                }
                            }
                        }
                        other => walk(&format!("{prefix}.{key}"), other, out),
                    }
                }
            }
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    walk("", v, &mut rows);
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("metric,value\n");
    for (k, v) in rows {
        out += &format!("{},{}\n", quote(&k), quote(&v));
    }
    out
}

fn hours(secs: f64) -> String {
    if secs <= 0.0 {
        "-".into()
    } else if secs < 3600.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

fn percent(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

fn duration_row(name: &str, d: Option<&DurationStats>) -> String {
    let d = d.cloned().unwrap_or_default();
    format!(
        "| {name} | {} | {} | {} | {} | {} |\n",
        d.count,
        hours(d.p50_secs),
        hours(d.p90_secs),
        hours(d.p50_business_secs),
        hours(d.p90_business_secs)
    )
}

/// The report a manager pastes into a meeting note.
fn markdown(k: &Kpis) -> String {
    let day = |t: &Option<redress_proto::time::Timestamp>| {
        view::rfc3339(t.as_ref()).unwrap_or_else(|| "-".into())
    };
    let money = |minor: i64| format!("{}.{:02} {}", minor / 100, minor % 100, k.currency);
    let mut s = format!(
        "# Complaints {} — {}\n\n{} to {} ({})\n\n",
        k.playbook,
        k.period,
        day(&k.from),
        day(&k.until),
        k.zone
    );
    s += "| Received | Open | Closed | Withdrawn | Merged | Breaches | Escalations |\n";
    s += "|---:|---:|---:|---:|---:|---:|---:|\n";
    s += &format!(
        "| {} | {} | {} | {} | {} | {} | {} |\n\n",
        k.received, k.open, k.closed, k.withdrawn, k.merged, k.breaches, k.escalations
    );
    s += "## Handling time\n\n| | count | p50 | p90 | p50 business | p90 business |\n";
    s += "|---|---:|---:|---:|---:|---:|\n";
    s += &duration_row(
        "First response (assigned → accepted)",
        k.first_response.as_ref(),
    );
    s += &duration_row("Resolution (received → resolved)", k.resolution.as_ref());
    s += &duration_row("Approval (asked → decided)", k.approval_turnaround.as_ref());
    s += &duration_row("Backlog age (still open)", k.backlog_age.as_ref());
    s += "\n## Deadlines\n\n| Deadline | Met | Breached | On time |\n|---|---:|---:|---:|\n";
    for o in &k.on_time {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            o.deadline,
            o.met,
            o.breached,
            percent(o.rate)
        );
    }
    let sat = k.satisfaction.clone().unwrap_or_default();
    s += &format!(
        "\n## Satisfaction\n\n{} answers: overall {:.2}, speed {:.2}, effectiveness {:.2}, \
         attitude {:.2}, transparency {:.2}; {} satisfied. No response: {} ({}).\n",
        sat.answered,
        sat.overall,
        sat.speed,
        sat.effectiveness,
        sat.attitude,
        sat.transparency,
        percent(sat.share_satisfied),
        sat.no_response,
        percent(sat.no_response_rate)
    );
    s += &format!(
        "\nCompensation: {} proposals, {} in all. Reopened: {}. Repeat complainants: {}.\n",
        k.compensations,
        money(k.compensation_minor),
        percent(k.reopen_rate),
        percent(k.repeat_rate)
    );
    for (title, rows) in [
        ("By category", &k.by_category),
        ("By channel", &k.by_channel),
    ] {
        s += &format!("\n## {title}\n\n| | Complaints |\n|---|---:|\n");
        for c in rows {
            s += &format!("| {} | {} |\n", c.key, c.count);
        }
    }
    s
}
