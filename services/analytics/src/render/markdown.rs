use std::fmt::Write;

use redress_proto::v1::{CountBy, Kpis};

use super::{
    TOP_CAUSES, duration, forecast_category, forecast_expected, forecast_outcome, key_label,
    largest, money, percent, span,
};

/// The report a manager pastes into a meeting note.
pub fn markdown(k: &Kpis) -> String {
    let mut s = format!(
        "# Complaints {} — {}\n\n{}\n\n",
        k.playbook,
        k.period,
        span(k)
    );
    s += "| Received | Open | Closed | Withdrawn | Merged | Breaches | Escalations |\n";
    s += "|---:|---:|---:|---:|---:|---:|---:|\n";
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        k.received, k.open, k.closed, k.withdrawn, k.merged, k.breaches, k.escalations
    );
    handling_time(&mut s, k);
    deadlines(&mut s, k);
    satisfaction(&mut s, k);
    let _ = writeln!(
        s,
        "\nCompensation: {} proposals, {} in all. Reopened: {}. Repeat complainants: {}.",
        k.compensations,
        money(k.compensation_minor, &k.currency),
        percent(k.reopen_rate),
        percent(k.repeat_rate)
    );
    forecast(&mut s, k);
    let causes = largest(&k.by_nature, TOP_CAUSES);
    for (title, rows) in [
        ("By category", k.by_category.iter().collect()),
        ("By channel", k.by_channel.iter().collect()),
        ("Top causes (by nature)", causes),
        ("By department", largest(&k.by_department, usize::MAX)),
    ] {
        counts(&mut s, title, &rows);
    }
    s
}

fn handling_time(s: &mut String, k: &Kpis) {
    *s += "## Handling time\n\n| | count | p50 | p90 | p50 business | p90 business |\n";
    *s += "|---|---:|---:|---:|---:|---:|\n";
    for (name, d) in super::handling_times(k) {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} |",
            d.count,
            duration(d.p50_secs),
            duration(d.p90_secs),
            duration(d.p50_business_secs),
            duration(d.p90_business_secs)
        );
    }
}

fn deadlines(s: &mut String, k: &Kpis) {
    *s += "\n## Deadlines\n\n| Deadline | Met | Breached | On time |\n|---|---:|---:|---:|\n";
    for o in &k.on_time {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            o.deadline,
            o.met,
            o.breached,
            percent(o.rate)
        );
    }
}

fn satisfaction(s: &mut String, k: &Kpis) {
    let sat = k.satisfaction.clone().unwrap_or_default();
    let _ = writeln!(
        s,
        "\n## Satisfaction\n\n{} answers: overall {:.2}, speed {:.2}, effectiveness {:.2}, \
         attitude {:.2}, transparency {:.2}; {} satisfied. No response: {} ({}).",
        sat.answered,
        sat.overall,
        sat.speed,
        sat.effectiveness,
        sat.attitude,
        sat.transparency,
        percent(sat.share_satisfied),
        sat.no_response,
        percent(sat.no_response_rate)
    );
    if sat.distribution.iter().any(|&n| n > 0) {
        let scores: Vec<String> = sat
            .distribution
            .iter()
            .zip(1..)
            .map(|(n, score)| format!("{score}: {n}"))
            .collect();
        let _ = writeln!(s, "\nAnswers per overall score: {}.", scores.join(", "));
    }
}

fn forecast(s: &mut String, k: &Kpis) {
    if k.forecast.is_empty() {
        return;
    }
    *s += "\n## Forecast\n\n| Period | Category | Expected [low–high] | Actual | |\n";
    *s += "|---|---|---:|---:|---|\n";
    for f in &k.forecast {
        let (actual, verdict) =
            forecast_outcome(f, &k.period).map_or(("-".into(), ""), |(n, v)| (n.to_string(), v));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {actual} | {verdict} |",
            f.period,
            forecast_category(f),
            forecast_expected(f)
        );
    }
}

fn counts(s: &mut String, title: &str, rows: &[&CountBy]) {
    let _ = write!(s, "\n## {title}\n\n| | Complaints |\n|---|---:|\n");
    for c in rows {
        let _ = writeln!(s, "| {} | {} |", key_label(&c.key), c.count);
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_headline_and_handling_times_are_tabled() {
        let md = markdown(&sample::month());
        assert!(md.starts_with(
            "# Complaints express — 2026-11\n\n2026-11-01 to 2026-11-30 (Asia/Shanghai)\n\n"
        ));
        assert!(md.contains("| 246 | 31 | 201 | 9 | 5 | 63 | 14 |\n"));
        assert!(md.contains(
            "| Resolution (received → resolved) | 201 | 1 d 1 h | 4 d | 8 h 30 min | 1 d 8 h |\n"
        ));
        assert!(md.contains("| respond | 221 | 19 | 92.1 % |\n"));
        assert!(md.contains("38 proposals, 12345.50 CNY in all. Reopened: 4.0 %."));
        assert!(md.contains("Answers per overall score: 1: 8, 2: 9, 3: 16, 4: 40, 5: 47."));
    }

    #[test]
    fn the_forecast_sets_expected_beside_what_came() {
        let md = markdown(&sample::month());
        assert!(md.contains("| 2026-11 | all complaints | 232 (198–266) | 246 | within range |\n"));
        assert!(md.contains("| 2026-11 | 延误 | 70 (55–86) | 96 | above range |\n"));
        assert!(md.contains("| 2026-12 | all complaints | 258 (221–296) | - |  |\n"));
    }

    #[test]
    fn top_causes_are_the_largest_eight_and_departments_all() {
        let md = markdown(&sample::month());
        let causes = md.split("## Top causes (by nature)").nth(1).unwrap();
        let causes = causes.split("## By department").next().unwrap();
        // The header row and eight causes.
        assert_eq!(causes.matches("\n| ").count(), 1 + 8, "{causes}");
        assert!(causes.contains("| valid | 170 |\n| 派送延迟 | 52 |\n"));
        assert!(!causes.contains("隐私泄露"));
        assert!(md.ends_with("| 理赔与安全部 Claims | 44 |\n| (none) | 11 |\n"));
    }

    #[test]
    fn an_empty_period_still_renders_every_section() {
        let md = markdown(&sample::empty());
        assert!(md.contains("| 0 | 0 | 0 | 0 | 0 | 0 | 0 |\n"));
        assert!(md.contains("| First response (assigned → accepted) | 0 | - | - | - | - |\n"));
        assert!(!md.contains("## Forecast"));
        assert!(!md.contains("Answers per overall score"));
        assert!(md.ends_with("## By department\n\n| | Complaints |\n|---|---:|\n"));
    }
}
