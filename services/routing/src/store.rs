//! Work items in routing's schema.

use chrono::{DateTime, Utc};
use redress_proto::v1::{Proposal, WorkState};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::domain::work::Work;

const COLUMNS: &str = "work_id, complaint_id, ticket, playbook, correlation_id, department, state,
    round, version, nature, category, severity, urgency, channel, external_id, body, sealed_body,
    routing_rule, assigned_at, accepted_by, proposal_id, responsibility, remedy, compensation_minor, currency, proposal_kind,
    proposed_by, reply, sealed_reply, escalation_level, accepted_at, replied_at, resolved_at,
    previous_departments, contests, committed_on, attachments, merged_into, evidence, explained, received_at";

fn from_row(r: &PgRow) -> Work {
    let proposal = r
        .get::<Option<String>, _>("proposal_id")
        .map(|proposal_id| Proposal {
            proposal_id,
            responsibility: r.get::<Option<i16>, _>("responsibility").unwrap_or(0) as i32,
            remedy: r.get::<Option<String>, _>("remedy").unwrap_or_default(),
            compensation_minor: r.get::<Option<i64>, _>("compensation_minor").unwrap_or(0),
            currency: r.get::<Option<String>, _>("currency").unwrap_or_default(),
            proposed_by: r
                .get::<Option<String>, _>("proposed_by")
                .unwrap_or_default(),
            kind: i32::from(r.get::<Option<i16>, _>("proposal_kind").unwrap_or(0)),
        });
    Work {
        work_id: r.get("work_id"),
        complaint_id: r.get("complaint_id"),
        ticket: r.get("ticket"),
        playbook: r.get("playbook"),
        correlation_id: r.get("correlation_id"),
        department: r.get("department"),
        state: WorkState::try_from(r.get::<i16, _>("state") as i32).unwrap_or_default(),
        round: r.get::<i32, _>("round") as u32,
        version: r.get::<i64, _>("version") as u64,
        nature: r.get("nature"),
        category: r.get("category"),
        severity: r.get::<i16, _>("severity") as i32,
        urgency: r.get::<i16, _>("urgency") as i32,
        channel: r.get("channel"),
        external_id: r.get("external_id"),
        text: r.get("body"),
        sealed_text: r.get("sealed_body"),
        routing_rule: r.get("routing_rule"),
        assigned_at: r.get("assigned_at"),
        accepted_by: r.get("accepted_by"),
        proposal,
        reply: r.get("reply"),
        sealed_reply: r.get("sealed_reply"),
        escalation_level: r.get::<i32, _>("escalation_level") as u32,
        accepted_at: r.get("accepted_at"),
        replied_at: r.get("replied_at"),
        resolved_at: r.get("resolved_at"),
        previous_departments: r.get("previous_departments"),
        contests: r.get::<i32, _>("contests") as u32,
        committed_on: r.get("committed_on"),
        merged_into: r.get("merged_into"),
        explained: r.get("explained"),
        received_at: r.get("received_at"),
        evidence: {
            use prost::Message as _;
            let bytes: Vec<u8> = r.get("evidence");
            redress_proto::v1::EvidencePauses::decode(bytes.as_slice())
                .map(|e| e.pauses)
                .unwrap_or_default()
        },
        attachments: {
            use prost::Message as _;
            let bytes: Vec<u8> = r.get("attachments");
            redress_proto::v1::FileRefs::decode(bytes.as_slice())
                .map(|f| f.files)
                .unwrap_or_default()
        },
    }
}

