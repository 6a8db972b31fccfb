//! The exit codes of every command, one meaning each, none of them clap's own 2 (a usage
//! error): the README's table and `hybridlab --help` show [`EXIT_CODES`], and a test holds
//! both to it.

/// What was asked for does not exist: no stack, no sandbox running, no such object or row.
pub const NOT_FOUND: u8 = 3;
/// The stack exists but is incomplete (`status`).
pub const INCOMPLETE: u8 = 4;
/// The work ran and something in it failed: an invocation, an upload, a job, a bench's
/// requests.
pub const FAILED: u8 = 5;
/// `down` left resources behind (its sweep lists them).
pub const REMAINING: u8 = 6;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// Every exit code and its meaning.
pub const EXIT_CODES: [(u8, &str); 8] = [
    (0, "success"),
    (1, "an error; the message says what to do"),
    (2, "a usage error: an unknown flag or a bad value (clap)"),
    (
        NOT_FOUND,
        "what was asked for does not exist: no stack, no sandbox running, no such object or row",
    ),
    (INCOMPLETE, "the stack exists but is incomplete (status)"),
    (
        FAILED,
        "the work ran and something in it failed: an invocation, an upload, a job, a bench's requests",
    ),
    (
        REMAINING,
        "down left resources behind (its sweep lists them)",
    ),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
];

/// The exit codes as `--help` ends with them.
pub const HELP: &str = "Exit codes:
  0    success
  1    an error; the message says what to do
  2    a usage error: an unknown flag or a bad value (clap)
  3    what was asked for does not exist: no stack, no sandbox running, no such object or row
  4    the stack exists but is incomplete (status)
  5    the work ran and something in it failed: an invocation, an upload, a job, a bench's requests
  6    down left resources behind (its sweep lists them)
  130  interrupted (Ctrl-C)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_and_the_readme_give_every_code_its_one_meaning() {
        let readme = include_str!("../../../README.md");
        let mut seen = std::collections::BTreeSet::new();
        for (code, meaning) in EXIT_CODES {
            assert!(seen.insert(code), "{code} has one meaning");
            let line = format!("  {code:<4} {meaning}");
            assert!(HELP.lines().any(|l| l == line), "--help: {line}");
            let row = format!("| {code} | {meaning} |");
            assert!(readme.lines().any(|l| l == row), "README: {row}");
        }
        assert_eq!(HELP.lines().count(), EXIT_CODES.len() + 1);
        // clap exits 2 on a usage error: no command may mean anything else by it.
        assert_eq!(EXIT_CODES[2].0, 2);
    }
}
