//! The Logs view: the selected stack's two log groups merged in time order and followed,
//! each line read for its level, request id, message and fields (the server's JSON, the
//! proxy's runtime lines, Lambda's START/END/REPORT) and shown in columns coloured by level;
//! filtered as you type and by a minimum level, paused and resumed, shown as written on
//! demand, the selected line whole (pretty JSON) below the list, and narrowed to one
//! invocation's lines by its request id (the proxy passes it on to the server, so both halves
//! log it). The reading is `hybridlab logs -f`'s [`LogTail`](crate::lab::logs::tail::LogTail),
//! run by the event loop; the reading of a line and its layout are `lab::logs::line` and
//! `lab::logs::render`, shared with `hybridlab logs`; this module holds what was read and
//! draws it.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::action::{Action, Key, LogsUpdate, Severity, Typed, type_into};
use super::mouse::ListRows;
use super::palette::Palette;
use crate::lab::logs::entry::{LogEntry, LogSource, clock};
use crate::lab::logs::line::{Level, LineShape, LogLine};
use crate::lab::logs::render::{
    REQUEST_ID_WIDTH, SHORT_REQUEST_ID_WIDTH, detail_text, level_column, level_tone,
    line_text_within, printable, request_id_column, text_tone,
};
use crate::lab::logs::tail::TailMode;
use crate::lab::tone::Tone;

/// Lines a page key moves the selection by.
const PAGE_STEP: usize = 10;

/// Lines kept; the oldest go first. Ten thousand lines of a lab's logs are a few megabytes.
pub const MAX_LINES: usize = 20_000;

/// From this many columns inside the border, request ids are shown whole.
const WHOLE_REQUEST_IDS: u16 = 120;

/// One line read, with its number in order of arrival and what it says. Read once, when it
/// arrives: the level filter looks at every line each frame.
#[derive(Debug, Clone)]
struct HeldLine {
    number: u64,
    entry: LogEntry,
    line: LogLine,
}

/// The Logs view's state.
#[derive(Debug, Clone, Default)]
pub struct LogsPane {
    /// Newest last.
    entries: VecDeque<HeldLine>,
    /// Lines ever received: the number the next one gets.
    received: u64,
    /// The follow the lines come from; answers of an older one are ignored.
    generation: u64,
    /// The stack whose logs these are, once its groups are found.
    pub stack: Option<String>,
    pub groups: Vec<String>,
    /// A reader is running for `generation`.
    pub reading: bool,
    pub mode: Option<TailMode>,
    /// While paused, only lines numbered below this are shown; new ones still arrive.
    pub paused_at: Option<u64>,
    /// Shown lines contain this, ignoring ASCII case (empty: every line).
    pub filter: String,
    /// The filter being typed after `/`.
    pub typing_filter: Option<String>,
    /// Shown lines are of this level or more severe (`None`: every line); `L` cycles it.
    pub min_level: Option<Level>,
    /// Lines are shown as written rather than read into columns; `R` toggles it.
    pub raw: bool,
    /// The selected line, by number; `None` follows the newest.
    pub selected: Option<u64>,
    /// Rows of the selected line's detail scrolled past (J and K).
    pub detail_scroll: u16,
}

impl LogsPane {
    /// Called when the view is shown: starts following `stack` unless that is under way.
    pub fn on_enter(&mut self, stack: Option<&str>) -> Option<Action> {
        let same_stack = stack.is_none() || self.stack.as_deref() == stack;
        if self.reading && same_stack {
            return None;
        }
        if !same_stack {
            self.clear();
        }
        self.follow(stack)
    }

    fn follow(&mut self, stack: Option<&str>) -> Option<Action> {
        self.generation += 1;
        self.reading = true;
        if stack.is_some() {
            self.stack = stack.map(str::to_owned);
        }
        Some(Action::FollowLogs {
            stack: stack.map(str::to_owned),
            generation: self.generation,
        })
    }

