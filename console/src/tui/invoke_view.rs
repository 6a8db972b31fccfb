//! The Invoke view: a burst's settings and progress; the client-latency histogram beside the
//! previous run's, and the percentiles of both; where the time of an invocation goes (a bar
//! of each stage's p50 or p99, Lambda's REPORT, the proxy's and the server's timings), every
//! measure's percentiles, cold and warm apart; the slowest invocations and the latest errors,
//! one of which Enter opens in the Logs view; invocations and p99 per second. Everything is
//! drawn from what [`LiveRun`] folded in as the samples came, never from the samples.

use hdrhistogram::Histogram;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Cell, Paragraph, Row, Sparkline, Table, TableState,
};

use super::app::{App, InvokePane, InvokePanel, LiveRun};
use super::mouse::ListRows;
use super::palette::Palette;
use super::run_stats::{Measure, NotedInvocation};
use hybridlab_bench::model::Outcome;

/// Rows of the view from which everything is drawn at once; below, the latency panels and
/// the breakdown take turns (`v`).
pub const FULL_HEIGHT: u16 = 37;

/// Rows of the table of measures: one a measure, its header and its borders.
const TABLE_HEIGHT: u16 = Measure::ALL.len() as u16 + 3;

/// From this width the table counts each measure's invocations and the list shows request
/// ids whole and errors.
const WIDE: u16 = 160;

/// Draws the view; returns the rows of the list of slowest invocations and errors, where it
/// is drawn.
pub fn draw_invoke(frame: &mut Frame, area: Rect, app: &App, palette: Palette) -> Option<ListRows> {
    let pane = &app.invoke;
    if area.height >= FULL_HEIGHT {
        let bar_rows = 2;
        let bar_height = bar_box_height(area.width, bar_rows);
        let lower = area
            .height
            // The histogram keeps 12 rows before the list gets more than the table needs.
            .saturating_sub(4 + bar_height + 12 + 5)
            // Up to every noted invocation: the list's header, 20 rows and its borders.
            .clamp(TABLE_HEIGHT, TABLE_HEIGHT + 8);
        let [settings, bar, middle, lower, bottom] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Length(bar_height),
            Constraint::Min(8),
            Constraint::Length(lower),
            Constraint::Length(5),
        ])
        .areas(area);
        draw_settings(frame, settings, pane, false, palette);
        draw_bar(frame, bar, pane, bar_rows, false, palette);
        draw_latency(frame, middle, pane, palette);
        let list = draw_measures_and_list(frame, lower, pane, palette);
        draw_throughput(frame, bottom, pane, palette);
        return list;
    }
    match pane.panel {
        InvokePanel::Latency => {
            let [settings, middle, bottom] = Layout::vertical([
                Constraint::Length(4),
                Constraint::Min(8),
                Constraint::Length(5),
            ])
            .areas(area);
            draw_settings(frame, settings, pane, true, palette);
            draw_latency(frame, middle, pane, palette);
            draw_throughput(frame, bottom, pane, palette);
            None
        }
        InvokePanel::Breakdown => {
            let bar_rows = 1;
            let [bar, lower] = Layout::vertical([
                Constraint::Length(bar_box_height(area.width, bar_rows)),
                Constraint::Min(0),
            ])
            .areas(area);
            draw_bar(frame, bar, pane, bar_rows, true, palette);
            draw_measures_and_list(frame, lower, pane, palette)
        }
    }
}

