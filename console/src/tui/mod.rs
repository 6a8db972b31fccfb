//! The operator console: `hybridlab` with no subcommand. A ratatui screen over the same lab
//! actions the subcommands use: [`action`] is the vocabulary, [`app`] the model, one file per
//! view ([`view`] draws the frame, the Stack and Invoke views, and the panes), and the runner
//! performs every lab action in a task that reports back through a channel, so the screen
//! keeps redrawing (20 times a second) whatever the network does.

pub mod action;
pub mod app;
pub mod db_pane;
#[cfg(test)]
mod fixtures;
pub mod invoke_view;
pub mod jobs_pane;
pub mod logs_pane;
pub mod palette;
mod runner;
pub mod s3_pane;
pub mod spool;
pub mod stack_view;
pub mod view;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt as _;
use hybridlab_provision::stack::{StackClients, Target};
use tokio::sync::mpsc::unbounded_channel;

use self::action::{Action, Key};
use self::app::App;
use self::palette::Palette;
use self::runner::Runner;
use crate::lab::target::{TargetChoice, connect};

/// One frame every 50 ms at least: 20 a second while anything changes.
const FRAME: Duration = Duration::from_millis(50);
/// How often the Stack view reads the stacks again by itself.
const STACK_REFRESH: Duration = Duration::from_secs(15);

/// Runs the console until the user quits. The terminal is restored on every way out,
/// a panic included (`ratatui::init` installs the hook).
/// How the console starts.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// The stack selected first.
    pub stack: Option<String>,
    /// The image URL invoked until the user types another (`HYBRIDLAB_IMAGE_URL` or the
    /// config file).
    pub image_url: Option<String>,
    /// Whether to draw in colour (`--color`, `NO_COLOR`).
    pub colour: bool,
}

/// The console on `target`.
pub async fn run(target: &TargetChoice, options: ConsoleOptions) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the console needs a terminal; in scripts use the subcommands (`hybridlab --help`), each with --json"
        );
    }
    let clients = connect(target).await?;
    let (header, on_aws) = match &clients.target {
        Target::Sandbox { endpoint } => (format!("LOCAL SANDBOX ({endpoint})"), false),
        Target::Aws { .. } => (clients.describe().to_uppercase(), true),
    };
    let mut app = App::new(header, on_aws, options.image_url.unwrap_or_default());
    app.stack.preferred = options.stack;
    let palette = Palette::new(options.colour);
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
    let mut runner = Runner::new(clients, updates_sender);
    let mut events = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut refresh = tokio::time::interval(STACK_REFRESH);
    runner.look_up_account();
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
