//! Draws the console from its state: header with the target, tabs, the current view (the
//! Stack and Invoke views in their own files, the panes in theirs), the status line, the
//! confirmations and the help. Nothing here reads a clock or the network, so a recorded state
//! always draws the same screen (the snapshot tests rely on it); what a click can land on
//! comes back as a [`ScreenMap`] rather than being written into the state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Tabs, Wrap};

use super::action::Severity;
use super::app::{App, Confirm, Tab};
use super::invoke_view::draw_invoke;
use super::log_file::LogFile;
use super::mouse::{ScreenMap, tab_cells};
use super::palette::Palette;
use super::stack_view::draw_stack;

/// The key map, as `?` shows it and the README lists it.
pub const KEYS: &[(&str, &str)] = &[
    (
        "1-6, Tab, Shift-Tab",
        "switch view: by number, the next, the previous",
    ),
    (
        ":stack :invoke :logs :s3 :db :jobs",
        "switch view by name; :q quits",
    ),
    ("?", "this help; Esc closes it"),
    ("q, Ctrl-C", "quit"),
    ("j/k, g/G", "down / up; the top / bottom of a list"),
    ("mouse", "click a tab or a row; the wheel scrolls"),
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
        "Invoke: p, c",
        "time bar at p50 / p99; of all / warm / cold",
    ),
    (
        "Invoke: Up/Down, Enter, Esc",
        "select a slow or failed invocation; logs; back",
    ),
    (
        "Invoke: v",
        "small terminal: latency / time bar and slowest",
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
        "Logs: L, R",
        "least level shown (ERROR, WARN, INFO, DEBUG, all); as written",
    ),
    ("Logs: J / K", "scroll the selected line's JSON down / up"),
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
    (
        "S3: / (Enter, Esc)",
        "filter the keys; Enter keeps it, Esc clears it",
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
    (
        "Jobs: s",
        "submit a file (.zip/.tar: an image batch; else append-text)",
    ),
    (
        "Jobs: Enter",
        "a job's history, outputs and log lines; Esc back",
    ),
    (
        "Jobs: c",
        "cancel the selected job and terminate its worker",
    ),
    ("Jobs: r", "read the jobs again"),
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

/// The views' titles as the tab bar shows them: `1 Stack`, `2 Invoke`...
fn tab_titles() -> Vec<String> {
    Tab::ALL
        .iter()
        .enumerate()
        .map(|(at, tab)| format!("{} {}", at + 1, tab.title()))
        .collect()
}

pub fn draw(frame: &mut Frame, app: &App, palette: Palette) {
    draw_mapped(frame, app, palette);
}

/// Draws the frame and says where its tabs and its list's rows went.
pub fn draw_mapped(frame: &mut Frame, app: &App, palette: Palette) -> ScreenMap {
    let [header, tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, app, palette);
    let titles = tab_titles();
    let map_tabs = Tab::ALL.into_iter().zip(tab_cells(tabs, &titles)).collect();
    frame.render_widget(
        Tabs::new(titles)
            .select(app.tab.position())
            .highlight_style(palette.selected()),
        tabs,
    );
    let list = match app.tab {
        Tab::Stack => draw_stack(frame, body, app, palette),
        Tab::Invoke => draw_invoke(frame, body, app, palette),
        Tab::Logs => super::logs_pane::draw(frame, body, &app.logs, palette),
        Tab::S3 => super::s3_pane::draw(frame, body, &app.s3, palette),
        Tab::Db => super::db_pane::draw(frame, body, &app.db, palette),
        Tab::Jobs => super::jobs_pane::draw(frame, body, &app.jobs, palette),
    };
    draw_status(frame, status, app, palette);
    if app.help {
        draw_help(frame, body, app.tab, &app.log_file, palette);
    }
    if let Some(confirm) = &app.confirm {
        draw_confirm(frame, body, confirm, app.on_aws, palette);
    }
    ScreenMap {
        tabs: map_tabs,
        list,
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

/// The help's width, borders included.
const HELP_WIDTH: u16 = 78;

/// `text` in rows of `width` characters at most, broken at spaces; a word longer than a row
/// (a path) is cut across rows.
fn wrap_rows(text: &str, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width.max(1));
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let used = row.chars().count();
        if used > 0 && used + 1 + word.chars().count() <= width {
            row.push(' ');
            row.push_str(word);
            continue;
        }
        if used > 0 {
            rows.push(std::mem::take(&mut row));
        }
        let mut rest: Vec<char> = word.chars().collect();
        while rest.len() > width {
            rows.push(rest.drain(..width).collect());
        }
        row = rest.into_iter().collect();
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows.into_iter().map(Line::from).collect()
}

/// The keys of the view and the global ones, and under them where the log goes: its rows
/// stay when a small terminal cuts the keys short.
fn draw_help(frame: &mut Frame, area: Rect, tab: Tab, log_file: &LogFile, palette: Palette) {
    let keys: Vec<_> = keys_for(tab).collect();
    let inner_width = HELP_WIDTH.min(area.width).saturating_sub(2);
    let log = wrap_rows(&log_file.describe(), inner_width);
    let log_rows = u16::try_from(log.len()).unwrap_or(u16::MAX);
    let popup = centred(
        area,
        HELP_WIDTH,
        (keys.len() as u16)
            .saturating_add(2)
            .saturating_add(log_rows),
    );
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(format!(" keys: everywhere and in {} ", tab.title()));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [keys_area, log_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(log_rows)]).areas(inner);
    let rows = keys
        .iter()
        .map(|(key, what)| Row::new([Cell::from(*key).style(palette.bold()), Cell::from(*what)]));
    frame.render_widget(
        Table::new(rows, [Constraint::Length(28), Constraint::Min(10)]),
        keys_area,
    );
    let log_style = match log_file {
        LogFile::Writing(_) => palette.fg(Color::DarkGray),
        LogFile::Off(_) => palette.fg(Color::Red),
    };
    frame.render_widget(Paragraph::new(log).style(log_style), log_area);
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::tui::action::{Key, Update};
    use crate::tui::fixtures;
    use crate::tui::invoke_view::{bucket_counts, format_ms, log_bounds};
    use hybridlab_bench::stats::new_histogram;

    #[test]
    fn stack_view_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&fixtures::app_with_stack(), 80, 24, true));
    }

    #[test]
    fn the_stack_view_lists_the_jobs_variants_resources_and_running_workers() {
        let mut app = fixtures::app_with_stack();
        let stack = &mut app.stack.stacks[0];
        for (kind, name) in [
            (
                hybridlab_provision::stack::ResourceKind::HttpApi,
                "hybridlab-jobs-k3x9q2ma (a1b2c3)",
            ),
            (
                hybridlab_provision::stack::ResourceKind::EventSourceMapping,
                "hybridlab-launcher-k3x9q2ma",
            ),
            (
                hybridlab_provision::stack::ResourceKind::Worker,
                "i-0f0e0d0c0b0a",
            ),
        ] {
            stack
                .resources
                .push(hybridlab_provision::stack::status::ResourceStatus {
                    kind,
                    name: name.into(),
                    state: "present".into(),
                    age_s: Some(30),
                });
        }
        let screen = fixtures::screen(&app, 120, 30, false).to_string();
        for shown in ["http api", "stream mapping", "job worker", "i-0f0e0d0c0b0a"] {
            assert!(screen.contains(shown), "{shown} in {screen}");
        }
    }

    #[test]
    fn stack_view_of_an_instance_whose_user_data_failed() {
        let mut app = fixtures::app_with_stack();
        let stack = &mut app.stack.stacks[0];
        if let Some(instance) = stack.instance.as_mut() {
            instance.user_data_error = Some(
                "/var/lib/cloud/instance/scripts/part-001: line 41: chmdo: command not found"
                    .into(),
            );
        }
        stack.server = None;
        let screen = fixtures::screen(&app, 80, 24, true);
        let text = format!("{screen}");
        assert!(text.contains("user-data FAILED"), "{text}");
        insta::assert_snapshot!(screen);
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
    fn invoke_view_breakdown_and_slowest_invocations_at_80x24() {
        let mut app = fixtures::app_with_bursts();
        // Down selects the slowest invocation, and shows the breakdown's panel to do it.
        app.on_key(Key::Down);
        app.on_key(Key::Down);
        let screen = fixtures::screen(&app, 80, 24, true);
        let text = screen.to_string();
        for shown in [
            "where the time goes: p50 of each stage",
            "overhead",
            "dynamodb",
            "network",
            "#1 ",
            "throttled",
            "Enter: its logs",
        ] {
            assert!(text.contains(shown), "`{shown}` in {text}");
        }
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn invoke_view_draws_everything_at_200x60() {
        let mut app = fixtures::app_with_bursts();
        app.on_key(Key::Down);
        let screen = fixtures::screen(&app, 200, 60, true);
        let text = screen.to_string();
        for shown in [
            "latency ms: this run | previous",
            "where the time goes",
            "measures",
            "p99 ms of each second",
            "9e3779b1-0b1a-4c3d-9e8f-000000000001",
            "download_failed",
            "TooManyRequestsException",
        ] {
            assert!(text.contains(shown), "`{shown}` in {text}");
        }
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn p_draws_the_bar_at_p99_and_c_shows_the_cold_starts_alone() {
        let mut app = fixtures::app_with_bursts();
        app.on_key(Key::Char('v'));
        let p50 = fixtures::screen(&app, 80, 24, false).to_string();
        assert!(p50.contains("init 0.00"), "most are warm: {p50}");
        app.on_key(Key::Char('p'));
        app.on_key(Key::Char('c'));
        app.on_key(Key::Char('c'));
        let cold = fixtures::screen(&app, 80, 24, false).to_string();
        assert!(cold.contains("p99 of each stage"), "{cold}");
        assert!(cold.contains("cold ms"), "the table's header: {cold}");
        assert!(cold.contains("cold invocations"), "{cold}");
        assert!(
            cold.contains("init 42."),
            "the slowest of four inits: {cold}"
        );
    }

    #[test]
    fn a_click_on_a_slow_invocation_selects_it() {
        let mut app = fixtures::app_with_bursts();
        let (screen, map) = fixtures::screen_and_map(&app, 200, 60);
        // The errors come after the ten slowest; the newest is a throttle, #2999.
        let (column, row) = fixtures::find(&screen, "#2999").expect("the newest error drawn");
        app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map);
        assert!(app.invoke.list_focus);
        assert_eq!(app.invoke.selected, 10);
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
    fn a_click_on_a_log_line_selects_it_and_g_and_shift_g_go_to_the_oldest_and_follow() {
        let mut app = fixtures::app_with_stack();
        app.tab = Tab::Logs;
        app.logs = crate::tui::logs_pane::tests::pane_with_lines();
        let (screen, map) = fixtures::screen_and_map(&app, 80, 24);
        let (column, row) = fixtures::find(&screen, "3f1c-aa  END").expect("drawn");
        app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map);
        assert_eq!(app.logs.selected, Some(2), "the third line");
        app.on_key(Key::Enter);
        assert_eq!(app.logs.filter, "3f1c-aa", "that line's invocation");
        app.on_key(Key::Char('c'));
        app.on_key(Key::Char('g'));
        assert_eq!(app.logs.selected, Some(0), "the oldest line");
        app.on_key(Key::Char('j'));
        assert_eq!(app.logs.selected, Some(1));
        app.on_key(Key::Char('G'));
        assert_eq!(app.logs.selected, None, "following the newest again");
    }

    #[test]
    fn the_help_names_the_log_file() {
        let mut app = fixtures::app_with_stack();
        app.tab = Tab::S3;
        app.help = true;
        let screen = fixtures::screen(&app, 80, 24, true);
        let text = screen.to_string();
        assert!(
            text.contains("log file: /home/lab/.local/state/hybridlab/console.log"),
            "{text}"
        );
        assert!(text.contains("j/k, g/G"), "{text}");
        assert!(text.contains("S3: / (Enter, Esc)"), "{text}");
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn the_help_says_why_logging_is_off_and_a_long_path_is_not_cut() {
        let mut app = fixtures::app_with_stack();
        app.help = true;
        app.log_file = LogFile::Off(
            "cannot make /home/lab/.local/state/hybridlab: Permission denied (os error 13)".into(),
        );
        let text = fixtures::screen(&app, 80, 24, true).to_string();
        assert!(
            text.contains("logging is off: cannot make /home/lab/.local/state"),
            "{text}"
        );
        assert!(
            text.contains("denied (os error 13)"),
            "the whole reason: {text}"
        );
        // A path longer than the box goes on over the next row, whole.
        let long = format!("/tmp/{}/console.log", "d".repeat(90));
        app.log_file = LogFile::Writing(long.clone().into());
        let screen = fixtures::screen(&app, 80, 24, true);
        // Each row without the borders around it, joined.
        let rows: String = screen
            .to_string()
            .lines()
            .map(|line| line.trim_matches(|c: char| c == '"' || c == ' ' || "│┐┌└┘─".contains(c)))
            .collect();
        assert!(rows.contains(&long), "{rows}");
    }

    #[test]
    fn a_log_line_wraps_at_spaces_and_a_path_is_cut_across_rows() {
        let rows = |text: &str, width| -> Vec<String> {
            wrap_rows(text, width)
                .into_iter()
                .map(|line| line.to_string())
                .collect()
        };
        assert_eq!(rows("log file: /a/b", 20), ["log file: /a/b"]);
        assert_eq!(
            rows("logging is off: Permission denied", 20),
            ["logging is off:", "Permission denied"]
        );
        assert_eq!(
            rows("log file: /abcdefghijklmnop", 8),
            ["log", "file:", "/abcdefg", "hijklmno", "p"]
        );
        assert_eq!(rows("", 8), [""]);
    }

    #[test]
    fn the_light_theme_draws_every_view_without_light_text_on_the_background() {
        use crate::tui::palette::Theme;
        use ratatui::style::Color;
        let light = Palette::new(true).with_theme(Theme::Light);
        let faint = crate::tui::palette::FAINT_ON_WHITE;
        let mut logs = fixtures::app_with_stack();
        logs.tab = Tab::Logs;
        logs.logs = crate::tui::logs_pane::tests::pane_with_lines();
        logs.logs.paused_at = Some(0);
        let mut help = fixtures::app_with_bursts();
        help.help = true;
        help.status = Some((Severity::Info, "burst finished".into()));
        for app in [
            fixtures::app_with_stack(),
            fixtures::app_with_bursts(),
            fixtures::app_bringing_up_a_stack(),
            logs,
            help,
        ] {
            let screen = fixtures::screen_with(&app, 120, 40, light);
            let mut coloured = 0;
            for cell in screen.buffer().content() {
                if cell.bg == Color::Reset && cell.fg != Color::Reset {
                    coloured += 1;
                    assert!(
                        !faint.contains(&cell.fg),
                        "`{}` drawn {:?} on the background in {:?}",
                        cell.symbol(),
                        cell.fg,
                        app.tab
                    );
                }
            }
            assert!(coloured > 0, "{:?} draws some colour", app.tab);
        }
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
