//! The Logs view: the selected stack's two log groups merged in time order and followed,
//! coloured by source, filtered as you type, paused and resumed, and narrowed to one
//! invocation's lines by its request id (the proxy passes it on to the server, so both halves
//! log it). The reading is `hybridlab logs -f`'s [`LogTail`](crate::lab::logs::tail::LogTail),
//! run by the event loop; this module holds what was read and draws it.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::action::{Action, Key, LogsUpdate, Severity, Typed, type_into};
use super::palette::Palette;
use crate::lab::logs::entry::{LogEntry, LogSource, clock, report_summary};
use crate::lab::logs::tail::TailMode;

/// Lines a page key moves the selection by.
const PAGE_STEP: usize = 10;

/// Lines kept; the oldest go first. Ten thousand lines of a lab's logs are a few megabytes.
pub const MAX_LINES: usize = 20_000;

/// The Logs view's state.
#[derive(Debug, Clone, Default)]
pub struct LogsPane {
    /// Newest last, each with its number in order of arrival.
    entries: VecDeque<(u64, LogEntry)>,
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
    /// The selected line, by number; `None` follows the newest.
    pub selected: Option<u64>,
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
                    self.selected = None;
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
                self.selected = None;
            }
            Key::Char('r') => {
                self.clear();
                return self.follow(stack);
            }
            Key::Up => self.selected = self.step_back(),
            Key::Down => self.selected = self.step_forward(),
            Key::PageUp => {
                for _ in 0..PAGE_STEP {
                    self.selected = self.step_back();
                }
            }
            Key::PageDown => {
                for _ in 0..PAGE_STEP {
                    self.selected = self.step_forward();
                }
            }
            Key::Home => {
                self.selected = self
                    .entries
                    .iter()
                    .find(|(number, entry)| self.shown(*number, entry))
                    .map(|(number, _)| *number);
            }
            Key::Esc | Key::End => self.selected = None,
            Key::Enter => match self.selected_entry().and_then(request_id) {
                Some(id) => {
                    *status = Some((
                        Severity::Info,
                        format!("lines of invocation {id}; c shows every line again"),
                    ));
                    self.filter = id.to_owned();
                    self.selected = None;
                }
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
            self.entries.push_back((self.received, entry));
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

    fn shown(&self, number: u64, entry: &LogEntry) -> bool {
        self.paused_at.is_none_or(|at| number < at) && matches(entry, &self.filter)
    }

    /// The shown lines, newest first, from the selected one (or the newest) back.
    fn shown_back_from(&self, from: Option<u64>) -> impl Iterator<Item = &(u64, LogEntry)> {
        self.entries.iter().rev().filter(move |(number, entry)| {
            from.is_none_or(|from| *number <= from) && self.shown(*number, entry)
        })
    }

    fn selected_entry(&self) -> Option<&LogEntry> {
        let selected = self.selected?;
        let front = self.entries.front()?.0;
        let at = usize::try_from(selected.checked_sub(front)?).ok()?;
        self.entries.get(at).map(|(_, entry)| entry)
    }

    fn step_back(&self) -> Option<u64> {
        match self.selected {
            None => self.shown_back_from(None).next().map(|(n, _)| *n),
            Some(from) => self
                .shown_back_from(Some(from))
                .nth(1)
                .map(|(n, _)| *n)
                .or(Some(from)),
        }
    }

    /// The next shown line after the selected one; none (following again) after the newest.
    fn step_forward(&self) -> Option<u64> {
        let from = self.selected?;
        self.entries
            .iter()
            .filter(|(number, entry)| *number > from && self.shown(*number, entry))
            .map(|(number, _)| *number)
            .next()
    }

    /// The `rows` lines to draw, oldest first, ending at the selected line or the newest.
    fn window(&self, rows: usize) -> Vec<&(u64, LogEntry)> {
        let mut lines: Vec<_> = self.shown_back_from(self.selected).take(rows).collect();
        lines.reverse();
        lines
    }
}

