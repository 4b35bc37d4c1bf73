//! Playbooks: everything an organisation configures about complaint handling (taxonomy and
//! classification rules, departments and routing rules, SLA policy, approval policy,
//! survey), as one versioned TOML file per playbook under `<dir>/<key>/playbook.toml`.
//!
//! Each service reads its own part and records the version it loaded in its own schema; a
//! decision names the version that made it. Files are validated as a whole when loaded, so a
//! broken playbook stops a service at start instead of misrouting complaints later.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub mod check;

use redress_calendar::DeadlineSpan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid playbook: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("playbook {key}: {field}: {message}")]
    Invalid {
        key: String,
        field: String,
        message: String,
    },
    #[error("no playbook {0:?} is loaded")]
    Unknown(String),
}

/// The playbooks built into the binary, by key, as their files read.
pub const BUILTIN: [(&str, &str); 6] = [
    (
        "default",
        include_str!("../../../playbooks/default/playbook.toml"),
    ),
    (
        "pest-control",
        include_str!("../../../playbooks/pest-control/playbook.toml"),
    ),
    (
        "real-estate",
        include_str!("../../../playbooks/real-estate/playbook.toml"),
    ),
    (
        "express",
        include_str!("../../../playbooks/express/playbook.toml"),
    ),
    (
        "after-sales",
        include_str!("../../../playbooks/after-sales/playbook.toml"),
    ),
    (
        "laboratory",
        include_str!("../../../playbooks/laboratory/playbook.toml"),
    ),
];

/// Severity as playbooks spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    General,
    Major,
}

impl Severity {
    pub fn to_proto(self) -> redress_proto::v1::Severity {
        match self {
            Severity::General => redress_proto::v1::Severity::General,
            Severity::Major => redress_proto::v1::Severity::Major,
        }
    }

