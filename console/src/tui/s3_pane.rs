//! The S3 view: the selected stack's buckets browsed by prefix, an object's size, type,
//! metadata and versions, a presigned URL to copy, a preview of an image, a local file
//! uploaded into the event-driven pipeline, and `/` to narrow the listing to the keys that
//! contain a text.
//!
//! Keys change the state and name the read they need ([`S3Request`]); `lab::s3::serve` does
//! the read in a task and its answer ([`S3Update`]) comes back through [`S3Pane::apply`]. Every request
//! carries the sequence number of what it was for (the listing, or the selected object), so an
//! answer that arrives after the user moved on is dropped.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::action::{Action, Key, Loading, Severity, Typed, moved, type_into};
use super::logs_pane::contains_ignore_ascii_case;
use super::mouse::ListRows;
use super::palette::Palette;
use crate::lab::s3::{
    BucketChoice, Entry, KeyVersion, ListedObject, ListingPage, ObjectDetail, PREVIEW_MAX_BYTES,
    Preview, S3Answer, S3Read, S3Request, S3Update, VersionKind, too_big,
};
use crate::lab::units::human_bytes;

/// Entries of one listing kept in memory; past this, narrow the prefix.
pub const MAX_LISTED: usize = 5_000;

/// What the panel under the object's detail shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Lower {
    #[default]
    Nothing,
    Versions(Loading<Vec<KeyVersion>>),
    Preview(Loading<Preview>),
    /// A presigned GET URL, shown whole for terminals that do not take OSC 52 copies.
    Url(Loading<String>),
}

/// What the S3 view shows.
#[derive(Debug, Clone)]
pub struct S3Pane {
    /// The stack whose buckets these are (`None`: the target's only one).
    pub stack: Option<String>,
    pub bucket: BucketChoice,
    /// Ends in `/`, or is empty at the top of the bucket.
    pub prefix: String,
    pub listing: Loading<ListingPage>,
    /// A further page of the listing is being read.
    pub loading_more: bool,
    /// The entries shown are those whose key contains this, ignoring ASCII case (empty:
    /// every entry). Kept until Esc, or until another prefix or bucket is opened.
    pub filter: String,
    /// The filter being typed after `/` (every key goes to it while it is `Some`); the
    /// listing follows it as it is typed.
    pub typing_filter: Option<String>,
    /// Among the entries shown.
    pub selected: usize,
    /// HeadObject of the selected object.
    pub detail: Loading<ObjectDetail>,
    pub lower: Lower,
    /// The path of a local file to upload, while it is typed.
    pub upload_path: Option<String>,
    last_seq: u64,
    /// The number the listing's answers must carry.
    listing_seq: u64,
    /// The number answers about the selected object must carry.
    object_seq: u64,
}

impl Default for S3Pane {
    fn default() -> Self {
        Self {
            stack: None,
            bucket: BucketChoice::Images,
            prefix: String::new(),
            listing: Loading::Idle,
            loading_more: false,
            filter: String::new(),
            typing_filter: None,
            selected: 0,
            detail: Loading::Idle,
            lower: Lower::Nothing,
            upload_path: None,
            last_seq: 0,
            listing_seq: 0,
            object_seq: 0,
        }
    }
}

type Status = Option<(Severity, String)>;

impl S3Pane {
    /// Called when the view is shown; `stack` is the one selected in the Stack view. The
    /// listing is read the first time, after a failed read and when the stack changed;
    /// otherwise it stays as left.
    pub fn on_enter(&mut self, stack: Option<&str>) -> Option<Action> {
        // A failed read is tried again on the way in; anything else stays as it was left.
        let kept = !matches!(self.listing, Loading::Idle | Loading::Error(_));
        if self.stack.as_deref() == stack && kept {
            return None;
        }
        self.stack = stack.map(str::to_owned);
        self.bucket = BucketChoice::Images;
        Some(self.open(String::new()))
    }

    /// Shows the objects under `prefix` of `bucket` (the DynamoDB view's jump).
    pub fn show_prefix(
        &mut self,
        stack: Option<&str>,
        bucket: BucketChoice,
        prefix: &str,
    ) -> Option<Action> {
        self.stack = stack.map(str::to_owned);
        self.bucket = bucket;
        Some(self.open(prefix.to_owned()))
    }

    /// The filter the listing is shown through: the one being typed, else the one kept.
    pub fn key_filter(&self) -> &str {
        self.typing_filter.as_deref().unwrap_or(&self.filter)
    }

    /// The entries of the listing the filter lets through, in the listing's order.
    pub fn shown(&self) -> impl Iterator<Item = &Entry> {
        let filter = self.key_filter();
        self.listing
            .loaded()
            .into_iter()
            .flat_map(|listing| &listing.entries)
            .filter(move |entry| {
                filter.is_empty() || contains_ignore_ascii_case(entry.key(), filter)
            })
    }

    /// The entry under the cursor.
    pub fn selected_entry(&self) -> Option<&Entry> {
        self.shown().nth(self.selected)
    }

    fn selected_object(&self) -> Option<&ListedObject> {
        match self.selected_entry()? {
            Entry::Object(object) => Some(object),
            Entry::Folder(_) => None,
        }
    }

    /// Whether a path or the filter is being typed (every key goes to it).
    pub fn typing(&self) -> bool {
        self.upload_path.is_some() || self.typing_filter.is_some()
    }

    fn on_filter_key(&mut self, key: Key, status: &mut Status) -> Option<Action> {
        let before = self.selected_entry().map(|entry| entry.key().to_owned());
        let line = self.typing_filter.as_mut()?;
        match type_into(line, key) {
            Typed::Edited => {}
            Typed::Submitted => self.filter = self.typing_filter.take().unwrap_or_default(),
            Typed::Cancelled => {
                self.typing_filter = None;
                self.filter.clear();
                *status = Some((Severity::Info, "filter cleared".into()));
            }
        }
        self.follow_filter(before)
    }

    /// The filter changed: the entry that was selected stays selected if it is still shown,
    /// else the first one shown is (and its detail is read).
    fn follow_filter(&mut self, before: Option<String>) -> Option<Action> {
        let still_shown = before
            .as_deref()
            .and_then(|key| self.shown().position(|entry| entry.key() == key));
        match still_shown {
            Some(at) => {
                self.selected = at;
                None
            }
            None => {
                self.selected = 0;
                self.selection_changed()
            }
        }
    }

    fn on_path_key(&mut self, key: Key, status: &mut Status) -> Option<Action> {
        let line = self.upload_path.as_mut()?;
        match type_into(line, key) {
            Typed::Edited => None,
            Typed::Cancelled => {
                self.upload_path = None;
                None
            }
            Typed::Submitted => {
                let path = self.upload_path.take().unwrap_or_default();
                let path = path.trim();
                if path.is_empty() {
                    return None;
                }
                *status = Some((Severity::Info, format!("uploading {path}...")));
                let seq = self.fresh_seq();
                Some(Action::S3(S3Request {
                    seq,
                    stack: self.stack.clone(),
                    bucket: BucketChoice::Uploads,
                    read: S3Read::Upload {
                        path: path.to_owned(),
                    },
                }))
            }
        }
    }

