//! How human output looks: colour only on a terminal and never with `NO_COLOR` set (any
//! value but empty, per no-color.org), and whether a progress bar may redraw a line.

use std::io::IsTerminal as _;

use crate::lab::tone::Tone;

/// Whether colour applies: `NO_COLOR` unset or empty, and `stream_is_terminal`.
pub fn colour_allowed(no_color: Option<&str>, stream_is_terminal: bool) -> bool {
    no_color.is_none_or(str::is_empty) && stream_is_terminal
}

/// Colour on standard output?
pub fn stdout_colour() -> bool {
    colour_allowed(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_with_a_value_or_no_terminal_means_plain_text() {
        assert!(colour_allowed(None, true));
        assert!(colour_allowed(Some(""), true));
        assert!(!colour_allowed(Some("1"), true));
        assert!(!colour_allowed(None, false));
        assert_eq!(paint("ok", Tone::Good, false), "ok");
        assert_eq!(paint("ok", Tone::Good, true), "\x1b[32mok\x1b[0m");
    }
}