/// Whether `entry` contains `filter`, ignoring ASCII case, in its message or its source.
/// Called for many lines each frame, so it allocates nothing.
pub fn matches(entry: &LogEntry, filter: &str) -> bool {
    filter.is_empty()
        || contains_ignore_ascii_case(&entry.message, filter)
        || entry.source.label().eq_ignore_ascii_case(filter)
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.len() <= haystack.len()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// The request id a line carries: Lambda's `START/END/REPORT RequestId: <id>`, or the
/// server's JSON `"request_id":"<id>"`.
pub fn request_id(entry: &LogEntry) -> Option<&str> {
    if let Some(report) = &entry.report {
        return Some(report.request_id.as_str());
    }
    let message = entry.message.as_str();
    if let Some((_, rest)) = message.split_once("RequestId: ") {
        return rest.split_whitespace().next();
    }
    let (_, rest) = message.split_once("\"request_id\":\"")?;
    rest.split('"').next().filter(|id| !id.is_empty())
}

pub fn draw(frame: &mut Frame, area: Rect, pane: &LogsPane, palette: Palette) {
    let [lines_area, info] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let rows = usize::from(lines_area.height.saturating_sub(2));
    let lines: Vec<Line> = pane
        .window(rows)
        .into_iter()
        .map(|(number, entry)| {
            let line = entry_line(entry, palette);
            if Some(*number) == pane.selected {
                line.style(palette.selected())
            } else {
                line
            }
        })
        .collect();
    let title = match (&pane.stack, pane.reading) {
        (_, true) if pane.groups.is_empty() => " logs: finding the log groups... ".to_owned(),
        (Some(stack), true) => format!(" logs of {stack}: lambda and ec2, merged "),
        (Some(stack), false) => format!(" logs of {stack} (not following) "),
        (None, _) => " logs ".to_owned(),
    };
    let body = if lines.is_empty() {
        let text = if pane.is_empty() {
            if pane.reading {
                "no line in the last 10 minutes yet; invoke the function (view 2) and lines appear here"
            } else {
                "not reading: r reads the selected stack's logs"
            }
        } else {
            "no line matches the filter; c clears it"
        };
        Paragraph::new(text)
    } else {
        Paragraph::new(lines)
    };
    frame.render_widget(body.block(Block::bordered().title(title)), lines_area);

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
}

/// One entry on one row: clock, source in its colour, and the message (a REPORT line as its
/// parsed fields, highlighted; a message of several lines joined).
fn entry_line(entry: &LogEntry, palette: Palette) -> Line<'static> {
    let (source_colour, message) = match entry.source {
        LogSource::Lambda => (Color::Cyan, entry.message.trim_end()),
        LogSource::Ec2 => (Color::Yellow, entry.message.trim_end()),
    };
    let (text, style) = match &entry.report {
        Some(report) => {
            let colour = if report.status.is_some() {
                Color::Red
            } else {
                Color::Green
            };
            (
                report_summary(report),
                palette.fg(colour).add_modifier(Modifier::BOLD),
            )
        }
        None => (message.replace('\n', " ⏎ "), Style::default()),
    };
    Line::from(vec![
        Span::styled(clock(entry.timestamp_ms), palette.fg(Color::DarkGray)),
        Span::raw(" "),
        Span::styled(
            format!("{:<6}", entry.source.label()),
            palette.fg(source_colour),
        ),
        Span::raw(" "),
        Span::styled(text, style),
    ])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lab::logs::entry::LogGroup;

    fn entry(source: LogSource, at_ms: i64, message: &str) -> LogEntry {
        let group = LogGroup {
            source,
            name: match source {
                LogSource::Lambda => "/aws/lambda/hybridlab-proxy-k3x9q2ma".into(),
                LogSource::Ec2 => "/hybridlab/k3x9q2ma/ec2-server".into(),
            },
            arn: None,
        };
        LogEntry::new(&group, "stream", at_ms, None, None, message)
    }

    /// A pane following stack k3x9q2ma with two invocations' lines.
    pub(crate) fn pane_with_lines() -> LogsPane {
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
        let t = 1_795_000_000_000;
        let mut entries = Vec::new();
        for (at, id) in [(0, "3f1c-aa"), (120, "7d2e-bb")] {
            entries.extend([
                entry(LogSource::Lambda, t + at, &format!("START RequestId: {id} Version: $LATEST\n")),
                entry(
                    LogSource::Ec2,
                    t + at + 5,
                    &format!(r#"{{"level":"INFO","message":"processed","request_id":"{id}","total_ms":48.2}}"#),
                ),
                entry(LogSource::Lambda, t + at + 60, &format!("END RequestId: {id}\n")),
                entry(
                    LogSource::Lambda,
                    t + at + 60,
                    &format!("REPORT RequestId: {id}\tDuration: 55.10 ms\tBilled Duration: 56 ms\tMemory Size: 128 MB\tMax Memory Used: 21 MB\t\n"),
                ),
            ]);
        }
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

    #[test]
    fn request_ids_come_from_both_halves() {
        let lambda = entry(
            LogSource::Lambda,
            0,
            "START RequestId: ab-12 Version: $LATEST",
        );
        assert_eq!(request_id(&lambda), Some("ab-12"));
        let server = entry(
            LogSource::Ec2,
            0,
            r#"{"message":"x","request_id":"ab-12","status":200}"#,
        );
        assert_eq!(request_id(&server), Some("ab-12"));
        assert_eq!(request_id(&entry(LogSource::Ec2, 0, "listening")), None);
    }

    #[test]
    fn enter_on_a_line_shows_only_its_invocation() {
        let mut pane = pane_with_lines();
        let mut status = None;
        // From the newest (the second REPORT) up to the second invocation's server line.
        for _ in 0..3 {
            pane.on_key(Key::Up, None, &mut status);
        }
        assert_eq!(
            request_id(pane.selected_entry().expect("a selection")),
            Some("7d2e-bb")
        );
        pane.on_key(Key::Enter, None, &mut status);
        assert_eq!(pane.filter, "7d2e-bb");
        let shown: Vec<_> = pane.window(100).iter().map(|(n, _)| *n).collect();
        assert_eq!(shown, [4, 5, 6, 7], "the four lines of that invocation");
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
    fn a_pause_holds_new_lines_back_until_resumed() {
        let mut pane = pane_with_lines();
        let mut status = None;
        pane.on_key(Key::Char(' '), None, &mut status);
        pane.push(vec![entry(LogSource::Ec2, 0, "late")]);
        assert_eq!(pane.held_back(), 1);
        assert_eq!(pane.window(100).len(), 8);
        pane.on_key(Key::Char(' '), None, &mut status);
        assert_eq!(pane.window(100).len(), 9);
        assert_eq!(pane.window(1)[0].1.message, "late");
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
        assert_eq!(pane.window(1)[0].1.message, (MAX_LINES + 4).to_string());
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
