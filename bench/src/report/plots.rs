//! The report's figures as SVG: the client latency percentile distribution of every run on
//! one plot (and the upload runs' measures on another), where the time goes (the stage
//! breakdown), percentiles and throughput against concurrency for sweeps, duration and cost
//! against memory for memory sweeps, and per run cold against warm invocations and latency
//! over time. Each figure is a file name, a caption and the SVG text.

use super::analysis::{self, ColdWarm, NINES_SHOWN, Spread, Sweep};
use super::breakdown::{self, Breakdown};
use super::input::{LabeledRun, LabeledUpload};
use super::memory_sweep::MemorySweep;
use super::svg::{
    Axis, BarSegment, BoxChart, BoxGroup, BoxStats, DualAxisChart, LineChart, LineStyle, Marker,
    ScatterChart, ScatterSeries, Series, StackedBar, StackedBarChart, Tick, XMark, colour,
};
use crate::model::{Outcome, Run};
use crate::uploads::UPLOAD_MEASURES;

/// One plot of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Relative to the report's folder.
    pub file_name: String,
    pub caption: String,
    pub svg: String,
}

/// Every figure of a report; a figure that would be empty is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub latency_distribution: Option<Figure>,
    pub sweep_latency: Option<Figure>,
    pub sweep_throughput: Option<Figure>,
    /// One per run, in the report's order; `None` for a run without cold starts.
    pub cold_warm: Vec<Option<Figure>>,
    /// Where the time of every run's invocations goes.
    pub breakdown: Option<Figure>,
    /// One per run, in the report's order; `None` for a run file without samples.
    pub timelines: Vec<Option<Figure>>,
    /// The upload runs' measures by percentile.
    pub upload_distribution: Option<Figure>,
    /// One per memory sweep.
    pub memory_sweeps: Vec<Figure>,
}

impl Figures {
    pub fn all(&self) -> impl Iterator<Item = &Figure> {
        [
            &self.latency_distribution,
            &self.upload_distribution,
            &self.breakdown,
            &self.sweep_latency,
            &self.sweep_throughput,
        ]
        .into_iter()
        .flatten()
        .chain(&self.memory_sweeps)
        .chain(self.cold_warm.iter().flatten())
        .chain(self.timelines.iter().flatten())
    }
}

/// The breakdowns of every run, in the report's order: its warm invocations, then its cold
/// starts.
pub fn breakdowns(runs: &[LabeledRun]) -> Vec<Breakdown> {
    runs.iter()
        .flat_map(|labeled| breakdown::run_breakdowns(&labeled.label, &labeled.run.samples))
        .collect()
}

/// The figures of `runs`, whose sweeps are `sweeps` and whose cold/warm splits are
/// `cold_warm` (one per run).
pub fn figures(runs: &[LabeledRun], sweeps: &[Sweep], cold_warm: &[ColdWarm]) -> Figures {
    Figures {
        latency_distribution: latency_distribution(runs),
        sweep_latency: sweep_latency(sweeps),
        sweep_throughput: sweep_throughput(sweeps),
        cold_warm: runs
            .iter()
            .zip(cold_warm)
            .enumerate()
            .map(|(index, (run, split))| cold_warm_figure(index, &run.label, split))
            .collect(),
        breakdown: breakdown_figure(&breakdowns(runs)),
        timelines: runs
            .iter()
            .enumerate()
            .map(|(index, labeled)| timeline_figure(index, &labeled.label, &labeled.run))
            .collect(),
        upload_distribution: None,
        memory_sweeps: Vec::new(),
    }
}

/// The stacked bars of `breakdowns`, one per group of invocations.
pub fn breakdown_figure(breakdowns: &[Breakdown]) -> Option<Figure> {
    if breakdowns.is_empty() {
        return None;
    }
    let bars = breakdowns
        .iter()
        .map(|bar| StackedBar {
            label: bar.label.clone(),
            segments: bar
                .segments
                .iter()
                .map(|median| BarSegment {
                    name: median.segment.name().to_owned(),
                    value: median.p50_ms,
                    colour: median.segment.colour().to_owned(),
                    lumped: median.segment.lumped(),
                })
                .collect(),
        })
        .collect();
    let chart = StackedBarChart {
        title: "Where the time goes (median of each segment)".to_owned(),
        x_title: "milliseconds".to_owned(),
        bars,
    };
    Some(Figure {
        file_name: "stage-breakdown.svg".to_owned(),
        caption: "Where the time goes: the median of each segment of an invocation".to_owned(),
        svg: chart.to_svg(),
    })
}

