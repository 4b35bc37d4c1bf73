//! Plumbing every Redress service stands on. A service crate uses these pieces and nothing
//! from another service: configuration, telemetry, NATS/JetStream, Postgres with the
//! inbox/outbox, the clock, shutdown and the health probe.

pub mod clock;
pub mod config;
pub mod db;
pub mod envelope;
pub mod events;
pub mod health;
pub mod inbox;
pub mod nats;
pub mod outbox;
pub mod people;
pub mod playbooks;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod tokens;
pub mod unit;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::{Config, Settings};
/// Complaint text sealed on the event stream (shared with the SDK, which opens it too).
pub use redress_client::sealed;
pub use service::{Host, ServiceContext, ServiceIdent};
pub use shutdown::Shutdown;
pub use unit::{Store, Unit};
pub mod commands;
