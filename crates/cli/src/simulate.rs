//! `redress playbook simulate --playbook KEY --scenario FILE [--json]`: what a playbook will
//! do, before it goes live. The real six services run in this process against a private
//! broker and database, on a virtual clock; each step of the scenario moves the clock to its
//! time (stopping at every timer that falls due on the way, in order) and runs one client
//! verb of this command line against the stack. Everything published is shown as it
//! happened: events and steps, in order.
//!
//! A scenario may say what it expects (`[[expect]]`, see [`Expect`]): an event or a step
//! whose line holds the values given. The simulation then exits 1 unless every expectation
//! is met, which is how `tests/scenarios/<playbook>/*.toml` prove each seed's rules.
//!
//! A step is run only when the stack is quiet: every durable consumer of the services has
//! nothing pending or unacknowledged and no outbox holds a row, so what a step shows is what
//! the stack did with everything before it.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};
use futures::StreamExt as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use redress_platform::{Config, ManualClock};
use redress_proto::subjects::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

/// The verbs a scenario may run: the client verbs (those that talk to a running stack).
const VERBS: &[&str] = &[
    "submit",
    "status",
    "work",
    "approve",
    "reject",
    "approvals",
    "delegate",
    "survey",
    "notifications",
    "withdraw",
    "respond",
    "evidence",
    "erase",
    "report",
];

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The playbook tried: submissions that name none go to it.
    #[arg(long)]
    playbook: String,
    /// A TOML file: `start` (where the virtual clock starts) and `[[step]]`s, each `at` (an
    /// RFC 3339 time, or "+30m", "+2h", "+3d" after the step before) and `do` (a client verb
    /// with its flags; `{c1}` is the ticket of the complaint submitted with external id c1,
    /// `{c1.secret}` its complainant's status secret), and optionally `[[expect]]`s.
    #[arg(long)]
    scenario: PathBuf,
    /// JSON lines: one per event published, one per step.
    #[arg(long)]
    json: bool,
    /// A directory of playbooks instead of those built in.
    #[arg(long, value_name = "DIR")]
    playbooks: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    start: String,
    #[serde(default)]
    step: Vec<StepFile>,
    /// What must be seen for the scenario to pass (its exit status says).
    #[serde(default)]
    expect: Vec<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    at: String,
    #[serde(rename = "do")]
    action: String,
}

/// One step, checked: when, and the verb's words with `{id}` still in them.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    number: usize,
    at: DateTime<Utc>,
    text: String,
    words: Vec<String>,
}

/// A scenario refused before anything runs, or a step that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum ScenarioError {
    #[error("start: {0}")]
    Start(String),
    #[error("step {step}: {message}")]
    Step { step: usize, message: String },
    #[error("expect {expect}: {message}")]
    Expect { expect: usize, message: String },
}

fn step_error(step: usize, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Step {
        step,
        message: message.into(),
    }
}