/// At most this many warm, successful invocations are drawn on a timeline: beyond it every
/// n-th is, so the SVG stays small. Cold starts and errors are always all drawn.
const TIMELINE_MAX_POINTS: usize = 4_000;

fn timeline_figure(index: usize, label: &str, run: &Run) -> Option<Figure> {
    if run.samples.is_empty() {
        return None;
    }
    let point = |sample: &crate::model::Sample| {
        (
            sample.sent_us as f64 / 1e6,
            sample.latency_us() as f64 / 1000.0,
        )
    };
    let warm: Vec<&crate::model::Sample> = run
        .samples
        .iter()
        .filter(|s| s.outcome == Outcome::Ok && !s.cold_start())
        .collect();
    let every = warm.len().div_ceil(TIMELINE_MAX_POINTS).max(1);
    let warm_points: Vec<(f64, f64)> = warm.iter().step_by(every).map(|s| point(s)).collect();
    let cold_points: Vec<(f64, f64)> = run
        .samples
        .iter()
        .filter(|s| s.outcome == Outcome::Ok && s.cold_start())
        .map(point)
        .collect();
    let error_points: Vec<(f64, f64)> = run
        .samples
        .iter()
        .filter(|s| s.outcome != Outcome::Ok)
        .map(point)
        .collect();
    let warm_name = if every > 1 {
        format!("warm (every {every}th)")
    } else {
        "warm".to_owned()
    };
    let series: Vec<ScatterSeries> = [
        (warm_name, warm_points, Marker::Dot, colour(0)),
        (
            "cold start".to_owned(),
            cold_points,
            Marker::Diamond,
            colour(1),
        ),
        ("error".to_owned(), error_points, Marker::Cross, colour(2)),
    ]
    .into_iter()
    .filter(|(_, points, _, _)| !points.is_empty())
    .map(|(name, points, marker, colour)| ScatterSeries {
        name,
        points,
        marker,
        colour: colour.to_owned(),
    })
    .collect();
    let all = || series.iter().flat_map(|s| s.points.iter());
    let end = highest(all().map(|&(x, _)| x));
    let low = all()
        .map(|&(_, ms)| ms)
        .filter(|ms| *ms > 0.0)
        .fold(f64::INFINITY, f64::min);
    let high = highest(all().map(|&(_, ms)| ms));
    let chart = ScatterChart {
        title: format!("Client latency over time: {label}"),
        x: Axis::linear("seconds since the run started (send time)", 0.0, end),
        y: latency_axis(low, high),
        series,
    };
    let stem = slug(label);
    let file_name = if stem.is_empty() {
        format!("timeline-{}.svg", index + 1)
    } else {
        format!("timeline-{}-{stem}.svg", index + 1)
    };
    Some(Figure {
        file_name,
        caption: format!("Client latency over time of {label}"),
        svg: chart.to_svg(),
    })
}

/// The upload runs' measures by percentile: a colour per measure, a dash pattern per run.
pub fn upload_distribution(uploads: &[LabeledUpload]) -> Option<Figure> {
    let several = uploads.len() > 1;
    let series: Vec<Series> = uploads
        .iter()
        .enumerate()
        .flat_map(|(run_index, labeled)| {
            UPLOAD_MEASURES
                .iter()
                .enumerate()
                .filter_map(move |(measure_index, name)| {
                    let measure = labeled.run.measures.iter().find(|m| m.name == *name)?;
                    let histogram = analysis::histogram_of_measure(measure);
                    let points = analysis::percentile_distribution(&histogram);
                    (!points.is_empty()).then(|| Series {
                        name: if several {
                            format!("{}: {name}", labeled.label)
                        } else {
                            (*name).to_owned()
                        },
                        points,
                        markers: false,
                        style: LineStyle {
                            colour: measure_index,
                            dash: run_index,
                        },
                    })
                })
        })
        .collect();
    percentile_figure(
        series,
        "Upload pipeline: each measure by percentile",
        "milliseconds",
        "upload-distribution.svg",
        "Upload pipeline measures by percentile",
    )
}

