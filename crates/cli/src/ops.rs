//! `redress ops …`: what an operator looks at when something is held up.

use std::process::ExitCode;

use sqlx::Connection as _;

use crate::client_verbs::Connection;

#[derive(clap::Subcommand)]
pub enum OpsCommand {
    /// Messages each service's outbox relay set aside because the broker kept refusing them
    /// (they no longer hold back the messages behind them).
    Stuck(StuckArgs),
}

#[derive(clap::Args)]
pub struct StuckArgs {
    #[arg(long)]
    json: bool,
    /// Send the set-aside messages again (after the cause is fixed: a stream recreated,
    /// storage freed); they are set aside again if the broker still refuses them.
    #[arg(long)]
    release: bool,
    #[command(flatten)]
    connection: Connection,
}

/// One message an outbox relay set aside.
#[derive(sqlx::FromRow, serde::Serialize)]
struct StuckRow {
    seq: i64,
    msg_id: String,
    subject: String,
    bytes: i32,
    attempts: i32,
    stuck_at: chrono::DateTime<chrono::Utc>,
    reason: String,
}

#[derive(serde::Serialize)]
struct Stuck {
    service: &'static str,
    #[serde(flatten)]
    row: StuckRow,
}

pub async fn run(command: OpsCommand) -> anyhow::Result<ExitCode> {
    match command {
        OpsCommand::Stuck(args) => stuck(args).await,
    }
}

async fn stuck(args: StuckArgs) -> anyhow::Result<ExitCode> {
    let url = match std::env::var("REDRESS_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => crate::discovery::database_url(&args.connection.data_dir).ok_or_else(|| {
            anyhow::anyhow!(
                "no database to look at: run against `redress up`'s data directory, or set \
                 REDRESS_DATABASE_URL to a role that may read the services' schemas"
            )
        })?,
    };
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    let mut all = Vec::new();
    for service in crate::services::NAMES {
        let schema = crate::services::ident(service).schema;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = $1 AND table_name = 'outbox'
                              AND column_name = 'stuck_at')",
        )
        .bind(schema)
        .fetch_one(&mut conn)
        .await?;
        if !exists {
            continue;
        }
        let rows: Vec<StuckRow> = sqlx::query_as(&format!(
            "SELECT seq, msg_id, subject, length(payload) AS bytes, attempts, stuck_at,
                    coalesce(stuck_reason, '') AS reason
             FROM {schema}.outbox WHERE stuck_at IS NOT NULL ORDER BY seq"
        ))
        .fetch_all(&mut conn)
        .await?;
        if args.release && !rows.is_empty() {
            sqlx::query(&format!(
                "UPDATE {schema}.outbox SET stuck_at = NULL, attempts = 0
                 WHERE stuck_at IS NOT NULL"
            ))
            .execute(&mut conn)
            .await?;
        }
        all.extend(rows.into_iter().map(|row| Stuck { service, row }));
    }
    let _ = conn.close().await;
    if args.json {
        println!("{}", serde_json::to_string(&all)?);
    } else if all.is_empty() {
        println!("nothing is stuck");
    } else if args.release {
        println!("released {} message(s) to be sent again", all.len());
    } else {
        for Stuck { service, row } in &all {
            println!(
                "{service} #{} {} ({} bytes, {} attempts, since {}): {}",
                row.seq,
                row.subject,
                row.bytes,
                row.attempts,
                row.stuck_at.to_rfc3339(),
                row.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
