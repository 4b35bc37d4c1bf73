//! Postgres: each service owns one schema and reaches it through its own role, which can
//! touch nothing else. A service provisions that role and schema itself when it is given a
//! URL that may create roles (the stack runner and tests do so), or uses the URL an operator
//! gave it for that service.

use std::str::FromStr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool};

use crate::config::DatabaseSettings;
use crate::service::ServiceIdent;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL for {service}: {source}")]
    Url {
        service: String,
        source: sqlx::Error,
    },
    #[error("cannot provision role and schema for {service}: {source}")]
    Provision {
        service: String,
        source: sqlx::Error,
    },
    #[error("cannot connect {service} to Postgres: {source}")]
    Connect {
        service: String,
        source: sqlx::Error,
    },
    #[error("migrations of {service} failed: {source}")]
    Migrate {
        service: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("plumbing tables of {service}: {source}")]
    Plumbing {
        service: String,
        source: sqlx::Error,
    },
}

/// The role a service logs in as.
pub fn role_name(ident: &ServiceIdent) -> String {
    format!("redress_{}", ident.schema)
}

fn url_password(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw)
        .unwrap_or("")
}

/// A service role's password, derived so every instance and every restart agree on it
/// without storing it anywhere.
pub fn role_password(settings: &DatabaseSettings, ident: &ServiceIdent) -> SecretString {
    let secret = match &settings.role_secret {
        Some(s) => s.expose_secret().to_string(),
        None => url_password(settings.url.expose_secret()).to_string(),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"redress-postgres-role:");
    mac.update(role_name(ident).as_bytes());
    hex::encode(mac.finalize().into_bytes()).into()
}

