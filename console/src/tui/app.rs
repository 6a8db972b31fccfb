//! The console's state and what each key does to it. Plain data and functions: the event loop
//! feeds keys and background results in, the view draws whatever is here, and tests drive both
//! without a terminal or a network.

use hdrhistogram::Histogram;
use hybridlab_provision::stack::{StackStatus, StepEvent};

use super::action::{Action, BurstSettings, Key, Mouse, Severity, Typed, Update, moved, type_into};
use super::db_pane::DbPane;
use super::jobs_pane::JobsPane;
use super::log_file::LogFile;
use super::logs_pane::LogsPane;
use super::mouse::ScreenMap;
use super::run_stats::{Breakdown, Class, Notable, PerSecondP99};
use super::s3_pane::S3Pane;
use super::spool::{SampleSpool, SharedSpool};
use crate::lab::jobs::JobsUpdate;
use hybridlab_bench::model::{Outcome, Run, RunConfig, RunFile, Sample};
use hybridlab_bench::stats::{new_histogram, summarize};
use hybridlab_wire::report::Report;

/// The console's views, in the order of their number keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Stack,
    Invoke,
    Logs,
    S3,
    Db,
    Jobs,
}

impl Tab {
    pub const ALL: [Self; 6] = [
        Self::Stack,
        Self::Invoke,
        Self::Logs,
        Self::S3,
        Self::Db,
        Self::Jobs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Stack => "Stack",
            Self::Invoke => "Invoke",
            Self::Logs => "Logs",
            Self::S3 => "S3",
            Self::Db => "DynamoDB",
            Self::Jobs => "Jobs",
        }
    }

    /// The view Tab goes to from this one (the first after the last).
    pub fn next(self) -> Self {
        Self::ALL[(self.position() + 1) % Self::ALL.len()]
    }

    /// The view Shift-Tab goes to from this one (the last before the first).
    pub fn previous(self) -> Self {
        Self::ALL[(self.position() + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    /// Where it is in [`Tab::ALL`], from 0.
    pub fn position(self) -> usize {
        Self::ALL.iter().position(|tab| *tab == self).unwrap_or(0)
    }

    /// Its number key, `1` to `6`.
    pub fn key(self) -> Key {
        Key::Char(char::from(b'1' + self.position() as u8))
    }

    /// The tab a `:` command names (`:stack`, `:invoke`, `:logs`, `:s3`, `:db`).
    pub fn from_command(command: &str) -> Option<Self> {
        match command.trim().to_ascii_lowercase().as_str() {
            "stack" | "st" => Some(Self::Stack),
            "invoke" | "inv" | "bench" => Some(Self::Invoke),
            "logs" | "log" => Some(Self::Logs),
            "s3" => Some(Self::S3),
            "db" | "dynamodb" | "ddb" => Some(Self::Db),
            "jobs" | "job" => Some(Self::Jobs),
            _ => None,
        }
    }
}

/// One burst as it runs: everything the Invoke view plots.
#[derive(Debug, Clone)]
pub struct LiveRun {
    pub settings: BurstSettings,
    pub function: Option<String>,
    pub stack: Option<String>,
    /// RFC 3339, once the burst has started.
    pub started_at: Option<String>,
    /// Client latency of every invocation, in microseconds.
    pub latency: Histogram<u64>,
    pub counts: [u64; Outcome::ALL.len()],
    pub cold_starts: u64,
    /// Completed invocations in each second since the start.
    pub per_second: Vec<u64>,
    /// The p99 client latency of the invocations completed in each second.
    pub p99_per_second: PerSecondP99,
    /// Each measure of the invocations (REPORT, the proxy's and the server's timings).
    pub breakdown: Breakdown,
    /// The slowest invocations and the latest errors.
    pub notable: Notable,
    /// When the latest invocation completed, from the start: the throughput is read every
    /// frame, and scanning a million samples for it each time would cost the frame.
    pub last_done_us: u64,
    /// Every sample, on disk: the view draws from the aggregates above.
    pub samples: SharedSpool,
    pub finished: bool,
    pub error: Option<String>,
}

impl LiveRun {
    pub fn new(settings: BurstSettings) -> Self {
        Self {
            settings,
            function: None,
            stack: None,
            started_at: None,
            latency: new_histogram(),
            counts: [0; Outcome::ALL.len()],
            cold_starts: 0,
            per_second: Vec::new(),
            p99_per_second: PerSecondP99::default(),
            breakdown: Breakdown::default(),
            notable: Notable::default(),
            last_done_us: 0,
            samples: SharedSpool::default(),
            finished: false,
            error: None,
        }
    }

    pub fn record(&mut self, sample: Sample) {
        let _ = self.latency.record(sample.latency_us().max(1));
        if let Some(at) = Outcome::ALL.iter().position(|o| *o == sample.outcome) {
            self.counts[at] += 1;
        }
        if sample.lambda.as_ref().is_some_and(Report::cold_start) {
            self.cold_starts += 1;
        }
        self.last_done_us = self.last_done_us.max(sample.done_us);
        let second = (sample.done_us / 1_000_000) as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
        self.p99_per_second
            .record(sample.done_us, sample.latency_us());
        self.breakdown.record(&sample);
        self.notable.record(&sample);
        self.samples.with(|spool| spool.push(&sample));
    }

    pub fn done(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |at| self.counts[at])
    }

    /// How the run was made, as `hybridlab bench --out` records it.
    pub fn config(&self, target: &str) -> RunConfig {
        RunConfig {
            label: match self.settings.rate {
                Some(rate) => format!("console {rate}/s"),
                None => format!("console c={}", self.settings.concurrency),
            },
            target: target.to_owned(),
            stack: self.stack.clone(),
            function: self.function.clone().unwrap_or_default(),
            shape: self.settings.shape(),
            requests: Some(self.settings.invocations),
            duration_s: None,
            warmup: 0,
            payloads: 1,
            interrupted: false,
            cold: false,
            memory_mb: None,
            environment: None,
            started_at: self.started_at.clone().unwrap_or_default(),
        }
    }

    /// Invocations a second over the run so far.
    pub fn throughput(&self) -> f64 {
        if self.last_done_us == 0 {
            return 0.0;
        }
        self.done() as f64 / (self.last_done_us as f64 / 1e6)
    }
}

/// The run file of a console burst, as `hybridlab bench --out` writes it for `hybridlab
/// report`: the samples in order of issue and their summary. Reads the spool: for a large
/// run, not on the event loop.
pub fn saved_run(config: RunConfig, samples: &SharedSpool) -> Result<RunFile, String> {
    let mut samples = samples.with(SampleSpool::read_all)?;
    samples.sort_by_key(|sample| sample.seq);
    Ok(RunFile::new(vec![Run {
        config,
        summary: summarize(&samples),
        samples,
    }]))
}

/// The quantile the "where the time goes" bar is drawn at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BarQuantile {
    #[default]
    P50,
    P99,
}

impl BarQuantile {
    pub fn value(self) -> f64 {
        match self {
            Self::P50 => 0.50,
            Self::P99 => 0.99,
        }
    }

    /// The other one: what `p` switches to.
    pub fn toggled(self) -> Self {
        match self {
            Self::P50 => Self::P99,
            Self::P99 => Self::P50,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::P50 => "p50",
            Self::P99 => "p99",
        }
    }
}

/// What the Invoke view shows under the burst where not everything fits (below
/// [`invoke_view::FULL_HEIGHT`](super::invoke_view::FULL_HEIGHT) rows): the latency
/// histogram and throughput, or where the time goes with the slowest invocations and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvokePanel {
    #[default]
    Latency,
    Breakdown,
}

