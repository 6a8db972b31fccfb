//! The command line: its shape (clap's [`Cli`] and every subcommand's arguments), one file per
//! subcommand that runs a lab action and prints its result, and the exit codes. [`run`] is
//! the whole of it: the console (`tui`) starts when no subcommand is given.

pub mod bench;
pub mod bench_jobs;
pub mod bench_memory;
pub mod bench_uploads;
pub mod config;
pub mod db;
pub mod down;
pub mod exit;
pub mod export;
pub mod gallery;
pub mod iam_policy;
pub mod interrupts;
pub mod invoke;
pub mod job;
pub mod logs;
pub mod output;
pub mod report;
pub mod s3;
pub mod sandbox;
pub mod status;
pub mod steps;
pub mod table;
pub mod terraform;
pub mod up;
pub mod upload;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::lab::target::TargetChoice;

/// Runs one command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    output::choose_colour(cli.color);
    output::choose_quiet(cli.quiet);
    // The sandbox in the foreground logs on its own terms, and the console owns the screen.
    if !matches!(cli.command, None | Some(Command::Sandbox(_))) {
        install_logging(cli.verbose);
    }
    if !matches!(cli.command, Some(Command::Completions { .. })) {
        for moved in crate::lab::state_home::move_from_cache() {
            eprintln!("hybridlab: {moved}");
        }
    }
    // The commands that need no target run even with a config file that cannot be used.
    match cli.command {
        Some(Command::Config { json }) => return config::run(&cli.target, json),
        Some(Command::Report(args)) => return report::run(args),
        Some(Command::Sandbox(args)) => {
            return match args.action {
                None => runtime.block_on(sandbox::start(&args.launch()?, args.detach)),
                Some(SandboxAction::Status { json }) => runtime.block_on(sandbox::status(json)),
                Some(SandboxAction::Stop) => runtime.block_on(sandbox::stop()),
            };
        }
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "hybridlab", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let (target, settings) = cli.target.resolve()?;
    match cli.command {
        None => {
            let theme = match &settings.theme {
                Some(theme) => theme
                    .value
                    .parse()
                    .map_err(|err: String| anyhow::anyhow!("{err} (from {})", theme.source))?,
                None => crate::tui::palette::Theme::default(),
            };
            runtime.block_on(crate::tui::run(
                &target,
                crate::tui::ConsoleOptions {
                    stack: cli.stack,
                    image_url: settings.image_url.map(|url| url.value),
                    // The console draws on a terminal: with `auto`, NO_COLOR alone decides.
                    colour: output::colour_allowed(
                        cli.color,
                        std::env::var("NO_COLOR").ok().as_deref(),
                        true,
                    ),
                    theme,
                },
            ))
        }
        Some(Command::Up(args)) => runtime.block_on(up::up(&target, args)),
        Some(Command::Down(args)) => runtime.block_on(down::down(&target, args)),
        Some(Command::Status(args)) => runtime.block_on(status::status(&target, args)),
        Some(Command::Gallery(args)) => runtime.block_on(gallery::run(&target, args)),
        Some(Command::Invoke(args)) => runtime.block_on(invoke::run(&target, args)),
        Some(Command::Bench(args)) => runtime.block_on(bench::run(&target, *args)),
        Some(Command::Logs(args)) => runtime.block_on(logs::run(&target, args)),
        Some(Command::S3(args)) => runtime.block_on(s3::run(&target, args)),
        Some(Command::Db(args)) => runtime.block_on(db::run(&target, args)),
        Some(Command::Upload(args)) => runtime.block_on(upload::run(&target, args)),
        Some(Command::Job(args)) => runtime.block_on(job::run(&target, args)),
        Some(Command::Export(args)) => runtime.block_on(export::run(&target, args)),
        Some(Command::IamPolicy(args)) => runtime.block_on(iam_policy::run(args, &settings)),
        Some(
            Command::Config { .. }
            | Command::Report(_)
            | Command::Sandbox(_)
            | Command::Completions { .. },
        ) => unreachable!("answered before the target is resolved"),
    }
}

