//! The `hybridlab` command line and operator console: every action is a function here that a
//! subcommand calls and the console (`tui`) reuses: the sandbox's controls, `up`, `down`,
//! `status`, `invoke`, `bench`, `report`, `logs`, `s3`, `db` and `export`.

pub mod bench;
pub mod cli;
pub mod db;
pub mod export;
pub mod invoke;
pub mod lab;
pub mod logs;
pub mod output;
pub mod report;
pub mod s3;
mod sandbox;
mod stack;
mod terraform;
pub mod tui;
pub mod units;
pub mod upload;

use std::process::ExitCode;

use cli::{Cli, Command, SandboxAction};

/// Runs one command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        None => runtime.block_on(tui::run(&cli.target, cli.stack)),
        Some(Command::Sandbox(args)) => match args.action {
            None => runtime.block_on(sandbox::start(args.port, args.detach, args.concurrency)),
            Some(SandboxAction::Status { json }) => runtime.block_on(sandbox::status(json)),
            Some(SandboxAction::Stop) => runtime.block_on(sandbox::stop()),
        },
        Some(Command::Up(args)) => runtime.block_on(stack::up(&cli.target, args)),
        Some(Command::Down(args)) => runtime.block_on(stack::down(&cli.target, args)),
        Some(Command::Status(args)) => runtime.block_on(stack::status(&cli.target, args)),
        Some(Command::Invoke(args)) => runtime.block_on(invoke::run(&cli.target, args)),
        Some(Command::Bench(args)) => runtime.block_on(bench::command::run(&cli.target, *args)),
        Some(Command::Report(args)) => report::run(args),
        Some(Command::Logs(args)) => runtime.block_on(logs::run(&cli.target, args)),
        Some(Command::S3(args)) => runtime.block_on(s3::run(&cli.target, args)),
        Some(Command::Db(args)) => runtime.block_on(db::run(&cli.target, args)),
        Some(Command::Upload(args)) => runtime.block_on(upload::run(&cli.target, args)),
        Some(Command::Export(args)) => runtime.block_on(export::run(&cli.target, args)),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "hybridlab", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
