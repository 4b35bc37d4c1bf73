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

/// Whether a command id was seen before.
pub enum Claim {
    /// First time: handle it, then [`finish`] in the same transaction.
    New,
    /// The same command was handled before: send this reply again.
    Done(Vec<u8>),
    /// The id was used before for a different command: refuse, never answer with another
    /// command's reply.
    Conflict,
}

/// Claims `command_id` inside the caller's transaction; `request` is what identifies the
/// command besides its id (verb and encoded body), so that a reused id cannot fetch the reply
/// of someone else's command or silently skip a different one. A concurrent handler of the
/// same id waits on the row until the first commits (then gets its reply) or rolls back (then
/// handles it itself). Only successful commands commit, so a refused command can be retried
/// with the same id once whatever refused it has changed.
pub async fn claim(
    conn: &mut sqlx::PgConnection,
    command_id: &str,
    request: &[u8],
) -> sqlx::Result<Claim> {
    use sha2::Digest as _;
    let fingerprint = hex::encode(sha2::Sha256::digest(request));
    let inserted = sqlx::query(
        "INSERT INTO command_replies (command_id, fingerprint) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(command_id)
    .bind(&fingerprint)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let (reply, stored): (Option<Vec<u8>>, String) =
        sqlx::query_as("SELECT reply, fingerprint FROM command_replies WHERE command_id = $1")
            .bind(command_id)
            .fetch_one(&mut *conn)
            .await?;
    if stored != fingerprint {
        return Ok(Claim::Conflict);
    }
    Ok(Claim::Done(reply.unwrap_or_default()))
}

/// Stores the reply of a claimed command, in the transaction of its state change.
pub async fn finish(
    conn: &mut sqlx::PgConnection,
    command_id: &str,
    reply: &[u8],
) -> sqlx::Result<()> {
    sqlx::query("UPDATE command_replies SET reply = $2 WHERE command_id = $1")
        .bind(command_id)
        .bind(reply)
        .execute(conn)
        .await?;
    Ok(())
}

/// A service's commands as one NATS service (`$SRV` discoverable) whose endpoints share the
/// service's command group, each answered by [`serve`]; stops them all together.
pub struct CommandService {
    name: String,
    service: async_nats::service::Service,
    group: async_nats::service::Group,
    concurrency: usize,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CommandService {
    pub async fn start(
        ctx: &crate::ServiceContext,
        service: &str,
        version: &str,
        description: &str,
    ) -> anyhow::Result<Self> {
        use async_nats::service::ServiceExt as _;
        let name = ctx.subjects.service_name(service);
        let nats_service = ctx
            .nats
            .service_builder()
            .description(description)
            .start(name.clone(), version.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("start NATS service {name}: {e}"))?;
        let group = nats_service.group(ctx.subjects.command_group(service));
        Ok(Self {
            name,
            service: nats_service,
            group,
            concurrency: ctx.config.settings.consumer.concurrency,
            shutdown: ctx.shutdown.clone(),
            tasks: Vec::new(),
        })
    }

    /// Answers `<group>.<subject>` (which may end in a wildcard) with `handler`, under the
    /// endpoint name `name`.
    pub async fn endpoint<F, Fut>(
        &mut self,
        name: &str,
        subject: &str,
        handler: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(async_nats::Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Bytes> + Send + 'static,
    {
        let endpoint = self
            .group
            .endpoint_builder()
            .name(name)
            .add(subject)
            .await
            .map_err(|e| anyhow::anyhow!("{name} endpoint of {}: {e}", self.name))?;
        self.tasks.push(tokio::spawn(serve(
            endpoint,
            self.concurrency,
            self.shutdown.clone(),
            handler,
        )));
        Ok(())
    }

    /// Returns once the broker routes requests to every endpoint added so far.
    pub async fn reachable(&self, client: &async_nats::Client) -> anyhow::Result<()> {
        confirm_subscriptions(client, &self.name).await
    }

    /// Waits for the endpoints to finish what they hold (after shutdown) and leaves `$SRV`.
    pub async fn stop(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.service.stop().await;
    }
}