fn draw_settings(
    frame: &mut Frame,
    area: Rect,
    pane: &InvokePane,
    compact: bool,
    palette: Palette,
) {
    let state = match &pane.current {
        Some(run) if !run.finished => format!(
            "running {}/{} on {}",
            run.done(),
            run.settings.invocations,
            run.function.as_deref().unwrap_or("...")
        ),
        // While the list has Enter, b is the key that fires.
        Some(_) if pane.list_focus => "finished; b fires again".to_owned(),
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
    let mut block = Block::bordered().title(" burst ");
    if compact {
        block = block.title(Line::from(" v: where the time goes ").right_aligned());
    }
    frame.render_widget(Paragraph::new(text).block(block), area);
}

fn draw_latency(frame: &mut Frame, area: Rect, pane: &InvokePane, palette: Palette) {
    let [chart, table] =
        Layout::horizontal([Constraint::Min(30), Constraint::Length(40)]).areas(area);
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
}

/// Invocations per second, the p99 of each second, and the outcomes.
fn draw_throughput(frame: &mut Frame, area: Rect, pane: &InvokePane, palette: Palette) {
    let [rate, p99, counts] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(40),
    ])
    .areas(area);
    let run = pane.current.as_ref();
    // The latest seconds that fit: a long run scrolls left.
    let columns = usize::from(rate.width.saturating_sub(2));
    let per_second: &[u64] = run.map_or(&[], |run| {
        let all = run.per_second.as_slice();
        &all[all.len().saturating_sub(columns)..]
    });
    let throughput = run.map_or(0.0, LiveRun::throughput);
    let title = fitting(
        rate.width,
        format!(" invocations/s, now {throughput:.0}/s "),
        format!(" now {throughput:.0}/s "),
    );
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(title))
            .style(palette.fg(Color::Green))
            .data(per_second),
        rate,
    );
    let columns = usize::from(p99.width.saturating_sub(2));
    let p99_per_second = run.map_or_else(Vec::new, |run| run.p99_per_second.last(columns));
    let last = p99_per_second
        .last()
        .map_or_else(|| "-".to_owned(), |us| format_ms(*us));
    let title = fitting(
        p99.width,
        format!(" p99 ms of each second, last {last} "),
        format!(" p99/s, last {last} "),
    );
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(title))
            .style(palette.fg(Color::Magenta))
            .data(&p99_per_second),
        p99,
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

/// `long` if it fits a box `width` wide, else `short`.
fn fitting(width: u16, long: String, short: String) -> String {
    if long.chars().count() + 2 <= usize::from(width) {
        long
    } else {
        short
    }
}

/// A segment of the bar: its colour, and the glyph it is filled with (alternate segments
/// differ in glyph too, so the bar reads without colour).
fn segment_style(segment: Measure, palette: Palette) -> (Style, &'static str) {
    let colour = match segment {
        Measure::Overhead => Color::DarkGray,
        Measure::Init => Color::Magenta,
        Measure::Proxy => Color::Blue,
        Measure::Network => Color::Yellow,
        Measure::Download => Color::Cyan,
        Measure::Decode => Color::Green,
        Measure::Resize => Color::Red,
        // Orange, slate blue: the 16 colours have no more that read on both themes.
        Measure::Encode => Color::Indexed(208),
        Measure::S3 => Color::Indexed(99),
        Measure::DynamoDb | Measure::Client | Measure::Lambda => Color::White,
    };
    let at = Measure::SEGMENTS
        .iter()
        .position(|s| *s == segment)
        .unwrap_or(0);
    (palette.fg(colour), if at % 2 == 0 { "█" } else { "▓" })
}

/// Each segment's value (microseconds) in the bar the pane asks for.
fn segments(pane: &InvokePane) -> Vec<(Measure, Option<u64>)> {
    let q = pane.bar_quantile.value();
    Measure::SEGMENTS
        .iter()
        .map(|segment| {
            let value = pane
                .current
                .as_ref()
                .and_then(|run| run.breakdown.segment_at(pane.class, *segment, q));
            (*segment, value)
        })
        .collect()
}

/// One legend entry: the segment's swatch, its name and its value.
fn legend_entry(segment: Measure, value: Option<u64>, palette: Palette) -> Vec<Span<'static>> {
    let (style, glyph) = segment_style(segment, palette);
    vec![
        Span::styled(glyph.repeat(2), style),
        Span::raw(format!(
            " {} {}",
            segment.label(),
            value.map_or_else(|| "-".to_owned(), format_ms)
        )),
    ]
}

/// The legend's entries in rows of `width`, each entry whole.
fn legend_rows(entries: Vec<Vec<Span<'static>>>, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width.max(1));
    let mut rows: Vec<Line> = Vec::new();
    let mut row: Vec<Span> = Vec::new();
    let mut used = 0;
    for entry in entries {
        let wide: usize = entry.iter().map(Span::width).sum();
        if used > 0 && used + 2 + wide > width {
            rows.push(Line::from(std::mem::take(&mut row)));
            used = 0;
        }
        if used > 0 {
            row.push(Span::raw("  "));
            used += 2;
        }
        used += wide;
        row.extend(entry);
    }
    if !row.is_empty() {
        rows.push(Line::from(row));
    }
    rows
}

/// The bar's box: borders, the bar and the legend's rows at the widest values (`1234.5`).
fn bar_box_height(width: u16, bar_rows: u16) -> u16 {
    let entries = Measure::SEGMENTS
        .iter()
        .map(|segment| legend_entry(*segment, Some(99_999), Palette::new(false)))
        .collect();
    let legend = legend_rows(entries, width.saturating_sub(2)).len() as u16;
    2 + bar_rows + legend
}