/// The tracing filter for `-v` given `verbose` times, or RUST_LOG's (`rust_log`) when set;
/// `None`: log nothing (the commands say what matters themselves).
fn log_filter(verbose: u8, rust_log: Option<&str>) -> Option<String> {
    const OURS: [&str; 4] = [
        "hybridlab_console",
        "hybridlab_provision",
        "hybridlab_bench",
        "hybridlab_wire",
    ];
    if let Some(spec) = rust_log.filter(|spec| !spec.trim().is_empty()) {
        return Some(spec.to_owned());
    }
    let ours = |level: &str| {
        OURS.iter()
            .map(|target| format!("{target}={level}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match verbose {
        0 => None,
        1 => Some(format!("warn,{}", ours("info"))),
        _ => Some(format!("info,{}", ours("debug"))),
    }
}

/// Logs to standard error as `-v`/`-vv` or RUST_LOG ask.
fn install_logging(verbose: u8) {
    let Some(filter) = log_filter(verbose, std::env::var("RUST_LOG").ok().as_deref()) else {
        return;
    };
    let colour = output::colour_allowed(
        output::colour_choice(),
        std::env::var("NO_COLOR").ok().as_deref(),
        output::stderr_is_terminal(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(verbose > 1)
        .try_init();
}

#[derive(Debug, Parser)]
#[command(
    name = "hybridlab",
    version,
    about = "Run the hybrid AWS image-processing lab from one terminal",
    after_help = exit::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub target: TargetArgs,

    /// The stack the console selects first (with no subcommand; each subcommand has its own
    /// --stack).
    #[arg(long, value_name = "ID")]
    pub stack: Option<String>,

    /// Log what the command does on standard error: -v its steps and retries, -vv with the
    /// details (RUST_LOG, when set, chooses instead).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only the result and the errors: no steps as they happen, no progress lines, no
    /// notice that the sandbox starts.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Colour: on a terminal unless NO_COLOR is set (auto), always (into a pipe too:
    /// `hybridlab logs --color always | less -R`), or never.
    #[arg(long, global = true, value_enum, default_value_t = output::ColorChoice::Auto)]
    pub color: output::ColorChoice,
}

/// Where the stack lives: the local sandbox unless `--aws` (or `HYBRIDLAB_TARGET=aws`, or
/// `target = "aws"` in the config file; see `hybridlab config`).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Use AWS (the standard credential chain) instead of the local sandbox.
    #[arg(long, global = true, conflicts_with = "sandbox")]
    pub aws: bool,

    /// Use the local sandbox, whatever HYBRIDLAB_TARGET or the config file say.
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// AWS region (default: AWS_REGION, the config file's, the profile's); implies --aws.
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// AWS profile from ~/.aws/config (default: AWS_PROFILE, the config file's); implies
    /// --aws.
    #[arg(long, global = true)]
    pub profile: Option<String>,

    /// Use this AWS-compatible endpoint as the local target instead of starting the sandbox
    /// (a sandbox started elsewhere, or another emulator); also HYBRIDLAB_ENDPOINT.
    #[arg(long, global = true, conflicts_with = "aws")]
    pub endpoint: Option<String>,
}

impl TargetArgs {
    fn flags(&self) -> crate::lab::config::TargetFlags {
        crate::lab::config::TargetFlags {
            aws: self.aws,
            sandbox: self.sandbox,
            endpoint: self.endpoint.clone(),
            profile: self.profile.clone(),
            region: self.region.clone(),
        }
    }

    /// The settings these flags, the environment and the config file give, and where the
    /// config file is (whether or not it exists).
    pub fn settings(
        &self,
    ) -> anyhow::Result<(crate::lab::config::Resolved, Option<std::path::PathBuf>)> {
        use crate::lab::config::{config_path, load_file, resolve};
        let env = |name: &str| std::env::var(name).ok();
        let path = config_path(&env);
        let file = match &path {
            Some(path) => load_file(path)?,
            None => None,
        };
        let resolved = resolve(&self.flags(), &env, path.as_deref().zip(file.as_ref()))?;
        Ok((resolved, path))
    }

    /// The target the flags, the environment and the config file choose, with the settings.
    pub fn resolve(&self) -> anyhow::Result<(TargetChoice, crate::lab::config::Resolved)> {
        let (settings, _) = self.settings()?;
        let value = |setting: &Option<crate::lab::config::Sourced<String>>| {
            setting.as_ref().map(|s| s.value.clone())
        };
        let choice = match (settings.target.value, &settings.endpoint) {
            (crate::lab::config::TargetKind::Aws, _) => TargetChoice::Aws {
                region: value(&settings.region),
                profile: value(&settings.profile),
                say: |line| eprintln!("hybridlab: {line}"),
            },
            (crate::lab::config::TargetKind::Sandbox, Some(endpoint)) => {
                TargetChoice::Endpoint(endpoint.value.clone())
            }
            (crate::lab::config::TargetKind::Sandbox, None) => {
                TargetChoice::LocalSandbox { say: output::say }
            }
        };
        Ok((choice, settings))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local sandbox: an AWS-compatible endpoint on loopback (moto) with Lambda and EC2
    /// compute, so the lab runs without an AWS account.
    Sandbox(SandboxArgs),
    /// Create the lab's stack (or finish one an interrupted `up` left), then wait until the
    /// server answers and the function is Active.
    Up(UpArgs),
    /// Delete every resource of a stack, found by name and tag, and sweep for leftovers.
    /// Exits 6 if anything remains.
    Down(DownArgs),
    /// Every resource of the stack with its live state, the server's health, uptime and cost.
    /// Exits 3 if there is no stack, 4 if the stack is incomplete or unhealthy.
    Status(StatusArgs),
    /// Open the stack's gallery in the browser, signed in with a one-time link (the token is
    /// never in a URL nor on a command line), and print its URL. Exits 3 if there is no stack.
    Gallery(GalleryArgs),
    /// Invoke the stack's function once and show the answer with its timing breakdown: the
    /// client round trip, Lambda's duration and billed duration, cold or warm, and the image
    /// server's stages.
    Invoke(invoke::InvokeArgs),
    /// Invoke the function many times, closed loop (-c) or open loop (--rate), and report
    /// latency percentiles, throughput, errors, cold starts and cost.
    Bench(Box<bench::BenchArgs>),
    /// Turn run files of `bench --out` into a Markdown report with SVG plots.
    Report(report::ReportArgs),
    /// The function's and the server's log groups, merged in time order, like `aws logs tail`.
    Logs(logs::LogsArgs),
    /// Look at the stack's images bucket: list, download, presign, versions.
    S3(s3::S3Args),
    /// Look at the stack's metadata table: scan with a filter, get one row.
    Db(db::DbArgs),
    /// Upload images into the event-driven pipeline (`up --with pipeline`) and follow each row
    /// through PENDING and PROCESSING to COMPLETED or FAILED. Exits 5 if any ends FAILED.
    Upload(upload::UploadArgs),
    /// Submit, follow, list, read and cancel jobs of the job-worker variant
    /// (`up --with jobs`). A followed job that ends FAILED or CANCELLED exits 5.
    Job(job::JobArgs),
    /// Write the stack as a Terraform module or a CloudFormation template, equivalent to what
    /// `up` creates.
    Export(export::ExportArgs),
    /// Print the IAM identity policy a student's own IAM user needs to run the lab on AWS
    /// (`up`, `status`, `invoke`, `bench`, `logs`, `s3`, `db`, `down`; `--with pipeline` adds
    /// the pipeline and `upload`): `hybridlab iam-policy > policy.json`.
    IamPolicy(iam_policy::IamPolicyArgs),
    /// Show the settings in force (target, endpoint, profile, region, image URL) and where
    /// each comes from: a flag, the environment, the config file or the default.
    Config {
        /// The settings as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (e.g. `hybridlab completions bash > ~/.local/share/bash-completion/completions/hybridlab`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The stack to create or complete (default: the target's only stack, or a new one).
    #[arg(long)]
    pub stack: Option<String>,

    /// Print the plan (every resource, its name and settings) and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// On AWS, create without showing the plan and its cost and asking first (required when
    /// standard input is not a terminal).
    #[arg(long, short = 'y', conflicts_with = "dry_run")]
    pub yes: bool,

    #[command(flatten)]
    pub shape: StackShape,

    /// Newline-delimited JSON: one object per step event, then the result.
    #[arg(long)]
    pub json: bool,

    /// Create the stack with another tool: `terraform` applies the exported module
    /// (`hybridlab export terraform`) and streams its progress as the steps.
    #[arg(long, value_enum, conflicts_with = "dry_run")]
    pub via: Option<Via>,
}

/// What a stack is made with: the choices `up` and the exports share.
#[derive(Debug, Args)]
pub struct StackShape {
    /// The instance terminates itself after this long (e.g. 2h, 90m).
    #[arg(long, default_value = "2h", value_parser = crate::lab::units::parse_duration)]
    pub ttl: std::time::Duration,

    /// EC2 instance type of the image server (in an export, its variable's or parameter's
    /// default).
    #[arg(long, default_value = "t3.micro")]
    pub instance_type: String,

    /// How a burstable (T family) instance pays for bursts: `standard` is throttled at the
    /// baseline and never billed extra; `unlimited` bursts and bills surplus credits.
    #[arg(long, value_enum, default_value = "standard")]
    pub cpu_credits: CpuCreditsArg,

    /// Optional parts of the lab. `pipeline`: uploads and processed buckets and the resizer
    /// function that an upload's S3 event runs. `jobs`: the jobs API, table and bucket, and a
    /// worker instance launched for each job. A stack keeps them until `down`.
    #[arg(long = "with", value_enum, value_delimiter = ',')]
    pub with: Vec<StackPart>,

    /// With `--with jobs`: the most job workers running at once (the rest wait QUEUED).
    #[arg(long, default_value_t = hybridlab_provision::stack::plan::DEFAULT_WORKER_CAP, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub worker_cap: u32,
}

impl StackShape {
    /// The settings of a stack in `region` made with these choices, the rest at their
    /// defaults. The TTL is at least a minute.
    pub fn settings(&self, region: String) -> hybridlab_provision::stack::StackSettings {
        hybridlab_provision::stack::StackSettings {
            ttl_seconds: self.ttl.as_secs().max(60),
            instance_type: self.instance_type.clone(),
            pipeline: self.with.contains(&StackPart::Pipeline),
            jobs: self.with.contains(&StackPart::Jobs),
            worker_cap: self.worker_cap,
            cpu_credits: match self.cpu_credits {
                CpuCreditsArg::Standard => hybridlab_provision::stack::CpuCredits::Standard,
                CpuCreditsArg::Unlimited => hybridlab_provision::stack::CpuCredits::Unlimited,
            },
            ..hybridlab_provision::stack::StackSettings::new(region)
        }
    }
}

/// `--cpu-credits`: EC2's credit options of a burstable instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuCreditsArg {
    Standard,
    Unlimited,
}

/// A tool that creates the stack instead of hybridlab's own calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// `terraform init` and `terraform apply` (or `destroy`) on the exported module.
    Terraform,
}

/// An optional part of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StackPart {
    /// The event-driven variant: upload, S3-triggered resizer, status tracking.
    Pipeline,
    /// The job-worker variant: an HTTP API submits jobs, a DynamoDB stream launches an EC2
    /// worker for each, which terminates itself when done.
    Jobs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The stack to delete (default: the target's only stack).
    #[arg(long, conflicts_with = "all")]
    pub stack: Option<String>,

    /// Delete every hybridlab stack on the target.
    #[arg(long)]
    pub all: bool,

    /// Do not ask for confirmation (required on AWS when not on a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Newline-delimited JSON: one object per step event, then the result.
    #[arg(long)]
    pub json: bool,

    /// Delete a stack `up --via terraform` made with `terraform destroy`.
    #[arg(long, value_enum, conflicts_with = "all")]
    pub via: Option<Via>,
}

#[derive(Debug, Args)]
pub struct GalleryArgs {
    /// The stack (default: the target's only stack with a record on this machine).
    #[arg(long)]
    pub stack: Option<String>,

    /// Print the URL and where the token is; open no browser and make no sign-in link.
    #[arg(long)]
    pub no_open: bool,

    /// One JSON object: `{"stack", "url", "opened", "state_file"}` (never the token).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this stack (default: every stack on the target).
    #[arg(long)]
    pub stack: Option<String>,

    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: Option<SandboxAction>,

    /// Edge port every AWS client talks to.
    #[arg(long, env = "HYBRIDLAB_SANDBOX_PORT", default_value_t = hybridlab_wire::sandbox::DEFAULT_EDGE_PORT)]
    pub port: u16,

    /// Run in the background; `hybridlab sandbox stop` stops it.
    #[arg(long)]
    pub detach: bool,

    /// Lambda's account concurrency: the most function environments running at once
    /// (1,000, as an established account has; 10 with `--new-account`).
    #[arg(long, alias = "concurrency", value_name = "N")]
    pub lambda_concurrency: Option<usize>,

    /// A new AWS account's Lambda concurrency quota of 10: bursts are throttled as they are on
    /// a student's first account.
    #[arg(long)]
    pub new_account: bool,

    /// EC2's quota of On-Demand vCPUs running at once (32, sixteen t3.micro): a launch past
    /// it is refused with `VcpuLimitExceeded`, as AWS refuses it.
    #[arg(long, value_name = "VCPUS", default_value_t = hybridlab_sandbox::DEFAULT_VCPU_LIMIT)]
    pub vcpu_limit: u32,

    /// AWS's typical waits: IAM propagation 10 s, instance boot 40 s, a new function Pending
    /// 5 s, an update in progress 3 s, a deleted bucket's name 10 s. The default is shorter
    /// (5, 15, 2, 1 and 3 s).
    #[arg(long, conflicts_with = "fast")]
    pub like_aws: bool,

    /// No waits and no throttling: a new role or instance profile is usable at once,
    /// instances run and functions are Active as soon as they are created.
    #[arg(long)]
    pub fast: bool,

    /// How long a new role (or instance profile) is refused by Lambda (or EC2), in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub iam_propagation_seconds: Option<f64>,

    /// How long a new instance is `pending` before its user-data runs, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub boot_seconds: Option<f64>,

    /// How long a new function is `Pending`, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub function_pending_seconds: Option<f64>,

    /// How long a function's update is `InProgress`, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub function_update_seconds: Option<f64>,

    /// How long a deleted bucket's name is refused (`OperationAborted`), in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub bucket_name_reuse_seconds: Option<f64>,

    /// Throttle Lambda's and EC2's control planes at AWS's documented request rates (on
    /// unless --fast).
    #[arg(long, value_enum)]
    pub throttling: Option<Switch>,

    /// Enforce IAM for the sandbox's functions and instances: each request is checked
    /// against its role's policies and refused as AWS refuses it. `off`: anything goes.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub iam: Switch,

    /// Enforce this IAM policy (a JSON policy document, e.g. `hybridlab iam-policy`'s) for
    /// the operator's own requests too: `hybridlab`, the AWS CLI, Terraform.
    #[arg(long, value_name = "FILE")]
    pub operator_policy: Option<std::path::PathBuf>,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl SandboxArgs {
    /// How to start the sandbox these arguments describe.
    pub fn launch(&self) -> anyhow::Result<crate::lab::sandbox::SandboxLaunch> {
        use hybridlab_sandbox::timing::Timing;
        let mut timing = if self.fast {
            Timing::fast()
        } else if self.like_aws {
            Timing::like_aws()
        } else {
            Timing::realistic()
        };
        for (value, flag, field) in [
            (
                self.iam_propagation_seconds,
                "--iam-propagation-seconds",
                &mut timing.iam_propagation,
            ),
            (
                self.boot_seconds,
                "--boot-seconds",
                &mut timing.instance_boot,
            ),
            (
                self.function_pending_seconds,
                "--function-pending-seconds",
                &mut timing.function_create,
            ),
            (
                self.function_update_seconds,
                "--function-update-seconds",
                &mut timing.function_update,
            ),
            (
                self.bucket_name_reuse_seconds,
                "--bucket-name-reuse-seconds",
                &mut timing.bucket_name_reuse,
            ),
        ] {
            if let Some(seconds) = value {
                *field = std::time::Duration::try_from_secs_f64(seconds).map_err(|_| {
                    anyhow::anyhow!("{flag} {seconds}: give a number of seconds, 0 or more")
                })?;
            }
        }
        if let Some(throttling) = self.throttling {
            timing.throttling = throttling == Switch::On;
        }
        let concurrency = match self.lambda_concurrency {
            Some(0) => anyhow::bail!("--lambda-concurrency must be at least 1"),
            Some(concurrency) => concurrency,
            None if self.new_account => hybridlab_sandbox::NEW_ACCOUNT_LAMBDA_CONCURRENCY,
            None => hybridlab_sandbox::DEFAULT_LAMBDA_CONCURRENCY,
        };
        if self.vcpu_limit == 0 {
            anyhow::bail!("--vcpu-limit must be at least 1");
        }
        Ok(crate::lab::sandbox::SandboxLaunch {
            port: self.port,
            concurrency,
            vcpu_limit: self.vcpu_limit,
            timing,
            iam: self.iam == Switch::On,
            operator_policy: self.operator_policy.clone(),
        })
    }
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

#[cfg(test)]
mod logging_tests {
    use super::log_filter;

    #[test]
    fn verbosity_raises_our_crates_first_and_rust_log_chooses_instead() {
        assert_eq!(log_filter(0, None), None);
        let one = log_filter(1, None).expect("a filter");
        assert!(
            one.starts_with("warn,") && one.contains("hybridlab_provision=info"),
            "{one}"
        );
        let two = log_filter(2, Some("  ")).expect("a filter");
        assert!(
            two.starts_with("info,") && two.contains("hybridlab_console=debug"),
            "{two}"
        );
        assert_eq!(
            log_filter(0, Some("aws_config=debug")).as_deref(),
            Some("aws_config=debug")
        );
        assert_eq!(log_filter(2, Some("off")).as_deref(), Some("off"));
    }
}