/// A figure of `series` of milliseconds against the percentile axis; `None` without any.
fn percentile_figure(
    series: Vec<Series>,
    title: &str,
    y_label: &str,
    file_name: &str,
    caption: &str,
) -> Option<Figure> {
    if series.is_empty() {
        return None;
    }
    let top = highest(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(_, ms)| ms)),
    );
    let chart = LineChart {
        title: title.to_owned(),
        x: percentile_axis(),
        y: Axis::linear(y_label, 0.0, top),
        series,
    };
    Some(Figure {
        file_name: file_name.to_owned(),
        caption: caption.to_owned(),
        svg: chart.to_svg(),
    })
}

/// Duration (left axis) and cost per million invocations (right axis) against memory, the
/// picks marked.
pub fn memory_sweep_figure(index: usize, sweep: &MemorySweep) -> Figure {
    let points = |value: fn(&crate::memory::MemoryPoint) -> f64| {
        sweep
            .levels
            .iter()
            .map(|level| (f64::from(level.point.memory_mb), value(&level.point)))
            .collect::<Vec<_>>()
    };
    let left = vec![
        Series {
            name: "mean (ms)".to_owned(),
            points: points(|p| p.duration_mean_ms),
            markers: true,
            style: LineStyle { colour: 0, dash: 0 },
        },
        Series {
            name: "p99 (ms)".to_owned(),
            points: points(|p| p.duration_p99_ms),
            markers: true,
            style: LineStyle { colour: 0, dash: 1 },
        },
    ];
    let right = vec![Series {
        name: "USD per 1M".to_owned(),
        points: points(|p| p.cost_per_invocation_usd * 1e6),
        markers: true,
        style: LineStyle { colour: 1, dash: 0 },
    }];
    let sizes: Vec<usize> = sweep
        .levels
        .iter()
        .map(|level| level.point.memory_mb as usize)
        .collect();
    let low = sizes.first().copied().unwrap_or(128) as f64;
    let high = sizes.last().copied().unwrap_or(256) as f64;
    let ticks = sizes
        .iter()
        .map(|&mb| Tick::new(mb as f64, mb.to_string()))
        .collect();
    // A margin either side, so the first and last points are not drawn on the frame.
    const PADDING: f64 = 1.2;
    let x = Axis::log(
        "memory (MB, log scale)",
        low / PADDING,
        high * PADDING,
        ticks,
    );
    let mut marks: Vec<XMark> = Vec::new();
    for level in &sweep.levels {
        let picked = sweep.picks_of(level.point.memory_mb);
        if !picked.is_empty()
            && !marks
                .iter()
                .any(|m| m.x == f64::from(level.point.memory_mb))
        {
            marks.push(XMark {
                x: f64::from(level.point.memory_mb),
                label: picked.join(", "),
            });
        }
    }
    let top_duration = highest(left.iter().flat_map(|s| s.points.iter().map(|&(_, v)| v)));
    let top_cost = highest(right.iter().flat_map(|s| s.points.iter().map(|&(_, v)| v)));
    let chart = DualAxisChart {
        title: format!(
            "Memory sweep of the {}: {}",
            sweep.function.name(),
            sweep.name
        ),
        x,
        y_left: Axis::linear("Lambda duration: mean, p99 (ms)", 0.0, top_duration),
        y_right: Axis::linear("cost per million invocations (USD)", 0.0, top_cost),
        left,
        right,
        marks,
    };
    let stem = slug(&sweep.name);
    Figure {
        file_name: if stem.is_empty() {
            format!("memory-sweep-{}.svg", index + 1)
        } else {
            format!("memory-sweep-{}-{stem}.svg", index + 1)
        },
        caption: format!(
            "Duration and cost against memory of the {} ({})",
            sweep.function.name(),
            sweep.name
        ),
        svg: chart.to_svg(),
    }
}

/// The percentile axis of HdrHistogram's plots: 0 % to 99.99 %, each nine as wide as the last.
fn percentile_axis() -> Axis {
    let ticks = [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
    ]
    .into_iter()
    .map(|(nines, label)| Tick::new(nines, label))
    .collect();
    Axis::linear_with_ticks(
        "percentile (log scale of 1 / (1 - p))",
        0.0,
        NINES_SHOWN,
        ticks,
    )
}