    pub fn on_key(&mut self, key: Key, status: &mut Status) -> Option<Action> {
        if self.upload_path.is_some() {
            return self.on_path_key(key, status);
        }
        if self.typing_filter.is_some() {
            return self.on_filter_key(key, status);
        }
        match key {
            Key::Char('u') => {
                self.upload_path = Some(String::new());
                None
            }
            Key::Char('/') => {
                self.typing_filter = Some(self.filter.clone());
                None
            }
            Key::Up => {
                if self.selected == 0 {
                    return None;
                }
                self.selected -= 1;
                self.selection_changed()
            }
            Key::Down => {
                if self.selected + 1 < self.shown().count() {
                    self.selected += 1;
                    return self.selection_changed();
                }
                self.load_more(status)
            }
            Key::PageUp | Key::PageDown | Key::Home | Key::End | Key::Pick(_) => {
                let entries = self.shown().count();
                let selected = moved(self.selected, entries, key);
                if selected == self.selected {
                    return None;
                }
                self.selected = selected;
                self.selection_changed()
            }
            Key::Enter => match self.selected_entry()?.clone() {
                Entry::Folder(prefix) => Some(self.open(prefix)),
                Entry::Object(object) => {
                    self.detail = Loading::Loading;
                    Some(self.object_request(S3Read::Head { key: object.key }))
                }
            },
            Key::Backspace => {
                if self.prefix.is_empty() {
                    *status = Some((Severity::Info, "at the top of the bucket".into()));
                    return None;
                }
                let parent = parent_of(&self.prefix).to_owned();
                Some(self.open(parent))
            }
            Key::Char('b') => {
                self.bucket = self.bucket.next();
                Some(self.open(String::new()))
            }
            // Read again: the filter stays.
            Key::Char('r') => Some(self.list(self.prefix.clone())),
            Key::Char('v') => {
                let key = self.object_key_or_say(status)?;
                self.lower = Lower::Versions(Loading::Loading);
                Some(self.object_request(S3Read::Versions { key }))
            }
            Key::Char('c' | 'y') => {
                let key = self.object_key_or_say(status)?;
                self.lower = Lower::Url(Loading::Loading);
                Some(self.object_request(S3Read::Presign { key }))
            }
            Key::Char('p') => {
                let object = self.selected_object().cloned();
                let Some(object) = object else {
                    *status = Some((Severity::Error, "select an object to preview".into()));
                    return None;
                };
                if object.size > PREVIEW_MAX_BYTES {
                    *status = Some((Severity::Error, too_big(&object.key, object.size)));
                    return None;
                }
                self.lower = Lower::Preview(Loading::Loading);
                Some(self.object_request(S3Read::Preview { key: object.key }))
            }
            // Esc puts the panel away; with none open, it clears the filter.
            Key::Esc if self.lower == Lower::Nothing && !self.filter.is_empty() => {
                let before = self.selected_entry().map(|entry| entry.key().to_owned());
                self.filter.clear();
                *status = Some((Severity::Info, "filter cleared".into()));
                self.follow_filter(before)
            }
            Key::Esc => {
                self.lower = Lower::Nothing;
                None
            }
            _ => None,
        }
    }

    /// Folds an answer in, unless the user has moved on since it was asked for. A presigned
    /// URL comes back as the action that puts it on the clipboard.
    pub fn apply(&mut self, update: S3Update, status: &mut Status) -> Option<Action> {
        let S3Update { seq, answer } = update;
        match answer {
            S3Answer::Listed { more, page } => {
                if seq != self.listing_seq {
                    return None;
                }
                self.loading_more = false;
                match (page, more) {
                    (Ok(page), false) => {
                        self.listing = Loading::Loaded(page);
                        self.selected = 0;
                        return self.selection_changed();
                    }
                    (Ok(page), true) => {
                        if let Loading::Loaded(listing) = &mut self.listing {
                            let room = MAX_LISTED.saturating_sub(listing.entries.len());
                            listing.entries.extend(page.entries.into_iter().take(room));
                            listing.next = page.next;
                        }
                    }
                    (Err(err), false) => {
                        self.listing = Loading::Error(err.clone());
                        *status = Some((Severity::Error, err));
                    }
                    (Err(err), true) => *status = Some((Severity::Error, err)),
                }
            }
            // An upload is the user's own act: its answer is always heard, and shows where
            // the original landed.
            S3Answer::Uploaded(Ok(accepted)) => {
                *status = Some((
                    Severity::Info,
                    format!(
                        "uploaded as image {}: PENDING until the resizer takes it; the DynamoDB view follows it",
                        accepted.image_id
                    ),
                ));
                self.bucket = BucketChoice::Uploads;
                return Some(self.open(format!("uploads/{}/", accepted.image_id)));
            }
            S3Answer::Uploaded(Err(err)) => *status = Some((Severity::Error, err)),
            _ if seq != self.object_seq => {}
            S3Answer::Head(result) => {
                self.detail = loaded(result, status);
            }
            S3Answer::Versions(result) => {
                if let Lower::Versions(versions) = &mut self.lower {
                    *versions = loaded(result, status);
                }
            }
            S3Answer::Preview(result) => {
                if let Lower::Preview(preview) = &mut self.lower {
                    *preview = loaded(result, status);
                }
            }
            S3Answer::Presigned(result) => {
                let copy = result.as_ref().ok().map(|url| Action::Copy(url.clone()));
                if copy.is_some() {
                    *status = Some((
                        Severity::Info,
                        "a GET URL valid 15 minutes is on the clipboard (and below)".into(),
                    ));
                }
                let url = loaded(result, status);
                if let Lower::Url(shown) = &mut self.lower {
                    *shown = url;
                }
                return copy;
            }
        }
        None
    }

    fn fresh_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    fn request(&self, seq: u64, read: S3Read) -> Action {
        Action::S3(S3Request {
            seq,
            stack: self.stack.clone(),
            bucket: self.bucket,
            read,
        })
    }

    fn object_request(&self, read: S3Read) -> Action {
        self.request(self.object_seq, read)
    }

    /// Opens `prefix` of the current bucket: its listing is read, unfiltered.
    fn open(&mut self, prefix: String) -> Action {
        self.filter.clear();
        self.typing_filter = None;
        self.list(prefix)
    }

    /// Lists `prefix` of the current bucket afresh; whatever was asked before is stale.
    fn list(&mut self, prefix: String) -> Action {
        self.listing_seq = self.fresh_seq();
        self.object_seq = self.fresh_seq();
        self.prefix = prefix.clone();
        self.listing = Loading::Loading;
        self.loading_more = false;
        self.selected = 0;
        self.forget_object();
        self.request(
            self.listing_seq,
            S3Read::List {
                prefix,
                continuation: None,
            },
        )
    }

    fn load_more(&mut self, status: &mut Status) -> Option<Action> {
        let listing = self.listing.loaded()?;
        let continuation = listing.next.clone()?;
        if listing.entries.len() >= MAX_LISTED {
            *status = Some((
                Severity::Info,
                format!(
                    "the view keeps the first {MAX_LISTED} keys; open a folder to see the rest"
                ),
            ));
            return None;
        }
        if self.loading_more {
            return None;
        }
        self.loading_more = true;
        Some(self.request(
            self.listing_seq,
            S3Read::List {
                prefix: self.prefix.clone(),
                continuation: Some(continuation),
            },
        ))
    }

    fn forget_object(&mut self) {
        self.detail = Loading::Idle;
        self.lower = Lower::Nothing;
    }