/// The Invoke view's state.
#[derive(Debug, Clone)]
pub struct InvokePane {
    pub settings: BurstSettings,
    /// Set while the image URL is being typed.
    pub editing_url: Option<String>,
    pub current: Option<LiveRun>,
    /// The run before, kept for comparison.
    pub previous: Option<LiveRun>,
    /// The bar of where the time goes at p50 or p99 (`p`).
    pub bar_quantile: BarQuantile,
    /// Whose measures the bar and the table show (`c`).
    pub class: Class,
    /// The panel shown on a small terminal (`v`).
    pub panel: InvokePanel,
    /// The list of the slowest invocations and the errors has the keys: Up and Down move in
    /// it and Enter opens the selected one's logs (rather than firing a burst) until Esc.
    pub list_focus: bool,
    /// The selected invocation of that list, slowest first, then the errors newest first.
    pub selected: usize,
}

impl InvokePane {
    pub fn running(&self) -> bool {
        self.current.as_ref().is_some_and(|run| !run.finished)
    }

    /// The list's length: the current run's noted invocations.
    fn list_len(&self) -> usize {
        self.current.as_ref().map_or(0, |run| run.notable.len())
    }

    /// A move in the list; the first one gives it the keys (and, on a small terminal, shows
    /// it) without moving, so Down once selects the slowest invocation.
    fn move_in_list(&mut self, key: Key, status: &mut Option<(Severity, String)>) {
        let len = self.list_len();
        if len == 0 {
            *status = Some((Severity::Info, "no invocation to select yet".to_owned()));
            return;
        }
        self.panel = InvokePanel::Breakdown;
        if self.list_focus || matches!(key, Key::Pick(_)) {
            self.selected = moved(self.selected, len, key);
        } else {
            self.selected = self.selected.min(len - 1);
        }
        self.list_focus = true;
    }

    /// Enter on the list: the selected invocation's lines in the Logs view, or why it has
    /// none.
    fn open_selected(&mut self, status: &mut Option<(Severity, String)>) -> Option<Action> {
        let noted = self
            .current
            .as_ref()
            .and_then(|run| run.notable.get(self.selected));
        let Some(noted) = noted else {
            *status = Some((Severity::Error, "no invocation selected".to_owned()));
            return None;
        };
        match &noted.request_id {
            Some(request_id) => Some(Action::ShowInvocationLogs {
                request_id: request_id.clone(),
            }),
            None => {
                *status = noted.why_no_logs().map(|why| (Severity::Error, why));
                None
            }
        }
    }
}

/// The Stack view's state.
#[derive(Debug, Clone, Default)]
pub struct StackPane {
    pub stacks: Vec<StackStatus>,
    pub selected: usize,
    pub loading: bool,
    /// The stack to select once the list is read (`hybridlab --stack ID`).
    pub preferred: Option<String>,
    /// The `up` or `down` under way, or the last one until dismissed.
    pub operation: Option<Operation>,
}

impl StackPane {
    fn busy(&self) -> bool {
        self.operation
            .as_ref()
            .is_some_and(|op| op.outcome.is_none())
    }

    /// Stacks that still have something to pay for.
    pub fn live(&self) -> Vec<String> {
        self.stacks
            .iter()
            .filter(|status| !status.gone())
            .map(|status| status.stack.to_string())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Up,
    Down,
}

/// An `up` or a `down` as its steps report.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub kind: OperationKind,
    /// Empty for a new stack until its first step names it.
    pub stack: String,
    /// The latest event of each step, in the order the steps started.
    pub steps: Vec<StepEvent>,
    /// What it ended with: a summary, or the error.
    pub outcome: Option<Result<String, String>>,
}

impl Operation {
    fn new(kind: OperationKind, stack: Option<String>) -> Self {
        Self {
            kind,
            stack: stack.unwrap_or_default(),
            steps: Vec::new(),
            outcome: None,
        }
    }

    pub fn record(&mut self, event: StepEvent) {
        if self.stack.is_empty() {
            self.stack = event.stack.clone();
        }
        let same = |e: &StepEvent| e.step == event.step && e.resource == event.resource;
        match self.steps.iter_mut().find(|e| same(e)) {
            Some(latest) => *latest = event,
            None => self.steps.push(event),
        }
    }
}

/// A question the console waits on before doing something that costs or destroys.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    /// Tear `stack` down. On AWS the stack id must be typed; on the sandbox `y` will do.
    Down {
        stack: String,
        typed: String,
        then_quit: bool,
    },
    /// Bring a stack up on AWS, where it is billed.
    Up {
        stack: Option<String>,
        pipeline: bool,
    },
    /// Quit while stacks are live on AWS.
    Quit { live: Vec<String> },
}

/// Everything the console shows.
#[derive(Debug, Clone)]
pub struct App {
    /// The target, always in the header: `LOCAL SANDBOX (http://...)` or `AWS <region>`.
    pub target: String,
    pub on_aws: bool,
    pub tab: Tab,
    pub stack: StackPane,
    pub invoke: InvokePane,
    pub logs: LogsPane,
    pub s3: S3Pane,
    pub db: DbPane,
    pub jobs: JobsPane,
    pub status: Option<(Severity, String)>,
    pub help: bool,
    /// The `:` command being typed.
    pub command: Option<String>,
    /// The question asked, if any: every key answers it.
    pub confirm: Option<Confirm>,
    /// Quit once the teardown under way has succeeded.
    pub quit_after_down: bool,
    pub quit: bool,
    /// Where the console's tracing goes, as `?` says.
    pub log_file: LogFile,
}

/// The limits the keyboard can set a burst to.
const MAX_INVOCATIONS: u64 = 1_000_000;
const MAX_CONCURRENCY: usize = 256;
/// An open loop starts at this rate (invocations a second) and stays between the bounds.
const DEFAULT_RATE: f64 = 10.0;
const MIN_RATE: f64 = 0.5;
const MAX_RATE: f64 = 20_000.0;

impl App {
    pub fn new(target: String, on_aws: bool, image_url: String) -> Self {
        Self {
            target,
            on_aws,
            tab: Tab::Stack,
            stack: StackPane::default(),
            invoke: InvokePane {
                settings: BurstSettings {
                    invocations: 100,
                    concurrency: 4,
                    rate: None,
                    image_url,
                },
                editing_url: None,
                current: None,
                previous: None,
                bar_quantile: BarQuantile::default(),
                class: Class::default(),
                panel: InvokePanel::default(),
                list_focus: false,
                selected: 0,
            },
            logs: LogsPane::default(),
            s3: S3Pane::default(),
            db: DbPane::default(),
            jobs: JobsPane::default(),
            status: None,
            help: false,
            command: None,
            confirm: None,
            quit_after_down: false,
            quit: false,
            log_file: LogFile::Off("not opened".to_owned()),
        }
    }

    fn say(&mut self, severity: Severity, text: impl Into<String>) {
        self.status = Some((severity, text.into()));
    }

