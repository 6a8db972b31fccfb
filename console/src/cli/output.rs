//! How human output looks: colour only on a terminal and never with `NO_COLOR` set (any
//! value but empty, per no-color.org) unless `--color always|never` says otherwise, and
//! whether a progress bar may redraw a line.

use std::io::IsTerminal as _;
use std::time::Duration;

use crate::lab::tone::Tone;

/// `--color`: whether to colour output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always, even into a pipe (`hybridlab logs --color always | less -R`) or with
    /// `NO_COLOR` set: a flag wins over the environment.
    Always,
    /// Never.
    Never,
}

/// The choice of this process's `--color`, set once by [`choose_colour`].
static COLOR_CHOICE: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Records the command line's `--color` for every output of the process.
pub fn choose_colour(choice: ColorChoice) {
    let _ = COLOR_CHOICE.set(choice);
}

/// The process's `--color`.
pub fn colour_choice() -> ColorChoice {
    COLOR_CHOICE.get().copied().unwrap_or_default()
}

/// Whether `--quiet` was given, set once by [`choose_quiet`].
static QUIET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Records the command line's `--quiet` for every output of the process.
pub fn choose_quiet(quiet: bool) {
    let _ = QUIET.set(quiet);
}

/// Whether the command prints only its result and its errors: no steps as they happen, no
/// progress lines, no notices of what it is about to do.
pub fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

/// Says `line` on standard error, unless `--quiet`.
pub fn say(line: &str) {
    if !quiet() {
        eprintln!("{line}");
    }
}

/// Whether colour applies: as `choice` says, and for `auto` when `NO_COLOR` is unset or empty
/// and the stream is a terminal.
pub fn colour_allowed(
    choice: ColorChoice,
    no_color: Option<&str>,
    stream_is_terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => no_color.is_none_or(str::is_empty) && stream_is_terminal,
    }
}

/// Colour on standard output?
pub fn stdout_colour() -> bool {
    colour_allowed(
        colour_choice(),
        std::env::var("NO_COLOR").ok().as_deref(),
        std::io::stdout().is_terminal(),
    )
}

/// Whether standard error is a terminal a progress bar can redraw.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// `text` in `tone` when `colour`, else as it is.
pub fn paint(text: &str, tone: Tone, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "31",
        Tone::Warn => "33",
        Tone::Dim => "2",
        Tone::Accent => "36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// How often a progress line is drawn: ten times a second on a terminal, where it is
/// redrawn in place, every five seconds into a pipe or a file, where each is a new line.
pub fn progress_every(terminal: bool) -> Duration {
    if terminal {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(5)
    }
}

/// Draws `line` on standard error: over the last one on a terminal, as a new line otherwise.
pub fn draw_progress(line: &str, terminal: bool) {
    use std::io::Write as _;
    if quiet() {
        return;
    }
    if terminal {
        eprint!("\r\x1b[2K{line}");
    } else {
        eprintln!("{line}");
    }
    let _ = std::io::stderr().flush();
}

/// Erases the progress line a finished run leaves on a terminal.
pub fn clear_progress() {
    if stderr_is_terminal() && !quiet() {
        eprint!("\r\x1b[2K");
    }
}

/// Draws the progress of a run of `total` things (`unit`) on standard error until aborted:
/// a line redrawn ten times a second on a terminal, one line every five seconds when piped.
/// `done` counts the finished ones.
pub async fn show_progress(
    label: &'static str,
    unit: &'static str,
    total: u64,
    done: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let terminal = stderr_is_terminal();
    let started = std::time::Instant::now();
    let mut ticker = tokio::time::interval(progress_every(terminal));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let line = progress_line(
            label,
            unit,
            done.load(std::sync::atomic::Ordering::Relaxed),
            0,
            Goal::Count(total),
            started.elapsed(),
            terminal,
        );
        draw_progress(&line, terminal);
    }
}

/// When a run ends: after a count of things, after a time, or when it is stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    Count(u64),
    Time(Duration),
    Open,
}

