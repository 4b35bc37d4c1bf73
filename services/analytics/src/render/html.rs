use std::fmt::Write;

use plotters::style::RGBColor;
use redress_proto::v1::{CountBy, Kpis};

use super::chart::{self, BLUE, Bar, Bars, Layout};
use super::{
    TOP_CAUSES, duration, forecast_category, forecast_expected, forecast_outcome, key_label,
    largest, money, percent, span,
};

/// Latin faces first so figures keep their look; the CJK faces after them set the Chinese
/// that category and department names often are, on whichever system opens the page.
const FONTS: &str = "\"Segoe UI\", \"Helvetica Neue\", Arial, \"DejaVu Sans\", \
    \"Noto Sans CJK SC\", \"Noto Sans SC\", \"Source Han Sans SC\", \"PingFang SC\", \
    \"Hiragino Sans GB\", \"Microsoft YaHei\", \"WenQuanYi Micro Hei\", sans-serif";

const STYLE: &str = "
body { font-family: FONTS; color: #222; margin: 2rem auto; max-width: 1180px; padding: 0 1rem; }
svg text { font-family: FONTS; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2rem; }
.span { color: #555; margin-top: 0; }
.tables { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
table { border-collapse: collapse; font-size: 0.92rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e3e3e3; }
th { text-align: left; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.above { color: #b3261e; font-weight: 600; }
.below { color: #1f6f43; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.charts figure { margin: 0; flex: 0 1 560px; }
.charts svg { max-width: 100%; height: auto; }
@media print {
  body { margin: 0; max-width: none; }
  h2, figure, table { break-inside: avoid; }
}
";

/// One page, everything inline (no fonts, styles or scripts fetched), for reading on screen
/// or printing.
pub fn html(k: &Kpis) -> String {
    let title = format!("Complaints {} — {}", k.playbook, k.period);
    let mut s = String::with_capacity(96 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{style}</style>\n</head>\n<body>\n<h1>{t}</h1>\n\
         <p class=\"span\">{span}</p>\n",
        t = escape(&title),
        style = STYLE.replace("FONTS", FONTS),
        span = escape(&span(k)),
    );
    s += "<h2>Key figures</h2>\n<div class=\"tables\">\n";
    s += &volume(k);
    s += &outcomes(k);
    s += &satisfaction(k);
    s += "</div>\n";
    s += &handling_time(k);
    s += &forecast(k);
    s += "<h2>Charts</h2>\n<div class=\"charts\">\n";
    for svg in charts(k) {
        let _ = writeln!(s, "<figure>{svg}</figure>");
    }
    s += "</div>\n</body>\n</html>\n";
    s
}

/// Text into HTML, attribute values included.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A two-column table of figures already formatted.
fn figures(caption: &str, rows: &[(&str, String)]) -> String {
    let mut s = format!("<table>\n<caption><b>{}</b></caption>\n", escape(caption));
    for (name, value) in rows {
        let _ = writeln!(
            s,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    s + "</table>\n"
}

fn volume(k: &Kpis) -> String {
    figures(
        "Complaints",
        &[
            ("Received", k.received.to_string()),
            ("Open", k.open.to_string()),
            ("Closed", k.closed.to_string()),
            ("Withdrawn", k.withdrawn.to_string()),
            ("Merged", k.merged.to_string()),
        ],
    )
}

fn outcomes(k: &Kpis) -> String {
    figures(
        "Deadlines and outcomes",
        &[
            ("Breaches", k.breaches.to_string()),
            ("Escalations", k.escalations.to_string()),
            ("Compensations", k.compensations.to_string()),
            (
                "Compensation paid",
                money(k.compensation_minor, &k.currency),
            ),
            ("Reopen rate", percent(k.reopen_rate)),
            ("Repeat complainants", percent(k.repeat_rate)),
        ],
    )
}

fn satisfaction(k: &Kpis) -> String {
    let sat = k.satisfaction.clone().unwrap_or_default();
    // A mean of no answers is no figure, not a score of zero.
    let mean = |v: f64| {
        if sat.answered == 0 {
            "-".to_string()
        } else {
            format!("{v:.2} / 5")
        }
    };
    figures(
        "Satisfaction",
        &[
            ("Answers", sat.answered.to_string()),
            ("Overall", mean(sat.overall)),
            ("Speed", mean(sat.speed)),
            ("Effectiveness", mean(sat.effectiveness)),
            ("Attitude", mean(sat.attitude)),
            ("Transparency", mean(sat.transparency)),
            ("Satisfied", percent(sat.share_satisfied)),
            (
                "No response",
                format!("{} ({})", sat.no_response, percent(sat.no_response_rate)),
            ),
        ],
    )
}

fn handling_time(k: &Kpis) -> String {
    let mut s = String::from(
        "<h2>Handling time</h2>\n<table>\n<tr><th></th><th>Count</th><th>p50</th><th>p90</th>\
         <th>p50 business</th><th>p90 business</th></tr>\n",
    );
    for (name, d) in super::handling_times(k) {
        let _ = write!(
            s,
            "<tr><th>{}</th><td class=\"n\">{}</td>",
            escape(name),
            d.count
        );
        for secs in [
            d.p50_secs,
            d.p90_secs,
            d.p50_business_secs,
            d.p90_business_secs,
        ] {
            let _ = write!(s, "<td class=\"n\">{}</td>", duration(secs));
        }
        s += "</tr>\n";
    }
    s + "</table>\n"
}

fn forecast(k: &Kpis) -> String {
    let mut s = String::from("<h2>Forecast</h2>\n");
    if k.forecast.is_empty() {
        return s + "<p>No forecast: too few earlier periods.</p>\n";
    }
    s += "<table>\n<tr><th>Period</th><th>Category</th><th>Expected (90 % range)</th>\
          <th>Actual</th><th></th></tr>\n";
    for f in &k.forecast {
        let (actual, verdict) =
            forecast_outcome(f, &k.period).map_or(("-".into(), ""), |(n, v)| (n.to_string(), v));
        let class = verdict.split(' ').next().unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{actual}</td>\
             <td class=\"{class}\">{verdict}</td></tr>",
            escape(&f.period),
            escape(forecast_category(f)),
            forecast_expected(f),
        );
    }
    s + "</table>\n"
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn share(v: f64) -> String {
    format!("{v:.0} %")
}

fn plain<'a>(rows: impl IntoIterator<Item = &'a CountBy>) -> Vec<Bar> {
    rows.into_iter()
        .map(|c| Bar {
            label: key_label(&c.key).to_string(),
            value: c.count as f64,
            colour: BLUE,
        })
        .collect()
}

fn counted<'a>(title: &'a str, bars: Vec<Bar>) -> Bars<'a> {
    Bars {
        title,
        bars,
        layout: Layout::Rows,
        max: None,
        format: count,
        empty: "No complaints in this period",
    }
}

fn charts(k: &Kpis) -> Vec<String> {
    let all = |rows| largest(rows, usize::MAX);
    [
        Bars {
            layout: Layout::Columns,
            ..counted("Complaints received per day", plain(&days(k)))
        },
        counted("By category", plain(all(&k.by_category))),
        counted("By channel", plain(all(&k.by_channel))),
        Bars {
            max: Some(100.0),
            format: share,
            empty: "No deadline met or missed in this period",
            ..counted("On time, per deadline", on_time(k))
        },
        Bars {
            layout: Layout::Columns,
            empty: "No survey answers in this period",
            ..counted("Satisfaction: answers per overall score", scores(k))
        },
        counted("Top causes", plain(largest(&k.by_nature, TOP_CAUSES))),
        counted("By department", plain(all(&k.by_department))),
    ]
    .iter()
    .map(chart::bars)
    .collect()
}

/// Every day of the period, those without complaints too, so a quiet day shows as a gap
/// rather than vanishing from the trend.
fn days(k: &Kpis) -> Vec<CountBy> {
    let first = k
        .from
        .as_ref()
        .and_then(|t| super::local_day(t, &k.zone, 0));
    let last = k
        .until
        .as_ref()
        .and_then(|t| super::local_day(t, &k.zone, 1));
    let (Some(first), Some(last)) = (first, last) else {
        return k.by_day.clone();
    };
    let counted: std::collections::HashMap<&str, u64> =
        k.by_day.iter().map(|c| (c.key.as_str(), c.count)).collect();
    first
        .series(jiff::Span::new().days(1))
        .take_while(|d| *d <= last)
        .take(400)
        .map(|d| {
            let key = d.to_string();
            CountBy {
                count: counted.get(key.as_str()).copied().unwrap_or(0),
                key: d.strftime("%m-%d").to_string(),
            }
        })
        .collect()
}

fn on_time(k: &Kpis) -> Vec<Bar> {
    k.on_time
        .iter()
        .filter(|o| o.met + o.breached > 0)
        .map(|o| Bar {
            label: o.deadline.clone(),
            value: o.rate * 100.0,
            colour: if o.rate >= 0.9 {
                RGBColor(0x2E, 0x8B, 0x57)
            } else if o.rate >= 0.75 {
                RGBColor(0xE0, 0x9F, 0x1F)
            } else {
                RGBColor(0xC0, 0x39, 0x2B)
            },
        })
        .collect()
}

/// Scores 1 to 5, coloured from red to green as a reader expects of a scale.
fn scores(k: &Kpis) -> Vec<Bar> {
    const SCALE: [RGBColor; 5] = [
        RGBColor(0xC0, 0x39, 0x2B),
        RGBColor(0xE6, 0x7E, 0x22),
        RGBColor(0xC9, 0xB0, 0x37),
        RGBColor(0x7C, 0xB3, 0x42),
        RGBColor(0x2E, 0x8B, 0x57),
    ];
    let sat = k.satisfaction.clone().unwrap_or_default();
    SCALE
        .iter()
        .enumerate()
        .map(|(i, &colour)| Bar {
            label: (i + 1).to_string(),
            value: sat.distribution.get(i).copied().unwrap_or(0) as f64,
            colour,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    /// The SVG of the chart with this title.
    fn chart_of<'a>(html: &'a str, title: &str) -> &'a str {
        html.split("<svg")
            .find(|svg| svg.contains(&format!(">\n{title}\n</text>")))
            .unwrap_or_else(|| panic!("a chart titled {title}"))
    }

    fn bars_in(svg: &str) -> usize {
        svg.split("<rect")
            .skip(1)
            .filter(|r| !r.split("/>").next().unwrap().contains("fill=\"#FFFFFF\""))
            .count()
    }

    #[test]
    fn a_month_has_seven_charts_and_no_outside_resources() {
        let html = html(&sample::month());
        assert!(
            html.starts_with(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
            )
        );
        assert_eq!(html.matches("<svg").count(), 7);
        assert_eq!(html.matches("</svg>").count(), 7);
        for outside in ["<script", "<link", "<img", "@import", "url(", "src="] {
            assert!(!html.contains(outside), "{outside}");
        }
        // To look at the page: REDRESS_SAMPLE_REPORT=sample.html cargo test -p redress-analytics
        if let Some(path) = std::env::var_os("REDRESS_SAMPLE_REPORT") {
            std::fs::write(path, &html).unwrap();
        }
    }

    #[test]
    fn there_is_a_bar_per_category_and_names_are_escaped() {
        let html = html(&sample::month());
        let svg = chart_of(&html, "By category");
        assert_eq!(bars_in(svg), 6);
        assert!(svg.contains(">\n延误\n</text>"));
        assert!(svg.contains(">\n运费 &amp; 退款\n</text>"));
        assert!(svg.contains(">\n&lt;物流信息&gt;\n</text>"));
        assert!(!html.contains("<物流信息>"));
        assert_eq!(bars_in(chart_of(&html, "Top causes")), 8);
        assert_eq!(
            bars_in(chart_of(&html, "Satisfaction: answers per overall score")),
            5
        );
    }

    #[test]
    fn every_day_of_the_month_has_a_column() {
        let html = html(&sample::month());
        let svg = chart_of(&html, "Complaints received per day");
        // The sample leaves out the 11th and the 22nd: no bar, but their place stays.
        assert_eq!(bars_in(svg), 28);
        assert!(svg.contains(">\n11-01\n</text>"));
    }

    #[test]
    fn the_forecast_sets_expected_beside_what_came() {
        let html = html(&sample::month());
        assert!(html.contains(
            "<tr><td>2026-11</td><td>延误</td><td class=\"n\">70 (55–86)</td>\
             <td class=\"n\">96</td><td class=\"above\">above range</td></tr>"
        ));
        assert!(html.contains(
            "<tr><td>2026-12</td><td>all complaints</td><td class=\"n\">258 (221–296)</td>\
             <td class=\"n\">-</td><td class=\"\"></td></tr>"
        ));
    }

    #[test]
    fn headline_figures_read_as_people_say_them() {
        let html = html(&sample::month());
        assert!(html.contains("<tr><th>Received</th><td class=\"n\">246</td></tr>"));
        assert!(
            html.contains("<tr><th>Compensation paid</th><td class=\"n\">12345.50 CNY</td></tr>")
        );
        assert!(html.contains(
            "<tr><th>Resolution (received → resolved)</th><td class=\"n\">201</td>\
             <td class=\"n\">1 d 1 h</td><td class=\"n\">4 d</td><td class=\"n\">8 h 30 min</td>\
             <td class=\"n\">1 d 8 h</td></tr>"
        ));
    }

    #[test]
    fn an_empty_period_says_so_in_place_of_each_chart() {
        let html = html(&sample::empty());
        assert_eq!(html.matches("<svg").count(), 7);
        assert_eq!(
            html.matches(">\nNo complaints in this period\n</text>")
                .count(),
            5
        );
        assert!(html.contains(">\nNo survey answers in this period\n</text>"));
        assert!(html.contains(">\nNo deadline met or missed in this period\n</text>"));
        assert!(html.contains("<p>No forecast: too few earlier periods.</p>"));
        assert!(!html.contains("chart not drawn"));
    }
}
