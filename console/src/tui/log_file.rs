//! The console's log: while the console owns the screen, tracing goes to
//! `console.log` in hybridlab's state directory (`hybridlab_tools::state_dir()`), appended
//! to, never to the terminal. The `?` help names the file, or says why there is none: the
//! console runs either way.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// The log's name in the state directory.
pub const FILE_NAME: &str = "console.log";

/// The crates whose `info` lines the log keeps unless RUST_LOG says otherwise; the rest of
/// the world logs its warnings.
const OURS: [&str; 5] = [
    "hybridlab_console",
    "hybridlab_provision",
    "hybridlab_bench",
    "hybridlab_wire",
    "hybridlab_tools",
];

/// Where the console's tracing goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFile {
    /// Appended to this file.
    Writing(PathBuf),
    /// Nowhere, and why.
    Off(String),
}

impl LogFile {
    /// The line `?` shows.
    pub fn describe(&self) -> String {
        match self {
            Self::Writing(path) => format!("log file: {}", path.display()),
            Self::Off(why) => format!("logging is off: {why}"),
        }
    }
}

/// The tracing filter: RUST_LOG's (`rust_log`) when set, else `info` for hybridlab's crates
/// and `warn` for the others.
pub fn default_filter(rust_log: Option<&str>) -> String {
    if let Some(spec) = rust_log.filter(|spec| !spec.trim().is_empty()) {
        return spec.to_owned();
    }
    let ours: Vec<String> = OURS.iter().map(|name| format!("{name}=info")).collect();
    format!("warn,{}", ours.join(","))
}

/// Sends the process's tracing to `console.log` in the state directory, filtered by
/// `filter` (`None`: RUST_LOG when set, else [`default_filter`]). Never fails: what went
/// wrong (a directory that cannot be made, a filter that does not parse, a logger installed
/// before) comes back as [`LogFile::Off`].
pub fn install_log_file(filter: Option<String>) -> LogFile {
    let filter =
        filter.unwrap_or_else(|| default_filter(std::env::var("RUST_LOG").ok().as_deref()));
    install_at(&hybridlab_tools::state_dir().join(FILE_NAME), &filter)
}

fn install_at(path: &Path, filter: &str) -> LogFile {
    let subscriber = match subscriber(path, filter) {
        Ok(subscriber) => subscriber,
        Err(why) => return LogFile::Off(why),
    };
    match tracing::subscriber::set_global_default(subscriber) {
        Ok(()) => LogFile::Writing(path.to_owned()),
        Err(_) => LogFile::Off(
            "a logger was installed before the console's; its lines go where that one writes"
                .to_owned(),
        ),
    }
}

/// A subscriber that appends `filter`'s lines to `path`, without colour codes.
fn subscriber(path: &Path, filter: &str) -> Result<impl tracing::Subscriber + Send + Sync, String> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|err| format!("`{filter}` is not a tracing filter (RUST_LOG): {err}"))?;
    let file = open_for_append(path)?;
    Ok(tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .finish())
}

/// `path` opened to append to, its directory made first; or why it cannot be.
fn open_for_append(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot make {}: {err}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| format!("cannot open {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_appends_lines_of_our_crates_at_info_and_says_where() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("state").join(FILE_NAME);
        std::fs::create_dir_all(dir.path().join("state")).expect("a state directory");
        std::fs::write(&path, "a line from before\n").expect("an old log");
        let subscriber = subscriber(&path, &default_filter(None)).expect("the log opens");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "hybridlab_console::tui", "the console started");
            tracing::debug!(target: "hybridlab_console::tui", "too fine to keep");
            tracing::info!(target: "aws_config", "someone else's chatter");
        });
        let log = std::fs::read_to_string(&path).expect("the log");
        assert!(log.starts_with("a line from before\n"), "appended: {log}");
        assert!(log.contains("the console started"), "{log}");
        assert!(!log.contains("too fine"), "{log}");
        assert!(!log.contains("chatter"), "{log}");
        assert!(!log.contains('\x1b'), "no colour codes in a file: {log}");
        assert_eq!(
            LogFile::Writing(path.clone()).describe(),
            format!("log file: {}", path.display())
        );
    }

    #[test]
    fn rust_log_chooses_the_filter_when_set() {
        assert_eq!(default_filter(Some("debug")), "debug");
        assert!(default_filter(Some("  ")).contains("hybridlab_console=info"));
        assert!(default_filter(None).starts_with("warn,"));
    }

    #[test]
    fn a_log_that_cannot_be_opened_turns_logging_off_and_says_why() {
        let dir = tempfile::tempdir().expect("a directory");
        // A file where the state directory should be.
        let blocker = dir.path().join("state");
        std::fs::write(&blocker, "not a directory").expect("a file");
        let log = install_at(&blocker.join(FILE_NAME), &default_filter(None));
        assert!(
            matches!(&log, LogFile::Off(why) if why.contains("cannot make") && why.contains("state")),
            "{log:?}"
        );
        assert!(log.describe().starts_with("logging is off: cannot make"));
        let log = install_at(&dir.path().join(FILE_NAME), "hybridlab=notalevel");
        assert!(
            matches!(&log, LogFile::Off(why) if why.contains("not a tracing filter")),
            "{log:?}"
        );
    }

    #[test]
    fn a_second_logger_is_refused_without_a_panic() {
        let dir = tempfile::tempdir().expect("a directory");
        // The first may find a logger of another test already there; the second always does.
        let _first = install_at(&dir.path().join("first.log"), "warn");
        let second = install_at(&dir.path().join("second.log"), "warn");
        assert!(
            matches!(&second, LogFile::Off(why) if why.contains("installed before")),
            "{second:?}"
        );
    }
}
