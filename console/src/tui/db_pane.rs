//! The DynamoDB view: the selected stack's table as rows, paged and filtered, the selected row
//! as pretty JSON, and a jump from a row to its objects in the S3 view.
//!
//! A page is one `scan_from` of `lab::db::PAGE_ROWS` rows; the view keeps the start key of every
//! page up to the one shown, so it can go back without reading from the top. Each request
//! carries a sequence number and only the latest one's answer is kept.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::action::{Action, Key, Loading, Severity, Typed, moved, type_into};
use super::mouse::ListRows;
use super::palette::Palette;
use crate::lab::db::filter::{AttributeFilter, parse_filter};
use crate::lab::db::typed_json::{Item, item_to_plain_json};
use crate::lab::db::{DbPage, DbRequest, DbUpdate, number, scalar, status_tone};
use crate::lab::s3::BucketChoice;
use crate::lab::tone::Tone;
use crate::lab::units::human_bytes;
use hybridlab_provision::stack::{StackId, StackNames};

/// From this width the row's JSON sits beside the table rather than under it.
const SIDE_BY_SIDE: u16 = 140;

/// What the DynamoDB view shows.
#[derive(Debug, Clone, Default)]
pub struct DbPane {
    /// The stack whose table this is (`None`: the target's only one).
    pub stack: Option<String>,
    /// The filter applied to the rows.
    pub filter: Option<AttributeFilter>,
    /// The filter being typed (every key goes to it while it is `Some`).
    pub typing: Option<String>,
    /// The start key of each page up to the one shown (`None` for the first): its length is
    /// the page's number.
    pub starts: Vec<Option<Item>>,
    pub page: Loading<DbPage>,
    pub selected: usize,
    /// Lines of the selected row's JSON scrolled past (J and K).
    pub json_scroll: u16,
    last_seq: u64,
}

type Status = Option<(Severity, String)>;

impl DbPane {
    /// Called when the view is shown; `stack` is the one selected in the Stack view. The
    /// first page is read the first time, after a failed read and when the stack changed.
    pub fn on_enter(&mut self, stack: Option<&str>) -> Option<Action> {
        // A failed read is tried again on the way in; anything else stays as it was left.
        let kept = !matches!(self.page, Loading::Idle | Loading::Error(_));
        if self.stack.as_deref() == stack && kept {
            return None;
        }
        self.stack = stack.map(str::to_owned);
        self.filter = None;
        Some(self.first_page())
    }

    /// Whether a filter is being typed (then the app gives this view every key).
    pub fn typing(&self) -> bool {
        self.typing.is_some()
    }

    /// The row under the cursor.
    pub fn selected_row(&self) -> Option<&Item> {
        self.page.loaded()?.rows.get(self.selected)
    }

    pub fn on_key(&mut self, key: Key, status: &mut Status) -> Option<Action> {
        if self.typing.is_some() {
            return self.on_filter_key(key, status);
        }
        match key {
            Key::Up
            | Key::Down
            | Key::PageUp
            | Key::PageDown
            | Key::Home
            | Key::End
            | Key::Pick(_) => {
                let rows = self.page.loaded().map_or(0, |page| page.rows.len());
                self.selected = moved(self.selected, rows, key);
                self.json_scroll = 0;
                None
            }
            Key::Char('J') => {
                self.json_scroll = self.json_scroll.saturating_add(1);
                None
            }
            Key::Char('K') => {
                self.json_scroll = self.json_scroll.saturating_sub(1);
                None
            }
            Key::Char('n') | Key::Right => {
                let Some(page) = self.page.loaded() else {
                    *status = Some((Severity::Info, "the page is still being read".into()));
                    return None;
                };
                let Some(next) = page.next.clone() else {
                    *status = Some((Severity::Info, "this is the last page".into()));
                    return None;
                };
                self.starts.push(Some(next));
                Some(self.read_page())
            }
            Key::Char('p') | Key::Left => {
                if self.starts.len() <= 1 {
                    *status = Some((Severity::Info, "this is the first page".into()));
                    return None;
                }
                self.starts.pop();
                Some(self.read_page())
            }
            Key::Char('r') => {
                if self.starts.is_empty() {
                    return Some(self.first_page());
                }
                Some(self.read_page())
            }
            Key::Char('/') => {
                self.typing = Some(self.filter.as_ref().map_or_else(String::new, |filter| {
                    format!("{}={}", filter.name, filter.value)
                }));
                None
            }
            Key::Char('o') | Key::Enter => {
                let row_of_selection = self.selected_row();
                let Some(image_id) = row_of_selection.and_then(|row| scalar(row, "image_id"))
                else {
                    *status = Some((Severity::Error, "no row selected".into()));
                    return None;
                };
                // A row of the pipeline names its processed bucket; the lab's own rows (and
                // rows of an older version, without the attribute) live in the images bucket.
                let bucket = row_of_selection
                    .and_then(|row| scalar(row, "bucket"))
                    .and_then(BucketChoice::of_bucket)
                    .unwrap_or(BucketChoice::Images);
                Some(Action::ShowObjects {
                    bucket,
                    prefix: hybridlab_wire::keys::image_prefix(image_id),
                })
            }
            _ => None,
        }
    }

