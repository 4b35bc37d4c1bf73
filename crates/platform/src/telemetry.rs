//! Logs and traces. Logs go to stderr (stdout is left to command output) as JSON or pretty text, filtered `RUST_LOG`-style;
//! spans are always given OpenTelemetry ids (so trace context can be passed on through NATS
//! headers) and are exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetrySettings};

pub use redress_client::trace::{extract_context, inject_context, set_parent_from_headers};

/// The target of the one-per-complaint outcome events ("classified", "assigned"). They always
/// reach the complaint's trace; the default log filter leaves them out of the log, where at
/// a burst's rate they were two formatted lines per complaint (thousands a second) repeating
/// what the events and the trace already hold. `RUST_LOG=info` (or the filter
/// `info,redress::outcome=info`) logs them.
pub const OUTCOME: &str = "redress::outcome";

/// The log filter when neither `RUST_LOG` nor `telemetry.filter` says otherwise.
pub const DEFAULT_FILTER: &str = "info,redress::outcome=warn";

/// Flushes buffered spans when dropped; keep it alive for the life of the process.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

/// Builds the subscriber without installing it, so tests can install their own variant.
pub fn get_subscriber(
    name: &str,
    settings: &TelemetrySettings,
) -> anyhow::Result<(Box<dyn Subscriber + Send + Sync>, TelemetryGuard)> {
    let filter =
        EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&settings.filter))?;
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(name.to_string())
            .build(),
    );
    if otlp_configured() {
        // The exporter reads the endpoint, headers and timeout from the OTEL_* variables.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    // Spans feed OpenTelemetry whatever the log filter says: a quiet log level must not cut
    // a complaint's trace (or its traceparent on outgoing messages) short.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(name.to_string()))
        .with_filter(LevelFilter::INFO);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match settings.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let subscriber: Box<dyn Subscriber + Send + Sync> =
        Box::new(Registry::default().with(logs).with(otel));
    Ok((subscriber, TelemetryGuard { provider }))
}

pub fn init_subscriber(subscriber: Box<dyn Subscriber + Send + Sync>) -> anyhow::Result<()> {
    tracing::subscriber::set_global_default(subscriber)?;
    Ok(())
}

/// Installs telemetry for a process; returns the guard to hold until exit.
pub fn init(name: &str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    let (subscriber, guard) = get_subscriber(name, settings)?;
    init_subscriber(subscriber)?;
    Ok(guard)
}

/// A subscriber of its own for one service, reporting `service.name = <service>`: several
/// services in one process (`redress up`) each appear under their own name in a trace
/// backend. Run the service's future with it (`WithSubscriber::with_subscriber`); the
/// platform spawns its tasks with the current subscriber, so they keep it.
pub fn service_dispatch(
    service: &str,
    settings: &TelemetrySettings,
) -> anyhow::Result<(tracing::Dispatch, TelemetryGuard)> {
    let (subscriber, guard) = get_subscriber(service, settings)?;
    Ok((tracing::Dispatch::new(subscriber), guard))
}

/// `tokio::spawn` that keeps the current subscriber (the service's own, see
/// [`service_dispatch`]) in the spawned task.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::instrument::WithSubscriber as _;
    tokio::spawn(future.with_current_subscriber())
}

/// For format checks in logs: the trace id of the current span, if any.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
