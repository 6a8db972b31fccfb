//! The vocabulary every part of the console shares: the keys and mouse events it tells apart
//! (the mouse's become keys: [`App::on_mouse`](super::app::App::on_mouse)), what a key does to
//! a line being typed, the work a key asks for ([`Action`]: the only way the app asks the
//! runner for anything), what comes back from that work ([`Update`]), a read's [`Loading`]
//! state, how the status line reads, and how a selection moves in a list.

use hybridlab_bench::model::{LoadShape, RunConfig, Sample};
use hybridlab_provision::stack::{StackStatus, StepEvent};

use super::spool::SharedSpool;
use crate::lab::db::{DbRequest, DbUpdate};
use crate::lab::jobs::{JobsRequest, JobsUpdate};
use crate::lab::logs::entry::LogEntry;
use crate::lab::logs::tail::TailMode;
use crate::lab::s3::{BucketChoice, S3Request, S3Update};

/// A key, reduced to what the console distinguishes (the event loop translates crossterm's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    /// Shift-Tab: Tab's way back.
    BackTab,
    /// A click on a row of the list shown: the item drawn there (an index in the list, or
    /// the number of a Logs line).
    Pick(usize),
    CtrlC,
}

impl Key {
    /// The move a letter stands for where letters are not being typed, as in k9s, less and
    /// vi: `j`/`k` down/up, `g`/`G` the top/bottom of a list.
    pub fn motion(self) -> Self {
        match self {
            Self::Char('j') => Self::Down,
            Self::Char('k') => Self::Up,
            Self::Char('g') => Self::Home,
            Self::Char('G') => Self::End,
            other => other,
        }
    }
}

/// What the mouse did, reduced to what the console tells apart (the event loop translates
/// crossterm's). Cells count from 0 at the top left, as crossterm counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mouse {
    /// The left button pressed on a cell.
    Click { column: u16, row: u16 },
    /// A notch of the wheel: a row up the list.
    WheelUp,
    /// A notch of the wheel: a row down the list.
    WheelDown,
}

/// What a key did to a line being typed (a `:` command, the image URL, a filter, a stack id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// The line changed, or the key means nothing to it.
    Edited,
    /// Enter: the line is done.
    Submitted,
    /// Esc: the line is dropped.
    Cancelled,
}

/// Types `key` into `line`: a character is added, Backspace takes the last one off; Enter and
/// Esc leave the line to the caller to use or drop.
pub fn type_into(line: &mut String, key: Key) -> Typed {
    match key {
        Key::Char(c) => line.push(c),
        Key::Backspace => {
            line.pop();
        }
        Key::Enter => return Typed::Submitted,
        Key::Esc => return Typed::Cancelled,
        _ => {}
    }
    Typed::Edited
}

/// Work the event loop must start in the background: nothing here touches the network.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    RefreshStacks,
    /// Bring up `stack`, or a new stack when `None`; `pipeline` adds the event-driven
    /// variant (a stack that has it keeps it either way).
    Up {
        stack: Option<String>,
        pipeline: bool,
    },
    /// Tear `stack` down.
    Down {
        stack: String,
    },
    /// A burst against the proxy of `stack` (the one selected in the Stack view, if any).
    StartBurst {
        settings: BurstSettings,
        stack: Option<String>,
    },
    StopBurst,
    /// Save the run of `config` and `samples` to `path` (as `app::saved_run` makes it) with
    /// the run file's one rule, `hybridlab_bench::run_file::save`.
    SaveRun {
        path: String,
        config: Box<RunConfig>,
        samples: SharedSpool,
    },
    /// Follow the logs of `stack` (the target's only one if `None`), replacing any reader
    /// already running; its answers carry `generation`.
    FollowLogs {
        stack: Option<String>,
        generation: u64,
    },
    /// A read for the S3 view.
    S3(S3Request),
    /// A read for the DynamoDB view.
    Db(DbRequest),
    /// A read, a submit or a cancel for the Jobs view.
    Jobs(JobsRequest),
    /// Switch to the S3 view on the objects under `prefix` of `bucket` (a view asks; the app
    /// does it, it is not for the event loop).
    ShowObjects {
        bucket: BucketChoice,
        prefix: String,
    },
    /// Switch to the Logs view on the lines of the invocation `request_id` (the Invoke view
    /// asks; the app does it, as the Logs view's own Enter on a line does).
    ShowInvocationLogs {
        request_id: String,
    },
    /// Put `text` on the terminal's clipboard (OSC 52; terminals that do not allow it
    /// ignore it, so the view also shows the text).
    Copy(String),
    Quit,
}

