//! A batch of events folded with a statement per kind of fact instead of a few per event.
//!
//! A burst is almost all receptions, classifications, assignments and armed deadlines, four
//! or five statements each when folded one by one. Here each of those kinds takes one
//! statement for the whole batch (plus one for what it derives), at most one event per row
//! it writes; an event whose row another event of the batch already writes, and every rarer
//! kind, is folded alone afterwards. Facts do not depend on the order events are folded in
//! (see the parent module), so the batch ends where folding its events one by one would.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use redress_platform::events::Failure;
use redress_proto::time::opt_to_chrono;
use redress_proto::v1::{WorkChange, WorkItem};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    Fact, Measured, Told, day_of, fold, outcome, remeasure, restamp, round_of, summarise_rounds,
    upsert_complaints,
};
use crate::Rules;

/// Folds `items` (in the kit's complaint order) into the facts.
pub async fn apply_batch(
    rules: &Rules,
    db: &mut PgConnection,
    items: &[(Told<'_>, &Fact)],
) -> Result<(), Failure> {
    if items.is_empty() {
        return Ok(());
    }
    let told: Vec<Told<'_>> = items.iter().map(|(t, _)| t.clone()).collect();
    upsert_complaints(db, &told).await?;

    let mut received = Received::default();
    let mut classified = Classified::default();
    let mut work = Work::default();
    let mut deadlines = Deadlines::default();
    let mut alone: Vec<&(Told<'_>, &Fact)> = Vec::new();
    for item in items {
        let taken = match item.1 {
            Fact::Received { .. } => received.take(rules, item),
            Fact::Classified { .. } => classified.take(item),
            Fact::Work(..) => work.take(item),
            Fact::Deadlines(..) => deadlines.take(item),
            _ => false,
        };
        if !taken {
            alone.push(item);
        }
    }
    received.fold(rules, db).await?;
    classified.fold(db).await?;
    work.fold(rules, db).await?;
    deadlines.fold(db).await?;
    for (told, fact) in alone {
        fold(rules, db, told, fact).await?;
    }
    Ok(())
}

/// Receptions, one per complaint.
#[derive(Default)]
pub(super) struct Received<'a> {
    seen: HashSet<Uuid>,
    ids: Vec<Uuid>,
    tickets: Vec<&'a str>,
    channels: Vec<&'a str>,
    at: Vec<Option<DateTime<Utc>>>,
    repeat: Vec<bool>,
    day: Vec<Option<NaiveDate>>,
}

impl<'a> Received<'a> {
    pub(super) fn take(&mut self, rules: &Rules, (told, fact): &'a (Told<'a>, &'a Fact)) -> bool {
        let Fact::Received {
            ticket,
            channel,
            received_at,
            repeat,
        } = fact
        else {
            return false;
        };
        if !self.seen.insert(told.complaint) {
            return false;
        }
        let at = received_at.or(told.at);
        self.ids.push(told.complaint);
        self.tickets.push(ticket);
        self.channels.push(channel);
        self.at.push(at);
        self.repeat.push(*repeat);
        self.day
            .push(at.and_then(|at| day_of(rules, told.playbook, at)));
        true
    }

    pub(super) async fn fold(self, rules: &Rules, db: &mut PgConnection) -> Result<(), Failure> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE complaints c SET ticket = u.ticket, channel = u.channel,
                 received_day = CASE WHEN c.received_at IS NULL OR u.at < c.received_at
                                     THEN u.day ELSE c.received_day END,
                 received_at = LEAST(c.received_at, u.at), repeat = u.repeat
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::bool[],
                         $6::date[]) AS u(id, ticket, channel, at, repeat, day)
             WHERE c.complaint_id = u.id",
        )
        .bind(&self.ids)
        .bind(&self.tickets)
        .bind(&self.channels)
        .bind(&self.at)
        .bind(&self.repeat)
        .bind(&self.day)
        .execute(&mut *db)
        .await?;
        restamp(&mut *db, &self.ids).await?;
        remeasure(rules, db, Measured::Resolution, &self.ids).await
    }
}

/// Classifications, one per complaint.
#[derive(Default)]
pub(super) struct Classified<'a> {
    seen: HashSet<Uuid>,
    ids: Vec<Uuid>,
    natures: Vec<&'a str>,
    categories: Vec<&'a str>,
    severities: Vec<&'a str>,
    urgencies: Vec<&'a str>,
}

