//! Choosing the responsible department from the playbook's routing rules.

use redress_playbook::{Routing, Severity};

/// The department for a complaint of `category` and `severity`, and the rule that chose it
/// (`fallback` when none matched). The first matching rule wins, in file order.
pub fn route<'a>(routing: &'a Routing, category: &str, severity: Severity) -> (&'a str, &'a str) {
    routing
        .rules
        .iter()
        .find(|r| {
            r.category.as_deref().is_none_or(|c| c == category)
                && r.severity.is_none_or(|s| s == severity)
        })
        .map(|r| (r.department.as_str(), r.id.as_str()))
        .unwrap_or((routing.fallback.as_str(), "fallback"))
}

/// Who hears of an escalation at `level` (1 = the department's manager, then up the
/// playbook's chain; past its end, the top of the chain again).
pub fn escalated_to(routing: &Routing, department: &str, level: u32) -> String {
    let manager = routing
        .departments
        .iter()
        .find(|d| d.key == department)
        .map(|d| format!("{} (manager of {department})", d.manager))
        .unwrap_or_else(|| format!("manager of {department}"));
    if level <= 1 || routing.escalation.is_empty() {
        return manager;
    }
    let i = (level as usize - 2).min(routing.escalation.len() - 1);
    routing.escalation[i].clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redress_playbook::Playbooks;

    fn routing() -> Routing {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
        Playbooks::load_dir(&dir)
            .unwrap()
            .get("default")
            .unwrap()
            .routing
            .clone()
    }

    #[test]
    fn category_rules_route_general_complaints() {
        let r = routing();
        assert_eq!(
            route(&r, "delivery", Severity::General),
            ("logistics", "route.delivery")
        );
        assert_eq!(
            route(&r, "billing", Severity::General),
            ("finance", "route.billing")
        );
    }

    #[test]
    fn major_complaints_go_to_customer_service_first() {
        let r = routing();
        assert_eq!(
            route(&r, "delivery", Severity::Major),
            ("customer-service", "route.major")
        );
    }

    #[test]
    fn unmatched_goes_to_the_fallback() {
        let r = routing();
        assert_eq!(
            route(&r, "other", Severity::General),
            ("customer-service", "fallback")
        );
    }

    #[test]
    fn escalation_climbs_the_chain_and_stays_at_the_top() {
        let r = routing();
        assert!(escalated_to(&r, "logistics", 1).contains("sun.hao"));
        assert_eq!(escalated_to(&r, "logistics", 2), "service manager");
        assert_eq!(escalated_to(&r, "logistics", 3), "general manager");
        assert_eq!(escalated_to(&r, "logistics", 7), "general manager");
    }
}
