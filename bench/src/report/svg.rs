//! A small SVG plotter for the report: line charts and box charts on linear or logarithmic
//! axes, written as text so the plots need no plotting crate and open in any browser or
//! Markdown viewer. It knows nothing of benchmarks: the callers say what the numbers mean.

use std::fmt::Write as _;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 440.0;
const MARGIN_LEFT: f64 = 72.0;
/// Room for the legend, right of the plot: labels such as `before: c=16 p99` fit.
const MARGIN_RIGHT: f64 = 220.0;
const MARGIN_TOP: f64 = 44.0;
const MARGIN_BOTTOM: f64 = 60.0;
const PLOT_WIDTH: f64 = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
const PLOT_HEIGHT: f64 = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;

/// Tableau 10: colours that stay apart on screen and in print.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Dash patterns (`stroke-dasharray`) that tell lines of one colour apart: solid, dashed,
/// dotted, dash-dot.
const DASHES: [&str; 4] = ["", "8 4", "2 3", "10 3 2 3"];

/// The colour of palette entry `index`; past the palette, colours repeat.
pub fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// How a line is drawn: palette entry and dash pattern, each by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineStyle {
    pub colour: usize,
    pub dash: usize,
}

impl LineStyle {
    /// The `index`-th of many lines: every colour solid, then every colour dashed, and so on.
    pub fn nth(index: usize) -> Self {
        Self {
            colour: index % PALETTE.len(),
            dash: index / PALETTE.len(),
        }
    }

    fn stroke(self) -> String {
        let dash = DASHES[self.dash % DASHES.len()];
        let dasharray = if dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{dash}""#)
        };
        format!(r#"stroke="{}"{dasharray}"#, colour(self.colour))
    }
}

/// How values are spread along an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Equal ratios take equal room; only positive values have a place.
    Log,
}

/// A labelled position on an axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

impl Tick {
    pub fn new(value: f64, label: impl Into<String>) -> Self {
        Self {
            value,
            label: label.into(),
        }
    }
}

/// One axis: its title, the range it shows and where its ticks go.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub title: String,
    pub min: f64,
    pub max: f64,
    pub scale: Scale,
    pub ticks: Vec<Tick>,
}

impl Axis {
    /// A linear axis covering `min..=max`, widened to round numbers with about five ticks.
    /// An empty or meaningless range becomes `min..min + 1`, so nothing divides by zero.
    pub fn linear(title: impl Into<String>, min: f64, max: f64) -> Self {
        let (min, max) = match (min.is_finite(), max.is_finite()) {
            (true, true) if max > min => (min, max),
            (true, _) => (min, min + 1.0),
            _ => (0.0, 1.0),
        };
        let step = nice_step((max - min) / 5.0);
        let low = (min / step).floor() * step;
        let high = (max / step).ceil() * step;
        let decimals = decimals_for(step);
        let steps = ((high - low) / step).round() as usize;
        let ticks = (0..=steps)
            .map(|i| {
                let value = low + i as f64 * step;
                Tick::new(value, format!("{value:.decimals$}"))
            })
            .collect();
        Self {
            title: title.into(),
            min: low,
            max: high,
            scale: Scale::Linear,
            ticks,
        }
    }

    /// A linear axis with the range and ticks given, for axes whose labels are not the values
    /// themselves (percentiles drawn on a transformed scale).
    pub fn linear_with_ticks(
        title: impl Into<String>,
        min: f64,
        max: f64,
        ticks: Vec<Tick>,
    ) -> Self {
        Self {
            title: title.into(),
            min,
            max: if max > min { max } else { min + 1.0 },
            scale: Scale::Linear,
            ticks,
        }
    }

    /// A logarithmic axis covering `min..=max` (made positive), with the ticks given.
    pub fn log(title: impl Into<String>, min: f64, max: f64, ticks: Vec<Tick>) -> Self {
        let min = if min.is_finite() && min > 0.0 {
            min
        } else {
            1.0
        };
        let max = if max.is_finite() && max > min {
            max
        } else {
            min * 10.0
        };
        Self {
            title: title.into(),
            min,
            max,
            scale: Scale::Log,
            ticks,
        }
    }

