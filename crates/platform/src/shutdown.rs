//! One shutdown signal that every task selects on.

use tokio_util::sync::CancellationToken;

pub type Shutdown = CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn on_signals() -> Shutdown {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
        t.cancel();
    });
    token
}
