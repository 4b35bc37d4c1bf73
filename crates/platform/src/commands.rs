//! Request/reply commands through the NATS services API (discoverable with `$SRV.PING`,
//! `$SRV.INFO`, `$SRV.STATS`). Every instance of a service joins the same queue group, so a
//! request goes to exactly one of them.
//!
//! A command is served by [`CommandService::command`]: the kit decodes it, opens its span
//! (`<service>.<verb>`, continuing the caller's trace), runs the handler and answers with its
//! result or a typed [`Refusal`]. A command that changes state runs in a [`CommandUnit`]:
//! claim the command id, change state, emit events, store the reply, commit.

use std::future::Future;
use std::sync::Arc;

use async_nats::service::endpoint::Endpoint;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;

use redress_proto::replies::CommandReply;
use redress_proto::v1::{CommandError, CommandErrorCode};
use tracing::Instrument;

use crate::shutdown::Shutdown;
use crate::unit::{Store, Unit};

/// Why a command was refused: a code, the field at fault and a message for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} {field}: {message}")]
pub struct Refusal {
    pub code: CommandErrorCode,
    pub field: String,
    pub message: String,
}

impl Refusal {
    pub fn new(code: CommandErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn missing(field: &str, message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::Missing, field, message)
    }

    pub fn malformed(field: &str, message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::Malformed, field, message)
    }

    pub fn not_found(field: &str, message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::NotFound, field, message)
    }

    pub fn forbidden(field: &str, message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::Forbidden, field, message)
    }

    pub fn wrong_state(field: &str, message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::WrongState, field, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::Internal, "", message)
    }

    /// Refuses when `value` is blank.
    pub fn require(field: &str, value: &str) -> Result<(), Refusal> {
        if value.trim().is_empty() {
            return Err(Self::missing(field, format!("{field} is required")));
        }
        Ok(())
    }

    /// Refuses free text longer than `max_bytes`, or holding control characters other than
    /// newline and tab (U+0000 cannot even be stored).
    pub fn text(field: &str, value: &str, max_bytes: usize) -> Result<(), Refusal> {
        if value.len() > max_bytes {
            return Err(Self::malformed(
                field,
                format!("at most {max_bytes} bytes, got {}", value.len()),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
        {
            return Err(Self::malformed(
                field,
                "control characters other than newline and tab are not allowed",
            ));
        }
        Ok(())
    }

    /// Refuses a short identifying value (an id, a name, a ticket) longer than `max_bytes` or
    /// holding whitespace inside or control characters.
    pub fn token(field: &str, value: &str, max_bytes: usize) -> Result<(), Refusal> {
        let v = value.trim();
        if v.len() > max_bytes {
            return Err(Self::malformed(field, format!("at most {max_bytes} bytes")));
        }
        if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Self::malformed(field, "no spaces or control characters"));
        }
        Ok(())
    }
}

impl From<Refusal> for CommandError {
    fn from(r: Refusal) -> Self {
        CommandError {
            code: r.code as i32,
            field: r.field,
            message: r.message,
        }
    }
}

