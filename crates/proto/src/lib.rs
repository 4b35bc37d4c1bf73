//! The contracts of Redress: Rust types generated from `proto/redress/v1`, and every NATS
//! subject, stream and consumer name (so no service spells a subject by hand).

// Generated code: replies carry either a full view or a small error, by design of the contract.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/redress.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every message above, to decode any of them by name.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub mod access;
pub mod catalogue;
pub mod replies;
pub mod subjects;
pub mod time;
pub mod types;

pub use catalogue::EventKind;

pub use prost::Message;