    pub fn from_proto(s: redress_proto::v1::Severity) -> Option<Self> {
        match s {
            redress_proto::v1::Severity::General => Some(Severity::General),
            redress_proto::v1::Severity::Major => Some(Severity::Major),
            redress_proto::v1::Severity::Unspecified => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Normal,
    Urgent,
    Emergency,
}

impl Urgency {
    pub fn to_proto(self) -> redress_proto::v1::Urgency {
        match self {
            Urgency::Normal => redress_proto::v1::Urgency::Normal,
            Urgency::Urgent => redress_proto::v1::Urgency::Urgent,
            Urgency::Emergency => redress_proto::v1::Urgency::Emergency,
        }
    }

    pub fn from_proto(u: redress_proto::v1::Urgency) -> Option<Self> {
        match u {
            redress_proto::v1::Urgency::Normal => Some(Urgency::Normal),
            redress_proto::v1::Urgency::Urgent => Some(Urgency::Urgent),
            redress_proto::v1::Urgency::Emergency => Some(Urgency::Emergency),
            redress_proto::v1::Urgency::Unspecified => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub key: String,
    pub name: String,
    /// ISO 4217 code of compensation amounts.
    #[serde(default = "default_currency")]
    pub currency: String,
    pub classification: Classification,
    pub routing: Routing,
    pub sla: Sla,
    pub approval: Approval,
    pub survey: Survey,
    /// Requests for evidence from the complainant.
    #[serde(default)]
    pub evidence: Evidence,
    /// When the analysis reports are made and what counts as a spike.
    #[serde(default)]
    pub report: Report,
    /// Content hash of the file, filled in when loaded.
    #[serde(skip)]
    pub version: String,
}

fn default_currency() -> String {
    "CNY".into()
}

/// A rule that fires when the complaint text contains one of its phrases (case-insensitive).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhraseRule {
    pub id: String,
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    pub id: String,
    pub category: String,
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatureRule {
    pub id: String,
    pub nature: String,
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrgencyRule {
    pub id: String,
    pub urgency: Urgency,
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    pub categories: Vec<String>,
    pub default_category: String,
    pub natures: Vec<String>,
    pub default_nature: String,
    /// First match wins, in file order.
    #[serde(default)]
    pub category_rules: Vec<CategoryRule>,
    #[serde(default)]
    pub nature_rules: Vec<NatureRule>,
    /// Any match makes the complaint major (compensation, safety, media, lawyers …).
    #[serde(default)]
    pub major_rules: Vec<PhraseRule>,
    /// Complaints arriving by these channels are major (referrals from outside bodies).
    #[serde(default)]
    pub major_channels: Vec<String>,
    /// A complaint referred by an outside body (`referred_by` set) is major.
    #[serde(default = "yes")]
    pub major_when_referred: bool,
    /// The highest urgency among matching rules wins; none matching means normal.
    #[serde(default)]
    pub urgency_rules: Vec<UrgencyRule>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Subject token: lowercase letters, digits, `-`, `_`.
    pub key: String,
    pub name: String,
    /// Who hears of this department's breached deadlines first.
    pub manager: String,
    /// Who may act for the department (accept, propose, reply, resolve).
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    pub id: String,
    /// None matches any category.
    pub category: Option<String>,
    /// None matches any severity.
    pub severity: Option<Severity>,
    pub department: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub departments: Vec<Department>,
    /// First match wins, in file order.
    pub rules: Vec<RoutingRule>,
    /// Department for whatever no rule matches.
    pub fallback: String,
    /// Who is told at each escalation level after the department's manager (level 1).
    #[serde(default)]
    pub escalation: Vec<String>,
    /// Natures a department may answer with an explanation and resolve without a proposal
    /// (`redress work explain`): communicative complaints (inquiries, help-seeking, venting)
    /// and invalid ones, typically. Empty: never.
    #[serde(default)]
    pub explain_natures: Vec<String>,
    /// Whether a complaint of any nature that the department finds is not the company's fault
    /// may be explained and resolved the same way.
    #[serde(default)]
    pub explain_not_liable: bool,
    /// Who besides the holding department's manager may send transferred work back to a
    /// department it came from (e.g. the service manager who settles disputes over routing),
    /// and may correct a classification without being a member of the department.
    #[serde(default)]
    pub send_back_by: Vec<String>,
    /// Whether the receiving department of a transfer gets the round's open deadlines anew
    /// from the transfer (`restart`) or the time already used counts (`continue`).
    #[serde(default = "continue_deadlines")]
    pub transfer_deadlines: TransferDeadlines,
}

/// See [`Routing::transfer_deadlines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferDeadlines {
    Continue,
    Restart,
}

fn continue_deadlines() -> TransferDeadlines {
    TransferDeadlines::Continue
}

/// A step of a handling round: what starts a deadline's clock and what meets it.
///
/// Declared in lifecycle order; [`Step::rank`] gives the order of the steps every round goes
/// through in sequence, so that a policy met by a step that always comes before its start
/// (it could never be met) is refused when the playbook loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The complaint reached intake (the channel's own time).
    Received,
    /// The work reached a department (the first assignment of the round).
    Assigned,
    /// The department took it on.
    Accepted,
    /// It was moved to another department.
    Transferred,
    /// The department asked the complainant for evidence (the first request of the round).
    EvidenceRequested,
    /// The complainant supplied the evidence asked for.
    EvidenceSupplied,
    /// The first entry of the investigation record.
    Investigated,
    /// A proposal (remedy, compensation) was made.
    Proposed,
    /// A proposal was approved (or waved through by the approval policy).
    Approved,
    /// The complainant was answered.
    Replied,
    Resolved,
    /// A completion date was committed.
    Committed,
    /// A report to the complainant on how the matter stands (`work progress`, a committed
    /// date), or the resolution. Meets deadlines only.
    Progress,
    /// The round ended (the survey closed it, or it was withdrawn or merged).
    Closed,
    /// A step of an approval chain asked its approvers. A clock that starts here runs once
    /// for every step of every approval, and only `step_decided` meets it.
    StepAsked,
    /// That step was decided: approved (the next step is asked, or the approval is done) or
    /// the proposal rejected.
    StepDecided,
}

impl Step {
    pub const ALL: [Step; 16] = [
        Step::Received,
        Step::Assigned,
        Step::Accepted,
        Step::Transferred,
        Step::EvidenceRequested,
        Step::EvidenceSupplied,
        Step::Investigated,
        Step::Proposed,
        Step::Approved,
        Step::Replied,
        Step::Resolved,
        Step::Committed,
        Step::Progress,
        Step::Closed,
        Step::StepAsked,
        Step::StepDecided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Received => "received",
            Step::Assigned => "assigned",
            Step::Accepted => "accepted",
            Step::Transferred => "transferred",
            Step::EvidenceRequested => "evidence_requested",
            Step::EvidenceSupplied => "evidence_supplied",
            Step::Investigated => "investigated",
            Step::Proposed => "proposed",
            Step::Approved => "approved",
            Step::Replied => "replied",
            Step::Resolved => "resolved",
            Step::Committed => "committed",
            Step::Progress => "progress",
            Step::Closed => "closed",
            Step::StepAsked => "step_asked",
            Step::StepDecided => "step_decided",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The place of the steps every round takes, in this order: received, assigned,
    /// accepted, replied, resolved, closed. The others are optional or repeatable and have
    /// no fixed place.
    pub fn rank(self) -> Option<u8> {
        match self {
            Step::Received => Some(0),
            Step::Assigned => Some(1),
            Step::Accepted => Some(2),
            Step::Replied => Some(3),
            Step::Resolved => Some(4),
            Step::Closed => Some(5),
            _ => None,
        }
    }

    /// Whether a clock can start at this step: one that only meets (a progress report) or
    /// ends everything (closed) starts nothing.
    pub fn can_start(self) -> bool {
        !matches!(self, Step::Progress | Step::Closed | Step::StepDecided)
    }

    /// Whether the step belongs to an approval's steps rather than to the work's round (a
    /// round may see many approvals, each with many steps).
    pub fn of_approval(self) -> bool {
        matches!(self, Step::StepAsked | Step::StepDecided)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn assigned() -> Step {
    Step::Assigned
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlinePolicy {
    pub name: String,
    /// e.g. "30 minutes", "2 business hours", "3 working days".
    pub limit: String,
    /// The step whose time starts the clock; assignment unless the playbook says otherwise
    /// (express, 002: "a proposal within 2 hours of the investigation").
    #[serde(default = "assigned")]
    pub starts: Step,
    pub met_by: Step,
    /// None applies to every severity.
    pub severity: Option<Severity>,
    /// None applies to every urgency.
    pub urgency: Option<Urgency>,
    /// None applies to every nature.
    #[serde(default)]
    pub nature: Option<String>,
    /// None applies to every category.
    #[serde(default)]
    pub category: Option<String>,
    /// None applies to every channel (e.g. "referral": a regulator's deadline).
    #[serde(default)]
    pub channel: Option<String>,
    /// Starts again with the same limit each time it is met or breached, until the work is
    /// resolved (after-sales, 003: a progress report every 3 working days). Only for
    /// `met_by = "progress"`.
    #[serde(default)]
    pub repeat: bool,
}

impl DeadlinePolicy {
    pub fn span(&self) -> DeadlineSpan {
        self.limit
            .parse()
            .expect("limits are checked when the playbook loads")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Business calendar (see `redress calendar`) for working hours, days and holidays.
    pub calendar: String,
    /// For each deadline name the first entry whose severity and urgency match applies.
    pub deadlines: Vec<DeadlinePolicy>,
    /// A warning goes out when this share (in %) of a deadline's time has passed and it is
    /// not met yet; none means no warnings. The share is of working time for business-hour
    /// and working-day limits, of elapsed time for other limits and for emergency work.
    #[serde(default)]
    pub warn_at_percent: Option<u32>,
    /// The escalation ladder: who is told what as a deadline's time runs out, and after.
    #[serde(default)]
    pub ladder: Vec<Rung>,
    /// Who is paged when urgent work arrives outside working hours.
    #[serde(default)]
    pub on_call: Option<OnCall>,
}

/// One rung of the escalation ladder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// "50%" of the deadline's time, "breach", or "breach + <limit>" (e.g. "breach + 4
    /// hours", "breach + 1 working day").
    pub at: String,
    #[serde(rename = "do")]
    pub action: RungAction,
    /// "handler" (who took the work on, else the department's manager),
    /// "department_manager", a person of the playbook, or a role (an approver role or an
    /// entry of `routing.escalation`).
    pub to: String,
    /// The deadlines this rung is for; empty: every deadline.
    #[serde(default)]
    pub deadlines: Vec<String>,
}

/// When a rung is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RungAt {
    /// This share (in %) of the deadline's time has gone, counted as
    /// [`Sla::warn_at_percent`] counts it.
    Share(u32),
    /// The deadline was breached, this long ago (none: at the breach).
    Breach(Option<DeadlineSpan>),
}

impl Rung {
    pub fn when(&self) -> Result<RungAt, String> {
        let at = self.at.trim();
        if let Some(p) = at.strip_suffix('%') {
            return match p.trim().parse::<u32>() {
                Ok(p) if (1..=99).contains(&p) => Ok(RungAt::Share(p)),
                _ => Err(format!("{at:?}: a share must be 1% to 99%")),
            };
        }
        let Some(rest) = at.strip_prefix("breach") else {
            return Err(format!(
                "{at:?}: \"<n>%\", \"breach\" or \"breach + <limit>\""
            ));
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(RungAt::Breach(None));
        }
        let Some(limit) = rest.strip_prefix('+') else {
            return Err(format!("{at:?}: \"breach + <limit>\""));
        };
        limit
            .trim()
            .parse::<DeadlineSpan>()
            .map(|s| RungAt::Breach(Some(s)))
            .map_err(|e| format!("{at:?}: {e}"))
    }

    /// Whether the rung is for deadline `name`: named as the policy, or an instance of it
    /// (`progress_2` of a repeating `progress`, `approval_step_2` for the second step of an
    /// approval).
    pub fn covers(&self, name: &str) -> bool {
        self.deadlines.is_empty()
            || self.deadlines.iter().any(|d| {
                name.strip_prefix(d.as_str()).is_some_and(|rest| {
                    rest.is_empty()
                        || rest.strip_prefix('_').is_some_and(|n| {
                            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'_')
                        })
                })
            })
    }
}

/// What a rung does. Reminders and warnings wait for working hours (for work that is not an
/// emergency); notices and escalations after a breach go out at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RungAction {
    Remind,
    Warn,
    Notify,
    /// Also raises the work's escalation to `to` (routing records it).
    Escalate,
}

impl RungAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RungAction::Remind => "remind",
            RungAction::Warn => "warn",
            RungAction::Notify => "notify",
            RungAction::Escalate => "escalate",
        }
    }

    /// Sent only inside working hours.
    pub fn waits_for_working_hours(self) -> bool {
        matches!(self, RungAction::Remind | RungAction::Warn)
    }
}

/// The on-call rota (after-sales, 003: urgent complaints outside working hours page the
/// on-call leader at once, and their deadlines start at the next working time).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCall {
    /// One person per ISO week (Monday to Sunday), in turn.
    pub rota: Vec<String>,
    /// The urgencies that page.
    #[serde(default = "urgent_and_emergency")]
    pub urgencies: Vec<Urgency>,
}