    /// A logarithmic axis covering `min..=max` widened to powers of ten, a tick on each.
    pub fn log_decades(title: impl Into<String>, min: f64, max: f64) -> Self {
        let min = if min.is_finite() && min > 0.0 {
            min
        } else {
            1.0
        };
        let max = if max.is_finite() && max > min {
            max
        } else {
            min * 10.0
        };
        let low = min.log10().floor() as i32;
        let high = (max.log10().ceil() as i32).max(low + 1);
        let ticks = (low..=high)
            .map(|exponent| {
                let value = 10f64.powi(exponent);
                let decimals = usize::try_from(-exponent).unwrap_or(0);
                Tick::new(value, format!("{value:.decimals$}"))
            })
            .collect();
        Self::log(title, 10f64.powi(low), 10f64.powi(high), ticks)
    }

    /// Where `value` falls along the axis: 0 at `min`, 1 at `max`, outside `0..=1` beyond
    /// them. On a log axis a value that is not positive falls at 0.
    pub fn fraction(&self, value: f64) -> f64 {
        let fraction = match self.scale {
            Scale::Linear => (value - self.min) / (self.max - self.min),
            Scale::Log if value > 0.0 => {
                (value.ln() - self.min.ln()) / (self.max.ln() - self.min.ln())
            }
            Scale::Log => 0.0,
        };
        if fraction.is_finite() { fraction } else { 0.0 }
    }

    fn x_pixel(&self, value: f64) -> f64 {
        MARGIN_LEFT + self.fraction(value).clamp(0.0, 1.0) * PLOT_WIDTH
    }

    fn y_pixel(&self, value: f64) -> f64 {
        MARGIN_TOP + (1.0 - self.fraction(value).clamp(0.0, 1.0)) * PLOT_HEIGHT
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let mantissa = raw / magnitude;
    let nice = if mantissa <= 1.0 {
        1.0
    } else if mantissa <= 2.0 {
        2.0
    } else if mantissa <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Decimals a tick label needs to tell steps of `step` apart.
fn decimals_for(step: f64) -> usize {
    usize::try_from(-(step.log10().floor() as i32)).unwrap_or(0)
}

/// A named line through points `(x, y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Dots on the points: for few measured points (a sweep), not for a dense curve.
    pub markers: bool,
    pub style: LineStyle,
}

/// Lines on two axes, with a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
}

impl LineChart {
    pub fn to_svg(&self) -> String {
        let mut svg = open_svg(&self.title);
        draw_x_axis(&mut svg, &self.x);
        draw_y_axis(&mut svg, &self.y);
        for series in &self.series {
            series_svg(&mut svg, series, &self.x, &self.y);
        }
        let entries: Vec<(&str, LegendMark)> = self
            .series
            .iter()
            .map(|s| (s.name.as_str(), LegendMark::Line(s.style)))
            .collect();
        draw_legend(&mut svg, &entries);
        svg.push_str("</svg>\n");
        svg
    }
}

/// The spread of one set of values, drawn as a box (`p25..p75`, a line at `p50`) with
/// whiskers from `min` to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxStats {
    pub count: u64,
    pub min: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub max: f64,
}

/// Boxes side by side under one category name, one slot per series of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxGroup {
    pub name: String,
    /// Indexed like [`BoxChart::series`]; `None` leaves the slot empty.
    pub boxes: Vec<Option<BoxStats>>,
}

/// Box plots in groups along the x axis, with a legend of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxChart {
    pub title: String,
    pub y: Axis,
    pub series: Vec<String>,
    pub groups: Vec<BoxGroup>,
}

