//! `hybridlab`: parses the command line, installs logging, and hands over to the library.

use clap::Parser;
use hybridlab_console::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match hybridlab_console::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hybridlab: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
