//! The playbook's approval policy applied to one proposal: does a person have to decide,
//! and why.

use redress_playbook::Approval;
use redress_proto::v1::{Proposal, Severity};

/// What the policy says of a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// A person with the approver role must decide; `reason` says why, for them.
    NeedsDecision { reason: String },
    /// The policy approves it; `note` says why, for the record.
    Automatic { note: String },
}

/// Applies `policy` (whose threshold is in `currency`) to a proposal on a complaint of
/// `severity`. The proposal's currency is `proposal.currency`, or the playbook's when empty.
pub fn assess(
    policy: &Approval,
    currency: &str,
    severity: Severity,
    proposal: &Proposal,
) -> Assessment {
    let amount = proposal.compensation_minor.max(0);
    let proposal_currency = effective_currency(proposal, currency);
    let mut reasons = Vec::new();
    if severity == Severity::Major && policy.major_needs_approval {
        reasons.push("major complaint".to_string());
    }
    if amount > 0 && !proposal_currency.eq_ignore_ascii_case(currency) {
        // The threshold cannot be compared across currencies; a person looks instead.
        reasons.push(format!(
            "compensation {} is not in {currency}, the currency of the {} threshold",
            money(amount, &proposal_currency),
            money(policy.threshold_minor, currency)
        ));
    } else if amount > policy.threshold_minor {
        reasons.push(format!(
            "compensation {} above {}",
            money(amount, &proposal_currency),
            money(policy.threshold_minor, currency)
        ));
    }
    if !reasons.is_empty() {
        return Assessment::NeedsDecision {
            reason: reasons.join("; "),
        };
    }
    let note = if amount == 0 {
        "no compensation; within policy".to_string()
    } else {
        format!(
            "compensation {} within the delegated {}",
            money(amount, &proposal_currency),
            money(policy.threshold_minor, currency)
        )
    };
    Assessment::Automatic { note }
}

/// The proposal's currency, upper case; the playbook's when it names none.
pub fn effective_currency(proposal: &Proposal, playbook_currency: &str) -> String {
    let c = proposal.currency.trim();
    if c.is_empty() {
        playbook_currency.to_ascii_uppercase()
    } else {
        c.to_ascii_uppercase()
    }
}

/// An amount in minor units as people read it: `80000` CNY is "800.00 CNY".
pub fn money(minor: i64, currency: &str) -> String {
    redress_proto::types::Money::new(minor, currency).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_playbook::Approver;

    fn policy() -> Approval {
        Approval {
            threshold_minor: 50_000,
            major_needs_approval: true,
            approver_role: "general_manager".into(),
            approvers: vec![Approver {
                name: "zhao.min".into(),
                role: "general_manager".into(),
            }],
            chains: Vec::new(),
        }
    }

    fn proposal(minor: i64, currency: &str) -> Proposal {
        Proposal {
            proposal_id: "p1".into(),
            compensation_minor: minor,
            currency: currency.into(),
            ..Default::default()
        }
    }

    #[test]
    fn above_the_threshold_needs_a_decision() {
        assert_eq!(
            assess(
                &policy(),
                "CNY",
                Severity::General,
                &proposal(80_000, "CNY")
            ),
            Assessment::NeedsDecision {
                reason: "compensation 800.00 CNY above 500.00 CNY".into()
            }
        );
    }

    #[test]
    fn at_the_threshold_the_policy_approves() {
        assert!(matches!(
            assess(&policy(), "CNY", Severity::General, &proposal(50_000, "")),
            Assessment::Automatic { .. }
        ));
        assert!(matches!(
            assess(&policy(), "CNY", Severity::General, &proposal(0, "")),
            Assessment::Automatic { .. }
        ));
    }

    #[test]
    fn major_complaints_need_a_decision_when_the_playbook_says_so() {
        assert_eq!(
            assess(&policy(), "CNY", Severity::Major, &proposal(0, "")),
            Assessment::NeedsDecision {
                reason: "major complaint".into()
            }
        );
        let relaxed = Approval {
            major_needs_approval: false,
            ..policy()
        };
        assert!(matches!(
            assess(&relaxed, "CNY", Severity::Major, &proposal(100, "")),
            Assessment::Automatic { .. }
        ));
        assert_eq!(
            assess(&policy(), "CNY", Severity::Major, &proposal(60_000, "cny")),
            Assessment::NeedsDecision {
                reason: "major complaint; compensation 600.00 CNY above 500.00 CNY".into()
            }
        );
    }

    #[test]
    fn another_currency_cannot_be_waved_through() {
        let a = assess(&policy(), "CNY", Severity::General, &proposal(100, "USD"));
        assert!(matches!(a, Assessment::NeedsDecision { .. }), "{a:?}");
    }

    #[test]
    fn money_reads_as_people_write_it() {
        assert_eq!(money(80_000, "CNY"), "800.00 CNY");
        assert_eq!(money(5, "CNY"), "0.05 CNY");
        assert_eq!(money(1500, "JPY"), "1500 JPY");
        assert_eq!(money(1_234, "KWD"), "1.234 KWD");
    }
}
