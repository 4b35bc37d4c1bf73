//! The playbook's `[classification]` rules applied to one complaint.
//!
//! Phrases match as case-insensitive substrings of the text (both sides lowercased), which
//! suits Chinese, where words are not separated by spaces, and English stems such as
//! "injur" or "overcharg" alike.

use redress_playbook::{Classification, Severity, Urgency};
use serde::{Deserialize, Serialize};

/// What the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Complaint<'a> {
    pub text: &'a str,
    pub channel: &'a str,
    /// The outside body that referred the complaint; empty when none did.
    pub referred_by: &'a str,
}

/// A rule that fired and what made it fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub rule: String,
    pub matched: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub nature: String,
    pub category: String,
    pub severity: Severity,
    pub urgency: Urgency,
    pub confidence: f64,
    pub hits: Vec<Hit>,
}

/// Rule id recorded when the channel alone makes a complaint major.
pub const MAJOR_CHANNEL_RULE: &str = "major.channel";
/// Rule id recorded when a referral by an outside body makes a complaint major.
pub const MAJOR_REFERRED_RULE: &str = "major.referred";

/// Confidence when a category rule decided the category: the routing that follows rests on
/// a phrase the complainant actually wrote.
pub const CONFIDENCE_RULE: f64 = 1.0;
/// Confidence when the category is the playbook's default but other rules (nature, severity,
/// urgency) recognised something in the text.
pub const CONFIDENCE_DEFAULT_WITH_EVIDENCE: f64 = 0.5;
/// Confidence when no rule at all matched: everything is a fallback.
pub const CONFIDENCE_NOTHING_MATCHED: f64 = 0.25;
// More evidence never means less confidence.
const _: () = assert!(
    CONFIDENCE_NOTHING_MATCHED < CONFIDENCE_DEFAULT_WITH_EVIDENCE
        && CONFIDENCE_DEFAULT_WITH_EVIDENCE < CONFIDENCE_RULE
        && CONFIDENCE_RULE <= 1.0
);

/// The first phrase of `phrases` found in `text` (already lowercased).
fn first_match<'p>(text: &str, phrases: &'p [String]) -> Option<&'p str> {
    phrases
        .iter()
        .find(|p| text.contains(p.to_lowercase().as_str()))
        .map(String::as_str)
}