    fn on_filter_key(&mut self, key: Key, status: &mut Status) -> Option<Action> {
        let line = self.typing.as_mut()?;
        match type_into(line, key) {
            Typed::Edited => {}
            Typed::Cancelled => self.typing = None,
            Typed::Submitted => {
                let text = line.trim().to_owned();
                if text.is_empty() {
                    self.typing = None;
                    self.filter = None;
                    *status = Some((Severity::Info, "filter cleared".into()));
                    return Some(self.first_page());
                }
                match parse_filter(&text) {
                    Ok(filter) => {
                        self.typing = None;
                        self.filter = Some(filter);
                        *status = None;
                        return Some(self.first_page());
                    }
                    // The line stays open, to be fixed or dropped with Esc.
                    Err(err) => *status = Some((Severity::Error, err.replace("--filter ", ""))),
                }
            }
        }
        None
    }

    /// Folds a page in, unless a later request has been made since.
    pub fn apply(&mut self, update: DbUpdate, status: &mut Status) {
        if update.seq != self.last_seq {
            return;
        }
        match update.page {
            Ok(page) => {
                self.selected = self.selected.min(page.rows.len().saturating_sub(1));
                self.page = Loading::Loaded(page);
            }
            Err(err) => {
                *status = Some((Severity::Error, err.clone()));
                self.page = Loading::Error(err);
            }
        }
    }

    fn first_page(&mut self) -> Action {
        self.starts = vec![None];
        self.read_page()
    }

    /// Reads the page whose start key is the last of `starts`.
    fn read_page(&mut self) -> Action {
        self.last_seq += 1;
        self.page = Loading::Loading;
        self.selected = 0;
        Action::Db(DbRequest {
            seq: self.last_seq,
            stack: self.stack.clone(),
            filter: self.filter.clone(),
            start: self.starts.last().cloned().flatten(),
        })
    }
}

fn tone_colour(tone: Tone) -> Color {
    match tone {
        Tone::Good => Color::Green,
        Tone::Bad => Color::Red,
        Tone::Warn => Color::Yellow,
        Tone::Dim => Color::DarkGray,
        Tone::Accent => Color::Cyan,
    }
}

/// `2026-11-23T10:00:00.123Z` as `2026-11-23 10:00:00`.
fn short_time(rfc3339: &str) -> String {
    rfc3339
        .chars()
        .take(19)
        .collect::<String>()
        .replace('T', " ")
}

fn size_text(row: &Item) -> String {
    match number(row, "size_bytes") {
        Some(n) => n.parse::<i64>().map_or_else(|_| n.to_owned(), human_bytes),
        None => "-".to_owned(),
    }
}

/// Draws the view; returns the rows of the table, if there are any.
pub fn draw(frame: &mut Frame, area: Rect, pane: &DbPane, palette: Palette) -> Option<ListRows> {
    let (filter_area, area) = match &pane.typing {
        Some(_) => {
            let [filter, rest] =
                Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
            (Some(filter), rest)
        }
        None => (None, area),
    };
    if let (Some(filter_area), Some(line)) = (filter_area, &pane.typing) {
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::raw(line.clone()),
                Span::styled("_", palette.selected()),
            ]))
            .block(
                Block::bordered()
                    .title(" filter NAME=VALUE, e.g. status=FAILED; Enter applies, Esc cancels "),
            ),
            filter_area,
        );
    }
    let (table_area, json_area) = if area.width >= SIDE_BY_SIDE {
        let [table, json] =
            Layout::horizontal([Constraint::Length(93), Constraint::Min(0)]).areas(area);
        (table, json)
    } else {
        let [table, json] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Min(0)]).areas(area);
        (table, json)
    };
    let rows = draw_rows(frame, table_area, pane, palette);
    let json = match pane.selected_row() {
        Some(row) => serde_json::to_string_pretty(&item_to_plain_json(row))
            .unwrap_or_else(|err| format!("the row does not convert to JSON: {err}")),
        None => String::new(),
    };
    frame.render_widget(
        Paragraph::new(json)
            .wrap(Wrap { trim: false })
            .scroll((pane.json_scroll, 0))
            .block(Block::bordered().title(" row (o: its objects in S3; J/K scroll) ")),
        json_area,
    );
    rows
}