/// Monday of ISO week 1 of 2026, and the turn it had (2026 × 53 + 1).
const ROTA_MONDAY: jiff::civil::Date = jiff::civil::date(2025, 12, 29);
const ROTA_FIRST_TURN: i64 = 2026 * 53 + 1;

fn urgent_and_emergency() -> Vec<Urgency> {
    vec![Urgency::Urgent, Urgency::Emergency]
}

impl OnCall {
    /// Who is on call in the week (Monday to Sunday) of `day`, a date in the calendar's zone.
    pub fn on_duty(&self, day: jiff::civil::Date) -> Option<&str> {
        if self.rota.is_empty() {
            return None;
        }
        // Weeks are counted on from one Monday, so the turn passes to the next person at a
        // year's end too: numbering weeks within each year jumped a week after a year of 52,
        // which gave someone two weeks running or skipped someone. Counted so that 2026's
        // weeks keep the people that numbering gave them: a current rota does not change.
        let days = day.since(ROTA_MONDAY).ok()?.get_days();
        let week = i64::from(days.div_euclid(7)) + ROTA_FIRST_TURN;
        let n = week.rem_euclid(self.rota.len() as i64);
        self.rota.get(usize::try_from(n).ok()?).map(String::as_str)
    }
}

/// What a deadline policy is chosen by: the work's classification and its channel.
#[derive(Debug, Clone, Copy)]
pub struct Grade<'a> {
    pub severity: Severity,
    pub urgency: Urgency,
    pub nature: &'a str,
    pub category: &'a str,
    pub channel: &'a str,
}

impl<'a> Grade<'a> {
    /// Severity and urgency only (nature, category and channel match no restricted policy).
    pub fn of(severity: Severity, urgency: Urgency) -> Self {
        Self {
            severity,
            urgency,
            nature: "",
            category: "",
            channel: "",
        }
    }
}

impl Sla {
    /// The deadlines that apply to work of this grade, one per name: for each name the first
    /// policy whose every given criterion matches.
    pub fn applicable(&self, g: Grade<'_>) -> Vec<&DeadlinePolicy> {
        let mut seen = BTreeSet::new();
        self.deadlines
            .iter()
            .filter(|d| !d.starts.of_approval())
            .filter(|d| d.severity.is_none_or(|s| s == g.severity))
            .filter(|d| d.urgency.is_none_or(|u| u == g.urgency))
            .filter(|d| d.nature.as_deref().is_none_or(|n| n == g.nature))
            .filter(|d| d.category.as_deref().is_none_or(|c| c == g.category))
            .filter(|d| d.channel.as_deref().is_none_or(|c| c == g.channel))
            .filter(|d| seen.insert(d.name.clone()))
            .collect()
    }

    /// The clock of each step of an approval for work of this severity and category: the
    /// first `starts = "step_asked"` policy that matches.
    pub fn approval_step(&self, severity: Severity, category: &str) -> Option<&DeadlinePolicy> {
        self.deadlines
            .iter()
            .filter(|d| d.starts == Step::StepAsked)
            .filter(|d| d.severity.is_none_or(|s| s == severity))
            .find(|d| d.category.as_deref().is_none_or(|c| c == category))
    }
}

/// What happens when the complainant does not answer a request for evidence in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoAnswer {
    /// Tell the complainant again (the department is escalated to as for any breach) and keep
    /// waiting.
    Remind,
    /// Close the work as unsubstantiated: reply with `close_message` and resolve.
    Close,
}

/// The analysis reports (domain §2.8, §6): when each is made, in the playbook calendar's
/// zone, and when a category's rise is a spike worth an early warning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The day of the month the monthly report is made, covering the day after that day of
    /// the month before up to it (real-estate, 001: the 25th, covering the 26th to the 25th).
    /// None: the calendar month, made on the 1st of the next.
    #[serde(default)]
    pub monthly_on_day: Option<u8>,
    /// A weekly analysis too, made on this day for the seven days before it (express, 002
    /// ch. 8), e.g. "monday". None: monthly only.
    #[serde(default)]
    pub weekly_on: Option<String>,
    /// The time of day (HH:MM, in the calendar's zone) scheduled reports are made on their
    /// day. A monthly report on `monthly_on_day` covers that day too, so a playbook with one
    /// makes it at close of business; figures are as they stood when it was made.
    #[serde(default = "default_report_at")]
    pub at: String,
    /// A category's complaints over `spike_window` are a spike when at least `spike_factor`
    /// times what its own history expects for that window and at least `spike_min` of them.
    #[serde(default = "default_spike_factor")]
    pub spike_factor: f64,
    #[serde(default = "default_spike_window")]
    pub spike_window: String,
    #[serde(default = "default_spike_min")]
    pub spike_min: u32,
    /// Who is told of a spike (a person or a role of the playbook); empty: nobody in
    /// particular, the event is published for whoever watches.
    #[serde(default)]
    pub spike_to: Vec<String>,
}

impl Default for Report {
    fn default() -> Self {
        Self {
            monthly_on_day: None,
            weekly_on: None,
            at: default_report_at(),
            spike_factor: default_spike_factor(),
            spike_window: default_spike_window(),
            spike_min: default_spike_min(),
            spike_to: Vec::new(),
        }
    }
}

fn default_report_at() -> String {
    "09:00".into()
}

impl Report {
    /// `at` as a time of day; checked when the playbook loads.
    pub fn time_of_day(&self) -> Option<jiff::civil::Time> {
        let (h, m) = self.at.trim().split_once(':')?;
        jiff::civil::Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
    }
}

fn default_spike_factor() -> f64 {
    3.0
}

fn default_spike_window() -> String {
    "1 day".into()
}

fn default_spike_min() -> u32 {
    5
}

/// The weekdays as a report schedule names them.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Requests for evidence from the complainant (`redress work request-evidence`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Deadlines (by name) whose clock stops while the complainant owes evidence, and resumes
    /// with the time it had left when the evidence arrives.
    #[serde(default = "default_pauses")]
    pub pauses: Vec<String>,
    /// How soon after assignment a request must reach the complainant (express, 002: "3
    /// hours"); a later one is recorded as a breach of `evidence_request_<n>`. None: no limit.
    #[serde(default)]
    pub request_within: Option<String>,
    /// How long the complainant has to answer (`evidence_answer_<n>`). None: no limit.
    #[serde(default = "default_answer_within")]
    pub answer_within: Option<String>,
    /// What happens when that time runs out.
    #[serde(default = "default_no_answer")]
    pub on_no_answer: NoAnswer,
    /// The explanation sent when the work closes for want of evidence.
    #[serde(default = "default_close_message")]
    pub close_message: String,
}

impl Default for Evidence {
    fn default() -> Self {
        Self {
            pauses: default_pauses(),
            request_within: None,
            answer_within: default_answer_within(),
            on_no_answer: default_no_answer(),
            close_message: default_close_message(),
        }
    }
}

fn default_pauses() -> Vec<String> {
    vec!["resolution".into()]
}

fn default_answer_within() -> Option<String> {
    Some("5 working days".into())
}

fn default_no_answer() -> NoAnswer {
    NoAnswer::Remind
}

fn default_close_message() -> String {
    "您未在期限内提供所需材料，本投诉按证据不足结案；如有新的材料，可随时重新提出。We did not \
     receive the evidence we asked for in time, so the complaint is closed as unsubstantiated; \
     you may raise it again with new evidence at any time."
        .into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Compensation above this (in minor units) needs a decision; at or below, the policy
    /// approves.
    pub threshold_minor: i64,
    /// Every proposal on a major complaint needs a decision.
    pub major_needs_approval: bool,
    /// Role whose members decide.
    pub approver_role: String,
    pub approvers: Vec<Approver>,
    /// Chains of sign-off chosen by rules; the first whose every given criterion matches a
    /// proposal decides it. None matching (or none given): the threshold policy above, with
    /// one approver of `approver_role`.
    #[serde(default)]
    pub chains: Vec<Chain>,
}