impl<'a> Classified<'a> {
    pub(super) fn take(&mut self, (told, fact): &'a (Told<'a>, &'a Fact)) -> bool {
        let Fact::Classified {
            nature,
            category,
            severity,
            urgency,
        } = fact
        else {
            return false;
        };
        if !self.seen.insert(told.complaint) {
            return false;
        }
        self.ids.push(told.complaint);
        self.natures.push(nature);
        self.categories.push(category);
        self.severities.push(severity);
        self.urgencies.push(urgency);
        true
    }

    pub(super) async fn fold(self, db: &mut PgConnection) -> Result<(), Failure> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE complaints c SET nature = u.nature, category = u.category,
                 severity = u.severity, urgency = u.urgency
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                 AS u(id, nature, category, severity, urgency)
             WHERE c.complaint_id = u.id",
        )
        .bind(&self.ids)
        .bind(&self.natures)
        .bind(&self.categories)
        .bind(&self.severities)
        .bind(&self.urgencies)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// Work versions, one per round, of changes that tell nothing but the round (a merge,
/// withdrawal or reclassification is folded alone).
#[derive(Default)]
pub(super) struct Work {
    seen: HashSet<(Uuid, i32)>,
    ids: Vec<Uuid>,
    rounds: Vec<i32>,
    work_ids: Vec<Option<Uuid>>,
    departments: Vec<String>,
    versions: Vec<i64>,
    assigned: Vec<Option<DateTime<Utc>>>,
    accepted: Vec<Option<DateTime<Utc>>>,
    replied: Vec<Option<DateTime<Utc>>>,
    resolved: Vec<Option<DateTime<Utc>>>,
    compensation: Vec<i64>,
    currencies: Vec<String>,
    /// First rounds: their department is the complaint's, and they end its first response
    /// and resolution.
    first_rounds: Vec<Uuid>,
    responded: Vec<Uuid>,
    resolved_first: Vec<Uuid>,
}

impl Work {
    fn take(&mut self, (told, fact): &(Told<'_>, &Fact)) -> bool {
        let Fact::Work(work, change) = fact else {
            return false;
        };
        if matches!(
            change,
            WorkChange::Merged | WorkChange::Withdrawn | WorkChange::Reclassified
        ) {
            return false;
        }
        if self.seen.contains(&(told.complaint, round_of(work.round))) {
            return false;
        }
        self.add(told.complaint, work);
        true
    }

    /// Adds a version of one round of `complaint`'s work, whatever its change.
    pub(super) fn add(&mut self, complaint: Uuid, work: &WorkItem) {
        let round = round_of(work.round);
        self.seen.insert((complaint, round));
        let proposal = work.proposal.as_ref();
        self.ids.push(complaint);
        self.rounds.push(round);
        self.work_ids.push(work.work_id.parse().ok());
        self.departments.push(work.department.clone());
        self.versions
            .push(i64::try_from(work.version).unwrap_or(i64::MAX));
        self.assigned.push(opt_to_chrono(&work.assigned_at));
        self.accepted.push(opt_to_chrono(&work.accepted_at));
        self.replied.push(opt_to_chrono(&work.replied_at));
        self.resolved.push(opt_to_chrono(&work.resolved_at));
        self.compensation
            .push(proposal.map(|p| p.compensation_minor.max(0)).unwrap_or(0));
        self.currencies
            .push(proposal.map(|p| p.currency.clone()).unwrap_or_default());
        if round == 1 {
            self.first_rounds.push(complaint);
            if work.assigned_at.is_some() || work.accepted_at.is_some() {
                self.responded.push(complaint);
            }
            if work.resolved_at.is_some() {
                self.resolved_first.push(complaint);
            }
        }
    }

    pub(super) async fn fold(self, rules: &Rules, db: &mut PgConnection) -> Result<(), Failure> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rounds (complaint_id, round, work_id, department, work_version,
                 assigned_at, accepted_at, replied_at, resolved_at, compensation_minor,
                 currency, playbook, received_at)
             SELECT u.id, u.round, u.work_id, u.department, u.version, u.assigned, u.accepted,
                    u.replied, u.resolved, u.compensation, u.currency, c.playbook,
                    c.received_at
             FROM unnest($1::uuid[], $2::int4[], $3::uuid[], $4::text[], $5::int8[],
                         $6::timestamptz[], $7::timestamptz[], $8::timestamptz[],
                         $9::timestamptz[], $10::int8[], $11::text[])
                  AS u(id, round, work_id, department, version, assigned, accepted, replied,
                       resolved, compensation, currency)
             JOIN complaints c ON c.complaint_id = u.id
             ORDER BY u.id, u.round
             ON CONFLICT (complaint_id, round) DO UPDATE SET
                 work_id = COALESCE(rounds.work_id, EXCLUDED.work_id),
                 assigned_at = LEAST(rounds.assigned_at, EXCLUDED.assigned_at),
                 accepted_at = LEAST(rounds.accepted_at, EXCLUDED.accepted_at),
                 replied_at = LEAST(rounds.replied_at, EXCLUDED.replied_at),
                 resolved_at = LEAST(rounds.resolved_at, EXCLUDED.resolved_at),
                 department = CASE WHEN EXCLUDED.work_version >= rounds.work_version
                                   THEN EXCLUDED.department ELSE rounds.department END,
                 compensation_minor = CASE WHEN EXCLUDED.work_version >= rounds.work_version
                                   THEN EXCLUDED.compensation_minor
                                   ELSE rounds.compensation_minor END,
                 currency = CASE WHEN EXCLUDED.work_version >= rounds.work_version
                                   THEN EXCLUDED.currency ELSE rounds.currency END,
                 work_version = GREATEST(rounds.work_version, EXCLUDED.work_version)",
        )
        .bind(&self.ids)
        .bind(&self.rounds)
        .bind(&self.work_ids)
        .bind(&self.departments)
        .bind(&self.versions)
        .bind(&self.assigned)
        .bind(&self.accepted)
        .bind(&self.replied)
        .bind(&self.resolved)
        .bind(&self.compensation)
        .bind(&self.currencies)
        .execute(&mut *db)
        .await?;
        if !self.first_rounds.is_empty() {
            sqlx::query(
                "UPDATE complaints c SET department = r.department
                 FROM unnest($1::uuid[]) AS u(id)
                 JOIN rounds r ON r.complaint_id = u.id AND r.round = 1
                 WHERE c.complaint_id = u.id AND c.department <> r.department",
            )
            .bind(&self.first_rounds)
            .execute(&mut *db)
            .await?;
        }
        remeasure(rules, &mut *db, Measured::FirstResponse, &self.responded).await?;
        remeasure(rules, db, Measured::Resolution, &self.resolved_first).await
    }
}

