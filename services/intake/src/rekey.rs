//! Re-sealing what the master contact key seals (each complaint's data key, and names and
//! contacts stored before data keys) with the current key, so that a retired key can be
//! dropped from the configuration (`redress ops rekey`). Values are read and written in
//! batches, each in its own transaction with its rows locked, so registration goes on and
//! an interrupted run resumes where it stopped; a value already under the current key is
//! left alone.

use sqlx::Row;
use uuid::Uuid;

use crate::domain::crypto::ContactCipher;

/// Re-seals with `cipher`'s current key every complaint data key sealed with another, and
/// every name and contact from before data keys that is not sealed with the current key,
/// `batch` rows per transaction; returns how many rows changed.
pub async fn rekey(pool: &sqlx::PgPool, cipher: &ContactCipher, batch: i64) -> anyhow::Result<u64> {
    let current = i32::from(cipher.current_key_id());
    let mut changed = 0u64;
    // Data keys: a few bytes each, whatever the size of what they seal.
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT complaint_id, wrapped FROM complaint_keys WHERE key_id <> $1
             ORDER BY complaint_id LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(current)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            break;
        }
        for (id, wrapped) in &rows {
            let rewrapped = cipher
                .reseal(wrapped, id.as_bytes())?
                .unwrap_or_else(|| wrapped.clone());
            sqlx::query(
                "UPDATE complaint_keys SET wrapped = $2, key_id = $3 WHERE complaint_id = $1",
            )
            .bind(id)
            .bind(rewrapped)
            .bind(current)
            .execute(&mut *tx)
            .await?;
        }
        changed += rows.len() as u64;
        tx.commit().await?;
    }
    // Values sealed with a master key directly (before data keys existed).
    let prefix = {
        let mut p = vec![2u8];
        p.extend_from_slice(&cipher.current_key_id().to_be_bytes());
        p
    };
    let mut after = Uuid::nil();
    loop {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, complainant_name, contact FROM complaints
             WHERE id > $1
               AND ((substring(contact from 1 for 1) IN ('\\x01'::bytea, '\\x02'::bytea) AND substring(contact from 1 for 3) <> $2)
                    OR (substring(complainant_name from 1 for 1) IN ('\\x01'::bytea, '\\x02'::bytea)
                        AND substring(complainant_name from 1 for 3) <> $2))
             ORDER BY id LIMIT $3
             FOR UPDATE",
        )
        .bind(after)
        .bind(&prefix)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(changed);
        }
        for row in &rows {
            let id: Uuid = row.get("id");
            let aad = id.as_bytes();
            let name: Vec<u8> = row.get("complainant_name");
            let contact: Vec<u8> = row.get("contact");
            let name = cipher.reseal(&name, aad)?.unwrap_or(name);
            let contact = cipher.reseal(&contact, aad)?.unwrap_or(contact);
            sqlx::query("UPDATE complaints SET complainant_name = $2, contact = $3 WHERE id = $1")
                .bind(id)
                .bind(name)
                .bind(contact)
                .execute(&mut *tx)
                .await?;
            after = id;
        }
        changed += rows.len() as u64;
        tx.commit().await?;
    }
}

/// How many stored secrets each master key id seals (complaint data keys, and names and
/// contacts from before data keys), to see when a retired key is no longer used.
pub async fn key_use(pool: &sqlx::PgPool) -> anyhow::Result<Vec<(u16, i64)>> {
    let mut out: std::collections::BTreeMap<u16, i64> = Default::default();
    let keys: Vec<(i32, i64)> =
        sqlx::query_as("SELECT key_id, count(*) FROM complaint_keys GROUP BY 1")
            .fetch_all(pool)
            .await?;
    for (id, n) in keys {
        *out.entry(u16::try_from(id).unwrap_or(u16::MAX))
            .or_default() += n;
    }
    let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(
        "SELECT substring(v from 1 for 3), count(*) FROM (
             SELECT contact AS v FROM complaints UNION ALL
             SELECT complainant_name FROM complaints) s
         WHERE substring(v from 1 for 1) IN ('\\x01'::bytea, '\\x02'::bytea)
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    for (prefix, n) in rows {
        if let Some(id) = ContactCipher::key_id_of(&prefix) {
            *out.entry(id).or_default() += n;
        }
    }
    Ok(out.into_iter().collect())
}

/// A pool on `url` that works in intake's schema (for an administrator's URL).
pub async fn pool_for(url: &str) -> anyhow::Result<sqlx::PgPool> {
    use sqlx::Executor as _;
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(format!("SET search_path = {}", crate::IDENT.schema).as_str())
                    .await
                    .map(|_| ())
            })
        })
        .connect(url)
        .await?)
}
