//! Bar charts as inline SVG. Plotters is built without a font feature: text goes out as SVG
//! `<text>` for the browser to set in the page's fonts, and nothing reads a font file here, so
//! the output is the same on every machine. Plotters only estimates text widths then, so the
//! room for labels is worked out here.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 560;
const HEIGHT: u32 = 300;
const FONT: &str = "sans-serif";
/// Sizes in CSS pixels as they reach the page.
const TITLE_PX: f64 = 16.0;
const LABEL_PX: f64 = 12.0;
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
pub(crate) const BLUE: RGBColor = RGBColor(0x3B, 0x6E, 0xA5);

pub(crate) struct Bar {
    pub label: String,
    pub value: f64,
    pub colour: RGBColor,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Upright bars, labels under them: days, scores.
    Columns,
    /// Bars across, labels beside them: names, which can be long.
    Rows,
}

pub(crate) struct Bars<'a> {
    pub title: &'a str,
    pub bars: Vec<Bar>,
    pub layout: Layout,
    /// The top of the value axis when it has a natural one (100 for a percentage).
    pub max: Option<f64>,
    /// How a value reads on the axis and at the end of a bar.
    pub format: fn(f64) -> String,
    /// Said instead of a chart when every bar is zero.
    pub empty: &'a str,
}

/// An SVG element; a chart that cannot be drawn becomes a note in its place rather than
/// costing the reader the whole report.
pub(crate) fn bars(spec: &Bars) -> String {
    let nothing = spec.bars.iter().all(|b| b.value <= 0.0 || b.value.is_nan());
    let mut out = String::new();
    let drawn = if nothing {
        placeholder(&mut out, spec.title, spec.empty)
    } else {
        draw(&mut out, spec)
    };
    match drawn {
        Ok(()) => out,
        Err(e) => format!(
            "<p class=\"chart-error\">{}: chart not drawn ({})</p>",
            super::html::escape(spec.title),
            super::html::escape(&e)
        ),
    }
}

fn placeholder(out: &mut String, title: &str, message: &str) -> Result<(), String> {
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT / 2)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, font(TITLE_PX).color(&INK))
        .map_err(|e| e.to_string())?;
    let centre = Pos::new(HPos::Center, VPos::Center);
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2),
        font(TITLE_PX * 0.9).color(&INK.mix(0.6)).pos(centre),
    ))
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

/// Where things go: bars are numbered from 0 and stand on whole positions of the category
/// axis; the value axis runs from 0 to `top`.
struct Geometry {
    n: usize,
    top: f64,
    rows: bool,
    /// Pixels for the names beside bars laid across.
    label_room: u32,
}

impl Geometry {
    fn of(spec: &Bars) -> Self {
        let top = spec.max.unwrap_or_else(|| {
            let most = spec.bars.iter().map(|b| b.value).fold(0.0, f64::max);
            // Room at the end of the longest bar for its value.
            nice_ceiling(most * 1.15)
        });
        let rows = spec.layout == Layout::Rows;
        Geometry {
            n: spec.bars.len(),
            top,
            rows,
            label_room: if rows { label_room(spec) } else { 0 },
        }
    }

    fn height(&self) -> u32 {
        if self.rows {
            (60 + 26 * self.n as u32).max(HEIGHT / 2)
        } else {
            HEIGHT
        }
    }

    /// The point at value `v` on the near edge of bar `i`: the first bar at the top when
    /// across, at the left when upright.
    fn at(&self, i: usize, v: f64) -> (f64, f64) {
        let v = v.min(self.top);
        if self.rows {
            (v, (self.n - 1 - i) as f64)
        } else {
            (i as f64, v)
        }
    }

    /// The same point on the middle line of the bar, where its texts go.
    fn mid(&self, i: usize, v: f64) -> (f64, f64) {
        let (x, y) = self.at(i, v);
        if self.rows {
            (x, y + 0.5)
        } else {
            (x + 0.5, y)
        }
    }

    fn bar(&self, i: usize, v: f64) -> [(f64, f64); 2] {
        const GAP: f64 = 0.15;
        let ((x0, y0), (x1, y1)) = (self.at(i, 0.0), self.at(i, v));
        if self.rows {
            [(x0, y0 + GAP), (x1, y1 + 1.0 - GAP)]
        } else {
            [(x0 + GAP, y0), (x1 + 1.0 - GAP, y1)]
        }
    }
}

fn draw(out: &mut String, spec: &Bars) -> Result<(), String> {
    let g = Geometry::of(spec);
    let root = SVGBackend::with_string(out, (WIDTH, g.height())).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = axes(&root, spec, &g)?;
    chart
        .draw_series(
            spec.bars
                .iter()
                .enumerate()
                .filter(|(_, b)| b.value > 0.0)
                .map(|(i, b)| Rectangle::new(g.bar(i, b.value), b.colour.filled())),
        )
        .map_err(|e| e.to_string())?;
    texts(&root, &chart, spec, &g)?;
    root.present().map_err(|e| e.to_string())
}

