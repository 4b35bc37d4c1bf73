//! `complaint.received`: open each complaint's sealed text with its key, classify it by the
//! complaint's playbook (the decision is a pure function of the complaint and the rules),
//! then record the decisions of a batch in one statement and publish `complaint.classified`
//! for each complaint decided for the first time.

use chrono::{DateTime, Utc};
use redress_platform::Unit;
use redress_platform::envelope;
use redress_platform::events::{Event, Failure, Parsed};
use redress_platform::sealed::{KeysError, Opened};
use redress_playbook::{Severity, Urgency};
use redress_proto::v1::envelope::Payload;
use redress_proto::v1::{ComplaintClassified, ComplaintReceived, FileRef, RuleHit};
use uuid::Uuid;

use crate::domain::classify::{Complaint, Decision, classify};
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

/// A complaint to classify: what the event says, checked before any transaction.
pub struct Received {
    complaint_id: Uuid,
    received: ComplaintReceived,
}

/// A complaint classified, waiting to be recorded.
struct Decided {
    complaint_id: Uuid,
    playbook: String,
    playbook_version: String,
    decision: Decision,
    classified: ComplaintClassified,
}

pub fn parse(
    classifier: &Classifier,
    event: &Event,
    received: &ComplaintReceived,
) -> Parsed<Received> {
    let Some(complaint_id) = event.complaint_id() else {
        return Parsed::Reject(format!(
            "complaint.received {} has no valid complaint id ({:?})",
            event.envelope.event_id, event.envelope.complaint_id
        ));
    };
    if let Err(e) = classifier.playbooks.get(&event.envelope.playbook) {
        return Parsed::Reject(format!(
            "complaint.received {} of ticket {}: {e}",
            event.envelope.event_id, received.ticket
        ));
    }
    Parsed::Handle(Received {
        complaint_id,
        received: received.clone(),
    })
}

/// The text of each complaint of `batch`, opened with its key (all looked up at once). An
/// erased complaint is classified on an empty text: its facts still count. A key intake has
/// not published yet makes the batch wait.
async fn open_texts(
    classifier: &Classifier,
    batch: &[(&Event, &Received)],
) -> Result<Vec<String>, Failure> {
    let keys = &classifier.ctx.text_keys;
    let opened = futures::future::join_all(batch.iter().map(|(_, r)| async move {
        if r.received.sealed_text.is_empty() {
            // From a producer older than sealing.
            return Ok(Opened::Text(r.received.text.clone()));
        }
        keys.open(&r.received.sealed_text, &r.complaint_id).await
    }))
    .await;
    batch
        .iter()
        .zip(opened)
        .map(|((event, r), o)| match o {
            Ok(Opened::Text(t)) => Ok(t),
            Ok(Opened::Erased) => Ok(String::new()),
            Ok(Opened::NotYet) => Err(Failure::Retry(format!(
                "the text key of {} is not published yet",
                r.received.ticket
            ))),
            Err(KeysError::Sealed(e)) => Err(Failure::Reject(format!(
                "complaint.received {} of ticket {}: {e}",
                event.envelope.event_id, r.received.ticket
            ))),
            Err(e) => Err(Failure::Retry(e.to_string())),
        })
        .collect()
}

fn decide(
    classifier: &Classifier,
    event: &Event,
    r: &Received,
    text: &str,
) -> Result<Decided, Failure> {
    let received = &r.received;
    let playbook = classifier
        .playbooks
        .get(&event.envelope.playbook)
        .map_err(|e| Failure::Reject(format!("ticket {}: {e}", received.ticket)))?;
    let decision = classify(
        &playbook.classification,
        Complaint {
            text,
            channel: &received.channel,
            referred_by: &received.referred_by,
        },
    );
    let classified = ComplaintClassified {
        ticket: received.ticket.clone(),
        channel: received.channel.clone(),
        external_id: received.external_id.clone(),
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
        // Passed on as it came: sealed (routing opens it for the department), or in clear
        // from an older producer.
        text: received.text.clone(),
        sealed_text: received.sealed_text.clone(),
        attachments: received
            .attachments
            .iter()
            .map(|a| FileRef {
                uri: a.uri.clone(),
                media_type: a.media_type.clone(),
                size_bytes: a.size_bytes,
                file_name: a.file_name.clone(),
            })
            .collect(),
        received_at: received.received_at,
        reference: received.reference.clone(),
        complainant_ref: received.complainant_ref.clone(),
        solved_by: received.solved_by.clone(),
        sealed_solution: received.sealed_solution.clone(),
    };
    Ok(Decided {
        complaint_id: r.complaint_id,
        playbook: playbook.key.clone(),
        playbook_version: playbook.version.clone(),
        decision,
        classified,
    })
}

