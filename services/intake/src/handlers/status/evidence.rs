//! `work.evidence_requested` and every later work event: the requests a complainant may
//! answer. A request is kept with the hash of its token (the token went only to the
//! complainant); it stops being answerable when a work item shows its wait ended without the
//! complainant (the department went on, or closed it for want of evidence).

use chrono::{DateTime, Utc};
use redress_proto::time::opt_to_chrono;
use redress_proto::v1::{WorkChange, WorkChanged};
use sqlx::PgConnection;
use uuid::Uuid;

/// A request: complaint, round, number, token hash, when.
type Requested = (Uuid, i32, i32, Vec<u8>, DateTime<Utc>);

#[derive(Default)]
pub(super) struct Batch {
    requested: Vec<Requested>,
    closed: Vec<(Uuid, i32, i32, DateTime<Utc>)>,
}

impl Batch {
    pub(super) fn changed(&mut self, id: Uuid, w: &WorkChanged) {
        let Some(work) = &w.work else { return };
        let round = i32::try_from(work.round).unwrap_or(i32::MAX);
        if w.change() == WorkChange::EvidenceRequested
            && !w.evidence_token_sha256.is_empty()
            && let Some(last) = work.evidence.last()
            && let Some(at) = opt_to_chrono(&last.requested_at)
        {
            self.requested.push((
                id,
                round,
                last.seq as i32,
                w.evidence_token_sha256.clone(),
                at,
            ));
        }
        for p in &work.evidence {
            if let Some(ended) = opt_to_chrono(&p.ended_at)
                && !p.supplied
            {
                self.closed.push((id, round, p.seq as i32, ended));
            }
        }
    }

    /// A request first, then the closings, so that a batch holding both ends closed.
    pub(super) async fn store(self, db: &mut PgConnection) -> sqlx::Result<()> {
        if !self.requested.is_empty() {
            let (mut ids, mut rounds, mut seqs, mut hashes, mut at) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (id, round, seq, hash, t) in self.requested {
                ids.push(id);
                rounds.push(round);
                seqs.push(seq);
                hashes.push(hash);
                at.push(t);
            }
            sqlx::query(
                "INSERT INTO evidence_requests (complaint_id, round, seq, token_sha256,
                     requested_at)
                 SELECT * FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::bytea[],
                                      $5::timestamptz[])
                 ON CONFLICT DO NOTHING",
            )
            .bind(&ids)
            .bind(&rounds)
            .bind(&seqs)
            .bind(&hashes)
            .bind(&at)
            .execute(&mut *db)
            .await?;
        }
        if !self.closed.is_empty() {
            let (mut ids, mut rounds, mut seqs, mut at) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (id, round, seq, t) in self.closed {
                ids.push(id);
                rounds.push(round);
                seqs.push(seq);
                at.push(t);
            }
            sqlx::query(
                "UPDATE evidence_requests r SET closed_at = c.at
                 FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::timestamptz[])
                     AS c(id, round, seq, at)
                 WHERE r.complaint_id = c.id AND r.round = c.round AND r.seq = c.seq
                   AND r.closed_at IS NULL AND r.answered_at IS NULL",
            )
            .bind(&ids)
            .bind(&rounds)
            .bind(&seqs)
            .bind(&at)
            .execute(db)
            .await?;
        }
        Ok(())
    }
}