/// An ordered sign-off: each step's role decides in turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    pub name: String,
    /// None: any severity.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Compensation at or above this (minor units); none: any.
    #[serde(default)]
    pub min_minor: Option<i64>,
    /// Compensation at or below this; none: any.
    #[serde(default)]
    pub max_minor: Option<i64>,
    /// The handling department; none: any.
    #[serde(default)]
    pub department: Option<String>,
    /// The complaint's category; none: any.
    #[serde(default)]
    pub category: Option<String>,
    /// Kinds of proposal (compensation, refund, rectification, preventive, apology); empty:
    /// any.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Empty: the policy approves (a band that needs nobody).
    pub steps: Vec<ChainStep>,
}

impl Chain {
    /// Whether this chain matches every proposal `later` matches (so, listed first, it leaves
    /// `later` nothing).
    pub fn covers(&self, later: &Chain) -> bool {
        let same = |a: &Option<String>, b: &Option<String>| a.is_none() || a == b;
        self.severity.is_none_or(|s| Some(s) == later.severity)
            && same(&self.department, &later.department)
            && same(&self.category, &later.category)
            && (self.kinds.is_empty()
                || (!later.kinds.is_empty() && later.kinds.iter().all(|k| self.kinds.contains(k))))
            && self
                .min_minor
                .is_none_or(|m| later.min_minor.is_some_and(|l| l >= m))
            && self
                .max_minor
                .is_none_or(|m| later.max_minor.is_some_and(|l| l <= m))
    }
}

/// One step of a chain: who, and how many of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainStep {
    pub role: String,
    /// "one" (the default), "all" of the role's approvers, or a number of them.
    #[serde(default = "one")]
    pub need: String,
}

fn one() -> String {
    "one".into()
}

impl ChainStep {
    /// How many approvals the step needs when `holders` people hold its role.
    pub fn needed(&self, holders: usize) -> Option<usize> {
        match self.need.trim() {
            "one" => Some(1),
            "all" => Some(holders),
            n => n.parse().ok().filter(|&n| n >= 1 && n <= holders),
        }
    }
}

/// What a chain is chosen by: the proposal and the work it is for.
#[derive(Debug, Clone, Copy)]
pub struct ChainInput<'a> {
    pub severity: Severity,
    pub compensation_minor: i64,
    pub department: &'a str,
    pub category: &'a str,
    /// The proposal's kind as playbooks spell it ("compensation", "refund" …).
    pub kind: &'a str,
}

/// The kinds of proposal playbooks may name.
pub const PROPOSAL_KINDS: [&str; 5] = [
    "compensation",
    "refund",
    "rectification",
    "preventive",
    "apology",
];

impl Chain {
    pub fn matches(&self, p: &ChainInput<'_>) -> bool {
        self.severity.is_none_or(|s| s == p.severity)
            && self.min_minor.is_none_or(|m| p.compensation_minor >= m)
            && self.max_minor.is_none_or(|m| p.compensation_minor <= m)
            && self.department.as_deref().is_none_or(|d| d == p.department)
            && self.category.as_deref().is_none_or(|c| c == p.category)
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == p.kind))
    }
}

impl Approval {
    /// Whether `name` may decide approvals under this policy.
    pub fn may_decide(&self, name: &str) -> bool {
        self.approvers
            .iter()
            .any(|a| a.name == name && a.role == self.approver_role)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    /// An overall score at or above this is satisfied; below it reopens the complaint.
    pub satisfied_min: u32,
    pub questions: Vec<String>,
    /// Whether a round answered with an explanation (no proposal) is surveyed too; if not,
    /// it closes when resolved.
    #[serde(default = "yes")]
    pub after_explain: bool,
    /// How long after the reply the survey goes out (after-sales, 003: "5 days", with
    /// `expire_after = "2 days"`, the window of day 5 to day 7); none: at once.
    #[serde(default)]
    pub send_after: Option<String>,
    /// Invitations and reminders go out only inside the working hours of `sla.calendar`
    /// (never at night).
    #[serde(default)]
    pub working_hours: bool,
    /// Unanswered this long after the invitation: one reminder (with its own token; either
    /// answers).
    #[serde(default)]
    pub remind_after: Option<String>,
    /// Unanswered this long after the invitation: `on_expiry`. None: it waits for ever.
    #[serde(default)]
    pub expire_after: Option<String>,
    #[serde(default = "no_response")]
    pub on_expiry: OnExpiry,
    /// Whom a second dissatisfied round climbs to (a person or a role, e.g. "service
    /// manager"); none: it is reopened like the first.
    #[serde(default)]
    pub second_dissatisfied_to: Option<String>,
    /// Survey a sample of closed complaints again later (express, 002: periodic
    /// satisfaction surveys reported to leadership).
    #[serde(default)]
    pub resample: Option<Resample>,
}

/// Which closed complaints are surveyed again, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resample {
    /// The share of closed complaints chosen (1–100 %), by their ticket (the same ticket is
    /// always chosen or never, whichever instance decides).
    pub percent: u32,
    /// How long after the close the second survey goes out.
    pub after: String,
}

/// What an unanswered survey comes to at the end of its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// The complaint closes as "no response", counted apart from satisfied answers.
    NoResponse,
    /// The department is to follow up by phone: the survey is issued again on the `phone`
    /// channel for the department that handled the round, and waits for its record
    /// (`redress survey follow-up`).
    Phone,
}

fn no_response() -> OnExpiry {
    OnExpiry::NoResponse
}

impl Playbook {
    /// Parses and validates one playbook file's text.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, PlaybookError> {
        let mut pb: Playbook = toml::from_str(text).map_err(|e| PlaybookError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        pb.version = hex::encode(&Sha256::digest(text.as_bytes())[..8]);
        pb.validate()?;
        Ok(pb)
    }

    pub fn department(&self, key: &str) -> Option<&Department> {
        self.routing.departments.iter().find(|d| d.key == key)
    }

    /// Everyone the playbook names: departments' managers and members, and approvers.
    pub fn people(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for d in &self.routing.departments {
            out.insert(d.manager.clone());
            out.extend(d.members.iter().cloned());
        }
        out.extend(self.approval.approvers.iter().map(|a| a.name.clone()));
        out
    }

    /// The part of the playbook one service uses, as JSON, for its own record of versions.
    pub fn section(&self, name: &str) -> serde_json::Value {
        let v = serde_json::to_value(self).expect("playbooks serialise");
        v.get(name).cloned().unwrap_or(serde_json::Value::Null)
    }