fn highest(values: impl IntoIterator<Item = f64>) -> f64 {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

fn latency_distribution(runs: &[LabeledRun]) -> Option<Figure> {
    let series: Vec<Series> = runs
        .iter()
        .filter_map(|labeled| {
            let histogram = analysis::client_histogram(&labeled.run);
            let points = analysis::percentile_distribution(&histogram);
            (!points.is_empty()).then(|| (labeled.label.clone(), points))
        })
        .enumerate()
        .map(|(index, (name, points))| Series {
            name,
            points,
            markers: false,
            style: LineStyle::nth(index),
        })
        .collect();
    percentile_figure(
        series,
        "Client latency by percentile",
        "client latency (ms)",
        "latency-distribution.svg",
        "Client latency by percentile",
    )
}

/// The concurrency axis of sweeps: logarithmic (levels usually double), a tick per level.
fn concurrency_axis(sweeps: &[Sweep]) -> Axis {
    let mut levels: Vec<usize> = sweeps
        .iter()
        .flat_map(|sweep| sweep.points.iter().map(|p| p.concurrency.max(1)))
        .collect();
    levels.sort_unstable();
    levels.dedup();
    let low = levels.first().copied().unwrap_or(1) as f64;
    let high = levels.last().copied().unwrap_or(2) as f64;
    let ticks = levels
        .iter()
        .map(|&level| Tick::new(level as f64, level.to_string()))
        .collect();
    // A margin either side, so the first and last points are not drawn on the frame.
    const PADDING: f64 = 1.25;
    Axis::log(
        "concurrency (log scale)",
        low / PADDING,
        high * PADDING,
        ticks,
    )
}

fn series_name(sweep: &Sweep, what: &str) -> String {
    match &sweep.name {
        Some(name) => format!("{name}: {what}"),
        None => what.to_owned(),
    }
}

/// One number of a sweep point, such as its p99.
type PointValue = fn(&analysis::SweepPoint) -> f64;

fn sweep_latency(sweeps: &[Sweep]) -> Option<Figure> {
    if sweeps.is_empty() {
        return None;
    }
    let pickers: [(&str, PointValue); 3] = [
        ("p50", |p| p.p50_ms),
        ("p90", |p| p.p90_ms),
        ("p99", |p| p.p99_ms),
    ];
    let series: Vec<Series> = sweeps
        .iter()
        .enumerate()
        .flat_map(|(sweep_index, sweep)| {
            // A colour per percentile, a dash pattern per sweep: p99 before and after
            // share a colour.
            pickers
                .iter()
                .enumerate()
                .map(move |(percentile_index, &(what, pick))| Series {
                    name: series_name(sweep, what),
                    points: sweep
                        .points
                        .iter()
                        .map(|p| (p.concurrency as f64, pick(p)))
                        .collect(),
                    markers: true,
                    style: LineStyle {
                        colour: percentile_index,
                        dash: sweep_index,
                    },
                })
        })
        .collect();
    let top = highest(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(_, ms)| ms)),
    );
    let chart = LineChart {
        title: "Client latency percentiles against concurrency".to_owned(),
        x: concurrency_axis(sweeps),
        y: Axis::linear("client latency (ms)", 0.0, top),
        series,
    };
    Some(Figure {
        file_name: "sweep-latency.svg".to_owned(),
        caption: "Client latency p50, p90 and p99 against concurrency".to_owned(),
        svg: chart.to_svg(),
    })
}

fn sweep_throughput(sweeps: &[Sweep]) -> Option<Figure> {
    if sweeps.is_empty() {
        return None;
    }
    let series: Vec<Series> = sweeps
        .iter()
        .enumerate()
        .map(|(index, sweep)| Series {
            name: series_name(sweep, "throughput"),
            points: sweep
                .points
                .iter()
                .map(|p| (p.concurrency as f64, p.throughput_per_s))
                .collect(),
            markers: true,
            style: LineStyle::nth(index),
        })
        .collect();
    let top = highest(series.iter().flat_map(|s| s.points.iter().map(|&(_, t)| t)));
    let chart = LineChart {
        title: "Throughput against concurrency".to_owned(),
        x: concurrency_axis(sweeps),
        y: Axis::linear("invocations per second", 0.0, top),
        series,
    };
    Some(Figure {
        file_name: "sweep-throughput.svg".to_owned(),
        caption: "Throughput against concurrency".to_owned(),
        svg: chart.to_svg(),
    })
}