impl BoxChart {
    pub fn to_svg(&self) -> String {
        let mut svg = open_svg(&self.title);
        draw_y_axis(&mut svg, &self.y);
        let group_width = PLOT_WIDTH / self.groups.len().max(1) as f64;
        let slot_width = group_width / (self.series.len().max(1) as f64 + 1.0);
        let box_width = (slot_width * 0.7).min(48.0);
        let baseline = MARGIN_TOP + PLOT_HEIGHT;
        let _ = writeln!(
            svg,
            r##"<g class="axis x-axis"><line x1="{MARGIN_LEFT}" y1="{baseline}" x2="{:.1}" y2="{baseline}" stroke="#333"/>"##,
            MARGIN_LEFT + PLOT_WIDTH
        );
        for (group_index, group) in self.groups.iter().enumerate() {
            let left = MARGIN_LEFT + group_index as f64 * group_width;
            let _ = writeln!(
                svg,
                r#"<text class="tick-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                left + group_width / 2.0,
                baseline + 18.0,
                escape(&group.name)
            );
        }
        svg.push_str("</g>\n");
        for (group_index, group) in self.groups.iter().enumerate() {
            let left = MARGIN_LEFT + group_index as f64 * group_width;
            for (series_index, stats) in group.boxes.iter().enumerate() {
                let Some(stats) = stats else { continue };
                let series = self.series.get(series_index).map_or("", String::as_str);
                let centre = left + slot_width * (series_index as f64 + 1.0);
                let slot = Slot {
                    centre,
                    width: box_width,
                    series_index,
                    series,
                    group: &group.name,
                };
                draw_box(&mut svg, &self.y, &slot, stats);
            }
        }
        let entries: Vec<(&str, LegendMark)> = self
            .series
            .iter()
            .enumerate()
            .map(|(index, name)| (name.as_str(), LegendMark::Swatch(index)))
            .collect();
        draw_legend(&mut svg, &entries);
        svg.push_str("</svg>\n");
        svg
    }
}

/// Where one box goes and what it is of.
struct Slot<'a> {
    centre: f64,
    width: f64,
    series_index: usize,
    series: &'a str,
    group: &'a str,
}

fn draw_box(svg: &mut String, y: &Axis, slot: &Slot<'_>, stats: &BoxStats) {
    let Slot {
        centre,
        width,
        series_index,
        series,
        group,
    } = *slot;
    let colour = colour(series_index);
    let half = width / 2.0;
    let (top, bottom) = (y.y_pixel(stats.p75), y.y_pixel(stats.p25));
    let tooltip = format!(
        "{series}, {group}: n={}, min {:.2}, p25 {:.2}, p50 {:.2}, p75 {:.2}, max {:.2}",
        stats.count, stats.min, stats.p25, stats.p50, stats.p75, stats.max
    );
    let _ = writeln!(
        svg,
        r##"<g class="box" data-series="{series}" data-group="{group}"><title>{tooltip}</title><line x1="{centre:.1}" y1="{:.1}" x2="{centre:.1}" y2="{:.1}" stroke="#333"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/><rect x="{:.1}" y="{top:.1}" width="{width:.1}" height="{:.1}" fill="{colour}" fill-opacity="0.75" stroke="#333"/><line class="median" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#111" stroke-width="2"/></g>"##,
        y.y_pixel(stats.max),
        y.y_pixel(stats.min),
        centre - half / 2.0,
        y.y_pixel(stats.max),
        centre + half / 2.0,
        y.y_pixel(stats.max),
        centre - half / 2.0,
        y.y_pixel(stats.min),
        centre + half / 2.0,
        y.y_pixel(stats.min),
        centre - half,
        (bottom - top).max(1.0),
        centre - half,
        y.y_pixel(stats.p50),
        centre + half,
        y.y_pixel(stats.p50),
        series = escape(series),
        group = escape(group),
        tooltip = escape(&tooltip),
    );
}

fn open_svg(title: &str) -> String {
    open_svg_sized(title, WIDTH, HEIGHT, MARGIN_LEFT + PLOT_WIDTH / 2.0)
}

/// The SVG's opening, white background and title; `title_x` centres the title.
fn open_svg_sized(title: &str, width: f64, height: f64, title_x: f64) -> String {
    let title = escape(title);
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#,
            "\n<title>{title}</title>\n",
            r#"<rect width="{w}" height="{h}" fill="white"/>"#,
            "\n",
            r#"<text class="chart-title" x="{x}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>"#,
            "\n"
        ),
        w = width,
        h = height,
        x = title_x,
        title = title,
    )
}

fn draw_x_axis(svg: &mut String, axis: &Axis) {
    let baseline = MARGIN_TOP + PLOT_HEIGHT;
    let _ = write!(
        svg,
        r##"<g class="axis x-axis"><line x1="{MARGIN_LEFT}" y1="{baseline}" x2="{:.1}" y2="{baseline}" stroke="#333"/>"##,
        MARGIN_LEFT + PLOT_WIDTH
    );
    for tick in &axis.ticks {
        let x = axis.x_pixel(tick.value);
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{x:.1}" y1="{MARGIN_TOP}" x2="{x:.1}" y2="{baseline}" stroke="#ddd"/><text class="tick-label" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            baseline + 16.0,
            escape(&tick.label)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
        MARGIN_LEFT + PLOT_WIDTH / 2.0,
        HEIGHT - 16.0,
        escape(&axis.title)
    );
}

