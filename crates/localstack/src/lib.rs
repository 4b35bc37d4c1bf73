//! A private nats-server and PostgreSQL, started from the binaries installed on the machine,
//! on ports nobody else uses. The stack runner keeps their data in its data directory; the
//! test harness keeps it in a temporary one and kills and restarts them for fault tests.

mod nats;
mod postgres;
mod process;
mod tls;

pub use nats::{Durability, NatsServer, NatsUser, find_server, reconfigure, version_of};
pub use postgres::{PostgresServer, PostgresSpec};
pub use process::free_port;
pub use tls::{TlsFiles, make_certs};

#[derive(Debug, thiserror::Error)]
pub enum LocalStackError {
    #[error("{0} not found; install it (see the README) or point {1} at a running server")]
    BinaryMissing(&'static str, &'static str),
    #[error("{what} did not start within {secs}s; its log is at {log}")]
    NotReady {
        what: &'static str,
        secs: u64,
        log: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}
