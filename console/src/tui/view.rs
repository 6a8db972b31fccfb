//! Draws the console from its state: header with the target, tabs, the current view, the
//! status line and the help. Nothing here reads a clock or the network, so a recorded state
//! always draws the same screen (the snapshot tests rely on it).

use hdrhistogram::Histogram;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Cell, Clear, Paragraph, Row, Sparkline, Table, Tabs, Wrap,
};

use super::action::Severity;
use super::app::{App, Confirm, LiveRun, Operation, OperationKind, Tab};
use super::palette::Palette;
use crate::lab::units::human_duration;
use hybridlab_bench::model::Outcome;

/// The key map, as `?` shows it and the README lists it.
pub const KEYS: &[(&str, &str)] = &[
    (
        "1-5, Tab",
        "switch view (Stack, Invoke, Logs, S3, DynamoDB)",
    ),
    (
        ":stack :invoke :logs :s3 :db",
        "switch view by name; :q quits",
    ),
    ("?", "this help; Esc closes it"),
    ("q, Ctrl-C", "quit"),
    ("Stack: r", "read the stacks again"),
    ("Stack: Up/Down", "select a stack"),
    ("Stack: n", "bring up a new stack, with live progress"),
    (
        "Stack: N",
        "bring up a new stack with the event-driven pipeline",
    ),
    (
        "Stack: u",
        "bring up the selected stack again (finishes a partial one)",
    ),
    ("Stack: d", "tear the selected stack down (asks first)"),
    ("Stack: Esc", "put away the last up or down's steps"),
    (
        "Invoke: Enter or b",
        "fire a burst of N invocations at concurrency C",
    ),
    ("Invoke: i", "fire one invocation"),
    ("Invoke: + / -", "N ten times more / less"),
    ("Invoke: ] / [", "C twice more / half"),
    (
        "Invoke: o, > / <",
        "open loop at a rate on/off, rate twice / half",
    ),
    (
        "Invoke: e",
        "edit the image URL (Enter sets it, Esc cancels)",
    ),
    ("Invoke: x", "stop the burst; invocations in flight finish"),
    (
        "Invoke: s",
        "save the finished burst for `hybridlab report`",
    ),
    (
        "Logs: / (Enter, Esc)",
        "filter the lines as you type; c clears",
    ),
    (
        "Logs: space or p",
        "pause / resume; new lines are held back",
    ),
    (
        "Logs: Up/Down, Enter",
        "select a line; Enter shows its invocation's lines",
    ),
    (
        "Logs: Esc, r",
        "follow the newest again; read the logs again",
    ),
    (
        "Logs: PgUp/PgDn, Home/End",
        "ten lines up / down; the oldest / follow",
    ),
    (
        "S3: Up/Down",
        "select a folder or an object (its detail reads)",
    ),
    (
        "S3: PgUp/PgDn, Home/End",
        "ten entries up / down; the first / last read",
    ),
    ("S3: Enter, Backspace", "open the folder / go up a level"),
    (
        "S3: b, r",
        "the next bucket (images, artifacts, uploads, processed); reread",
    ),
    ("S3: v", "the object's versions and delete markers"),
    ("S3: c or y", "copy a presigned GET URL (15 minutes)"),
    ("S3: p, Esc", "preview the image (up to 8 MiB); close it"),
    (
        "S3: u",
        "upload a local file into the pipeline (type its path)",
    ),
    ("DynamoDB: Up/Down", "select a row (its JSON shows)"),
    (
        "DynamoDB: PgUp/PgDn, Home/End",
        "ten rows up / down; the first / last",
    ),
    ("DynamoDB: J / K", "scroll the row's JSON down / up"),
    ("DynamoDB: n/Right, p/Left", "next / previous page of rows"),
    ("DynamoDB: r", "read the page again"),
    ("DynamoDB: /", "filter NAME=VALUE, e.g. status=FAILED"),
    (
        "DynamoDB: Enter, Esc",
        "apply the filter (empty clears) / cancel it",
    ),
    ("DynamoDB: o or Enter", "the row's objects in the S3 view"),
];

/// The keys `?` lists over `tab`: the global ones and that view's (all of them do not fit 24
/// rows; the README lists every one).
pub fn keys_for(tab: Tab) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    KEYS.iter()
        .filter(move |(key, _)| match key.split_once(": ") {
            Some((view, _)) => view == tab.title(),
            None => true,
        })
}

