//! `hybridlab job`: the job-worker variant (`up --with jobs`) from the terminal. `submit`
//! sends a file through the stack's jobs API and follows the job to its end; `ls` and `get`
//! read jobs; `logs` shows the launcher's lines about a job and its worker's console;
//! `cancel` ends a job and terminates its worker.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use hybridlab_wire::job::{Job, JobKind, JobStatus};
use serde_json::json;

use crate::lab::Lab;
use crate::lab::jobs::{JobsApi, cancel, job_logs, read_job};
use crate::lab::target::TargetChoice;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (a followed job SUCCEEDED)
  1  failed: no jobs API (the stack needs `up --with jobs`), unreachable, refused, timed out
  2  bad command line
  5  the followed job ended FAILED or CANCELLED";

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct JobArgs {
    #[command(subcommand)]
    pub action: JobAction,

    /// The stack whose jobs to use (default: the target's only stack).
    #[arg(long, global = true, value_name = "ID")]
    pub stack: Option<String>,

    /// Print JSON instead of text (one document; `submit` prints one line per status
    /// change, then the job).
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a job does with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// The input text with `--text` appended, as `output.txt`.
    AppendText,
    /// A zip or tar of images: each image's variants, a contact sheet and a manifest.
    ImageBatch,
}

#[derive(Debug, Subcommand)]
pub enum JobAction {
    /// Submit FILE as a job's input, then follow the job until it ends and print its history
    /// and outputs.
    Submit {
        file: PathBuf,
        /// The text an `append-text` job appends (required for one).
        #[arg(long, conflicts_with = "kind")]
        text: Option<String>,
        #[arg(long, value_enum, default_value = "append-text")]
        kind: KindArg,
        /// Print the job id and return once the input is uploaded.
        #[arg(long)]
        no_wait: bool,
        /// How long to follow the job.
        #[arg(long, default_value = "10m", value_parser = crate::lab::units::parse_duration)]
        timeout: Duration,
    },
    /// The stack's newest jobs.
    Ls,
    /// One job with its history.
    Get { job_id: String },
    /// The launcher's lines about a job, and its worker's console output.
    Logs { job_id: String },
    /// Cancel a job that has not ended, and terminate its worker.
    Cancel { job_id: String },
}

pub async fn run(target: &TargetChoice, args: JobArgs) -> anyhow::Result<ExitCode> {
    if let JobAction::Submit {
        kind: KindArg::AppendText,
        text: None,
        ..
    } = &args.action
    {
        anyhow::bail!(
            "an append-text job needs --text TEXT (the line it appends); an archive of images takes --kind image-batch"
        );
    }
    let lab = Lab::open(target, args.stack.as_deref()).await?;
    let json = args.json;
    match args.action {
        JobAction::Submit {
            file,
            text,
            kind,
            no_wait,
            timeout,
        } => {
            let api = JobsApi::for_lab(&lab).await?;
            let input =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let kind = match kind {
                KindArg::AppendText => JobKind::AppendText {
                    text: text.unwrap_or_default(),
                },
                KindArg::ImageBatch => JobKind::ImageBatch,
            };
            let submitted = api.submit(&kind, input).await?;
            if no_wait {
                if json {
                    println!("{}", serde_json::to_string(&submitted)?);
                } else {
                    println!("{}", submitted.job_id);
                }
                return Ok(ExitCode::SUCCESS);
            }
            if !json {
                println!(
                    "Submitted {} ({}); input uploaded to {}",
                    submitted.job_id,
                    kind.name(),
                    submitted.input_key
                );
            }
            let mut progress = |job: &Job| {
                if json {
                    println!(
                        "{}",
                        json!({"job_id": job.job_id, "status": job.status, "instance_id": job.instance_id})
                    );
                } else {
                    let detail = job.history.last().map_or("", |e| e.detail.as_str());
                    println!("  {:<10} {detail}", job.status.as_str());
                }
            };
            let (job, _) = api
                .follow(
                    &submitted.job_id,
                    timeout,
                    Duration::from_millis(500),
                    &mut progress,
                )
                .await?;
            print_job(&lab, &job, json);
            Ok(exit_of(&job))
        }
        JobAction::Ls => {
            let jobs = JobsApi::for_lab(&lab).await?.list().await?;
            if json {
                println!("{}", serde_json::to_string(&json!({"jobs": jobs}))?);
            } else if jobs.is_empty() {
                println!("No jobs in stack {} yet.", lab.stack);
            } else {
                println!(
                    "{:<20} {:<12} {:<10} {:<21} submitted",
                    "job", "kind", "status", "instance"
                );
                for job in jobs {
                    println!(
                        "{:<20} {:<12} {:<10} {:<21} {}",
                        job.job_id,
                        job.kind.name(),
                        job.status.as_str(),
                        job.instance_id.as_deref().unwrap_or("-"),
                        job.submitted_at
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobAction::Get { job_id } => {
            let job = JobsApi::for_lab(&lab).await?.get(&job_id).await?;
            print_job(&lab, &job, json);
            Ok(ExitCode::SUCCESS)
        }
        JobAction::Logs { job_id } => {
            let job = read_job(&lab, &job_id).await?;
            let lines = job_logs(&lab, &job).await?;
            if json {
                println!("{}", serde_json::to_string(&json!({"lines": lines}))?);
            } else {
                for line in lines {
                    let at = line
                        .timestamp_ms
                        .map(crate::lab::logs::entry::clock)
                        .unwrap_or_default();
                    println!("{at:>12} {:<8} {}", line.source, line.message);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobAction::Cancel { job_id } => {
            let cancelled = cancel(&lab, &job_id).await?;
            if json {
                println!("{}", serde_json::to_string(&cancelled)?);
            } else {
                match (&cancelled.from, &cancelled.terminated) {
                    (None, _) => println!(
                        "{job_id} had already ended {}; nothing to cancel",
                        cancelled.status
                    ),
                    (Some(from), Some(instance)) => println!(
                        "{job_id} cancelled (was {from}); its worker {instance} is terminating"
                    ),
                    (Some(from), None) => println!("{job_id} cancelled (was {from})"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_of(job: &Job) -> ExitCode {
    if job.status == JobStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::FAILED)
    }
}

fn print_job(lab: &Lab, job: &Job, json: bool) {
    if json {
        println!("{}", serde_json::to_string(job).unwrap_or_default());
        return;
    }
    println!(
        "Job {} ({}) {}{}",
        job.job_id,
        job.kind.name(),
        job.status,
        job.instance_id
            .as_deref()
            .map(|i| format!(" on {i}"))
            .unwrap_or_default()
    );
    for event in &job.history {
        println!(
            "  {:<24} {:<10} {}",
            event.at,
            event.status.as_str(),
            event.detail
        );
    }
    if let Some(error) = &job.error {
        println!("  error: {error}");
    }
    for output in &job.outputs {
        println!("  output: s3://{}/{output}", lab.names.jobs_bucket);
    }
}
