//! The command requests, built without a connection. Each builder gives the request a fresh
//! command id; keep the request and send it again to retry without doing the thing twice.

use redress_proto::subjects;
use redress_proto::v1::{
    Accept, AnswerSurvey, CommitDate, Contest, DecideApproval, Explain, Investigate, ListApprovals,
    ListFollowUps, ListWork, Merge, Propose, Reclassify, Reply, ReportProgress, RequestEvidence,
    Resolve, SurveyScores, Transfer, WorkCommand, WorkState, work_command::Action,
};

use crate::ClientError;

/// A new command id: a UUIDv7, so ids sort by when they were made.
pub fn new_command_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Gives a request without an id a fresh one; an id the caller set is kept.
pub(crate) fn ensure_command_id(id: &mut String) {
    if id.trim().is_empty() {
        *id = new_command_id();
    }
}

fn work(ticket: &str, department: &str, actor: &str, action: Action) -> WorkCommand {
    WorkCommand {
        command_id: new_command_id(),
        ticket: ticket.to_string(),
        department: department.to_string(),
        actor: actor.to_string(),
        action: Some(action),
    }
}

/// `actor` of `department` takes on the work of `ticket`.
pub fn accept(ticket: &str, department: &str, actor: &str) -> WorkCommand {
    work(ticket, department, actor, Action::Accept(Accept {}))
}

/// A remedy (and compensation) for the approval step to pass or stop.
pub fn propose(ticket: &str, department: &str, actor: &str, proposal: Propose) -> WorkCommand {
    work(ticket, department, actor, Action::Propose(proposal))
}

/// What the complainant is told.
pub fn reply(ticket: &str, department: &str, actor: &str, message: &str) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Reply(Reply {
            message: message.to_string(),
        }),
    )
}

/// The department considers the matter settled; the survey follows.
pub fn resolve(ticket: &str, department: &str, actor: &str, summary: &str) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Resolve(Resolve {
            summary: summary.to_string(),
        }),
    )
}

/// Hands misrouted work of `ticket` from `department` to `to_department`: why, and what was
/// understood of the complaint (nothing is handed on before someone has understood it).
pub fn transfer(
    ticket: &str,
    department: &str,
    actor: &str,
    to_department: &str,
    reason: &str,
    understood: &str,
) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Transfer(Transfer {
            to_department: to_department.to_string(),
            reason: reason.to_string(),
            understood: understood.to_string(),
        }),
    )
}

/// Tells the complainant how the matter stands.
pub fn progress(ticket: &str, department: &str, actor: &str, message: &str) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Progress(ReportProgress {
            message: message.to_string(),
        }),
    )
}

/// Records that the complainant rejected the reply, and what they objected to: the
/// department proposes again in the same round.
pub fn contest(ticket: &str, department: &str, actor: &str, objection: &str) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Contest(Contest {
            objection: objection.to_string(),
        }),
    )
}

/// The fast path: answer `ticket` with an explanation and resolve it without a proposal, where
/// the playbook allows it (the work's nature, or `not_liable`: not the company's fault).
/// `basis` names the approved material the answer rests on (may be empty).
pub fn explain(
    ticket: &str,
    department: &str,
    actor: &str,
    message: &str,
    not_liable: bool,
    basis: &str,
) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Explain(Explain {
            message: message.to_string(),
            not_liable,
            basis: basis.to_string(),
        }),
    )
}

/// An entry of the investigation record of `ticket`.
pub fn investigate(ticket: &str, department: &str, actor: &str, entry: Investigate) -> WorkCommand {
    work(ticket, department, actor, Action::Investigate(entry))
}

/// The rectification plan of `ticket` and the day it will be done (`due_on`, YYYY-MM-DD):
/// the complainant is told, and the day becomes a deadline.
pub fn commit(
    ticket: &str,
    department: &str,
    actor: &str,
    due_on: &str,
    plan: &str,
) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Commit(CommitDate {
            due_on: due_on.to_string(),
            plan: plan.to_string(),
        }),
    )
}

