//! The commands of departments, approvers and survey answers: routing, approval and survey
//! services, each through `<root>.cmd.<service>.<verb>`.

use redress_proto::subjects;
use redress_proto::v1::{
    AnswerSurvey, ApprovalReply, ApprovalView, DecideApproval, FollowUpTask, KpiQuery, KpiReply,
    Kpis, ListApprovalsReply, ListFollowUpsReply, ListWorkReply, Propose, RecordFollowUp,
    SurveyReply, SurveyScores, SurveyView, WorkCommand, WorkCommandReply, WorkItem, WorkState,
    approval_reply, list_approvals_reply, list_follow_ups_reply, list_work_reply, survey_reply,
    work_command_reply,
};

use crate::requests::{self, ensure_command_id};
use crate::{Client, ClientError};

impl Client {
    /// `actor` of `department` takes on the work of `ticket`.
    pub async fn accept(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::accept(ticket, department, actor))
            .await
    }

    /// Proposes a remedy; the approval service passes it or asks an approver.
    pub async fn propose(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        proposal: Propose,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::propose(ticket, department, actor, proposal))
            .await
    }

    /// Sends the department's reply to the complainant.
    pub async fn reply(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        message: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::reply(ticket, department, actor, message))
            .await
    }

    /// Marks the work resolved; the complainant gets the survey.
    pub async fn resolve(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        summary: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::resolve(ticket, department, actor, summary))
            .await
    }

    /// Hands misrouted work to `to_department` with the reason and what was understood of
    /// the complaint. Back to a department that held it before only by the manager.
    pub async fn transfer(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        to_department: &str,
        reason: &str,
        understood: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::transfer(
            ticket,
            department,
            actor,
            to_department,
            reason,
            understood,
        ))
        .await
    }

    /// Tells the complainant how the matter stands.
    pub async fn progress(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        message: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::progress(ticket, department, actor, message))
            .await
    }

    /// Records the complainant's rejection of the reply; the work goes back for a new
    /// proposal in the same round.
    pub async fn contest(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        objection: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::contest(ticket, department, actor, objection))
            .await
    }

    /// The fast path: explains and resolves without a proposal where the playbook allows it
    /// (see [`requests::explain`]).
    pub async fn explain(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        message: &str,
        not_liable: bool,
        basis: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::explain(
            ticket, department, actor, message, not_liable, basis,
        ))
        .await
    }

    /// Records an entry of the investigation: notes, cause, responsibility, corrective and
    /// preventive actions, file references.
    pub async fn investigate(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        entry: redress_proto::v1::Investigate,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::investigate(ticket, department, actor, entry))
            .await
    }

    /// Commits to a completion date with the plan; the complainant is told and the date
    /// becomes a deadline.
    pub async fn commit(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        due_on: &str,
        plan: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::commit(ticket, department, actor, due_on, plan))
            .await
    }

    /// Merges the duplicate `ticket` into `into_ticket`; both complainants are told.
    pub async fn merge(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        into_ticket: &str,
        reason: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::merge(
            ticket,
            department,
            actor,
            into_ticket,
            reason,
        ))
        .await
    }

    /// Asks the complainant for evidence; they are told with a token to answer with, and the
    /// clocks the playbook names pause until the evidence arrives.
    pub async fn request_evidence(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        what: &str,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::request_evidence(ticket, department, actor, what))
            .await
    }

    /// Corrects the classification (nature, category, severity, urgency; empty fields stay),
    /// with the reason; deadlines and routing follow.
    pub async fn reclassify(
        &self,
        ticket: &str,
        department: &str,
        actor: &str,
        change: redress_proto::v1::Reclassify,
    ) -> Result<WorkItem, ClientError> {
        self.send_work_command(requests::reclassify(ticket, department, actor, change))
            .await
    }

    /// Sends any work command to the routing verb its action names. A blank `command_id`
    /// gets a fresh one; set it (or build with [`requests`]) to be able to resend.
    pub async fn send_work_command(
        &self,
        mut command: WorkCommand,
    ) -> Result<WorkItem, ClientError> {
        let verb = requests::work_verb(&command)?;
        let department = requests::department_token(&command.department)?;
        ensure_command_id(&mut command.command_id);
        let reply: WorkCommandReply = self
            .call_as(
                subjects::routing::SERVICE,
                &format!("{verb}.{department}"),
                &command,
                &command.actor,
            )
            .await?;
        match reply.outcome {
            Some(work_command_reply::Outcome::Work(w)) => Ok(w),
            Some(work_command_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// The work of `department`, in the given states (none: every state but closed).
    pub async fn list_work(
        &self,
        department: &str,
        states: &[WorkState],
        limit: u32,
    ) -> Result<Vec<WorkItem>, ClientError> {
        let token = requests::department_token(department)?;
        let reply: ListWorkReply = self
            .call(
                subjects::routing::SERVICE,
                &format!("{}.{token}", subjects::routing::LIST),
                &requests::list_work(department, states, limit),
            )
            .await?;
        match reply.outcome {
            Some(list_work_reply::Outcome::List(l)) => Ok(l.items),
            Some(list_work_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// Approves or rejects the pending approval of `ticket`'s current proposal.
    pub async fn decide_approval(
        &self,
        ticket: &str,
        approver: &str,
        approve: bool,
        note: &str,
    ) -> Result<ApprovalView, ClientError> {
        self.send_decision(requests::decide(ticket, approver, approve, note))
            .await
    }

    /// Hands `delegation.delegator`'s approvals to `delegation.delegate` for a range of days,
    /// signed by the delegator; a blank `command_id` gets a fresh one.
    pub async fn delegate_approvals(
        &self,
        mut delegation: redress_proto::v1::DelegateApproval,
    ) -> Result<redress_proto::v1::DelegationView, ClientError> {
        use redress_proto::v1::{DelegateReply, delegate_reply};
        ensure_command_id(&mut delegation.command_id);
        let reply: DelegateReply = self
            .call_as(
                subjects::approval::SERVICE,
                subjects::approval::DELEGATE,
                &delegation,
                &delegation.delegator.clone(),
            )
            .await?;
        match reply.outcome {
            Some(delegate_reply::Outcome::Delegation(d)) => Ok(d),
            Some(delegate_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// Sends a decision as given; a blank `command_id` gets a fresh one.
    pub async fn send_decision(
        &self,
        mut decision: DecideApproval,
    ) -> Result<ApprovalView, ClientError> {
        ensure_command_id(&mut decision.command_id);
        let reply: ApprovalReply = self
            .call_as(
                subjects::approval::SERVICE,
                subjects::approval::DECIDE,
                &decision,
                &decision.approver,
            )
            .await?;
        match reply.outcome {
            Some(approval_reply::Outcome::Approval(a)) => Ok(a),
            Some(approval_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// Approvals waiting for a decision.
    pub async fn list_approvals(&self, limit: u32) -> Result<Vec<ApprovalView>, ClientError> {
        let reply: ListApprovalsReply = self
            .call(
                subjects::approval::SERVICE,
                subjects::approval::LIST,
                &requests::list_approvals(limit),
            )
            .await?;
        match reply.outcome {
            Some(list_approvals_reply::Outcome::List(l)) => Ok(l.items),
            Some(list_approvals_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// The key figures of a playbook over a period and slice (the analytics service).
    pub async fn kpis(&self, query: &KpiQuery) -> Result<Kpis, ClientError> {
        let reply: KpiReply = self
            .call(
                subjects::analytics::SERVICE,
                subjects::analytics::KPIS,
                query,
            )
            .await?;
        match reply.outcome {
            Some(redress_proto::v1::kpi_reply::Outcome::Kpis(k)) => Ok(k),
            Some(redress_proto::v1::kpi_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// A report the analytics service made on schedule (`period` empty: the newest).
    pub async fn stored_report(
        &self,
        playbook: &str,
        period: &str,
    ) -> Result<redress_proto::v1::StoredReport, ClientError> {
        use redress_proto::v1::{ReportFetch, ReportFetchReply, report_fetch_reply::Outcome};
        let query = ReportFetch {
            playbook: playbook.to_string(),
            period: period.to_string(),
        };
        let reply: ReportFetchReply = self
            .call(
                subjects::analytics::SERVICE,
                subjects::analytics::REPORT,
                &query,
            )
            .await?;
        match reply.outcome {
            Some(Outcome::Report(r)) => Ok(r),
            Some(Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// The spike warnings told for a playbook (in `period`, or all), newest first.
    pub async fn spikes(
        &self,
        playbook: &str,
        period: &str,
    ) -> Result<Vec<redress_proto::v1::SpikeDetected>, ClientError> {
        use redress_proto::v1::{SpikeQuery, SpikeReply, spike_reply::Outcome};
        let query = SpikeQuery {
            playbook: playbook.to_string(),
            period: period.to_string(),
        };
        let reply: SpikeReply = self
            .call(
                subjects::analytics::SERVICE,
                subjects::analytics::SPIKES,
                &query,
            )
            .await?;
        match reply.outcome {
            Some(Outcome::List(l)) => Ok(l.spikes),
            Some(Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// The phone follow-ups `department` has to make (surveys unanswered at the end of
    /// their window, survey.on_expiry = "phone"), oldest first.
    pub async fn list_follow_ups(
        &self,
        department: &str,
        limit: u32,
    ) -> Result<Vec<FollowUpTask>, ClientError> {
        let token = requests::department_token(department)?;
        let reply: ListFollowUpsReply = self
            .call(
                subjects::survey::SERVICE,
                &format!("{}.{token}", subjects::survey::TASKS),
                &requests::list_follow_ups(department, limit),
            )
            .await?;
        match reply.outcome {
            Some(list_follow_ups_reply::Outcome::List(l)) => Ok(l.items),
            Some(list_follow_ups_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// Passes on the complainant's answer to the survey of `ticket`, with the token their
    /// invitation carried (`SurveyInvitation.token`).
    pub async fn answer_survey(
        &self,
        ticket: &str,
        token: &str,
        scores: SurveyScores,
        comment: &str,
    ) -> Result<SurveyView, ClientError> {
        self.send_survey_answer(requests::answer(ticket, token, scores, comment))
            .await
    }

    /// Records a follow-up the department made with the complainant (by phone), signed by
    /// `follow_up.recorded_by`; a blank `command_id` gets a fresh one.
    pub async fn record_follow_up(
        &self,
        mut follow_up: RecordFollowUp,
    ) -> Result<SurveyView, ClientError> {
        ensure_command_id(&mut follow_up.command_id);
        let verb = format!(
            "{}.{}",
            subjects::survey::FOLLOW_UP,
            follow_up.department.trim()
        );
        let reply: SurveyReply = self
            .call_as(
                subjects::survey::SERVICE,
                &verb,
                &follow_up,
                &follow_up.recorded_by.clone(),
            )
            .await?;
        match reply.outcome {
            Some(survey_reply::Outcome::Survey(s)) => Ok(s),
            Some(survey_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }

    /// Sends an answer as given; a blank `command_id` gets a fresh one.
    pub async fn send_survey_answer(
        &self,
        mut answer: AnswerSurvey,
    ) -> Result<SurveyView, ClientError> {
        ensure_command_id(&mut answer.command_id);
        let reply: SurveyReply = self
            .call(subjects::survey::SERVICE, subjects::survey::ANSWER, &answer)
            .await?;
        match reply.outcome {
            Some(survey_reply::Outcome::Survey(s)) => Ok(s),
            Some(survey_reply::Outcome::Error(e)) => Err(e.into()),
            None => Err(ClientError::Empty),
        }
    }
}