/// How many of `width` cells each value gets, in proportion, the cells adding up to `width`
/// (largest remainder first).
pub fn cells(values: &[u64], width: u16) -> Vec<u16> {
    let total: u64 = values.iter().sum();
    if total == 0 {
        return vec![0; values.len()];
    }
    let width = u64::from(width);
    let mut given: Vec<u64> = values.iter().map(|v| v * width / total).collect();
    let mut left = width - given.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..values.len()).collect();
    by_remainder.sort_by_key(|&at| std::cmp::Reverse(values[at] * width % total));
    for at in by_remainder {
        if left == 0 {
            break;
        }
        given[at] += 1;
        left -= 1;
    }
    given
        .into_iter()
        .map(|cells| u16::try_from(cells).unwrap_or(u16::MAX))
        .collect()
}

/// Where the time goes: a stacked bar of each segment's quantile, and its legend.
fn draw_bar(
    frame: &mut Frame,
    area: Rect,
    pane: &InvokePane,
    bar_rows: u16,
    compact: bool,
    palette: Palette,
) {
    let q = pane.bar_quantile;
    let segments = segments(pane);
    let sum: u64 = segments.iter().filter_map(|(_, value)| *value).sum();
    let client = pane
        .current
        .as_ref()
        .and_then(|run| run.breakdown.at(pane.class, Measure::Client, q.value()));
    let title = match client {
        Some(client) => format!(
            " where the time goes: {q} of each stage, {} ms together; client {q} {} ms ",
            format_ms(sum),
            format_ms(client),
            q = q.label()
        ),
        None => format!(" where the time goes: {} of each stage ", q.label()),
    };
    let other = q.toggled().label();
    let hint = format!(
        " {} invocations  c: {}  p: {other}{} ",
        pane.class.label(),
        pane.class.next().label(),
        if compact { "  v: latency" } else { "" }
    );
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(hint).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [bar, legend] =
        Layout::vertical([Constraint::Length(bar_rows), Constraint::Min(0)]).areas(inner);
    if sum == 0 {
        frame.render_widget(
            Paragraph::new("no REPORT nor stage timings yet: the bar needs answered invocations"),
            bar,
        );
    } else {
        let values: Vec<u64> = segments.iter().map(|(_, v)| v.unwrap_or(0)).collect();
        let spans: Vec<Span> = segments
            .iter()
            .zip(cells(&values, bar.width))
            .filter(|(_, cells)| *cells > 0)
            .map(|((segment, _), cells)| {
                let (style, glyph) = segment_style(*segment, palette);
                Span::styled(glyph.repeat(usize::from(cells)), style)
            })
            .collect();
        let line = Line::from(spans);
        frame.render_widget(Paragraph::new(vec![line; usize::from(bar_rows)]), bar);
    }
    let entries = segments
        .iter()
        .map(|(segment, value)| legend_entry(*segment, *value, palette))
        .collect();
    frame.render_widget(Paragraph::new(legend_rows(entries, legend.width)), legend);
}

/// The table of measures beside the list of slowest invocations and errors.
fn draw_measures_and_list(
    frame: &mut Frame,
    area: Rect,
    pane: &InvokePane,
    palette: Palette,
) -> Option<ListRows> {
    let wide = area.width >= WIDE;
    // The measure's name (its swatch and 8 letters), the count, four values of 5 and the
    // spaces between them.
    let table_width = if wide {
        11 + 9 + 4 * 6 + 2
    } else {
        11 + 4 * 6 + 2
    };
    let [table, list] =
        Layout::horizontal([Constraint::Length(table_width), Constraint::Min(0)]).areas(area);
    draw_measures(frame, table, pane, wide, palette);
    draw_list(frame, list, pane, palette)
}