/// Stores new work items in one statement; returns the ids of those stored (a complaint that
/// has one already, or twice in `works`, keeps its first).
pub async fn insert_all(
    conn: &mut PgConnection,
    works: &[Work],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<uuid::Uuid>> {
    let text = |f: &dyn Fn(&Work) -> &str| -> Vec<String> {
        works.iter().map(|w| f(w).to_string()).collect()
    };
    let work_ids: Vec<uuid::Uuid> = works.iter().map(|w| w.work_id).collect();
    let complaint_ids: Vec<uuid::Uuid> = works.iter().map(|w| w.complaint_id).collect();
    let states: Vec<i16> = works.iter().map(|w| w.state as i16).collect();
    let rounds: Vec<i32> = works.iter().map(|w| w.round as i32).collect();
    let versions: Vec<i64> = works.iter().map(|w| w.version as i64).collect();
    let severities: Vec<i16> = works.iter().map(|w| w.severity as i16).collect();
    let urgencies: Vec<i16> = works.iter().map(|w| w.urgency as i16).collect();
    let assigned: Vec<DateTime<Utc>> = works.iter().map(|w| w.assigned_at).collect();
    sqlx::query_scalar(
        "INSERT INTO work_items (work_id, complaint_id, ticket, playbook, correlation_id,
             department, state, round, version, nature, category, severity, urgency, channel,
             external_id, body, routing_rule, assigned_at, sealed_body, attachments, received_at,
             updated_at)
         SELECT w.*, $18 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::int2[], $8::int4[], $9::int8[], $10::text[], $11::text[],
             $12::int2[], $13::int2[], $14::text[], $15::text[], $16::text[], $17::text[],
             $19::timestamptz[], $20::bytea[], $21::bytea[], $22::timestamptz[]) AS w
         ON CONFLICT (complaint_id) DO NOTHING
         RETURNING work_id",
    )
    .bind(&work_ids)
    .bind(&complaint_ids)
    .bind(text(&|w| &w.ticket))
    .bind(text(&|w| &w.playbook))
    .bind(text(&|w| &w.correlation_id))
    .bind(text(&|w| &w.department))
    .bind(&states)
    .bind(&rounds)
    .bind(&versions)
    .bind(text(&|w| &w.nature))
    .bind(text(&|w| &w.category))
    .bind(&severities)
    .bind(&urgencies)
    .bind(text(&|w| &w.channel))
    .bind(text(&|w| &w.external_id))
    .bind(text(&|w| &w.text))
    .bind(text(&|w| &w.routing_rule))
    .bind(now)
    .bind(&assigned)
    .bind(
        works
            .iter()
            .map(|w| w.sealed_text.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        works
            .iter()
            .map(|w| {
                use prost::Message as _;
                redress_proto::v1::FileRefs {
                    files: w.attachments.clone(),
                }
                .encode_to_vec()
            })
            .collect::<Vec<_>>(),
    )
    .bind(works.iter().map(|w| w.received_at).collect::<Vec<_>>())
    .fetch_all(conn)
    .await
}

/// Records the same change of several work items, each with its own note, in one statement.
pub async fn record_transitions(
    conn: &mut PgConnection,
    items: &[(&Work, &str)],
    change: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = items.iter().map(|(w, _)| w.work_id).collect();
    let versions: Vec<i64> = items.iter().map(|(w, _)| w.version as i64).collect();
    let notes: Vec<&str> = items.iter().map(|(_, n)| *n).collect();
    sqlx::query(
        "INSERT INTO transitions (work_id, version, change, actor, note, at)
         SELECT t.id, t.version, $3, $4, t.note, $5
         FROM unnest($1::uuid[], $2::int8[], $6::text[]) AS t(id, version, note)",
    )
    .bind(&ids)
    .bind(&versions)
    .bind(change)
    .bind(actor)
    .bind(at)
    .bind(&notes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The work item of a ticket, locked until the transaction ends.
pub async fn lock_by_ticket(conn: &mut PgConnection, ticket: &str) -> sqlx::Result<Option<Work>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM work_items WHERE ticket = $1 FOR UPDATE"
    ))
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

/// A work item by id, locked until the transaction ends.
pub async fn lock_by_id(
    conn: &mut PgConnection,
    work_id: uuid::Uuid,
) -> sqlx::Result<Option<Work>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM work_items WHERE work_id = $1 FOR UPDATE"
    ))
    .bind(work_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

/// A work item by ticket, read without a lock (to refer to it, not to change it).
pub async fn find_by_ticket(conn: &mut PgConnection, ticket: &str) -> sqlx::Result<Option<Work>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM work_items WHERE ticket = $1"
    ))
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