    /// What `key` does; the action, if any, is for the event loop to start.
    pub fn on_key(&mut self, key: Key) -> Option<Action> {
        if key == Key::CtrlC {
            // A second Ctrl-C quits whatever the question.
            if matches!(self.confirm, Some(Confirm::Quit { .. })) {
                self.quit = true;
                return Some(Action::Quit);
            }
            self.confirm = None;
            return self.request_quit();
        }
        if let Some(confirm) = self.confirm.take() {
            return self.answer(confirm, key);
        }
        if let Some(line) = self.command.as_mut() {
            match type_into(line, key) {
                Typed::Edited => {}
                Typed::Cancelled => self.command = None,
                Typed::Submitted => {
                    let line = self.command.take().unwrap_or_default();
                    return self.run_command(&line);
                }
            }
            return None;
        }
        if let Some(url) = self.invoke.editing_url.as_mut() {
            match type_into(url, key) {
                Typed::Edited => {}
                Typed::Cancelled => self.invoke.editing_url = None,
                Typed::Submitted => {
                    let url = self.invoke.editing_url.take().unwrap_or_default();
                    self.invoke.settings.image_url = url.trim().to_owned();
                    self.say(Severity::Info, "image URL set");
                }
            }
            return None;
        }
        // The filters and paths of the views are typed like the URL above: every key goes to
        // them, letters stay letters.
        if self.view_typing() {
            return self.on_tab_key(key);
        }
        if self.help {
            if matches!(key, Key::Esc | Key::Char('?') | Key::Char('q')) {
                self.help = false;
            }
            return None;
        }
        match key.motion() {
            Key::Char('q') => return self.request_quit(),
            Key::Char('?') => self.help = true,
            Key::Char(':') => self.command = Some(String::new()),
            Key::Char(digit @ '1'..='6') => {
                return self.show(Tab::ALL[digit as usize - '1' as usize]);
            }
            Key::Tab => return self.show(self.tab.next()),
            Key::BackTab => return self.show(self.tab.previous()),
            key => {
                let action = self.on_tab_key(key);
                return self.follow(action);
            }
        }
        None
    }

    /// Whether the view shown has a line being typed (a filter, a path): then every key is
    /// its.
    fn view_typing(&self) -> bool {
        match self.tab {
            Tab::Logs => self.logs.typing(),
            Tab::Db => self.db.typing(),
            Tab::S3 => self.s3.typing(),
            Tab::Jobs => self.jobs.typing(),
            Tab::Stack | Tab::Invoke => false,
        }
    }

    /// What the mouse does, read against `map`, the frame the user clicked on: a click on a
    /// tab is its number key, a click on a row of the list picks that row, the wheel is Up
    /// and Down. While a question, the help or a line being typed waits for keys, the mouse
    /// does nothing.
    pub fn on_mouse(&mut self, mouse: Mouse, map: &ScreenMap) -> Option<Action> {
        let waiting_for_keys = self.confirm.is_some()
            || self.help
            || self.command.is_some()
            || self.invoke.editing_url.is_some()
            || self.view_typing();
        if waiting_for_keys {
            return None;
        }
        let key = match mouse {
            Mouse::Click { column, row } => match map.tab_at(column, row) {
                Some(tab) => tab.key(),
                None => Key::Pick(map.item_at(column, row)?),
            },
            Mouse::WheelUp => Key::Up,
            Mouse::WheelDown => Key::Down,
        };
        self.on_key(key)
    }

    /// The stack selected in the Stack view, which the other views show; until the stacks
    /// are read, the one the console was started with (`--stack`).
    pub fn selected_stack(&self) -> Option<String> {
        self.stack
            .stacks
            .get(self.stack.selected)
            .map(|status| status.stack.to_string())
            .or_else(|| self.stack.preferred.clone())
    }

    /// Switches to `tab`; the view may want to read something for it.
    fn show(&mut self, tab: Tab) -> Option<Action> {
        self.tab = tab;
        let stack = self.selected_stack();
        match tab {
            Tab::S3 => self.s3.on_enter(stack.as_deref()),
            Tab::Db => self.db.on_enter(stack.as_deref()),
            Tab::Logs => self.logs.on_enter(stack.as_deref()),
            Tab::Jobs => {
                let instance_type = self
                    .stack
                    .stacks
                    .get(self.stack.selected)
                    .and_then(|status| status.instance.as_ref())
                    .map_or("t3.micro", |instance| instance.instance_type.as_str())
                    .to_owned();
                self.jobs.on_enter(stack.as_deref(), &instance_type)
            }
            Tab::Stack | Tab::Invoke => None,
        }
    }

    /// Carries out what a view asked of the app itself; the rest is for the event loop.
    fn follow(&mut self, action: Option<Action>) -> Option<Action> {
        match action {
            Some(Action::ShowObjects { bucket, prefix }) => {
                self.tab = Tab::S3;
                let stack = self.selected_stack();
                self.s3.show_prefix(stack.as_deref(), bucket, &prefix)
            }
            Some(Action::ShowInvocationLogs { request_id }) => {
                self.tab = Tab::Logs;
                // The logs of the stack the burst ran against, whatever is selected now.
                let stack = self
                    .invoke
                    .current
                    .as_ref()
                    .and_then(|run| run.stack.clone())
                    .or_else(|| self.selected_stack());
                self.logs
                    .show_invocation(request_id, stack.as_deref(), &mut self.status)
            }
            other => other,
        }
    }

    fn on_tab_key(&mut self, key: Key) -> Option<Action> {
        match (self.tab, key) {
            (Tab::Stack, Key::Char('r')) if self.stack.loading => {
                self.say(Severity::Info, "already reading the stacks");
                None
            }
            (Tab::Stack, Key::Char('r')) => {
                self.stack.loading = true;
                Some(Action::RefreshStacks)
            }
            (Tab::Stack, Key::Char('u')) => self.ask_up(self.selected_stack(), false),
            (Tab::Stack, Key::Char('n')) => self.ask_up(None, false),
            (Tab::Stack, Key::Char('N')) => self.ask_up(None, true),
            (Tab::Stack, Key::Char('d')) => match self.selected_stack() {
                Some(stack) => self.ask_down(stack, false),
                None => {
                    self.say(Severity::Error, "no stack to tear down; r reads the stacks");
                    None
                }
            },
            (Tab::Stack, Key::Esc) if !self.stack.busy() => {
                self.stack.operation = None;
                None
            }
            (
                Tab::Stack,
                Key::Up
                | Key::Down
                | Key::PageUp
                | Key::PageDown
                | Key::Home
                | Key::End
                | Key::Pick(_),
            ) => {
                self.stack.selected = moved(self.stack.selected, self.stack.stacks.len(), key);
                None
            }
            (Tab::Invoke, Key::Char('+')) => {
                let n = &mut self.invoke.settings.invocations;
                *n = (*n * 10).min(MAX_INVOCATIONS);
                None
            }
            (Tab::Invoke, Key::Char('-')) => {
                let n = &mut self.invoke.settings.invocations;
                *n = (*n / 10).max(1);
                None
            }
            (Tab::Invoke, Key::Char(']')) => {
                let c = &mut self.invoke.settings.concurrency;
                *c = (*c * 2).min(MAX_CONCURRENCY);
                None
            }
            (Tab::Invoke, Key::Char('[')) => {
                let c = &mut self.invoke.settings.concurrency;
                *c = (*c / 2).max(1);
                None
            }
            (Tab::Invoke, Key::Char('e')) => {
                self.invoke.editing_url = Some(self.invoke.settings.image_url.clone());
                None
            }
            (Tab::Invoke, Key::Char('o')) => {
                let rate = &mut self.invoke.settings.rate;
                *rate = match rate {
                    Some(_) => None,
                    None => Some(DEFAULT_RATE),
                };
                None
            }
            (Tab::Invoke, Key::Char('>')) => {
                let rate = &mut self.invoke.settings.rate;
                *rate = Some(rate.map_or(DEFAULT_RATE, |r| (r * 2.0).min(MAX_RATE)));
                None
            }
            (Tab::Invoke, Key::Char('<')) => {
                let rate = &mut self.invoke.settings.rate;
                *rate = Some(rate.map_or(DEFAULT_RATE, |r| (r / 2.0).max(MIN_RATE)));
                None
            }
            (Tab::Invoke, Key::Char('i')) => self.start_burst(1, 1, None),
            (
                Tab::Invoke,
                Key::Up
                | Key::Down
                | Key::PageUp
                | Key::PageDown
                | Key::Home
                | Key::End
                | Key::Pick(_),
            ) => {
                self.invoke.move_in_list(key, &mut self.status);
                None
            }
            (Tab::Invoke, Key::Enter) if self.invoke.list_focus => {
                self.invoke.open_selected(&mut self.status)
            }
            (Tab::Invoke, Key::Esc) if self.invoke.list_focus => {
                self.invoke.list_focus = false;
                None
            }
            (Tab::Invoke, Key::Char('p')) => {
                self.invoke.bar_quantile = self.invoke.bar_quantile.toggled();
                None
            }
            (Tab::Invoke, Key::Char('c')) => {
                self.invoke.class = self.invoke.class.next();
                None
            }
            (Tab::Invoke, Key::Char('v')) => {
                self.invoke.panel = match self.invoke.panel {
                    InvokePanel::Latency => InvokePanel::Breakdown,
                    InvokePanel::Breakdown => InvokePanel::Latency,
                };
                None
            }
            (Tab::Invoke, Key::Enter | Key::Char('b')) => {
                let settings = &self.invoke.settings;
                self.start_burst(settings.invocations, settings.concurrency, settings.rate)
            }
            (Tab::Invoke, Key::Char('s')) => self.save_run(),
            (Tab::Invoke, Key::Char('x')) if self.invoke.running() => {
                self.say(Severity::Info, "stopping: invocations in flight finish");
                Some(Action::StopBurst)
            }
            (Tab::Logs, key) => {
                let stack = self.selected_stack();
                self.logs.on_key(key, stack.as_deref(), &mut self.status)
            }
            (Tab::S3, key) => self.s3.on_key(key, &mut self.status),
            (Tab::Db, key) => self.db.on_key(key, &mut self.status),
            (Tab::Jobs, key) => self.jobs.on_key(key, &mut self.status),
            _ => None,
        }
    }