/// A storage failure: logged with its cause, answered as "try again" (the command's claim
/// rolled back with it, so the same id may be sent again). Values the database refuses for
/// good are answered as malformed.
impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_permanent(&e) {
            tracing::warn!(error = %e, "command refused by the database");
            return Refusal::malformed("", "a value of this command cannot be stored");
        }
        tracing::error!(error = %e, "command failed");
        Refusal::internal("storage unavailable, try again")
    }
}

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
        crate::telemetry::spawn(async move {
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

impl From<crate::unit::CommitError> for Refusal {
    fn from(e: crate::unit::CommitError) -> Self {
        match e {
            crate::unit::CommitError::Db(e) => e.into(),
            too_large => {
                tracing::warn!(error = %too_large, "command refused");
                Refusal::malformed(
                    "",
                    format!("the command's result is too large: {too_large}"),
                )
            }
        }
    }
}

/// A command claimed for the first time, in its own unit of work.
pub struct CommandUnit {
    unit: Unit,
    command_id: String,
}

/// What claiming a command id found.
pub enum Claimed<R> {
    /// First time: run it in this unit, then [`CommandUnit::finish`].
    New(CommandUnit),
    /// The same command was handled before: answer with its stored reply.
    Done(R),
}

impl Store {
    /// Claims `command_id` for `request` (what identifies the command besides its id: verb
    /// and encoded body) in a new unit of work. An id used before for another request is
    /// refused.
    pub async fn claim<R: CommandReply>(
        &self,
        command_id: &str,
        request: &[u8],
    ) -> Result<Claimed<R>, Refusal> {
        Refusal::require("command_id", command_id)?;
        Refusal::token("command_id", command_id, crate::nats::MAX_MESSAGE_ID_BYTES)?;
        let mut unit = self.begin().await?;
        match claim(unit.db(), command_id, request).await? {
            Claim::New => Ok(Claimed::New(CommandUnit {
                unit,
                command_id: command_id.to_string(),
            })),
            Claim::Done(reply) => Ok(Claimed::Done(R::decode(reply.as_slice()).map_err(|e| {
                Refusal::internal(format!("the stored reply cannot be read: {e}"))
            })?)),
            Claim::Conflict => Err(Refusal::malformed(
                "command_id",
                "this command_id was already used for a different command",
            )),
        }
    }
}

impl std::ops::Deref for CommandUnit {
    type Target = Unit;
    fn deref(&self) -> &Unit {
        &self.unit
    }
}

impl std::ops::DerefMut for CommandUnit {
    fn deref_mut(&mut self) -> &mut Unit {
        &mut self.unit
    }
}

impl CommandUnit {
    /// Stores `reply` as the answer to this command id and commits the unit.
    pub async fn finish<R: CommandReply>(mut self, reply: R) -> Result<R, Refusal> {
        finish(self.unit.db(), &self.command_id, &reply.encode_to_vec()).await?;
        self.unit.commit().await?;
        Ok(reply)
    }
}

/// A service's commands as one NATS service (`$SRV` discoverable) whose endpoints share the
/// service's command group, each answered by [`serve`]; stops them all together.
pub struct CommandService {
    /// The service's own name (`routing`), for span names and counters.
    service: String,
    name: String,
    service_handle: async_nats::service::Service,
    group: async_nats::service::Group,
    concurrency: usize,
    shutdown: Shutdown,
    metrics: crate::health::Metrics,
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
            service: service.to_string(),
            name,
            service_handle: nats_service,
            group,
            concurrency: ctx.config.settings.consumer.concurrency,
            shutdown: ctx.shutdown.clone(),
            metrics: ctx.metrics.clone(),
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
        self.tasks.push(crate::telemetry::spawn(serve(
            endpoint,
            self.concurrency,
            self.shutdown.clone(),
            handler,
        )));
        Ok(())
    }

    /// Serves the command `C` on `<group>.<subject>` under the endpoint name `verb`: decodes
    /// it (an undecodable request is refused as such), runs `handler` in the span
    /// `<service>.<what>` (what happened, such as `work.accept`) continuing the sender's
    /// trace, and answers with its reply or its refusal, which is logged and counted.
    pub async fn command<C, R, F, Fut>(
        &mut self,
        verb: &'static str,
        subject: &str,
        what: &'static str,
        handler: F,
    ) -> anyhow::Result<()>
    where
        C: prost::Message + Default + 'static,
        R: CommandReply,
        F: Fn(C, async_nats::Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Refusal>> + Send + 'static,
    {
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        let handler = Arc::new(handler);
        self.endpoint(verb, subject, move |message| {
            let handler = handler.clone();
            let service = service.clone();
            let metrics = metrics.clone();
            let span = tracing::info_span!(
                "command",
                otel.name = %format_args!("{service}.{what}"),
                redress.service = %service,
                verb,
                subject = %message.subject,
                ticket = tracing::field::Empty,
            );
            crate::telemetry::set_parent_from_headers(&span, message.headers.as_ref());
            async move {
                let result = match C::decode(message.payload.clone()) {
                    Err(e) => Err(Refusal::new(
                        CommandErrorCode::Undecodable,
                        "",
                        format!("not a {}: {e}", std::any::type_name::<C>().rsplit("::").next().unwrap_or("command")),
                    )),
                    Ok(command) => handler(command, message).await,
                };
                let reply = match result {
                    Ok(reply) => reply,
                    Err(refusal) => {
                        metrics.incr(&format!(
                            "{service}_commands_refused_total{{verb=\"{verb}\",code=\"{}\",field=\"{}\"}}",
                            refusal.code.as_str_name(),
                            refusal.field
                        ));
                        tracing::info!(field = %refusal.field, message = %refusal.message, code = refusal.code.as_str_name(), "command refused");
                        R::refused(refusal.into())
                    }
                };
                Bytes::from(reply.encode_to_vec())
            }
            .instrument(span)
        })
        .await
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
        let _ = self.service_handle.stop().await;
    }
}
