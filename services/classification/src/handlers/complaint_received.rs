//! `complaint.received`: classify by the complaint's playbook, record the decision and
//! publish `complaint.classified`, all in one transaction with the inbox entry.

use redress_platform::events::{self, Event, retry};
use redress_platform::nats::Outcome;
use redress_platform::{envelope, inbox, outbox};
use redress_playbook::{Severity, Urgency};
use redress_proto::subjects;
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ComplaintClassified, ComplaintReceived, RuleHit};

use crate::domain::classify::{Complaint, classify};
use crate::{Classifier, IDENT};

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::General => "general",
        Severity::Major => "major",
    }
}

fn urgency_name(u: Urgency) -> &'static str {
    match u {
        Urgency::Normal => "normal",
        Urgency::Urgent => "urgent",
        Urgency::Emergency => "emergency",
    }
}

pub async fn handle(
    classifier: &Classifier,
    event: &Event,
    received: ComplaintReceived,
) -> Outcome {
    let Some(complaint_id) = event.complaint_id() else {
        return Outcome::DeadLetter(format!(
            "complaint.received {} has no valid complaint id ({:?})",
            event.envelope.event_id, event.envelope.complaint_id
        ));
    };
    let playbook = match classifier.playbooks.get(&event.envelope.playbook) {
        Ok(pb) => pb,
        Err(e) => {
            return Outcome::DeadLetter(format!(
                "complaint.received {} of ticket {}: {e}",
                event.envelope.event_id, received.ticket
            ));
        }
    };
    let decision = classify(
        &playbook.classification,
        Complaint {
            text: &received.text,
            channel: &received.channel,
            referred_by: &received.referred_by,
        },
    );
    let now = classifier.ctx.clock.now();
    let classified = ComplaintClassified {
        ticket: received.ticket.clone(),
        channel: received.channel,
        external_id: received.external_id,
        nature: decision.nature.clone(),
        category: decision.category.clone(),
        severity: decision.severity.to_proto() as i32,
        urgency: decision.urgency.to_proto() as i32,
        confidence: decision.confidence,
        hits: decision
            .hits
            .iter()
            .map(|h| RuleHit {
                rule: h.rule.clone(),
                matched: h.matched.clone(),
            })
            .collect(),
        rule_set_version: playbook.version.clone(),
        text: received.text,
        received_at: received.received_at,
        reference: received.reference,
        complainant_ref: received.complainant_ref,
    };
    let out = envelope::follow_up(
        IDENT.name,
        &event.envelope,
        now,
        Payload::ComplaintClassified(classified),
    );
    let hits = serde_json::to_value(&decision.hits).expect("hits serialise");
    let event_id: uuid::Uuid = out.event_id.parse().expect("new_event makes UUIDs");

    let result: sqlx::Result<bool> = async {
        let mut tx = classifier.pool.begin().await?;
        if !inbox::record(&mut tx, &event.message_id).await? {
            return Ok(false);
        }
        // A second complaint.received of the same complaint (republished under another event
        // id) finds the decision made: it is recorded in the inbox and changes nothing else.
        let inserted = sqlx::query(
            "INSERT INTO decisions (complaint_id, ticket, playbook, rule_set_version, nature,
                 category, severity, urgency, confidence, hits, event_id, caused_by, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (complaint_id) DO NOTHING",
        )
        .bind(complaint_id)
        .bind(&received.ticket)
        .bind(&playbook.key)
        .bind(&playbook.version)
        .bind(&decision.nature)
        .bind(&decision.category)
        .bind(severity_name(decision.severity))
        .bind(urgency_name(decision.urgency))
        .bind(decision.confidence)
        .bind(&hits)
        .bind(event_id)
        .bind(&event.envelope.event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            outbox::enqueue(
                &mut tx,
                IDENT.schema,
                &classifier.storage.outbox,
                &[events::outgoing(
                    classifier
                        .ctx
                        .subjects
                        .event(subjects::events::COMPLAINT_CLASSIFIED),
                    &out,
                )],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
    .await;
    match result {
        Ok(true) => {
            classifier.storage.outbox.wake();
            tracing::info!(
                ticket = %received.ticket,
                category = %decision.category,
                severity = severity_name(decision.severity),
                urgency = urgency_name(decision.urgency),
                "classified"
            );
            classifier.ctx.metrics.incr(&format!(
                "classification_decisions_total{{category=\"{}\",severity=\"{}\"}}",
                decision.category,
                severity_name(decision.severity)
            ));
            Outcome::Ack
        }
        Ok(false) => Outcome::Ack,
        Err(e) => retry(e),
    }
}