    fn save_run(&mut self) -> Option<Action> {
        let Some(run) = self.invoke.current.as_ref().filter(|run| run.finished) else {
            self.say(Severity::Error, "no finished burst to save yet");
            return None;
        };
        // `2026-11-23T14:16:05Z` names the file `hybridlab-run-20261123T141605Z.json`.
        let stamp: String = run
            .started_at
            .as_deref()
            .unwrap_or("unstarted")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let path = format!("hybridlab-run-{stamp}.json");
        let action = Action::SaveRun {
            config: Box::new(run.config(&self.target)),
            samples: run.samples.clone(),
            path: path.clone(),
        };
        self.say(Severity::Info, format!("saving {path}..."));
        Some(action)
    }

    /// What the event loop says once it has tried to save a run.
    pub fn saved(&mut self, path: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.say(
                Severity::Info,
                format!("saved {path}; `hybridlab report {path} --out report` makes the report"),
            ),
            Err(err) => self.say(Severity::Error, format!("cannot save {path}: {err}")),
        }
    }

    fn start_burst(
        &mut self,
        invocations: u64,
        concurrency: usize,
        rate: Option<f64>,
    ) -> Option<Action> {
        if self.invoke.running() {
            self.say(
                Severity::Error,
                "a burst is running; wait for it or stop it with x",
            );
            return None;
        }
        if self.invoke.settings.image_url.is_empty() {
            self.say(
                Severity::Error,
                "no image URL: press e and type one (http://... or https://...)",
            );
            return None;
        }
        let settings = BurstSettings {
            invocations,
            concurrency,
            rate,
            image_url: self.invoke.settings.image_url.clone(),
        };
        if let Some(finished) = self.invoke.current.take() {
            self.invoke.previous = Some(finished);
        }
        self.invoke.current = Some(LiveRun::new(settings.clone()));
        self.invoke.selected = 0;
        self.status = None;
        let stack = self.selected_stack();
        Some(Action::StartBurst { settings, stack })
    }

    fn run_command(&mut self, line: &str) -> Option<Action> {
        let line = line.trim();
        if matches!(line, "q" | "quit") {
            return self.request_quit();
        }
        match Tab::from_command(line) {
            Some(tab) => return self.show(tab),
            None => self.say(
                Severity::Error,
                format!("unknown command :{line}; try :stack :invoke :logs :s3 :db :quit"),
            ),
        }
        None
    }

    fn request_quit(&mut self) -> Option<Action> {
        let mut live = self.stack.live();
        // An up under way on AWS is a stack being paid for, read or not yet.
        if let Some(operation) = self.stack.operation.as_ref().filter(|_| self.stack.busy())
            && !operation.stack.is_empty()
            && !live.contains(&operation.stack)
        {
            live.push(operation.stack.clone());
        }
        if self.on_aws && !live.is_empty() {
            self.confirm = Some(Confirm::Quit { live });
            return None;
        }
        self.quit = true;
        Some(Action::Quit)
    }

    fn ask_up(&mut self, stack: Option<String>, pipeline: bool) -> Option<Action> {
        if self.stack.busy() {
            self.say(Severity::Error, "an up or down is under way; wait for it");
            return None;
        }
        if self.on_aws {
            self.confirm = Some(Confirm::Up { stack, pipeline });
            return None;
        }
        self.start_up(stack, pipeline)
    }

    fn start_up(&mut self, stack: Option<String>, pipeline: bool) -> Option<Action> {
        self.stack.operation = Some(Operation::new(OperationKind::Up, stack.clone()));
        self.tab = Tab::Stack;
        Some(Action::Up { stack, pipeline })
    }

    fn ask_down(&mut self, stack: String, then_quit: bool) -> Option<Action> {
        if self.stack.busy() {
            self.say(Severity::Error, "an up or down is under way; wait for it");
            return None;
        }
        self.confirm = Some(Confirm::Down {
            stack,
            typed: String::new(),
            then_quit,
        });
        None
    }

    fn start_down(&mut self, stack: String, then_quit: bool) -> Option<Action> {
        self.stack.operation = Some(Operation::new(OperationKind::Down, Some(stack.clone())));
        self.quit_after_down = then_quit;
        self.tab = Tab::Stack;
        Some(Action::Down { stack })
    }

    /// What `key` does to the question asked; the question stays while it is unanswered.
    fn answer(&mut self, confirm: Confirm, key: Key) -> Option<Action> {
        match confirm {
            Confirm::Down {
                stack,
                mut typed,
                then_quit,
            } => {
                if !self.on_aws {
                    return match key {
                        Key::Char('y') | Key::Enter => self.start_down(stack, then_quit),
                        _ => {
                            self.say(Severity::Info, "not torn down");
                            None
                        }
                    };
                }
                match type_into(&mut typed, key) {
                    Typed::Edited => {}
                    Typed::Submitted if typed == stack => {
                        return self.start_down(stack, then_quit);
                    }
                    Typed::Submitted => self.say(
                        Severity::Error,
                        format!("type the stack id `{stack}` exactly, or Esc"),
                    ),
                    Typed::Cancelled => {
                        self.say(Severity::Info, "not torn down");
                        return None;
                    }
                }
                self.confirm = Some(Confirm::Down {
                    stack,
                    typed,
                    then_quit,
                });
                None
            }
            Confirm::Up { stack, pipeline } => match key {
                Key::Char('y') => self.start_up(stack, pipeline),
                _ => {
                    self.say(Severity::Info, "nothing created");
                    None
                }
            },
            Confirm::Quit { live } => match key {
                Key::Char('d') => match live.first() {
                    Some(stack) => self.ask_down(stack.clone(), true),
                    None => None,
                },
                Key::Char('q') => {
                    self.quit = true;
                    Some(Action::Quit)
                }
                _ => None,
            },
        }
    }

    /// Folds a background result into the state; what follows from it, if anything, is for
    /// the event loop to start (the S3 view puts a presigned URL on the clipboard once it is
    /// signed; a finished `up` reads the stacks again).
    pub fn apply(&mut self, update: Update) -> Option<Action> {
        match update {
            Update::Stacks(Ok(stacks)) => {
                self.stack.stacks = stacks;
                if let Some(preferred) = self.stack.preferred.take() {
                    match self
                        .stack
                        .stacks
                        .iter()
                        .position(|s| s.stack.as_str() == preferred)
                    {
                        Some(at) => self.stack.selected = at,
                        None => self.say(
                            Severity::Error,
                            format!("no stack `{preferred}` on this target; press r to read again"),
                        ),
                    }
                }
                self.stack.selected = self
                    .stack
                    .selected
                    .min(self.stack.stacks.len().saturating_sub(1));
                self.stack.loading = false;
            }
            Update::Stacks(Err(err)) => {
                self.stack.loading = false;
                self.say(Severity::Error, err);
            }
            Update::Account(Ok(account)) => {
                self.target = format!("{} ACCOUNT {account}", self.target);
            }
            Update::Account(Err(err)) => self.say(Severity::Error, err),
            Update::Step(event) => {
                if let Some(operation) = self.stack.operation.as_mut() {
                    operation.record(event);
                }
            }
            Update::OperationDone(outcome) => {
                let operation = self.stack.operation.as_mut()?;
                let down = operation.kind == OperationKind::Down;
                match &outcome {
                    Ok(summary) => self.status = Some((Severity::Info, summary.clone())),
                    Err(err) => self.status = Some((Severity::Error, err.clone())),
                }
                if down && outcome.is_ok() {
                    self.logs.forget(&operation.stack);
                }
                if down && outcome.is_ok() && self.quit_after_down {
                    self.quit = true;
                }
                // A failed teardown keeps the console open, and a later one does not quit it.
                self.quit_after_down = false;
                if !down && !operation.stack.is_empty() {
                    // The stack just brought up is the one to look at next.
                    self.stack.preferred = Some(operation.stack.clone());
                }
                operation.outcome = Some(outcome);
                self.stack.loading = true;
                return Some(Action::RefreshStacks);
            }
            Update::BurstStarted {
                function,
                stack,
                started_at,
            } => {
                if let Some(run) = self.invoke.current.as_mut() {
                    run.function = Some(function);
                    run.stack = Some(stack);
                    run.started_at = Some(started_at);
                }
            }
            Update::Sample(sample) => {
                if let Some(run) = self.invoke.current.as_mut() {
                    run.record(*sample);
                }
            }
            Update::BurstDone { error } => {
                if let Some(run) = self.invoke.current.as_mut() {
                    run.finished = true;
                    run.error = error.clone();
                }
                match error {
                    Some(err) => self.say(Severity::Error, err),
                    None => self.say(Severity::Info, "burst finished"),
                }
            }
            Update::Saved { path, result } => self.saved(&path, result),
            Update::Logs(update) => self.logs.apply(update, &mut self.status),
            Update::S3(update) => return self.s3.apply(update, &mut self.status),
            Update::Db(update) => self.db.apply(update, &mut self.status),
            Update::Jobs(update) => return self.apply_jobs(update),
        }
        None
    }

    /// Takes an answer of the Jobs view in; it may read the list again.
    pub fn apply_jobs(&mut self, update: JobsUpdate) -> Option<Action> {
        self.jobs.apply(update, &mut self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_bench::model::LoadShape;

    fn app() -> App {
        App::new(
            "LOCAL SANDBOX (http://127.0.0.1:4566)".into(),
            false,
            "http://127.0.0.1:8000/cat.jpg".into(),
        )
    }

    fn sample(seq: u64, latency_us: u64, outcome: Outcome) -> Sample {
        Sample {
            seq,
            intended_us: seq * 1000,
            sent_us: seq * 1000,
            done_us: seq * 1000 + latency_us,
            outcome,
            lambda: None,
            ec2_ms: None,
            ec2_round_trip_ms: None,
            error: None,
        }
    }

    #[test]
    fn number_keys_tab_and_commands_switch_views() {
        let mut app = app();
        app.on_key(Key::Char('2'));
        assert_eq!(app.tab, Tab::Invoke);
        app.on_key(Key::Tab);
        assert_eq!(app.tab, Tab::Logs);
        for c in ":db".chars() {
            app.on_key(Key::Char(c));
        }
        // The DynamoDB view reads its table when shown.
        assert!(matches!(app.on_key(Key::Enter), Some(Action::Db(_))));
        assert_eq!(app.tab, Tab::Db);
        for c in ":nope".chars() {
            app.on_key(Key::Char(c));
        }
        app.on_key(Key::Enter);
        assert!(matches!(&app.status, Some((Severity::Error, text)) if text.contains(":nope")));
        assert_eq!(app.on_key(Key::Char('q')), Some(Action::Quit));
        assert!(app.quit);
    }

    #[test]
    fn one_read_of_the_stacks_at_a_time() {
        let mut app = app();
        assert_eq!(app.on_key(Key::Char('r')), Some(Action::RefreshStacks));
        assert_eq!(
            app.on_key(Key::Char('r')),
            None,
            "the first is still reading"
        );
        app.apply(Update::Stacks(Ok(Vec::new())));
        assert_eq!(app.on_key(Key::Char('r')), Some(Action::RefreshStacks));
        app.apply(Update::Stacks(Err("reading the stacks: refused".into())));
        assert!(!app.stack.loading, "a failed read ends the reading too");
    }

    #[test]
    fn an_open_loop_is_set_from_the_keyboard() {
        let mut app = app();
        app.on_key(Key::Char('2'));
        app.on_key(Key::Char('o'));
        app.on_key(Key::Char('>'));
        app.on_key(Key::Char('>'));
        app.on_key(Key::Char('<'));
        assert_eq!(app.invoke.settings.rate, Some(20.0));
        let Some(Action::StartBurst { settings, .. }) = app.on_key(Key::Enter) else {
            panic!("Enter starts a burst");
        };
        assert_eq!(
            settings.shape(),
            LoadShape::Open {
                rate: 20.0,
                max_in_flight: 4
            }
        );
        app.apply(Update::BurstDone { error: None });
        app.on_key(Key::Char('o'));
        assert_eq!(
            app.invoke.settings.shape(),
            LoadShape::Closed { concurrency: 4 }
        );
        for _ in 0..20 {
            app.on_key(Key::Char('<'));
        }
        assert_eq!(app.invoke.settings.rate, Some(MIN_RATE));
    }

    #[test]
    fn help_swallows_keys_until_closed() {
        let mut app = app();
        app.on_key(Key::Char('?'));
        assert!(app.help);
        app.on_key(Key::Char('2'));
        assert_eq!(app.tab, Tab::Stack, "keys do not leak through the help");
        app.on_key(Key::Esc);
        assert!(!app.help);
    }

    #[test]
    fn a_burst_is_shaped_from_the_keyboard_and_keeps_the_previous_run() {
        let mut app = app();
        app.on_key(Key::Char('2'));
        app.on_key(Key::Char('+'));
        app.on_key(Key::Char(']'));
        let Some(Action::StartBurst { settings, stack }) = app.on_key(Key::Enter) else {
            panic!("Enter starts a burst");
        };
        assert_eq!((settings.invocations, settings.concurrency), (1000, 8));
        assert_eq!(
            stack, None,
            "no stack read yet: the target's only one is used"
        );
        assert_eq!(app.on_key(Key::Enter), None, "one burst at a time");
        app.apply(Update::Sample(Box::new(sample(0, 2000, Outcome::Ok))));
        app.apply(Update::Sample(Box::new(sample(
            1,
            4000,
            Outcome::Throttled,
        ))));
        app.apply(Update::BurstDone { error: None });
        let first = app.invoke.current.clone().expect("a run");
        assert_eq!(first.done(), 2);
        assert_eq!(first.count(Outcome::Throttled), 1);
        assert!(matches!(
            app.on_key(Key::Char('i')),
            Some(Action::StartBurst { settings, .. }) if settings.invocations == 1
        ));
        assert_eq!(app.invoke.previous.as_ref().map(LiveRun::done), Some(2));
    }

    #[test]
    fn a_finished_burst_saves_as_a_run_file_for_the_report() {
        let mut app = app();
        app.on_key(Key::Char('2'));
        assert_eq!(app.on_key(Key::Char('s')), None, "nothing to save yet");
        app.on_key(Key::Enter);
        app.apply(Update::BurstStarted {
            function: "hybridlab-proxy-k3x9q2ma".into(),
            stack: "k3x9q2ma".into(),
            started_at: "2026-11-23T14:16:05Z".into(),
        });
        // Completion order differs from issue order; the file keeps the order of issue.
        app.apply(Update::Sample(Box::new(sample(1, 2000, Outcome::Ok))));
        app.apply(Update::Sample(Box::new(sample(
            0,
            9000,
            Outcome::Throttled,
        ))));
        assert_eq!(app.on_key(Key::Char('s')), None, "still running");
        app.apply(Update::BurstDone { error: None });
        let Some(Action::SaveRun {
            path,
            config,
            samples,
        }) = app.on_key(Key::Char('s'))
        else {
            panic!("s saves a finished run");
        };
        assert_eq!(path, "hybridlab-run-20261123T141605Z.json");
        let file = saved_run(*config, &samples).expect("the samples read back");
        let run = &file.runs[0];
        assert_eq!(
            run.samples.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(run.summary.ok, 1);
        assert_eq!(run.config.stack.as_deref(), Some("k3x9q2ma"));
        assert_eq!(run.config.function, "hybridlab-proxy-k3x9q2ma");
        app.saved(&path, Ok(()));
        assert!(
            matches!(&app.status, Some((Severity::Info, text)) if text.contains("hybridlab report"))
        );
    }

    #[test]
    fn the_url_is_edited_in_place_and_an_empty_one_is_refused() {
        let mut app = app();
        app.on_key(Key::Char('2'));
        app.on_key(Key::Char('e'));
        for _ in 0..100 {
            app.on_key(Key::Backspace);
        }
        app.on_key(Key::Char('q'));
        assert!(!app.quit, "q is typed into the URL, not a quit");
        app.on_key(Key::Backspace);
        app.on_key(Key::Enter);
        assert_eq!(app.invoke.settings.image_url, "");
        assert_eq!(app.on_key(Key::Enter), None);
        assert!(matches!(&app.status, Some((Severity::Error, text)) if text.contains("image URL")));
    }

    #[test]
    fn tearing_down_asks_first_and_on_aws_wants_the_stack_id() {
        let mut app = super::super::fixtures::app_with_stack();
        assert_eq!(app.on_key(Key::Char('d')), None, "a question first");
        assert_eq!(app.on_key(Key::Char('n')), None, "n keeps the stack");
        assert_eq!(app.confirm, None);
        app.on_key(Key::Char('d'));
        assert_eq!(
            app.on_key(Key::Char('y')),
            Some(Action::Down {
                stack: "k3x9q2ma".into()
            })
        );
        assert_eq!(app.on_key(Key::Char('d')), None);
        assert!(
            matches!(&app.status, Some((Severity::Error, text)) if text.contains("under way")),
            "one operation at a time"
        );
        app.apply(Update::OperationDone(Ok(
            "stack k3x9q2ma is torn down".into()
        )));

        let mut app = super::super::fixtures::app_with_stack();
        app.on_aws = true;
        app.on_key(Key::Char('d'));
        assert_eq!(app.on_key(Key::Char('y')), None, "y is typed, not a yes");
        assert_eq!(app.on_key(Key::Enter), None, "`y` is not the stack id");
        app.on_key(Key::Backspace);
        for c in "k3x9q2ma".chars() {
            app.on_key(Key::Char(c));
        }
        assert_eq!(
            app.on_key(Key::Enter),
            Some(Action::Down {
                stack: "k3x9q2ma".into()
            })
        );
    }

    #[test]
    fn quitting_with_a_live_stack_on_aws_offers_to_tear_it_down() {
        let mut app = super::super::fixtures::app_with_stack();
        app.on_aws = true;
        assert_eq!(app.on_key(Key::Char('q')), None);
        assert!(!app.quit);
        assert!(matches!(&app.confirm, Some(Confirm::Quit { live }) if live == &["k3x9q2ma"]));
        app.on_key(Key::Char('d'));
        for c in "k3x9q2ma".chars() {
            app.on_key(Key::Char(c));
        }
        assert!(matches!(app.on_key(Key::Enter), Some(Action::Down { .. })));
        assert!(!app.quit, "not before the stack is gone");
        assert_eq!(
            app.apply(Update::OperationDone(Err("1 resource remains".into()))),
            Some(Action::RefreshStacks)
        );
        assert!(!app.quit, "a failed teardown keeps the console open");
        assert!(!app.quit_after_down, "nor does a later one quit it");
        app.stack.operation = None;
        app.on_key(Key::Char('q'));
        app.on_key(Key::Char('d'));
        for c in "k3x9q2ma".chars() {
            app.on_key(Key::Char(c));
        }
        app.on_key(Key::Enter);
        app.apply(Update::OperationDone(Ok("torn down".into())));
        assert!(app.quit);

        // q in the question quits anyway; on the sandbox nothing is asked.
        let mut app = super::super::fixtures::app_with_stack();
        app.on_aws = true;
        app.on_key(Key::Char('q'));
        assert_eq!(app.on_key(Key::Char('q')), Some(Action::Quit));
        let mut app = super::super::fixtures::app_with_stack();
        assert_eq!(app.on_key(Key::Char('q')), Some(Action::Quit));
    }

    #[test]
    fn shift_n_brings_up_a_new_stack_with_the_pipeline() {
        let mut sandbox = app();
        assert_eq!(
            sandbox.on_key(Key::Char('N')),
            Some(Action::Up {
                stack: None,
                pipeline: true
            })
        );
        // On AWS it asks first, and says what it will make.
        let mut aws = app();
        aws.on_aws = true;
        assert_eq!(aws.on_key(Key::Char('N')), None);
        assert_eq!(
            aws.on_key(Key::Char('y')),
            Some(Action::Up {
                stack: None,
                pipeline: true
            })
        );
    }

    #[test]
    fn quitting_during_an_up_on_aws_asks_even_before_the_stack_is_read() {
        let mut app = app();
        app.on_aws = true;
        app.on_key(Key::Char('n'));
        assert_eq!(
            app.on_key(Key::Char('y')),
            Some(Action::Up {
                stack: None,
                pipeline: false
            })
        );
        app.apply(Update::Step(StepEvent {
            stack: "q7w2e9rt".into(),
            step: "images-bucket".into(),
            resource: "hybridlab-images-q7w2e9rt".into(),
            status: hybridlab_provision::stack::StepStatus::Started,
            elapsed_ms: 0,
            detail: String::new(),
        }));
        assert_eq!(app.on_key(Key::Char('q')), None);
        assert!(matches!(&app.confirm, Some(Confirm::Quit { live }) if live == &["q7w2e9rt"]));
    }

    #[test]
    fn the_header_names_the_aws_account_once_known_and_says_when_it_cannot() {
        let mut app = App::new("AWS EU-WEST-1".into(), true, String::new());
        app.apply(Update::Account(Ok("123456789012".into())));
        assert_eq!(app.target, "AWS EU-WEST-1 ACCOUNT 123456789012");
        app.apply(Update::Account(Err(
            "cannot tell which AWS account this is".into(),
        )));
        assert!(matches!(&app.status, Some((Severity::Error, text)) if text.contains("account")));
    }

    #[test]
    fn an_up_records_the_latest_event_of_each_step() {
        let app = super::super::fixtures::app_bringing_up_a_stack();
        let operation = app.stack.operation.expect("an up under way");
        assert_eq!(operation.kind, OperationKind::Up);
        assert_eq!(operation.stack, "q7w2e9rt", "named by its first step");
        let steps: Vec<_> = operation.steps.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(
            steps,
            [
                "artifacts",
                "images-bucket",
                "table",
                "lambda-role",
                "instance"
            ]
        );
        let instance = operation.steps.last().expect("the instance's step");
        assert_eq!(
            instance.status,
            hybridlab_provision::stack::StepStatus::Waiting,
            "a wait replaces its start"
        );
        assert_eq!(operation.outcome, None);
    }

    #[test]
    fn shift_tab_goes_back_through_the_views_as_tab_goes_forward() {
        let mut app = app();
        assert_eq!(app.tab, Tab::Stack);
        app.on_key(Key::BackTab);
        assert_eq!(app.tab, Tab::Jobs, "from the first view to the last");
        app.on_key(Key::BackTab);
        assert_eq!(app.tab, Tab::Db);
        app.on_key(Key::Tab);
        assert_eq!(app.tab, Tab::Jobs);
        app.on_key(Key::Tab);
        assert_eq!(app.tab, Tab::Stack, "from the last view to the first");
        for tab in Tab::ALL {
            assert_eq!(tab.next().previous(), tab);
            let mut other = app.clone();
            other.on_key(tab.key());
            assert_eq!(other.tab, tab, "{:?} is the key of {tab:?}", tab.key());
        }
    }

    #[test]
    fn j_k_g_and_shift_g_move_the_selection_as_down_up_home_and_end() {
        let mut app = super::super::fixtures::app_with_stack();
        let third = app.stack.stacks[0].clone();
        app.stack.stacks.push(third);
        assert_eq!(app.stack.selected, 0);
        app.on_key(Key::Char('j'));
        assert_eq!(app.stack.selected, 1);
        app.on_key(Key::Char('k'));
        assert_eq!(app.stack.selected, 0);
        app.on_key(Key::Char('G'));
        assert_eq!(app.stack.selected, 2, "the bottom of the list");
        app.on_key(Key::Char('j'));
        assert_eq!(app.stack.selected, 2, "nothing below the bottom");
        app.on_key(Key::Char('g'));
        assert_eq!(app.stack.selected, 0, "the top of the list");
        app.on_key(Key::Char('k'));
        assert_eq!(app.stack.selected, 0);
    }

    #[test]
    fn letters_typed_into_a_line_stay_letters() {
        let mut app = super::super::fixtures::app_with_stack();
        app.on_key(Key::Char(':'));
        for c in "jkgG".chars() {
            app.on_key(Key::Char(c));
        }
        assert_eq!(app.command.as_deref(), Some("jkgG"));
        assert_eq!(app.stack.selected, 0, "the list did not move");
        app.on_key(Key::Esc);
        app.on_key(Key::Char('2'));
        app.on_key(Key::Char('e'));
        app.on_key(Key::Char('j'));
        assert!(
            app.invoke
                .editing_url
                .as_deref()
                .is_some_and(|url| url.ends_with("cat.jpgj")),
            "{:?}",
            app.invoke.editing_url
        );
        // The help swallows them too.
        app.on_key(Key::Esc);
        app.on_key(Key::Char('1'));
        app.on_key(Key::Char('?'));
        app.on_key(Key::Char('j'));
        assert_eq!(app.stack.selected, 0);
    }

    #[test]
    fn a_click_on_a_tab_shows_that_view_and_a_click_on_a_row_selects_it() {
        use super::super::fixtures::{find, screen_and_map};
        let mut app = super::super::fixtures::app_with_stack();
        let (screen, map) = screen_and_map(&app, 80, 24);
        // Where the second stack is drawn in the stacks' list.
        let (column, row) = find(&screen, "zz81pp0c").expect("the second stack drawn");
        assert_eq!(app.on_mouse(Mouse::Click { column, row }, &map), None);
        assert_eq!(app.stack.selected, 1);
        // A click on the row under the last stack, or on the detail beside, selects nothing.
        app.on_mouse(
            Mouse::Click {
                column,
                row: row + 1,
            },
            &map,
        );
        app.on_mouse(Mouse::Click { column: 40, row }, &map);
        assert_eq!(app.stack.selected, 1);
        // The wheel moves the selection as Up and Down.
        app.on_mouse(Mouse::WheelUp, &map);
        assert_eq!(app.stack.selected, 0);
        app.on_mouse(Mouse::WheelDown, &map);
        assert_eq!(app.stack.selected, 1);

        let (column, row) = find(&screen, "5 DynamoDB").expect("the tab drawn");
        let read = app.on_mouse(Mouse::Click { column, row }, &map);
        assert_eq!(app.tab, Tab::Db);
        assert!(
            matches!(read, Some(Action::Db(_))),
            "the view reads its table as with its key: {read:?}"
        );
        // The space before the title is the tab's too; the divider is not.
        let (_, map) = screen_and_map(&app, 80, 24);
        let (column, row) = find(&screen, "2 Invoke").expect("the tab drawn");
        app.on_mouse(
            Mouse::Click {
                column: column - 2,
                row,
            },
            &map,
        );
        assert_eq!(app.tab, Tab::Db, "the divider left of ` 2 Invoke `");
        app.on_mouse(
            Mouse::Click {
                column: column - 1,
                row,
            },
            &map,
        );
        assert_eq!(app.tab, Tab::Invoke);
    }

    #[test]
    fn the_mouse_waits_while_a_question_the_help_or_a_line_does() {
        use super::super::fixtures::{find, screen_and_map};
        let mut app = super::super::fixtures::app_with_stack();
        let (screen, map) = screen_and_map(&app, 80, 24);
        let (column, row) = find(&screen, "2 Invoke").expect("the tab drawn");
        let click = Mouse::Click { column, row };
        app.help = true;
        assert_eq!(app.on_mouse(click, &map), None);
        app.help = false;
        app.on_key(Key::Char(':'));
        app.on_mouse(click, &map);
        app.on_mouse(Mouse::WheelDown, &map);
        assert_eq!((app.tab, app.stack.selected), (Tab::Stack, 0));
        app.on_key(Key::Esc);
        app.on_key(Key::Char('d'));
        app.on_mouse(click, &map);
        assert_eq!(app.tab, Tab::Stack, "the teardown question waits");
        assert!(app.confirm.is_some());
        app.on_key(Key::Esc);
        app.on_mouse(click, &map);
        assert_eq!(app.tab, Tab::Invoke);
    }

    /// A sample with a REPORT, of request id `req-<seq>`.
    fn answered(seq: u64, latency_us: u64) -> Sample {
        Sample {
            lambda: Some(Report {
                request_id: format!("req-{seq}"),
                duration_ms: latency_us as f64 / 1000.0 - 1.0,
                billed_duration_ms: (latency_us / 1000 + 1) as f64,
                memory_size_mb: 128,
                max_memory_used_mb: 20,
                init_duration_ms: None,
                status: None,
                error_type: None,
            }),
            ..sample(seq, latency_us, Outcome::Ok)
        }
    }

    /// The app on the Invoke view after a finished burst against `k3x9q2ma` of the samples
    /// given.
    fn app_after(samples: Vec<Sample>) -> App {
        let mut app = app();
        app.on_key(Key::Char('2'));
        app.on_key(Key::Enter);
        app.apply(Update::BurstStarted {
            function: "hybridlab-proxy-k3x9q2ma".into(),
            stack: "k3x9q2ma".into(),
            started_at: "2026-11-23T14:16:05Z".into(),
        });
        for sample in samples {
            app.apply(Update::Sample(Box::new(sample)));
        }
        app.apply(Update::BurstDone { error: None });
        app
    }

    #[test]
    fn p_toggles_the_bar_between_p50_and_p99_c_cycles_the_classes_and_v_the_panels() {
        let mut app = app_after(vec![answered(0, 2_000)]);
        assert_eq!(app.invoke.bar_quantile, BarQuantile::P50);
        app.on_key(Key::Char('p'));
        assert_eq!(app.invoke.bar_quantile, BarQuantile::P99);
        app.on_key(Key::Char('p'));
        assert_eq!(app.invoke.bar_quantile, BarQuantile::P50);
        let mut classes = Vec::new();
        for _ in 0..3 {
            app.on_key(Key::Char('c'));
            classes.push(app.invoke.class);
        }
        assert_eq!(classes, [Class::Warm, Class::Cold, Class::All]);
        assert_eq!(app.invoke.panel, InvokePanel::Latency);
        app.on_key(Key::Char('v'));
        assert_eq!(app.invoke.panel, InvokePanel::Breakdown);
        app.on_key(Key::Char('v'));
        assert_eq!(app.invoke.panel, InvokePanel::Latency);
        // The other views keep their own meaning of the letters.
        app.on_key(Key::Char('1'));
        app.on_key(Key::Char('p'));
        assert_eq!(app.invoke.bar_quantile, BarQuantile::P50);
    }

    #[test]
    fn down_gives_the_list_the_keys_and_enter_opens_the_logs_of_the_selected_invocation() {
        let mut app = app_after(vec![
            answered(0, 2_000),
            answered(1, 9_000),
            answered(2, 5_000),
        ]);
        // Down once selects the slowest, and shows the list on a small terminal.
        assert_eq!(app.on_key(Key::Down), None);
        assert!(app.invoke.list_focus);
        assert_eq!(app.invoke.panel, InvokePanel::Breakdown);
        assert_eq!(app.invoke.selected, 0);
        assert_eq!(
            app.invoke.open_selected(&mut None),
            Some(Action::ShowInvocationLogs {
                request_id: "req-1".into()
            }),
            "the slowest, 9 ms"
        );
        app.on_key(Key::Char('j'));
        assert_eq!(app.invoke.selected, 1);
        app.on_key(Key::Char('G'));
        assert_eq!(app.invoke.selected, 2, "the last of three");
        app.on_key(Key::Char('k'));
        assert_eq!(app.invoke.selected, 1);
        // Enter goes to the Logs view on that invocation's lines, following its stack.
        let action = app.on_key(Key::Enter);
        assert_eq!(app.tab, Tab::Logs);
        assert_eq!(app.logs.filter, "req-2", "5 ms, the second slowest");
        assert_eq!(
            action,
            Some(Action::FollowLogs {
                stack: Some("k3x9q2ma".into()),
                generation: 1
            })
        );
        assert!(
            matches!(&app.status, Some((Severity::Info, text)) if text.contains("req-2")),
            "{:?}",
            app.status
        );
        // Back on the Invoke view the list still has the keys; Esc gives Enter back to
        // the bursts.
        app.on_key(Key::Char('2'));
        assert_eq!(app.on_key(Key::Enter), None, "already following k3x9q2ma");
        assert_eq!(app.tab, Tab::Logs);
        app.on_key(Key::Char('2'));
        app.on_key(Key::Esc);
        assert!(!app.invoke.list_focus);
        assert!(matches!(
            app.on_key(Key::Enter),
            Some(Action::StartBurst { .. })
        ));
    }

    #[test]
    fn enter_on_an_invocation_without_a_request_id_says_why_and_stays() {
        let mut throttled = sample(0, 1_000, Outcome::Throttled);
        throttled.error = Some("TooManyRequestsException: Rate Exceeded.".into());
        let mut throttled_run = app_after(vec![throttled]);
        throttled_run.on_key(Key::Down);
        // The throttle is the slowest (the only one) and the only error: both rows say so.
        for _ in 0..2 {
            assert_eq!(throttled_run.on_key(Key::Enter), None);
            assert_eq!(throttled_run.tab, Tab::Invoke);
            assert!(
                matches!(&throttled_run.status, Some((Severity::Error, text))
                    if text.contains("no request id") && text.contains("throttled")),
                "{:?}",
                throttled_run.status
            );
            throttled_run.on_key(Key::Down);
        }
        // Nothing to select before a burst.
        let mut empty = app();
        empty.on_key(Key::Char('2'));
        empty.on_key(Key::Down);
        assert!(!empty.invoke.list_focus);
        assert!(matches!(
            empty.on_key(Key::Enter),
            Some(Action::StartBurst { .. })
        ));
    }

    #[test]
    fn a_click_on_a_row_of_the_list_selects_it() {
        let mut app = app_after(
            (0..5)
                .map(|seq| answered(seq, 1_000 + seq * 1_000))
                .collect(),
        );
        app.on_key(Key::Pick(3));
        assert!(app.invoke.list_focus);
        assert_eq!(app.invoke.selected, 3);
        assert_eq!(
            app.invoke.open_selected(&mut None),
            Some(Action::ShowInvocationLogs {
                request_id: "req-1".into()
            })
        );
    }

    #[test]
    fn throughput_counts_completions_over_elapsed_time() {
        let mut run = LiveRun::new(app().invoke.settings);
        for seq in 0..10 {
            run.record(sample(seq * 100, 1000, Outcome::Ok));
        }
        // The last completes at 900 ms + 1 ms: ten in 0.901 s.
        assert!((run.throughput() - 10.0 / 0.901).abs() < 1e-6);
        assert_eq!(run.per_second, vec![10]);
    }
}
