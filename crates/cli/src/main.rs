//! `redress`: run the whole stack, run chosen services, and talk to a running stack: submit
//! and follow complaints (`submit`, `status`), work on them as a department (`work list`,
//! `work watch`, `work accept|propose|reply|resolve|transfer|progress|contest|explain|
//! investigate|commit|merge`), decide
//! approvals (`approve`, `reject`, `approvals`) and record survey answers (`survey answer`).
//!
//! Every client verb finds the stack the same way (`REDRESS_NATS_URL`, else the stack file of
//! `redress up` in `--data-dir`) and takes `--json`. Exit codes: 0 done; 2 bad command-line
//! input; 3 the service refused the command with a typed error (`error: <code> <field>:
//! <message>`, or `{"error": {...}}` on stdout with `--json`); 1 anything else (no stack, no
//! answer in time).

mod approval;
mod bench;
mod bench_e2e;
mod client_verbs;
mod creds;
mod discovery;
mod notifications;
mod ops;
mod people;
mod playbook;
mod report;
mod report_spikes;
mod services;
mod simulate;
mod survey;
mod up;
mod view;
mod work;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Every event and command allocates many small buffers (protobuf, SQL arguments, headers);
// glibc's allocator took about a tenth of the CPU of a loaded stack.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Run only these services (default: all seven), e.g. `--only intake` to measure intake
        /// alone; the others can be started with `redress serve` against the same stack.
        #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(services::NAMES))]
        only: Vec<String>,
        /// Run the private nats-server with an fsync before every acknowledgement
        /// (`sync_interval: always`, nats-server 2.10+), so nothing acknowledged is lost even
        /// if the machine loses power; also `[stack] durable_broker = true`.
        #[arg(long)]
        durable: bool,
        /// A directory of `<key>/playbook.toml` to run by instead of the playbooks built into
        /// the binary (also `[playbooks] dir`); check it first with `redress playbook check
        /// --playbooks DIR`.
        #[arg(long, value_name = "DIR")]
        playbooks: Option<PathBuf>,
    },
    /// Run only the named services (run it again, anywhere, to scale a service out).
    Serve {
        #[arg(required = true, value_parser = clap::builder::PossibleValuesParser::new(services::NAMES))]
        services: Vec<String>,
        /// A directory of playbooks instead of the built-in ones, as for `up`.
        #[arg(long, value_name = "DIR")]
        playbooks: Option<PathBuf>,
    },
    /// Create each service's PostgreSQL role and schema (grants, nothing else) with the
    /// administrator URL in REDRESS_DATABASE_URL; services then run with
    /// `database.provision = false` and their own role only. `redress up` runs it itself.
    Provision {
        /// Only these services (default: all seven).
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(services::NAMES))]
        services: Vec<String>,
    },
    /// Submit a complaint as a channel adapter would, and print its ticket.
    Submit(client_verbs::SubmitArgs),
    /// Show a complaint's status, by ticket or complaint id.
    Status(client_verbs::StatusArgs),
    /// A department's work: list, watch, accept, propose, reply, resolve, transfer,
    /// progress, contest, explain, investigate, commit, merge.
    #[command(subcommand)]
    Work(work::WorkCommand),
    /// Approve the proposal waiting for approval on a ticket.
    Approve(approval::ApproveArgs),
    /// Reject the proposal waiting for approval on a ticket; the department proposes again.
    Reject(approval::RejectArgs),
    /// List the proposals waiting for a decision.
    Approvals(approval::ApprovalsArgs),
    /// Hand your approvals to another person for a range of days (holiday cover); their
    /// decisions on those days name both of you.
    Delegate(approval::DelegateArgs),
    /// Satisfaction surveys.
    #[command(subcommand)]
    Survey(survey::SurveyCommand),
    /// Measure submission throughput and submit→acknowledged latency through JetStream; with
    /// --e2e, the whole pipeline to deadlines armed, with the box's ceilings.
    Bench(bench::BenchArgs),
    /// Business calendars: working days and deadlines.
    #[command(subcommand)]
    Calendar(redress_calendar::CalendarCommand),
    /// Playbooks: `playbook check [KEY…] [--playbooks DIR]` lists every problem as
    /// `file:line: message` (exit 2), or says they are sound.
    #[command(subcommand)]
    Playbook(playbook::PlaybookCommand),
    /// Broker users for the systems around a `redress up` stack: `creds issue --dept KEY`,
    /// `--adapter CHANNEL`, `--service NAME`, `--ops`, `--approvals`, `--surveys`; `creds
    /// revoke USER`.
    #[command(subcommand)]
    Creds(creds::CredsCommand),
    /// The keys with which department members and approvers sign what they do: `people
    /// issue NAME`, `people revoke NAME`, `people list`.
    #[command(subcommand)]
    People(people::PeopleCommand),
    /// Erase a complainant's personal data (their right to deletion): the complaint's data
    /// key, text and contact, its raw submission and the messages sent to them; the facts
    /// stay for statistics.
    Erase(client_verbs::EraseArgs),
    /// Withdraw a complaint for its complainant (ticket and the acknowledgement's secret), as
    /// their channel's adapter would: the work closes and open deadlines are cancelled.
    Withdraw(client_verbs::WithdrawArgs),
    /// Accept or reject the department's reply for its complainant (ticket and secret), as
    /// their channel's adapter would; a rejection sends the work back for a new proposal.
    Respond(client_verbs::RespondArgs),
    /// Answer an evidence request for its complainant (ticket and the request's token), as
    /// their channel's adapter would: the paused clocks resume.
    Evidence(client_verbs::EvidenceArgs),
    /// What was sent to complainants on a channel, as its adapter receives it
    /// (acknowledgements, refusals, replies, survey invitations with their tokens).
    Notifications(notifications::NotificationsArgs),
    /// Key figures of a playbook's complaints over a period (the analytics service): counts,
    /// handling times in calendar and business time, on-time rates, satisfaction; as
    /// Markdown, JSON or CSV.
    Report(report::ReportArgs),
    /// For operators: what is held up (`ops stuck`).
    #[command(subcommand)]
    Ops(ops::OpsCommand),
}