/// A bar of `WIDTH` cells, `part` of it filled (0 to 1).
fn bar_of(part: f64) -> String {
    const WIDTH: usize = 24;
    let filled = ((part.clamp(0.0, 1.0) * WIDTH as f64) as usize).min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

/// `c=8 [#########.........] 450/1000  903/s  2 failed  ETA 1s`, or for a timed run
/// `c=8 [####......] 15s/60s  450 done  30/s  2 failed  ETA 45s`; piped, no bar and the count
/// names `unit` (`450/1000 invocations`).
pub fn progress_line(
    label: &str,
    unit: &str,
    done: u64,
    failed: u64,
    goal: Goal,
    elapsed: Duration,
    bar: bool,
) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = done as f64 / seconds.max(1e-3);
    let (count, left) = match goal {
        Goal::Count(total) => {
            let count = if bar {
                format!(
                    "{} {done}/{total}",
                    bar_of(done as f64 / total.max(1) as f64)
                )
            } else {
                format!("{done}/{total} {unit}")
            };
            // From the rate so far; none before the first is done.
            let left = (done > 0).then(|| total.saturating_sub(done) as f64 / rate);
            (count, left)
        }
        Goal::Time(limit) => {
            let limit_s = limit.as_secs_f64();
            let clock = format!("{:.0}s/{:.0}s", seconds.min(limit_s), limit_s);
            let count = if bar {
                format!(
                    "{} {clock}  {done} done",
                    bar_of(seconds / limit_s.max(1e-3))
                )
            } else {
                format!("{clock}  {done} {unit}")
            };
            (count, Some((limit_s - seconds).max(0.0)))
        }
        Goal::Open => (format!("{done} {unit}"), None),
    };
    let eta = left.map_or_else(String::new, |left| format!("  ETA {}", eta_text(left)));
    format!("{label} {count}  {rate:.0}/s  {failed} failed{eta}")
}

/// `45s`, `3m20s`, `1h05m`: the time left, rounded up to the second.
fn eta_text(seconds: f64) -> String {
    crate::lab::units::human_duration(seconds.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_has_a_bar_only_on_a_terminal() {
        let line = progress_line(
            "c=8",
            "invocations",
            450,
            2,
            Goal::Count(1000),
            Duration::from_secs(1),
            true,
        );
        assert_eq!(
            line,
            "c=8 [##########..............] 450/1000  450/s  2 failed  ETA 2s"
        );
        let plain = progress_line(
            "c=8",
            "invocations",
            450,
            2,
            Goal::Count(1000),
            Duration::from_secs(1),
            false,
        );
        assert_eq!(plain, "c=8 450/1000 invocations  450/s  2 failed  ETA 2s");
    }

    #[test]
    fn a_timed_run_shows_its_clock_and_the_time_left() {
        let line = progress_line(
            "rate=30/s",
            "invocations",
            450,
            0,
            Goal::Time(Duration::from_secs(60)),
            Duration::from_secs(15),
            true,
        );
        assert_eq!(
            line,
            "rate=30/s [######..................] 15s/60s  450 done  30/s  0 failed  ETA 45s"
        );
        let piped = progress_line(
            "c=4",
            "invocations",
            10,
            1,
            Goal::Time(Duration::from_secs(200)),
            Duration::from_secs(250),
            false,
        );
        assert_eq!(
            piped,
            "c=4 200s/200s  10 invocations  0/s  1 failed  ETA 0s"
        );
        assert_eq!(
            progress_line("c=1", "uploads", 0, 0, Goal::Open, Duration::ZERO, true),
            "c=1 0 uploads  0/s  0 failed"
        );
    }

    #[test]
    fn no_color_with_a_value_or_no_terminal_means_plain_text_unless_the_flag_says() {
        use ColorChoice::{Always, Auto, Never};
        assert!(colour_allowed(Auto, None, true));
        assert!(colour_allowed(Auto, Some(""), true));
        assert!(!colour_allowed(Auto, Some("1"), true));
        assert!(!colour_allowed(Auto, None, false));
        // The flag wins over NO_COLOR and over a pipe, both ways.
        assert!(colour_allowed(Always, Some("1"), false));
        assert!(!colour_allowed(Never, None, true));
        assert_eq!(paint("ok", Tone::Good, false), "ok");
        assert_eq!(paint("ok", Tone::Good, true), "\x1b[32mok\x1b[0m");
    }
}
