//! The operator console: `hybridlab` with no subcommand. A ratatui screen over the same
//! library the subcommands use; every AWS call runs in a task and reports back through a
//! channel, so the screen keeps redrawing (20 times a second) whatever the network does.

pub mod app;
pub mod db_pane;
#[cfg(test)]
mod fixtures;
pub mod logs_pane;
pub mod s3_pane;
pub mod spool;
pub mod view;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt as _;
use hybridlab_provision::stack::{
    Reporter, Scope, StackClients, StackId, StackNames, Target, list_stacks, statuses,
};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

use self::app::{Action, App, BurstSettings, Key, Update};
use self::logs_pane::LogsUpdate;
use self::view::Palette;
use crate::bench::engine::{self, BenchPlan, Progress};
use crate::bench::signed::SignedInvoker;
use crate::cli::TargetArgs;
use crate::lab::Lab;
use crate::logs::entry::LogSource;
use crate::logs::tail::{LogTail, POLL_EVERY, TailOptions};

/// One frame every 50 ms at least: 20 a second while anything changes.
const FRAME: Duration = Duration::from_millis(50);
/// How far back the Logs view starts.
const LOGS_SINCE: Duration = Duration::from_secs(600);
/// How often the Stack view reads the stacks again by itself.
const STACK_REFRESH: Duration = Duration::from_secs(15);

/// Runs the console until the user quits. The terminal is restored on every way out,
/// a panic included (`ratatui::init` installs the hook).
pub async fn run(target: &TargetArgs, stack: Option<String>) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the console needs a terminal; in scripts use the subcommands (`hybridlab --help`), each with --json"
        );
    }
    let clients = crate::stack::connect(target).await?;
    let (header, on_aws) = match &clients.target {
        Target::Sandbox { endpoint } => (format!("LOCAL SANDBOX ({endpoint})"), false),
        Target::Aws { .. } => (clients.describe().to_uppercase(), true),
    };
    let image_url = std::env::var("HYBRIDLAB_IMAGE_URL").unwrap_or_default();
    let mut app = App::new(header, on_aws, image_url);
    app.stack.preferred = stack;
    let palette = Palette::new(std::env::var_os("NO_COLOR").is_none());
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut app, clients, palette).await;
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    clients: StackClients,
    palette: Palette,
) -> anyhow::Result<()> {
    let (updates_sender, mut updates) = unbounded_channel();
    let mut runner = Runner {
        clients,
        updates: updates_sender,
        burst: None,
        log_reader: None,
    };
    let mut events = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut refresh = tokio::time::interval(STACK_REFRESH);
    if !runner.clients.is_sandbox() {
        spawn_account_lookup(&runner.clients, &runner.updates);
    }
    loop {
        terminal
            .draw(|frame| view::draw(frame, app, palette))
            .context("drawing the console")?;
        tokio::select! {
            _ = frame.tick() => {}
            _ = refresh.tick() => {
                // A slow target must not pile reads up: one at a time.
                if !app.stack.loading {
                    app.stack.loading = true;
                    runner.start(Action::RefreshStacks);
                }
            }
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    if let Some(action) = translate(key).and_then(|key| app.on_key(key)) {
                        runner.start(action);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("reading the terminal"),
                None => break,
            },
            Some(update) = updates.recv() => {
                // Samples come by the thousand a second: fold in all that wait, draw once.
                let mut next = Some(update);
                while let Some(update) = next {
                    if let Some(action) = app.apply(update) {
                        runner.start(action);
                    }
                    next = updates.try_recv().ok();
                }
            }
        }
        if app.quit {
            break;
        }
    }
    runner.stop();
    Ok(())
}

/// Starts what the console asks for, each in a task of its own that reports back through
/// `updates`.
struct Runner {
    clients: StackClients,
    updates: UnboundedSender<Update>,
    burst: Option<Arc<Progress>>,
    log_reader: Option<tokio::task::JoinHandle<()>>,
}

