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

/// Records every id of a batch as handled in one statement and returns those seen for the
/// first time. Ids are inserted in sorted order, so two batches sharing ids wait on each
/// other instead of deadlocking.
pub async fn record_all(
    conn: &mut PgConnection,
    message_ids: &[&str],
) -> sqlx::Result<std::collections::HashSet<String>> {
    let mut sorted: Vec<&str> = message_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let new: Vec<String> = sqlx::query_scalar(
        "INSERT INTO inbox (message_id) SELECT * FROM unnest($1::text[]) ORDER BY 1
         ON CONFLICT DO NOTHING RETURNING message_id",
    )
    .bind(&sorted)
    .fetch_all(conn)
    .await?;
    Ok(new.into_iter().collect())
}

/// Forgets ids recorded in this transaction (of messages that were dead-lettered instead of
/// handled, so that a replay from the dead letters is handled).
pub async fn forget(conn: &mut PgConnection, message_ids: &[&str]) -> sqlx::Result<()> {
    if message_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM inbox WHERE message_id = ANY($1)")
        .bind(message_ids)
        .execute(conn)
        .await?;
    Ok(())
}