    /// Stops showing `stack`'s logs once it is torn down: its groups are gone, so what its
    /// reader says from now on (that they are missing) is not news.
    pub fn forget(&mut self, stack: &str) {
        if self.stack.as_deref() == Some(stack) {
            self.generation += 1;
            self.reading = false;
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.stack = None;
        self.groups.clear();
        self.selected = None;
        self.paused_at = None;
    }

    /// Whether keys are being typed into the filter: then every key is the pane's.
    pub fn typing(&self) -> bool {
        self.typing_filter.is_some()
    }

    pub fn on_key(
        &mut self,
        key: Key,
        stack: Option<&str>,
        status: &mut Option<(Severity, String)>,
    ) -> Option<Action> {
        if let Some(typed) = self.typing_filter.as_mut() {
            match type_into(typed, key) {
                Typed::Edited => {}
                Typed::Cancelled => self.typing_filter = None,
                Typed::Submitted => {
                    self.filter = self.typing_filter.take().unwrap_or_default();
                    self.select(None);
                }
            }
            return None;
        }
        match key {
            Key::Char('/') => self.typing_filter = Some(self.filter.clone()),
            Key::Char(' ') | Key::Char('p') => {
                self.paused_at = match self.paused_at {
                    Some(_) => None,
                    None => Some(self.received),
                };
            }
            Key::Char('c') => {
                self.filter.clear();
                self.select(None);
            }
            Key::Char('r') => {
                self.clear();
                return self.follow(stack);
            }
            Key::Char('L') => {
                self.min_level = next_level(self.min_level);
                // A selected line the new level hides is let go of: follow the newest.
                if self.selected_line().is_none() {
                    self.select(None);
                }
                *status = Some((
                    Severity::Info,
                    match self.min_level {
                        Some(level) => format!(
                            "lines of level {} and above; L for the next level",
                            level.label()
                        ),
                        None => "lines of every level; L for ERROR and above".to_owned(),
                    },
                ));
            }
            Key::Char('R') => {
                self.raw = !self.raw;
                *status = Some((
                    Severity::Info,
                    if self.raw {
                        "lines as written; R reads them again"
                    } else {
                        "lines read: level, request id, message and fields; R shows them as written"
                    }
                    .to_owned(),
                ));
            }
            Key::Char('J') => self.detail_scroll = self.detail_scroll.saturating_add(1),
            Key::Char('K') => self.detail_scroll = self.detail_scroll.saturating_sub(1),
            Key::Up => self.select(self.step_back()),
            Key::Down => self.select(self.step_forward()),
            Key::PageUp => {
                for _ in 0..PAGE_STEP {
                    self.select(self.step_back());
                }
            }
            Key::PageDown => {
                for _ in 0..PAGE_STEP {
                    self.select(self.step_forward());
                }
            }
            Key::Home => {
                let oldest = self
                    .entries
                    .iter()
                    .find(|held| self.shown(held))
                    .map(|held| held.number);
                self.select(oldest);
            }
            Key::Esc | Key::End => self.select(None),
            Key::Pick(number) => {
                let number = u64::try_from(number).ok();
                let shown = self
                    .entries
                    .iter()
                    .find(|held| Some(held.number) == number)
                    .is_some_and(|held| self.shown(held));
                if shown {
                    self.select(number);
                }
            }
            Key::Enter => match self
                .selected_line()
                .and_then(|held| held.line.request_id.clone())
            {
                Some(id) => self.narrow_to_invocation(id, status),
                None => {
                    *status = Some((
                        Severity::Error,
                        "select a line with a request id (Up/Down), then Enter".to_owned(),
                    ));
                }
            },
            _ => {}
        }
        None
    }

    /// Shows only the lines of the invocation `request_id`: the function's and the server's,
    /// as the proxy passes the id on.
    fn narrow_to_invocation(
        &mut self,
        request_id: String,
        status: &mut Option<(Severity, String)>,
    ) {
        *status = Some((
            Severity::Info,
            format!(
                "lines of invocation {}; c shows every line again",
                printable(&request_id)
            ),
        ));
        self.filter = request_id;
        self.select(None);
    }

    /// The view opened from elsewhere (the Invoke view's slowest invocations and errors) on
    /// the invocation `request_id` of `stack`: as Enter on one of its lines would, and
    /// following `stack` if it is not already. A pause would hide lines still to come, so it
    /// ends.
    pub fn show_invocation(
        &mut self,
        request_id: String,
        stack: Option<&str>,
        status: &mut Option<(Severity, String)>,
    ) -> Option<Action> {
        let follow = self.on_enter(stack);
        self.paused_at = None;
        self.narrow_to_invocation(request_id, status);
        follow
    }

    /// Selects the line numbered `number` (`None`: follows the newest), its detail from the
    /// top.
    fn select(&mut self, number: Option<u64>) {
        if number != self.selected {
            self.detail_scroll = 0;
        }
        self.selected = number;
    }

    pub fn apply(&mut self, update: LogsUpdate, status: &mut Option<(Severity, String)>) {
        match update {
            LogsUpdate::Opened {
                generation,
                stack,
                groups,
            } if generation == self.generation => {
                self.stack = Some(stack);
                self.groups = groups;
            }
            LogsUpdate::Entries {
                generation,
                entries,
                mode,
            } if generation == self.generation => {
                self.mode = Some(mode);
                self.push(entries);
            }
            LogsUpdate::Notice { generation, text } if generation == self.generation => {
                *status = Some((Severity::Info, text));
            }
            LogsUpdate::Ended { generation, error } if generation == self.generation => {
                self.reading = false;
                if let Some(error) = error {
                    *status = Some((Severity::Error, format!("{error}; r reads again")));
                }
            }
            _ => {}
        }
    }

    /// Adds lines read, dropping the oldest beyond [`MAX_LINES`].
    pub fn push(&mut self, entries: Vec<LogEntry>) {
        for entry in entries {
            let line = LogLine::of(&entry);
            self.entries.push_back(HeldLine {
                number: self.received,
                entry,
                line,
            });
            self.received += 1;
        }
        let excess = self.entries.len().saturating_sub(MAX_LINES);
        self.entries.drain(..excess);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lines that arrived since the pause.
    pub fn held_back(&self) -> u64 {
        self.paused_at
            .map_or(0, |at| self.received.saturating_sub(at))
    }

    fn shown(&self, held: &HeldLine) -> bool {
        self.paused_at.is_none_or(|at| held.number < at)
            && held.line.at_least(self.min_level)
            && matches(&held.entry, &self.filter)
    }

    /// The shown lines, newest first, from the selected one (or the newest) back.
    fn shown_back_from(&self, from: Option<u64>) -> impl Iterator<Item = &HeldLine> {
        self.entries
            .iter()
            .rev()
            .filter(move |held| from.is_none_or(|from| held.number <= from) && self.shown(held))
    }

    /// The selected line, if it is shown.
    fn selected_line(&self) -> Option<&HeldLine> {
        let selected = self.selected?;
        let front = self.entries.front()?.number;
        let at = usize::try_from(selected.checked_sub(front)?).ok()?;
        self.entries.get(at).filter(|held| self.shown(held))
    }

    fn step_back(&self) -> Option<u64> {
        match self.selected {
            None => self.shown_back_from(None).next().map(|held| held.number),
            Some(from) => self
                .shown_back_from(Some(from))
                .nth(1)
                .map(|held| held.number)
                .or(Some(from)),
        }
    }

    /// The next shown line after the selected one; none (following again) after the newest.
    fn step_forward(&self) -> Option<u64> {
        let from = self.selected?;
        self.entries
            .iter()
            .filter(|held| held.number > from && self.shown(held))
            .map(|held| held.number)
            .next()
    }

    /// The `rows` lines to draw, oldest first, ending at the selected line or the newest.
    fn window(&self, rows: usize) -> Vec<&HeldLine> {
        let mut lines: Vec<_> = self.shown_back_from(self.selected).take(rows).collect();
        lines.reverse();
        lines
    }
}

/// The level `L` moves to after `level`: ERROR, WARN, INFO, DEBUG, then every level again.
fn next_level(level: Option<Level>) -> Option<Level> {
    match level {
        None => Some(Level::Error),
        Some(Level::Error) => Some(Level::Warn),
        Some(Level::Warn) => Some(Level::Info),
        Some(Level::Info) => Some(Level::Debug),
        Some(Level::Debug | Level::Trace) => None,
    }
}

/// Whether `entry` contains `filter`, ignoring ASCII case, in its message or its source.
/// Called for many lines each frame, so it allocates nothing.
pub fn matches(entry: &LogEntry, filter: &str) -> bool {
    filter.is_empty()
        || contains_ignore_ascii_case(&entry.message, filter)
        || entry.source.label().eq_ignore_ascii_case(filter)
}

/// Whether `haystack` contains `needle`, ignoring ASCII case; allocates nothing.
pub fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.len() <= haystack.len()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Draws the view; returns the rows of the lines and the number of the line on each.
pub fn draw(frame: &mut Frame, area: Rect, pane: &LogsPane, palette: Palette) -> Option<ListRows> {
    let [main, info] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let selected = pane.selected_line();
    let (lines_area, detail_area) = match selected {
        Some(_) => {
            let height = (main.height * 2 / 5).clamp(5, 16);
            let [lines, detail] =
                Layout::vertical([Constraint::Min(3), Constraint::Length(height)]).areas(main);
            (lines, Some(detail))
        }
        None => (main, None),
    };
    let inner = Block::bordered().inner(lines_area);
    let rows = usize::from(inner.height);
    let window = pane.window(rows);
    let drawn = ListRows {
        area: inner,
        items: window
            .iter()
            .filter_map(|held| usize::try_from(held.number).ok())
            .collect(),
    };
    let layout = RowLayout {
        raw: pane.raw,
        request_id_width: if inner.width >= WHOLE_REQUEST_IDS {
            REQUEST_ID_WIDTH
        } else {
            SHORT_REQUEST_ID_WIDTH
        },
        // Enough to fill the row even where characters are escaped; no more, so a 256 KB
        // line costs a frame no more than a short one.
        text_chars: usize::from(inner.width) * 2,
    };
    let lines: Vec<Line> = window
        .into_iter()
        .map(|held| {
            let line = entry_line(held, layout, palette);
            if Some(held.number) == pane.selected {
                line.style(palette.selected())
            } else {
                line
            }
        })
        .collect();
    let body = if lines.is_empty() {
        let text = if pane.is_empty() {
            if pane.reading {
                "no line in the last 10 minutes yet; invoke the function (view 2) and lines appear here"
            } else {
                "not reading: r reads the selected stack's logs"
            }
        } else if pane.min_level.is_some() {
            "no line of this level matches; L changes the level, c clears the filter"
        } else {
            "no line matches the filter; c clears it"
        };
        Paragraph::new(text)
    } else {
        Paragraph::new(lines)
    };
    frame.render_widget(body.block(Block::bordered().title(title(pane))), lines_area);
    if let (Some(held), Some(detail_area)) = (selected, detail_area) {
        draw_detail(frame, detail_area, held, pane.detail_scroll);
    }

    let mut parts = vec![Span::raw(format!(" {} lines", pane.len()))];
    if let Some(mode) = pane.mode {
        parts.push(Span::raw(match mode {
            TailMode::LiveTail => "  live tail",
            TailMode::Polling => "  polling every 1s",
        }));
    }
    if pane.paused_at.is_some() {
        parts.push(Span::styled(
            format!(
                "  PAUSED, {} new held back (space resumes)",
                pane.held_back()
            ),
            palette.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    match &pane.typing_filter {
        Some(typed) => parts.push(Span::styled(format!("  /{typed}"), palette.bold())),
        None if !pane.filter.is_empty() => {
            parts.push(Span::styled(
                format!("  filter: {}", pane.filter),
                palette.bold(),
            ));
        }
        None => {}
    }
    if pane.selected.is_some() {
        parts.push(Span::raw("  Enter: this invocation's lines, Esc: follow"));
    }
    frame.render_widget(Paragraph::new(Line::from(parts)), info);
    Some(drawn)
}

/// The list's title: whose logs, the level shown and whether lines are as written.
fn title(pane: &LogsPane) -> String {
    let mut title = match (&pane.stack, pane.reading) {
        (_, true) if pane.groups.is_empty() => " logs: finding the log groups...".to_owned(),
        (Some(stack), true) => format!(" logs of {stack}: lambda and ec2, merged"),
        (Some(stack), false) => format!(" logs of {stack} (not following)"),
        (None, _) => " logs".to_owned(),
    };
    if let Some(level) = pane.min_level {
        title.push_str(&format!(", {} and above", level.label()));
    }
    if pane.raw {
        title.push_str(", as written");
    }
    title.push(' ');
    title
}

/// The selected line whole: pretty JSON, or the line as written, wrapped.
fn draw_detail(frame: &mut Frame, area: Rect, held: &HeldLine, scroll: u16) {
    let what = if held.line.shape == LineShape::Json {
        "as JSON"
    } else {
        "as written"
    };
    let title = format!(
        " {} line {what} (J/K scroll), stream {} ",
        held.entry.source.label(),
        held.entry.stream
    );
    frame.render_widget(
        Paragraph::new(detail_text(&held.entry.message))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(Block::bordered().title(printable(&title).into_owned())),
        area,
    );
}

/// How a row is laid out at the list's width.
#[derive(Debug, Clone, Copy)]
struct RowLayout {
    raw: bool,
    request_id_width: usize,
    /// The most characters of text a row gets.
    text_chars: usize,
}

/// One line on one row: clock, source in its colour, then either the level, the request id
/// and the text (a REPORT line as its parsed fields, highlighted), or the message as written.
/// A message of several lines is joined.
fn entry_line(held: &HeldLine, layout: RowLayout, palette: Palette) -> Line<'static> {
    let (entry, line) = (&held.entry, &held.line);
    let source_colour = match entry.source {
        LogSource::Lambda => Color::Cyan,
        LogSource::Ec2 => Color::Yellow,
    };
    let mut spans = vec![
        Span::styled(clock(entry.timestamp_ms), palette.fg(Color::DarkGray)),
        Span::raw(" "),
        Span::styled(
            format!("{:<6}", entry.source.label()),
            palette.fg(source_colour),
        ),
        Span::raw(" "),
    ];
    if layout.raw {
        let message: String = entry
            .message
            .trim_end()
            .chars()
            .take(layout.text_chars)
            .collect();
        spans.push(Span::raw(one_row(&printable(&message))));
        return Line::from(spans);
    }
    let level_style = line.level.map_or_else(Style::default, |level| {
        tone_style(palette, level_tone(level)).add_modifier(Modifier::BOLD)
    });
    spans.extend([
        Span::styled(level_column(line), level_style),
        Span::raw(" "),
        Span::styled(
            request_id_column(line, layout.request_id_width),
            palette.fg(Color::Magenta),
        ),
        Span::raw(" "),
    ]);
    let text_style = match (line.shape, text_tone(line)) {
        (LineShape::Report, Some(tone)) => tone_style(palette, tone).add_modifier(Modifier::BOLD),
        (_, Some(tone)) => tone_style(palette, tone),
        (_, None) => Style::default(),
    };
    spans.push(Span::styled(
        one_row(&line_text_within(line, layout.text_chars)),
        text_style,
    ));
    Line::from(spans)
}

/// `text` on one row: newlines as ` ⏎ `, tabs as a space (a terminal cell has no tab stop).
fn one_row(text: &str) -> String {
    text.replace('\n', " ⏎ ").replace('\t', " ")
}

fn tone_style(palette: Palette, tone: Tone) -> Style {
    palette.fg(match tone {
        Tone::Good => Color::Green,
        Tone::Bad => Color::Red,
        Tone::Warn => Color::Yellow,
        Tone::Dim => Color::DarkGray,
        Tone::Accent => Color::Cyan,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lab::logs::entry::LogGroup;
    use crate::tui::app::Tab;
    use crate::tui::fixtures;

    fn entry(source: LogSource, at_ms: i64, message: &str) -> LogEntry {
        let group = LogGroup {
            source,
            name: match source {
                LogSource::Lambda => "/aws/lambda/hybridlab-proxy-k3x9q2ma".into(),
                LogSource::Ec2 => "/hybridlab/k3x9q2ma/ec2-server".into(),
            },
            arn: None,
        };
        let stream = match source {
            LogSource::Lambda => "2026/12/06/[$LATEST]d0bc74d540a548d6a04a06e5a739159d",
            LogSource::Ec2 => "i-5e20b1a0961b645e5",
        };
        LogEntry::new(&group, stream, at_ms, None, None, message)
    }

    /// A pane following stack k3x9q2ma that has read `entries`.
    fn pane_with(entries: Vec<LogEntry>) -> LogsPane {
        let mut pane = LogsPane::default();
        pane.on_enter(Some("k3x9q2ma"));
        let generation = pane.generation;
        let mut status = None;
        pane.apply(
            LogsUpdate::Opened {
                generation,
                stack: "k3x9q2ma".into(),
                groups: vec!["/aws/lambda/hybridlab-proxy-k3x9q2ma".into()],
            },
            &mut status,
        );
        pane.apply(
            LogsUpdate::Entries {
                generation,
                entries,
                mode: TailMode::Polling,
            },
            &mut status,
        );
        pane
    }

    /// A pane following stack k3x9q2ma with two invocations' lines, four each: START, the
    /// server's `processed`, END and REPORT (short request ids, which other views' tests
    /// name).
    pub(crate) fn pane_with_lines() -> LogsPane {
        let t = 1_795_000_000_000;
        let mut entries = Vec::new();
        for (at, id) in [(0, "3f1c-aa"), (120, "7d2e-bb")] {
            entries.extend([
                entry(LogSource::Lambda, t + at, &format!("START RequestId: {id} Version: $LATEST\n")),
                entry(
                    LogSource::Ec2,
                    t + at + 5,
                    &format!(r#"{{"timestamp":"2026-11-19T17:06:40.005Z","level":"INFO","fields":{{"message":"processed","width":320,"height":200,"total_ms":48.2}},"target":"hybridlab_ec2_server::process","span":{{"request_id":"{id}","name":"process_image"}}}}"#),
                ),
                entry(LogSource::Lambda, t + at + 60, &format!("END RequestId: {id}\n")),
                entry(
                    LogSource::Lambda,
                    t + at + 60,
                    &format!("REPORT RequestId: {id}\tDuration: 55.10 ms\tBilled Duration: 56 ms\tMemory Size: 128 MB\tMax Memory Used: 21 MB\t\n"),
                ),
            ]);
        }
        pane_with(entries)
    }

    const OK_ID: &str = "dbd6be08-b597-4650-840b-aba33b1a7dd3";
    const FAILED_ID: &str = "346ed171-5731-4a18-9aba-e3cefadc55f4";
    const NO_URL_ID: &str = "e4c55bed-8fba-4351-b43a-95d9bff3af4c";

    /// The lines of a sandbox stack's two groups as `hybridlab logs --json` read them: the
    /// server starting, a health check, an invocation, one whose image answered 404 and one
    /// without an image URL (START, END and REPORT as the sandbox writes them).
    pub(crate) fn pane_with_real_lines() -> LogsPane {
        use LogSource::{Ec2, Lambda};
        let lines: Vec<(LogSource, i64, String)> = vec![
            (Ec2, 1_796_576_933_005, r#"{"timestamp":"2026-12-06T17:08:53.005622Z","level":"INFO","fields":{"message":"decode budget","workers":2,"decode_memory_mib":14463,"download_memory_mib":3615},"target":"hybridlab_ec2_server"}"#.into()),
            (Ec2, 1_796_576_933_006, r#"{"timestamp":"2026-12-06T17:08:53.006131Z","level":"INFO","fields":{"message":"image server listening","address":"127.0.0.1:37511","bucket":"hybridlab-images-ox3xg3gm","table":"hybridlab-images-ox3xg3gm","uploads_bucket":"none","version":"0.1.0"},"target":"hybridlab_ec2_server"}"#.into()),
            (Ec2, 1_796_576_933_006, r#"{"timestamp":"2026-12-06T17:08:53.006402Z","level":"INFO","fields":{"message":"connection limits","max_connections":1024,"max_per_client":128,"response_write_timeout_ms":"30000","descriptors":20000,"tls":true},"target":"hybridlab_ec2_server"}"#.into()),
            (Ec2, 1_796_576_933_240, r#"{"timestamp":"2026-12-06T17:08:53.240657Z","level":"INFO","fields":{"message":"finished processing request","latency":"0 ms","status":200},"target":"tower_http::trace::on_response","span":{"method":"GET","path":"/health","request_id":"","name":"http"}}"#.into()),
            (Lambda, 1_796_576_935_782, format!("START RequestId: {OK_ID} Version: $LATEST")),
            (Ec2, 1_796_576_935_883, format!(r#"{{"timestamp":"2026-12-06T17:08:55.883208Z","level":"INFO","fields":{{"message":"downloaded","bytes":36715,"download_ms":2.153}},"target":"hybridlab_ec2_server::process","span":{{"request_id":"{OK_ID}","name":"process_image"}}}}"#)),
            (Ec2, 1_796_576_935_887, format!(r#"{{"timestamp":"2026-12-06T17:08:55.887422Z","level":"INFO","fields":{{"message":"decode ended","decode_ms":3.711,"peak_estimate_mib":6,"ok":true}},"target":"hybridlab_ec2_server::process","span":{{"request_id":"{OK_ID}","name":"process_image"}}}}"#)),
            (Lambda, 1_796_576_935_972, format!(r#" INFO Lambda runtime invoke{{requestId="{OK_ID}" xrayTraceId="Root=1-dbd6be08-dbd6be08b5974650840baba33b1a7dd3;Sampled=0"}}: answered status=200 cold_start=true total_ms=188.029968 ec2_round_trip_ms=187.878994"#)),
            (Lambda, 1_796_576_935_972, format!("END RequestId: {OK_ID}")),
            (Lambda, 1_796_576_935_972, format!("REPORT RequestId: {OK_ID}\tDuration: 190.12 ms\tBilled Duration: 194 ms\tMemory Size: 256 MB\tMax Memory Used: 15 MB\tInit Duration: 3.43 ms\t")),
            (Ec2, 1_796_576_935_972, format!(r#"{{"timestamp":"2026-12-06T17:08:55.969523Z","level":"INFO","fields":{{"message":"processed","image_id":"01a24c54-7fd3-704f-8f89-f8e2a68e9e23","width":320,"height":200,"total_ms":88.528}},"target":"hybridlab_ec2_server::process","span":{{"request_id":"{OK_ID}","name":"process_image"}}}}"#)),
            (Ec2, 1_796_576_935_972, format!(r#"{{"timestamp":"2026-12-06T17:08:55.969868Z","level":"INFO","fields":{{"message":"finished processing request","latency":"89 ms","status":200}},"target":"tower_http::trace::on_response","span":{{"method":"POST","path":"/process-image","request_id":"{OK_ID}","name":"http"}}}}"#)),
            (Lambda, 1_796_576_937_620, format!("START RequestId: {FAILED_ID} Version: $LATEST")),
            (Ec2, 1_796_576_937_624, format!(r#"{{"timestamp":"2026-12-06T17:08:57.624598Z","level":"WARN","fields":{{"message":"request failed","error":"download_failed","message":"the image host answered HTTP 404"}},"target":"hybridlab_ec2_server","span":{{"request_id":"{FAILED_ID}","name":"process_image"}}}}"#)),
            (Ec2, 1_796_576_937_624, format!(r#"{{"timestamp":"2026-12-06T17:08:57.624775Z","level":"ERROR","fields":{{"message":"response failed","classification":"Status code: 502 Bad Gateway","latency":"1 ms"}},"target":"tower_http::trace::on_failure","span":{{"method":"POST","path":"/process-image","request_id":"{FAILED_ID}","name":"http"}}}}"#)),
            (Lambda, 1_796_576_937_625, format!(r#" INFO Lambda runtime invoke{{requestId="{FAILED_ID}" xrayTraceId="Root=1-346ed171-346ed17157314a189abae3cefadc55f4;Sampled=0"}}: answered status=502 cold_start=false total_ms=3.224102 ec2_round_trip_ms=3.103522"#)),
            (Lambda, 1_796_576_937_625, format!("END RequestId: {FAILED_ID}")),
            (Lambda, 1_796_576_937_625, format!("REPORT RequestId: {FAILED_ID}\tDuration: 4.02 ms\tBilled Duration: 5 ms\tMemory Size: 256 MB\tMax Memory Used: 15 MB\t")),
            (Lambda, 1_796_576_939_607, format!("START RequestId: {NO_URL_ID} Version: $LATEST")),
            (Lambda, 1_796_576_939_610, format!(r#" WARN Lambda runtime invoke{{requestId="{NO_URL_ID}" xrayTraceId="Root=1-e4c55bed-e4c55bed8fba4351b43a95d9bff3af4c;Sampled=0"}}: invocation failed error="invalid_request" the event has no `image_url`: send {{"image_url": "https://..."}}"#)),
            (Lambda, 1_796_576_939_610, format!("END RequestId: {NO_URL_ID}")),
            (Lambda, 1_796_576_939_610, format!("REPORT RequestId: {NO_URL_ID}\tDuration: 0.41 ms\tBilled Duration: 1 ms\tMemory Size: 256 MB\tMax Memory Used: 15 MB\t")),
        ];
        pane_with(
            lines
                .into_iter()
                .map(|(source, at, message)| entry(source, at, &message))
                .collect(),
        )
    }

    fn logs_app(pane: LogsPane) -> crate::tui::app::App {
        let mut app = fixtures::app_with_stack();
        app.tab = Tab::Logs;
        app.logs = pane;
        app
    }

    fn shown_numbers(pane: &LogsPane) -> Vec<u64> {
        pane.window(100).iter().map(|held| held.number).collect()
    }

    fn selected_request_id(pane: &LogsPane) -> Option<&str> {
        pane.selected_line()?.line.request_id.as_deref()
    }

    #[test]
    fn json_and_runtime_lines_are_drawn_as_level_request_id_and_message_at_80x24() {
        let screen = fixtures::screen(&logs_app(pane_with_real_lines()), 80, 24, true);
        let text = screen.to_string();
        for shown in [
            "INFO  dbd6be08 processed image_id=01a24c54",
            "INFO  dbd6be08 answered status=200 cold_start=true",
            "INFO  dbd6be08 finished processing request latency=\"89 ms\"",
            "WARN  346ed171 request failed error=download_failed",
            "ERROR 346ed171 response failed",
            "WARN  e4c55bed invocation failed",
            "lambda       e4c55bed REPORT duration 0.41 ms",
            "lambda       e4c55bed START Version: $LATEST",
        ] {
            assert!(text.contains(shown), "`{shown}` in\n{text}");
        }
        for hidden in ["{\"timestamp\"", "Lambda runtime invoke", "xrayTraceId"] {
            assert!(!text.contains(hidden), "no `{hidden}` in\n{text}");
        }
        // Colour by level: WARN yellow, ERROR red.
        let (column, row) = fixtures::find(&screen, "ERROR 346ed171").expect("drawn");
        let cell = screen.buffer().cell((column, row)).expect("a cell");
        assert_eq!(cell.fg, Color::Red);
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn json_and_runtime_lines_are_drawn_with_whole_request_ids_at_200x60() {
        let screen = fixtures::screen(&logs_app(pane_with_real_lines()), 200, 60, true);
        let text = screen.to_string();
        assert!(
            text.contains(&format!("INFO  {OK_ID} finished processing request latency=\"89 ms\" status=200 method=POST path=/process-image")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{FAILED_ID} request failed error=download_failed message=\"the image host answered HTTP 404\"")),
            "{text}"
        );
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn a_selected_line_shows_whole_below_the_list_as_pretty_json() {
        let mut pane = pane_with_real_lines();
        let mut status = None;
        // From the newest up to the server's WARN of the failed invocation.
        for _ in 0..9 {
            pane.on_key(Key::Up, None, &mut status);
        }
        assert_eq!(selected_request_id(&pane), Some(FAILED_ID));
        let screen = fixtures::screen(&logs_app(pane.clone()), 80, 24, true);
        let text = screen.to_string();
        assert!(text.contains("ec2 line as JSON (J/K scroll)"), "{text}");
        assert!(text.contains(r#"  "level": "WARN","#), "{text}");
        insta::assert_snapshot!(screen);
        // J scrolls to the second `message`, which a JSON map would have lost.
        for _ in 0..4 {
            pane.on_key(Key::Char('J'), None, &mut status);
        }
        let text = fixtures::screen(&logs_app(pane.clone()), 80, 24, true).to_string();
        assert!(
            text.contains(r#""message": "the image host answered HTTP 404""#),
            "{text}"
        );
        pane.on_key(Key::Up, None, &mut status);
        assert_eq!(pane.detail_scroll, 0, "a new selection shows its top");
    }

    #[test]
    fn l_cycles_the_minimum_level_and_r_shows_the_lines_as_written() {
        let mut pane = pane_with_real_lines();
        let mut status = None;
        pane.on_key(Key::Char('L'), None, &mut status);
        assert_eq!(pane.min_level, Some(Level::Error));
        assert_eq!(pane.window(100).len(), 1, "the server's one ERROR");
        pane.on_key(Key::Char('L'), None, &mut status);
        assert_eq!(pane.min_level, Some(Level::Warn));
        assert!(matches!(&status, Some((Severity::Info, text)) if text.contains("WARN and above")));
        let screen = fixtures::screen(&logs_app(pane.clone()), 80, 24, true);
        let text = screen.to_string();
        assert!(text.contains("merged, WARN and above"), "{text}");
        assert!(!text.contains(" INFO "), "{text}");
        assert!(
            !text.contains("START"),
            "lines without a level count as INFO: {text}"
        );
        insta::assert_snapshot!(screen);
        assert_eq!(pane.window(100).len(), 3);
        pane.on_key(Key::Char('R'), None, &mut status);
        let text = fixtures::screen(&logs_app(pane.clone()), 80, 24, true).to_string();
        assert!(text.contains(", as written"), "{text}");
        assert!(
            text.contains(r#"{"timestamp":"2026-12-06T17:08:57.624598Z","level""#),
            "{text}"
        );
        assert!(
            text.contains(r#" WARN Lambda runtime invoke{requestId="#),
            "{text}"
        );
        for level in [Level::Info, Level::Debug] {
            pane.on_key(Key::Char('L'), None, &mut status);
            assert_eq!(pane.min_level, Some(level));
        }
        pane.on_key(Key::Char('L'), None, &mut status);
        assert_eq!(pane.min_level, None, "every level again");
        assert_eq!(pane.window(100).len(), 22);
    }

    #[test]
    fn control_characters_in_a_line_are_drawn_escaped() {
        let pane = pane_with(vec![
            entry(
                LogSource::Ec2,
                1_796_576_933_005,
                r#"{"level":"ERROR","fields":{"message":"bad\u001b[2J\u001b]0;title\u0007 \u202eend","path":"/x\r"}}"#,
            ),
            entry(
                LogSource::Lambda,
                1_796_576_933_006,
                "plain\x1b[31m red\ttab\nnext",
            ),
        ]);
        let screen = fixtures::screen(&logs_app(pane), 120, 24, true);
        let text = screen.to_string();
        assert!(
            text.contains(r#"bad\u{1b}[2J\u{1b}]0;title\u{7} \u{202e}end path="/x\r""#),
            "{text}"
        );
        assert!(text.contains(r"plain\u{1b}[31m red tab ⏎ next"), "{text}");
        for cell in screen.buffer().content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "{:?} drawn",
                cell.symbol()
            );
        }
    }

    #[test]
    fn enter_on_a_runtime_line_or_a_json_line_shows_only_its_invocation() {
        let mut pane = pane_with_real_lines();
        let mut status = None;
        // Newest first: REPORT, END, the runtime's WARN (its only id is in the span).
        for _ in 0..3 {
            pane.on_key(Key::Up, None, &mut status);
        }
        assert_eq!(
            pane.selected_line().map(|held| held.line.shape),
            Some(LineShape::Text)
        );
        pane.on_key(Key::Enter, None, &mut status);
        assert_eq!(pane.filter, NO_URL_ID);
        assert_eq!(
            shown_numbers(&pane),
            [18, 19, 20, 21],
            "START, WARN, END, REPORT"
        );
        pane.on_key(Key::Char('c'), None, &mut status);
        // The server's `processed`, whose id is in its JSON span: both halves' lines.
        for _ in 0..12 {
            pane.on_key(Key::Up, None, &mut status);
        }
        assert_eq!(selected_request_id(&pane), Some(OK_ID));
        pane.on_key(Key::Enter, None, &mut status);
        assert_eq!(shown_numbers(&pane), [4, 5, 6, 7, 8, 9, 10, 11]);
        // A line without one says what to do.
        pane.on_key(Key::Char('c'), None, &mut status);
        pane.on_key(Key::Home, None, &mut status);
        pane.on_key(Key::Enter, None, &mut status);
        assert!(matches!(&status, Some((Severity::Error, text)) if text.contains("request id")));
    }

    #[test]
    fn enter_on_a_line_shows_only_its_invocation() {
        let mut pane = pane_with_lines();
        let mut status = None;
        // From the newest (the second REPORT) up to the second invocation's server line.
        for _ in 0..3 {
            pane.on_key(Key::Up, None, &mut status);
        }
        assert_eq!(selected_request_id(&pane), Some("7d2e-bb"));
        pane.on_key(Key::Enter, None, &mut status);
        assert_eq!(pane.filter, "7d2e-bb");
        assert_eq!(
            shown_numbers(&pane),
            [4, 5, 6, 7],
            "the four lines of that invocation"
        );
        pane.on_key(Key::Char('c'), None, &mut status);
        assert_eq!(pane.window(100).len(), 8);
    }

    #[test]
    fn page_keys_and_home_move_through_the_shown_lines() {
        let mut pane = pane_with_lines();
        let mut status = None;
        pane.on_key(Key::Home, None, &mut status);
        assert_eq!(pane.selected, Some(0), "the oldest line");
        pane.on_key(Key::PageDown, None, &mut status);
        assert_eq!(pane.selected, None, "past the newest: following again");
        pane.on_key(Key::PageUp, None, &mut status);
        assert_eq!(
            pane.selected,
            Some(0),
            "ten up from the newest of eight is the oldest"
        );
        pane.on_key(Key::End, None, &mut status);
        assert_eq!(pane.selected, None);
    }

    #[test]
    fn a_level_that_hides_the_selected_line_lets_go_of_it() {
        let mut pane = pane_with_real_lines();
        let mut status = None;
        pane.on_key(Key::Home, None, &mut status);
        assert_eq!(pane.selected, Some(0));
        pane.on_key(Key::Char('L'), None, &mut status);
        assert_eq!(pane.selected, None, "an INFO line under ERROR and above");
    }

    #[test]
    fn a_pause_holds_new_lines_back_until_resumed() {
        let mut pane = pane_with_lines();
        let mut status = None;
        pane.on_key(Key::Char(' '), None, &mut status);
        pane.push(vec![entry(LogSource::Ec2, 0, "late")]);
        assert_eq!(pane.held_back(), 1);
        assert_eq!(pane.window(100).len(), 8);
        pane.on_key(Key::Char(' '), None, &mut status);
        assert_eq!(pane.window(100).len(), 9);
        assert_eq!(pane.window(1)[0].entry.message, "late");
    }

    #[test]
    fn the_filter_is_typed_then_applied_and_ignores_case() {
        let mut pane = pane_with_lines();
        let mut status = None;
        for key in [
            Key::Char('/'),
            Key::Char('E'),
            Key::Char('N'),
            Key::Char('D'),
        ] {
            pane.on_key(key, None, &mut status);
        }
        assert!(pane.typing());
        assert_eq!(pane.window(100).len(), 8, "not applied while typing");
        pane.on_key(Key::Enter, None, &mut status);
        // `END RequestId` twice; nothing else holds `end`.
        assert_eq!(pane.window(100).len(), 2);
    }

    #[test]
    fn old_lines_go_first_and_answers_of_an_old_follow_are_dropped() {
        let mut pane = pane_with_lines();
        let mut status = None;
        let stale = pane.generation;
        pane.on_key(Key::Char('r'), Some("k3x9q2ma"), &mut status);
        pane.apply(
            LogsUpdate::Entries {
                generation: stale,
                entries: vec![entry(LogSource::Ec2, 0, "stale")],
                mode: TailMode::Polling,
            },
            &mut status,
        );
        assert!(
            pane.is_empty(),
            "r starts over; the old reader's lines are not shown"
        );
        pane.push(
            (0..MAX_LINES + 5)
                .map(|i| entry(LogSource::Ec2, 0, &i.to_string()))
                .collect(),
        );
        assert_eq!(pane.len(), MAX_LINES);
        assert_eq!(pane.window(1)[0].entry.message, (MAX_LINES + 4).to_string());
    }

    #[test]
    fn a_torn_down_stack_is_forgotten_and_its_reader_no_longer_heard() {
        let mut pane = pane_with_lines();
        let mut status = None;
        let generation = pane.generation;
        pane.forget("zz81pp0c");
        assert_eq!(pane.len(), 8, "another stack's teardown changes nothing");
        pane.forget("k3x9q2ma");
        assert!(pane.is_empty() && !pane.reading);
        pane.apply(
            LogsUpdate::Ended {
                generation,
                error: Some("the log group is missing".into()),
            },
            &mut status,
        );
        assert_eq!(status, None, "the old reader's error is not shown");
        assert!(matches!(
            pane.on_enter(Some("k3x9q2ma")),
            Some(Action::FollowLogs { .. })
        ));
    }

    #[test]
    fn a_failed_read_says_so_and_what_to_do() {
        let mut pane = LogsPane::default();
        let mut status = None;
        let Some(Action::FollowLogs { generation, .. }) = pane.on_enter(Some("k3x9q2ma")) else {
            panic!("entering the view starts reading");
        };
        assert_eq!(pane.on_enter(Some("k3x9q2ma")), None, "one reader");
        pane.apply(
            LogsUpdate::Ended {
                generation,
                error: Some("stack `k3x9q2ma` is not deployed".into()),
            },
            &mut status,
        );
        assert!(!pane.reading);
        assert!(
            matches!(&status, Some((Severity::Error, text)) if text.ends_with("r reads again"))
        );
        assert!(matches!(
            pane.on_enter(Some("k3x9q2ma")),
            Some(Action::FollowLogs { .. })
        ));
    }
}