/// The title, the value axis with its grid, and a bare category axis: plotters would place
/// category names at round numbers, so [`texts`] sets them under or beside their bars.
fn axes<'a, 'b>(root: &'a Area<'b>, spec: &Bars, g: &Geometry) -> Result<Chart<'a, 'b>, String> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(spec.title, font(TITLE_PX).color(&INK))
        .margin_top(8)
        .margin_left(8)
        .margin_right(if g.rows { 56 } else { 12 });
    let (positions, values) = (0f64..g.n as f64, 0f64..g.top);
    let mut chart = if g.rows {
        builder
            .x_label_area_size(26)
            .y_label_area_size(g.label_room)
            .build_cartesian_2d(values, positions)
    } else {
        builder
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(positions, values)
    }
    .map_err(|e| e.to_string())?;
    let format = |v: &f64| (spec.format)(*v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID)
        .light_line_style(WHITE)
        .axis_style(INK.mix(0.6))
        .label_style(font(LABEL_PX).color(&INK));
    if g.rows {
        mesh.disable_y_mesh()
            .y_labels(0)
            .x_labels(6)
            .x_label_formatter(&format);
    } else {
        mesh.disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .y_label_formatter(&format);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Each bar's name, and its value at its end where there is room for it.
fn texts(root: &Area, chart: &Chart, spec: &Bars, g: &Geometry) -> Result<(), String> {
    let px = |i: usize, v: f64| chart.backend_coord(&g.mid(i, v));
    let step = label_step(spec, &px);
    let style = |h, v| font(LABEL_PX).color(&INK).pos(Pos::new(h, v));
    for (i, b) in spec.bars.iter().enumerate() {
        let ((bx, by), (ex, ey)) = (px(i, 0.0), px(i, b.value));
        let value = (spec.format)(b.value);
        let (label, value) = if g.rows {
            let name = fit(&b.label, f64::from(g.label_room) - 10.0, LABEL_PX);
            (
                Text::new(name, (bx - 6, by), style(HPos::Right, VPos::Center)),
                Text::new(value, (ex + 4, ey), style(HPos::Left, VPos::Center)),
            )
        } else {
            (
                Text::new(
                    b.label.clone(),
                    (bx, by + 6),
                    style(HPos::Center, VPos::Top),
                ),
                Text::new(value, (ex, ey - 3), style(HPos::Center, VPos::Bottom)),
            )
        };
        if i % step == 0 {
            root.draw(&label).map_err(|e| e.to_string())?;
        }
        // Values over thinned-out columns would crowd each other too.
        if g.rows || step == 1 {
            root.draw(&value).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Plotters' SVG writes a font size as 1/1.24 of the one asked for.
fn font(px: f64) -> FontDesc<'static> {
    (FONT, px * 1.24).into_font()
}

/// Every how many columns a label fits under its bar without touching the next: a month of
/// days cannot all be named.
fn label_step(spec: &Bars, px: &dyn Fn(usize, f64) -> (i32, i32)) -> usize {
    if spec.layout == Layout::Rows || spec.bars.len() < 2 {
        return 1;
    }
    let pitch = f64::from((px(1, 0.0).0 - px(0, 0.0).0).max(1));
    let widest = spec
        .bars
        .iter()
        .map(|b| text_width(&b.label, LABEL_PX))
        .fold(0.0, f64::max);
    ((widest + 8.0) / pitch).ceil().max(1.0) as usize
}

/// Room for the names beside bars: the longest, up to a third of the chart.
fn label_room(spec: &Bars) -> u32 {
    let widest = spec
        .bars
        .iter()
        .map(|b| text_width(&b.label, LABEL_PX))
        .fold(0.0, f64::max);
    (widest + 16.0).clamp(60.0, f64::from(WIDTH) / 3.0) as u32
}

/// A width that holds the text in most fonts: a CJK character is a full em, Latin about half.
fn text_width(s: &str, px: f64) -> f64 {
    s.chars()
        .map(|c| if is_wide(c) { px } else { px * 0.6 })
        .sum()
}

/// East Asian wide characters (Hangul jamo, CJK with kana and Yi, Hangul syllables, CJK
/// compatibility ideographs and forms, fullwidth forms, the supplementary ideographs): two
/// columns in a terminal, about a full em in a chart label.
pub fn is_wide(c: char) -> bool {
    matches!(
        c as u32,
        0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD
    )
}

/// The text, cut with an ellipsis where it would run past `room` pixels.
fn fit(s: &str, room: f64, px: f64) -> String {
    if text_width(s, px) <= room {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = text_width("…", px);
    for c in s.chars() {
        used += text_width(c.encode_utf8(&mut [0; 4]), px);
        if used > room {
            break;
        }
        out.push(c);
    }
    out + "…"
}

/// The round number at or above `v`, so axis marks fall on numbers a reader can count with;
/// the steps are close enough that the longest bar keeps most of the width.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 8.0);
        assert_eq!(nice_ceiling(11.0), 12.0);
        assert_eq!(nice_ceiling(110.4), 120.0);
        assert_eq!(nice_ceiling(210.0), 250.0);
        assert_eq!(nice_ceiling(54.05), 60.0);
        assert_eq!(nice_ceiling(480.0), 500.0);
    }

    #[test]
    fn long_names_are_cut_to_their_room() {
        assert_eq!(fit("web", 100.0, 10.0), "web");
        assert_eq!(fit("快递员态度差快递员态度差", 60.0, 10.0), "快递员态度…");
        assert!(text_width(&fit(&"a".repeat(80), 120.0, 13.0), 13.0) <= 120.0);
    }
}