/// The work item of a complaint, locked until the transaction ends.
pub async fn lock_by_complaint(
    conn: &mut PgConnection,
    complaint_id: uuid::Uuid,
) -> sqlx::Result<Option<Work>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM work_items WHERE complaint_id = $1 FOR UPDATE"
    ))
    .bind(complaint_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

/// Writes back everything a transition may change, and the transition itself.
pub async fn save(
    conn: &mut PgConnection,
    w: &Work,
    change: &str,
    actor: &str,
    note: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let p = w.proposal.as_ref();
    sqlx::query(
        "UPDATE work_items SET state = $2, round = $3, version = $4, assigned_at = $5,
             accepted_by = $6, proposal_id = $7, responsibility = $8, remedy = $9,
             compensation_minor = $10, currency = $11, proposed_by = $12, reply = $13,
             escalation_level = $14, updated_at = $15, accepted_at = $16, replied_at = $17,
             resolved_at = $18, sealed_reply = $19, department = $20,
             previous_departments = $21, contests = $22, committed_on = $23, merged_into = $24,
             evidence = $25, attachments = $26, explained = $27, nature = $28, category = $29,
             severity = $30, urgency = $31, routing_rule = $32, proposal_kind = $33
         WHERE work_id = $1",
    )
    .bind(w.work_id)
    .bind(w.state as i16)
    .bind(w.round as i32)
    .bind(w.version as i64)
    .bind(w.assigned_at)
    .bind(&w.accepted_by)
    .bind(p.map(|p| p.proposal_id.clone()))
    .bind(p.map(|p| p.responsibility as i16))
    .bind(p.map(|p| p.remedy.clone()))
    .bind(p.map(|p| p.compensation_minor))
    .bind(p.map(|p| p.currency.clone()))
    .bind(p.map(|p| p.proposed_by.clone()))
    // In clear only from before sealing: a sealed reply is never stored open.
    .bind(if w.sealed_reply.is_empty() {
        w.reply.clone()
    } else {
        None
    })
    .bind(w.escalation_level as i32)
    .bind(now)
    .bind(w.accepted_at)
    .bind(w.replied_at)
    .bind(w.resolved_at)
    .bind(&w.sealed_reply)
    .bind(&w.department)
    .bind(&w.previous_departments)
    .bind(w.contests as i32)
    .bind(w.committed_on)
    .bind(&w.merged_into)
    .bind({
        use prost::Message as _;
        redress_proto::v1::EvidencePauses {
            pauses: w.evidence.clone(),
        }
        .encode_to_vec()
    })
    .bind({
        use prost::Message as _;
        redress_proto::v1::FileRefs {
            files: w.attachments.clone(),
        }
        .encode_to_vec()
    })
    .bind(w.explained)
    .bind(&w.nature)
    .bind(&w.category)
    .bind(w.severity as i16)
    .bind(w.urgency as i16)
    .bind(&w.routing_rule)
    .bind(p.map(|p| p.kind as i16))
    .execute(&mut *conn)
    .await?;
    record_transition(conn, w, change, actor, note, now).await
}

pub async fn record_transition(
    conn: &mut PgConnection,
    w: &Work,
    change: &str,
    actor: &str,
    note: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO transitions (work_id, version, change, actor, note, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(w.work_id)
    .bind(w.version as i64)
    .bind(change)
    .bind(actor)
    .bind(note)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One hop of `w` (already moved to its new department) in the routing history.
/// `sealed_understood` is what the sender understood, sealed (then `t.understood` is empty).
pub async fn record_transfer(
    conn: &mut PgConnection,
    w: &Work,
    t: &redress_proto::v1::WorkTransfer,
    sealed_understood: &[u8],
    by: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO transfers (work_id, version, from_department, to_department, reason,
             understood, transferred_by, sent_back, at, sealed_understood)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(w.work_id)
    .bind(w.version as i64)
    .bind(&t.from_department)
    .bind(&t.to_department)
    .bind(&t.reason)
    .bind(&t.understood)
    .bind(by)
    .bind(t.sent_back)
    .bind(at)
    .bind(sealed_understood)
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of `w`'s investigation record, at the version it was recorded.
pub async fn record_investigation(
    conn: &mut PgConnection,
    w: &Work,
    entry: &redress_proto::v1::Investigate,
    by: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    use prost::Message as _;
    sqlx::query(
        "INSERT INTO investigations (work_id, version, recorded_by, at, cause, entry)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(w.work_id)
    .bind(w.version as i64)
    .bind(by)
    .bind(at)
    .bind(entry.cause.trim())
    .bind(entry.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// A department's work in the given states (every state but closed when none), oldest first.
pub async fn list(
    pool: &sqlx::PgPool,
    department: &str,
    states: &[WorkState],
    limit: i64,
) -> sqlx::Result<Vec<Work>> {
    let states: Vec<i16> = if states.is_empty() {
        (1..=6).collect()
    } else {
        states.iter().map(|s| *s as i16).collect()
    };
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM work_items WHERE department = $1 AND state = ANY($2)
         ORDER BY assigned_at, ticket LIMIT $3"
    ))
    .bind(department)
    .bind(&states)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(from_row).collect())
}
