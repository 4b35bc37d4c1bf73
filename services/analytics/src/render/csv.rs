use redress_proto::v1::{CountBy, DurationStats, Forecast, Kpis, OnTimeRate, SatisfactionStats};

/// One `metric,value` row per figure: the contract's field names, nested names joined by
/// dots, list items by their key (or deadline, or place from 1).
///
/// Fields come in the order of their names, as they did when this was made by flattening the
/// message's JSON: spreadsheets that read rows by position keep working. Numbers are written
/// as that JSON wrote them: doubles always with a decimal point, unset messages left out.
pub fn csv(k: &Kpis) -> String {
    let mut r = Rows::default();
    durations(&mut r, "approval_turnaround", &k.approval_turnaround);
    durations(&mut r, "backlog_age", &k.backlog_age);
    r.int("breaches", k.breaches);
    counts(&mut r, "by_category", &k.by_category);
    counts(&mut r, "by_channel", &k.by_channel);
    counts(&mut r, "by_day", &k.by_day);
    counts(&mut r, "by_department", &k.by_department);
    counts(&mut r, "by_nature", &k.by_nature);
    r.int("closed", k.closed);
    r.push("compensation_minor", k.compensation_minor.to_string());
    r.int("compensations", k.compensations);
    r.push("currency", k.currency.clone());
    r.int("escalations", k.escalations);
    durations(&mut r, "first_response", &k.first_response);
    for (i, f) in k.forecast.iter().enumerate() {
        forecast(&mut r, &format!("forecast.{}", i + 1), f);
    }
    if let Some(t) = &k.from {
        r.push("from", t.to_string());
    }
    r.int("merged", k.merged);
    for o in &k.on_time {
        on_time(&mut r, &format!("on_time.{}", o.deadline), o);
    }
    r.int("open", k.open);
    r.push("period", k.period.clone());
    r.push("playbook", k.playbook.clone());
    r.int("received", k.received);
    r.real("reopen_rate", k.reopen_rate);
    r.real("repeat_rate", k.repeat_rate);
    durations(&mut r, "resolution", &k.resolution);
    if let Some(s) = &k.satisfaction {
        satisfaction(&mut r, s);
    }
    if let Some(t) = &k.until {
        r.push("until", t.to_string());
    }
    r.int("withdrawn", k.withdrawn);
    r.push("zone", k.zone.clone());
    r.finish()
}

#[derive(Default)]
struct Rows(Vec<(String, String)>);

impl Rows {
    fn push(&mut self, name: impl Into<String>, value: String) {
        self.0.push((name.into(), value));
    }

    fn int(&mut self, name: impl Into<String>, v: u64) {
        self.push(name, v.to_string());
    }

    /// Debug keeps the decimal point of a whole number ("0.0"), as JSON numbers had it.
    fn real(&mut self, name: impl Into<String>, v: f64) {
        self.push(name, format!("{v:?}"));
    }

    fn finish(self) -> String {
        let mut out = String::from("metric,value\n");
        for (k, v) in self.0 {
            out += &format!("{},{}\n", quote(&k), quote(&v));
        }
        out
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn durations(r: &mut Rows, name: &str, d: &Option<DurationStats>) {
    let Some(d) = d else { return };
    r.int(format!("{name}.count"), d.count);
    r.real(format!("{name}.p50_business_secs"), d.p50_business_secs);
    r.real(format!("{name}.p50_secs"), d.p50_secs);
    r.real(format!("{name}.p90_business_secs"), d.p90_business_secs);
    r.real(format!("{name}.p90_secs"), d.p90_secs);
}

fn counts(r: &mut Rows, name: &str, rows: &[CountBy]) {
    for c in rows {
        r.int(format!("{name}.{}.count", c.key), c.count);
    }
}

fn forecast(r: &mut Rows, name: &str, f: &Forecast) {
    r.int(format!("{name}.actual"), f.actual);
    r.push(format!("{name}.category"), f.category.clone());
    r.real(format!("{name}.expected"), f.expected);
    r.int(format!("{name}.high"), f.high);
    r.int(format!("{name}.history"), u64::from(f.history));
    r.int(format!("{name}.low"), f.low);
    r.push(format!("{name}.period"), f.period.clone());
}

fn on_time(r: &mut Rows, name: &str, o: &OnTimeRate) {
    r.int(format!("{name}.breached"), o.breached);
    r.int(format!("{name}.met"), o.met);
    r.real(format!("{name}.rate"), o.rate);
}

fn satisfaction(r: &mut Rows, s: &SatisfactionStats) {
    let name = "satisfaction";
    r.int(format!("{name}.answered"), s.answered);
    r.real(format!("{name}.attitude"), s.attitude);
    for (i, n) in s.distribution.iter().enumerate() {
        r.int(format!("{name}.distribution.{}", i + 1), *n);
    }
    r.real(format!("{name}.effectiveness"), s.effectiveness);
    r.int(format!("{name}.no_response"), s.no_response);
    r.real(format!("{name}.no_response_rate"), s.no_response_rate);
    r.real(format!("{name}.overall"), s.overall);
    r.real(format!("{name}.share_satisfied"), s.share_satisfied);
    r.real(format!("{name}.speed"), s.speed);
    r.real(format!("{name}.transparency"), s.transparency);
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn figures_are_rows_named_by_the_contract() {
        let csv = csv(&sample::month());
        assert!(csv.starts_with(
            "metric,value\napproval_turnaround.count,38\napproval_turnaround.p50_business_secs,5400.0\n"
        ));
        for line in [
            "received,246\n",
            "reopen_rate,0.04\n",
            "compensation_minor,1234550\n",
            "on_time.respond.met,221\n",
            "by_category.延误.count,96\n",
            "forecast.2.category,延误\n",
            "forecast.2.expected,70.2\n",
            "satisfaction.distribution.5,47\n",
            "from,2026-10-31T16:00:00Z\n",
            "by_department..count,11\n",
        ] {
            assert!(csv.contains(line), "{line:?} in\n{csv}");
        }
        assert!(csv.ends_with("withdrawn,9\nzone,Asia/Shanghai\n"));
    }

    #[test]
    fn values_with_commas_or_quotes_are_quoted() {
        let mut k = sample::empty();
        k.by_category = vec![CountBy {
            key: "fees, \"hidden\"".into(),
            count: 3,
        }];
        assert!(csv(&k).contains("\n\"by_category.fees, \"\"hidden\"\".count\",3\n"));
    }

    #[test]
    fn an_empty_period_has_no_list_rows_and_no_unset_figures() {
        let csv = csv(&sample::empty());
        assert!(!csv.contains("by_"));
        assert!(!csv.contains("approval_turnaround"));
        assert!(!csv.contains("\nfrom,"));
        assert!(csv.contains("\nfirst_response.p50_secs,0.0\n"));
        // The header, first response's five, fifteen plain figures, satisfaction's fourteen.
        assert_eq!(csv.lines().count(), 1 + 5 + 15 + 14, "{csv}");
    }
}