impl Runner {
    fn start(&mut self, action: Action) {
        let (clients, updates) = (self.clients.clone(), self.updates.clone());
        match action {
            Action::RefreshStacks => spawn_refresh(&clients, &updates),
            Action::Up { stack, pipeline } => {
                tokio::spawn(async move {
                    let outcome =
                        bring_up(&clients, stack, pipeline, step_reporter(&updates)).await;
                    operation_done(&updates, outcome);
                });
            }
            Action::Down { stack } => {
                tokio::spawn(async move {
                    let outcome = tear_down(&clients, &stack, step_reporter(&updates)).await;
                    operation_done(&updates, outcome);
                });
            }
            Action::StartBurst { settings, stack } => {
                let (live, finished) = burst_forwarder(&updates);
                let progress = Arc::new(Progress {
                    live: Some(live),
                    ..Progress::default()
                });
                self.burst = Some(progress.clone());
                tokio::spawn(run_burst(
                    clients, stack, settings, progress, finished, updates,
                ));
            }
            Action::StopBurst => {
                if let Some(progress) = &self.burst {
                    progress.stop.store(true, Ordering::Relaxed);
                }
            }
            Action::SaveRun {
                path,
                config,
                samples,
            } => {
                // A million samples take a second or two to read back and write.
                tokio::task::spawn_blocking(move || {
                    let result =
                        app::saved_run(*config, &samples).and_then(|file| save_run(&path, &file));
                    let _ = updates.send(Update::Saved { path, result });
                });
            }
            Action::FollowLogs { stack, generation } => {
                if let Some(reader) = self.log_reader.take() {
                    reader.abort();
                }
                self.log_reader = Some(tokio::spawn(follow_logs(
                    clients, stack, generation, updates,
                )));
            }
            Action::S3(request) => {
                tokio::spawn(async move {
                    let update = s3_pane::serve(clients, request).await;
                    let _ = updates.send(Update::S3(update));
                });
            }
            Action::Db(request) => {
                tokio::spawn(async move {
                    let update = db_pane::serve(clients, request).await;
                    let _ = updates.send(Update::Db(update));
                });
            }
            Action::Copy(text) => copy_to_clipboard(&text),
            // The app carries these out itself; the loop ends on `app.quit`.
            Action::ShowObjects { .. } | Action::Quit => {}
        }
    }

    fn stop(self) {
        if let Some(progress) = self.burst {
            progress.stop.store(true, Ordering::Relaxed);
        }
        if let Some(reader) = self.log_reader {
            reader.abort();
        }
    }
}

/// Reports each step of an `up` or a `down` to the console as it happens.
fn step_reporter(updates: &UnboundedSender<Update>) -> Reporter {
    let updates = updates.clone();
    Arc::new(move |event| {
        let _ = updates.send(Update::Step(event));
    })
}

fn operation_done(updates: &UnboundedSender<Update>, outcome: anyhow::Result<String>) {
    let outcome = outcome.map_err(|err| format!("{err:#}"));
    let _ = updates.send(Update::OperationDone(outcome));
}

async fn bring_up(
    clients: &StackClients,
    stack: Option<String>,
    pipeline: bool,
    reporter: Reporter,
) -> anyhow::Result<String> {
    let stack = match stack {
        Some(name) => StackId::parse(&name)?,
        None => StackId::generate(),
    };
    let mut options = crate::stack::up_options(clients, stack.clone());
    options.settings.pipeline = pipeline;
    match hybridlab_provision::stack::up(clients, options, reporter).await {
        Ok(report) => Ok(format!(
            "stack {} is up in {:.1}s: {} steps done, {} already in place",
            report.stack,
            report.elapsed_ms as f64 / 1000.0,
            report.done,
            report.skipped
        )),
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "stack {stack} is incomplete; u finishes it, d removes it"
        ))),
    }
}

