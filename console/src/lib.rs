//! The `hybridlab` command line and operator console, in three parts: `lab` (the actions, which
//! return data and never print), `cli` (clap, one file per subcommand, the printing) and `tui`
//! (the ratatui console, which runs the same lab actions off its UI loop).

pub mod cli;
pub mod lab;
pub mod tui;
