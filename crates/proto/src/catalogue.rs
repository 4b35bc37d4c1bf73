//! The event catalogue: every payload of the envelope, its name under `<root>.evt.` and the
//! one subject it travels on. Producers take the subject from here, consumers match on the
//! payload, and the status projection, the SDK and the tests name events by [`EventKind`];
//! nobody spells an event subject by hand or parses one to learn what happened.

use crate::subjects::Subjects;
use crate::v1::envelope::Payload;
use crate::v1::{Envelope, WorkChange, WorkState};

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ComplaintReceived,
    ComplaintClassified,
    /// `work.<change>.<department>`: routing changed a work item.
    Work(WorkChange),
    /// `work.escalated.<department>`: a breach climbed the escalation chain.
    WorkEscalated,
    SlaArmed,
    SlaWarning,
    SlaMet,
    SlaBreached,
    /// `sla.escalation`: a rung of a deadline's escalation ladder, or an on-call page.
    SlaEscalation,
    ApprovalRequested,
    ApprovalDecided,
    SurveySent,
    SurveyAnswered,
    ComplaintClosed,
    ComplaintReopened,
    ComplaintWithdrawn,
    ComplaintResponded,
    ComplaintEvidenceSupplied,
    /// `report.published`: a scheduled analysis was made (not about one complaint).
    ReportPublished,
    /// `analytics.spike`: a category rose well above its history (not about one complaint).
    AnalyticsSpike,
}

impl WorkChange {
    /// Every change a work item can go through.
    pub const ALL: [WorkChange; 17] = [
        WorkChange::Assigned,
        WorkChange::Accepted,
        WorkChange::Proposed,
        WorkChange::Approved,
        WorkChange::Rejected,
        WorkChange::Replied,
        WorkChange::Resolved,
        WorkChange::Closed,
        WorkChange::ProgressReported,
        WorkChange::Contested,
        WorkChange::Withdrawn,
        WorkChange::Investigated,
        WorkChange::Committed,
        WorkChange::Merged,
        WorkChange::EvidenceRequested,
        WorkChange::EvidenceReceived,
        WorkChange::Reclassified,
    ];

    /// The change that brings a work item into `state` (a rejection brings it back to
    /// ACCEPTED, so it is never the answer here).
    pub fn reaching(state: WorkState) -> WorkChange {
        match state {
            WorkState::Unspecified => WorkChange::Unspecified,
            WorkState::Assigned => WorkChange::Assigned,
            WorkState::Accepted => WorkChange::Accepted,
            WorkState::Proposed => WorkChange::Proposed,
            WorkState::Approved => WorkChange::Approved,
            WorkState::Replied => WorkChange::Replied,
            WorkState::Resolved => WorkChange::Resolved,
            WorkState::Closed => WorkChange::Closed,
        }
    }

    /// The `<change>` token of the subject, e.g. `accepted`.
    pub fn token(self) -> &'static str {
        match self {
            WorkChange::Unspecified => "unspecified",
            WorkChange::Assigned => "assigned",
            WorkChange::Accepted => "accepted",
            WorkChange::Proposed => "proposed",
            WorkChange::Approved => "approved",
            WorkChange::Rejected => "rejected",
            WorkChange::Replied => "replied",
            WorkChange::Resolved => "resolved",
            WorkChange::Closed => "closed",
            WorkChange::ProgressReported => "progress_reported",
            WorkChange::Contested => "contested",
            WorkChange::Withdrawn => "withdrawn",
            WorkChange::Investigated => "investigated",
            WorkChange::Committed => "committed",
            WorkChange::Merged => "merged",
            WorkChange::EvidenceRequested => "evidence_requested",
            WorkChange::EvidenceReceived => "evidence_received",
            WorkChange::Reclassified => "reclassified",
        }
    }
}