/// "+30m", "+2h", "+3d", "+1h30m", "+1w": a duration after the step before.
fn relative(text: &str) -> Option<chrono::Duration> {
    let mut rest = text.strip_prefix('+')?.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = chrono::Duration::zero();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        total += match unit {
            's' => chrono::Duration::seconds(n),
            'm' => chrono::Duration::minutes(n),
            'h' => chrono::Duration::hours(n),
            'd' => chrono::Duration::days(n),
            'w' => chrono::Duration::weeks(n),
            _ => return None,
        };
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

/// Checks the whole scenario before anything runs: times that parse and never go back,
/// known verbs, and `{id}`s of complaints an earlier step submits.
fn plan(file: &ScenarioFile) -> Result<(DateTime<FixedOffset>, Vec<Step>), ScenarioError> {
    let start = DateTime::parse_from_rfc3339(file.start.trim()).map_err(|e| {
        ScenarioError::Start(format!(
            "{:?}: {e} (RFC 3339, e.g. 2026-03-06T08:30:00+08:00)",
            file.start
        ))
    })?;
    let mut at = start.with_timezone(&Utc);
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut steps = Vec::with_capacity(file.step.len());
    for (i, s) in file.step.iter().enumerate() {
        let n = i + 1;
        let this = match relative(s.at.trim()) {
            Some(d) => at + d,
            None if s.at.trim().starts_with('+') => {
                return Err(step_error(
                    n,
                    format!(
                        "at {:?}: a relative time is + and numbers with s, m, h, d or w",
                        s.at
                    ),
                ));
            }
            None => DateTime::parse_from_rfc3339(s.at.trim())
                .map_err(|e| step_error(n, format!("at {:?}: {e}", s.at)))?
                .with_timezone(&Utc),
        };
        if this < at {
            return Err(step_error(
                n,
                format!(
                    "at {:?} is before the step before it ({}): time does not go backwards",
                    s.at,
                    at.with_timezone(&start.timezone()).to_rfc3339()
                ),
            ));
        }
        at = this;
        let words = shlex::split(&s.action)
            .ok_or_else(|| step_error(n, format!("do {:?}: unbalanced quotes", s.action)))?;
        let Some(verb) = words.first() else {
            return Err(step_error(n, "do is empty"));
        };
        if !VERBS.contains(&verb.as_str()) {
            return Err(step_error(
                n,
                format!(
                    "unknown verb {verb:?}: a step runs one of {}",
                    VERBS.join(", ")
                ),
            ));
        }
        for word in &words {
            for id in placeholders(word) {
                let id = id.strip_suffix(".secret").unwrap_or(id);
                if !known.contains(id) {
                    return Err(step_error(
                        n,
                        format!(
                            "{{{id}}} is no complaint an earlier step submits with --external-id {id}"
                        ),
                    ));
                }
            }
        }
        if verb == "submit"
            && let Some(id) = flag(&words, "--external-id")
        {
            known.insert(id.to_string());
        }
        steps.push(Step {
            number: n,
            at,
            text: s.action.clone(),
            words,
        });
    }
    for (i, e) in file.expect.iter().enumerate() {
        e.check(i + 1, steps.len())?;
    }
    Ok((start, steps))
}

/// The `{id}`s in a word.
fn placeholders(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out
}

/// The value of `--name VALUE` or `--name=VALUE`.
fn flag<'a>(words: &'a [String], name: &str) -> Option<&'a str> {
    words.iter().enumerate().find_map(|(i, w)| {
        if w == name {
            words.get(i + 1).map(String::as_str)
        } else {
            w.strip_prefix(name).and_then(|r| r.strip_prefix('='))
        }
    })
}

pub async fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("cannot read scenario {}", args.scenario.display()))?;
    let file: ScenarioFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {}", args.scenario.display(), e.message().trim());
            return Ok(ExitCode::from(2));
        }
    };
    let (start, steps) = match plan(&file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", args.scenario.display());
            return Ok(ExitCode::from(2));
        }
    };
    let playbooks = match &args.playbooks {
        Some(dir) => redress_playbook::Playbooks::load_dir(dir)?,
        None => redress_playbook::Playbooks::builtin()?,
    };
    let Ok(playbook) = playbooks.get(&args.playbook) else {
        eprintln!(
            "no playbook {:?} (there are: {})",
            args.playbook,
            playbooks
                .iter()
                .map(|p| p.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(2));
    };
    let zone = redress_calendar::CalendarSet::builtin()?
        .get(&playbook.sla.calendar)?
        .zone()
        .clone();
    let show = Show {
        json: args.json,
        zone,
        envelope: DescriptorPool::decode(redress_proto::DESCRIPTORS)?
            .get_message_by_name("redress.v1.Envelope")
            .context("Envelope in the descriptors")?,
    };
    let (lines, failed) = Simulation::start(args, start.with_timezone(&Utc))
        .await?
        .play(&steps, &show)
        .await?;
    if let Some(e) = failed {
        eprintln!("{}: {e}", args.scenario.display());
        return Ok(ExitCode::from(2));
    }
    let unmet: Vec<String> = file
        .expect
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.unmet(&lines)
                .map(|why| format!("expect {}: {why}", i + 1))
        })
        .collect();
    if !file.expect.is_empty() {
        eprintln!(
            "{}: {} of {} expectations met",
            args.scenario.display(),
            file.expect.len() - unmet.len(),
            file.expect.len()
        );
    }
    for u in &unmet {
        eprintln!("{}: {u}", args.scenario.display());
    }
    Ok(if unmet.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a scenario expects to see: an event (by name) or a step (by number) whose line holds
/// every value given. `data` (of an event) and `output` (of a step) match when each key given
/// matches, arrays when each element given matches one of theirs, and times as instants
/// (`"2026-03-07T09:10:00+08:00"` matches `"2026-03-07T01:10:00Z"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    step: Option<usize>,
    /// Of the complaint submitted with this external id.
    #[serde(default)]
    external_id: Option<String>,
    /// When the event was published, or the step ran.
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    data: Option<toml::Value>,
    #[serde(default)]
    output: Option<toml::Value>,
    #[serde(default)]
    exit: Option<i32>,
    /// How many lines must match (default: at least one); 0 says it never happens.
    #[serde(default)]
    count: Option<usize>,
    /// What the expectation checks, said when it is not met.
    #[serde(default)]
    why: Option<String>,
}