/// `ticket` repeats `into_ticket`: it closes into it, and both complainants are told.
pub fn merge(
    ticket: &str,
    department: &str,
    actor: &str,
    into_ticket: &str,
    reason: &str,
) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::Merge(Merge {
            into_ticket: into_ticket.to_string(),
            reason: reason.to_string(),
        }),
    )
}

/// Asks the complainant of `ticket` for evidence (`what` is needed); the clocks the playbook
/// names pause until it arrives.
pub fn request_evidence(ticket: &str, department: &str, actor: &str, what: &str) -> WorkCommand {
    work(
        ticket,
        department,
        actor,
        Action::RequestEvidence(RequestEvidence {
            what: what.to_string(),
        }),
    )
}

/// Corrects the classification of `ticket` (fields left empty stay as they are), saying why.
pub fn reclassify(ticket: &str, department: &str, actor: &str, change: Reclassify) -> WorkCommand {
    work(ticket, department, actor, Action::Reclassify(change))
}

/// A department key as it goes into a command subject: one subject token.
pub fn department_token(department: &str) -> Result<&str, ClientError> {
    if subjects::is_subject_token(department) {
        Ok(department)
    } else {
        Err(ClientError::Invalid {
            field: "department",
            message: format!(
                "{department:?} is not a department key (lowercase letters, digits, - or _)"
            ),
        })
    }
}

/// The routing verb a work command goes to: it must match the command's action.
pub fn work_verb(command: &WorkCommand) -> Result<&'static str, ClientError> {
    match &command.action {
        Some(Action::Accept(_)) => Ok(subjects::routing::ACCEPT),
        Some(Action::Propose(_)) => Ok(subjects::routing::PROPOSE),
        Some(Action::Reply(_)) => Ok(subjects::routing::REPLY),
        Some(Action::Resolve(_)) => Ok(subjects::routing::RESOLVE),
        Some(Action::Transfer(_)) => Ok(subjects::routing::TRANSFER),
        Some(Action::Progress(_)) => Ok(subjects::routing::PROGRESS),
        Some(Action::Contest(_)) => Ok(subjects::routing::CONTEST),
        Some(Action::Explain(_)) => Ok(subjects::routing::EXPLAIN),
        Some(Action::Investigate(_)) => Ok(subjects::routing::INVESTIGATE),
        Some(Action::Commit(_)) => Ok(subjects::routing::COMMIT),
        Some(Action::Merge(_)) => Ok(subjects::routing::MERGE),
        Some(Action::RequestEvidence(_)) => Ok(subjects::routing::REQUEST_EVIDENCE),
        Some(Action::Reclassify(_)) => Ok(subjects::routing::RECLASSIFY),
        None => Err(ClientError::Invalid {
            field: "action",
            message: "a work command needs an action (accept, propose, reply, resolve, \
                      transfer, progress, contest, explain, investigate, commit, merge, \
                      request_evidence or reclassify)"
                .into(),
        }),
    }
}

/// The open work of `department`; no `states` means every state but closed.
pub fn list_work(department: &str, states: &[WorkState], limit: u32) -> ListWork {
    ListWork {
        department: department.to_string(),
        states: states.iter().map(|s| *s as i32).collect(),
        limit,
    }
}

/// An approver's decision on the pending approval of `ticket`'s current proposal.
pub fn decide(ticket: &str, approver: &str, approve: bool, note: &str) -> DecideApproval {
    DecideApproval {
        command_id: new_command_id(),
        ticket: ticket.to_string(),
        approver: approver.to_string(),
        approve,
        note: note.to_string(),
        approval_id: String::new(),
    }
}

pub fn list_approvals(limit: u32) -> ListApprovals {
    ListApprovals { limit }
}