impl EventKind {
    /// Every kind, work changes included.
    pub const ALL: [EventKind; 36] = [
        EventKind::ComplaintReceived,
        EventKind::ComplaintClassified,
        EventKind::Work(WorkChange::Assigned),
        EventKind::Work(WorkChange::Accepted),
        EventKind::Work(WorkChange::Proposed),
        EventKind::Work(WorkChange::Approved),
        EventKind::Work(WorkChange::Rejected),
        EventKind::Work(WorkChange::Replied),
        EventKind::Work(WorkChange::Resolved),
        EventKind::Work(WorkChange::Closed),
        EventKind::Work(WorkChange::ProgressReported),
        EventKind::Work(WorkChange::Contested),
        EventKind::Work(WorkChange::Withdrawn),
        EventKind::Work(WorkChange::Investigated),
        EventKind::Work(WorkChange::Committed),
        EventKind::Work(WorkChange::Merged),
        EventKind::Work(WorkChange::EvidenceRequested),
        EventKind::Work(WorkChange::EvidenceReceived),
        EventKind::Work(WorkChange::Reclassified),
        EventKind::WorkEscalated,
        EventKind::SlaArmed,
        EventKind::SlaWarning,
        EventKind::SlaMet,
        EventKind::SlaBreached,
        EventKind::SlaEscalation,
        EventKind::ApprovalRequested,
        EventKind::ApprovalDecided,
        EventKind::SurveySent,
        EventKind::SurveyAnswered,
        EventKind::ComplaintClosed,
        EventKind::ComplaintReopened,
        EventKind::ComplaintWithdrawn,
        EventKind::ComplaintResponded,
        EventKind::ComplaintEvidenceSupplied,
        EventKind::ReportPublished,
        EventKind::AnalyticsSpike,
    ];

    /// The event's name: its subject after `<root>.evt.`, without the department of work
    /// events (`work.accepted`). Also what the status history and span names show.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ComplaintReceived => "complaint.received",
            EventKind::ComplaintClassified => "complaint.classified",
            EventKind::Work(c) => match c {
                WorkChange::Unspecified => "work.unspecified",
                WorkChange::Assigned => "work.assigned",
                WorkChange::Accepted => "work.accepted",
                WorkChange::Proposed => "work.proposed",
                WorkChange::Approved => "work.approved",
                WorkChange::Rejected => "work.rejected",
                WorkChange::Replied => "work.replied",
                WorkChange::Resolved => "work.resolved",
                WorkChange::Closed => "work.closed",
                WorkChange::ProgressReported => "work.progress_reported",
                WorkChange::Contested => "work.contested",
                WorkChange::Withdrawn => "work.withdrawn",
                WorkChange::Investigated => "work.investigated",
                WorkChange::Committed => "work.committed",
                WorkChange::Merged => "work.merged",
                WorkChange::EvidenceRequested => "work.evidence_requested",
                WorkChange::EvidenceReceived => "work.evidence_received",
                WorkChange::Reclassified => "work.reclassified",
            },
            EventKind::WorkEscalated => "work.escalated",
            EventKind::SlaArmed => "sla.armed",
            EventKind::SlaWarning => "sla.warning",
            EventKind::SlaMet => "sla.met",
            EventKind::SlaBreached => "sla.breached",
            EventKind::SlaEscalation => "sla.escalation",
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ApprovalDecided => "approval.decided",
            EventKind::SurveySent => "survey.sent",
            EventKind::SurveyAnswered => "survey.answered",
            EventKind::ComplaintClosed => "complaint.closed",
            EventKind::ComplaintReopened => "complaint.reopened",
            EventKind::ComplaintWithdrawn => "complaint.withdrawn",
            EventKind::ComplaintResponded => "complaint.responded",
            EventKind::ComplaintEvidenceSupplied => "complaint.evidence_supplied",
            EventKind::ReportPublished => "report.published",
            EventKind::AnalyticsSpike => "analytics.spike",
        }
    }

    /// The one service that publishes this kind; consumers refuse an envelope that names
    /// another producer.
    pub fn producer(self) -> &'static str {
        match self {
            EventKind::ComplaintReceived
            | EventKind::ComplaintWithdrawn
            | EventKind::ComplaintResponded
            | EventKind::ComplaintEvidenceSupplied => "intake",
            EventKind::ComplaintClassified => "classification",
            EventKind::Work(_) | EventKind::WorkEscalated => "routing",
            EventKind::SlaArmed
            | EventKind::SlaWarning
            | EventKind::SlaMet
            | EventKind::SlaBreached
            | EventKind::SlaEscalation => "sla-timer",
            EventKind::ApprovalRequested | EventKind::ApprovalDecided => "approval",
            EventKind::SurveySent
            | EventKind::SurveyAnswered
            | EventKind::ComplaintClosed
            | EventKind::ComplaintReopened => "survey",
            EventKind::ReportPublished | EventKind::AnalyticsSpike => "analytics",
        }
    }

    /// Whether the event is about one complaint (its envelope names the complaint and
    /// ticket). Reports and spike warnings are about many.
    pub fn about_a_complaint(self) -> bool {
        !matches!(self, EventKind::ReportPublished | EventKind::AnalyticsSpike)
    }

    /// Whether the subject ends in a department.
    pub fn per_department(self) -> bool {
        matches!(self, EventKind::Work(_) | EventKind::WorkEscalated)
    }

    /// The kind a name stands for (the reverse of [`EventKind::name`]).
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Subjects {
    /// The subject of `kind`: exact for complaint, sla, approval and survey events; for work
    /// events, the wildcard over every department (`<root>.evt.work.accepted.*`), which is
    /// what a consumer filters on.
    pub fn event_of(&self, kind: EventKind) -> String {
        if kind.per_department() {
            self.event(&format!("{}.*", kind.name()))
        } else {
            self.event(kind.name())
        }
    }

    /// The subject of `kind` for one department; the same as [`Subjects::event_of`] for
    /// kinds that are not per department.
    pub fn event_for(&self, kind: EventKind, department: &str) -> String {
        if kind.per_department() {
            self.event(&format!("{}.{department}", kind.name()))
        } else {
            self.event(kind.name())
        }
    }
}