/// How the status line reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Error,
}

/// A read a view waits for, as the view draws it: nothing asked yet, under way, its answer,
/// or the line that says why it failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Loading<T> {
    #[default]
    Idle,
    Loading,
    Loaded(T),
    Error(String),
}

impl<T> Loading<T> {
    pub fn loaded(&self) -> Option<&T> {
        match self {
            Self::Loaded(value) => Some(value),
            _ => None,
        }
    }
}

/// What a background task reports back.
#[derive(Debug)]
pub enum Update {
    /// The target's stacks and each one's resources.
    Stacks(Result<Vec<StackStatus>, String>),
    /// The AWS account the credentials belong to, for the header; or why it is unknown.
    Account(Result<String, String>),
    /// A step of the `up` or `down` under way.
    Step(StepEvent),
    /// The `up` or `down` under way has ended: what it made of the stack, or why it failed.
    OperationDone(Result<String, String>),
    /// The function a burst invokes, once it is resolved.
    BurstStarted {
        function: String,
        stack: String,
        /// RFC 3339.
        started_at: String,
    },
    Sample(Box<Sample>),
    BurstDone {
        error: Option<String>,
    },
    /// How saving a run to `path` went.
    Saved {
        path: String,
        result: Result<(), String>,
    },
    Logs(LogsUpdate),
    S3(S3Update),
    Db(DbUpdate),
    Jobs(JobsUpdate),
}

/// A burst's shape, set from the keyboard.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstSettings {
    pub invocations: u64,
    /// Workers of a closed loop, or the cap on invocations in flight of an open one.
    pub concurrency: usize,
    /// Invocations a second of an open loop (latency counted from each one's intended send
    /// time); `None` is a closed loop.
    pub rate: Option<f64>,
    /// The image URL sent to the lab's proxy function.
    pub image_url: String,
}

impl BurstSettings {
    pub fn shape(&self) -> LoadShape {
        match self.rate {
            Some(rate) => LoadShape::Open {
                rate,
                max_in_flight: self.concurrency,
            },
            None => LoadShape::Closed {
                concurrency: self.concurrency,
            },
        }
    }
}

/// What the log reader reports back, tagged with the follow it belongs to so that lines of
/// a stack the user has moved away from are dropped.
#[derive(Debug)]
pub enum LogsUpdate {
    /// The groups are found and the backlog is being read.
    Opened {
        generation: u64,
        stack: String,
        groups: Vec<String>,
    },
    Entries {
        generation: u64,
        entries: Vec<LogEntry>,
        mode: TailMode,
    },
    /// Something worth saying that is not a log line (the tail changed how it reads).
    Notice { generation: u64, text: String },
    /// The reading stopped: with an error, or because it was asked to.
    Ended {
        generation: u64,
        error: Option<String>,
    },
}

/// Rows a page key moves the selection by.
const PAGE_STEP: usize = 10;

/// The selection after `key` (Up, Down, PageUp, PageDown, Home, End, or a click on a row) in
/// a list of `len`.
pub fn moved(selected: usize, len: usize, key: Key) -> usize {
    let last = len.saturating_sub(1);
    match key {
        Key::Pick(at) => at.min(last),
        Key::Up => selected.saturating_sub(1),
        Key::Down => (selected + 1).min(last),
        Key::PageUp => selected.saturating_sub(PAGE_STEP),
        Key::PageDown => (selected + PAGE_STEP).min(last),
        Key::Home => 0,
        Key::End => last,
        _ => selected,
    }
}
