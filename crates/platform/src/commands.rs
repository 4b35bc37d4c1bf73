//! Request/reply commands through the NATS services API (discoverable with `$SRV.PING`,
//! `$SRV.INFO`, `$SRV.STATS`). Every instance of a service joins the same queue group, so a
//! request goes to exactly one of them.

use std::future::Future;
use std::sync::Arc;

use async_nats::service::endpoint::Endpoint;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::shutdown::Shutdown;

/// Answers requests on `endpoint` with `handler` until `shutdown`, up to `concurrency` at once.
/// The handler always produces a reply body (a protobuf result or typed error), so a caller
/// never waits for a reply that will not come.
pub async fn serve<F, Fut>(
    mut endpoint: Endpoint,
    concurrency: usize,
    shutdown: Shutdown,
    handler: F,
) where
    F: Fn(async_nats::Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Bytes> + Send + 'static,
{
    let handler = Arc::new(handler);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    loop {
        let request = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = endpoint.next() => match r { Some(r) => r, None => break },
        };
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = handler(request.message.clone()).await;
            if let Err(e) = request.respond(Ok(reply)).await {
                tracing::warn!(error = %e, "could not send a reply");
            }
        });
    }
    let _ = permits.acquire_many(concurrency.max(1) as u32).await;
}

/// Returns once the server has processed every subscription this connection made so far.
/// The server reads a connection's protocol in order, so an answered request sent after the
/// subscriptions proves they are in place; `flush` alone only empties our socket buffer.
pub async fn confirm_subscriptions(
    client: &async_nats::Client,
    service_name: &str,
) -> anyhow::Result<()> {
    let subject = format!("$SRV.PING.{service_name}");
    for _ in 0..50 {
        match tokio::time::timeout(
            std::time::Duration::from_secs(2),
            client.request(subject.clone(), Bytes::new()),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    anyhow::bail!("{service_name} cannot reach its own endpoints through the broker")
}
