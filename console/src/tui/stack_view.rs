//! The Stack view: every stack on the target with the state of each resource, and the steps
//! of an `up` or a `down` under way.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use super::app::{App, Operation, OperationKind};
use super::mouse::ListRows;
use super::palette::Palette;
use crate::lab::units::human_duration;

/// Draws the view; returns the rows of the stacks' list, if there are stacks.
pub fn draw_stack(frame: &mut Frame, area: Rect, app: &App, palette: Palette) -> Option<ListRows> {
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
        return None;
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
    let block = Block::bordered().title(" stacks ");
    let drawn = ListRows::drawn(block.inner(list), 0, pane.stacks.len());
    frame.render_widget(
        Table::new(rows, [Constraint::Length(10), Constraint::Min(4)]).block(block),
        list,
    );
    let Some(stack) = pane.stacks.get(pane.selected) else {
        return Some(drawn);
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
        if let Some(error) = &instance.user_data_error {
            lines.push(Line::from(vec![
                Span::styled("user-data FAILED ", palette.fg(Color::Red)),
                Span::raw(format!("(console output): {error}")),
            ]));
        }
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
        Constraint::Length(wrapped_rows(&lines, detail.width.saturating_sub(2)) + 2),
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
    Some(drawn)
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
        count(StepStatus::Started) + count(StepStatus::Waiting),
        count(StepStatus::Failed)
    ))];
    let rows = usize::from(area.height.saturating_sub(3));
    let first = operation.steps.len().saturating_sub(rows);
    lines.extend(operation.steps[first..].iter().map(|event| {
        let (mark, colour) = match event.status {
            StepStatus::Started => ("..", Color::Yellow),
            StepStatus::Waiting => ("~~", Color::Yellow),
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

/// How many rows `lines` take, word-wrapped to `width` columns (as the summary's `Paragraph`
/// wraps them), so that a long line (an instance's user-data error) is not cut off.
fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let rows: usize = lines
        .iter()
        .map(|line| {
            let text: String = line
                .spans
                .iter()
                .map(|span| span.content.as_ref())
                .collect();
            let mut rows = 1;
            let mut used = 0;
            // Split at single spaces, so that runs of spaces count as they are drawn.
            for word in text.split(' ') {
                let length = word.chars().count();
                if used == 0 && length == 0 {
                    // A row starts with no blank: trimmed when wrapped.
                    continue;
                }
                let needed = if used == 0 { length } else { used + 1 + length };
                if needed <= width {
                    used = needed;
                } else if length == 0 {
                    // A blank that does not fit ends the row.
                    rows += 1;
                    used = 0;
                } else {
                    // A word longer than the row is broken across rows.
                    rows += usize::from(used > 0) + length.saturating_sub(1) / width;
                    used = (length - 1) % width + 1;
                }
            }
            rows
        })
        .sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}
