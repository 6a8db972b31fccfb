//! The command line's shape (clap).

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hybridlab",
    version,
    about = "Run the hybrid AWS image-processing lab from one terminal"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local sandbox: an AWS-compatible endpoint on loopback (moto) with Lambda and EC2
    /// compute, so the lab runs without an AWS account.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: Option<SandboxAction>,

    /// Edge port every AWS client talks to.
    #[arg(long, default_value_t = hybridlab_provision::sandbox::DEFAULT_EDGE_PORT)]
    pub port: u16,

    /// Run in the background; `hybridlab sandbox stop` stops it.
    #[arg(long)]
    pub detach: bool,

    /// The most function environments running at once (the account's concurrency limit).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// Say whether a sandbox runs, where, and what it runs.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop the running sandbox and everything it started.
    Stop,
}
