//! `redress ops …`: what an operator looks at when something is held up.

use std::process::ExitCode;

use sqlx::Connection as _;

use crate::client_verbs::Connection;

#[derive(clap::Subcommand)]
pub enum OpsCommand {
    /// Messages each service's outbox relay set aside because the broker kept refusing them
    /// (they no longer hold back the messages behind them).
    Stuck(StuckArgs),
    /// Re-seal every stored contact with the current contact key (`intake.contact_key` and
    /// `intake.contact_key_id`), so that a retired key can leave the configuration; prints
    /// how many values each key id seals afterwards. Safe to interrupt and run again.
    Rekey(RekeyArgs),
}

#[derive(clap::Args)]
pub struct RekeyArgs {
    /// Rows per transaction.
    #[arg(long, default_value_t = 500)]
    batch: i64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
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

pub async fn run(
    config_file: Option<&std::path::Path>,
    command: OpsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        OpsCommand::Stuck(args) => stuck(args).await,
        OpsCommand::Rekey(args) => rekey(config_file, args).await,
    }
}

/// The administrator's database: `REDRESS_DATABASE_URL`, else that of `redress up`.
fn admin_database_url(connection: &Connection) -> anyhow::Result<String> {
    match std::env::var("REDRESS_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => crate::discovery::database_url(&connection.data_dir).ok_or_else(|| {
            anyhow::anyhow!(
                "no database to look at: run against `redress up`'s data directory, or set \
                 REDRESS_DATABASE_URL to a role that may read the services' schemas"
            )
        }),
    }
}

async fn rekey(config_file: Option<&std::path::Path>, args: RekeyArgs) -> anyhow::Result<ExitCode> {
    let config = redress_platform::Config::load(config_file)?;
    let mut settings: redress_intake::IntakeSettings = config.section("intake")?;
    if settings.contact_key.is_none() {
        settings.contact_key = crate::up::Secrets::contact_key_of(&args.connection.data_dir);
    }
    let cipher = settings.cipher()?;
    let pool = redress_intake::rekey::pool_for(&admin_database_url(&args.connection)?).await?;
    let changed = redress_intake::rekey::rekey(&pool, &cipher, args.batch.max(1)).await?;
    let by_key = redress_intake::rekey::key_use(&pool).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "resealed": changed,
                "current_key_id": cipher.current_key_id(),
                "values_by_key_id": by_key.iter().map(|(k, n)| (k.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
            })
        );
    } else {
        println!(
            "re-sealed {changed} complaints with key {}; values by key id: {}",
            cipher.current_key_id(),
            by_key
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stuck(args: StuckArgs) -> anyhow::Result<ExitCode> {
    let url = admin_database_url(&args.connection)?;
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