impl Expect {
    /// Refuses an expectation that could never be met as written.
    fn check(&self, n: usize, steps: usize) -> Result<(), ScenarioError> {
        let bad = |m: String| ScenarioError::Expect {
            expect: n,
            message: m,
        };
        match (&self.event, self.step) {
            (Some(e), None) => {
                if redress_proto::catalogue::EventKind::from_name(e).is_none() {
                    return Err(bad(format!("{e:?} is not an event")));
                }
                if self.output.is_some() || self.exit.is_some() {
                    return Err(bad("output and exit are a step's; an event has data".into()));
                }
            }
            (None, Some(step)) => {
                if step == 0 || step > steps {
                    return Err(bad(format!("there is no step {step}")));
                }
                if self.data.is_some() || self.external_id.is_some() {
                    return Err(bad(
                        "data and external_id are an event's; a step has output".into(),
                    ));
                }
            }
            _ => return Err(bad("name one event or one step".into())),
        }
        if let Some(at) = &self.at
            && DateTime::parse_from_rfc3339(at).is_err()
        {
            return Err(bad(format!("at {at:?} is not an RFC 3339 time")));
        }
        Ok(())
    }

    /// Why no line (or not the expected number of lines) matches; none when met.
    fn unmet(&self, lines: &[Value]) -> Option<String> {
        let data = self.data.as_ref().map(toml_json);
        let output = self.output.as_ref().map(toml_json);
        let mut step_no = 0;
        let matching = lines
            .iter()
            .filter(|l| {
                let is_step = l.get("do").is_some();
                if is_step {
                    step_no += 1;
                }
                match (&self.event, self.step) {
                    (Some(e), _) => {
                        !is_step
                            && l["event"] == e.as_str()
                            && self
                                .external_id
                                .as_ref()
                                .is_none_or(|x| l["external_id"] == x.as_str())
                            && data.as_ref().is_none_or(|d| contains(&l["data"], d))
                    }
                    (None, Some(n)) => {
                        is_step
                            && step_no == n
                            && self.exit.is_none_or(|x| l["exit"] == x)
                            && output.as_ref().is_none_or(|o| contains(&l["output"], o))
                    }
                    (None, None) => false,
                }
            })
            .filter(|l| {
                self.at
                    .as_ref()
                    .is_none_or(|at| contains(&l["at"], &Value::String(at.clone())))
            })
            .count();
        let what = || {
            let mut w = match (&self.event, self.step) {
                (Some(e), _) => format!("event {e}"),
                (None, Some(n)) => format!("step {n}"),
                (None, None) => String::new(),
            };
            if let Some(x) = &self.external_id {
                w += &format!(" of {x}");
            }
            if let Some(at) = &self.at {
                w += &format!(" at {at}");
            }
            if let Some(d) = data.as_ref().or(output.as_ref()) {
                w += &format!(" with {d}");
            }
            if let Some(x) = self.exit {
                w += &format!(" exiting {x}");
            }
            if let Some(why) = &self.why {
                w = format!("{why}: {w}");
            }
            w
        };
        match self.count {
            Some(c) if c != matching => {
                Some(format!("{} seen {matching} times, expected {c}", what()))
            }
            None if matching == 0 => Some(format!("{} never seen", what())),
            _ => None,
        }
    }
}

/// A TOML value as JSON; a TOML date-time as its text.
fn toml_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_json(v))).collect())
        }
    }
}