/// The department's phone follow-ups, at most `limit` (0: the service's default).
pub fn list_follow_ups(department: &str, limit: u32) -> ListFollowUps {
    ListFollowUps {
        department: department.trim().to_string(),
        limit,
    }
}

/// The complainant's answer to the survey of `ticket`, as a channel adapter received it.
pub fn answer(ticket: &str, token: &str, scores: SurveyScores, comment: &str) -> AnswerSurvey {
    AnswerSurvey {
        command_id: new_command_id(),
        ticket: ticket.to_string(),
        scores: Some(scores),
        comment: comment.to_string(),
        survey_id: String::new(),
        token: token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_proto::v1::Responsibility;

    fn is_v7(id: &str) -> bool {
        uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)
    }

    #[test]
    fn every_builder_makes_a_fresh_v7_id() {
        let a = accept("RD-1", "logistics", "wang.fang");
        let b = accept("RD-1", "logistics", "wang.fang");
        assert!(is_v7(&a.command_id), "{}", a.command_id);
        assert_ne!(a.command_id, b.command_id);
        assert!(is_v7(&decide("RD-1", "li.qiang", true, "").command_id));
        assert!(is_v7(
            &answer("RD-1", "t", SurveyScores::default(), "").command_id
        ));
    }

    #[test]
    fn an_id_the_caller_set_is_kept_and_a_blank_one_is_filled() {
        let mut given = "my-id".to_string();
        ensure_command_id(&mut given);
        assert_eq!(given, "my-id");
        let mut blank = " ".to_string();
        ensure_command_id(&mut blank);
        assert!(is_v7(&blank));
    }

    #[test]
    fn each_action_goes_to_its_own_verb() {
        let proposal = Propose {
            responsibility: Responsibility::CompanyLiable as i32,
            remedy: "refund".into(),
            compensation_minor: 80_000,
            currency: "CNY".into(),
            kind: 0,
        };
        let cases = [
            (accept("T", "d", "a"), "accept"),
            (propose("T", "d", "a", proposal.clone()), "propose"),
            (reply("T", "d", "a", "sorry"), "reply"),
            (resolve("T", "d", "a", "done"), "resolve"),
        ];
        for (cmd, verb) in cases {
            assert_eq!(work_verb(&cmd).unwrap(), verb);
            assert_eq!(
                (
                    cmd.ticket.as_str(),
                    cmd.department.as_str(),
                    cmd.actor.as_str()
                ),
                ("T", "d", "a")
            );
        }
        let p = propose("T", "d", "a", proposal.clone());
        assert_eq!(p.action, Some(Action::Propose(proposal)));
        let r = reply("T", "d", "a", "sorry");
        assert_eq!(
            r.action,
            Some(Action::Reply(Reply {
                message: "sorry".into()
            }))
        );
    }

    #[test]
    fn a_command_without_an_action_is_not_sent() {
        let mut cmd = accept("T", "d", "a");
        cmd.action = None;
        assert!(matches!(
            work_verb(&cmd),
            Err(ClientError::Invalid {
                field: "action",
                ..
            })
        ));
    }

    #[test]
    fn list_work_carries_states_as_numbers() {
        let l = list_work("logistics", &[WorkState::Assigned, WorkState::Proposed], 25);
        assert_eq!(l.department, "logistics");
        assert_eq!(l.states, vec![1, 3]);
        assert_eq!(l.limit, 25);
    }

    #[test]
    fn decisions_and_answers_carry_what_was_given() {
        let d = decide("RD-9", "li.qiang", false, "too much");
        assert_eq!(
            (
                d.ticket.as_str(),
                d.approver.as_str(),
                d.approve,
                d.note.as_str()
            ),
            ("RD-9", "li.qiang", false, "too much")
        );
        let scores = SurveyScores {
            overall: 4,
            speed: 3,
            ..Default::default()
        };
        let a = answer("RD-9", "t", scores, "ok");
        assert_eq!(a.scores, Some(scores));
        assert_eq!(a.comment, "ok");
    }
}