pub fn draw(frame: &mut Frame, app: &App, palette: Palette) {
    let [header, tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, app, palette);
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(at, tab)| format!("{} {}", at + 1, tab.title()));
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(palette.selected()),
        tabs,
    );
    match app.tab {
        Tab::Stack => draw_stack(frame, body, app, palette),
        Tab::Invoke => draw_invoke(frame, body, app, palette),
        Tab::Logs => super::logs_pane::draw(frame, body, &app.logs, palette),
        Tab::S3 => super::s3_pane::draw(frame, body, &app.s3, palette),
        Tab::Db => super::db_pane::draw(frame, body, &app.db, palette),
    }
    draw_status(frame, status, app, palette);
    if app.help {
        draw_help(frame, body, app.tab, palette);
    }
    if let Some(confirm) = &app.confirm {
        draw_confirm(frame, body, confirm, app.on_aws, palette);
    }
}

/// A box of `width` x `height` at most, in the middle of `area`.
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_confirm(frame: &mut Frame, area: Rect, confirm: &Confirm, on_aws: bool, palette: Palette) {
    let warn = palette.fg(Color::Red).add_modifier(Modifier::BOLD);
    let lines = match confirm {
        Confirm::Down { stack, typed, .. } if on_aws => vec![
            Line::styled(format!("Tear down stack {stack} on AWS?"), warn),
            Line::from("Every resource of it is deleted: buckets and their objects, table,"),
            Line::from("function, instance, roles, log groups."),
            Line::from(format!(
                "Type the stack id `{stack}` and Enter; Esc keeps it."
            )),
            Line::from(format!("> {typed}")),
        ],
        Confirm::Down { stack, .. } => vec![
            Line::styled(format!("Tear down stack {stack}?"), warn),
            Line::from("Every resource of it is deleted, objects and rows included."),
            Line::from("y tears it down; any other key keeps it."),
        ],
        Confirm::Up { stack, pipeline } => vec![
            Line::styled(
                match (stack, pipeline) {
                    (Some(stack), _) => format!("Bring up stack {stack} on AWS?"),
                    (None, true) => "Bring up a new stack with the pipeline on AWS?".to_owned(),
                    (None, false) => "Bring up a new stack on AWS?".to_owned(),
                },
                warn,
            ),
            Line::from("It is billed while it exists (its instance stops itself after 2 h)."),
            Line::from("y brings it up; any other key does nothing."),
        ],
        Confirm::Quit { live } => vec![
            Line::styled(
                format!("Stacks still live on AWS: {}", live.join(", ")),
                warn,
            ),
            Line::from("They are billed until torn down."),
            Line::from(format!(
                "d tears down {} and quits; q quits anyway; Esc stays.",
                live.first().map_or("", String::as_str)
            )),
        ],
    };
    let popup = centred(area, 76, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" confirm ")),
        popup,
    );
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, palette: Palette) {
    let target_style = if app.on_aws {
        palette.fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        palette.fg(Color::Green).add_modifier(Modifier::BOLD)
    };
    let line = Line::from(vec![
        Span::styled(" hybridlab ", palette.bold()),
        Span::styled(app.target.clone(), target_style),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    let hint = Line::from("? help  q quit ").right_aligned();
    frame.render_widget(Paragraph::new(hint), area);
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App, palette: Palette) {
    let line = if let Some(command) = &app.command {
        Line::from(format!(":{command}"))
    } else if let Some(url) = &app.invoke.editing_url {
        Line::from(format!("image URL: {url}"))
    } else if let Some((severity, text)) = &app.status {
        let style = match severity {
            Severity::Error => palette.fg(Color::Red),
            Severity::Info => palette.fg(Color::Cyan),
        };
        Line::styled(text.clone(), style)
    } else {
        Line::from("")
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame, area: Rect, tab: Tab, palette: Palette) {
    let keys: Vec<_> = keys_for(tab).collect();
    let popup = centred(area, 78, keys.len() as u16 + 2);
    let rows = keys
        .iter()
        .map(|(key, what)| Row::new([Cell::from(*key).style(palette.bold()), Cell::from(*what)]));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Table::new(rows, [Constraint::Length(28), Constraint::Min(10)])
            .block(Block::bordered().title(format!(" keys: everywhere and in {} ", tab.title()))),
        popup,
    );
}

fn draw_stack(frame: &mut Frame, area: Rect, app: &App, palette: Palette) {
    let area = match &app.stack.operation {
        Some(operation) => {
            let wanted = operation.steps.len() as u16 + 3;
            let height = wanted.clamp(5, (area.height / 2).max(5));
            let [stacks, steps] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(height)]).areas(area);
            draw_operation(frame, steps, operation, palette);
            stacks
        }
        None => area,
    };
    let pane = &app.stack;
    if pane.stacks.is_empty() {
        let text = if pane.loading {
            "reading the target's stacks..."
        } else {
            "no hybridlab stack on this target: n brings one up (or `hybridlab up` in a shell, then r)."
        };
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" stacks ")),
            area,
        );
        return;
    }
    let [list, detail] =
        Layout::horizontal([Constraint::Length(24), Constraint::Min(0)]).areas(area);
    let rows = pane.stacks.iter().enumerate().map(|(at, stack)| {
        let state = if stack.complete() {
            "up"
        } else if stack.gone() {
            "gone"
        } else {
            "partial"
        };
        let row = Row::new([stack.stack.to_string(), state.to_owned()]);
        if at == pane.selected {
            row.style(palette.selected())
        } else {
            row
        }
    });
    frame.render_widget(
        Table::new(rows, [Constraint::Length(10), Constraint::Min(4)])
            .block(Block::bordered().title(" stacks ")),
        list,
    );
    let Some(stack) = pane.stacks.get(pane.selected) else {
        return;
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{}  ", stack.stack), palette.bold()),
        Span::raw(format!(
            "region {}  created {}",
            stack.region,
            stack.created_at.as_deref().unwrap_or("?")
        )),
    ])];
    if let Some(instance) = &stack.instance {
        let ttl = instance
            .ttl_left_s
            .map(human_duration)
            .unwrap_or_else(|| "none".to_owned());
        lines.push(Line::from(format!(
            "instance {} {} {}  up {}  TTL left {ttl}",
            instance.id,
            instance.instance_type,
            instance.state,
            human_duration(instance.uptime_s),
        )));
    }
    if let Some(server) = &stack.server {
        let (text, colour) = if server.healthy {
            ("healthy", Color::Green)
        } else {
            ("not answering", Color::Red)
        };
        lines.push(Line::from(vec![
            Span::raw(format!("server {} ", server.endpoint)),
            Span::styled(text, palette.fg(colour)),
        ]));
    }
    lines.push(Line::from(format!(
        "cost ${:.4}/h, ${:.4} so far ({})",
        stack.cost.per_hour_usd, stack.cost.so_far_usd, stack.cost.basis
    )));
    let [summary, resources] = Layout::vertical([
        Constraint::Length(lines.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(detail);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" stack ")),
        summary,
    );
    let rows = stack.resources.iter().map(|resource| {
        let colour = if resource.state == "missing" {
            Color::Red
        } else {
            Color::Green
        };
        Row::new([
            Cell::from(resource.kind.label()),
            Cell::from(resource.name.clone()),
            Cell::from(resource.state.clone()).style(palette.fg(colour)),
            Cell::from(
                resource
                    .age_s
                    .map_or_else(|| "-".to_owned(), human_duration),
            ),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Min(20),
                Constraint::Length(10),
                Constraint::Length(7),
            ],
        )
        .header(Row::new(["kind", "name", "state", "age"]).style(palette.bold()))
        .block(Block::bordered().title(" resources ")),
        resources,
    );
}

