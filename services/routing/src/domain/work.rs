//! A department's work item and the transitions people and events may make on it.

use chrono::{DateTime, Utc};
use redress_playbook::Playbook;
use redress_proto::time::{from_chrono, ts};
use redress_proto::v1::{
    ActionKind, CommitDate, EvidencePause, Explain, Investigate, Proposal, ProposalKind, Propose,
    Reclassification, Reclassify, Responsibility, Severity, Transfer, Urgency, WorkChange,
    WorkItem, WorkState, WorkTransfer,
};
use uuid::Uuid;

/// Why a department command was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field}: {message}")]
    Malformed {
        field: &'static str,
        message: String,
    },
    #[error("{field}: {message}")]
    Forbidden {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    WrongState { message: String },
}

/// A work item as routing keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    pub work_id: Uuid,
    pub complaint_id: Uuid,
    pub ticket: String,
    pub playbook: String,
    pub correlation_id: String,
    pub department: String,
    pub state: WorkState,
    pub round: u32,
    pub version: u64,
    pub nature: String,
    pub category: String,
    pub severity: i32,
    pub urgency: i32,
    pub channel: String,
    pub external_id: String,
    /// The complaint text in clear, only from producers older than sealing (else empty).
    pub text: String,
    /// The complaint text sealed with the complaint's text key, as classification passed it.
    pub sealed_text: Vec<u8>,
    pub routing_rule: String,
    pub assigned_at: DateTime<Utc>,
    /// When the complaint reached intake; None for work older than the record.
    pub received_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub proposal: Option<Proposal>,
    /// The reply in clear: only while the reply command is handled (for the notification),
    /// or from before sealing. Stored and published sealed.
    pub reply: Option<String>,
    /// The reply sealed with the complaint's text key.
    pub sealed_reply: Vec<u8>,
    pub escalation_level: u32,
    /// When the current round reached these steps.
    pub accepted_at: Option<DateTime<Utc>>,
    pub replied_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Departments that held the work before, oldest first.
    pub previous_departments: Vec<String>,
    /// Replies the complainant rejected in this round.
    pub contests: u32,
    /// The completion date committed to in this round.
    pub committed_on: Option<chrono::NaiveDate>,
    /// The complaint's attachments, by reference.
    pub attachments: Vec<redress_proto::v1::FileRef>,
    /// The ticket this duplicate was merged into.
    pub merged_into: Option<String>,
    /// This round's requests for evidence, oldest first; the last may still be waiting.
    pub evidence: Vec<EvidencePause>,
    /// This round was answered with an explanation instead of a proposal.
    pub explained: bool,
}

/// What a transition did; also the `<change>` of its `work.<change>.<dept>` subject.
pub type Change = WorkChange;

fn state_name(s: WorkState) -> &'static str {
    match s {
        WorkState::Unspecified => "unknown",
        WorkState::Assigned => "assigned",
        WorkState::Accepted => "accepted",
        WorkState::Proposed => "proposed (waiting for approval)",
        WorkState::Approved => "approved",
        WorkState::Replied => "replied",
        WorkState::Resolved => "resolved",
        WorkState::Closed => "closed",
    }
}

impl Work {
    fn changed(&mut self, to: WorkState) {
        self.state = to;
        self.version += 1;
    }

    fn expect_state(&self, wanted: WorkState, verb: &str) -> Result<(), Refusal> {
        if self.state == wanted {
            return Ok(());
        }
        Err(Refusal::WrongState {
            message: format!(
                "cannot {verb} {}: it is {}, and {verb} needs it {}",
                self.ticket,
                state_name(self.state),
                state_name(wanted)
            ),
        })
    }