/// Creates (or repairs) the service's role and schema. Idempotent, and safe when several
/// services or instances run it at once.
pub async fn provision(settings: &DatabaseSettings, ident: &ServiceIdent) -> Result<(), DbError> {
    let err = |source| DbError::Provision {
        service: ident.name.to_string(),
        source,
    };
    let options = PgConnectOptions::from_str(settings.url.expose_secret()).map_err(|source| {
        DbError::Url {
            service: ident.name.to_string(),
            source,
        }
    })?;
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(err)?;
    let role = role_name(ident);
    let schema = ident.schema;
    let password = role_password(settings, ident);
    // Roles are cluster-wide, so creating one can race with a provisioner in another database:
    // a lost race shows up as a unique violation and is simply retried.
    for attempt in 0.. {
        let result = async {
            let mut tx = conn.begin().await?;
            tx.execute("SELECT pg_advisory_xact_lock(7245031)").await?;
            tx.execute(
                format!(
                    "DO $$ BEGIN
                       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                         CREATE ROLE {role} LOGIN;
                       END IF;
                     END $$;"
                )
                .as_str(),
            )
            .await?;
            tx.execute(
                format!(
                    "ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                     PASSWORD '{}'",
                    password.expose_secret()
                )
                .as_str(),
            )
            .await?;
            tx.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}").as_str())
                .await?;
            tx.execute(format!("ALTER SCHEMA {schema} OWNER TO {role}").as_str())
                .await?;
            // Nobody else may use the schema, and nobody may use the shared public schema.
            tx.execute(format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC").as_str())
                .await?;
            tx.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC").await?;
            tx.execute(format!("ALTER ROLE {role} SET search_path = {schema}").as_str())
                .await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => break,
            Err(sqlx::Error::Database(e))
                if attempt < 5 && matches!(e.code().as_deref(), Some("23505" | "42710")) =>
            {
                continue;
            }
            Err(e) => return Err(err(e)),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// Connection options for a service: its own URL if configured, otherwise its provisioned
/// role on the server of `settings.url`. The search path is always the service's schema.
pub fn service_options(
    settings: &DatabaseSettings,
    ident: &ServiceIdent,
) -> Result<PgConnectOptions, DbError> {
    let url_err = |source| DbError::Url {
        service: ident.name.to_string(),
        source,
    };
    let options = match settings.urls.get(ident.name) {
        Some(url) => PgConnectOptions::from_str(url.expose_secret()).map_err(url_err)?,
        None => PgConnectOptions::from_str(settings.url.expose_secret())
            .map_err(url_err)?
            .username(&role_name(ident))
            .password(role_password(settings, ident).expose_secret()),
    };
    // Services run a small, fixed set of statements whose best plan does not depend on the
    // parameter values; batch statements over unnest($n) would otherwise be planned afresh on
    // every call (custom plans), which costs more than the work itself. Every one of them
    // looks rows up by an index; but a generic plan is made once per connection, and one made
    // while a table was still empty chose sequential scans and kept them as the table grew
    // (measured: 3 million rows read for 11,000 complaints in a fresh stack's first burst).
    // Without sequential scans the planner takes the index whatever the table's size then,
    // and still scans where no index serves.
    //
    // JIT off: with sequential scans disabled, a statement that must still scan (a one-row
    // table, say) is costed above `jit_above_cost` whatever its size, and PostgreSQL then
    // compiled it with LLVM on every execution: 59 ms of CPU for analytics' one-row
    // `UPDATE origin` each second (measured with pg_stat_statements' `jit_*` columns).
    // No statement of ours runs long enough for compiled expressions to pay back.
    let statement = settings.statement_timeout_ms.to_string();
    let lock = settings.lock_timeout_ms.to_string();
    let idle = settings.idle_in_transaction_timeout_ms.to_string();
    Ok(options
        .options([
            ("search_path", ident.schema),
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
            ("jit", "off"),
            ("statement_timeout", statement.as_str()),
            ("lock_timeout", lock.as_str()),
            ("idle_in_transaction_session_timeout", idle.as_str()),
        ])
        .application_name(&format!("redress-{}", ident.name)))
}

/// Provisions when configured to, then opens the service's pool, retrying while the
/// database is not reachable yet.
pub async fn connect(settings: &DatabaseSettings, ident: &ServiceIdent) -> Result<PgPool, DbError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            if settings.provision && !settings.urls.contains_key(ident.name) {
                provision(settings, ident).await?;
            }
            PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
                .connect_with(service_options(settings, ident)?)
                .await
                .map_err(|source| DbError::Connect {
                    service: ident.name.to_string(),
                    source,
                })
        }
        .await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(e @ DbError::Url { .. }) => return Err(e),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "Postgres not reachable yet, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Tables every service has: the inbox (messages already handled) and the outbox (events
/// written in the same transaction as the state change, published by the relay). Written to
/// be re-run at every start; a change here must stay backwards compatible.
const PLUMBING: &str = "
CREATE TABLE IF NOT EXISTS inbox (
    message_id  text PRIMARY KEY,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS inbox_handled_at ON inbox (handled_at);
CREATE TABLE IF NOT EXISTS outbox (
    seq         bigserial PRIMARY KEY,
    msg_id      text NOT NULL UNIQUE,
    subject     text NOT NULL,
    payload     bytea NOT NULL,
    traceparent text,
    tracestate  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The first successful reply to each command id, returned again when the command is resent.
CREATE TABLE IF NOT EXISTS command_replies (
    command_id  text PRIMARY KEY,
    reply       bytea,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
-- SHA-256 of what the command asked for: a reused id with another request is refused.
ALTER TABLE command_replies ADD COLUMN IF NOT EXISTS fingerprint text NOT NULL DEFAULT '';
-- Which playbook versions this service has loaded, with its own part of each.
CREATE TABLE IF NOT EXISTS playbook_versions (
    key         text NOT NULL,
    version     text NOT NULL,
    section     jsonb NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);
-- A row the broker keeps refusing while reachable is set aside after a few attempts, so it
-- never holds back the rows behind it; `redress ops stuck` lists them.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS stuck_reason text;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS stuck_at timestamptz;
-- Every outbox row is deleted soon after it is written: vacuum it often, or the relay's scan
-- wades through dead rows and publishing slows down under load.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                        autovacuum_vacuum_cost_delay = 0);
";

/// Creates the plumbing tables, then runs the service's own embedded migrations. Migration
/// bookkeeping lands in the service's schema because the search path points there. Several
/// instances starting at once take turns: `CREATE TABLE IF NOT EXISTS` is not safe against a
/// concurrent twin (both can pass the check and collide in the catalog).
pub async fn migrate(
    pool: &PgPool,
    ident: &ServiceIdent,
    migrator: &Migrator,
) -> Result<(), DbError> {
    let plumbing = |source| DbError::Plumbing {
        service: ident.name.to_string(),
        source,
    };
    let key = format!("redress-plumbing:{}", ident.schema);
    let mut conn = pool.acquire().await.map_err(plumbing)?;
    // Waiting for a twin's migration, or a long one, is not a stuck statement: no timeouts on
    // this connection until it is done (RESET brings back the session's configured values).
    conn.execute("SET statement_timeout = 0; SET lock_timeout = 0")
        .await
        .map_err(plumbing)?;
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await
        .map_err(plumbing)?;
    let created = conn.execute(PLUMBING).await.map(|_| ());
    // A failed unlock only matters until the connection closes, which drops the lock.
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&key)
        .execute(&mut *conn)
        .await;
    created.map_err(plumbing)?;
    // The migrator takes its own advisory lock.
    let migrated = migrator
        .run_direct(&mut *conn)
        .await
        .map_err(|source| DbError::Migrate {
            service: ident.name.to_string(),
            source,
        });
    if conn
        .execute("RESET statement_timeout; RESET lock_timeout")
        .await
        .is_err()
    {
        // Never hand the pool a connection without its timeouts.
        conn.detach();
    }
    migrated
}

/// Records that this service loaded `version` of playbook `key`, keeping its own part of it,
/// so that a decision can be traced to the exact rules that made it.
pub async fn record_playbook(
    pool: &PgPool,
    key: &str,
    version: &str,
    section: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO playbook_versions (key, version, section) VALUES ($1, $2, $3)
         ON CONFLICT (key, version) DO NOTHING",
    )
    .bind(key)
    .bind(version)
    .bind(section)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a database error will fail the same way however often it is retried: bad data
/// (SQLSTATE class 22, such as U+0000 in text or a date out of range), a broken constraint
/// (23) or a program limit (54, such as an index key too large), and values that cannot be
/// encoded or decoded. Anything else (the connection, a deadlock, a serialisation failure, a
/// timeout) may pass.
pub fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("54")),
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_comes_from_the_url_when_no_secret_is_set() {
        assert_eq!(url_password("postgres://admin:s3cret@h:5/db"), "s3cret");
        assert_eq!(url_password("postgres://admin@h:5/db"), "");
        assert_eq!(url_password("postgres://h/db"), "");
    }
}
