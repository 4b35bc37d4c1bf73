//! Liveness, readiness and counters, served over HTTP when `health.addr` is set:
//! `/healthz` (the process runs), `/readyz` (every part reported ready and NATS is connected),
//! `/metrics` (counters in the Prometheus text format).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

/// Named counters, cheap to clone and to bump from any task.
#[derive(Clone, Default)]
pub struct Metrics {
    counters: Arc<Mutex<BTreeMap<String, Arc<AtomicU64>>>>,
}

impl Metrics {
    pub fn counter(&self, name: &str) -> Arc<AtomicU64> {
        self.counters
            .lock()
            .expect("metrics poisoned")
            .entry(metric_name(name))
            .or_default()
            .clone()
    }

    pub fn incr(&self, name: &str) {
        self.counter(name).fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, name: &str, n: u64) {
        self.counter(name).fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, name: &str) -> u64 {
        self.counter(name).load(Ordering::Relaxed)
    }

    pub fn render(&self) -> String {
        let counters = self.counters.lock().expect("metrics poisoned");
        let mut out = String::new();
        let mut family = "";
        // BTreeMap order keeps every label set of one family together, under one TYPE line.
        for (name, value) in counters.iter() {
            let (base, labels) = match name.split_once('{') {
                Some((b, l)) => (b, format!("{{{l}")),
                None => (name.as_str(), String::new()),
            };
            if base != family {
                out.push_str(&format!("# TYPE redress_{base} counter\n"));
                family = base;
            }
            out.push_str(&format!(
                "redress_{base}{labels} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Readiness of the parts of a process; the process is ready when all registered parts are.
#[derive(Clone)]
pub struct Health {
    parts: Arc<Mutex<BTreeMap<String, bool>>>,
    changed: watch::Sender<()>,
    nats: Arc<Mutex<Option<async_nats::Client>>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            parts: Default::default(),
            changed: watch::channel(()).0,
            nats: Default::default(),
        }
    }
}

impl Health {
    /// Declares a part that must become ready.
    pub fn register(&self, part: &str) {
        self.parts
            .lock()
            .expect("health poisoned")
            .entry(part.to_string())
            .or_insert(false);
        self.changed.send_replace(());
    }

    pub fn set_ready(&self, part: &str, ready: bool) {
        self.parts
            .lock()
            .expect("health poisoned")
            .insert(part.to_string(), ready);
        self.changed.send_replace(());
    }

    pub fn watch_nats(&self, client: async_nats::Client) {
        *self.nats.lock().expect("health poisoned") = Some(client);
    }

    pub fn not_ready(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .parts
            .lock()
            .expect("health poisoned")
            .iter()
            .filter(|(_, r)| !**r)
            .map(|(p, _)| p.clone())
            .collect();
        if let Some(c) = self.nats.lock().expect("health poisoned").as_ref()
            && c.connection_state() != async_nats::connection::State::Connected
        {
            out.push("nats".into());
        }
        out
    }

    /// Waits until every registered part is ready.
    pub async fn wait_ready(&self) {
        let mut rx = self.changed.subscribe();
        loop {
            let all = {
                let parts = self.parts.lock().expect("health poisoned");
                !parts.is_empty() && parts.values().all(|r| *r)
            };
            if all {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Metrics,
}

/// Serves the probe until `shutdown`; returns the bound address (useful with port 0).
pub async fn serve(
    addr: &str,
    health: Health,
    metrics: Metrics,
    shutdown: crate::Shutdown,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move {
                let missing = s.health.not_ready();
                if missing.is_empty() {
                    (StatusCode::OK, "ready\n".to_string())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n", missing.join(", ")),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move { s.metrics.render() }),
        )
        .with_state(AppState { health, metrics });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(bound)
}

/// Prometheus allows no `-` in a metric name, and service names have them (`sla-timer`); the
/// labels after `{` are left as they are.
fn metric_name(name: &str) -> String {
    match name.split_once('{') {
        Some((family, labels)) => format!("{}{{{labels}", family.replace('-', "_")),
        None => name.replace('-', "_"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_lose_dashes_but_labels_keep_them() {
        let m = Metrics::default();
        m.incr("sla-timer_retries_total");
        m.incr("sla-timer_refused_total{field=\"a-b\"}");
        assert_eq!(m.get("sla_timer_retries_total"), 1);
        let text = m.render();
        assert!(
            text.contains("redress_sla_timer_refused_total{field=\"a-b\"} 1"),
            "{text}"
        );
        assert!(!text.contains("sla-timer"), "{text}");
    }

    #[test]
    fn one_type_line_per_family() {
        let m = Metrics::default();
        m.incr("x_total{code=\"a\"}");
        m.incr("x_total{code=\"b\"}");
        m.incr("y_total");
        let text = m.render();
        assert_eq!(text.matches("# TYPE redress_x_total counter").count(), 1);
        assert!(text.contains("redress_x_total{code=\"b\"} 1\n"));
        assert!(text.contains("redress_y_total 1\n"));
    }
}