fn draw_rows(frame: &mut Frame, area: Rect, pane: &DbPane, palette: Palette) -> Option<ListRows> {
    // The table's name follows from the stack's (none selected: the target's only stack).
    let table = pane
        .stack
        .as_deref()
        .and_then(|stack| StackId::parse(stack).ok())
        .map_or_else(|| "table".to_owned(), |stack| StackNames::new(&stack).table);
    let mut title = format!(" {table}, page {}", pane.starts.len().max(1));
    if let Some(filter) = &pane.filter {
        title.push_str(&format!(", {}={}", filter.name, filter.value));
    }
    title.push(' ');
    let block = Block::bordered().title(title);
    let page = match &pane.page {
        Loading::Loaded(page) => page,
        other => {
            let text = match other {
                Loading::Loading => "reading the table...".to_owned(),
                Loading::Error(err) => format!("{err}\n\nr reads again."),
                _ => "not read yet: r reads it".to_owned(),
            };
            frame.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
                area,
            );
            return None;
        }
    };
    if page.rows.is_empty() {
        let text = match (&pane.filter, pane.starts.len()) {
            (Some(_), _) => "no row on this page matches the filter; / changes it",
            (None, 0 | 1) => "the table is empty: process an image (Invoke view) to add a row",
            (None, _) => "no more rows; p goes back",
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return None;
    }
    let inner = block.inner(area);
    // A created-at column needs room the id (a 36-character UUID) leaves only when wide.
    let with_created = area.width >= 91;
    let rows = page.rows.iter().map(|row| {
        let status = scalar(row, "status").unwrap_or("-");
        let dimensions = match (scalar(row, "width"), scalar(row, "height")) {
            (Some(width), Some(height)) => format!("{width}x{height}"),
            _ => "-".to_owned(),
        };
        let mut cells = vec![
            Cell::from(scalar(row, "image_id").unwrap_or("?").to_owned()),
            Cell::from(status.to_owned()).style(palette.fg(tone_colour(status_tone(status)))),
            Cell::from(Line::from(size_text(row)).right_aligned()),
            Cell::from(dimensions),
        ];
        if with_created {
            cells.push(Cell::from(short_time(
                scalar(row, "created_at").unwrap_or("-"),
            )));
        }
        Row::new(cells)
    });
    // PROCESSING, the longest status, and 1600x1000 fit.
    let mut widths = vec![
        Constraint::Length(36),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let mut header = vec![
        Cell::from("image id"),
        Cell::from("status"),
        Cell::from(Line::from("size").right_aligned()),
        Cell::from("pixels"),
    ];
    if with_created {
        widths.push(Constraint::Length(19));
        header.push(Cell::from("created at"));
    }
    let more = if page.next.is_some() {
        "n next page"
    } else {
        "last page"
    };
    let back = if pane.starts.len() > 1 {
        ", p back"
    } else {
        ""
    };
    let footer = format!(
        " {} rows (scanned {}); {more}{back} ",
        page.rows.len(),
        page.scanned
    );
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(palette.bold()))
        .row_highlight_style(palette.selected())
        .block(block.title_bottom(footer));
    let mut state = TableState::default().with_selected(Some(pane.selected));
    frame.render_stateful_widget(table, area, &mut state);
    // Under the header row.
    let body = Rect {
        y: inner.y.saturating_add(1),
        height: inner.height.saturating_sub(1),
        ..inner
    };
    Some(ListRows::drawn(body, state.offset(), page.rows.len()))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::lab::db::typed_json::item_from_typed_json;
    use crate::lab::s3::S3Read;
    use crate::tui::action::Update;
    use crate::tui::app::{App, Tab};
    use crate::tui::fixtures;
    use serde_json::{Map, Value, json};

    fn request(action: Option<Action>) -> DbRequest {
        match action {
            Some(Action::Db(request)) => request,
            other => panic!("expected a DynamoDB read, got {other:?}"),
        }
    }

    // Rows are written in DynamoDB's typed JSON: the console never names the SDK's types.
    fn text(value: &str) -> Value {
        json!({ "S": value })
    }

    fn number(value: u64) -> Value {
        json!({ "N": value.to_string() })
    }

    fn item(attributes: Map<String, Value>) -> Item {
        item_from_typed_json(&Value::Object(attributes)).expect("a row in typed JSON")
    }

    /// A row as ec2-server writes it.
    fn row(at: u32, status: &str) -> Item {
        let image_id = format!("0190a0b0-0000-7000-8000-{at:012}");
        let mut item = Map::from_iter([
            ("image_id".to_owned(), text(&image_id)),
            ("status".to_owned(), text(status)),
            ("bucket".to_owned(), text("hybridlab-images-k3x9q2ma")),
            (
                "created_at".to_owned(),
                text(&format!("2026-11-23T10:{at:02}:05.120Z")),
            ),
            (
                "updated_at".to_owned(),
                text(&format!("2026-11-23T10:{at:02}:06.480Z")),
            ),
            (
                "source_url".to_owned(),
                text(&format!("http://127.0.0.1:8000/cat-{at}.jpg")),
            ),
        ]);
        if status == "COMPLETED" {
            item.insert("size_bytes".into(), number(2_411_877 + u64::from(at)));
            item.insert("width".into(), number(1600));
            item.insert("height".into(), number(1000));
            item.insert("format".into(), text("jpeg"));
            item.insert(
                "keys".into(),
                json!({ "M": (
                    [("original", "original.jpg"), ("thumbnail", "thumbnail.jpg")]
                        .into_iter()
                        .map(|(name, file)| {
                            (
                                name.to_owned(),
                                text(&format!(
                                    "{}{file}",
                                    hybridlab_wire::keys::image_prefix(&image_id)
                                )),
                            )
                        })
                        .collect::<Map<String, Value>>()
                ) }),
            );
        } else if status == "FAILED" {
            item.insert("error".into(), text("the image URL answered 404 Not Found"));
        }
        super::tests::item(item)
    }

    fn page(rows: Vec<Item>, next: Option<Item>) -> DbPage {
        DbPage {
            scanned: rows.len() as u64,
            rows,
            next,
        }
    }

    fn start_key(at: u32) -> Item {
        item(Map::from_iter([(
            "image_id".to_owned(),
            text(&format!("0190a0b0-0000-7000-8000-{at:012}")),
        )]))
    }

    /// The DynamoDB view on its first page, the second row selected.
    fn app_with_rows() -> App {
        let mut app = fixtures::app_with_stack();
        let first = request(app.on_key(Key::Char('5')));
        assert_eq!(app.tab, Tab::Db);
        assert_eq!(first.stack.as_deref(), Some("k3x9q2ma"));
        let rows = vec![
            row(1, "COMPLETED"),
            row(2, "FAILED"),
            row(3, "PROCESSING"),
            row(4, "COMPLETED"),
        ];
        app.apply(Update::Db(DbUpdate {
            seq: first.seq,
            page: Ok(page(rows, Some(start_key(4)))),
        }));
        app.on_key(Key::Down);
        app
    }

    #[test]
    fn page_keys_move_ten_rows_and_stay_in_the_list() {
        assert_eq!(moved(0, 50, Key::PageDown), 10);
        assert_eq!(moved(45, 50, Key::PageDown), 49);
        assert_eq!(moved(5, 50, Key::PageUp), 0);
        assert_eq!(moved(7, 50, Key::End), 49);
        assert_eq!(moved(7, 50, Key::Home), 0);
        assert_eq!(
            moved(0, 0, Key::End),
            0,
            "an empty page has nothing to select"
        );
        assert_eq!(moved(3, 50, Key::Char('x')), 3);
    }

    #[test]
    fn j_k_g_and_shift_g_move_between_rows_and_a_click_picks_one() {
        let mut app = app_with_rows();
        assert_eq!(app.db.selected, 1);
        app.on_key(Key::Char('J'));
        assert_eq!(app.db.json_scroll, 1, "J still scrolls the JSON");
        app.on_key(Key::Char('j'));
        assert_eq!((app.db.selected, app.db.json_scroll), (2, 0));
        app.on_key(Key::Char('k'));
        assert_eq!(app.db.selected, 1);
        app.on_key(Key::Char('G'));
        assert_eq!(app.db.selected, 3);
        app.on_key(Key::Char('g'));
        assert_eq!(app.db.selected, 0);
        let (screen, map) = fixtures::screen_and_map(&app, 80, 24);
        let (column, row) =
            fixtures::find(&screen, "0190a0b0-0000-7000-8000-000000000003").expect("drawn");
        app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map);
        assert_eq!(app.db.selected, 2, "the third row");
        // The header row above the first is not a row.
        let (column, row) = fixtures::find(&screen, "image id").expect("the header");
        app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map);
        assert_eq!(app.db.selected, 2);
        app.on_mouse(crate::tui::action::Mouse::WheelDown, &map);
        assert_eq!(app.db.selected, 3);
    }

    #[test]
    fn a_page_of_rows_with_the_selected_rows_json_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&app_with_rows(), 80, 24, true));
    }

    #[test]
    fn a_page_of_rows_beside_the_json_at_160x48() {
        let mut app = app_with_rows();
        app.on_key(Key::Up);
        insta::assert_snapshot!(fixtures::screen(&app, 160, 48, true));
    }

    #[test]
    fn a_filter_being_typed_at_80x24() {
        let mut app = app_with_rows();
        app.on_key(Key::Char('/'));
        for c in "status=FAI".chars() {
            app.on_key(Key::Char(c));
        }
        insta::assert_snapshot!(fixtures::screen(&app, 80, 24, true));
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let mut app = app_with_rows();
        for (width, height) in [(1, 1), (10, 4), (20, 5), (40, 10), (80, 6)] {
            fixtures::screen(&app, width, height, true);
        }
        app.on_key(Key::Char('/'));
        for (width, height) in [(1, 1), (20, 5), (80, 4)] {
            fixtures::screen(&app, width, height, true);
        }
    }

    #[test]
    fn pages_go_forward_on_the_last_key_and_back_on_the_kept_start_keys() {
        let mut pane = DbPane::default();
        let mut status = None;
        let first = request(pane.on_enter(Some("k3x9q2ma")));
        assert_eq!(first.start, None);
        assert_eq!(pane.on_enter(Some("k3x9q2ma")), None, "read once");
        pane.apply(
            DbUpdate {
                seq: first.seq,
                page: Ok(page(vec![row(1, "COMPLETED")], Some(start_key(1)))),
            },
            &mut status,
        );
        assert_eq!(pane.on_key(Key::Char('p'), &mut status), None);
        assert!(matches!(&status, Some((Severity::Info, text)) if text.contains("first page")));
        let second = request(pane.on_key(Key::Right, &mut status));
        assert_eq!(second.start, Some(start_key(1)));
        assert_eq!(
            pane.on_key(Key::Char('n'), &mut status),
            None,
            "the second page is still being read"
        );
        pane.apply(
            DbUpdate {
                seq: second.seq,
                page: Ok(page(vec![row(2, "FAILED")], Some(start_key(2)))),
            },
            &mut status,
        );
        let third = request(pane.on_key(Key::Char('n'), &mut status));
        assert_eq!(third.start, Some(start_key(2)));
        pane.apply(
            DbUpdate {
                seq: third.seq,
                page: Ok(page(vec![row(3, "FAILED")], None)),
            },
            &mut status,
        );
        assert_eq!(pane.on_key(Key::Char('n'), &mut status), None);
        assert!(matches!(&status, Some((Severity::Info, text)) if text.contains("last page")));
        let back = request(pane.on_key(Key::Left, &mut status));
        assert_eq!(
            back.start,
            Some(start_key(1)),
            "the second page's start again"
        );
        let reload = request(pane.on_key(Key::Char('r'), &mut status));
        assert_eq!(reload.start, Some(start_key(1)));
        assert_eq!(pane.starts.len(), 2);
        let back = request(pane.on_key(Key::Char('p'), &mut status));
        assert_eq!(back.start, None);
    }

    #[test]
    fn only_the_latest_reads_answer_is_kept() {
        let mut pane = DbPane::default();
        let mut status = None;
        let first = request(pane.on_enter(None));
        let reload = request(pane.on_key(Key::Char('r'), &mut status));
        pane.apply(
            DbUpdate {
                seq: first.seq,
                page: Err("dynamodb:Scan: stale".into()),
            },
            &mut status,
        );
        assert_eq!(pane.page, Loading::Loading);
        assert_eq!(status, None, "a stale failure says nothing");
        pane.apply(
            DbUpdate {
                seq: reload.seq,
                page: Err(
                    "stack `k3x9q2ma` is not deployed; run `hybridlab up --stack k3x9q2ma`".into(),
                ),
            },
            &mut status,
        );
        assert!(matches!(pane.page, Loading::Error(_)));
        assert!(matches!(&status, Some((Severity::Error, text)) if text.contains("hybridlab up")));
        assert!(
            pane.on_enter(None).is_some(),
            "coming back after a failure reads again"
        );
    }

    #[test]
    fn a_filter_is_typed_applied_refused_or_cancelled() {
        let mut app = app_with_rows();
        app.on_key(Key::Char('/'));
        assert!(app.db.typing());
        // Keys the app takes for itself go into the filter while it is typed.
        for c in "status=5q?".chars() {
            assert_eq!(app.on_key(Key::Char(c)), None);
        }
        assert_eq!(app.tab, Tab::Db);
        assert!(!app.quit);
        assert_eq!(app.db.typing.as_deref(), Some("status=5q?"));
        for _ in 0..3 {
            app.on_key(Key::Backspace);
        }
        app.on_key(Key::Char('x'));
        assert_eq!(app.on_key(Key::Backspace), None);
        // A bad filter keeps the line open and says why.
        app.db.typing = Some("status".into());
        assert_eq!(app.on_key(Key::Enter), None);
        assert!(app.db.typing());
        assert!(
            matches!(&app.status, Some((Severity::Error, text)) if text.contains("NAME=VALUE")),
            "{:?}",
            app.status
        );
        app.db.typing = Some("status=FAILED".into());
        let filtered = request(app.on_key(Key::Enter));
        assert!(!app.db.typing());
        assert_eq!(
            filtered.filter,
            Some(AttributeFilter {
                name: "status".into(),
                value: "FAILED".into()
            })
        );
        assert_eq!(filtered.start, None, "a new filter starts at the top");
        // `/` again edits the filter in place; Esc leaves it as it was.
        app.on_key(Key::Char('/'));
        assert_eq!(app.db.typing.as_deref(), Some("status=FAILED"));
        app.on_key(Key::Esc);
        assert!(!app.db.typing());
        assert!(app.db.filter.is_some());
        // Emptied, it clears the filter.
        app.on_key(Key::Char('/'));
        app.db.typing = Some(String::new());
        let cleared = request(app.on_key(Key::Enter));
        assert_eq!(cleared.filter, None);
    }

    #[test]
    fn a_row_jumps_to_its_objects_in_the_s3_view() {
        let mut app = app_with_rows();
        let Some(Action::S3(list)) = app.on_key(Key::Char('o')) else {
            panic!("o lists the row's objects");
        };
        assert_eq!(app.tab, Tab::S3);
        assert_eq!(list.stack.as_deref(), Some("k3x9q2ma"));
        assert_eq!(
            list.read,
            S3Read::List {
                prefix: "images/0190a0b0-0000-7000-8000-000000000002/".into(),
                continuation: None
            }
        );
        assert_eq!(list.bucket, BucketChoice::Images);

        // A row of the pipeline: its variants are in the processed bucket.
        let mut app = fixtures::app_with_stack();
        let first = request(app.on_key(Key::Char('5')));
        let mut uploaded = row(7, "COMPLETED");
        uploaded.extend(item(Map::from_iter([(
            "bucket".to_owned(),
            text("hybridlab-processed-k3x9q2ma"),
        )])));
        app.apply(Update::Db(DbUpdate {
            seq: first.seq,
            page: Ok(page(vec![uploaded], None)),
        }));
        let Some(Action::S3(list)) = app.on_key(Key::Char('o')) else {
            panic!("o lists the row's objects");
        };
        assert_eq!(list.bucket, BucketChoice::Processed);

        let mut pane = DbPane::default();
        let mut status = None;
        assert_eq!(pane.on_key(Key::Enter, &mut status), None, "no row");
        assert!(matches!(&status, Some((Severity::Error, _))));
    }

    #[test]
    fn the_objects_prefix_matches_the_servers_keys() {
        assert_eq!(hybridlab_wire::keys::image_prefix("abc"), "images/abc/");
        assert_eq!(
            short_time("2026-11-23T10:01:05.120Z"),
            "2026-11-23 10:01:05"
        );
        assert_eq!(size_text(&row(1, "COMPLETED")), "2.3 MiB");
        assert_eq!(size_text(&row(1, "FAILED")), "-");
    }
}