/// Deadline outcomes, one per deadline of a round: an event is taken whole or folded alone.
#[derive(Default)]
struct Deadlines<'a> {
    seen: HashSet<(Uuid, i32, &'a str)>,
    ids: Vec<Uuid>,
    rounds: Vec<i32>,
    names: Vec<&'a str>,
    due: Vec<Option<DateTime<Utc>>>,
    states: Vec<&'static str>,
    ranks: Vec<i16>,
    settled: Vec<Option<DateTime<Utc>>>,
}

impl<'a> Deadlines<'a> {
    fn take(&mut self, (told, fact): &'a (Told<'a>, &'a Fact)) -> bool {
        let Fact::Deadlines(deadlines, retracts) = fact else {
            return false;
        };
        let keys: Vec<(Uuid, i32, &str)> = deadlines
            .iter()
            .map(|d| (told.complaint, round_of(d.round), d.name.as_str()))
            .collect();
        let distinct: HashSet<_> = keys.iter().collect();
        if distinct.len() != keys.len() || keys.iter().any(|k| self.seen.contains(k)) {
            return false;
        }
        for (d, key) in deadlines.iter().zip(keys) {
            let (state, rank) = outcome(d, *retracts);
            self.seen.insert(key);
            self.ids.push(key.0);
            self.rounds.push(key.1);
            self.names.push(key.2);
            self.due.push(opt_to_chrono(&d.due_at));
            self.states.push(state);
            self.ranks.push(rank);
            self.settled.push(opt_to_chrono(&d.settled_at));
        }
        true
    }

    async fn fold(self, db: &mut PgConnection) -> Result<(), Failure> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO deadlines (complaint_id, round, name, due_at, state, rank, settled_at)
             SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[],
                                  $5::text[], $6::int2[], $7::timestamptz[])
             ON CONFLICT (complaint_id, round, name) DO UPDATE SET
                 state = EXCLUDED.state, rank = EXCLUDED.rank,
                 settled_at = EXCLUDED.settled_at,
                 due_at = COALESCE(EXCLUDED.due_at, deadlines.due_at)
             WHERE EXCLUDED.rank >= deadlines.rank",
        )
        .bind(&self.ids)
        .bind(&self.rounds)
        .bind(&self.names)
        .bind(&self.due)
        .bind(&self.states)
        .bind(&self.ranks)
        .bind(&self.settled)
        .execute(&mut *db)
        .await?;
        summarise_rounds(db, &self.ids, &self.rounds).await
    }
}