fn draw_y_axis(svg: &mut String, axis: &Axis) {
    let right = MARGIN_LEFT + PLOT_WIDTH;
    let _ = write!(
        svg,
        r##"<g class="axis y-axis"><line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{:.1}" stroke="#333"/>"##,
        MARGIN_TOP + PLOT_HEIGHT
    );
    for tick in &axis.ticks {
        let y = axis.y_pixel(tick.value);
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{MARGIN_LEFT}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#ddd"/><text class="tick-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            escape(&tick.label)
        );
    }
    let centre = MARGIN_TOP + PLOT_HEIGHT / 2.0;
    let _ = writeln!(
        svg,
        r#"<text class="axis-title" x="18" y="{centre:.1}" text-anchor="middle" transform="rotate(-90 18 {centre:.1})">{}</text></g>"#,
        escape(&axis.title)
    );
}

/// What a legend entry shows beside its name.
#[derive(Debug, Clone, Copy)]
enum LegendMark {
    /// A stretch of the line, dashes and all.
    Line(LineStyle),
    /// A filled square of palette entry `n`, for boxes.
    Swatch(usize),
}

fn draw_legend(svg: &mut String, entries: &[(&str, LegendMark)]) {
    let left = MARGIN_LEFT + PLOT_WIDTH + 16.0;
    svg.push_str(r#"<g class="legend">"#);
    for (index, (name, mark)) in entries.iter().enumerate() {
        let y = MARGIN_TOP + 8.0 + index as f64 * 18.0;
        svg.push_str(r#"<g class="legend-entry">"#);
        let _ = match mark {
            LegendMark::Line(style) => write!(
                svg,
                r#"<line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" {} stroke-width="2"/>"#,
                y - 4.0,
                left + 22.0,
                y - 4.0,
                style.stroke()
            ),
            LegendMark::Swatch(palette) => write!(
                svg,
                r#"<rect x="{left:.1}" y="{:.1}" width="14" height="10" fill="{}"/>"#,
                y - 9.0,
                colour(*palette)
            ),
        };
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text></g>"#,
            left + 28.0,
            y,
            escape(name)
        );
    }
    svg.push_str("</g>\n");
}

/// One part of a stacked bar.
#[derive(Debug, Clone, PartialEq)]
pub struct BarSegment {
    pub name: String,
    pub value: f64,
    /// A CSS colour; ignored for a lumped segment, which is grey.
    pub colour: String,
    /// A part that lumps what could not be split: drawn grey and hatched, so it reads as
    /// "unknown" rather than as one more stage.
    pub lumped: bool,
}

/// One horizontal bar made of segments laid end to end.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBar {
    pub label: String,
    pub segments: Vec<BarSegment>,
}

/// Horizontal stacked bars, one per row, with the legend of their segments underneath (the
/// segment names are too long for the right margin).
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBarChart {
    pub title: String,
    pub x_title: String,
    pub bars: Vec<StackedBar>,
}

/// Room for the bars' labels, left of the plot.
const BAR_LABEL_WIDTH: f64 = 190.0;
const BAR_HEIGHT: f64 = 22.0;
const BAR_GAP: f64 = 10.0;
const LUMPED_GREY: &str = "#bab0ac";

