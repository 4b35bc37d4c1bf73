//! `complaint.classified`: nature, category, severity and urgency.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redress_proto::v1::{ComplaintClassified, Severity, Urgency};
use sqlx::PgConnection;
use uuid::Uuid;

fn severity_name(s: i32) -> &'static str {
    Severity::key_of(s)
}

fn urgency_name(u: i32) -> &'static str {
    Urgency::key_of(u)
}

/// The batch's classifications, the last one of each complaint.
#[derive(Default)]
pub(super) struct Batch {
    /// Nature, category, severity, urgency, and the work version of a correction (0 for the
    /// classifier's own decision).
    by_complaint: HashMap<Uuid, (String, String, &'static str, &'static str, i64)>,
}

impl Batch {
    /// Takes one classification; returns its history line.
    pub(super) fn add(&mut self, id: Uuid, c: &ComplaintClassified) -> String {
        self.by_complaint.insert(
            id,
            (
                c.nature.clone(),
                c.category.clone(),
                severity_name(c.severity),
                urgency_name(c.urgency),
                0,
            ),
        );
        let rules: Vec<&str> = c.hits.iter().map(|h| h.rule.as_str()).collect();
        format!(
            "{} / {} / {} / {} (rules: {})",
            c.nature,
            c.category,
            severity_name(c.severity),
            urgency_name(c.urgency),
            if rules.is_empty() {
                "defaults".to_string()
            } else {
                rules.join(", ")
            }
        )
    }

    /// Takes a department's correction (`work.reclassified`): the work item holds the
    /// classification now.
    pub(super) fn corrected(&mut self, id: Uuid, w: &redress_proto::v1::WorkItem) {
        let version = i64::try_from(w.version).unwrap_or(i64::MAX);
        if self
            .by_complaint
            .get(&id)
            .is_some_and(|(.., v)| *v > version)
        {
            return;
        }
        self.by_complaint.insert(
            id,
            (
                w.nature.clone(),
                w.category.clone(),
                severity_name(w.severity),
                urgency_name(w.urgency),
                version,
            ),
        );
    }

    pub(super) async fn store(self, db: &mut PgConnection, now: DateTime<Utc>) -> sqlx::Result<()> {
        if self.by_complaint.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let (mut natures, mut categories, mut severities, mut urgencies, mut versions) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, (n, c, s, u, v)) in self.by_complaint {
            ids.push(id);
            natures.push(n);
            categories.push(c);
            severities.push(s);
            urgencies.push(u);
            versions.push(v);
        }
        sqlx::query(
            "UPDATE complaints c SET nature = u.nature, category = u.category,
                 severity = u.severity, urgency = u.urgency,
                 classification_version = u.version,
                 status = CASE WHEN c.status = 'received' THEN 'classified' ELSE c.status END,
                 updated_at = $6
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $7::int8[])
                  AS u(id, nature, category, severity, urgency, version)
             -- Corrections land in work-version order, whatever order they are read in;
             -- the classifier's decision never overwrites one.
             WHERE c.id = u.id AND c.classification_version <= u.version",
        )
        .bind(&ids)
        .bind(&natures)
        .bind(&categories)
        .bind(&severities)
        .bind(&urgencies)
        .bind(now)
        .bind(&versions)
        .execute(db)
        .await?;
        Ok(())
    }
}