fn box_stats(spread: &Spread) -> BoxStats {
    BoxStats {
        count: spread.count,
        min: spread.min_ms,
        p25: spread.p25_ms,
        p50: spread.p50_ms,
        p75: spread.p75_ms,
        max: spread.max_ms,
    }
}

/// A y axis for values from `low` to `high` ms: logarithmic when they span more than
/// `LOG_SPAN` times (a 150 ms cold start next to 3 ms warm calls would flatten the warm
/// boxes on a linear scale), linear from 0 otherwise.
fn latency_axis(low: f64, high: f64) -> Axis {
    const LOG_SPAN: f64 = 20.0;
    if low > 0.0 && high / low > LOG_SPAN {
        Axis::log_decades("milliseconds (log scale)", low, high)
    } else {
        Axis::linear("milliseconds", 0.0, high)
    }
}

/// File names of per-run figures: the run's position keeps them unique, the label readable.
fn slug(label: &str) -> String {
    let mut slug = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').chars().take(40).collect()
}

fn cold_warm_figure(index: usize, label: &str, split: &ColdWarm) -> Option<Figure> {
    if !split.has_cold_starts() {
        return None;
    }
    let group = |name: &str, cold: Option<Spread>, warm: Option<Spread>| BoxGroup {
        name: name.to_owned(),
        boxes: vec![cold.as_ref().map(box_stats), warm.as_ref().map(box_stats)],
    };
    let groups = vec![
        group("client latency", split.cold_client, split.warm_client),
        group("Lambda duration", split.cold_duration, split.warm_duration),
        group("Init Duration", split.init_duration, None),
    ];
    let present = || groups.iter().flat_map(|g| g.boxes.iter().flatten());
    let low = present().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let high = highest(present().map(|b| b.max));
    let chart = BoxChart {
        title: format!("Cold and warm invocations: {label}"),
        y: latency_axis(low, high),
        series: vec!["cold start".to_owned(), "warm".to_owned()],
        groups,
    };
    let stem = slug(label);
    let file_name = if stem.is_empty() {
        format!("cold-warm-{}.svg", index + 1)
    } else {
        format!("cold-warm-{}-{stem}.svg", index + 1)
    };
    Some(Figure {
        file_name,
        caption: format!("Cold against warm invocations of {label}"),
        svg: chart.to_svg(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::{Run, RunFile};
    use crate::report::fixtures::{run_at, run_of, sample};
    use crate::report::input::label_runs;

    fn figures_of(files: Vec<(&str, Vec<Run>)>) -> Figures {
        let runs = label_runs(
            files
                .into_iter()
                .map(|(name, runs)| (PathBuf::from(name), RunFile::new(runs)))
                .collect(),
        );
        let sweeps = analysis::sweeps(&runs);
        let splits: Vec<ColdWarm> = runs.iter().map(|r| analysis::cold_warm(&r.run)).collect();
        figures(&runs, &sweeps, &splits)
    }

    fn series_names(svg: &str) -> Vec<String> {
        let document = roxmltree::Document::parse(svg).expect("well-formed SVG");
        document
            .descendants()
            .filter(|n| n.attribute("class") == Some("series"))
            .filter_map(|n| n.attribute("data-name").map(str::to_owned))
            .collect()
    }

    fn texts(svg: &str) -> Vec<String> {
        let document = roxmltree::Document::parse(svg).expect("well-formed SVG");
        document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_distribution_plot_has_one_line_per_run_and_a_percentile_axis() {
        let figures = figures_of(vec![
            ("before.json", vec![run_at("c=1", 1, 50)]),
            ("after.json", vec![run_at("c=1", 1, 50)]),
        ]);
        let figure = figures.latency_distribution.expect("a distribution plot");
        assert_eq!(series_names(&figure.svg), ["before: c=1", "after: c=1"]);
        let labels = texts(&figure.svg);
        for tick in ["0%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(labels.iter().any(|t| t == tick), "{tick} in {labels:?}");
        }
        assert!(labels.iter().any(|t| t == "client latency (ms)"));
        // Every series has its point at 0 and at 99.99 %.
        let document = roxmltree::Document::parse(&figure.svg).expect("well-formed SVG");
        for polyline in document
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
        {
            let points = polyline.attribute("points").unwrap_or_default();
            assert_eq!(points.split(' ').count(), 201);
        }
    }

    #[test]
    fn sweep_plots_appear_only_with_two_concurrency_levels() {
        let single = figures_of(vec![("run.json", vec![run_at("c=8", 8, 30)])]);
        assert!(single.sweep_latency.is_none());
        assert!(single.sweep_throughput.is_none());

        let sweep = figures_of(vec![(
            "sweep.json",
            vec![
                run_at("c=1", 1, 30),
                run_at("c=2", 2, 30),
                run_at("c=4", 4, 30),
            ],
        )]);
        let latency = sweep.sweep_latency.expect("a sweep latency plot");
        assert_eq!(series_names(&latency.svg), ["p50", "p90", "p99"]);
        let labels = texts(&latency.svg);
        for level in ["1", "2", "4"] {
            assert!(labels.iter().any(|t| t == level), "{level} in {labels:?}");
        }
        let throughput = sweep.sweep_throughput.expect("a throughput plot");
        assert_eq!(series_names(&throughput.svg), ["throughput"]);
    }

    #[test]
    fn two_sweep_files_give_lines_named_by_file() {
        let figures = figures_of(vec![
            (
                "before.json",
                vec![run_at("c=1", 1, 30), run_at("c=2", 2, 30)],
            ),
            (
                "after.json",
                vec![run_at("c=1", 1, 30), run_at("c=2", 2, 30)],
            ),
        ]);
        let latency = figures.sweep_latency.expect("a sweep plot");
        assert_eq!(
            series_names(&latency.svg),
            [
                "before: p50",
                "before: p90",
                "before: p99",
                "after: p50",
                "after: p90",
                "after: p99"
            ]
        );
        // p99 before and after: one colour, solid against dashed.
        let document = roxmltree::Document::parse(&latency.svg).expect("well-formed SVG");
        let stroke_of = |name: &str| {
            document
                .descendants()
                .find(|n| n.attribute("data-name") == Some(name))
                .and_then(|n| n.children().find(|c| c.has_tag_name("polyline")))
                .map(|line| (line.attribute("stroke"), line.attribute("stroke-dasharray")))
        };
        let (before, after) = (stroke_of("before: p99"), stroke_of("after: p99"));
        assert_eq!(before.map(|s| s.0), after.map(|s| s.0));
        assert_eq!(before.map(|s| s.1), Some(None));
        assert_eq!(after.map(|s| s.1), Some(Some("8 4")));
    }

    #[test]
    fn cold_warm_plots_only_for_runs_with_cold_starts() {
        let warm = run_of(
            "warm/only",
            1,
            (0..10).map(|i| sample(i, 1_000, 0.8, false)).collect(),
        );
        let figures = figures_of(vec![("a.json", vec![run_at("c=2", 2, 40), warm])]);
        assert_eq!(figures.cold_warm.len(), 2);
        assert!(figures.cold_warm[1].is_none());
        let figure = figures.cold_warm[0].as_ref().expect("a cold/warm plot");
        assert_eq!(figure.file_name, "cold-warm-1-c-2.svg");
        let document = roxmltree::Document::parse(&figure.svg).expect("well-formed SVG");
        let boxes: Vec<(&str, &str)> = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("box"))
            .filter_map(|n| Some((n.attribute("data-group")?, n.attribute("data-series")?)))
            .collect();
        assert_eq!(
            boxes,
            [
                ("client latency", "cold start"),
                ("client latency", "warm"),
                ("Lambda duration", "cold start"),
                ("Lambda duration", "warm"),
                ("Init Duration", "cold start"),
            ]
        );
        // 150 ms cold starts next to ~5 ms warm calls: a log axis.
        assert!(
            texts(&figure.svg)
                .iter()
                .any(|t| t == "milliseconds (log scale)")
        );
        // Distribution, breakdown, the two sweep plots (concurrency 2 and 1), one cold/warm
        // plot and a timeline per run.
        assert_eq!(figures.all().count(), 7);
    }

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("before: c=8"), "before-c-8");
        assert_eq!(slug("///"), "");
        assert_eq!(slug("Ünïcode run"), "n-code-run");
    }

    #[test]
    fn the_breakdown_draws_each_segment_and_marks_the_lumped_ones() {
        use crate::report::fixtures::staged_sample;
        let staged = run_of("new", 1, (0..10).map(|i| staged_sample(i, 50.0)).collect());
        let old = run_of(
            "old",
            1,
            (0..10).map(|i| sample(i, 12_000, 9.0, false)).collect(),
        );
        let figures = figures_of(vec![("a.json", vec![staged, old])]);
        let figure = figures.breakdown.expect("a breakdown");
        let document = roxmltree::Document::parse(&figure.svg).expect("well-formed SVG");
        let bars: Vec<&str> = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .filter_map(|n| n.attribute("data-label"))
            .collect();
        assert_eq!(bars, ["new, warm", "old, warm"]);
        let segment = |name: &str| {
            document
                .descendants()
                .find(|n| n.attribute("data-name") == Some(name))
                .and_then(|n| Some((n.attribute("class")?, n.attribute("data-value")?)))
        };
        assert_eq!(segment("Lambda → EC2 network"), Some(("segment", "6.000")));
        assert_eq!(segment("server: resize"), Some(("segment", "8.000")));
        assert_eq!(
            segment("Lambda duration (not split: no server timings)"),
            Some(("segment lumped", "9.000"))
        );
    }

    #[test]
    fn the_timeline_marks_cold_starts_and_errors_apart() {
        let mut run = run_at("c=2", 2, 30);
        run.samples[10].outcome = crate::model::Outcome::Throttled;
        run.samples[10].lambda = None;
        let figures = figures_of(vec![("a.json", vec![run])]);
        let figure = figures.timelines[0].as_ref().expect("a timeline");
        assert_eq!(figure.file_name, "timeline-1-c-2.svg");
        let document = roxmltree::Document::parse(&figure.svg).expect("well-formed SVG");
        let series: Vec<(&str, &str)> = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("series"))
            .filter_map(|n| Some((n.attribute("data-name")?, n.attribute("data-points")?)))
            .collect();
        // Two cold starts (the first two invocations), one throttle, 27 warm.
        assert_eq!(
            series,
            [("warm", "27"), ("cold start", "2"), ("error", "1")]
        );
        let trimmed = {
            let mut run = run_at("t", 1, 5);
            run.samples.clear();
            run
        };
        assert!(figures_of(vec![("b.json", vec![trimmed])]).timelines[0].is_none());
    }

    #[test]
    fn the_memory_sweep_figure_names_its_picks_on_two_axes() {
        use crate::report::fixtures::memory_run;
        use crate::report::memory_sweep::memory_sweeps;
        let runs = label_runs(vec![(
            PathBuf::from("mem.json"),
            RunFile::new(vec![
                memory_run(128, 5, 100.0),
                memory_run(1024, 5, 80.0),
                memory_run(2048, 5, 100.0),
            ]),
        )]);
        let sweeps = memory_sweeps(&runs, &[]);
        let figure = memory_sweep_figure(0, &sweeps[0]);
        assert_eq!(figure.file_name, "memory-sweep-1-mem.svg");
        let document = roxmltree::Document::parse(&figure.svg).expect("well-formed SVG");
        let marks: Vec<&str> = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("mark"))
            .filter_map(|n| n.attribute("data-label"))
            .collect();
        assert_eq!(marks, ["cheapest, balanced", "fastest"]);
        assert_eq!(
            series_names(&figure.svg),
            ["mean (ms)", "p99 (ms)", "USD per 1M"]
        );
        let labels = texts(&figure.svg);
        assert!(
            labels
                .iter()
                .any(|t| t == "cost per million invocations (USD)")
        );
        for size in ["128", "1024", "2048"] {
            assert!(labels.iter().any(|t| t == size), "{size} in {labels:?}");
        }
    }

    #[test]
    fn upload_runs_get_one_line_per_measure() {
        use crate::report::fixtures::upload_run;
        use crate::report::input::{ReportFile, label_all};
        use crate::uploads::UploadRunFile;
        let runs = label_all(vec![(
            PathBuf::from("u.json"),
            ReportFile::Upload(UploadRunFile::new(vec![upload_run(None, None, 10)])),
        )]);
        let figure = upload_distribution(&runs.uploads).expect("a figure");
        assert_eq!(
            series_names(&figure.svg),
            ["to_final", "upload", "trigger", "processing"]
        );
        assert!(upload_distribution(&[]).is_none());
    }
}