async fn tear_down(
    clients: &StackClients,
    stack: &str,
    reporter: Reporter,
) -> anyhow::Result<String> {
    let scope = Scope::Stack(StackId::parse(stack)?);
    let report = hybridlab_provision::stack::down(clients, &scope, reporter).await?;
    if !report.remaining.is_empty() {
        bail!(
            "stack {stack}: {} resources remain ({}); d tries again",
            report.remaining.len(),
            report
                .remaining
                .iter()
                .map(|r| format!("{} {}", r.kind.label(), r.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(format!(
        "stack {stack} is torn down: {} resources deleted in {:.1}s, nothing left",
        report.deleted.len(),
        report.elapsed_ms as f64 / 1000.0
    ))
}

/// Reads the logs of `stack` until aborted, as `hybridlab logs all -f --since 10m` does,
/// and sends every batch to the console.
async fn follow_logs(
    clients: StackClients,
    stack: Option<String>,
    generation: u64,
    updates: UnboundedSender<Update>,
) {
    let send = |update| {
        let _ = updates.send(Update::Logs(update));
    };
    let error = read_logs(clients, stack, generation, &send)
        .await
        .err()
        .map(|err| format!("{err:#}"));
    send(LogsUpdate::Ended { generation, error });
}

async fn read_logs(
    clients: StackClients,
    stack: Option<String>,
    generation: u64,
    send: &impl Fn(LogsUpdate),
) -> anyhow::Result<()> {
    let lab = lab_for(clients, stack.as_deref()).await?;
    let options = TailOptions {
        sources: vec![LogSource::Lambda, LogSource::Ec2],
        since: LOGS_SINCE,
        filter: None,
        follow: true,
        poll_every: POLL_EVERY,
        // As in `hybridlab logs`: moto has no usable StartLiveTail.
        live_tail: !lab.clients.is_sandbox(),
    };
    let mut tail = LogTail::open(&lab, options).await?;
    send(LogsUpdate::Opened {
        generation,
        stack: lab.stack.to_string(),
        groups: tail.groups().iter().map(|g| g.name.clone()).collect(),
    });
    while let Some(entries) = tail.next_batch().await? {
        for text in tail.take_notices() {
            send(LogsUpdate::Notice { generation, text });
        }
        if !entries.is_empty() {
            send(LogsUpdate::Entries {
                generation,
                entries,
                mode: tail.mode(),
            });
        }
    }
    Ok(())
}

/// Writes a run file where `hybridlab report` reads it; never over an existing file.
fn save_run(path: &str, file: &crate::bench::model::RunFile) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(file).map_err(|err| err.to_string())?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| err.to_string())?;
    std::io::Write::write_all(&mut out, &json).map_err(|err| err.to_string())
}

/// Asks the terminal to put `text` on the clipboard with an OSC 52 sequence. Terminals that
/// do not support it ignore it; nothing to report either way, the terminal does not answer.
fn copy_to_clipboard(text: &str) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, format!("\x1b]52;c;{encoded}\x07").as_bytes());
    let _ = std::io::Write::flush(&mut out);
}

/// The console's key for a terminal key press, if it uses it.
fn translate(key: KeyEvent) -> Option<Key> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Key::CtrlC);
    }
    Some(match key.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Tab => Key::Tab,
        _ => return None,
    })
}

fn spawn_refresh(clients: &StackClients, updates: &UnboundedSender<Update>) {
    let clients = clients.clone();
    let updates = updates.clone();
    tokio::spawn(async move {
        let stacks = read_stacks(&clients)
            .await
            .map_err(|err| format!("reading the stacks: {err}"));
        let _ = updates.send(Update::Stacks(stacks));
    });
}

/// Finds which AWS account the credentials are for (STS GetCallerIdentity), so the header
/// can say it: a student with several accounts must see which one is paying.
fn spawn_account_lookup(clients: &StackClients, updates: &UnboundedSender<Update>) {
    let sts = aws_sdk_sts::Client::new(&clients.config);
    let updates = updates.clone();
    tokio::spawn(async move {
        let account = match sts.get_caller_identity().send().await {
            Ok(identity) => identity
                .account()
                .map(str::to_owned)
                .ok_or_else(|| "AWS did not say which account these credentials are for".into()),
            Err(err) => Err(format!(
                "cannot tell which AWS account this is ({}); check the credentials: `aws sts get-caller-identity`",
                aws_sdk_sts::error::DisplayErrorContext(&err)
            )),
        };
        let _ = updates.send(Update::Account(account));
    });
}

