//! The inbox: which messages a service has already handled, recorded in the same
//! transaction as the state change they caused.

use sqlx::PgConnection;

/// Records `message_id` as handled. Returns `false` when it was handled before, in which case
/// the caller changes nothing and acknowledges. A concurrent handler of the same message
/// waits on the primary key until the first commits or rolls back.
pub async fn record(conn: &mut PgConnection, message_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("INSERT INTO inbox (message_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(message_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