    /// Only members of the department that owns the work may act on it.
    pub fn authorise(
        &self,
        playbook: &Playbook,
        department: &str,
        actor: &str,
    ) -> Result<(), Refusal> {
        if department.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "department",
            });
        }
        if actor.trim().is_empty() {
            return Err(Refusal::Missing { field: "actor" });
        }
        self.owned_by(department)?;
        // The manager answers for the department's work whether listed as a member or not.
        let member = playbook
            .department(department)
            .is_some_and(|d| d.manager == actor || d.members.iter().any(|m| m == actor));
        if !member {
            return Err(Refusal::Forbidden {
                field: "actor",
                message: format!("{actor} is not a member of {department}"),
            });
        }
        Ok(())
    }

    /// The command was sent for the department that holds the work.
    pub fn owned_by(&self, department: &str) -> Result<(), Refusal> {
        if department != self.department {
            return Err(Refusal::Forbidden {
                field: "department",
                message: format!(
                    "{} belongs to {}, not to {department}",
                    self.ticket, self.department
                ),
            });
        }
        Ok(())
    }

    pub fn accept(&mut self, actor: &str, now: DateTime<Utc>) -> Result<Change, Refusal> {
        self.expect_state(WorkState::Assigned, "accept")?;
        self.accepted_by = Some(actor.to_string());
        self.accepted_at = Some(now);
        self.changed(WorkState::Accepted);
        Ok(WorkChange::Accepted)
    }

    pub fn propose(
        &mut self,
        actor: &str,
        p: &Propose,
        default_currency: &str,
    ) -> Result<Change, Refusal> {
        if Responsibility::try_from(p.responsibility).unwrap_or_default()
            == Responsibility::Unspecified
        {
            return Err(Refusal::Missing {
                field: "propose.responsibility",
            });
        }
        if p.remedy.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "propose.remedy",
            });
        }
        if p.remedy.len() > 16 * 1024 {
            return Err(Refusal::Malformed {
                field: "propose.remedy",
                message: "at most 16 KiB".into(),
            });
        }
        if p.compensation_minor < 0 {
            return Err(Refusal::Malformed {
                field: "propose.compensation_minor",
                message: "must not be negative".into(),
            });
        }
        let currency = if p.currency.is_empty() {
            default_currency.to_string()
        } else if p.currency.len() == 3 && p.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            p.currency.clone()
        } else {
            return Err(Refusal::Malformed {
                field: "propose.currency",
                message: "an ISO 4217 code such as CNY".into(),
            });
        };
        self.expect_state(WorkState::Accepted, "propose a resolution for")?;
        let kind = match ProposalKind::try_from(p.kind) {
            Ok(ProposalKind::Unspecified) if p.compensation_minor > 0 => ProposalKind::Compensation,
            Ok(ProposalKind::Unspecified) => ProposalKind::Apology,
            Ok(kind) => kind,
            Err(_) => {
                return Err(Refusal::Malformed {
                    field: "propose.kind",
                    message: format!("{} is not a kind of proposal", p.kind),
                });
            }
        };
        self.proposal = Some(Proposal {
            kind: kind as i32,
            proposal_id: Uuid::now_v7().to_string(),
            responsibility: p.responsibility,
            remedy: p.remedy.trim().to_string(),
            compensation_minor: p.compensation_minor,
            currency,
            proposed_by: actor.to_string(),
        });
        self.changed(WorkState::Proposed);
        Ok(WorkChange::Proposed)
    }

    pub fn reply(&mut self, message: &str, now: DateTime<Utc>) -> Result<Change, Refusal> {
        if message.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "reply.message",
            });
        }
        if message.len() > 16 * 1024 {
            return Err(Refusal::Malformed {
                field: "reply.message",
                message: "at most 16 KiB".into(),
            });
        }
        if self.state == WorkState::Proposed {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot reply on {}: its proposal is waiting for approval",
                    self.ticket
                ),
            });
        }
        self.expect_state(WorkState::Approved, "reply on")?;
        self.reply = Some(message.trim().to_string());
        self.replied_at = Some(now);
        self.changed(WorkState::Replied);
        Ok(WorkChange::Replied)
    }

    pub fn resolve(&mut self, now: DateTime<Utc>) -> Result<Change, Refusal> {
        self.expect_state(WorkState::Replied, "resolve")?;
        self.resolved_at = Some(now);
        self.changed(WorkState::Resolved);
        Ok(WorkChange::Resolved)
    }

    /// Hands misrouted work to another department, which receives it as new work. Only before
    /// a proposal: once a remedy is on the table the department that made it sees it through.
    /// Work goes back to a department that held it before only when the holding department's
    /// manager says so, so two departments cannot bounce a complaint between them.
    pub fn transfer(
        &mut self,
        playbook: &Playbook,
        actor: &str,
        t: &Transfer,
    ) -> Result<WorkTransfer, Refusal> {
        let to = t.to_department.trim();
        if to.is_empty() {
            return Err(Refusal::Missing {
                field: "transfer.to_department",
            });
        }
        for (field, text) in [
            ("transfer.reason", &t.reason),
            ("transfer.understood", &t.understood),
        ] {
            if text.trim().is_empty() {
                return Err(Refusal::Missing { field });
            }
        }
        if playbook.department(to).is_none() {
            return Err(Refusal::Malformed {
                field: "transfer.to_department",
                message: format!("{to} is not a department of playbook {}", playbook.key),
            });
        }
        if to == self.department {
            return Err(Refusal::Malformed {
                field: "transfer.to_department",
                message: format!("{} already belongs to {to}", self.ticket),
            });
        }
        if !matches!(self.state, WorkState::Assigned | WorkState::Accepted) {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot transfer {}: it is {}; only work not yet proposed on can be handed on",
                    self.ticket,
                    state_name(self.state)
                ),
            });
        }
        let sent_back = self.previous_departments.iter().any(|d| d == to);
        let member = playbook
            .department(&self.department)
            .is_some_and(|d| d.manager == actor || d.members.iter().any(|m| m == actor));
        if !sent_back && !member {
            return Err(Refusal::Forbidden {
                field: "actor",
                message: format!("{actor} is not a member of {}", self.department),
            });
        }
        if sent_back {
            let manager = playbook
                .department(&self.department)
                .map(|d| d.manager.as_str())
                .unwrap_or_default();
            let arbiters = &playbook.routing.send_back_by;
            if actor != manager && !arbiters.iter().any(|a| a == actor) {
                let others = if arbiters.is_empty() {
                    String::new()
                } else {
                    format!(" (or {})", arbiters.join(", "))
                };
                return Err(Refusal::Forbidden {
                    field: "actor",
                    message: format!(
                        "{} came from {to}; only {manager}, manager of {}{others}, may send it \
                         back",
                        self.ticket, self.department
                    ),
                });
            }
        }
        let hop = WorkTransfer {
            from_department: self.department.clone(),
            to_department: to.to_string(),
            reason: t.reason.trim().to_string(),
            understood: t.understood.trim().to_string(),
            sent_back,
        };
        self.move_to(to);
        Ok(hop)
    }

    /// Hands the work to `to` as new work there.
    fn move_to(&mut self, to: &str) {
        let from = std::mem::replace(&mut self.department, to.to_string());
        self.previous_departments.push(from);
        self.accepted_by = None;
        self.accepted_at = None;
        self.changed(WorkState::Assigned);
    }

    /// Corrects the classification before the work is resolved: the fields given (empty or
    /// unspecified ones stay), which must be the playbook's and change something. Returns
    /// what the classification was.
    pub fn reclassify(
        &mut self,
        playbook: &Playbook,
        r: &Reclassify,
    ) -> Result<(Change, Reclassification), Refusal> {
        if r.reason.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "reclassify.reason",
            });
        }
        let c = &playbook.classification;
        let nature = r.nature.trim();
        if !nature.is_empty() && !c.natures.iter().any(|n| n == nature) {
            return Err(Refusal::Malformed {
                field: "reclassify.nature",
                message: format!("{nature:?} is not one of {}", c.natures.join(", ")),
            });
        }
        let category = r.category.trim();
        if !category.is_empty() && !c.categories.iter().any(|n| n == category) {
            return Err(Refusal::Malformed {
                field: "reclassify.category",
                message: format!("{category:?} is not one of {}", c.categories.join(", ")),
            });
        }
        let Ok(severity) = Severity::try_from(r.severity) else {
            return Err(Refusal::Malformed {
                field: "reclassify.severity",
                message: format!("{} is not a severity", r.severity),
            });
        };
        let Ok(urgency) = Urgency::try_from(r.urgency) else {
            return Err(Refusal::Malformed {
                field: "reclassify.urgency",
                message: format!("{} is not an urgency", r.urgency),
            });
        };
        let was = Reclassification {
            nature: self.nature.clone(),
            category: self.category.clone(),
            severity: self.severity,
            urgency: self.urgency,
            reason: r.reason.trim().to_string(),
        };
        let new_nature = if nature.is_empty() {
            &was.nature
        } else {
            nature
        };
        let new_category = if category.is_empty() {
            &was.category
        } else {
            category
        };
        let new_severity = if severity == Severity::Unspecified {
            was.severity
        } else {
            severity as i32
        };
        let new_urgency = if urgency == Urgency::Unspecified {
            was.urgency
        } else {
            urgency as i32
        };
        if new_nature == was.nature
            && new_category == was.category
            && new_severity == was.severity
            && new_urgency == was.urgency
        {
            return Err(Refusal::Malformed {
                field: "reclassify",
                message: format!("{} is classified so already", self.ticket),
            });
        }
        if matches!(self.state, WorkState::Resolved | WorkState::Closed) {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot reclassify {}: it is {}",
                    self.ticket,
                    state_name(self.state)
                ),
            });
        }
        self.nature = new_nature.to_string();
        self.category = new_category.to_string();
        self.severity = new_severity;
        self.urgency = new_urgency;
        self.version += 1;
        Ok((WorkChange::Reclassified, was))
    }

    /// After a correction: the work moves to the department the routing rules now choose,
    /// if that is another and nothing has been proposed yet. No bounce check: the rules
    /// decide, not a department.
    pub fn reroute(&mut self, playbook: &Playbook) -> Option<WorkTransfer> {
        if !matches!(self.state, WorkState::Assigned | WorkState::Accepted) {
            return None;
        }
        let severity = redress_playbook::Severity::from_proto(
            Severity::try_from(self.severity).unwrap_or_default(),
        )
        .unwrap_or(redress_playbook::Severity::General);
        let (to, rule) = crate::domain::route::route(&playbook.routing, &self.category, severity);
        if to == self.department {
            return None;
        }
        let hop = WorkTransfer {
            from_department: self.department.clone(),
            to_department: to.to_string(),
            reason: format!("reclassified; routing rule {rule}"),
            understood: String::new(),
            sent_back: self.previous_departments.iter().any(|d| d == to),
        };
        self.routing_rule = rule.to_string();
        self.move_to(to);
        Some(hop)
    }

    /// A complaint solved where it was made, taken on by whoever solved it: the (sealed)
    /// account of what was done is its answer; the caller resolves it.
    pub fn answered_on_the_spot(
        &mut self,
        sealed_solution: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Change, Refusal> {
        self.expect_state(WorkState::Accepted, "record as solved on the spot")?;
        self.sealed_reply = sealed_solution;
        self.replied_at = Some(now);
        self.changed(WorkState::Replied);
        Ok(WorkChange::Replied)
    }

    /// The department told the complainant how the matter stands: after accepting it and
    /// before resolving it.
    pub fn report_progress(&mut self, message: &str) -> Result<Change, Refusal> {
        if message.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "progress.message",
            });
        }
        if !matches!(
            self.state,
            WorkState::Accepted | WorkState::Proposed | WorkState::Approved | WorkState::Replied
        ) {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot report progress on {}: it is {}; accept it first, and nothing is \
                     reported after it is resolved",
                    self.ticket,
                    state_name(self.state)
                ),
            });
        }
        self.version += 1;
        Ok(WorkChange::ProgressReported)
    }

    /// The fast path's reply: an explanation instead of a remedy, on accepted work the
    /// playbook lets the department explain (its nature, or the company not being at fault).
    /// Resolving follows as after any reply.
    pub fn explain(
        &mut self,
        playbook: &Playbook,
        e: &Explain,
        now: DateTime<Utc>,
    ) -> Result<Change, Refusal> {
        if e.message.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "explain.message",
            });
        }
        let routing = &playbook.routing;
        let by_nature = routing.explain_natures.contains(&self.nature);
        let not_liable = e.not_liable && routing.explain_not_liable;
        if !(by_nature || not_liable) {
            let allowed = if routing.explain_natures.is_empty() {
                "none".to_string()
            } else {
                routing.explain_natures.join(", ")
            };
            return Err(Refusal::Forbidden {
                field: if e.not_liable {
                    "explain.not_liable"
                } else {
                    "explain"
                },
                message: format!(
                    "{} is {}; playbook {} lets a department explain and resolve without a \
                     proposal only work of nature {allowed}{}",
                    self.ticket,
                    self.nature,
                    playbook.key,
                    if routing.explain_not_liable {
                        ", or what is not the company's fault (not_liable)"
                    } else {
                        ""
                    }
                ),
            });
        }
        self.expect_state(WorkState::Accepted, "explain")?;
        self.explained = true;
        self.reply = Some(e.message.trim().to_string());
        self.replied_at = Some(now);
        self.changed(WorkState::Replied);
        Ok(WorkChange::Replied)
    }

    /// An entry of the investigation record, from acceptance until the work is closed (the
    /// cause may be found after the reply; corrective actions outlive the resolution).
    pub fn investigate(&mut self, i: &Investigate) -> Result<Change, Refusal> {
        let responsibility = Responsibility::try_from(i.responsibility).unwrap_or_default();
        if i.notes.trim().is_empty()
            && i.cause.trim().is_empty()
            && responsibility == Responsibility::Unspecified
            && i.actions.is_empty()
            && i.files.is_empty()
        {
            return Err(Refusal::Missing {
                field: "investigate",
            });
        }
        for (list, n) in [
            ("investigate.actions", i.actions.len()),
            ("investigate.files", i.files.len()),
        ] {
            if n > 20 {
                return Err(Refusal::Malformed {
                    field: list,
                    message: format!("at most 20, not {n}"),
                });
            }
        }
        for a in &i.actions {
            if ActionKind::try_from(a.kind).unwrap_or_default() == ActionKind::Unspecified {
                return Err(Refusal::Missing {
                    field: "investigate.actions.kind",
                });
            }
            if a.what.trim().is_empty() {
                return Err(Refusal::Missing {
                    field: "investigate.actions.what",
                });
            }
            if a.owner.trim().is_empty() {
                return Err(Refusal::Missing {
                    field: "investigate.actions.owner",
                });
            }
            if chrono::NaiveDate::parse_from_str(a.due_on.trim(), "%Y-%m-%d").is_err() {
                return Err(Refusal::Malformed {
                    field: "investigate.actions.due_on",
                    message: format!("{:?} is not a day (YYYY-MM-DD)", a.due_on),
                });
            }
        }
        for f in &i.files {
            let scheme = f.uri.split_once("://").map(|(s, _)| s).unwrap_or_default();
            if scheme.is_empty()
                || !scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            {
                return Err(Refusal::Malformed {
                    field: "investigate.files.uri",
                    message: format!("{:?} is not an absolute URI (https://…, s3://…)", f.uri),
                });
            }
        }
        if matches!(self.state, WorkState::Assigned | WorkState::Closed) {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot record an investigation on {}: it is {}",
                    self.ticket,
                    state_name(self.state)
                ),
            });
        }
        self.version += 1;
        Ok(WorkChange::Investigated)
    }

    /// A rectification plan with its completion date, between acceptance and resolution; the
    /// date may not be before `today` (the organisation's date now).
    pub fn commit(&mut self, c: &CommitDate, today: chrono::NaiveDate) -> Result<Change, Refusal> {
        if c.plan.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "commit.plan",
            });
        }
        let Ok(due) = chrono::NaiveDate::parse_from_str(c.due_on.trim(), "%Y-%m-%d") else {
            return Err(Refusal::Malformed {
                field: "commit.due_on",
                message: format!("{:?} is not a day (YYYY-MM-DD)", c.due_on),
            });
        };
        if due < today {
            return Err(Refusal::Malformed {
                field: "commit.due_on",
                message: format!("{due} is in the past (today is {today})"),
            });
        }
        if !matches!(
            self.state,
            WorkState::Accepted | WorkState::Proposed | WorkState::Approved | WorkState::Replied
        ) {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot commit to a date on {}: it is {}; accept it first, and nothing is \
                     committed after it is resolved",
                    self.ticket,
                    state_name(self.state)
                ),
            });
        }
        self.committed_on = Some(due);
        self.version += 1;
        Ok(WorkChange::Committed)
    }

    /// The open request for evidence, if the department is waiting on the complainant.
    pub fn waiting_for_evidence(&self) -> Option<&EvidencePause> {
        self.evidence.last().filter(|p| p.ended_at.is_none())
    }

    /// The department asks the complainant for evidence while investigating: on accepted
    /// work, one request at a time. The caller seals `what` into the new request.
    pub fn request_evidence(&mut self, what: &str, now: DateTime<Utc>) -> Result<Change, Refusal> {
        if what.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "request_evidence.what",
            });
        }
        self.expect_state(WorkState::Accepted, "request evidence on")?;
        if let Some(open) = self.waiting_for_evidence() {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot request evidence on {}: request {} is still waiting for the \
                     complainant",
                    self.ticket, open.seq
                ),
            });
        }
        self.evidence.push(EvidencePause {
            seq: self.evidence.len() as u32 + 1,
            requested_at: ts(now),
            ended_at: None,
            supplied: false,
            sealed_what: Vec::new(),
        });
        self.version += 1;
        Ok(WorkChange::EvidenceRequested)
    }

    /// The complainant answered request `seq`; None when that request is not waiting any
    /// more (answered before, or the department went on without it): the answer is kept by
    /// intake but changes nothing here.
    pub fn evidence_supplied(&mut self, seq: u32, at: DateTime<Utc>) -> Option<Change> {
        if self.state == WorkState::Closed {
            return None;
        }
        let open = self.evidence.last_mut().filter(|p| p.ended_at.is_none())?;
        if open.seq != seq {
            return None;
        }
        open.ended_at = ts(at);
        open.supplied = true;
        self.version += 1;
        Some(WorkChange::EvidenceReceived)
    }

    /// The complainant never answered the open request: the work is answered with `message`
    /// (the playbook's explanation) and the wait ends unanswered; the caller resolves it.
    /// None unless a request is waiting on accepted work.
    pub fn close_unanswered(&mut self, message: &str, now: DateTime<Utc>) -> Option<Change> {
        if self.state != WorkState::Accepted || self.waiting_for_evidence().is_none() {
            return None;
        }
        self.explained = true;
        self.reply = Some(message.trim().to_string());
        self.replied_at = Some(now);
        self.changed(WorkState::Replied);
        self.stop_waiting_unless_accepted(now);
        Some(WorkChange::Replied)
    }

    /// Work that left ACCEPTED (a proposal, an explanation, a transfer, a closure) no longer
    /// waits for evidence: the open request ends unanswered, and its clocks run again.
    pub fn stop_waiting_unless_accepted(&mut self, now: DateTime<Utc>) {
        if self.state == WorkState::Accepted {
            return;
        }
        if let Some(open) = self.evidence.last_mut().filter(|p| p.ended_at.is_none()) {
            open.ended_at = ts(now);
        }
    }

    /// This work repeats `survivor`'s (already locked, and not this one): it closes into it.
    /// Only before it is resolved, and never into closed work.
    pub fn merge_into(&mut self, survivor: &Work, reason: &str) -> Result<Change, Refusal> {
        if reason.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "merge.reason",
            });
        }
        if matches!(self.state, WorkState::Resolved | WorkState::Closed) {
            return Err(Refusal::WrongState {
                message: format!(
                    "cannot merge {}: it is {}",
                    self.ticket,
                    state_name(self.state)
                ),
            });
        }
        if survivor.state == WorkState::Closed {
            return Err(Refusal::Malformed {
                field: "merge.into_ticket",
                message: format!("{} is closed; merge into open work", survivor.ticket),
            });
        }
        self.merged_into = Some(survivor.ticket.clone());
        self.changed(WorkState::Closed);
        Ok(WorkChange::Merged)
    }

    /// The complainant rejected the reply: the department proposes again in the same round
    /// (a dissatisfied survey, by contrast, opens a new round).
    pub fn contest(&mut self, objection: &str) -> Result<Change, Refusal> {
        if objection.trim().is_empty() {
            return Err(Refusal::Missing {
                field: "contest.objection",
            });
        }
        self.expect_state(WorkState::Replied, "record a rejected reply on")?;
        Ok(self.reopen_negotiation())
    }

    /// The complainant rejected the reply through their channel; None unless a reply is
    /// waiting for their answer.
    pub fn rejected_by_complainant(&mut self) -> Option<Change> {
        (self.state == WorkState::Replied).then(|| self.reopen_negotiation())
    }

    fn reopen_negotiation(&mut self) -> Change {
        self.proposal = None;
        self.reply = None;
        self.sealed_reply.clear();
        self.replied_at = None;
        self.contests += 1;
        self.changed(WorkState::Accepted);
        WorkChange::Contested
    }

    /// An approval decision; ignored unless it is about the proposal now waiting (a stale or
    /// repeated decision changes nothing).
    pub fn decided(&mut self, proposal_id: &str, approved: bool) -> Option<Change> {
        let current = self.proposal.as_ref().map(|p| p.proposal_id.as_str());
        if self.state != WorkState::Proposed || current != Some(proposal_id) {
            return None;
        }
        if approved {
            self.changed(WorkState::Approved);
            Some(WorkChange::Approved)
        } else {
            // Back to the department, which proposes again.
            self.changed(WorkState::Accepted);
            Some(WorkChange::Rejected)
        }
    }

    /// A round answered with an explanation closes without a survey when the playbook says
    /// so (`survey.after_explain = false`). None otherwise.
    pub fn close_unsurveyed(&mut self, playbook: &Playbook) -> Option<Change> {
        if !self.explained || playbook.survey.after_explain {
            return None;
        }
        self.close(self.round)
    }

    /// The complainant is satisfied with `round`.
    pub fn close(&mut self, round: u32) -> Option<Change> {
        if self.round != round || self.state != WorkState::Resolved {
            return None;
        }
        self.changed(WorkState::Closed);
        Some(WorkChange::Closed)
    }

    /// The complainant withdrew the complaint: the work closes from whatever state it is in.
    /// None when it is closed already (a repeated withdrawal, or a satisfied complainant).
    pub fn withdraw(&mut self) -> Option<Change> {
        if self.state == WorkState::Closed {
            return None;
        }
        self.changed(WorkState::Closed);
        Some(WorkChange::Withdrawn)
    }

    /// The complainant is not satisfied with `round`: the department handles it again.
    pub fn reopen(&mut self, round: u32, now: DateTime<Utc>) -> Option<Change> {
        if self.round != round || self.state != WorkState::Resolved {
            return None;
        }
        self.round += 1;
        self.accepted_by = None;
        self.proposal = None;
        self.reply = None;
        self.sealed_reply.clear();
        self.assigned_at = now;
        self.accepted_at = None;
        self.replied_at = None;
        self.resolved_at = None;
        self.contests = 0;
        self.committed_on = None;
        self.evidence.clear();
        self.explained = false;
        self.changed(WorkState::Assigned);
        Some(WorkChange::Assigned)
    }

    /// A deadline of the current round passed. Returns the new escalation level, or None
    /// when the work is already resolved or closed (a late breach would only page a manager
    /// about finished work) or the breach belongs to an earlier round.
    pub fn escalate(&mut self, round: u32) -> Option<u32> {
        if matches!(self.state, WorkState::Resolved | WorkState::Closed) || round != self.round {
            return None;
        }
        self.escalation_level += 1;
        self.version += 1;
        Some(self.escalation_level)
    }

    pub fn to_proto(&self) -> WorkItem {
        WorkItem {
            work_id: self.work_id.to_string(),
            ticket: self.ticket.clone(),
            department: self.department.clone(),
            state: self.state as i32,
            round: self.round,
            version: self.version,
            category: self.category.clone(),
            severity: self.severity,
            urgency: self.urgency,
            channel: self.channel.clone(),
            external_id: self.external_id.clone(),
            text: self.text.clone(),
            sealed_text: self.sealed_text.clone(),
            text_erased: false,
            proposal: self.proposal.clone(),
            assigned_at: ts(self.assigned_at),
            accepted_by: self.accepted_by.clone().unwrap_or_default(),
            reply: if self.sealed_reply.is_empty() {
                self.reply.clone().unwrap_or_default()
            } else {
                String::new()
            },
            sealed_reply: self.sealed_reply.clone(),
            escalation_level: self.escalation_level,
            routing_rule: self.routing_rule.clone(),
            nature: self.nature.clone(),
            accepted_at: self.accepted_at.map(from_chrono),
            replied_at: self.replied_at.map(from_chrono),
            resolved_at: self.resolved_at.map(from_chrono),
            previous_departments: self.previous_departments.clone(),
            contests: self.contests,
            committed_on: self
                .committed_on
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            attachments: self.attachments.clone(),
            merged_into: self.merged_into.clone().unwrap_or_default(),
            evidence: self.evidence.clone(),
            explained: self.explained,
            received_at: self.received_at.map(from_chrono),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> Work {
        Work {
            work_id: Uuid::now_v7(),
            complaint_id: Uuid::now_v7(),
            ticket: "RD-261123-000001-5".into(),
            playbook: "default".into(),
            correlation_id: "c".into(),
            department: "logistics".into(),
            state: WorkState::Assigned,
            round: 1,
            version: 1,
            nature: "valid".into(),
            category: "delivery".into(),
            severity: 1,
            urgency: 1,
            channel: "sms".into(),
            external_id: "x".into(),
            text: "t".into(),
            sealed_text: Vec::new(),
            sealed_reply: Vec::new(),
            routing_rule: "route.delivery".into(),
            assigned_at: Utc::now(),
            accepted_by: None,
            proposal: None,
            reply: None,
            escalation_level: 0,
            accepted_at: None,
            replied_at: None,
            resolved_at: None,
            previous_departments: Vec::new(),
            contests: 0,
            committed_on: None,
            attachments: Vec::new(),
            merged_into: None,
            evidence: Vec::new(),
            explained: false,
            received_at: None,
        }
    }

    fn proposal(comp: i64) -> Propose {
        Propose {
            responsibility: Responsibility::CompanyLiable as i32,
            remedy: "re-ship".into(),
            compensation_minor: comp,
            currency: String::new(),
            kind: 0,
        }
    }

    #[test]
    fn the_happy_path_moves_forward_one_version_at_a_time() {
        let mut w = work();
        assert_eq!(w.accept("zhou.qiang", Utc::now()), Ok(WorkChange::Accepted));
        assert_eq!(
            w.propose("zhou.qiang", &proposal(100), "CNY"),
            Ok(WorkChange::Proposed)
        );
        let id = w.proposal.as_ref().unwrap().proposal_id.clone();
        assert_eq!(w.decided(&id, true), Some(WorkChange::Approved));
        assert_eq!(
            w.reply("sorry, re-shipped", Utc::now()),
            Ok(WorkChange::Replied)
        );
        assert_eq!(w.resolve(Utc::now()), Ok(WorkChange::Resolved));
        assert_eq!(w.close(1), Some(WorkChange::Closed));
        assert_eq!(w.version, 7);
        assert_eq!(w.state, WorkState::Closed);
    }

    #[test]
    fn one_evidence_request_waits_at_a_time_and_moving_on_ends_it() {
        let t0 = Utc::now();
        let mut w = work();
        // Not before the work is accepted.
        assert!(matches!(
            w.request_evidence("签收单", t0),
            Err(Refusal::WrongState { .. })
        ));
        w.accept("zhou.qiang", t0).unwrap();
        assert_eq!(
            w.request_evidence(" ", t0),
            Err(Refusal::Missing {
                field: "request_evidence.what"
            })
        );
        assert_eq!(
            w.request_evidence("签收单", t0),
            Ok(WorkChange::EvidenceRequested)
        );
        assert_eq!(w.waiting_for_evidence().map(|p| p.seq), Some(1));
        assert!(matches!(
            w.request_evidence("再要一次", t0),
            Err(Refusal::WrongState { .. })
        ));
        // An answer to a request that is not the open one changes nothing.
        let v = w.version;
        assert_eq!(w.evidence_supplied(2, t0), None);
        assert_eq!(w.version, v);
        let t1 = t0 + chrono::Duration::hours(30);
        assert_eq!(
            w.evidence_supplied(1, t1),
            Some(WorkChange::EvidenceReceived)
        );
        assert_eq!(w.evidence_supplied(1, t1), None, "answered once");
        assert!(w.evidence[0].supplied);
        assert_eq!(w.evidence[0].ended_at, ts(t1));
        // A second request, which the department stops waiting for by proposing.
        w.request_evidence("发票", t1).unwrap();
        w.propose("zhou.qiang", &proposal(0), "CNY").unwrap();
        w.stop_waiting_unless_accepted(t1);
        assert!(w.waiting_for_evidence().is_none());
        assert!(!w.evidence[1].supplied);
        assert_eq!(w.evidence_supplied(2, t1), None);
    }

    #[test]
    fn an_unanswered_request_closes_with_the_explanation() {
        let t0 = Utc::now();
        let mut w = work();
        w.accept("zhou.qiang", t0).unwrap();
        assert_eq!(w.close_unanswered("证据不足", t0), None, "nothing asked");
        w.request_evidence("照片", t0).unwrap();
        assert_eq!(
            w.close_unanswered("证据不足", t0),
            Some(WorkChange::Replied)
        );
        assert_eq!(w.reply.as_deref(), Some("证据不足"));
        assert!(w.waiting_for_evidence().is_none());
        assert_eq!(w.resolve(t0), Ok(WorkChange::Resolved));
    }

    #[test]
    fn commands_out_of_order_are_refused_and_change_nothing() {
        let mut w = work();
        let before = w.clone();
        assert!(matches!(
            w.resolve(Utc::now()),
            Err(Refusal::WrongState { .. })
        ));
        assert!(matches!(
            w.reply("x", Utc::now()),
            Err(Refusal::WrongState { .. })
        ));
        assert!(matches!(
            w.propose("a", &proposal(0), "CNY"),
            Err(Refusal::WrongState { .. })
        ));
        assert_eq!(w, before);
        w.accept("a", Utc::now()).unwrap();
        assert!(matches!(
            w.accept("a", Utc::now()),
            Err(Refusal::WrongState { .. })
        ));
    }

    #[test]
    fn a_rejection_sends_the_work_back_and_a_stale_decision_is_ignored() {
        let mut w = work();
        w.accept("a", Utc::now()).unwrap();
        w.propose("a", &proposal(90000), "CNY").unwrap();
        let first = w.proposal.as_ref().unwrap().proposal_id.clone();
        assert_eq!(w.decided(&first, false), Some(WorkChange::Rejected));
        assert_eq!(w.state, WorkState::Accepted);
        assert_eq!(w.decided(&first, true), None);
        w.propose("a", &proposal(20000), "CNY").unwrap();
        assert_eq!(
            w.decided(&first, true),
            None,
            "decision on the old proposal"
        );
        assert_eq!(w.state, WorkState::Proposed);
    }

    #[test]
    fn reopening_starts_a_new_round_once() {
        let mut w = work();
        w.accept("a", Utc::now()).unwrap();
        w.propose("a", &proposal(0), "CNY").unwrap();
        let id = w.proposal.as_ref().unwrap().proposal_id.clone();
        w.decided(&id, true);
        w.reply("done", Utc::now()).unwrap();
        w.resolve(Utc::now()).unwrap();
        let later = Utc::now();
        assert_eq!(w.reopen(1, later), Some(WorkChange::Assigned));
        assert_eq!((w.round, w.state), (2, WorkState::Assigned));
        assert_eq!(w.reopen(1, later), None, "the same reopen again");
        assert_eq!(w.close(1), None, "a stale close");
        assert!(w.proposal.is_none() && w.accepted_by.is_none());
    }

    #[test]
    fn bad_proposals_name_the_field() {
        let mut w = work();
        w.accept("a", Utc::now()).unwrap();
        let mut p = proposal(0);
        p.remedy = " ".into();
        assert_eq!(
            w.propose("a", &p, "CNY"),
            Err(Refusal::Missing {
                field: "propose.remedy"
            })
        );
        let mut p = proposal(-1);
        p.currency = "CNY".into();
        assert!(matches!(
            w.propose("a", &p, "CNY"),
            Err(Refusal::Malformed {
                field: "propose.compensation_minor",
                ..
            })
        ));
        let mut p = proposal(1);
        p.responsibility = 0;
        assert_eq!(
            w.propose("a", &p, "CNY"),
            Err(Refusal::Missing {
                field: "propose.responsibility"
            })
        );
    }

    #[test]
    fn escalation_counts_breaches_of_the_current_round_only() {
        let mut w = work();
        assert_eq!(w.escalate(1), Some(1));
        assert_eq!(w.escalate(1), Some(2));
        assert_eq!(w.escalate(0), None);
        w.state = WorkState::Resolved;
        assert_eq!(w.escalate(1), None, "finished work");
    }
}
