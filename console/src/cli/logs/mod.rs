//! `hybridlab logs`: the function's and the server's log groups of a stack, merged in time
//! order with the source marked, like `aws logs tail`. The engine is [`LogTail`] (shared with
//! the console), its merge rules live in `lab::logs::merge`; this file is the command around it:
//! arguments, printing, Ctrl-C and a reader that goes away.

pub mod render;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use render::{HumanStyle, OutputFormat};

use crate::lab::Lab;
use crate::lab::logs::entry::{LogEntry, LogSource};
use crate::lab::logs::line::{Level, LogLine};
use crate::lab::logs::tail::{LogTail, POLL_EVERY, TailOptions};
use crate::lab::target::TargetChoice;

const AFTER_HELP: &str = "\
Lines print as `HH:MM:SS.mmm source LEVEL request-id | message key=value ...`, in UTC, oldest
first: the server's JSON lines as their message and fields, the function's lines with the
runtime's `invoke{requestId=...}` span as the request id, START/END/REPORT with theirs, REPORT
as its parsed fields (duration, billed duration, memory used of size, cold start with its
init duration, status). --raw prints every message as written instead. Control characters
are escaped either way (--json keeps them, JSON-escaped). On a terminal the source and the
level are coloured, warnings, errors and REPORT lines highlighted; NO_COLOR (any value) turns
colour off.

--level keeps the lines of that level and the more severe ones; lines that name no level
(START, END, REPORT, plain text) count as INFO, Lambda's failures (a REPORT with a status, a
timeout, a runtime error) and panics as ERROR.

--follow reads new lines with a StartLiveTail session where the endpoint offers one (AWS),
else by polling FilterLogEvents every second (the local sandbox); --poll always polls. Each
poll re-reads the last 15 s of a group and skips what it printed, so lines that reach
CloudWatch late are printed when they arrive, once.

Examples:
  hybridlab logs                         the last 10 minutes of both groups
  hybridlab logs lambda -f               follow the function's log
  hybridlab logs --since 1h --filter REPORT --json
  hybridlab logs ec2 --level warn --since 1h   the server's warnings and errors
  hybridlab logs ec2 --filter '\"a phrase\"'

Exit status: 0 when the lines were printed (also when following is stopped with Ctrl-C, or
the reader of the output goes away), 1 when the logs cannot be read (the message says what
to do), 2 for a bad command line, 130 when Ctrl-C interrupts a read that does not follow.";

/// Which log groups to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogSelection {
    /// The function's group, /aws/lambda/hybridlab-proxy-<stack>.
    Lambda,
    /// The image server's group, /hybridlab/<stack>/ec2-server.
    Ec2,
    /// Both, merged.
    All,
}

impl LogSelection {
    pub fn sources(self) -> Vec<LogSource> {
        match self {
            Self::Lambda => vec![LogSource::Lambda],
            Self::Ec2 => vec![LogSource::Ec2],
            Self::All => vec![LogSource::Lambda, LogSource::Ec2],
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct LogsArgs {
    /// Which log group: the function's, the server's, or both merged.
    #[arg(value_enum, default_value_t = LogSelection::All)]
    pub source: LogSelection,

    /// Keep printing new lines as they arrive, until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// How far back to start (e.g. 30s, 10m, 1h30m, 2d).
    #[arg(long, default_value = "10m", value_parser = crate::lab::units::parse_duration)]
    pub since: Duration,

    /// Only lines matching this CloudWatch Logs filter pattern: ERROR (a term), '"two words"'
    /// or '"a-dashed-id"' (quoted), '{ $.level = "ERROR" }' (JSON lines).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,

    /// Only lines of this level or a more severe one (lines without a level count as INFO).
    #[arg(long, value_enum, ignore_case = true, value_name = "LEVEL")]
    pub level: Option<LevelChoice>,

    /// One JSON object per line and event: source, group, stream, timestamp (RFC 3339) and
    /// timestamp_ms, ingestion_ms, event_id, message, report (the parsed fields of a REPORT
    /// line, else null), level (as the line names it, else null) and request_id (else null).
    #[arg(long)]
    pub json: bool,

    /// Print each message as written (JSON lines as JSON, REPORT as Lambda wrote it) instead
    /// of its level, request id, message and fields.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// With --follow, poll FilterLogEvents even where StartLiveTail is offered (AWS bills
    /// live tail by the minute).
    #[arg(long, requires = "follow")]
    pub poll: bool,

    /// The stack (default: the target's only stack).
    #[arg(long)]
    pub stack: Option<String>,
}

/// The least severe level `--level` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelChoice {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LevelChoice> for Level {
    fn from(choice: LevelChoice) -> Self {
        match choice {
            LevelChoice::Error => Self::Error,
            LevelChoice::Warn => Self::Warn,
            LevelChoice::Info => Self::Info,
            LevelChoice::Debug => Self::Debug,
            LevelChoice::Trace => Self::Trace,
        }
    }
}

impl LogsArgs {
    fn tail_options(&self) -> TailOptions {
        TailOptions {
            sources: self.source.sources(),
            since: self.since,
            filter: self.filter.clone(),
            follow: self.follow,
            poll_every: POLL_EVERY,
            live_tail: !self.poll,
        }
    }

    fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            OutputFormat::Human(HumanStyle {
                colour: crate::cli::output::stdout_colour(),
                raw: self.raw,
            })
        }
    }
}