    /// Every problem of the playbook, one per field (empty: it is sound).
    pub fn problems(&self) -> Vec<PlaybookError> {
        let mut out = Vec::new();
        let bad = |field: &str, message: String| PlaybookError::Invalid {
            key: self.key.clone(),
            field: field.to_string(),
            message,
        };
        if !redress_proto::subjects::is_subject_token(&self.key) {
            out.push(bad(
                "key",
                "must be lowercase letters, digits, - or _".into(),
            ));
        }
        let c = &self.classification;
        if !c.categories.contains(&c.default_category) {
            out.push(bad(
                "classification.default_category",
                format!("{:?} is not one of the categories", c.default_category),
            ));
        }
        if !c.natures.contains(&c.default_nature) {
            out.push(bad(
                "classification.default_nature",
                format!("{:?} is not one of the natures", c.default_nature),
            ));
        }
        for (i, r) in c.category_rules.iter().enumerate() {
            if !c.categories.contains(&r.category) {
                out.push(bad(
                    &format!("classification.category_rules[{i}].category"),
                    format!("{:?} is not one of the categories", r.category),
                ));
            }
        }
        for (i, r) in c.nature_rules.iter().enumerate() {
            if !c.natures.contains(&r.nature) {
                out.push(bad(
                    &format!("classification.nature_rules[{i}].nature"),
                    format!("{:?} is not one of the natures", r.nature),
                ));
            }
        }
        let phrase_lists = c
            .category_rules
            .iter()
            .map(|r| (&r.id, &r.phrases))
            .chain(c.nature_rules.iter().map(|r| (&r.id, &r.phrases)))
            .chain(c.major_rules.iter().map(|r| (&r.id, &r.phrases)))
            .chain(c.urgency_rules.iter().map(|r| (&r.id, &r.phrases)));
        for (id, phrases) in phrase_lists {
            if phrases.is_empty() || phrases.iter().any(|p| p.trim().is_empty()) {
                out.push(bad(
                    "classification",
                    format!("rule {id:?} needs non-empty phrases"),
                ));
            }
        }
        let r = &self.routing;
        let mut keys = BTreeSet::new();
        for (i, d) in r.departments.iter().enumerate() {
            if !redress_proto::subjects::is_subject_token(&d.key) {
                out.push(bad(
                    &format!("routing.departments[{i}].key"),
                    format!(
                        "{:?} must be lowercase letters, digits, - or _ (it is a subject token)",
                        d.key
                    ),
                ));
            }
            if !keys.insert(d.key.as_str()) {
                out.push(bad(
                    &format!("routing.departments[{i}].key"),
                    format!("{:?} appears twice", d.key),
                ));
            }
        }
        if !keys.contains(r.fallback.as_str()) {
            out.push(bad(
                "routing.fallback",
                format!("{:?} is not a department", r.fallback),
            ));
        }
        for (i, nature) in r.explain_natures.iter().enumerate() {
            if !self.classification.natures.contains(nature) {
                out.push(bad(
                    &format!("routing.explain_natures[{i}]"),
                    format!("{nature:?} is not one of the natures"),
                ));
            }
        }
        for (i, rule) in r.rules.iter().enumerate() {
            if !keys.contains(rule.department.as_str()) {
                out.push(bad(
                    &format!("routing.rules[{i}].department"),
                    format!("{:?} is not a department", rule.department),
                ));
            }
            if let Some(cat) = &rule.category
                && !c.categories.contains(cat)
            {
                out.push(bad(
                    &format!("routing.rules[{i}].category"),
                    format!("{cat:?} is not one of the categories"),
                ));
            }
            // First match wins: an earlier rule as wide in both criteria takes all its work.
            if let Some(earlier) = r.rules[..i].iter().find(|e| {
                e.category.is_none() || e.category == rule.category
            } && e.severity.is_none_or(|s| Some(s) == rule.severity))
            {
                out.push(bad(
                    &format!("routing.rules[{i}].id"),
                    format!(
                        "{:?} can never match: {:?} comes first and matches all it would",
                        rule.id, earlier.id
                    ),
                ));
            }
        }
        // A category rule each of whose phrases contains a phrase of an earlier rule never
        // decides: the earlier rule matches first whenever it would.
        let lower = |p: &str| p.to_lowercase();
        for (i, rule) in c.category_rules.iter().enumerate() {
            let shadowed_by = |phrase: &String| {
                let phrase = lower(phrase);
                c.category_rules[..i].iter().find(|e| {
                    e.phrases
                        .iter()
                        .any(|p| !p.is_empty() && phrase.contains(&lower(p)))
                })
            };
            if !rule.phrases.is_empty()
                && let Some(earlier) = rule
                    .phrases
                    .iter()
                    .map(shadowed_by)
                    .collect::<Option<Vec<_>>>()
            {
                let ids: BTreeSet<&str> = earlier.iter().map(|e| e.id.as_str()).collect();
                out.push(bad(
                    &format!("classification.category_rules[{i}].id"),
                    format!(
                        "{:?} can never match: every phrase of it contains a phrase of {} before it",
                        rule.id,
                        ids.into_iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        let calendars = redress_calendar::CalendarSet::builtin().unwrap_or_default();
        if calendars.get(&self.sla.calendar).is_err() {
            out.push(bad(
                "sla.calendar",
                format!("{:?} is not a known calendar", self.sla.calendar),
            ));
        }
        for (i, d) in self.sla.deadlines.iter().enumerate() {
            if let Err(e) = d.limit.parse::<DeadlineSpan>() {
                out.push(bad(&format!("sla.deadlines[{i}].limit"), e.to_string()));
            }
            if let Some(n) = &d.nature
                && !self.classification.natures.contains(n)
            {
                out.push(bad(
                    &format!("sla.deadlines[{i}].nature"),
                    format!("{n:?} is not one of the natures"),
                ));
            }
            if let Some(c) = &d.category
                && !self.classification.categories.contains(c)
            {
                out.push(bad(
                    &format!("sla.deadlines[{i}].category"),
                    format!("{c:?} is not one of the categories"),
                ));
            }
            if let Some(c) = &d.channel
                && !redress_proto::subjects::CHANNELS.contains(&c.as_str())
            {
                out.push(bad(
                    &format!("sla.deadlines[{i}].channel"),
                    format!("{c:?} is not a channel"),
                ));
            }
            if !d.starts.can_start() {
                out.push(bad(
                    &format!("sla.deadlines[{i}].starts"),
                    format!("a clock cannot start at {}", d.starts),
                ));
            }
            if d.met_by == Step::Received {
                out.push(bad(
                    &format!("sla.deadlines[{i}].met_by"),
                    "reception comes before every clock starts; it can never meet one".into(),
                ));
            }
            if d.met_by == d.starts {
                out.push(bad(
                    &format!("sla.deadlines[{i}].met_by"),
                    format!(
                        "the clock starts at {} and so would be met at once",
                        d.starts
                    ),
                ));
            }
            if let (Some(start), Some(met)) = (d.starts.rank(), d.met_by.rank())
                && met < start
                && d.met_by != Step::Received
            {
                out.push(bad(
                    &format!("sla.deadlines[{i}].met_by"),
                    format!(
                        "{} always happens before {}, where the clock starts: it can never be met",
                        d.met_by, d.starts
                    ),
                ));
            }
            if d.starts.of_approval() || d.met_by.of_approval() {
                if (d.starts, d.met_by) != (Step::StepAsked, Step::StepDecided) {
                    out.push(bad(
                        &format!("sla.deadlines[{i}].met_by"),
                        "an approval step's clock starts at step_asked and is met by step_decided"
                            .into(),
                    ));
                }
                for (field, set) in [
                    ("urgency", d.urgency.is_some()),
                    ("nature", d.nature.is_some()),
                    ("channel", d.channel.is_some()),
                    ("repeat", d.repeat),
                ] {
                    if set {
                        out.push(bad(
                            &format!("sla.deadlines[{i}].{field}"),
                            "an approval step's clock is chosen by severity and category only"
                                .into(),
                        ));
                    }
                }
            }
            if d.repeat && d.met_by != Step::Progress {
                out.push(bad(
                    &format!("sla.deadlines[{i}].repeat"),
                    "only a deadline met by progress repeats".into(),
                ));
            }
            if !redress_proto::subjects::is_subject_token(&d.name) {
                out.push(bad(
                    &format!("sla.deadlines[{i}].name"),
                    "must be lowercase letters, digits, - or _".into(),
                ));
            }
        }
        if let Some(p) = self.sla.warn_at_percent
            && !(1..=99).contains(&p)
        {
            out.push(bad("sla.warn_at_percent", "must be 1 to 99".into()));
        }
        let people = self.people();
        let roles: BTreeSet<&str> = self
            .approval
            .approvers
            .iter()
            .map(|a| a.role.as_str())
            .chain(self.routing.escalation.iter().map(String::as_str))
            .collect();
        for (i, r) in self.sla.ladder.iter().enumerate() {
            if let Err(e) = r.when() {
                out.push(bad(&format!("sla.ladder[{i}].at"), e));
            }
            let to = r.to.as_str();
            if !matches!(to, "handler" | "department_manager")
                && !people.contains(to)
                && !roles.contains(to)
            {
                out.push(bad(
                    &format!("sla.ladder[{i}].to"),
                    format!(
                        "{to:?} is not handler, department_manager, a person or a role of the playbook"
                    ),
                ));
            }
            for (j, name) in r.deadlines.iter().enumerate() {
                if !self.sla.deadlines.iter().any(|d| &d.name == name) {
                    out.push(bad(
                        &format!("sla.ladder[{i}].deadlines[{j}]"),
                        format!("{name:?} is not one of the sla.deadlines"),
                    ));
                }
            }
        }
        if let Some(r) = &self.survey.resample {
            if !(1..=100).contains(&r.percent) {
                out.push(bad("survey.resample.percent", "must be 1 to 100".into()));
            }
            if let Err(e) = r.after.parse::<DeadlineSpan>() {
                out.push(bad("survey.resample.after", e.to_string()));
            }
        }
        if let Some(to) = &self.survey.second_dissatisfied_to
            && !people.contains(to)
            && !roles.contains(to.as_str())
        {
            out.push(bad(
                "survey.second_dissatisfied_to",
                format!("{to:?} is not a person or a role of the playbook"),
            ));
        }
        if let Some(on_call) = &self.sla.on_call {
            if on_call.rota.is_empty() {
                out.push(bad("sla.on_call.rota", "names nobody".into()));
            }
            for (i, p) in on_call.rota.iter().enumerate() {
                if !people.contains(p) {
                    out.push(bad(
                        &format!("sla.on_call.rota[{i}]"),
                        format!("{p:?} is not a person of the playbook"),
                    ));
                }
            }
        }
        let r = &self.report;
        if let Some(day) = r.monthly_on_day
            && !(1..=28).contains(&day)
        {
            out.push(bad(
                "report.monthly_on_day",
                "must be 1 to 28, a day every month has".into(),
            ));
        }
        if r.time_of_day().is_none() {
            out.push(bad(
                "report.at",
                format!("{:?} is not a time of day (HH:MM)", r.at),
            ));
        }
        if let Some(day) = &r.weekly_on
            && !WEEKDAYS.contains(&day.as_str())
        {
            out.push(bad(
                "report.weekly_on",
                format!("{day:?} is not a weekday (monday … sunday)"),
            ));
        }
        if !(r.spike_factor > 1.0 && r.spike_factor.is_finite()) {
            out.push(bad("report.spike_factor", "must be above 1".into()));
        }
        if let Err(err) = r.spike_window.parse::<DeadlineSpan>() {
            out.push(bad("report.spike_window", err.to_string()));
        }
        for (i, who) in r.spike_to.iter().enumerate() {
            let known = people.contains(who)
                || self.approval.approvers.iter().any(|a| &a.role == who)
                || self.routing.escalation.contains(who);
            if !known {
                out.push(bad(
                    &format!("report.spike_to[{i}]"),
                    format!("{who:?} is neither a person nor a role of the playbook"),
                ));
            }
        }
        let e = &self.evidence;
        for (field, limit) in [
            ("evidence.request_within", &e.request_within),
            ("evidence.answer_within", &e.answer_within),
        ] {
            if let Some(limit) = limit
                && let Err(err) = limit.parse::<DeadlineSpan>()
            {
                out.push(bad(field, err.to_string()));
            }
        }
        for (i, name) in e.pauses.iter().enumerate() {
            if !self.sla.deadlines.iter().any(|d| &d.name == name) {
                out.push(bad(
                    &format!("evidence.pauses[{i}]"),
                    format!("{name:?} is not one of the sla.deadlines"),
                ));
            }
        }
        if e.close_message.trim().is_empty() {
            out.push(bad("evidence.close_message", "must not be empty".into()));
        }
        let a = &self.approval;
        if a.threshold_minor < 0 {
            out.push(bad(
                "approval.threshold_minor",
                "must not be negative".into(),
            ));
        }
        if !a.approvers.iter().any(|p| p.role == a.approver_role) {
            out.push(bad(
                "approval.approvers",
                format!("nobody has the role {:?}", a.approver_role),
            ));
        }
        let s = &self.survey;
        for (field, limit) in [
            ("survey.send_after", &s.send_after),
            ("survey.remind_after", &s.remind_after),
            ("survey.expire_after", &s.expire_after),
        ] {
            if let Some(limit) = limit
                && let Err(e) = limit.parse::<DeadlineSpan>()
            {
                out.push(bad(field, e.to_string()));
            }
        }
        for (i, chain) in self.approval.chains.iter().enumerate() {
            if let Some(earlier) = self.approval.chains[..i].iter().find(|e| e.covers(chain)) {
                out.push(bad(
                    &format!("approval.chains[{i}].name"),
                    format!(
                        "{:?} can never be chosen: {:?} comes first and matches all it would",
                        chain.name, earlier.name
                    ),
                ));
            }
            if let Some(d) = &chain.department
                && self.department(d).is_none()
            {
                out.push(bad(
                    &format!("approval.chains[{i}].department"),
                    format!("{d:?} is not a department"),
                ));
            }
            if let Some(c) = &chain.category
                && !self.classification.categories.contains(c)
            {
                out.push(bad(
                    &format!("approval.chains[{i}].category"),
                    format!("{c:?} is not one of the categories"),
                ));
            }
            for (j, k) in chain.kinds.iter().enumerate() {
                if !PROPOSAL_KINDS.contains(&k.as_str()) {
                    out.push(bad(
                        &format!("approval.chains[{i}].kinds[{j}]"),
                        format!("{k:?}: one of {}", PROPOSAL_KINDS.join(", ")),
                    ));
                }
            }
            for (j, step) in chain.steps.iter().enumerate() {
                let holders = self
                    .approval
                    .approvers
                    .iter()
                    .filter(|a| a.role == step.role)
                    .count();
                if holders == 0 {
                    out.push(bad(
                        &format!("approval.chains[{i}].steps[{j}].role"),
                        format!("nobody has the role {:?}", step.role),
                    ));
                } else if step.needed(holders).is_none() {
                    out.push(bad(
                        &format!("approval.chains[{i}].steps[{j}].need"),
                        format!(
                            "{:?}: one, all, or 1 to {holders} (the approvers with the role)",
                            step.need
                        ),
                    ));
                }
            }
        }
        if !(1..=5).contains(&self.survey.satisfied_min) {
            out.push(bad("survey.satisfied_min", "must be 1 to 5".into()));
        }
        out
    }

    fn validate(&self) -> Result<(), PlaybookError> {
        match self.problems().into_iter().next() {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }
}

/// Every playbook found in a directory, by key.
#[derive(Debug, Clone, Default)]
pub struct Playbooks {
    by_key: BTreeMap<String, Playbook>,
}

impl Playbooks {
    /// Loads `<dir>/<key>/playbook.toml` for every sub-directory; the key in the file must
    /// match the directory's name.
    pub fn load_dir(dir: &Path) -> Result<Self, PlaybookError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PlaybookError::Io { path, source }
        };
        let mut by_key = BTreeMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<_, _>>()
            .map_err(io(dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let file = entry.path().join("playbook.toml");
            if !file.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&file).map_err(io(&file))?;
            let pb = Playbook::from_toml(&text, &file)?;
            let dir_name = entry.file_name().to_string_lossy().to_string();
            if pb.key != dir_name {
                return Err(PlaybookError::Invalid {
                    key: pb.key,
                    field: "key".into(),
                    message: format!("must match its directory name {dir_name:?}"),
                });
            }
            by_key.insert(pb.key.clone(), pb);
        }
        if by_key.is_empty() {
            return Err(PlaybookError::Parse {
                path: dir.to_path_buf(),
                message: "no <key>/playbook.toml in this directory".into(),
            });
        }
        Ok(Self { by_key })
    }

    /// The playbooks built into the binary, so that a stack runs from any directory; an
    /// organisation's own directory replaces them (`playbooks.dir`, `--playbooks`).
    pub fn builtin() -> Result<Self, PlaybookError> {
        let mut by_key = BTreeMap::new();
        for (key, text) in BUILTIN {
            let path = PathBuf::from(format!("<built in>/{key}/playbook.toml"));
            let pb = Playbook::from_toml(text, &path)?;
            by_key.insert(pb.key.clone(), pb);
        }
        Ok(Self { by_key })
    }

    pub fn get(&self, key: &str) -> Result<&Playbook, PlaybookError> {
        self.by_key
            .get(key)
            .ok_or_else(|| PlaybookError::Unknown(key.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Playbook> {
        self.by_key.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")
    }

    #[test]
    fn the_built_in_playbooks_are_the_shipped_files() {
        let built_in = Playbooks::builtin().unwrap();
        let shipped = Playbooks::load_dir(&shipped()).unwrap();
        let versions = |p: &Playbooks| -> Vec<(String, String)> {
            p.iter()
                .map(|pb| (pb.key.clone(), pb.version.clone()))
                .collect()
        };
        assert_eq!(versions(&built_in), versions(&shipped));
    }

    #[test]
    fn shipped_playbooks_load() {
        let all = Playbooks::load_dir(&shipped()).unwrap();
        let pb = all.get("default").unwrap();
        assert_eq!(pb.version.len(), 16);
        assert!(pb.department(&pb.routing.fallback).is_some());
        assert!(
            !pb.sla
                .applicable(Grade::of(Severity::General, Urgency::Normal))
                .is_empty()
        );
    }

    #[test]
    fn a_rule_naming_an_unknown_department_is_refused() {
        let text = std::fs::read_to_string(shipped().join("default/playbook.toml")).unwrap();
        let broken = text.replacen(
            "fallback = \"customer-service\"",
            "fallback = \"nobody\"",
            1,
        );
        let err = Playbook::from_toml(&broken, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("routing.fallback"), "{err}");
    }

    #[test]
    fn explaining_an_unknown_nature_is_refused() {
        let text = std::fs::read_to_string(shipped().join("default/playbook.toml")).unwrap();
        let broken = text.replacen(
            "explain_natures = [\"communicative\", \"invalid\"]",
            "explain_natures = [\"communicative\", \"venting\"]",
            1,
        );
        assert_ne!(broken, text);
        let err = Playbook::from_toml(&broken, Path::new("x")).unwrap_err();
        assert!(
            err.to_string().contains("routing.explain_natures[1]"),
            "{err}"
        );
    }

    #[test]
    fn a_clock_that_can_never_start_or_never_be_met_is_refused() {
        let text = std::fs::read_to_string(shipped().join("default/playbook.toml")).unwrap();
        let with = |policy: &str| {
            text.replacen(
                "[evidence]",
                &format!(
                    "[[sla.deadlines]]\nname = \"x\"\nlimit = \"1 hour\"\n{policy}\n\n[evidence]"
                ),
                1,
            )
        };
        for (policy, field, says) in [
            (
                "starts = \"closed\"\nmet_by = \"replied\"",
                "starts",
                "cannot start",
            ),
            (
                "starts = \"progress\"\nmet_by = \"replied\"",
                "starts",
                "cannot start",
            ),
            ("met_by = \"received\"", "met_by", "can never meet"),
            (
                "starts = \"replied\"\nmet_by = \"accepted\"",
                "met_by",
                "never be met",
            ),
            (
                "starts = \"proposed\"\nmet_by = \"proposed\"",
                "met_by",
                "met at once",
            ),
            (
                "starts = \"signed\"\nmet_by = \"replied\"",
                "unknown variant",
                "",
            ),
            (
                "starts = \"step_asked\"\nmet_by = \"approved\"",
                "met_by",
                "approval step",
            ),
            (
                "starts = \"proposed\"\nmet_by = \"step_decided\"",
                "met_by",
                "approval step",
            ),
            (
                "starts = \"step_asked\"\nmet_by = \"step_decided\"\nurgency = \"emergency\"",
                "urgency",
                "severity and category only",
            ),
        ] {
            let err = Playbook::from_toml(&with(policy), Path::new("x"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field) && err.contains(says), "{policy}: {err}");
        }
        // Each approval step's clock is chosen by severity, apart from the round's clocks.
        let steps =
            with("starts = \"step_asked\"\nmet_by = \"step_decided\"\nseverity = \"major\"");
        let pb = Playbook::from_toml(&steps, Path::new("x")).unwrap();
        assert_eq!(
            pb.sla
                .approval_step(Severity::Major, "")
                .map(|d| d.name.as_str()),
            Some("x")
        );
        assert!(pb.sla.approval_step(Severity::General, "").is_none());
        assert!(
            pb.sla
                .applicable(Grade::of(Severity::Major, Urgency::Normal))
                .iter()
                .all(|d| d.name != "x")
        );
        // A chain: each clock starting where the one before is met.
        let chain = with("starts = \"investigated\"\nmet_by = \"proposed\"");
        let pb = Playbook::from_toml(&chain, Path::new("x")).unwrap();
        let x = pb.sla.deadlines.iter().find(|d| d.name == "x").unwrap();
        assert_eq!((x.starts, x.met_by), (Step::Investigated, Step::Proposed));
        // Left out, a clock starts at assignment.
        assert!(
            pb.sla
                .deadlines
                .iter()
                .filter(|d| d.name != "x")
                .all(|d| d.starts == Step::Assigned)
        );
    }

    #[test]
    fn a_rule_or_chain_that_can_never_match_is_refused() {
        let text = std::fs::read_to_string(shipped().join("default/playbook.toml")).unwrap();
        let problems = |changed: String| -> Vec<String> {
            crate::check::check_text(&changed, Some("default"))
                .into_iter()
                .map(|p| p.message)
                .collect()
        };
        assert!(problems(text.clone()).is_empty());
        // A routing rule after one for every major complaint of any category.
        let routing = text.replacen(
            "[[routing.rules]]\nid = \"route.delivery\"",
            "[[routing.rules]]\nid = \"route.major_delivery\"\nseverity = \"major\"\n\
             category = \"delivery\"\ndepartment = \"logistics\"\n\n\
             [[routing.rules]]\nid = \"route.delivery\"",
            1,
        );
        let found = problems(routing);
        assert!(
            found.len() == 1 && found[0].contains("\"route.major_delivery\" can never match"),
            "{found:?}"
        );
        // A category rule whose phrases all contain an earlier rule's phrase ("快递" is a
        // delivery phrase before it).
        let category = text.replacen(
            "[[classification.category_rules]]\nid = \"category.billing\"",
            "[[classification.category_rules]]\nid = \"category.courier_fee\"\n\
             category = \"billing\"\nphrases = [\"快递费\", \"快递员收费\"]\n\n\
             [[classification.category_rules]]\nid = \"category.billing\"",
            1,
        );
        let found = problems(category);
        assert!(
            found.len() == 1
                && found[0].contains("\"category.courier_fee\" can never match")
                && found[0].contains("category.delivery"),
            "{found:?}"
        );
        // A chain after one that takes every proposal of its severity.
        let chains = text.replacen(
            "[survey]",
            "[[approval.chains]]\nname = \"major\"\nseverity = \"major\"\n\
             [[approval.chains.steps]]\nrole = \"general_manager\"\n\n\
             [[approval.chains]]\nname = \"major_large\"\nseverity = \"major\"\n\
             min_minor = 100000\n[[approval.chains.steps]]\nrole = \"general_manager\"\n\n\
             [survey]",
            1,
        );
        let found = problems(chains);
        assert!(
            found.len() == 1 && found[0].contains("\"major_large\" can never be chosen"),
            "{found:?}"
        );
    }

    #[test]
    fn a_rung_covers_its_deadline_and_the_instances_of_it() {
        let rung = Rung {
            at: "breach".into(),
            action: RungAction::Escalate,
            to: "general manager".into(),
            deadlines: vec!["approval_step".into(), "progress".into()],
        };
        for name in [
            "approval_step",
            "approval_step_2",
            "approval_step_1_2",
            "progress_3",
        ] {
            assert!(rung.covers(name), "{name}");
        }
        for name in [
            "approval",
            "approval_stepper",
            "approval_step_",
            "progress_x",
            "resolution",
        ] {
            assert!(!rung.covers(name), "{name}");
        }
    }

    #[test]
    fn a_ladder_rung_must_say_when_and_name_someone_the_playbook_knows() {
        let text = std::fs::read_to_string(shipped().join("default/playbook.toml")).unwrap();
        let with = |rung: &str| {
            text.replacen(
                "[evidence]",
                &format!("[[sla.ladder]]\n{rung}\n\n[evidence]"),
                1,
            )
        };
        for (rung, field) in [
            (
                "at = \"120%\"\ndo = \"remind\"\nto = \"handler\"",
                "sla.ladder[0].at",
            ),
            (
                "at = \"later\"\ndo = \"remind\"\nto = \"handler\"",
                "sla.ladder[0].at",
            ),
            (
                "at = \"breach + soon\"\ndo = \"notify\"\nto = \"handler\"",
                "sla.ladder[0].at",
            ),
            (
                "at = \"breach\"\ndo = \"notify\"\nto = \"nobody\"",
                "sla.ladder[0].to",
            ),
            (
                "at = \"50%\"\ndo = \"remind\"\nto = \"handler\"\ndeadlines = [\"x\"]",
                "sla.ladder[0].deadlines[0]",
            ),
        ] {
            let err = Playbook::from_toml(&with(rung), Path::new("x"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{rung}: {err}");
        }
        let pb = Playbook::from_toml(
            &with("at = \"breach + 1 working day\"\ndo = \"escalate\"\nto = \"general manager\""),
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(
            pb.sla.ladder[0].when(),
            Ok(RungAt::Breach(Some("1 working day".parse().unwrap())))
        );
        let on_call = OnCall {
            rota: vec!["a".into(), "b".into()],
            urgencies: vec![Urgency::Urgent],
        };
        let day = |y, m, d| jiff::civil::date(y, m, d);
        // One person a week, in turn, Monday to Sunday.
        assert_ne!(
            on_call.on_duty(day(2026, 11, 23)),
            on_call.on_duty(day(2026, 11, 30))
        );
        assert_eq!(
            on_call.on_duty(day(2026, 11, 23)),
            on_call.on_duty(day(2026, 12, 7))
        );
        assert_eq!(
            on_call.on_duty(day(2026, 11, 23)),
            on_call.on_duty(day(2026, 11, 29))
        );
    }

    /// The turn passes on every Monday, across the end of years of 52 and of 53 ISO weeks
    /// alike, so nobody is on call two weeks running or skipped.
    #[test]
    fn the_rota_turns_every_week_across_year_ends() {
        let on_call = OnCall {
            rota: vec!["a".into(), "b".into(), "c".into()],
            urgencies: vec![Urgency::Urgent],
        };
        let position = |day| {
            on_call
                .rota
                .iter()
                .position(|p| Some(p.as_str()) == on_call.on_duty(day))
        };
        // 2026 has 53 ISO weeks, 2027 52; a date before the counting Monday counts back.
        let mut monday = jiff::civil::date(2024, 12, 30);
        let mut last = position(monday).unwrap();
        for _ in 0..52 * 6 {
            monday = monday.checked_add(jiff::Span::new().days(7)).unwrap();
            let now = position(monday).unwrap();
            assert_eq!(now, (last + 1) % 3, "{monday}");
            let sunday = monday.checked_add(jiff::Span::new().days(6)).unwrap();
            assert_eq!(position(sunday), Some(now), "{sunday}");
            last = now;
        }
        // 2026's weeks keep the turns the earlier numbering (year × 53 + ISO week) gave.
        for week in 1..=53 {
            let d = jiff::civil::ISOWeekDate::new(2026, week, jiff::civil::Weekday::Wednesday)
                .unwrap()
                .date();
            let old = (2026 * 53 + i64::from(week)).rem_euclid(3) as usize;
            assert_eq!(position(d), Some(old), "week {week}");
        }
    }

    #[test]
    fn the_first_matching_policy_of_each_name_applies() {
        let all = Playbooks::load_dir(&shipped()).unwrap();
        let sla = &all.get("default").unwrap().sla;
        let major = sla.applicable(Grade::of(Severity::Major, Urgency::Normal));
        let general = sla.applicable(Grade::of(Severity::General, Urgency::Normal));
        let first = |v: &[&DeadlinePolicy]| {
            v.iter()
                .find(|d| d.name == "first_response")
                .map(|d| d.limit.clone())
        };
        assert_ne!(first(&major), first(&general));
        let mut names: Vec<_> = general.iter().map(|d| d.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), general.len());
    }

    #[test]
    fn policies_may_be_chosen_by_nature_category_and_channel() {
        let text = std::fs::read_to_string(shipped().join("default/playbook.toml")).unwrap();
        let extra = "\n[[sla.deadlines]]\nname = \"regulator_reply\"\nlimit = \"5 working days\"\n\
                     met_by = \"replied\"\nchannel = \"referral\"\n\n\
                     [[sla.deadlines]]\nname = \"direct_answer\"\nlimit = \"1 working day\"\n\
                     met_by = \"replied\"\nnature = \"communicative\"\ncategory = \"other\"\n";
        let with = text.replacen("[approval]", &format!("{extra}\n[approval]"), 1);
        let pb = Playbook::from_toml(&with, Path::new("x")).unwrap();
        let names = |g: Grade<'_>| -> Vec<String> {
            pb.sla
                .applicable(g)
                .iter()
                .map(|d| d.name.clone())
                .collect()
        };
        let base = Grade::of(Severity::General, Urgency::Normal);
        assert_eq!(names(base), ["first_response", "resolution"]);
        assert!(
            names(Grade {
                channel: "referral",
                ..base
            })
            .contains(&"regulator_reply".into())
        );
        let inquiry = Grade {
            nature: "communicative",
            category: "other",
            ..base
        };
        assert!(names(inquiry).contains(&"direct_answer".into()));
        assert!(
            !names(Grade {
                category: "billing",
                ..inquiry
            })
            .contains(&"direct_answer".into())
        );
        let bad = with.replacen("nature = \"communicative\"", "nature = \"gossip\"", 1);
        let err = Playbook::from_toml(&bad, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains(".nature"), "{err}");
        let bad = with.replacen("channel = \"referral\"", "channel = \"fax\"", 1);
        let err = Playbook::from_toml(&bad, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains(".channel"), "{err}");
    }
}