/// Every measure's p50, p90, p99 and maximum, of the invocations of the class chosen.
fn draw_measures(frame: &mut Frame, area: Rect, pane: &InvokePane, wide: bool, palette: Palette) {
    let run = pane.current.as_ref();
    let quantiles = [0.5, 0.9, 0.99, 1.0];
    let rows: Vec<Row> = Measure::ALL
        .iter()
        .map(|measure| {
            let histogram = run.map(|run| run.breakdown.histogram(pane.class, *measure));
            let swatch = if Measure::SEGMENTS.contains(measure) {
                let (style, glyph) = segment_style(*measure, palette);
                Span::styled(glyph.repeat(2), style)
            } else {
                Span::raw("  ")
            };
            let mut cells = vec![Cell::from(Line::from(vec![
                swatch,
                Span::raw(format!(" {}", measure.label())),
            ]))];
            if wide {
                cells.push(Cell::from(histogram.map_or(0, Histogram::len).to_string()));
            }
            cells.extend(quantiles.iter().map(|q| {
                Cell::from(match histogram.filter(|h| !h.is_empty()) {
                    Some(h) => format_ms(h.value_at_quantile(*q)),
                    None => "-".to_owned(),
                })
            }));
            Row::new(cells)
        })
        .collect();
    let mut header = vec![format!("{} ms", pane.class.label())];
    let mut widths = vec![Constraint::Length(11)];
    if wide {
        header.push("n".to_owned());
        widths.push(Constraint::Length(8));
    }
    header.extend(["p50", "p90", "p99", "max"].map(str::to_owned));
    widths.extend([Constraint::Length(5); 4]);
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(palette.bold()))
            .block(Block::bordered().title(" measures ").title_bottom(
                Line::from(format!(" c: {} ", pane.class.next().label())).right_aligned(),
            )),
        area,
    );
}

/// The outcome as the list names it, in nine columns at most.
fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Throttled => "throttled",
        Outcome::FunctionError => "fn error",
        Outcome::Timeout => "timeout",
        Outcome::Ec2Error => "ec2 error",
        Outcome::ClientError => "client",
    }
}

/// The slowest invocations, then the latest errors: Up/Down select one, Enter opens its
/// logs.
fn draw_list(
    frame: &mut Frame,
    area: Rect,
    pane: &InvokePane,
    palette: Palette,
) -> Option<ListRows> {
    let Some(run) = pane.current.as_ref().filter(|run| !run.notable.is_empty()) else {
        frame.render_widget(
            Paragraph::new("no invocation yet")
                .block(Block::bordered().title(" slowest invocations and errors ")),
            area,
        );
        return None;
    };
    let notable = &run.notable;
    let inner_width = area.width.saturating_sub(2);
    // A request id whole, and the error beside it, where they fit.
    let whole_ids = inner_width >= 72;
    let id_width: u16 = if whole_ids { 36 } else { 8 };
    let row = |noted: &NotedInvocation| {
        let id = noted.request_id.as_deref().map_or("-", |id| {
            if whole_ids {
                id
            } else {
                id.get(..8).unwrap_or(id)
            }
        });
        let outcome_style = if noted.outcome == Outcome::Ok {
            Style::default()
        } else {
            palette.fg(Color::Red)
        };
        let mut cells = vec![
            Cell::from(format!("#{}", noted.seq)),
            Cell::from(format_ms(noted.latency_us)),
            Cell::from(outcome_label(noted.outcome)).style(outcome_style),
            Cell::from(if noted.cold { "cold" } else { "" }),
            Cell::from(id.to_owned()),
        ];
        if whole_ids {
            cells.push(Cell::from(noted.error.clone().unwrap_or_default()));
        }
        Row::new(cells)
    };
    let rows: Vec<Row> = notable
        .slowest()
        .iter()
        .chain(notable.errors())
        .map(row)
        .collect();
    let count = rows.len();
    let mut header = vec![
        "seq",
        "ms",
        "outcome",
        "",
        if whole_ids { "request id" } else { "req id" },
    ];
    let mut widths = vec![
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(4),
        Constraint::Length(id_width),
    ];
    if whole_ids {
        header.push("error");
        widths.push(Constraint::Min(10));
    }
    let title = format!(
        " slowest {} of {}, last {} errors ",
        notable.slowest().len(),
        run.done(),
        notable.error_count()
    );
    let hint = if pane.list_focus {
        " Enter: its logs  Esc: back "
    } else {
        " Down: select "
    };
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(hint).right_aligned());
    let inner = block.inner(area);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(palette.bold()))
        .row_highlight_style(palette.selected())
        .highlight_symbol("> ")
        .block(block);
    let mut state = TableState::default().with_selected(pane.list_focus.then_some(pane.selected));
    frame.render_stateful_widget(table, area, &mut state);
    // Under the header row.
    let body = Rect {
        y: inner.y.saturating_add(1),
        height: inner.height.saturating_sub(1),
        ..inner
    };
    Some(ListRows::drawn(body, state.offset(), count))
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