impl StackedBarChart {
    pub fn to_svg(&self) -> String {
        let left = BAR_LABEL_WIDTH;
        let plot_width = WIDTH - left - 30.0;
        let plot_height = self.bars.len().max(1) as f64 * (BAR_HEIGHT + BAR_GAP) + BAR_GAP;
        let mut legend: Vec<(&str, &str, bool)> = Vec::new();
        for segment in self.bars.iter().flat_map(|bar| &bar.segments) {
            if !legend.iter().any(|(name, _, _)| *name == segment.name) {
                legend.push((&segment.name, &segment.colour, segment.lumped));
            }
        }
        let legend_rows = legend.len().div_ceil(2);
        let axis_bottom = MARGIN_TOP + plot_height;
        let height = axis_bottom + 56.0 + legend_rows as f64 * 18.0 + 8.0;
        let total = |bar: &StackedBar| bar.segments.iter().map(|s| s.value.max(0.0)).sum::<f64>();
        let top = self.bars.iter().map(total).fold(0.0, f64::max);
        let x = Axis::linear(self.x_title.clone(), 0.0, top);
        let x_pixel = |value: f64| left + x.fraction(value).clamp(0.0, 1.0) * plot_width;

        let mut svg = open_svg_sized(&self.title, WIDTH, height, left + plot_width / 2.0);
        let _ = writeln!(
            svg,
            r##"<defs><pattern id="lumped" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="{LUMPED_GREY}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern></defs>"##
        );
        let _ = write!(
            svg,
            r##"<g class="axis x-axis"><line x1="{left}" y1="{axis_bottom:.1}" x2="{:.1}" y2="{axis_bottom:.1}" stroke="#333"/>"##,
            left + plot_width
        );
        for tick in &x.ticks {
            let at = x_pixel(tick.value);
            let _ = write!(
                svg,
                r##"<line class="grid" x1="{at:.1}" y1="{MARGIN_TOP}" x2="{at:.1}" y2="{axis_bottom:.1}" stroke="#ddd"/><text class="tick-label" x="{at:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                axis_bottom + 16.0,
                escape(&tick.label)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
            left + plot_width / 2.0,
            axis_bottom + 36.0,
            escape(&self.x_title)
        );
        for (index, bar) in self.bars.iter().enumerate() {
            let y = MARGIN_TOP + BAR_GAP + index as f64 * (BAR_HEIGHT + BAR_GAP);
            let _ = write!(
                svg,
                r#"<g class="bar" data-label="{label}"><text class="bar-label" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
                left - 8.0,
                y + BAR_HEIGHT / 2.0 + 4.0,
                label = escape(&bar.label)
            );
            let mut start = 0.0;
            for segment in &bar.segments {
                let value = segment.value.max(0.0);
                let (x0, x1) = (x_pixel(start), x_pixel(start + value));
                start += value;
                let fill = if segment.lumped {
                    "url(#lumped)"
                } else {
                    segment.colour.as_str()
                };
                let _ = write!(
                    svg,
                    r##"<rect class="segment{lumped}" data-name="{name}" data-value="{value:.3}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_HEIGHT}" fill="{fill}" stroke="#fff" stroke-width="0.5"><title>{name}: {value:.2}</title></rect>"##,
                    (x1 - x0).max(0.0),
                    lumped = if segment.lumped { " lumped" } else { "" },
                    name = escape(&segment.name),
                );
            }
            svg.push_str("</g>\n");
        }
        svg.push_str(r#"<g class="legend">"#);
        for (index, (name, palette, lumped)) in legend.iter().enumerate() {
            let column = (index % 2) as f64;
            let row = (index / 2) as f64;
            let lx = 20.0 + column * (WIDTH / 2.0);
            let ly = axis_bottom + 62.0 + row * 18.0;
            let fill = if *lumped { "url(#lumped)" } else { palette };
            let _ = write!(
                svg,
                r#"<g class="legend-entry"><rect x="{lx:.1}" y="{:.1}" width="14" height="10" fill="{fill}"/><text x="{:.1}" y="{ly:.1}">{}</text></g>"#,
                ly - 9.0,
                lx + 20.0,
                escape(name)
            );
        }
        svg.push_str("</g>\n</svg>\n");
        svg
    }
}

/// How the points of a scatter series are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Dot,
    /// A hollow diamond: stands out among dots.
    Diamond,
    /// An ×: an event, not a measure.
    Cross,
}

/// Points with one marker and colour.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterSeries {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub marker: Marker,
    /// A CSS colour.
    pub colour: String,
}

/// Points on two axes, with a legend of their markers.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<ScatterSeries>,
}

fn marker_svg(marker: Marker, x: f64, y: f64, colour: &str) -> String {
    match marker {
        Marker::Dot => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{colour}"/>"#),
        Marker::Diamond => format!(
            r#"<path d="M{x:.1},{:.1}L{:.1},{y:.1}L{x:.1},{:.1}L{:.1},{y:.1}Z" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0
        ),
        Marker::Cross => format!(
            r#"<path d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}" stroke="{colour}" stroke-width="2"/>"#,
            x - 4.0,
            y - 4.0,
            x + 4.0,
            y + 4.0,
            x - 4.0,
            y + 4.0,
            x + 4.0,
            y - 4.0
        ),
    }
}

