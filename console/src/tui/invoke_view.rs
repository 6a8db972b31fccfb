//! The Invoke view: a burst's settings, its progress, the latency histogram beside the
//! previous run's, and the percentiles of both.

use hdrhistogram::Histogram;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Row, Sparkline, Table};

use super::app::{App, LiveRun};
use super::palette::Palette;
use hybridlab_bench::model::Outcome;

pub fn draw_invoke(frame: &mut Frame, area: Rect, app: &App, palette: Palette) {
    let pane = &app.invoke;
    let [settings, middle, bottom] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(8),
        Constraint::Length(5),
    ])
    .areas(area);
    let state = match &pane.current {
        Some(run) if !run.finished => format!(
            "running {}/{} on {}",
            run.done(),
            run.settings.invocations,
            run.function.as_deref().unwrap_or("...")
        ),
        Some(_) => "finished; Enter fires again".to_owned(),
        None => "Enter fires a burst, i one invocation".to_owned(),
    };
    let text = vec![
        Line::from(vec![
            Span::styled(
                match pane.settings.rate {
                    Some(rate) => format!(
                        "next: N {}  {rate}/s open loop, at most {} in flight   ",
                        pane.settings.invocations, pane.settings.concurrency
                    ),
                    None => format!(
                        "next: N {}  C {}   ",
                        pane.settings.invocations, pane.settings.concurrency
                    ),
                },
                palette.bold(),
            ),
            Span::raw(state),
        ]),
        Line::from(format!("image {}", pane.settings.image_url)),
    ];
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" burst ")),
        settings,
    );

    let [chart, table] =
        Layout::horizontal([Constraint::Min(30), Constraint::Length(40)]).areas(middle);
    match &pane.current {
        Some(run) if !run.latency.is_empty() => {
            let previous = pane.previous.as_ref().filter(|p| !p.latency.is_empty());
            let runs: Vec<&Histogram<u64>> = std::iter::once(&run.latency)
                .chain(previous.map(|p| &p.latency))
                .collect();
            let low = runs.iter().map(|h| h.min()).min().unwrap_or(1);
            let high = runs.iter().map(|h| h.max()).max().unwrap_or(1);
            let groups = usize::from(chart.width.saturating_sub(2) / 7).clamp(1, 12);
            let bounds = log_bounds(low, high, groups);
            let counts: Vec<Vec<u64>> = runs.iter().map(|h| bucket_counts(h, &bounds)).collect();
            let styles = [palette.fg(Color::Cyan), palette.fg(Color::DarkGray)];
            let mut chart_widget = BarChart::default()
                .bar_width(if previous.is_some() { 3 } else { 6 })
                .bar_gap(0)
                .group_gap(1)
                .block(Block::bordered().title(if previous.is_some() {
                    " latency ms: this run | previous "
                } else {
                    " client latency, ms (upper bound) "
                }));
            for (at, bound) in bounds.iter().enumerate() {
                let bars: Vec<Bar> = counts
                    .iter()
                    .zip(styles)
                    .map(|(counts, style)| {
                        let bar = Bar::default().value(counts[at]).style(style);
                        // Three columns cannot hold a count; the pair is read by height.
                        if previous.is_some() {
                            bar.text_value(String::new())
                        } else {
                            bar
                        }
                    })
                    .collect();
                chart_widget = chart_widget.data(
                    BarGroup::default()
                        .label(Line::from(format_ms(*bound)))
                        .bars(&bars),
                );
            }
            frame.render_widget(chart_widget, chart);
        }
        _ => frame.render_widget(
            Paragraph::new("no invocation yet").block(Block::bordered().title(" client latency ")),
            chart,
        ),
    }
    frame.render_widget(
        percentile_table(pane.current.as_ref(), pane.previous.as_ref(), palette),
        table,
    );

    let [spark, counts] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(40)]).areas(bottom);
    let per_second: &[u64] = pane
        .current
        .as_ref()
        .map_or(&[], |run| run.per_second.as_slice());
    let throughput = pane.current.as_ref().map_or(0.0, LiveRun::throughput);
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(format!(" invocations/s, now {throughput:.0}/s ")))
            .style(palette.fg(Color::Green))
            .data(per_second),
        spark,
    );
    let text: Vec<Line> = match &pane.current {
        Some(run) => vec![
            Line::from(format!(
                "ok {}  throttled {}  fn error {}",
                run.count(Outcome::Ok),
                run.count(Outcome::Throttled),
                run.count(Outcome::FunctionError)
            )),
            Line::from(format!(
                "timeout {}  ec2 error {}  client {}",
                run.count(Outcome::Timeout),
                run.count(Outcome::Ec2Error),
                run.count(Outcome::ClientError)
            )),
            Line::from(format!(
                "cold {}  warm {}",
                run.cold_starts,
                run.done().saturating_sub(run.cold_starts)
            )),
        ],
        None => vec![],
    };
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" outcomes ")),
        counts,
    );
}

/// Client-latency percentiles of the run, and of the previous one beside it.
fn percentile_table<'a>(
    current: Option<&LiveRun>,
    previous: Option<&LiveRun>,
    palette: Palette,
) -> Table<'a> {
    let quantiles = [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("max", 1.0),
    ];
    let value = |run: Option<&LiveRun>, q: f64| -> String {
        match run {
            Some(run) if !run.latency.is_empty() => {
                format!("{:.2}", run.latency.value_at_quantile(q) as f64 / 1000.0)
            }
            _ => "-".to_owned(),
        }
    };
    let rows: Vec<Row> = quantiles
        .iter()
        .map(|(name, q)| Row::new([(*name).to_owned(), value(current, *q), value(previous, *q)]))
        .collect();
    Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(12),
        ],
    )
    .header(Row::new(["ms", "this run", "previous"]).style(palette.bold()))
    .block(Block::bordered().title(" percentiles "))
}

/// The upper bounds of `buckets` buckets of equal width on a log scale from `low` to `high`
/// (microseconds); the last bound is `high`, so every value in the range has a bucket.
pub fn log_bounds(low: u64, high: u64, buckets: usize) -> Vec<u64> {
    let buckets = buckets.max(1);
    let low_f = low.max(1) as f64;
    let high = high.max(low);
    let ratio = (high.max(1) as f64 / low_f).powf(1.0 / buckets as f64);
    (1..=buckets)
        .map(|at| {
            if at == buckets {
                high
            } else {
                (low_f * ratio.powi(at as i32)).round() as u64
            }
        })
        .collect()
}

/// How many values of `histogram` fall in each bucket, a bucket ending at its bound and
/// starting after the previous one.
pub fn bucket_counts(histogram: &Histogram<u64>, bounds: &[u64]) -> Vec<u64> {
    let mut below = 0u64;
    bounds
        .iter()
        .map(|&bound| {
            let up_to = histogram.count_between(0, bound);
            let count = up_to.saturating_sub(below);
            below = below.max(up_to);
            count
        })
        .collect()
}

pub fn format_ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}