/// The steps of an `up` or `down`, the latest at the bottom, with how each went.
fn draw_operation(frame: &mut Frame, area: Rect, operation: &Operation, palette: Palette) {
    use hybridlab_provision::stack::StepStatus;
    let verb = match operation.kind {
        OperationKind::Up => "up",
        OperationKind::Down => "down",
    };
    let count = |status: StepStatus| {
        operation
            .steps
            .iter()
            .filter(|e| e.status == status)
            .count()
    };
    let (state, style) = match &operation.outcome {
        None => ("under way".to_owned(), palette.fg(Color::Yellow)),
        Some(Ok(_)) => (
            "done; Esc puts this away".to_owned(),
            palette.fg(Color::Green),
        ),
        Some(Err(_)) => (
            "FAILED; see the status line".to_owned(),
            palette.fg(Color::Red),
        ),
    };
    let title = Line::from(vec![
        Span::styled(format!(" {verb} {} ", operation.stack), palette.bold()),
        Span::styled(format!("{state} "), style),
    ]);
    let mut lines = vec![Line::from(format!(
        "{} done, {} already in place, {} running, {} failed",
        count(StepStatus::Done),
        count(StepStatus::Skipped),
        count(StepStatus::Started),
        count(StepStatus::Failed)
    ))];
    let rows = usize::from(area.height.saturating_sub(3));
    let first = operation.steps.len().saturating_sub(rows);
    lines.extend(operation.steps[first..].iter().map(|event| {
        let (mark, colour) = match event.status {
            StepStatus::Started => ("..", Color::Yellow),
            StepStatus::Done => ("ok", Color::Green),
            StepStatus::Skipped => ("==", Color::DarkGray),
            StepStatus::Failed => ("!!", Color::Red),
        };
        let took = match event.status {
            StepStatus::Started => String::new(),
            _ => format!(" {:.2}s", event.elapsed().as_secs_f64()),
        };
        Line::from(vec![
            Span::styled(format!("{mark} "), palette.fg(colour)),
            Span::raw(format!("{:<20} {}{took}", event.step, event.resource)),
            Span::styled(
                if event.detail.is_empty() {
                    String::new()
                } else {
                    format!("  {}", event.detail)
                },
                palette.fg(Color::DarkGray),
            ),
        ])
    }));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn draw_invoke(frame: &mut Frame, area: Rect, app: &App, palette: Palette) {
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

fn format_ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::tui::action::{Key, Update};
    use crate::tui::fixtures;
    use hybridlab_bench::stats::new_histogram;

    #[test]
    fn stack_view_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&fixtures::app_with_stack(), 80, 24, true));
    }

    #[test]
    fn stack_view_without_stacks() {
        let mut app = fixtures::app_with_stack();
        app.stack.stacks.clear();
        insta::assert_snapshot!(fixtures::screen(&app, 80, 24, true));
    }

    #[test]
    fn invoke_view_during_a_burst_with_a_previous_run_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&fixtures::app_with_bursts(), 80, 24, true));
    }

    #[test]
    fn invoke_view_scales_up_to_160x48() {
        insta::assert_snapshot!(fixtures::screen(
            &fixtures::app_with_bursts(),
            160,
            48,
            true
        ));
    }

    #[test]
    fn help_over_the_invoke_view() {
        let mut app = fixtures::app_with_bursts();
        app.help = true;
        insta::assert_snapshot!(fixtures::screen(&app, 80, 24, true));
    }

    #[test]
    fn stack_view_while_a_new_stack_comes_up() {
        insta::assert_snapshot!(fixtures::screen(
            &fixtures::app_bringing_up_a_stack(),
            80,
            24,
            true
        ));
    }

    #[test]
    fn tearing_down_on_aws_asks_for_the_stack_id() {
        let mut app = fixtures::app_with_stack();
        app.on_aws = true;
        app.target = "AWS EU-WEST-1".into();
        app.apply(Update::Account(Ok("123456789012".into())));
        app.on_key(Key::Char('d'));
        for c in "k3x9".chars() {
            app.on_key(Key::Char(c));
        }
        insta::assert_snapshot!(fixtures::screen(&app, 80, 24, true));
    }

    #[test]
    fn logs_view_with_two_invocations_at_80x24() {
        let mut app = fixtures::app_with_stack();
        app.tab = Tab::Logs;
        app.logs = crate::tui::logs_pane::tests::pane_with_lines();
        insta::assert_snapshot!(fixtures::screen(&app, 80, 24, true));
        // One invocation's lines, selected from the keyboard, at a larger size.
        for key in [Key::Up, Key::Up, Key::Up, Key::Enter] {
            app.on_key(key);
        }
        insta::assert_snapshot!(fixtures::screen(&app, 120, 30, true));
    }

    #[test]
    fn the_readme_lists_every_key_as_the_help_does() {
        let readme = include_str!("../../../README.md");
        for (key, what) in KEYS {
            let row = format!("| {key} | {what} |");
            assert!(readme.contains(&row), "README.md lacks the row `{row}`");
        }
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        for (width, height) in [(1, 1), (20, 5), (40, 10)] {
            fixtures::screen(&fixtures::app_with_bursts(), width, height, true);
            let mut app = fixtures::app_with_stack();
            app.help = true;
            fixtures::screen(&app, width, height, true);
        }
    }

    #[test]
    fn the_buckets_hold_every_recorded_value_once() {
        let mut histogram = new_histogram();
        for us in [900, 1000, 1100, 2000, 5000, 5000, 9000, 40_000] {
            histogram.record(us).expect("in range");
        }
        let bounds = log_bounds(histogram.min(), histogram.max(), 6);
        assert_eq!(bounds.len(), 6);
        assert!(
            bounds.windows(2).all(|pair| pair[0] < pair[1]),
            "{bounds:?}"
        );
        assert_eq!(format_ms(bounds[5]), "40.0");
        let counts = bucket_counts(&histogram, &bounds);
        assert_eq!(counts.iter().sum::<u64>(), 8);
        assert!(counts[0] >= 1, "the smallest value is in the first bucket");
        // A second run on the same bounds, as the chart draws them side by side: values
        // beyond the last bound are not counted, the rest are, once.
        let mut other = new_histogram();
        for us in [950, 3000, 60_000] {
            other.record(us).expect("in range");
        }
        assert_eq!(bucket_counts(&other, &bounds).iter().sum::<u64>(), 2);
    }

    #[test]
    fn one_value_makes_buckets_without_dividing_by_zero() {
        let mut histogram = new_histogram();
        histogram.record(3000).expect("in range");
        let bounds = log_bounds(histogram.min(), histogram.max(), 4);
        assert_eq!(bucket_counts(&histogram, &bounds).iter().sum::<u64>(), 1);
        assert_eq!(log_bounds(0, 0, 0).len(), 1);
    }
}