/// Whether `actual` holds everything `expected` says (see [`Expect`]).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| contains(av, ev))),
        (Value::Array(a), Value::Array(e)) => {
            e.iter().all(|ev| a.iter().any(|av| contains(av, ev)))
        }
        (Value::String(a), Value::String(e)) => {
            a == e
                || matches!(
                    (DateTime::parse_from_rfc3339(a), DateTime::parse_from_rfc3339(e)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        (Value::Number(a), Value::Number(e)) => a.as_f64() == e.as_f64(),
        // Protobuf's JSON writes 64-bit integers as strings.
        (Value::String(a), Value::Number(e)) => a.parse::<f64>().ok() == e.as_f64(),
        (a, e) => a == e,
    }
}

/// How events and steps are shown.
struct Show {
    json: bool,
    zone: jiff::tz::TimeZone,
    envelope: MessageDescriptor,
}

impl Show {
    /// The instant in the playbook's zone, with its offset.
    fn at(&self, at: DateTime<Utc>) -> String {
        jiff::Timestamp::from_microsecond(at.timestamp_micros())
            .map(|t| {
                t.to_zoned(self.zone.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            })
            .unwrap_or_else(|_| at.to_rfc3339())
    }

    /// Shows one event; returns its JSON line.
    fn event(
        &self,
        subject: &str,
        payload: &[u8],
        external_ids: &HashMap<String, String>,
    ) -> Option<Value> {
        let Ok(msg) = DynamicMessage::decode(self.envelope.clone(), payload) else {
            eprintln!("undecodable message on {subject}");
            return None;
        };
        let options = SerializeOptions::new().use_proto_field_name(true);
        let envelope = msg
            .serialize_with_options(serde_json::value::Serializer, &options)
            .unwrap_or(Value::Null);
        let decoded = <redress_proto::v1::Envelope as prost::Message>::decode(payload).ok();
        let (at, kind, ticket) = match &decoded {
            Some(e) => (
                e.occurred_at
                    .as_ref()
                    .and_then(|t| redress_proto::time::opt_to_chrono(&Some(*t)))
                    .map(|t| self.at(t))
                    .unwrap_or_default(),
                e.kind().map(|k| k.name()).unwrap_or("unknown"),
                e.ticket.clone(),
            ),
            None => (String::new(), "unknown", String::new()),
        };
        // The payload is the one member of the oneof that is set.
        let data = self
            .envelope
            .oneofs()
            .find(|o| o.name() == "payload")
            .and_then(|o| o.fields().find(|f| msg.has_field(f)))
            .and_then(|f| envelope.get(f.name()).cloned())
            .unwrap_or(Value::Null);
        let external_id = external_ids.get(&ticket).cloned().unwrap_or_default();
        let line = json!({
            "at": at,
            "ticket": ticket,
            "external_id": external_id,
            "event": kind,
            "subject": subject,
            "data": data,
        });
        if self.json {
            println!("{line}");
        } else {
            let who = if external_id.is_empty() {
                ticket
            } else {
                format!("{ticket} ({external_id})")
            };
            println!("{at}  {who:<26} {kind:<22} {}", self.summary(kind, &data));
        }
        Some(line)
    }

    /// What an event says, in a line a person reads.
    fn summary(&self, kind: &str, d: &Value) -> String {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let when = |v: &Value| {
            v.as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| self.at(t.with_timezone(&Utc)))
                .unwrap_or_else(|| "-".into())
        };
        let deadline = |x: &Value| {
            format!(
                "{} ({}, due {})",
                s(&x["name"]),
                s(&x["limit"]),
                when(&x["due_at"])
            )
        };
        let text = match kind {
            "complaint.received" => format!("by {}", s(&d["channel"])),
            "complaint.classified" => format!(
                "{} / {} / {} / {}",
                s(&d["category"]),
                s(&d["nature"]),
                s(&d["severity"])
                    .trim_start_matches("SEVERITY_")
                    .to_lowercase(),
                s(&d["urgency"])
                    .trim_start_matches("URGENCY_")
                    .to_lowercase()
            ),
            "sla.armed" => d["deadlines"]
                .as_array()
                .map(|ds| {
                    ds.iter()
                        .map(
                            |x| match (s(&x["state"]).as_str(), s(&x["moved_because"])) {
                                ("DEADLINE_STATE_CANCELLED", why) => {
                                    format!("{} cancelled: {why}", s(&x["name"]))
                                }
                                (_, why) if !why.is_empty() => {
                                    format!("{} moved: {why}", deadline(x))
                                }
                                _ => deadline(x),
                            },
                        )
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            "sla.met" | "sla.breached" | "sla.warning" => deadline(&d["deadline"]),
            "sla.escalation" => format!(
                "{} {} ({} of {})",
                s(&d["action"]),
                s(&d["to"]),
                s(&d["at"]),
                s(&d["deadline"]["name"])
            ),
            "work.escalated" => format!(
                "to {} (level {}, {})",
                s(&d["escalated_to"]),
                d["level"],
                s(&d["deadline"])
            ),
            "approval.requested" => format!(
                "step {} of {} asks {}: {}",
                d["step"],
                d["steps"],
                s(&d["approver_role"]),
                s(&d["reason"])
            ),
            "approval.decided" => format!(
                "{} by {} {}",
                if d["approved"] == true {
                    "approved"
                } else {
                    "rejected"
                },
                s(&d["decided_by"]),
                s(&d["note"])
            ),
            "survey.sent" => {
                let mut t = format!("survey of round {} by {}", d["round"], s(&d["channel"]));
                if s(&d["channel"]) == "phone" {
                    t += &format!(" (unanswered: {} to call)", s(&d["department"]));
                }
                if d["sample"] == true {
                    t += ", a sample re-survey";
                }
                if d["reminder"] == true {
                    t += ", a reminder";
                }
                t
            }
            "survey.answered" => format!(
                "overall {}, {}{}",
                d["scores"]["overall"],
                if d["satisfied"] == true {
                    "satisfied"
                } else {
                    "dissatisfied"
                },
                if s(&d["recorded_by"]).is_empty() {
                    String::new()
                } else {
                    format!(" (recorded by {})", s(&d["recorded_by"]))
                }
            ),
            "complaint.closed" => {
                if d["no_response"] == true {
                    "closed: no response to the survey".into()
                } else {
                    "closed".into()
                }
            }
            "complaint.reopened" => {
                format!("reopened for round {}: {}", d["round"], s(&d["reason"]))
            }
            "report.published" => format!(
                "{} report of {} for {} made: {} received, {} open, {} breaches (read with `{}`)",
                s(&d["kind"]),
                s(&d["playbook"]),
                s(&d["period"]),
                d["received"].as_str().unwrap_or("0"),
                d["open"].as_str().unwrap_or("0"),
                d["breaches"].as_str().unwrap_or("0"),
                s(&d["read_with"])
            ),
            "analytics.spike" => format!(
                "{} spiked on {}: {} against {:.1} expected",
                s(&d["category"]),
                s(&d["day"]),
                d["observed"].as_str().unwrap_or("0"),
                d["expected"].as_f64().unwrap_or(0.0)
            ),
            "work.committed" => format!(
                "completion committed for {} at {}",
                s(&d["work"]["committed_on"]),
                s(&d["work"]["department"])
            ),
            k if k.starts_with("work.") => {
                let w = &d["work"];
                let mut t = format!(
                    "{} at {}",
                    s(&w["state"])
                        .trim_start_matches("WORK_STATE_")
                        .to_lowercase(),
                    s(&w["department"])
                );
                if !s(&d["actor"]).is_empty() {
                    t += &format!(" by {}", s(&d["actor"]));
                }
                if !s(&d["note"]).is_empty() {
                    t += &format!(" ({})", s(&d["note"]));
                }
                t
            }
            _ => d.to_string(),
        };
        let mut text = text;
        if text.chars().count() > 200 {
            text = text.chars().take(197).collect::<String>() + "...";
        }
        text
    }

    /// Shows one step; returns its JSON line.
    fn step(&self, step: &Step, at: DateTime<Utc>, exit: i32, output: &Value) -> Value {
        let line = json!({
            "at": self.at(at),
            "do": step.text,
            "exit": exit,
            "output": output,
        });
        if self.json {
            println!("{line}");
        } else {
            println!(
                "{}  step {}: $ redress {}  (exit {exit})",
                self.at(at),
                step.number,
                step.text
            );
            let pretty = match output {
                Value::String(s) => s.clone(),
                v => serde_json::to_string_pretty(v).unwrap_or_default(),
            };
            let lines: Vec<&str> = pretty.lines().collect();
            for line in lines.iter().take(16) {
                println!("    {line}");
            }
            if lines.len() > 16 {
                println!("    … ({} more lines; --json shows all)", lines.len() - 16);
            }
        }
        line
    }
}

/// The running stack of one simulation.
struct Simulation {
    _dir: tempfile::TempDir,
    workdir: PathBuf,
    stack: crate::up::Stack,
    clock: Arc<ManualClock>,
    shutdown: redress_platform::Shutdown,
    services: tokio::task::JoinHandle<anyhow::Result<ExitCode>>,
    client: redress_client::Client,
    db: sqlx::PgPool,
    sla: redress_sla_timer::SlaSettings,
    /// What the analytics timer's schedule is read from.
    playbooks: redress_playbook::Playbooks,
    calendars: redress_calendar::CalendarSet,
    /// Every line shown, as JSON, for the scenario's expectations.
    lines: Vec<Value>,
    events: futures::channel::mpsc::UnboundedReceiver<(String, bytes::Bytes)>,
}

impl Simulation {
    async fn start(args: &SimulateArgs, start: DateTime<Utc>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let workdir = dir.path().to_path_buf();
        let mut overrides = json!({
            "intake": { "default_playbook": args.playbook },
            // The timers look at the virtual clock often, so that a step waits little.
            "sla": { "tick_ms": 20 },
            "survey": { "tick_ms": 20 },
            "analytics": { "tick_ms": 20 },
            "telemetry": { "filter": "error" },
        });
        if let Some(playbooks) = &args.playbooks {
            overrides["playbooks"] = json!({ "dir": std::fs::canonicalize(playbooks)? });
        }
        let config = Config::load(None)?.merged(overrides)?;
        let _telemetry = redress_platform::telemetry::init("redress", &config.settings.telemetry)?;
        // Never a running stack named by the environment: a simulation's complaints are its own.
        let stack = crate::up::start(config, &workdir.join(".redress"), false, false, true).await?;
        let clock = ManualClock::new(start);
        let shutdown = redress_platform::Shutdown::new();
        let health = redress_platform::health::Health::default();
        let services = {
            let (config, shutdown, clock, health) = (
                stack.config.clone(),
                shutdown.clone(),
                clock.clone(),
                health.clone(),
            );
            tokio::spawn(async move {
                let names = crate::services::NAMES.map(String::from);
                crate::services::run_services_with(config, &names, shutdown, clock, false, health)
                    .await
            })
        };
        tokio::time::timeout(Duration::from_secs(120), health.wait_ready())
            .await
            .context("the services did not get ready in 2 minutes")?;
        let client =
            redress_client::Client::connect(&stack.cli_nats_url, &stack.config.settings.nats.root)
                .await?;
        let (tx, events) = futures::channel::mpsc::unbounded();
        let mut sub = client
            .nats()
            .subscribe(client.subjects().all_events())
            .await?;
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if tx
                    .unbounded_send((m.subject.to_string(), m.payload))
                    .is_err()
                {
                    break;
                }
            }
        });
        let url = match &stack.database_url {
            Some(url) => url.clone(),
            None => {
                use secrecy::ExposeSecret as _;
                stack
                    .config
                    .settings
                    .database
                    .url
                    .expose_secret()
                    .to_string()
            }
        };
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?;
        let sla = stack.config.section("sla")?;
        let playbooks = match &stack.config.settings.playbooks.dir {
            Some(dir) => redress_playbook::Playbooks::load_dir(dir)?,
            None => redress_playbook::Playbooks::builtin()?,
        };
        Ok(Self {
            sla,
            playbooks,
            calendars: redress_calendar::CalendarSet::builtin()?,
            _dir: dir,
            workdir,
            stack,
            clock,
            shutdown,
            services,
            client,
            db,
            lines: Vec::new(),
            events,
        })
    }

    /// Runs the steps; returns every line shown, and the step that could not run.
    async fn play(
        mut self,
        steps: &[Step],
        show: &Show,
    ) -> anyhow::Result<(Vec<Value>, Option<ScenarioError>)> {
        let mut tickets: HashMap<String, String> = HashMap::new();
        let mut external_ids: HashMap<String, String> = HashMap::new();
        self.settle().await?;
        self.flush(show, &external_ids);
        let mut failed = None;
        for step in steps {
            self.advance_to(step.at, show, &external_ids).await?;
            let mut words = Vec::with_capacity(step.words.len() + 1);
            for w in &step.words {
                let mut word = w.clone();
                for id in placeholders(w) {
                    let Some(ticket) = tickets.get(id) else {
                        failed = Some(step_error(
                            step.number,
                            format!(
                                "{{{id}}}: the complaint with external id {id} got no ticket (its submit failed)"
                            ),
                        ));
                        break;
                    };
                    word = word.replace(&format!("{{{id}}}"), ticket);
                }
                words.push(word);
            }
            if failed.is_some() {
                break;
            }
            if !words.iter().any(|w| w == "--json") {
                words.push("--json".into());
            }
            // The verb finds this stack (and its people's keys) by the data directory in its
            // working directory, never one the environment names.
            let out = tokio::time::timeout(
                Duration::from_secs(120),
                tokio::process::Command::new(std::env::current_exe()?)
                    .args(&words)
                    .current_dir(&self.workdir)
                    .env_remove("REDRESS_CONFIG")
                    .env_remove("REDRESS_NATS_URL")
                    .env_remove("REDRESS_PERSON_KEY")
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .with_context(|| format!("step {}: no answer in 2 minutes", step.number))??;
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let output = serde_json::from_str::<Value>(&stdout).unwrap_or_else(|_| {
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
                Value::String(if stdout.is_empty() { stderr } else { stdout })
            });
            if step.words[0] == "submit"
                && out.status.success()
                && let Some(id) = flag(&step.words, "--external-id")
                && let Some(ticket) = output.get("ticket").and_then(Value::as_str)
            {
                tickets.insert(id.to_string(), ticket.to_string());
                external_ids.insert(ticket.to_string(), id.to_string());
                if let Some(secret) = output.get("status_secret").and_then(Value::as_str) {
                    tickets.insert(format!("{id}.secret"), secret.to_string());
                }
            }
            self.settle().await?;
            self.flush(show, &external_ids);
            let line = show.step(step, step.at, out.status.code().unwrap_or(-1), &output);
            self.lines.push(line);
        }
        self.shutdown.cancel();
        let _ = self.services.await;
        self.db.close().await;
        self.stack.stop();
        Ok((self.lines, failed))
    }

    /// Moves the clock to `to`, stopping at each timer on the way so that everything falls
    /// due in order, and lets the stack finish what each stop starts.
    async fn advance_to(
        &mut self,
        to: DateTime<Utc>,
        show: &Show,
        external_ids: &HashMap<String, String>,
    ) -> anyhow::Result<()> {
        use redress_platform::Clock as _;
        loop {
            let now = self.clock.now();
            let next = [
                redress_sla_timer::next_due(&self.db, &self.sla, now).await?,
                redress_survey::next_due(&self.db, now).await?,
                redress_analytics::next_due(&self.db, &self.playbooks, &self.calendars, now)
                    .await?,
            ]
            .into_iter()
            .flatten()
            .filter(|t| *t <= to)
            .min();
            let Some(next) = next else { break };
            self.clock.set(next);
            self.settle().await?;
            self.flush(show, external_ids);
        }
        if self.clock.now() < to {
            self.clock.set(to);
            self.settle().await?;
            self.flush(show, external_ids);
        }
        Ok(())
    }

    /// Waits until the services have nothing left to do: no message pending or unacknowledged
    /// on their consumers, no event waiting in an outbox, three looks in a row.
    async fn settle(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        // Long enough for every timer to have looked at the clock once.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let mut quiet = 0;
        while quiet < 3 {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the stack did not settle in 2 minutes"
            );
            if self.busy().await? {
                quiet = 0;
            } else {
                quiet += 1;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        Ok(())
    }

    async fn busy(&self) -> anyhow::Result<bool> {
        let js = async_nats::jetstream::new(self.client.nats().clone());
        let subjects = self.client.subjects();
        for stream in [Stream::Submissions, Stream::Events, Stream::Evidence] {
            let Ok(s) = js.get_stream(subjects.stream_name(stream)).await else {
                continue;
            };
            let mut names = s.consumer_names();
            let mut consumers = Vec::new();
            while let Some(name) = names.next().await {
                consumers.push(name?);
            }
            for name in consumers {
                if !crate::services::NAMES
                    .iter()
                    .any(|svc| name.starts_with(&format!("{svc}-")))
                {
                    continue;
                }
                let info = s.consumer_info(&name).await?;
                if info.num_pending > 0 || info.num_ack_pending > 0 {
                    return Ok(true);
                }
            }
        }
        let pending: i64 = sqlx::query_scalar(&outbox_query())
            .fetch_one(&self.db)
            .await?;
        // The analytics timer has not looked at the clock yet: a report may be on its way.
        use redress_platform::Clock as _;
        let behind = !redress_analytics::caught_up(&self.db, self.clock.now()).await?;
        Ok(pending > 0 || behind)
    }

    fn flush(&mut self, show: &Show, external_ids: &HashMap<String, String>) {
        while let Ok((subject, payload)) = self.events.try_recv() {
            self.lines
                .extend(show.event(&subject, &payload, external_ids));
        }
    }
}

/// Rows waiting in the six outboxes (those the relay gave up on aside).
fn outbox_query() -> String {
    let parts: Vec<String> = crate::services::NAMES
        .iter()
        .map(|n| {
            format!(
                "(SELECT count(*) FROM {}.outbox WHERE stuck_at IS NULL)",
                crate::services::ident(n).schema
            )
        })
        .collect();
    format!("SELECT {}", parts.join(" + "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Result<Vec<Step>, ScenarioError> {
        plan(&toml::from_str::<ScenarioFile>(text).unwrap()).map(|(_, s)| s)
    }

    #[test]
    fn a_scenario_is_checked_before_it_runs() {
        let ok = scenario(
            "start = \"2026-03-06T08:30:00+08:00\"\n\
             [[step]]\nat = \"2026-03-06T09:00:00+08:00\"\n\
             do = \"submit --channel phone --external-id c1 --text '快递丢件了'\"\n\
             [[step]]\nat = \"+1h30m\"\ndo = \"status {c1}\"\n\
             [[step]]\nat = \"+3d\"\ndo = \"work accept {c1} --dept logistics --as zhou.qiang\"\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0].at.to_rfc3339(), "2026-03-06T01:00:00+00:00");
        assert_eq!(ok[1].at.to_rfc3339(), "2026-03-06T02:30:00+00:00");
        assert_eq!(ok[2].at.to_rfc3339(), "2026-03-09T02:30:00+00:00");
        assert_eq!(ok[0].words[6], "快递丢件了");
        let refused = |text: &str| scenario(text).unwrap_err().to_string();
        let start = "start = \"2026-03-06T08:30:00+08:00\"\n";
        assert_eq!(
            refused(&format!(
                "{start}[[step]]\nat = \"+1m\"\ndo = \"launch rockets\"\n"
            )),
            "step 1: unknown verb \"launch\": a step runs one of submit, status, work, approve, \
             reject, approvals, delegate, survey, notifications, withdraw, respond, evidence, erase, report"
        );
        assert!(
            refused(&format!(
                "{start}[[step]]\nat = \"+1m\"\ndo = \"status {{c9}}\"\n"
            ))
            .starts_with("step 1: {c9} is no complaint")
        );
        assert!(
            refused(&format!(
                "{start}[[step]]\nat = \"+1h\"\ndo = \"approvals\"\n\
                 [[step]]\nat = \"2026-03-06T09:00:00+08:00\"\ndo = \"approvals\"\n"
            ))
            .starts_with("step 2: at \"2026-03-06T09:00:00+08:00\" is before the step before it")
        );
        assert!(
            refused(&format!(
                "{start}[[step]]\nat = \"+1x\"\ndo = \"approvals\"\n"
            ))
            .starts_with("step 1: at")
        );
        assert!(refused("start = \"yesterday\"\n").starts_with("start:"));
    }
}