pub async fn run(target: &TargetChoice, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(target, args.stack.as_deref()).await?;
    let mut options = args.tail_options();
    // moto's StartLiveTail cannot be reached (the SDK sends it to a `stream-` host name) and
    // would not stream if it were: on the sandbox, polling from the start saves the probe.
    options.live_tail &= !lab.clients.is_sandbox();
    let mut tail = LogTail::open(&lab, options).await?;
    let format = args.format();
    let min_level = args.level.map(Level::from);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let reader_gone = reader_gone(args.follow);
    tokio::pin!(reader_gone);
    loop {
        let batch = tokio::select! {
            _ = &mut interrupted => {
                return Ok(if args.follow { ExitCode::SUCCESS } else { ExitCode::from(crate::cli::exit::INTERRUPTED) });
            }
            () = &mut reader_gone => return Ok(ExitCode::SUCCESS),
            batch = tail.next_batch() => batch?,
        };
        for notice in tail.take_notices() {
            eprintln!("hybridlab: note: {notice}");
        }
        let Some(batch) = batch else {
            return Ok(ExitCode::SUCCESS);
        };
        match print_batch(&batch, format, min_level) {
            Ok(()) => {}
            // The reader has gone (`hybridlab logs -f | head`): done, quietly.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS);
            }
            Err(err) => return Err(err).context("cannot write the log lines to standard output"),
        }
    }
}

/// Prints the entries of `batch` at `min_level` or above.
fn print_batch(
    batch: &[LogEntry],
    format: OutputFormat,
    min_level: Option<Level>,
) -> std::io::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for entry in batch {
        let line = LogLine::of(entry);
        if line.at_least(min_level) {
            writeln!(out, "{}", render::format_entry(entry, &line, format))?;
        }
    }
    out.flush()
}

/// Resolves when standard output is a pipe whose reader has gone, so `logs -f | head` ends
/// when `head` does rather than at the next line it fails to write, which may be long in
/// coming. Never resolves when not following, or where it cannot tell.
async fn reader_gone(follow: bool) {
    if follow {
        let (gone, noticed) = tokio::sync::oneshot::channel();
        // poll(2) blocks; a thread of its own that ends with the process.
        std::thread::spawn(move || {
            if wait_for_reader_to_go() {
                let _ = gone.send(());
            }
        });
        if noticed.await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Blocks until standard output reports an error or hang-up: on Linux, the write end of a
/// pipe does once its last reader closes it. Asking for no events means a terminal or a file,
/// which never report either, block forever.
#[cfg(unix)]
fn wait_for_reader_to_go() -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    use std::os::fd::AsFd as _;

    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    let mut fds = [PollFd::new(&fd, PollFlags::empty())];
    loop {
        match poll(&mut fds, None) {
            Ok(_) => {
                let events = fds[0].revents();
                if events.intersects(PollFlags::ERR | PollFlags::HUP) {
                    return true;
                }
                if events.contains(PollFlags::NVAL) {
                    return false;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

#[cfg(not(unix))]
fn wait_for_reader_to_go() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn logs_args(line: &[&str]) -> Result<LogsArgs, clap::Error> {
        let cli = Cli::try_parse_from(line)?;
        match cli.command {
            Some(Command::Logs(args)) => Ok(args),
            other => panic!("not `logs`: {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_both_groups_for_the_last_ten_minutes() {
        let args = logs_args(&["hybridlab", "logs"]).expect("parses");
        let options = args.tail_options();
        assert_eq!(options.sources, [LogSource::Lambda, LogSource::Ec2]);
        assert_eq!(options.since, Duration::from_secs(600));
        assert!(!options.follow && options.live_tail && options.filter.is_none());
        assert_eq!(args.level, None, "every level");
        assert!(matches!(
            args.format(),
            OutputFormat::Human(HumanStyle { raw: false, .. })
        ));
    }

    #[test]
    fn level_and_raw_reach_the_printing() {
        let args = logs_args(&["hybridlab", "logs", "--level", "warn", "--raw"]).expect("parses");
        assert_eq!(args.level.map(Level::from), Some(Level::Warn));
        assert!(matches!(
            args.format(),
            OutputFormat::Human(HumanStyle { raw: true, .. })
        ));
        let json = logs_args(&["hybridlab", "logs", "--level", "ERROR", "--json"]).expect("parses");
        assert_eq!(json.level.map(Level::from), Some(Level::Error));
        assert_eq!(json.format(), OutputFormat::Json);
    }

    #[test]
    fn every_flag_reaches_the_tail() {
        let args = logs_args(&[
            "hybridlab",
            "logs",
            "ec2",
            "-f",
            "--since",
            "1h30m",
            "--filter",
            "ERROR",
            "--poll",
            "--stack",
            "abcd",
        ])
        .expect("parses");
        let options = args.tail_options();
        assert_eq!(options.sources, [LogSource::Ec2]);
        assert_eq!(options.since, Duration::from_secs(5400));
        assert_eq!(options.filter.as_deref(), Some("ERROR"));
        assert!(options.follow && !options.live_tail);
        assert_eq!(args.stack.as_deref(), Some("abcd"));
        assert_eq!(
            logs_args(&["hybridlab", "logs", "lambda", "--json"])
                .expect("parses")
                .format(),
            OutputFormat::Json
        );
    }

    #[test]
    fn nonsense_is_refused_by_the_parser() {
        for line in [
            &["hybridlab", "logs", "s3"][..],
            &["hybridlab", "logs", "--since", "10x"],
            &["hybridlab", "logs", "--json", "--raw"],
            &["hybridlab", "logs", "--poll"],
            &["hybridlab", "logs", "--level", "loud"],
            &["hybridlab", "logs", "--level"],
        ] {
            assert!(logs_args(line).is_err(), "{line:?}");
        }
    }
}
