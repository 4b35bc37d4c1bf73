//! Every command reply is a oneof of a result and a [`CommandError`]; this lets the service
//! kit and the client SDK treat them alike.

use crate::v1::{
    ApprovalReply, CommandError, DelegateReply, KpiReply, ListApprovalsReply, ListFollowUpsReply,
    ListWorkReply, ReportFetchReply, SpikeReply, SurveyReply, WorkCommandReply, approval_reply,
    delegate_reply, kpi_reply, list_approvals_reply, list_follow_ups_reply, list_work_reply,
    report_fetch_reply, spike_reply, survey_reply, work_command_reply,
};

pub trait CommandReply: prost::Message + Default + Clone + 'static {
    /// The reply that refuses the command with `error`.
    fn refused(error: CommandError) -> Self;
    /// The error, when the reply is one.
    fn error(&self) -> Option<&CommandError>;
}

macro_rules! reply {
    ($t:ty, $m:ident) => {
        impl CommandReply for $t {
            fn refused(error: CommandError) -> Self {
                Self {
                    outcome: Some($m::Outcome::Error(error)),
                }
            }
            fn error(&self) -> Option<&CommandError> {
                match &self.outcome {
                    Some($m::Outcome::Error(e)) => Some(e),
                    _ => None,
                }
            }
        }
    };
}

reply!(WorkCommandReply, work_command_reply);
reply!(ListWorkReply, list_work_reply);
reply!(ApprovalReply, approval_reply);
reply!(ListApprovalsReply, list_approvals_reply);
reply!(SurveyReply, survey_reply);
reply!(DelegateReply, delegate_reply);
reply!(ListFollowUpsReply, list_follow_ups_reply);
reply!(KpiReply, kpi_reply);
reply!(ReportFetchReply, report_fetch_reply);
reply!(SpikeReply, spike_reply);