/// Classifies one complaint by the rules of one playbook.
///
/// Category and nature come from the first rule (in file order) with a phrase in the text,
/// else the defaults. Severity is major when the channel is one of `major_channels`, when an
/// outside body referred the complaint and `major_when_referred`, or when any major rule
/// matches. Urgency is the highest of the matching urgency rules, else normal. Every rule
/// that fired is recorded; a category or nature rule after the first match did not fire.
pub fn classify(rules: &Classification, complaint: Complaint<'_>) -> Decision {
    let text = complaint.text.to_lowercase();
    let mut hits = Vec::new();
    let mut hit = |rule: &str, matched: &str| {
        hits.push(Hit {
            rule: rule.to_string(),
            matched: matched.to_string(),
        })
    };

    let category = rules
        .category_rules
        .iter()
        .find_map(|r| first_match(&text, &r.phrases).map(|p| (r, p)));
    let category_by_rule = category.is_some();
    let category = match category {
        Some((rule, phrase)) => {
            hit(&rule.id, phrase);
            rule.category.clone()
        }
        None => rules.default_category.clone(),
    };

    let nature = match rules
        .nature_rules
        .iter()
        .find_map(|r| first_match(&text, &r.phrases).map(|p| (r, p)))
    {
        Some((rule, phrase)) => {
            hit(&rule.id, phrase);
            rule.nature.clone()
        }
        None => rules.default_nature.clone(),
    };

    let mut severity = Severity::General;
    if rules.major_channels.iter().any(|c| c == complaint.channel) {
        severity = Severity::Major;
        hit(
            MAJOR_CHANNEL_RULE,
            &format!("channel={}", complaint.channel),
        );
    }
    let referred_by = complaint.referred_by.trim();
    if !referred_by.is_empty() && rules.major_when_referred {
        severity = Severity::Major;
        hit(MAJOR_REFERRED_RULE, &format!("referred_by={referred_by}"));
    }
    for rule in &rules.major_rules {
        if let Some(phrase) = first_match(&text, &rule.phrases) {
            severity = Severity::Major;
            hit(&rule.id, phrase);
        }
    }

    let mut urgency = Urgency::Normal;
    for rule in &rules.urgency_rules {
        if let Some(phrase) = first_match(&text, &rule.phrases) {
            urgency = urgency.max(rule.urgency);
            hit(&rule.id, phrase);
        }
    }

    let confidence = if category_by_rule {
        CONFIDENCE_RULE
    } else if !hits.is_empty() {
        CONFIDENCE_DEFAULT_WITH_EVIDENCE
    } else {
        CONFIDENCE_NOTHING_MATCHED
    };
    Decision {
        nature,
        category,
        severity,
        urgency,
        confidence,
        hits,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use redress_playbook::Playbooks;

    use super::*;

    fn shipped() -> Classification {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks");
        Playbooks::load_dir(&dir)
            .unwrap()
            .get("default")
            .unwrap()
            .classification
            .clone()
    }

    fn by_text(text: &str) -> Decision {
        classify(
            &shipped(),
            Complaint {
                text,
                channel: "sms",
                referred_by: "",
            },
        )
    }

    fn fired(d: &Decision) -> Vec<&str> {
        d.hits.iter().map(|h| h.rule.as_str()).collect()
    }

    #[test]
    fn a_chinese_delivery_complaint() {
        let d = by_text("快递三天了还没收到");
        assert_eq!(d.category, "delivery");
        assert_eq!(d.nature, "valid");
        assert_eq!(d.severity, Severity::General);
        assert_eq!(d.urgency, Urgency::Normal);
        assert_eq!(d.confidence, CONFIDENCE_RULE);
        assert_eq!(
            d.hits,
            vec![Hit {
                rule: "category.delivery".into(),
                matched: "快递".into()
            }]
        );
    }

    #[test]
    fn english_phrases_match_whatever_the_case() {
        let d = by_text("I was OVERCHARGED twice, please REFUND me");
        assert_eq!(d.category, "billing");
        assert_eq!(d.hits[0].rule, "category.billing");
        assert_eq!(
            d.hits[0].matched, "refund",
            "the rule's first listed phrase that matched"
        );
    }

    #[test]
    fn the_first_category_rule_in_file_order_wins_and_only_it_fires() {
        // Both safety ("起火") and product quality ("质量") match; safety comes first.
        let d = by_text("质量太差，充电时起火了");
        assert_eq!(d.category, "safety");
        assert!(
            !fired(&d).contains(&"category.product_quality"),
            "{:?}",
            d.hits
        );
    }

    #[test]
    fn a_claim_for_compensation_is_major() {
        let d = by_text("包裹丢了，要求赔偿");
        assert_eq!(d.category, "delivery");
        assert_eq!(d.severity, Severity::Major);
        assert!(d.hits.contains(&Hit {
            rule: "major.compensation".into(),
            matched: "赔偿".into()
        }));
        let d = by_text("I want compensation for the broken kettle");
        assert_eq!(d.severity, Severity::Major);
        assert!(fired(&d).contains(&"major.compensation"));
    }

    #[test]
    fn a_safety_complaint_is_major_and_recorded_under_both_rules() {
        let d = by_text("The heater caused an electric shock");
        assert_eq!(d.category, "safety");
        assert_eq!(d.severity, Severity::Major);
        assert_eq!(fired(&d), vec!["category.safety", "major.safety"]);
    }

    #[test]
    fn a_referral_is_major_by_referrer_and_by_channel() {
        let rules = shipped();
        let d = classify(
            &rules,
            Complaint {
                text: "消费者反映商品有问题",
                channel: "referral",
                referred_by: "消费者协会",
            },
        );
        assert_eq!(d.severity, Severity::Major);
        assert!(d.hits.contains(&Hit {
            rule: MAJOR_CHANNEL_RULE.into(),
            matched: "channel=referral".into()
        }));
        assert!(d.hits.contains(&Hit {
            rule: MAJOR_REFERRED_RULE.into(),
            matched: "referred_by=消费者协会".into()
        }));

        let d = classify(
            &rules,
            Complaint {
                text: "商品有问题",
                channel: "web",
                referred_by: "12315",
            },
        );
        assert_eq!(d.severity, Severity::Major);
        assert_eq!(
            fired(&d),
            vec!["category.product_quality", MAJOR_REFERRED_RULE]
        );
    }

    #[test]
    fn a_referral_is_not_major_when_the_playbook_says_so() {
        let mut rules = shipped();
        rules.major_when_referred = false;
        rules.major_channels.clear();
        let d = classify(
            &rules,
            Complaint {
                text: "商品有问题",
                channel: "referral",
                referred_by: "消费者协会",
            },
        );
        assert_eq!(d.severity, Severity::General);
        assert_eq!(fired(&d), vec!["category.product_quality"]);
    }

    #[test]
    fn the_highest_matching_urgency_wins_whatever_the_rule_order() {
        let d = by_text("请尽快处理，现在很危险");
        assert_eq!(d.urgency, Urgency::Emergency);
        assert!(fired(&d).contains(&"urgency.emergency"));
        assert!(fired(&d).contains(&"urgency.urgent"));

        let mut rules = shipped();
        rules.urgency_rules.reverse();
        let d = classify(
            &rules,
            Complaint {
                text: "please handle this asap, it is an emergency",
                channel: "email",
                referred_by: "",
            },
        );
        assert_eq!(d.urgency, Urgency::Emergency);

        assert_eq!(by_text("麻烦尽快回复").urgency, Urgency::Urgent);
        assert!(Urgency::Normal < Urgency::Urgent && Urgency::Urgent < Urgency::Emergency);
    }

    #[test]
    fn nothing_matching_falls_back_to_the_defaults_with_low_confidence() {
        let d = by_text("今天天气不错");
        assert_eq!(d.category, "other");
        assert_eq!(d.nature, "valid");
        assert_eq!(d.severity, Severity::General);
        assert_eq!(d.urgency, Urgency::Normal);
        assert!(d.hits.is_empty());
        assert_eq!(d.confidence, CONFIDENCE_NOTHING_MATCHED);
    }

    #[test]
    fn a_default_category_with_other_evidence_is_between() {
        let d = by_text("请问你们的营业时间？着急");
        assert_eq!(d.category, "other");
        assert_eq!(d.nature, "communicative");
        assert_eq!(d.urgency, Urgency::Urgent);
        assert_eq!(d.confidence, CONFIDENCE_DEFAULT_WITH_EVIDENCE);
    }

    #[test]
    fn an_inquiry_is_communicative() {
        let d = by_text("How do I track my parcel?");
        assert_eq!(d.nature, "communicative");
        assert_eq!(d.category, "delivery");
        assert_eq!(fired(&d), vec!["category.delivery", "nature.inquiry"]);
    }

    #[test]
    fn phrases_in_upper_case_in_the_playbook_still_match() {
        let mut rules = shipped();
        rules.category_rules[1].phrases = vec!["DELIVERY".into()];
        let d = classify(
            &rules,
            Complaint {
                text: "late delivery",
                channel: "web",
                referred_by: "",
            },
        );
        assert_eq!(d.category, "delivery");
        assert_eq!(d.hits[0].matched, "DELIVERY");
    }
}