impl Payload {
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::ComplaintReceived(_) => EventKind::ComplaintReceived,
            Payload::ComplaintClassified(_) => EventKind::ComplaintClassified,
            Payload::WorkChanged(w) => EventKind::Work(w.change()),
            Payload::WorkEscalated(_) => EventKind::WorkEscalated,
            Payload::DeadlinesArmed(_) => EventKind::SlaArmed,
            Payload::DeadlineWarned(_) => EventKind::SlaWarning,
            Payload::DeadlineMet(_) => EventKind::SlaMet,
            Payload::DeadlineBreached(_) => EventKind::SlaBreached,
            Payload::DeadlineEscalation(_) => EventKind::SlaEscalation,
            Payload::ApprovalRequested(_) => EventKind::ApprovalRequested,
            Payload::ApprovalDecided(_) => EventKind::ApprovalDecided,
            Payload::SurveySent(_) => EventKind::SurveySent,
            Payload::SurveyAnswered(_) => EventKind::SurveyAnswered,
            Payload::ComplaintClosed(_) => EventKind::ComplaintClosed,
            Payload::ComplaintReopened(_) => EventKind::ComplaintReopened,
            Payload::ComplaintWithdrawn(_) => EventKind::ComplaintWithdrawn,
            Payload::ComplaintResponded(_) => EventKind::ComplaintResponded,
            Payload::ComplaintEvidenceSupplied(_) => EventKind::ComplaintEvidenceSupplied,
            Payload::ReportPublished(_) => EventKind::ReportPublished,
            Payload::AnalyticsSpike(_) => EventKind::AnalyticsSpike,
        }
    }

    /// The department a work event is about.
    pub fn department(&self) -> Option<&str> {
        match self {
            Payload::WorkChanged(w) => w.work.as_ref().map(|w| w.department.as_str()),
            Payload::WorkEscalated(e) => e.work.as_ref().map(|w| w.department.as_str()),
            _ => None,
        }
    }

    /// The one subject this payload is published on.
    pub fn subject(&self, subjects: &Subjects) -> String {
        subjects.event_for(self.kind(), self.department().unwrap_or("none"))
    }
}

impl Envelope {
    /// The kind of the payload; none for an envelope without one this version knows.
    pub fn kind(&self) -> Option<EventKind> {
        self.payload.as_ref().map(Payload::kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{WorkChanged, WorkItem};

    #[test]
    fn names_are_unique_and_read_back() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        assert_eq!(WorkChange::ALL.len() + 19, EventKind::ALL.len());
    }

    #[test]
    fn a_work_change_travels_on_its_department_subject() {
        let s = Subjects::new("t");
        let payload = Payload::WorkChanged(WorkChanged {
            work: Some(WorkItem {
                department: "logistics".into(),
                ..Default::default()
            }),
            change: WorkChange::Accepted as i32,
            ..Default::default()
        });
        assert_eq!(payload.kind(), EventKind::Work(WorkChange::Accepted));
        assert_eq!(payload.subject(&s), "t.evt.work.accepted.logistics");
        assert_eq!(
            s.event_of(EventKind::Work(WorkChange::Accepted)),
            "t.evt.work.accepted.*"
        );
        assert_eq!(s.event_of(EventKind::SlaMet), "t.evt.sla.met");
        assert_eq!(s.event_for(EventKind::SlaMet, "logistics"), "t.evt.sla.met");
    }
}
