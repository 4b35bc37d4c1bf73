//! `redress`: run the whole stack, run chosen services, and talk to a running stack.

mod bench;
mod client_verbs;
mod discovery;
mod services;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "redress",
    version,
    about = "Complaint handling on NATS and Postgres"
)]
struct Cli {
    /// Configuration file (default: $REDRESS_CONFIG, else ./redress.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole stack in the foreground: every service, plus a private nats-server and
    /// PostgreSQL unless REDRESS_NATS_URL / REDRESS_DATABASE_URL name running ones.
    Up {
        /// Where the private servers keep their data and secrets.
        #[arg(long, default_value = ".redress")]
        data_dir: PathBuf,
    },
    /// Run only the named services (run it again, anywhere, to scale a service out).
    Serve {
        #[arg(required = true, value_parser = clap::builder::PossibleValuesParser::new(services::NAMES))]
        services: Vec<String>,
    },
    /// Submit a complaint as a channel adapter would, and print its ticket.
    Submit(client_verbs::SubmitArgs),
    /// Show a complaint's status, by ticket or complaint id.
    Status(client_verbs::StatusArgs),
    /// Measure submission throughput and submit→acknowledged latency through JetStream.
    Bench(bench::BenchArgs),
    /// Business calendars: working days and deadlines.
    #[command(subcommand)]
    Calendar(redress_calendar::CalendarCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Calendar(c) = &cli.command {
        // Pure computation: no runtime, no connections.
        return match c.run() {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = tokio::runtime::Runtime::new().expect("start the async runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up { data_dir } => up::run(cli.config.as_deref(), &data_dir).await,
            Command::Serve { services } => services::serve(cli.config.as_deref(), &services).await,
            Command::Submit(args) => client_verbs::submit(args).await,
            Command::Status(args) => client_verbs::status(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Calendar(_) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
