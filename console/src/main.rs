//! `hybridlab`: the lab's command line and operator console.
//!
//! The console and its subcommands are built on the provisioning and sandbox layers, which are
//! not written yet; until then the binary says so and points at what does exist.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "hybridlab",
    version,
    about = "Run the hybrid AWS image-processing lab"
)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "hybridlab: the operator console and its subcommands are not built yet.\n\
         What runs today: the image server (`cargo run -p hybridlab-ec2-server -- --help`),\n\
         the proxy Lambda (lambda/), and the end-to-end tests (`cargo test --workspace`)."
    );
    std::process::ExitCode::FAILURE
}
