//! A unit of work: one transaction in which a service records what it has seen (inbox),
//! changes its state and writes the events that change causes (outbox); committing it wakes
//! the relay. Every event handler and every command of every service runs in one, so the
//! inbox → state → outbox → commit → wake sequence is written here and nowhere else.

use redress_proto::subjects::Subjects;
use redress_proto::v1::Envelope;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::health::Metrics;
use crate::outbox::{Outgoing, Waker};

/// A service's database and its outbox relay's waker: what a unit of work needs. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    pub pool: PgPool,
    schema: &'static str,
    subjects: Subjects,
    waker: Waker,
    metrics: Metrics,
    /// The largest message the broker takes, less room for headers.
    max_message: usize,
}

/// Room left for a message's headers (`Nats-Msg-Id`, trace context) under the broker's
/// `max_payload`.
const HEADER_ROOM: usize = 4096;

/// Why a unit could not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A message the unit would publish is larger than the broker takes: published, it would
    /// block the relay; so nothing of the unit is kept.
    #[error("a message on {subject} would be {size} bytes, more than the broker's {max}")]
    TooLarge {
        subject: String,
        size: usize,
        max: usize,
    },
}

impl CommitError {
    /// Whether trying again can help.
    pub fn is_permanent(&self) -> bool {
        match self {
            CommitError::Db(e) => crate::db::is_permanent(e),
            CommitError::TooLarge { .. } => true,
        }
    }
}

impl Store {
    pub fn new(
        pool: PgPool,
        schema: &'static str,
        subjects: Subjects,
        waker: Waker,
        metrics: Metrics,
        max_payload: usize,
    ) -> Self {
        Self {
            pool,
            schema,
            subjects,
            waker,
            metrics,
            max_message: max_payload.saturating_sub(HEADER_ROOM),
        }
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Starts a unit of work.
    pub async fn begin(&self) -> sqlx::Result<Unit> {
        Ok(Unit {
            tx: self.pool.begin().await?,
            store: self.clone(),
            outgoing: Vec::new(),
            counts: Vec::new(),
        })
    }

    pub fn schema(&self) -> &'static str {
        self.schema
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// One transaction with the messages it will publish and the counters it will bump, both
/// only if it commits.
pub struct Unit {
    tx: Transaction<'static, Postgres>,
    store: Store,
    outgoing: Vec<Outgoing>,
    counts: Vec<(String, u64)>,
}

impl Unit {
    /// The transaction, for the service's own statements.
    pub fn db(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `message_id` as handled; false when it was handled before, in which case the
    /// caller changes nothing. A concurrent unit holding the same id makes this wait until it
    /// commits (then false) or rolls back (then true).
    pub async fn first_time(&mut self, message_id: &str) -> sqlx::Result<bool> {
        crate::inbox::record(&mut self.tx, message_id).await
    }

    /// Publishes `envelope` on its catalogue subject after commit, with the event id as
    /// `Nats-Msg-Id` and the current span's trace context.
    pub fn emit(&mut self, envelope: Envelope) {
        self.outgoing
            .push(crate::events::outgoing(&self.store.subjects, &envelope));
    }

    /// Publishes a message that is not an event (a notification to a complainant) after
    /// commit.
    pub fn send(&mut self, subject: String, msg_id: String, message: &impl prost::Message) {
        self.outgoing
            .push(Outgoing::new(subject, msg_id, message.encode_to_vec()));
    }

    /// Publishes `payload` as it is (a key-value entry, say) after commit.
    pub fn send_bytes(&mut self, subject: String, msg_id: String, payload: Vec<u8>) {
        self.outgoing.push(Outgoing::new(subject, msg_id, payload));
    }

    /// Adds `n` to the counter `name` once the unit commits.
    pub fn count(&mut self, name: impl Into<String>, n: u64) {
        self.counts.push((name.into(), n));
    }

    /// How many messages the unit will publish.
    pub fn emitted(&self) -> usize {
        self.outgoing.len()
    }

    /// Writes the messages to the outbox, commits, bumps the counters and wakes the relay.
    /// A message larger than the broker takes rolls the whole unit back.
    pub async fn commit(mut self) -> Result<(), CommitError> {
        if let Some(m) = self
            .outgoing
            .iter()
            .find(|m| m.payload.len() > self.store.max_message)
        {
            self.store
                .metrics
                .incr(&format!("{}_oversized_messages_total", self.store.schema));
            return Err(CommitError::TooLarge {
                subject: m.subject.clone(),
                size: m.payload.len(),
                max: self.store.max_message,
            });
        }
        if !self.outgoing.is_empty() {
            crate::outbox::enqueue(
                &mut self.tx,
                self.store.schema,
                &self.store.waker,
                &self.outgoing,
            )
            .await?;
        }
        self.tx.commit().await?;
        for (name, n) in self.counts {
            self.store.metrics.add(&name, n);
        }
        if !self.outgoing.is_empty() {
            self.store.waker.wake();
        }
        Ok(())
    }

    pub fn subjects(&self) -> &Subjects {
        &self.store.subjects
    }
}