/// Records the decisions of `batch`; a complaint decided before (a republished
/// complaint.received under another event id, or twice in one batch) keeps its first
/// decision and publishes nothing new.
pub async fn record(
    classifier: &Classifier,
    unit: &mut Unit,
    batch: &[(&Event, &Received)],
) -> Result<(), Failure> {
    let texts = open_texts(classifier, batch).await?;
    let decided = batch
        .iter()
        .zip(&texts)
        .map(|((event, r), text)| Ok((*event, decide(classifier, event, r, text)?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let batch: Vec<(&Event, &Decided)> = decided.iter().map(|(e, d)| (*e, d)).collect();
    let now: DateTime<Utc> = classifier.ctx.clock.now();
    let events: Vec<_> = batch
        .iter()
        .map(|(event, d)| {
            envelope::follow_up(
                IDENT.name,
                &event.envelope,
                now,
                Payload::ComplaintClassified(d.classified.clone()),
            )
        })
        .collect();
    let ids: Vec<Uuid> = batch.iter().map(|(_, d)| d.complaint_id).collect();
    let tickets: Vec<&str> = batch
        .iter()
        .map(|(_, d)| d.classified.ticket.as_str())
        .collect();
    let playbooks: Vec<&str> = batch.iter().map(|(_, d)| d.playbook.as_str()).collect();
    let versions: Vec<&str> = batch
        .iter()
        .map(|(_, d)| d.playbook_version.as_str())
        .collect();
    let natures: Vec<&str> = batch
        .iter()
        .map(|(_, d)| d.decision.nature.as_str())
        .collect();
    let categories: Vec<&str> = batch
        .iter()
        .map(|(_, d)| d.decision.category.as_str())
        .collect();
    let severities: Vec<&str> = batch
        .iter()
        .map(|(_, d)| severity_name(d.decision.severity))
        .collect();
    let urgencies: Vec<&str> = batch
        .iter()
        .map(|(_, d)| urgency_name(d.decision.urgency))
        .collect();
    let confidences: Vec<f64> = batch.iter().map(|(_, d)| d.decision.confidence).collect();
    let hits: Vec<serde_json::Value> = batch
        .iter()
        .map(|(_, d)| serde_json::to_value(&d.decision.hits).expect("hits serialise"))
        .collect();
    let event_ids: Vec<Uuid> = events
        .iter()
        .map(|e| e.event_id.parse().expect("new events have UUIDs"))
        .collect();
    let causes: Vec<&str> = batch
        .iter()
        .map(|(e, _)| e.envelope.event_id.as_str())
        .collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO decisions (complaint_id, ticket, playbook, rule_set_version, nature,
             category, severity, urgency, confidence, hits, event_id, caused_by, decided_at)
         SELECT d.*, $13 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::float8[], $10::jsonb[], $11::uuid[],
             $12::text[]) AS d
         ON CONFLICT (complaint_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(&ids)
    .bind(&tickets)
    .bind(&playbooks)
    .bind(&versions)
    .bind(&natures)
    .bind(&categories)
    .bind(&severities)
    .bind(&urgencies)
    .bind(&confidences)
    .bind(&hits)
    .bind(&event_ids)
    .bind(&causes)
    .bind(now)
    .fetch_all(unit.db())
    .await?;
    for ((event, d), out) in batch.iter().zip(events) {
        let id: Uuid = out.event_id.parse().expect("new events have UUIDs");
        if !inserted.contains(&id) {
            continue;
        }
        let _span = event.span.enter();
        tracing::info!(
            target: redress_platform::telemetry::OUTCOME,
            category = %d.decision.category,
            severity = severity_name(d.decision.severity),
            urgency = urgency_name(d.decision.urgency),
            "classified"
        );
        unit.count(
            format!(
                "classification_decisions_total{{category=\"{}\",severity=\"{}\"}}",
                d.decision.category,
                severity_name(d.decision.severity)
            ),
            1,
        );
        unit.emit(out);
    }
    Ok(())
}