impl ScatterChart {
    pub fn to_svg(&self) -> String {
        let mut svg = open_svg(&self.title);
        draw_x_axis(&mut svg, &self.x);
        draw_y_axis(&mut svg, &self.y);
        for series in &self.series {
            let _ = write!(
                svg,
                r#"<g class="series" data-name="{name}" data-points="{}"><title>{name}</title>"#,
                series.points.len(),
                name = escape(&series.name),
            );
            for &(x, y) in series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
            {
                svg.push_str(&marker_svg(
                    series.marker,
                    self.x.x_pixel(x),
                    self.y.y_pixel(y),
                    &series.colour,
                ));
            }
            svg.push_str("</g>\n");
        }
        let left = MARGIN_LEFT + PLOT_WIDTH + 16.0;
        svg.push_str(r#"<g class="legend">"#);
        for (index, series) in self.series.iter().enumerate() {
            let y = MARGIN_TOP + 8.0 + index as f64 * 18.0;
            let _ = write!(
                svg,
                r#"<g class="legend-entry">{}<text x="{:.1}" y="{y:.1}">{}</text></g>"#,
                marker_svg(series.marker, left + 8.0, y - 4.0, &series.colour),
                left + 28.0,
                escape(&series.name)
            );
        }
        svg.push_str("</g>\n</svg>\n");
        svg
    }
}

/// A labelled place on the x axis of a [`DualAxisChart`]: a dashed line across the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct XMark {
    pub x: f64,
    pub label: String,
}

/// Lines against one x axis and two y axes: the `left` series read on `y_left`, the `right`
/// ones on `y_right` (ticks and title on the right side of the plot).
#[derive(Debug, Clone, PartialEq)]
pub struct DualAxisChart {
    pub title: String,
    pub x: Axis,
    pub y_left: Axis,
    pub y_right: Axis,
    pub left: Vec<Series>,
    pub right: Vec<Series>,
    pub marks: Vec<XMark>,
}