    /// The cursor is on another entry: what was read of the previous one goes, and an
    /// object's detail is read.
    fn selection_changed(&mut self) -> Option<Action> {
        self.object_seq = self.fresh_seq();
        self.forget_object();
        let key = self.selected_object()?.key.clone();
        self.detail = Loading::Loading;
        Some(self.object_request(S3Read::Head { key }))
    }

    fn object_key_or_say(&self, status: &mut Status) -> Option<String> {
        let key = self.selected_object().map(|object| object.key.clone());
        if key.is_none() {
            *status = Some((
                Severity::Error,
                "select an object first (not a folder)".into(),
            ));
        }
        key
    }
}

fn loaded<T>(result: Result<T, String>, status: &mut Status) -> Loading<T> {
    match result {
        Ok(value) => Loading::Loaded(value),
        Err(err) => {
            *status = Some((Severity::Error, err.clone()));
            Loading::Error(err)
        }
    }
}

/// The prefix one level up: `images/abc/` gives `images/`, `images/` gives ``.
pub fn parent_of(prefix: &str) -> &str {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    trimmed.rfind('/').map_or("", |slash| &prefix[..=slash])
}

/// One terminal cell of a preview: the upper pixel (drawn as `▀`'s foreground) and the lower
/// one (its background; `None` below an image of an odd number of rows).
pub type HalfBlock = ([u8; 3], Option<[u8; 3]>);

/// `preview` fitted into `columns` x `rows` cells, aspect kept: each cell two pixels, one
/// above the other, each the average of the pixels it covers.
pub fn half_blocks(preview: &Preview, columns: u16, rows: u16) -> Vec<Vec<HalfBlock>> {
    if preview.width == 0 || preview.height == 0 || columns == 0 || rows == 0 {
        return Vec::new();
    }
    let scale = (f64::from(columns) / f64::from(preview.width))
        .min(f64::from(rows) * 2.0 / f64::from(preview.height));
    let width = ((f64::from(preview.width) * scale).round() as u32).clamp(1, u32::from(columns));
    let height = ((f64::from(preview.height) * scale).round() as u32).clamp(1, u32::from(rows) * 2);
    let pixel = |x: u32, y: u32| -> [u8; 3] {
        let span = |at: u32, to: u32, from: u32| {
            let start = u64::from(at) * u64::from(from) / u64::from(to);
            let end = (u64::from(at + 1) * u64::from(from) / u64::from(to)).max(start + 1);
            (start as u32, end as u32)
        };
        let (x0, x1) = span(x, width, preview.width);
        let (y0, y1) = span(y, height, preview.height);
        let mut sum = [0u64; 3];
        for sy in y0..y1 {
            for sx in x0..x1 {
                let source = preview.pixel(sx, sy);
                for channel in 0..3 {
                    sum[channel] += u64::from(source[channel]);
                }
            }
        }
        let count = u64::from((x1 - x0) * (y1 - y0)).max(1);
        sum.map(|total| (total / count) as u8)
    };
    (0..height.div_ceil(2))
        .map(|row| {
            (0..width)
                .map(|x| {
                    let lower = (row * 2 + 1 < height).then(|| pixel(x, row * 2 + 1));
                    (pixel(x, row * 2), lower)
                })
                .collect()
        })
        .collect()
}

/// Draws the view; returns the rows of the listing, if it shows entries.
pub fn draw(frame: &mut Frame, area: Rect, pane: &S3Pane, palette: Palette) -> Option<ListRows> {
    let prompt = match (&pane.upload_path, &pane.typing_filter) {
        (Some(line), _) => Some((
            line,
            " upload a local file into the pipeline: its path; Enter sends, Esc cancels ",
        )),
        (None, Some(line)) => Some((
            line,
            " filter: keys that contain (any case); Enter keeps it, Esc clears it ",
        )),
        (None, None) => None,
    };
    let area = match prompt {
        Some((line, title)) => {
            let [prompt, rest] =
                Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::raw(line.clone()),
                    Span::styled("_", palette.selected()),
                ]))
                .block(Block::bordered().title(title)),
                prompt,
            );
            rest
        }
        None => area,
    };
    let [list, side] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Min(0)]).areas(area);
    let rows = draw_listing(frame, list, pane, palette);
    let detail = detail_lines(pane, palette, usize::from(side.width.saturating_sub(2)));
    // The detail takes the rows it needs; the panel below keeps some.
    let needed = u16::try_from(detail.len()).unwrap_or(u16::MAX);
    let keep_below = match &pane.lower {
        Lower::Nothing => 3,
        Lower::Versions(_) => 6,
        Lower::Preview(_) | Lower::Url(_) => side.height / 2,
    };
    let detail_height = needed
        .saturating_add(2)
        .min(side.height.saturating_sub(keep_below));
    let [detail_area, lower] =
        Layout::vertical([Constraint::Length(detail_height), Constraint::Min(0)]).areas(side);
    frame.render_widget(
        Paragraph::new(detail).block(Block::bordered().title(" object ")),
        detail_area,
    );
    draw_lower(frame, lower, pane, palette);
    rows
}

fn draw_listing(
    frame: &mut Frame,
    area: Rect,
    pane: &S3Pane,
    palette: Palette,
) -> Option<ListRows> {
    let bucket = pane.bucket.label();
    let title = format!(
        " {bucket} bucket: /{} ",
        end_of(&pane.prefix, usize::from(area.width.saturating_sub(21)))
    );
    let block = Block::bordered().title(title);
    let listing = match &pane.listing {
        Loading::Loaded(listing) => listing,
        other => {
            let text = match other {
                Loading::Loading => "reading the listing...".to_owned(),
                Loading::Error(err) => format!("{err}\n\nr reads again, b the next bucket."),
                _ => "no listing yet: r reads it".to_owned(),
            };
            frame.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
                area,
            );
            return None;
        }
    };
    let filter = pane.key_filter();
    let shown: Vec<&Entry> = pane.shown().collect();
    if shown.is_empty() {
        let text = if !listing.entries.is_empty() {
            format!("no key here contains `{filter}`; Esc clears the filter.")
        } else if pane.prefix.is_empty() {
            "the bucket is empty.".to_owned()
        } else {
            "nothing under this prefix; Backspace goes up.".to_owned()
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return None;
    }
    let rows = shown.iter().map(|entry| {
        let name = entry
            .key()
            .strip_prefix(&pane.prefix)
            .unwrap_or(entry.key());
        match entry {
            Entry::Folder(_) => Row::new([
                Cell::from(name.to_owned()).style(palette.fg(Color::Blue).patch(palette.bold())),
                Cell::from(Line::from("dir").right_aligned()),
            ]),
            Entry::Object(object) => Row::new([
                Cell::from(name.to_owned()),
                Cell::from(Line::from(human_bytes(object.size)).right_aligned()),
            ]),
        }
    });
    let mut footer = if filter.is_empty() {
        format!(" {} entries ", listing.entries.len())
    } else {
        format!(
            " {} of {} match `{filter}` ",
            shown.len(),
            listing.entries.len()
        )
    };
    if pane.loading_more {
        footer.push_str("+ reading more... ");
    } else if listing.next.is_some() {
        footer.push_str("+ more: Down at the end ");
    }
    let inner = block.inner(area);
    let table = Table::new(rows, [Constraint::Min(10), Constraint::Length(9)])
        .row_highlight_style(palette.selected())
        .block(block.title_bottom(footer));
    let mut state = TableState::default().with_selected(Some(pane.selected));
    frame.render_stateful_widget(table, area, &mut state);
    Some(ListRows::drawn(inner, state.offset(), shown.len()))
}

