//! The seven services by name, and `redress serve`.

use anyhow::Context as _;
use std::path::Path;
use std::process::ExitCode;

use futures::future::BoxFuture;
use redress_platform::health::{Health, Metrics};
use redress_platform::{Config, ServiceContext};

pub const NAMES: [&str; 7] = redress_proto::access::SERVICES;

pub fn runner(name: &str) -> fn(ServiceContext) -> BoxFuture<'static, anyhow::Result<()>> {
    match name {
        "intake" => |c| Box::pin(redress_intake::run(c)),
        "classification" => |c| Box::pin(redress_classification::run(c)),
        "routing" => |c| Box::pin(redress_routing::run(c)),
        "sla-timer" => |c| Box::pin(redress_sla_timer::run(c)),
        "approval" => |c| Box::pin(redress_approval::run(c)),
        "survey" => |c| Box::pin(redress_survey::run(c)),
        "analytics" => |c| Box::pin(redress_analytics::run(c)),
        other => unreachable!("unknown service {other}; clap checks names"),
    }
}

/// The identity (name and schema) of a service.
pub fn ident(name: &str) -> redress_platform::ServiceIdent {
    match name {
        "intake" => redress_intake::IDENT,
        "classification" => redress_classification::IDENT,
        "routing" => redress_routing::IDENT,
        "sla-timer" => redress_sla_timer::IDENT,
        "approval" => redress_approval::IDENT,
        "survey" => redress_survey::IDENT,
        "analytics" => redress_analytics::IDENT,
        other => unreachable!("unknown service {other}; clap checks names"),
    }
}

/// Creates (or brings up to date) each service's role and schema with the administrator URL
/// of `database.url`, so that the services themselves can run with `database.provision =
/// false` and never hold that URL.
pub async fn provision(config: &Config, names: &[String], announce: bool) -> anyhow::Result<()> {
    for name in names {
        let ident = ident(name);
        redress_platform::db::provision(&config.settings.database, &ident).await?;
        if !announce {
            continue;
        }
        println!(
            "{name}: role {} owns schema {}",
            redress_platform::db::role_name(&ident),
            ident.schema
        );
    }
    Ok(())
}

/// `redress provision [SERVICE…]`.
pub async fn provision_verb(
    config_file: Option<&Path>,
    names: &[String],
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_file)?;
    let names: Vec<String> = if names.is_empty() {
        NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    provision(&config, &names, true).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `names` in this process, on `clock`, until `shutdown` or until one of them fails.
/// With `announce`, prints `ready` once every one is serving (and where health is served).
pub async fn run_services(
    config: Config,
    names: &[String],
    shutdown: redress_platform::Shutdown,
    clock: redress_platform::SharedClock,
    announce: bool,
) -> anyhow::Result<ExitCode> {
    let health = Health::default();
    run_services_with(config, names, shutdown, clock, announce, health).await
}

/// [`run_services`] reporting readiness to `health`, for a caller that waits on it.
pub async fn run_services_with(
    config: Config,
    names: &[String],
    shutdown: redress_platform::Shutdown,
    clock: redress_platform::SharedClock,
    announce: bool,
    health: Health,
) -> anyhow::Result<ExitCode> {
    let metrics = Metrics::default();
    for n in names {
        health.register(n);
    }
    let ctx = ServiceContext::connect(
        config.clone(),
        &format!("redress-{}", names.join("+")),
        clock,
        shutdown.clone(),
        health.clone(),
        metrics.clone(),
    )
    .await?;
    if let Some(addr) = &config.settings.health.addr {
        let bound = redress_platform::health::serve(
            addr,
            health.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .await?;
        if announce {
            println!("health: http://{bound}/readyz  metrics: http://{bound}/metrics");
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Each service traces under its own name, also when several share this process; the
    // guards flush their spans when the services have stopped.
    let mut telemetry = Vec::new();
    for n in names {
        use tracing::instrument::WithSubscriber as _;
        let name = n.clone();
        let (dispatch, guard) =
            redress_platform::telemetry::service_dispatch(n, &config.settings.telemetry)?;
        telemetry.push(guard);
        let fut = runner(n)(ctx.clone()).with_subscriber(dispatch);
        tasks.spawn(async move { (name, fut.await) });
    }
    tokio::select! {
        _ = health.wait_ready() => if announce { println!("ready") },
        _ = shutdown.cancelled() => {},
        Some(joined) = tasks.join_next() => {
            shutdown.cancel();
            report(joined);
            while let Some(j) = tasks.join_next().await { report(j); }
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut failed = false;
    while let Some(joined) = tasks.join_next().await {
        // A service that ends before shutdown was asked for has failed: stop the rest.
        if !shutdown.is_cancelled() {
            shutdown.cancel();
            failed = true;
        }
        failed |= report(joined);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report(joined: Result<(String, anyhow::Result<()>), tokio::task::JoinError>) -> bool {
    match joined {
        Ok((_, Ok(()))) => false,
        Ok((name, Err(e))) => {
            eprintln!("error: {name} failed: {e:#}");
            true
        }
        Err(e) => {
            eprintln!("error: a service panicked: {e}");
            true
        }
    }
}

pub async fn serve(
    config_file: Option<&Path>,
    names: &[String],
    playbooks: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = with_playbooks(Config::load(config_file)?, playbooks)?;
    let _telemetry = redress_platform::telemetry::init("redress", &config.settings.telemetry)?;
    let shutdown = redress_platform::shutdown::on_signals();
    let mut unique = names.to_vec();
    unique.dedup();
    run_services(
        config,
        &unique,
        shutdown,
        redress_platform::clock::system(),
        true,
    )
    .await
}

/// The configuration with `--playbooks DIR` on top, once the directory is known to load: a
/// stack refuses to start on playbooks it cannot run, naming the directory.
pub fn with_playbooks(config: Config, dir: Option<&Path>) -> anyhow::Result<Config> {
    let Some(dir) = dir else {
        return Ok(config);
    };
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("playbooks directory {}", dir.display()))?;
    let loaded = redress_playbook::Playbooks::load_dir(&dir)
        .with_context(|| format!("playbooks directory {}", dir.display()))?;
    println!(
        "playbooks: {} from {}",
        loaded
            .iter()
            .map(|p| p.key.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        dir.display()
    );
    Ok(config.merged(serde_json::json!({ "playbooks": { "dir": dir } }))?)
}