/// The lab of `stack` (a stack the Stack view has read, so its names are known without
/// asking the target), or the target's only stack when none is named.
pub async fn lab_for(clients: StackClients, stack: Option<&str>) -> anyhow::Result<Lab> {
    match stack {
        Some(name) => {
            let stack = StackId::parse(name)?;
            Ok(Lab {
                names: StackNames::new(&stack),
                clients,
                stack,
            })
        }
        None => Lab::on(clients, None).await,
    }
}

/// Every stack on the target with the state of each resource.
async fn read_stacks(
    clients: &StackClients,
) -> Result<Vec<hybridlab_provision::stack::StackStatus>, hybridlab_provision::stack::StackError> {
    let ids = list_stacks(clients).await?;
    statuses(clients, &ids).await
}

/// One burst against the stack's proxy function, with the bench's engine and invoker. Its
/// samples and its end reach the console through one task, in that order, so a run saved the
/// moment it is reported finished holds every sample.
async fn run_burst(
    clients: StackClients,
    stack: Option<String>,
    settings: BurstSettings,
    progress: Arc<Progress>,
    finished: oneshot::Sender<Option<String>>,
    updates: UnboundedSender<Update>,
) {
    let error = burst(clients, stack, settings, progress, &updates)
        .await
        .err()
        .map(|err| format!("{err:#}"));
    let _ = finished.send(error);
}

/// A sender the engine feeds samples into and the sender of the burst's end: the task
/// between them forwards each sample to the console, then, once the burst has ended and every
/// sample sent before that is forwarded, the end.
fn burst_forwarder(
    updates: &UnboundedSender<Update>,
) -> (
    UnboundedSender<crate::bench::model::Sample>,
    oneshot::Sender<Option<String>>,
) {
    let (sender, mut samples) = unbounded_channel();
    let (finished, mut ended) = oneshot::channel::<Option<String>>();
    let updates = updates.clone();
    tokio::spawn(async move {
        let error = loop {
            tokio::select! {
                biased;
                Some(sample) = samples.recv() => {
                    let _ = updates.send(Update::Sample(Box::new(sample)));
                }
                ended = &mut ended => {
                    break ended.unwrap_or_else(|_| Some("the burst stopped unexpectedly".into()));
                }
            }
        };
        // The engine sent every sample before the burst ended.
        while let Ok(sample) = samples.try_recv() {
            let _ = updates.send(Update::Sample(Box::new(sample)));
        }
        let _ = updates.send(Update::BurstDone { error });
    });
    (sender, finished)
}

async fn burst(
    clients: StackClients,
    stack: Option<String>,
    settings: BurstSettings,
    progress: Arc<Progress>,
    updates: &UnboundedSender<Update>,
) -> anyhow::Result<()> {
    let payload = crate::invoke::url_payload(&settings.image_url)?;
    let lab = Lab::on(clients, stack.as_deref()).await?;
    let function = lab.names.function.clone();
    let invoker = SignedInvoker::new(&lab.clients.config, &function)?;
    let started_at = hybridlab_wire::now_rfc3339();
    let _ = updates.send(Update::BurstStarted {
        function,
        stack: lab.stack.to_string(),
        started_at,
    });
    let plan = BenchPlan {
        shape: settings.shape(),
        requests: Some(settings.invocations),
        duration: None,
        warmup: 0,
        payloads: vec![payload],
    };
    engine::run(invoker, &plan, progress).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::model::{Outcome, Sample};

    #[tokio::test]
    async fn a_burst_ends_after_its_last_sample_reached_the_console() {
        let (updates, mut received) = unbounded_channel();
        let (live, finished) = burst_forwarder(&updates);
        for seq in 0..500 {
            live.send(Sample {
                seq,
                intended_us: 0,
                sent_us: 0,
                done_us: 1,
                outcome: Outcome::Ok,
                lambda: None,
                ec2_ms: None,
                error: None,
            })
            .expect("the forwarder listens");
        }
        // The end comes at once, before the forwarder has had a turn.
        finished.send(None).expect("the forwarder listens");
        let mut samples = 0;
        loop {
            match received.recv().await.expect("updates until the end") {
                Update::Sample(_) => samples += 1,
                Update::BurstDone { error } => {
                    assert_eq!(error, None);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(samples, 500, "every sample before the end");
    }
}