/// The last `width` characters of `text`, with `…` in front when some are cut: the end of a
/// prefix says the most.
pub fn end_of(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    let keep = width.saturating_sub(1);
    let tail: String = text.chars().skip(count - keep).collect();
    format!("…{tail}")
}

/// `text` cut into pieces of `width` characters (at least one piece).
fn pieces(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width.max(1))
        .map(|piece| piece.iter().collect())
        .collect()
}

/// The detail of the selected entry, laid out for `width` columns: a field on one line when
/// it fits, else its name on one and the value cut over the next ones (ids and URLs have no
/// spaces to wrap at). Laid out here, so the panel knows how many rows it needs.
fn detail_lines(pane: &S3Pane, palette: Palette, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut field = |name: &str, value: &str| {
        let name_style = palette.bold();
        if name.chars().count() + 1 + value.chars().count() <= width {
            lines.push(Line::from(vec![
                Span::styled(format!("{name} "), name_style),
                Span::raw(value.to_owned()),
            ]));
        } else {
            lines.push(Line::styled(name.to_owned(), name_style));
            lines.extend(pieces(value, width).into_iter().map(Line::from));
        }
    };
    let object = match pane.selected_entry() {
        Some(Entry::Object(object)) => object,
        Some(Entry::Folder(prefix)) => {
            let name = prefix.strip_prefix(&pane.prefix).unwrap_or(prefix);
            field("folder", name);
            field("Enter", "opens it");
            field("Backspace", "goes up");
            return lines;
        }
        None => {
            field("nothing", "selected");
            return lines;
        }
    };
    let name = object.key.strip_prefix(&pane.prefix).unwrap_or(&object.key);
    field("name", name);
    match &pane.detail {
        Loading::Loaded(detail) => {
            let size = detail.size.unwrap_or(object.size);
            field("size", &format!("{} ({size} B)", human_bytes(size)));
            field("type", detail.content_type.as_deref().unwrap_or("-"));
            field("modified", &detail.last_modified);
            if let Some(version) = &detail.version_id {
                field("version", version);
            }
            for (name, value) in &detail.metadata {
                field(name, value);
            }
        }
        other => {
            field(
                "size",
                &format!("{} ({} B)", human_bytes(object.size), object.size),
            );
            field("modified", &object.last_modified);
            match other {
                Loading::Loading => field("type", "reading..."),
                Loading::Error(err) => lines.extend(
                    pieces(err, width)
                        .into_iter()
                        .map(|piece| Line::styled(piece, palette.fg(Color::Red))),
                ),
                _ => {}
            }
        }
    }
    lines
}