impl DualAxisChart {
    pub fn to_svg(&self) -> String {
        let mut svg = open_svg(&self.title);
        draw_x_axis(&mut svg, &self.x);
        draw_y_axis(&mut svg, &self.y_left);
        let right = MARGIN_LEFT + PLOT_WIDTH;
        let _ = write!(
            svg,
            r##"<g class="axis y-axis-right"><line x1="{right}" y1="{MARGIN_TOP}" x2="{right}" y2="{:.1}" stroke="#333"/>"##,
            MARGIN_TOP + PLOT_HEIGHT
        );
        for tick in &self.y_right.ticks {
            let y = self.y_right.y_pixel(tick.value);
            let _ = write!(
                svg,
                r##"<line x1="{right}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333"/><text class="tick-label" x="{:.1}" y="{:.1}" text-anchor="start">{}</text>"##,
                right + 4.0,
                right + 6.0,
                y + 4.0,
                escape(&tick.label)
            );
        }
        let centre = MARGIN_TOP + PLOT_HEIGHT / 2.0;
        let title_x = right + 58.0;
        let _ = writeln!(
            svg,
            r#"<text class="axis-title" x="{title_x:.1}" y="{centre:.1}" text-anchor="middle" transform="rotate(90 {title_x:.1} {centre:.1})">{}</text></g>"#,
            escape(&self.y_right.title)
        );
        for (index, mark) in self.marks.iter().enumerate() {
            let x = self.x.x_pixel(mark.x);
            // Alternate heights, so the labels of neighbouring marks do not overlap.
            let label_y = MARGIN_TOP + 14.0 + (index % 2) as f64 * 14.0;
            // Right of the line in the plot's left half, left of it in the right half, so the
            // label stays inside the plot.
            let (label_x, anchor) = if x < MARGIN_LEFT + PLOT_WIDTH / 2.0 {
                (x + 4.0, "start")
            } else {
                (x - 4.0, "end")
            };
            let _ = writeln!(
                svg,
                r##"<g class="mark" data-label="{label}"><line x1="{x:.1}" y1="{MARGIN_TOP}" x2="{x:.1}" y2="{:.1}" stroke="#555" stroke-dasharray="3 3"/><text x="{label_x:.1}" y="{label_y:.1}" text-anchor="{anchor}" font-weight="bold">{label}</text></g>"##,
                MARGIN_TOP + PLOT_HEIGHT,
                label = escape(&mark.label)
            );
        }
        let mut draw = |series: &Series, axis: &Axis| series_svg(&mut svg, series, &self.x, axis);
        for series in &self.left {
            draw(series, &self.y_left);
        }
        for series in &self.right {
            draw(series, &self.y_right);
        }
        // The legend moves right of the right axis's labels and title.
        let left = right + 76.0;
        svg.push_str(r#"<g class="legend">"#);
        let entries = self
            .left
            .iter()
            .map(|s| (s, "left"))
            .chain(self.right.iter().map(|s| (s, "right")));
        for (index, (series, side)) in entries.enumerate() {
            let y = MARGIN_TOP + 8.0 + index as f64 * 18.0;
            let _ = write!(
                svg,
                r#"<g class="legend-entry"><line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" {} stroke-width="2"/><text x="{:.1}" y="{y:.1}">{} ({side})</text></g>"#,
                y - 4.0,
                left + 18.0,
                y - 4.0,
                series.style.stroke(),
                left + 22.0,
                escape(&series.name)
            );
        }
        svg.push_str("</g>\n</svg>\n");
        svg
    }
}

/// `text` safe inside XML character data and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

/// One series as a polyline of `x` against `y`, with its markers, its name as a tooltip.
fn series_svg(svg: &mut String, series: &Series, x_axis: &Axis, y_axis: &Axis) {
    let points: Vec<String> = series
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|&(x, y)| format!("{:.1},{:.1}", x_axis.x_pixel(x), y_axis.y_pixel(y)))
        .collect();
    let _ = write!(
        svg,
        r#"<g class="series" data-name="{name}"><title>{name}</title><polyline fill="none" {stroke} stroke-width="2" stroke-linejoin="round" points="{points}"/>"#,
        name = escape(&series.name),
        stroke = series.style.stroke(),
        points = points.join(" "),
    );
    if series.markers {
        let fill = colour(series.style.colour);
        for point in &points {
            if let Some((x, y)) = point.split_once(',') {
                let _ = write!(svg, r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{fill}"/>"#);
            }
        }
    }
    svg.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).expect("well-formed SVG")
    }

    #[test]
    fn a_linear_axis_maps_values_proportionally_and_rounds_its_ends() {
        let axis = Axis::linear("ms", 0.0, 9.3);
        assert_eq!((axis.min, axis.max), (0.0, 10.0));
        assert_eq!(axis.fraction(0.0), 0.0);
        assert_eq!(axis.fraction(5.0), 0.5);
        assert_eq!(axis.fraction(10.0), 1.0);
        assert_eq!(axis.fraction(12.5), 1.25);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8", "10"]);
    }

    #[test]
    fn small_ranges_get_decimal_tick_labels() {
        let axis = Axis::linear("ms", 0.0, 0.42);
        assert_eq!(axis.max, 0.5);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
    }

    #[test]
    fn a_log_axis_gives_equal_room_to_equal_ratios() {
        let axis = Axis::log("c", 1.0, 16.0, Vec::new());
        assert_eq!(axis.fraction(1.0), 0.0);
        assert!((axis.fraction(4.0) - 0.5).abs() < 1e-12);
        assert!((axis.fraction(2.0) - 0.25).abs() < 1e-12);
        assert_eq!(axis.fraction(16.0), 1.0);
        assert_eq!(axis.fraction(0.0), 0.0);
        let decades = Axis::log_decades("ms", 3.0, 250.0);
        assert_eq!((decades.min, decades.max), (1.0, 1000.0));
        let labels: Vec<&str> = decades.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["1", "10", "100", "1000"]);
        assert!((decades.fraction(10.0) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn degenerate_ranges_do_not_divide_by_zero() {
        for axis in [
            Axis::linear("a", 5.0, 5.0),
            Axis::linear("b", f64::NAN, f64::INFINITY),
            Axis::log("c", 0.0, -1.0, Vec::new()),
            Axis::log_decades("d", 0.0, 0.0),
        ] {
            assert!(axis.max > axis.min, "{axis:?}");
            assert!(axis.fraction(axis.min).is_finite());
            assert!(axis.fraction(f64::NAN).is_finite());
        }
    }

    #[test]
    fn points_land_where_the_axes_put_them() {
        let chart = LineChart {
            title: "t".into(),
            x: Axis::linear("x", 0.0, 10.0),
            y: Axis::linear("y", 0.0, 10.0),
            series: vec![Series {
                name: "s".into(),
                points: vec![(0.0, 0.0), (5.0, 10.0)],
                markers: false,
                style: LineStyle::default(),
            }],
        };
        let svg = chart.to_svg();
        let document = parse(&svg);
        let polyline = document
            .descendants()
            .find(|n| n.has_tag_name("polyline"))
            .expect("a polyline");
        let expected = format!(
            "{:.1},{:.1} {:.1},{:.1}",
            MARGIN_LEFT,
            MARGIN_TOP + PLOT_HEIGHT,
            MARGIN_LEFT + PLOT_WIDTH / 2.0,
            MARGIN_TOP
        );
        assert_eq!(polyline.attribute("points"), Some(expected.as_str()));
    }

    #[test]
    fn many_lines_repeat_colours_with_another_dash() {
        assert_eq!(LineStyle::nth(3), LineStyle { colour: 3, dash: 0 });
        assert_eq!(LineStyle::nth(12), LineStyle { colour: 2, dash: 1 });
        assert_eq!(
            LineStyle::nth(0).stroke(),
            format!(r#"stroke="{}""#, colour(0))
        );
    }

    #[test]
    fn names_with_markup_characters_stay_well_formed() {
        let chart = LineChart {
            title: "a <b> & \"c\"".into(),
            x: Axis::linear("x < 1", 0.0, 1.0),
            y: Axis::linear("y", 0.0, 1.0),
            series: vec![Series {
                name: "r&d <'1'>".into(),
                points: vec![(0.5, 0.5)],
                markers: true,
                style: LineStyle { colour: 2, dash: 1 },
            }],
        };
        let svg = chart.to_svg();
        let document = parse(&svg);
        let series = document
            .descendants()
            .find(|n| n.attribute("class") == Some("series"))
            .expect("a series");
        assert_eq!(series.attribute("data-name"), Some("r&d <'1'>"));
        let polyline = series
            .children()
            .find(|n| n.has_tag_name("polyline"))
            .expect("a line");
        assert_eq!(polyline.attribute("stroke"), Some(colour(2)));
        assert_eq!(polyline.attribute("stroke-dasharray"), Some("8 4"));
        let title = document
            .descendants()
            .find(|n| n.attribute("class") == Some("chart-title"))
            .and_then(|n| n.text());
        assert_eq!(title, Some("a <b> & \"c\""));
    }

    #[test]
    fn a_box_chart_draws_one_box_per_present_slot() {
        let stats = BoxStats {
            count: 10,
            min: 1.0,
            p25: 2.0,
            p50: 3.0,
            p75: 4.0,
            max: 9.0,
        };
        let chart = BoxChart {
            title: "boxes".into(),
            y: Axis::linear("ms", 0.0, 10.0),
            series: vec!["cold".into(), "warm".into()],
            groups: vec![
                BoxGroup {
                    name: "client".into(),
                    boxes: vec![Some(stats), Some(stats)],
                },
                BoxGroup {
                    name: "init".into(),
                    boxes: vec![Some(stats), None],
                },
            ],
        };
        let svg = chart.to_svg();
        let document = parse(&svg);
        let boxes: Vec<(&str, &str)> = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("box"))
            .filter_map(|n| Some((n.attribute("data-group")?, n.attribute("data-series")?)))
            .collect();
        assert_eq!(
            boxes,
            [("client", "cold"), ("client", "warm"), ("init", "cold")]
        );
        // The box spans p25..p75: 2..4 ms of a 0..10 axis.
        let rect = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("box"))
            .find_map(|n| n.children().find(|c| c.has_tag_name("rect")))
            .expect("a box");
        let height: f64 = rect
            .attribute("height")
            .and_then(|h| h.parse().ok())
            .expect("a height");
        assert!((height - PLOT_HEIGHT * 0.2).abs() < 0.2, "{height}");
    }
}