fn main() -> ExitCode {
    // mimalloc asks the kernel for transparent huge pages, and the first touch of each one
    // zeroes 2 MiB: under load, where the allocator keeps taking fresh memory, that zeroing
    // and the allocator's page handling took about a fifth of the services' CPU (a burst of
    // 4,000 on fresh stacks: 0.38 ms of service CPU per complaint without, 0.46–0.49 ms with).
    // Children (the private PostgreSQL and nats-server) inherit the setting.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
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
    if let Command::Playbook(command) = &cli.command
        && !matches!(command, playbook::PlaybookCommand::Simulate(_))
    {
        // Pure computation too.
        return match playbook::run(command) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = tokio::runtime::Runtime::new().expect("start the async runtime");
    let verb = cli.command.name();
    let result = runtime.block_on(async move {
        // A client verb is one span of its own (exported when OTEL_EXPORTER_OTLP_ENDPOINT is
        // set), so every command it sends carries a traceparent and the services' spans
        // continue the operator's trace.
        let _telemetry = match &cli.command {
            Command::Up { .. } | Command::Serve { .. } | Command::Playbook(_) => None,
            _ => redress_platform::telemetry::init(
                "redress-cli",
                &redress_platform::config::TelemetrySettings {
                    format: redress_platform::config::LogFormat::Pretty,
                    filter: "warn".into(),
                },
            )
            .ok(),
        };
        let span = tracing::info_span!("cli", otel.name = %format_args!("redress.{verb}"));
        use tracing::Instrument as _;
        run(cli).instrument(span).await
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up {
            data_dir,
            only,
            durable,
            playbooks,
        } => {
            up::run(
                cli.config.as_deref(),
                &data_dir,
                &only,
                durable,
                playbooks.as_deref(),
            )
            .await
        }
        Command::Serve {
            services,
            playbooks,
        } => services::serve(cli.config.as_deref(), &services, playbooks.as_deref()).await,
        Command::Provision { services } => {
            services::provision_verb(cli.config.as_deref(), &services).await
        }
        Command::Submit(args) => client_verbs::submit(args).await,
        Command::Status(args) => client_verbs::status(args).await,
        Command::Work(command) => work::run(command).await,
        Command::Approve(args) => approval::approve(args).await,
        Command::Reject(args) => approval::reject(args).await,
        Command::Approvals(args) => approval::list(args).await,
        Command::Delegate(args) => approval::delegate(args).await,
        Command::Survey(command) => survey::run(command).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Ops(command) => ops::run(cli.config.as_deref(), command).await,
        Command::Creds(command) => creds::run(cli.config.as_deref(), command).await,
        Command::People(command) => people::run(command).await,
        Command::Notifications(args) => notifications::run(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Erase(args) => client_verbs::erase(args).await,
        Command::Withdraw(args) => client_verbs::withdraw(args).await,
        Command::Respond(args) => client_verbs::respond(args).await,
        Command::Evidence(args) => client_verbs::evidence(args).await,
        Command::Playbook(playbook::PlaybookCommand::Simulate(args)) => simulate::run(&args).await,
        Command::Calendar(_) | Command::Playbook(_) => unreachable!("handled above"),
    }
}

impl Command {
    /// The verb, for the span of the invocation.
    fn name(&self) -> &'static str {
        match self {
            Command::Up { .. } => "up",
            Command::Serve { .. } => "serve",
            Command::Provision { .. } => "provision",
            Command::Submit(_) => "submit",
            Command::Status(_) => "status",
            Command::Work(_) => "work",
            Command::Approve(_) => "approve",
            Command::Reject(_) => "reject",
            Command::Approvals(_) => "approvals",
            Command::Delegate(_) => "delegate",
            Command::Survey(_) => "survey",
            Command::Bench(_) => "bench",
            Command::Calendar(_) => "calendar",
            Command::Playbook(_) => "playbook",
            Command::Ops(_) => "ops",
            Command::Creds(_) => "creds",
            Command::People(_) => "people",
            Command::Notifications(_) => "notifications",
            Command::Report(_) => "report",
            Command::Erase(_) => "erase",
            Command::Withdraw(_) => "withdraw",
            Command::Respond(_) => "respond",
            Command::Evidence(_) => "evidence",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use redress_proto::v1::{Responsibility, WorkState, work_command::Action};

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("redress").chain(args.iter().copied()))
    }

    fn work(args: &[&str]) -> work::WorkCommand {
        match parse(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::Work(w) => w,
            _ => panic!("not a work command"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn work_list_takes_a_department_and_states() {
        let work::WorkCommand::List(l) = work(&[
            "work",
            "list",
            "--dept",
            "logistics",
            "--state",
            "assigned",
            "--state",
            "proposed",
            "--json",
        ]) else {
            panic!("not list")
        };
        assert_eq!(l.dept, "logistics");
        assert_eq!(
            l.states,
            vec![work::StateArg::Assigned, work::StateArg::Proposed]
        );
        assert!(l.json);
        assert_eq!(l.limit, 100);
        let e = parse(&["work", "list", "--dept", "logistics", "--state", "open"]).err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::InvalidValue));
        let e = parse(&["work", "list"]).err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn a_department_must_be_one_subject_token() {
        for bad in ["Logistics", "a.b", "x>", ""] {
            let e = parse(&["work", "watch", "--dept", bad]).err();
            assert_eq!(
                e.map(|e| e.kind()),
                Some(ErrorKind::ValueValidation),
                "{bad:?}"
            );
        }
        let work::WorkCommand::Watch(w) = work(&["work", "watch", "--dept", "customer-service"])
        else {
            panic!("not watch")
        };
        assert_eq!(w.dept, "customer-service");
        assert!(!w.json);
    }

    #[test]
    fn accept_builds_the_accept_command() {
        let c = work(&[
            "work",
            "accept",
            "RD-261123-000001",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
        ]);
        let r = work::request(&c).unwrap();
        assert_eq!(r.ticket, "RD-261123-000001");
        assert_eq!(r.department, "logistics");
        assert_eq!(r.actor, "wang.fang");
        assert!(matches!(r.action, Some(Action::Accept(_))));
        assert!(uuid::Uuid::parse_str(&r.command_id).is_ok_and(|u| u.get_version_num() == 7));
        let e = parse(&["work", "accept", "RD-1", "--dept", "logistics"]).err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn transfer_and_explain_build_their_commands() {
        let c = work(&[
            "work",
            "transfer",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "zhou.qiang",
            "--to",
            "quality",
            "--reason",
            "破损",
            "--understood",
            "商品有裂痕",
        ]);
        assert_eq!(
            work::request(&c).unwrap().action,
            Some(Action::Transfer(redress_proto::v1::Transfer {
                to_department: "quality".into(),
                reason: "破损".into(),
                understood: "商品有裂痕".into(),
            }))
        );
        // Nothing understood, nothing handed on.
        let e = parse(&[
            "work",
            "transfer",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "zhou.qiang",
            "--to",
            "quality",
            "--reason",
            "破损",
        ])
        .err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument)
        );
        let c = work(&[
            "work",
            "explain",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "zhou.qiang",
            "--message",
            "已签收",
            "--not-liable",
        ]);
        assert_eq!(
            work::request(&c).unwrap().action,
            Some(Action::Explain(redress_proto::v1::Explain {
                message: "已签收".into(),
                not_liable: true,
                basis: String::new(),
            }))
        );
    }

    #[test]
    fn investigate_parses_actions_and_files() {
        let c = work(&[
            "work",
            "investigate",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "zhou.qiang",
            "--cause",
            "未按地址派送",
            "--responsibility",
            "company",
            "--corrective",
            "重新派送;zhou.qiang;2026-12-02",
            "--preventive",
            "派送前电话确认;sun.hao;2026-12-31",
            "--file",
            "s3://evidence/RD-1/cctv.mp4;video/mp4;12000000",
        ]);
        let Some(Action::Investigate(i)) = work::request(&c).unwrap().action else {
            panic!("not an investigation");
        };
        assert_eq!(i.actions.len(), 2);
        assert_eq!(i.actions[1].owner, "sun.hao");
        assert_eq!(
            (i.files[0].file_name.as_str(), i.files[0].size_bytes),
            ("cctv.mp4", 12_000_000)
        );
        for bad in [
            ["--corrective", "重新派送;zhou.qiang;next week"],
            ["--file", "cctv.mp4;video/mp4;1"],
        ] {
            let mut args = vec![
                "work",
                "investigate",
                "RD-1",
                "--dept",
                "logistics",
                "--as",
                "x",
            ];
            args.extend(bad);
            assert_eq!(
                parse(&args).err().map(|e| e.kind()),
                Some(ErrorKind::ValueValidation),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_given_command_id_is_resent() {
        let c = work(&[
            "work",
            "resolve",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--command-id",
            "0194f3c2-aaaa-7000-8000-000000000001",
        ]);
        let r = work::request(&c).unwrap();
        assert_eq!(r.command_id, "0194f3c2-aaaa-7000-8000-000000000001");
        assert_eq!(
            r.action,
            Some(Action::Resolve(redress_proto::v1::Resolve {
                summary: String::new()
            }))
        );
    }

    #[test]
    fn propose_parses_responsibility_and_compensation() {
        let c = work(&[
            "work",
            "propose",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "wang.fang",
            "--responsibility",
            "company",
            "--remedy",
            "refund and apology",
            "--compensation",
            "800.00",
            "--currency",
            "cny",
            "--json",
        ]);
        let Some(Action::Propose(p)) = work::request(&c).unwrap().action else {
            panic!("not a proposal")
        };
        assert_eq!(p.responsibility(), Responsibility::CompanyLiable);
        assert_eq!(p.remedy, "refund and apology");
        assert_eq!(p.compensation_minor, 80_000);
        assert_eq!(p.currency, "CNY");

        let c = work(&[
            "work",
            "propose",
            "RD-1",
            "--dept",
            "logistics",
            "--as",
            "w",
            "--responsibility",
            "not-liable",
            "--remedy",
            "explanation",
        ]);
        let Some(Action::Propose(p)) = work::request(&c).unwrap().action else {
            panic!("not a proposal")
        };
        assert_eq!(p.responsibility(), Responsibility::NotLiable);
        assert_eq!((p.compensation_minor, p.currency.as_str()), (0, ""));

        let c = work(&[
            "work",
            "propose",
            "RD-1",
            "--dept",
            "d",
            "--as",
            "w",
            "--responsibility",
            "partly",
            "--remedy",
            "r",
            "--compensation",
            "0.5",
        ]);
        let Some(Action::Propose(p)) = work::request(&c).unwrap().action else {
            panic!("not a proposal")
        };
        assert_eq!(p.responsibility(), Responsibility::PartlyLiable);
        assert_eq!(p.compensation_minor, 50);
    }

    #[test]
    fn a_bad_amount_is_refused_naming_compensation() {
        for bad in ["800.001", "-5", "abc", "8,00", ""] {
            let e = parse(&[
                "work",
                "propose",
                "RD-1",
                "--dept",
                "d",
                "--as",
                "w",
                "--responsibility",
                "company",
                "--remedy",
                "r",
                "--compensation",
                bad,
            ])
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{bad:?}");
            // clap exits with 2 on these, like every other bad input.
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("--compensation"), "{e}");
        }
        let e = parse(&[
            "work",
            "propose",
            "RD-1",
            "--dept",
            "d",
            "--as",
            "w",
            "--responsibility",
            "company",
            "--remedy",
            "r",
            "--currency",
            "CNY",
        ])
        .err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument),
            "a currency without an amount"
        );
        let e = parse(&[
            "work",
            "propose",
            "RD-1",
            "--dept",
            "d",
            "--as",
            "w",
            "--responsibility",
            "blame",
            "--remedy",
            "r",
        ])
        .err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::InvalidValue));
    }

    #[test]
    fn reply_needs_a_message() {
        let c = work(&[
            "work",
            "reply",
            "RD-1",
            "--dept",
            "d",
            "--as",
            "w",
            "--message",
            "您好，已退款",
        ]);
        assert_eq!(
            work::request(&c).unwrap().action,
            Some(Action::Reply(redress_proto::v1::Reply {
                message: "您好，已退款".into()
            }))
        );
        let e = parse(&["work", "reply", "RD-1", "--dept", "d", "--as", "w"]).err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument)
        );
        let e = parse(&[
            "work",
            "reply",
            "RD-1",
            "--dept",
            "d",
            "--as",
            "w",
            "--message",
            " ",
        ])
        .err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::ValueValidation));
    }

    #[test]
    fn approve_and_reject() {
        let Command::Approve(a) = parse(&["approve", "RD-1", "--as", "li.qiang"])
            .unwrap()
            .command
        else {
            panic!("not approve")
        };
        let d = a.request();
        assert!(d.approve);
        assert_eq!(
            (d.ticket.as_str(), d.approver.as_str(), d.note.as_str()),
            ("RD-1", "li.qiang", "")
        );

        let Command::Reject(r) = parse(&[
            "reject", "RD-1", "--as", "li.qiang", "--note", "too much", "--json",
        ])
        .unwrap()
        .command
        else {
            panic!("not reject")
        };
        let d = r.request();
        assert!(!d.approve);
        assert_eq!(d.note, "too much");
        assert!(r.json);
        let e = parse(&["reject", "RD-1", "--as", "li.qiang"]).err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument),
            "a rejection says why"
        );

        let Command::Approvals(l) = parse(&["approvals", "--json"]).unwrap().command else {
            panic!("not approvals")
        };
        assert!(l.json);
    }

    #[test]
    fn survey_answer_takes_scores_from_1_to_5() {
        let Command::Survey(survey::SurveyCommand::Answer(a)) = parse(&[
            "survey",
            "answer",
            "RD-1",
            "--token",
            "t",
            "--score",
            "2",
            "--speed",
            "1",
            "--attitude",
            "5",
            "--comment",
            "slow",
        ])
        .unwrap()
        .command
        else {
            panic!("not survey answer")
        };
        let r = a.request();
        let s = r.scores.unwrap();
        assert_eq!(
            (
                s.overall,
                s.speed,
                s.effectiveness,
                s.attitude,
                s.transparency
            ),
            (2, 1, 0, 5, 0)
        );
        assert_eq!(r.comment, "slow");
        for bad in [["--score", "0"], ["--score", "6"]] {
            let e = parse(&["survey", "answer", "RD-1", bad[0], bad[1]]).err();
            assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::ValueValidation));
        }
        let e = parse(&["survey", "answer", "RD-1", "--score", "3", "--speed", "9"]).err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::ValueValidation));
        let e = parse(&["survey", "answer", "RD-1"]).err();
        assert_eq!(
            e.map(|e| e.kind()),
            Some(ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn a_bad_contact_kind_is_bad_input() {
        let base = [
            "submit",
            "--channel",
            "sms",
            "--external-id",
            "x",
            "--contact",
            "1",
            "--text",
            "t",
        ];
        assert!(parse(&[&base[..], &["--contact-kind", "email"]].concat()).is_ok());
        let e = parse(&[&base[..], &["--contact-kind", "fax"]].concat()).err();
        assert_eq!(e.map(|e| e.exit_code()), Some(2));
    }

    #[test]
    fn work_states_map_to_the_contract() {
        assert_eq!(
            WorkState::from(work::StateArg::Approved),
            WorkState::Approved
        );
        assert_eq!(WorkState::from(work::StateArg::Closed), WorkState::Closed);
    }
}
