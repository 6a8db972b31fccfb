//! The operator console: `hybridlab` with no subcommand. A ratatui screen over the same lab
//! actions the subcommands use: [`action`] is the vocabulary, [`app`] the model, one file per
//! view ([`view`] draws the frame, the Stack and Invoke views, and the panes), and the runner
//! performs every lab action in a task that reports back through a channel, so the screen
//! keeps redrawing (20 times a second) whatever the network does. Keys and the mouse
//! ([`mouse`] maps a click to what was drawn there) come in; tracing goes to a file
//! ([`log_file`]), never to the screen.

pub mod action;
pub mod app;
pub mod db_pane;
#[cfg(test)]
mod fixtures;
pub mod invoke_view;
pub mod jobs_pane;
pub mod log_file;
pub mod logs_pane;
pub mod mouse;
pub mod palette;
pub mod run_stats;
mod runner;
pub mod s3_pane;
pub mod spool;
pub mod stack_view;
pub mod view;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use futures::StreamExt as _;
use hybridlab_provision::stack::{StackClients, Target};
use tokio::sync::mpsc::unbounded_channel;

use self::action::{Action, Key, Mouse};
use self::app::App;
use self::log_file::install_log_file;
use self::mouse::ScreenMap;
use self::palette::{Palette, Theme};
use self::runner::Runner;
use crate::lab::target::{TargetChoice, connect};

/// One frame every 50 ms at least: 20 a second while anything changes.
const FRAME: Duration = Duration::from_millis(50);
/// How often the Stack view reads the stacks again by itself.
const STACK_REFRESH: Duration = Duration::from_secs(15);

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
    /// The colours for a dark or a light terminal (the config file's `theme`).
    pub theme: Theme,
}

/// Runs the console on `target` until the user quits. The terminal is restored on every way
/// out, a panic included (`ratatui::init` installs the hook; [`capture_mouse`] adds the
/// mouse's release to it).
pub async fn run(target: &TargetChoice, options: ConsoleOptions) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the console needs a terminal; in scripts use the subcommands (`hybridlab --help`), each with --json"
        );
    }
    let log_file = install_log_file(None);
    tracing::info!(lab = ?target, stack = ?options.stack, "the console starts");
    let clients = connect(target).await?;
    let (header, on_aws) = match &clients.target {
        Target::Sandbox { endpoint } => (format!("LOCAL SANDBOX ({endpoint})"), false),
        Target::Aws { .. } => (clients.describe().to_uppercase(), true),
    };
    let mut app = App::new(header, on_aws, options.image_url.unwrap_or_default());
    app.stack.preferred = options.stack;
    app.log_file = log_file;
    let palette = Palette::new(options.colour).with_theme(options.theme);
    let mut terminal = ratatui::init();
    capture_mouse();
    let result = event_loop(&mut terminal, &mut app, clients, palette).await;
    release_mouse();
    ratatui::restore();
    match &result {
        Ok(()) => tracing::info!("the console quits"),
        Err(err) => tracing::error!("the console stops: {err:#}"),
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Asks the terminal for mouse events, and has a panic give them back before ratatui's hook
/// restores the rest (a shell left reporting the mouse prints escape codes on every move).
fn capture_mouse() {
    let restore = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        release_mouse();
        restore(info);
        // After the terminal is back: the message is on the screen whatever the log does.
        tracing::error!("the console panicked: {info}");
    }));
    // A terminal without mouse reporting ignores the request; the keys do everything.
    if let Err(err) = crossterm::execute!(std::io::stdout(), EnableMouseCapture) {
        tracing::warn!("the terminal does not take mouse capture: {err}");
    }
}

fn release_mouse() {
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
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
    // What the last frame drew where: a click is read against what the user saw.
    let mut map = ScreenMap::default();
    let mut redraw = true;
    loop {
        if redraw {
            terminal
                .draw(|frame| map = view::draw_mapped(frame, app, palette))
                .context("drawing the console")?;
        }
        redraw = true;
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
                Some(Ok(Event::Mouse(mouse))) => match translate_mouse(mouse) {
                    Some(mouse) => {
                        if let Some(action) = app.on_mouse(mouse, &map) {
                            runner.start(action);
                        }
                    }
                    // The pointer moving (reported while the mouse is captured) changes
                    // nothing: no frame for it.
                    None => redraw = false,
                },
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
        KeyCode::BackTab => Key::BackTab,
        _ => return None,
    })
}

/// The console's mouse event for a terminal's, if it uses it: the left button's press, and
/// the wheel.
fn translate_mouse(mouse: MouseEvent) -> Option<Mouse> {
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => Some(Mouse::Click {
            column: mouse.column,
            row: mouse.row,
        }),
        MouseEventKind::ScrollUp => Some(Mouse::WheelUp),
        MouseEventKind::ScrollDown => Some(Mouse::WheelDown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_tab_j_k_and_the_wheel_reach_the_app_as_its_keys() {
        let key = |code, modifiers| translate(KeyEvent::new(code, modifiers));
        assert_eq!(
            key(KeyCode::BackTab, KeyModifiers::SHIFT),
            Some(Key::BackTab)
        );
        assert_eq!(key(KeyCode::Tab, KeyModifiers::NONE), Some(Key::Tab));
        // Letters stay letters here: the app decides where j means Down.
        assert_eq!(
            key(KeyCode::Char('j'), KeyModifiers::NONE),
            Some(Key::Char('j'))
        );
        assert_eq!(
            key(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Some(Key::Char('G'))
        );
        let mouse = |kind| {
            translate_mouse(MouseEvent {
                kind,
                column: 12,
                row: 1,
                modifiers: KeyModifiers::NONE,
            })
        };
        assert_eq!(
            mouse(MouseEventKind::Down(MouseButton::Left)),
            Some(Mouse::Click { column: 12, row: 1 })
        );
        assert_eq!(mouse(MouseEventKind::ScrollDown), Some(Mouse::WheelDown));
        assert_eq!(mouse(MouseEventKind::ScrollUp), Some(Mouse::WheelUp));
        assert_eq!(mouse(MouseEventKind::Up(MouseButton::Left)), None);
        assert_eq!(mouse(MouseEventKind::Moved), None);
    }
}