fn draw_lower(frame: &mut Frame, area: Rect, pane: &S3Pane, palette: Palette) {
    let waiting = |what: &str| -> String { format!("reading {what}...") };
    match &pane.lower {
        Lower::Nothing => {
            let hint = if matches!(pane.selected_entry(), Some(Entry::Object(_))) {
                vec![
                    "v  versions",
                    "c  copy a presigned URL",
                    "p  preview the image",
                    "/  filter the keys",
                ]
            } else {
                vec![
                    "b  the next bucket",
                    "r  read again",
                    "/  filter the keys",
                    "?  every key",
                ]
            };
            let hint: Vec<Line> = hint.into_iter().map(Line::from).collect();
            frame.render_widget(Paragraph::new(hint).block(Block::bordered()), area);
        }
        Lower::Versions(versions) => {
            let block = Block::bordered().title(" versions, newest first ");
            let Loading::Loaded(versions) = versions else {
                let text = match versions {
                    Loading::Error(err) => err.clone(),
                    _ => waiting("the versions"),
                };
                frame.render_widget(
                    Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
                    area,
                );
                return;
            };
            // The version id only when there is room; the time without the year when narrow.
            let wide = area.width >= 52;
            let narrow = area.width < 40;
            let rows = versions.iter().map(|version| {
                let latest = if version.is_latest { "*" } else { " " };
                let what = match version.kind {
                    VersionKind::Object => {
                        Cell::from(version.size.map(human_bytes).unwrap_or_default())
                    }
                    VersionKind::DeleteMarker => {
                        Cell::from(version.kind.label()).style(palette.fg(Color::Yellow))
                    }
                };
                let time = version.last_modified.replace('T', " ");
                let time = if narrow {
                    time.chars().skip(5).take(14).collect()
                } else {
                    time
                };
                let mut cells = vec![Cell::from(latest), Cell::from(time), what];
                if wide {
                    cells.push(Cell::from(version.version_id.clone()));
                }
                Row::new(cells)
            });
            let mut widths = vec![
                Constraint::Length(1),
                Constraint::Length(if narrow { 14 } else { 20 }),
                Constraint::Length(13),
            ];
            if wide {
                widths.push(Constraint::Min(10));
            }
            let title_bottom = format!(" {} (* latest) ", versions.len());
            frame.render_widget(
                Table::new(rows, widths).block(block.title_bottom(title_bottom)),
                area,
            );
        }
        Lower::Url(url) => {
            let block = Block::bordered().title(" presigned GET URL, 15 minutes (copied) ");
            let text = match url {
                Loading::Loaded(url) => url.clone(),
                Loading::Error(err) => err.clone(),
                _ => "presigning...".to_owned(),
            };
            frame.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
                area,
            );
        }
        Lower::Preview(preview) => {
            let block = Block::bordered().title(" preview ");
            let preview = match preview {
                Loading::Loaded(preview) if palette.colour() => preview,
                Loading::Loaded(_) => {
                    frame.render_widget(
                        Paragraph::new("the preview is drawn in colour, and NO_COLOR is set; unset it to see the image")
                            .wrap(Wrap { trim: true })
                            .block(block),
                        area,
                    );
                    return;
                }
                other => {
                    let text = match other {
                        Loading::Error(err) => err.clone(),
                        _ => waiting("the image"),
                    };
                    frame.render_widget(
                        Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
                        area,
                    );
                    return;
                }
            };
            let block = block.title_bottom(format!(
                " {}x{} ",
                preview.source_width, preview.source_height
            ));
            let inner = block.inner(area);
            frame.render_widget(block, area);
            let lines: Vec<Line> = half_blocks(preview, inner.width, inner.height)
                .into_iter()
                .map(|cells| {
                    Line::from(
                        cells
                            .into_iter()
                            .map(|(upper, lower)| {
                                let [r, g, b] = upper;
                                let mut style = Style::default().fg(Color::Rgb(r, g, b));
                                if let Some([r, g, b]) = lower {
                                    style = style.bg(Color::Rgb(r, g, b));
                                }
                                Span::styled("▀", style)
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            frame.render_widget(Paragraph::new(lines), inner);
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::collections::BTreeMap;
    use std::io::Cursor;

    use crate::lab::s3::{PREVIEW_HEIGHT, PREVIEW_WIDTH, decode_preview};
    use crate::tui::action::Update;
    use crate::tui::app::{App, Tab};
    use crate::tui::fixtures;

    const IMAGE_ID: &str = "0190a0b0-0000-7000-8000-000000000001";

    fn request(action: Option<Action>) -> S3Request {
        match action {
            Some(Action::S3(request)) => request,
            other => panic!("expected an S3 read, got {other:?}"),
        }
    }

    fn object(key: &str, size: i64) -> Entry {
        Entry::Object(ListedObject {
            key: key.into(),
            size,
            last_modified: "2026-11-23T10:00:05Z".into(),
            etag: "\"e\"".into(),
            storage_class: "STANDARD".into(),
        })
    }

    fn listed(seq: u64, entries: Vec<Entry>, next: Option<&str>) -> S3Update {
        S3Update {
            seq,
            answer: S3Answer::Listed {
                more: false,
                page: Ok(ListingPage {
                    entries,
                    next: next.map(str::to_owned),
                }),
            },
        }
    }

    fn image_objects() -> Vec<Entry> {
        let prefix = format!("images/{IMAGE_ID}/");
        vec![
            object(&format!("{prefix}large.jpg"), 183_412),
            object(&format!("{prefix}medium.jpg"), 61_230),
            object(&format!("{prefix}original.png"), 2_411_877),
            object(&format!("{prefix}thumbnail.jpg"), 8_190),
        ]
    }

    fn version(id: &str, kind: VersionKind, latest: bool, when: &str) -> KeyVersion {
        KeyVersion {
            version_id: id.into(),
            kind,
            is_latest: latest,
            size: (kind == VersionKind::Object).then_some(8_190),
            last_modified: when.into(),
            etag: None,
        }
    }

    /// The S3 view on an image's objects, the thumbnail selected with its detail and versions,
    /// every answer folded in through `App::apply` as the event loop does.
    fn app_on_an_image() -> App {
        let mut app = fixtures::app_with_stack();
        let first = request(app.on_key(Key::Char('4')));
        assert_eq!(app.tab, Tab::S3);
        assert_eq!(first.stack.as_deref(), Some("k3x9q2ma"));
        let prefix = format!("images/{IMAGE_ID}/");
        let list = request(
            app.s3
                .show_prefix(Some("k3x9q2ma"), BucketChoice::Images, &prefix),
        );
        app.apply(Update::S3(listed(list.seq, image_objects(), None)));
        for _ in 0..3 {
            app.on_key(Key::Down);
        }
        let head = request(app.on_key(Key::Enter));
        assert_eq!(
            head.read,
            S3Read::Head {
                key: format!("{prefix}thumbnail.jpg")
            }
        );
        app.apply(Update::S3(S3Update {
            seq: head.seq,
            answer: S3Answer::Head(Ok(ObjectDetail {
                size: Some(8_190),
                content_type: Some("image/jpeg".into()),
                last_modified: "2026-11-23T10:00:05Z".into(),
                etag: Some("\"e\"".into()),
                version_id: Some("3HL4kqtJlcpXroDTDmJ".into()),
                metadata: BTreeMap::from([("image-id".into(), IMAGE_ID.into())]),
            })),
        }));
        let versions = request(app.on_key(Key::Char('v')));
        app.apply(Update::S3(S3Update {
            seq: versions.seq,
            answer: S3Answer::Versions(Ok(vec![
                version(
                    "3HL4kqtJlcpXroDTDmJ",
                    VersionKind::Object,
                    true,
                    "2026-11-23T10:00:05Z",
                ),
                version(
                    "null",
                    VersionKind::DeleteMarker,
                    false,
                    "2026-11-23T09:58:00Z",
                ),
                version(
                    "Lb2dNq0PvsY1aR3",
                    VersionKind::Object,
                    false,
                    "2026-11-23T09:50:00Z",
                ),
            ])),
        }));
        app
    }

    fn app_with_a_url() -> App {
        let mut app = app_on_an_image();
        let presign = request(app.on_key(Key::Char('c')));
        let copied = app.apply(Update::S3(S3Update {
            seq: presign.seq,
            answer: S3Answer::Presigned(Ok(
                "http://127.0.0.1:4566/hybridlab-images-k3x9q2ma/images/0190a0b0-0000-7000-8000-000000000001/thumbnail.jpg?x-id=GetObject&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261123T100005Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef".into(),
            )),
        }));
        assert!(matches!(copied, Some(Action::Copy(url)) if url.contains("X-Amz-Expires=900")));
        app
    }

    /// Red at the top left, green top right, blue bottom left, white bottom right.
    fn quadrants(width: u32, height: u32) -> Preview {
        let pixels = (0..height)
            .flat_map(|y| {
                (0..width).map(move |x| match (x < width / 2, y < height / 2) {
                    (true, true) => [255, 0, 0],
                    (false, true) => [0, 255, 0],
                    (true, false) => [0, 0, 255],
                    (false, false) => [255, 255, 255],
                })
            })
            .collect();
        Preview {
            source_width: width * 10,
            source_height: height * 10,
            width,
            height,
            pixels,
        }
    }

    fn app_with_a_preview() -> App {
        let mut app = app_on_an_image();
        let preview = request(app.on_key(Key::Char('p')));
        app.apply(Update::S3(S3Update {
            seq: preview.seq,
            answer: S3Answer::Preview(Ok(quadrants(160, 96))),
        }));
        app
    }

    /// The S3 view on an image's objects and two more, read through `App` as the event
    /// loop does; the first object selected.
    fn app_on_a_listing() -> App {
        let mut app = fixtures::app_with_stack();
        request(app.on_key(Key::Char('4')));
        let prefix = format!("images/{IMAGE_ID}/");
        let list = request(
            app.s3
                .show_prefix(Some("k3x9q2ma"), BucketChoice::Images, &prefix),
        );
        let mut entries = image_objects();
        entries.push(object(&format!("{prefix}thumbnail.webp"), 6_020));
        entries.push(object(&format!("{prefix}README.txt"), 310));
        app.apply(Update::S3(listed(list.seq, entries, Some("token-2"))));
        app
    }

    fn selected_name(app: &App) -> Option<String> {
        let key = app.s3.selected_entry()?.key().to_owned();
        Some(key.rsplit('/').next().unwrap_or_default().to_owned())
    }

    fn head_of(action: Option<Action>) -> String {
        match request(action).read {
            S3Read::Head { key } => key.rsplit('/').next().unwrap_or_default().to_owned(),
            other => panic!("expected the object's detail, got {other:?}"),
        }
    }

    #[test]
    fn a_filter_being_typed_at_80x24() {
        let mut app = app_on_a_listing();
        app.on_key(Key::Char('/'));
        for c in "JPG".chars() {
            app.on_key(Key::Char(c));
        }
        let screen = fixtures::screen(&app, 80, 24, true);
        let text = screen.to_string();
        assert!(text.contains("JPG_"), "the filter as typed: {text}");
        assert!(text.contains("3 of 6 match `JPG`"), "{text}");
        assert!(
            !text.contains("original.png") && !text.contains("README"),
            "{text}"
        );
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn the_filter_narrows_the_listing_as_typed_keeps_the_selection_and_esc_clears_it() {
        let mut app = app_on_a_listing();
        for _ in 0..3 {
            app.on_key(Key::Down);
        }
        assert_eq!(selected_name(&app).as_deref(), Some("thumbnail.jpg"));
        assert_eq!(app.on_key(Key::Char('/')), None);
        assert!(app.s3.typing());
        // Keys the app or the view take for themselves are typed, any case.
        for c in "THUMB".chars() {
            assert_eq!(
                app.on_key(Key::Char(c)),
                None,
                "thumbnail.jpg stays selected"
            );
        }
        assert_eq!(app.s3.shown().count(), 2);
        assert_eq!(app.s3.selected, 0, "the first of the two shown");
        assert_eq!(selected_name(&app).as_deref(), Some("thumbnail.jpg"));
        // The selected object goes out of the list: the first shown is read.
        for c in "nail.".chars() {
            app.on_key(Key::Char(c));
        }
        assert_eq!(head_of(app.on_key(Key::Char('w'))), "thumbnail.webp");
        assert_eq!(app.s3.shown().count(), 1);
        // Enter keeps the filter; the keys move and act again.
        assert_eq!(app.on_key(Key::Enter), None);
        assert!(!app.s3.typing());
        assert_eq!(app.s3.filter, "THUMBnail.w");
        let text = fixtures::screen(&app, 80, 24, true).to_string();
        assert!(text.contains("1 of 6 match `THUMBnail.w`"), "{text}");
        // Down past the last entry shown reads the listing's next page, as unfiltered.
        assert_eq!(
            request(app.on_key(Key::Char('j'))).read,
            S3Read::List {
                prefix: format!("images/{IMAGE_ID}/"),
                continuation: Some("token-2".into())
            }
        );
        // r reads the listing again and keeps the filter; Esc clears it, the selection stays.
        request(app.on_key(Key::Char('r')));
        assert_eq!(app.s3.filter, "THUMBnail.w");
        let list = request(app.s3.show_prefix(
            Some("k3x9q2ma"),
            BucketChoice::Images,
            &format!("images/{IMAGE_ID}/"),
        ));
        assert_eq!(app.s3.filter, "", "another listing starts unfiltered");
        let mut entries = image_objects();
        entries.push(object(&format!("images/{IMAGE_ID}/thumbnail.webp"), 6_020));
        app.apply(Update::S3(listed(list.seq, entries, None)));
        app.on_key(Key::Char('/'));
        for c in "webp".chars() {
            app.on_key(Key::Char(c));
        }
        app.on_key(Key::Enter);
        assert_eq!(selected_name(&app).as_deref(), Some("thumbnail.webp"));
        assert_eq!(
            app.on_key(Key::Esc),
            None,
            "the selection stays: nothing to read"
        );
        assert_eq!(app.s3.filter, "");
        assert_eq!(app.s3.shown().count(), 5);
        assert_eq!(selected_name(&app).as_deref(), Some("thumbnail.webp"));
        assert_eq!(app.s3.selected, 4);
        // Esc while typing clears the filter too, and says so.
        app.on_key(Key::Char('/'));
        app.on_key(Key::Char('x'));
        assert_eq!(app.s3.shown().count(), 0);
        app.on_key(Key::Esc);
        assert!(!app.s3.typing());
        assert_eq!(app.s3.shown().count(), 5);
        assert!(matches!(&app.status, Some((Severity::Info, text)) if text == "filter cleared"));
        assert_eq!(app.tab, Tab::S3);
        assert!(!app.quit);
    }

    #[test]
    fn a_filter_that_matches_nothing_says_so() {
        let mut app = app_on_a_listing();
        app.on_key(Key::Char('/'));
        for c in "zzz".chars() {
            app.on_key(Key::Char(c));
        }
        assert_eq!(app.s3.selected_entry(), None);
        let text = fixtures::screen(&app, 80, 24, true).to_string();
        assert!(text.contains("no key here contains `zzz`"), "{text}");
        assert_eq!(app.on_key(Key::Down), None, "typed, not a move");
    }

    #[test]
    fn j_k_g_and_shift_g_move_through_the_listing_and_a_click_picks_a_row() {
        let mut app = app_on_a_listing();
        assert_eq!(head_of(app.on_key(Key::Char('j'))), "medium.jpg");
        assert_eq!(head_of(app.on_key(Key::Char('k'))), "large.jpg");
        assert_eq!(head_of(app.on_key(Key::Char('G'))), "README.txt");
        assert_eq!(
            app.on_key(Key::Char('G')),
            None,
            "already at the bottom: nothing read again"
        );
        assert_eq!(head_of(app.on_key(Key::Char('g'))), "large.jpg");

        let (screen, map) = fixtures::screen_and_map(&app, 80, 24);
        let (column, row) = fixtures::find(&screen, "original.png").expect("drawn");
        assert_eq!(
            head_of(app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map)),
            "original.png"
        );
        assert_eq!(app.s3.selected, 2);
        // Filtered, a row is still the entry drawn on it.
        app.on_key(Key::Char('/'));
        app.on_key(Key::Char('p'));
        app.on_key(Key::Enter);
        let (screen, map) = fixtures::screen_and_map(&app, 80, 24);
        let (column, row) = fixtures::find(&screen, "thumbnail.webp").expect("drawn");
        assert_eq!(
            head_of(app.on_mouse(crate::tui::action::Mouse::Click { column, row }, &map)),
            "thumbnail.webp"
        );
        assert_eq!(selected_name(&app).as_deref(), Some("thumbnail.webp"));
        // The wheel moves as Up and Down.
        assert_eq!(
            head_of(app.on_mouse(crate::tui::action::Mouse::WheelUp, &map)),
            "thumbnail.jpg"
        );
    }

    #[test]
    fn an_objects_detail_versions_and_url_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&app_on_an_image(), 80, 24, true));
    }

    #[test]
    fn an_objects_detail_versions_and_url_at_160x48() {
        insta::assert_snapshot!(fixtures::screen(&app_on_an_image(), 160, 48, true));
    }

    #[test]
    fn a_copied_url_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&app_with_a_url(), 80, 24, true));
    }

    #[test]
    fn the_help_over_a_data_view_lists_its_keys_and_fits_80x24() {
        for (tab, key) in [(Tab::S3, "S3: v"), (Tab::Db, "DynamoDB: /")] {
            let mut app = app_on_an_image();
            app.tab = tab;
            app.help = true;
            // 24 rows less the header, tabs and status line; the borders and the log's row.
            assert!(crate::tui::view::keys_for(tab).count() + 3 <= 21, "{tab:?}");
            let text = format!("{:?}", fixtures::screen(&app, 80, 24, true).buffer());
            assert!(text.contains(key), "{tab:?}: {text}");
            assert!(!text.contains("Invoke: i"), "{tab:?}: only its keys");
        }
    }

    #[test]
    fn the_end_of_a_long_prefix_is_kept() {
        assert_eq!(end_of("images/abc/", 20), "images/abc/");
        assert_eq!(end_of("images/abc/", 5), "…abc/");
        assert_eq!(end_of("images/abc/", 0), "…");
    }

    #[test]
    fn a_preview_at_80x24() {
        insta::assert_snapshot!(fixtures::screen(&app_with_a_preview(), 80, 24, true));
    }

    #[test]
    fn a_preview_at_120x40() {
        insta::assert_snapshot!(fixtures::screen(&app_with_a_preview(), 120, 40, true));
    }

    #[test]
    fn the_top_of_the_bucket_with_folders_and_more_to_load() {
        let mut app = fixtures::app_with_stack();
        let list = request(app.on_key(Key::Char('4')));
        let entries = vec![
            Entry::Folder("images/".into()),
            object("notes.txt", 120),
            Entry::Folder("uploads/".into()),
        ];
        app.apply(Update::S3(listed(list.seq, entries, Some("token-2"))));
        insta::assert_snapshot!(fixtures::screen(&app, 80, 24, true));
    }

    #[test]
    fn the_preview_is_drawn_in_true_colour_half_blocks() {
        let backend = fixtures::screen(&app_with_a_preview(), 80, 24, true);
        let buffer = backend.buffer();
        let cell = buffer
            .content()
            .iter()
            .find(|cell| cell.symbol() == "▀")
            .expect("a half block");
        // The first cell is the image's top left: red above and below.
        assert_eq!(cell.fg, Color::Rgb(255, 0, 0));
        assert_eq!(cell.bg, Color::Rgb(255, 0, 0));
        let last = buffer
            .content()
            .iter()
            .rfind(|cell| cell.symbol() == "▀")
            .expect("a half block");
        assert_eq!(last.fg, Color::Rgb(255, 255, 255), "bottom right is white");
    }

    #[test]
    fn without_colour_the_preview_says_it_needs_colour() {
        let text = format!(
            "{:?}",
            fixtures::screen(&app_with_a_preview(), 120, 40, false).buffer()
        );
        assert!(text.contains("NO_COLOR"), "{text}");
        assert!(!text.contains('▀'));
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        for app in [app_on_an_image(), app_with_a_preview(), app_with_a_url()] {
            for (width, height) in [(1, 1), (10, 4), (20, 5), (40, 10), (80, 6)] {
                fixtures::screen(&app, width, height, true);
            }
        }
    }

    #[test]
    fn u_uploads_a_typed_path_and_then_shows_where_the_original_landed() {
        let mut pane = S3Pane::default();
        let mut status = None;
        request(pane.on_enter(Some("k3x9q2ma")));
        assert_eq!(pane.on_key(Key::Char('u'), &mut status), None);
        assert!(pane.typing());
        for key in "cat.jpg".chars() {
            assert_eq!(pane.on_key(Key::Char(key), &mut status), None);
        }
        // `b` is typed, not a bucket change, while the path is being typed.
        pane.on_key(Key::Char('b'), &mut status);
        pane.on_key(Key::Backspace, &mut status);
        let upload = request(pane.on_key(Key::Enter, &mut status));
        assert!(!pane.typing());
        assert_eq!(
            upload.read,
            S3Read::Upload {
                path: "cat.jpg".into()
            }
        );
        assert_eq!(upload.stack.as_deref(), Some("k3x9q2ma"));

        let listing = request(pane.apply(
            S3Update {
                seq: upload.seq,
                answer: S3Answer::Uploaded(Ok(crate::lab::upload::Accepted {
                    image_id: IMAGE_ID.into(),
                    bucket: "hybridlab-uploads-k3x9q2ma".into(),
                    key: format!("uploads/{IMAGE_ID}/cat.jpg"),
                })),
            },
            &mut status,
        ));
        assert_eq!(listing.bucket, BucketChoice::Uploads);
        assert!(
            matches!(listing.read, S3Read::List { ref prefix, .. } if *prefix == format!("uploads/{IMAGE_ID}/"))
        );
        assert!(matches!(&status, Some((Severity::Info, text)) if text.contains("PENDING")));

        // A refusal is said, and Esc or an empty path sends nothing.
        pane.apply(
            S3Update {
                seq: 999,
                answer: S3Answer::Uploaded(Err("stack `k3x9q2ma` has no upload pipeline".into())),
            },
            &mut status,
        );
        assert!(matches!(&status, Some((Severity::Error, text)) if text.contains("pipeline")));
        pane.on_key(Key::Char('u'), &mut status);
        pane.on_key(Key::Char('x'), &mut status);
        assert_eq!(pane.on_key(Key::Esc, &mut status), None);
        assert!(!pane.typing());
        pane.on_key(Key::Char('u'), &mut status);
        assert_eq!(pane.on_key(Key::Enter, &mut status), None);
    }

    #[test]
    fn folders_open_with_enter_and_close_with_backspace() {
        let mut pane = S3Pane::default();
        let mut status = None;
        let list = request(pane.on_enter(Some("k3x9q2ma")));
        assert_eq!(
            list.read,
            S3Read::List {
                prefix: String::new(),
                continuation: None
            }
        );
        assert_eq!(pane.on_enter(Some("k3x9q2ma")), None, "read once");
        pane.apply(
            listed(list.seq, vec![Entry::Folder("images/".into())], None),
            &mut status,
        );
        assert_eq!(
            pane.on_key(Key::Down, &mut status),
            None,
            "one entry: nothing below"
        );
        let open = request(pane.on_key(Key::Enter, &mut status));
        assert_eq!(pane.prefix, "images/");
        assert!(matches!(open.read, S3Read::List { ref prefix, .. } if prefix == "images/"));
        pane.apply(
            listed(
                open.seq,
                vec![Entry::Folder(format!("images/{IMAGE_ID}/"))],
                None,
            ),
            &mut status,
        );
        request(pane.on_key(Key::Enter, &mut status));
        assert_eq!(pane.prefix, format!("images/{IMAGE_ID}/"));
        request(pane.on_key(Key::Backspace, &mut status));
        assert_eq!(pane.prefix, "images/");
        request(pane.on_key(Key::Backspace, &mut status));
        assert_eq!(pane.prefix, "");
        assert_eq!(pane.on_key(Key::Backspace, &mut status), None);
        assert!(matches!(&status, Some((Severity::Info, text)) if text.contains("top")));
        let mut cycled = Vec::new();
        for _ in 0..4 {
            cycled.push(request(pane.on_key(Key::Char('b'), &mut status)).bucket);
        }
        assert_eq!(
            cycled,
            [
                BucketChoice::Artifacts,
                BucketChoice::Uploads,
                BucketChoice::Processed,
                BucketChoice::Images
            ]
        );
        request(pane.on_key(Key::Char('b'), &mut status));
        let again = request(pane.on_enter(Some("zz81pp0c")));
        assert_eq!(
            again.bucket,
            BucketChoice::Images,
            "another stack starts over"
        );
    }

    #[test]
    fn the_parent_of_a_prefix_is_one_level_up() {
        assert_eq!(parent_of("images/abc/"), "images/");
        assert_eq!(parent_of("images/"), "");
        assert_eq!(parent_of(""), "");
    }

    #[test]
    fn answers_for_a_listing_or_object_left_behind_are_dropped() {
        let mut pane = S3Pane::default();
        let mut status = None;
        let old = request(pane.on_enter(None));
        let new = request(pane.on_key(Key::Char('b'), &mut status));
        pane.apply(
            listed(old.seq, vec![object("old.txt", 1)], None),
            &mut status,
        );
        assert_eq!(
            pane.listing,
            Loading::Loading,
            "the images bucket's answer is stale"
        );
        let head = request(Some(
            pane.apply(listed(new.seq, image_objects(), None), &mut status)
                .expect("the first object's detail is read"),
        ));
        assert_eq!(
            pane.selected_entry().map(Entry::key),
            Some(image_objects()[0].key())
        );
        let versions = request(pane.on_key(Key::Char('v'), &mut status));
        assert_eq!(versions.seq, head.seq, "the same object");
        // The cursor moves on before the answers come.
        let next_head = request(pane.on_key(Key::Down, &mut status));
        assert_ne!(next_head.seq, head.seq);
        pane.apply(
            S3Update {
                seq: head.seq,
                answer: S3Answer::Head(Ok(ObjectDetail::default())),
            },
            &mut status,
        );
        let copy = pane.apply(
            S3Update {
                seq: versions.seq,
                answer: S3Answer::Presigned(Ok("http://stale".into())),
            },
            &mut status,
        );
        assert_eq!(copy, None, "a stale URL is not copied");
        assert_eq!(pane.detail, Loading::Loading);
        assert_eq!(pane.lower, Lower::Nothing);
    }

    #[test]
    fn the_end_of_a_long_listing_loads_the_next_page_once() {
        let mut pane = S3Pane::default();
        let mut status = None;
        let list = request(pane.on_enter(None));
        pane.apply(
            listed(list.seq, vec![object("a", 1), object("b", 1)], Some("t2")),
            &mut status,
        );
        request(pane.on_key(Key::Down, &mut status));
        let more = request(pane.on_key(Key::Down, &mut status));
        assert_eq!(more.seq, list.seq);
        assert_eq!(
            more.read,
            S3Read::List {
                prefix: String::new(),
                continuation: Some("t2".into())
            }
        );
        assert_eq!(
            pane.on_key(Key::Down, &mut status),
            None,
            "already reading it"
        );
        pane.apply(
            S3Update {
                seq: more.seq,
                answer: S3Answer::Listed {
                    more: true,
                    page: Ok(ListingPage {
                        entries: vec![object("c", 1)],
                        next: None,
                    }),
                },
            },
            &mut status,
        );
        let listing = pane.listing.loaded().expect("loaded");
        assert_eq!(listing.entries.len(), 3);
        assert_eq!(pane.selected, 1, "the cursor stays where it was");
        request(pane.on_key(Key::Down, &mut status));
        assert_eq!(
            pane.on_key(Key::Down, &mut status),
            None,
            "the listing ended"
        );
    }

    #[test]
    fn a_listing_keeps_at_most_its_cap() {
        let mut pane = S3Pane::default();
        let mut status = None;
        let list = request(pane.on_enter(None));
        let many = |from: usize, count: usize| {
            (from..from + count)
                .map(|at| object(&format!("k{at:05}"), 1))
                .collect::<Vec<_>>()
        };
        pane.apply(
            listed(list.seq, many(0, MAX_LISTED - 1), Some("t")),
            &mut status,
        );
        pane.loading_more = true;
        pane.apply(
            S3Update {
                seq: list.seq,
                answer: S3Answer::Listed {
                    more: true,
                    page: Ok(ListingPage {
                        entries: many(MAX_LISTED, 10),
                        next: Some("t3".into()),
                    }),
                },
            },
            &mut status,
        );
        assert_eq!(
            pane.listing.loaded().map(|l| l.entries.len()),
            Some(MAX_LISTED)
        );
        pane.selected = MAX_LISTED - 1;
        assert_eq!(pane.on_key(Key::Down, &mut status), None);
        assert!(matches!(&status, Some((Severity::Info, text)) if text.contains("open a folder")));
    }

    #[test]
    fn a_large_object_is_not_previewed_and_errors_reach_the_status_line() {
        let mut pane = S3Pane::default();
        let mut status = None;
        let list = request(pane.on_enter(None));
        pane.apply(
            listed(
                list.seq,
                vec![object("huge.png", PREVIEW_MAX_BYTES + 1)],
                None,
            ),
            &mut status,
        );
        assert_eq!(pane.on_key(Key::Char('p'), &mut status), None);
        assert!(
            matches!(&status, Some((Severity::Error, text)) if text.contains("hybridlab s3 get huge.png")),
            "{status:?}"
        );
        let reload = request(pane.on_key(Key::Char('r'), &mut status));
        pane.apply(
            S3Update {
                seq: reload.seq,
                answer: S3Answer::Listed {
                    more: false,
                    page: Err("s3:ListBucket: cannot reach the endpoint; start the sandbox".into()),
                },
            },
            &mut status,
        );
        assert!(matches!(pane.listing, Loading::Error(_)));
        assert!(
            matches!(&status, Some((Severity::Error, text)) if text.contains("start the sandbox"))
        );
    }

    #[test]
    fn two_by_two_pixels_fill_two_half_block_cells() {
        let preview = quadrants(2, 2);
        let cells = half_blocks(&preview, 2, 1);
        assert_eq!(
            cells,
            vec![vec![
                ([255, 0, 0], Some([0, 0, 255])),
                ([0, 255, 0], Some([255, 255, 255])),
            ]]
        );
        // Wider than tall room: the aspect holds, so two pixels across still.
        assert_eq!(half_blocks(&preview, 10, 1)[0].len(), 2);
        // Averaged down: a 4x8 of quadrants into one cell (1x2 pixels) is each half's mean.
        let one = half_blocks(&quadrants(4, 8), 1, 1);
        assert_eq!(one, vec![vec![([127, 127, 0], Some([127, 127, 255]))]]);
        assert!(half_blocks(&preview, 0, 5).is_empty());
    }

    #[test]
    fn an_odd_number_of_pixel_rows_leaves_the_last_lower_half_empty() {
        let preview = Preview {
            source_width: 1,
            source_height: 3,
            width: 1,
            height: 3,
            pixels: vec![[1, 1, 1], [2, 2, 2], [3, 3, 3]],
        };
        let cells = half_blocks(&preview, 1, 2);
        assert_eq!(
            cells,
            vec![vec![([1, 1, 1], Some([2, 2, 2]))], vec![([3, 3, 3], None)]]
        );
    }

    #[test]
    fn an_image_decodes_small_and_anything_else_is_refused() {
        let mut png = Vec::new();
        image::RgbImage::from_fn(400, 200, |x, _| image::Rgb([(x % 256) as u8, 0, 0]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encodes");
        let preview = decode_preview(&png).expect("decodes");
        assert_eq!((preview.source_width, preview.source_height), (400, 200));
        assert!(preview.width <= PREVIEW_WIDTH && preview.height <= PREVIEW_HEIGHT);
        assert_eq!(preview.width, 160);
        assert_eq!(
            preview.pixels.len(),
            (preview.width * preview.height) as usize
        );
        let err = decode_preview(b"hello, not an image").expect_err("text");
        assert!(err.contains("not an image"), "{err}");
    }

    #[test]
    fn a_photo_stored_sideways_previews_upright() {
        let mut jpeg = Vec::new();
        image::RgbImage::from_pixel(40, 20, image::Rgb([200, 10, 10]))
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .expect("encodes");
        // An APP1 segment right after SOI: EXIF, big-endian TIFF, one IFD entry
        // Orientation (0x0112) = 6, "rotate 90 clockwise to display".
        let exif: &[u8] = &[
            0xFF, 0xE1, 0x00, 0x22, b'E', b'x', b'i', b'f', 0, 0, b'M', b'M', 0x00, 0x2A, 0, 0, 0,
            8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
        ];
        jpeg.splice(2..2, exif.iter().copied());
        let preview = decode_preview(&jpeg).expect("decodes");
        assert_eq!((preview.source_width, preview.source_height), (20, 40));
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(8_190), "8.0 KiB");
        assert_eq!(human_bytes(PREVIEW_MAX_BYTES), "8.0 MiB");
    }
}
