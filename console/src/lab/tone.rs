//! How a value reads to a person (good, bad, a warning, in the background, to notice): the
//! lab says it of a status or an outcome, and each face colours it its own way (ANSI on the
//! command line, ratatui's colours in the console).

/// How a span of text reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Dim,
    Accent,
}
