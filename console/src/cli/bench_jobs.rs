//! `hybridlab bench --jobs N`: the job-worker variant under load, driven by
//! `hybridlab_bench::jobs` through the lab's [`JobsApi`], with a progress line, the summary
//! per stage and the cost per job at list prices.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hybridlab_bench::jobs::{
    JOB_RUN_FORMAT, JobPipeline, JobRun, POLL_PAUSE, drive, summarize_jobs,
};
use hybridlab_provision::stack::StackState;
use hybridlab_provision::stack::cost::job_cost;
use hybridlab_wire::job::{Job, JobKind};

use super::output::{clear_progress, paint, stdout_colour};
use crate::lab::Lab;
use crate::lab::jobs::{JobsApi, instance_state, wait_stopped_billing};
use crate::lab::target::TargetChoice;
use crate::lab::tone::Tone;

/// The stack's jobs as the bench drives them.
struct LabJobs<'a> {
    lab: &'a Lab,
    api: &'a JobsApi,
    kind: &'a JobKind,
    input: &'a [u8],
    timeout: Duration,
}

impl JobPipeline for LabJobs<'_> {
    async fn submit(&self) -> anyhow::Result<String> {
        Ok(self
            .api
            .submit(self.kind, self.input.to_vec())
            .await?
            .job_id)
    }

    fn read(&self, job_id: &str) -> impl Future<Output = anyhow::Result<Job>> + Send {
        self.api.get(job_id)
    }

    fn instance_state(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = anyhow::Result<Option<String>>> + Send {
        instance_state(self.lab, instance_id)
    }

    fn wait_terminated(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = anyhow::Result<Instant>> + Send {
        wait_stopped_billing(self.lab, instance_id, self.timeout, POLL_PAUSE)
    }

    fn patience(&self) -> Duration {
        self.timeout
    }
}

/// What `bench --jobs` needs from the command line.
pub struct JobsBench<'a> {
    pub jobs: u64,
    pub concurrency: usize,
    pub kind: JobKind,
    /// The input file; `None`: a small text made up for the run.
    pub input: Option<&'a PathBuf>,
    pub stack: Option<&'a str>,
    pub timeout: Duration,
    pub out: Option<&'a PathBuf>,
    pub json: bool,
}

pub async fn run(target: &TargetChoice, bench: JobsBench<'_>) -> anyhow::Result<ExitCode> {
    if bench.jobs == 0 || bench.concurrency == 0 {
        bail!("--jobs and -c must be at least 1");
    }
    let input = match bench.input {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => b"a line the bench wrote\n".to_vec(),
    };
    let lab = Lab::open(target, bench.stack).await?;
    let api = JobsApi::for_lab(&lab).await?;
    let state = StackState::load(&lab.clients.state_key(), &lab.stack);
    let instance_type = state.as_ref().map_or_else(
        || "t3.micro".to_owned(),
        |s| s.settings.instance_type.clone(),
    );
    let pipeline = LabJobs {
        lab: &lab,
        api: &api,
        kind: &bench.kind,
        input: &input,
        timeout: bench.timeout,
    };

    let done = Arc::new(AtomicU64::new(0));
    let display = tokio::spawn(super::output::show_progress(
        "jobs",
        "jobs",
        bench.jobs,
        done.clone(),
    ));
    let started = Instant::now();
    let samples = tokio::select! {
        samples = drive(&pipeline, bench.jobs, bench.concurrency, &done) => samples,
        _ = tokio::signal::ctrl_c() => bail!(
            "interrupted; nothing was saved, and the jobs already submitted run to their end (`hybridlab job ls`)"
        ),
    };
    let elapsed = started.elapsed().as_secs_f64();
    display.abort();
    clear_progress();
    let count = |outcome: &str| samples.iter().filter(|s| s.outcome == outcome).count() as u64;
    let ended = count("SUCCEEDED") + count("FAILED") + count("CANCELLED");
    // The worker beats every 15 s and writes one output for append-text (a batch writes
    // more; the manifest and sheet are counted).
    let costs: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.instance_s)
        .map(|seconds| {
            let beats = (seconds
                / hybridlab_provision::stack::plan::WORKER_HEARTBEAT_SECONDS as f64)
                as u64;
            job_cost(&instance_type, seconds, beats, 2).total_usd
        })
        .collect();
    let cost_per_job_usd = if costs.is_empty() {
        0.0
    } else {
        costs.iter().sum::<f64>() / costs.len() as f64
    };
    let mut run = JobRun {
        format: JOB_RUN_FORMAT.to_owned(),
        target: lab.clients.describe(),
        stack: lab.stack.to_string(),
        kind: bench.kind.name().to_owned(),
        input_bytes: input.len() as u64,
        jobs: bench.jobs,
        concurrency: bench.concurrency,
        worker_cap: state.as_ref().map(|s| s.settings.worker_cap),
        instance_type: instance_type.clone(),
        succeeded: count("SUCCEEDED"),
        failed: count("FAILED") + count("CANCELLED"),
        errors: count("error"),
        elapsed_s: elapsed,
        jobs_per_minute: ended as f64 * 60.0 / elapsed.max(f64::EPSILON),
        measures: summarize_jobs(&samples),
        cost_per_job_usd,
        cost_basis: job_cost(&instance_type, 60.0, 0, 2).basis,
        samples,
    };
    if let Some(path) = bench.out {
        hybridlab_bench::run_file::save(path, &run)?;
    }
    let first_error = run.samples.iter().find_map(|s| s.error.clone());
    run.samples.clear();
    if bench.json {
        println!("{}", serde_json::to_string(&run)?);
    } else {
        print_run(&run, first_error.as_deref());
        if let Some(path) = bench.out {
            println!("Wrote the run to {}.", path.display());
        }
    }
    Ok(if run.succeeded == run.jobs {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::FAILED)
    })
}

fn print_run(run: &JobRun, first_error: Option<&str>) {
    let colour = stdout_colour();
    println!(
        "{} {} {} jobs ({} input bytes), concurrency {}, {} workers at most, {} each, stack {} on {}",
        paint("jobs", Tone::Accent, colour),
        run.jobs,
        run.kind,
        run.input_bytes,
        run.concurrency,
        run.worker_cap
            .map_or_else(|| "?".to_owned(), |cap| cap.to_string()),
        run.instance_type,
        run.stack,
        run.target
    );
    println!(
        "  {:.1}s: {:.1} jobs/min, {} SUCCEEDED, {} FAILED or CANCELLED, {} errors; ${:.5} a job at list prices",
        run.elapsed_s,
        run.jobs_per_minute,
        run.succeeded,
        run.failed,
        run.errors,
        run.cost_per_job_usd
    );
    if let Some(error) = first_error {
        println!("  {} {error}", paint("first failure:", Tone::Bad, colour));
    }
    println!(
        "  {:<18} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "ms", "count", "p50", "p90", "p99", "max"
    );
    for measure in &run.measures {
        println!(
            "  {:<18} {:>6} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            measure.name,
            measure.count,
            measure.p50_ms,
            measure.p90_ms,
            measure.p99_ms,
            measure.max_ms
        );
    }
    println!(
        "  end_to_end: submit to the end read (polled every {} ms); to_launcher: SUBMITTED to the launcher's first move; queued: QUEUED to LAUNCHING; run_instances: LAUNCHING to RunInstances' answer; pending_to_running: then to the instance seen running; boot_to_worker: then to RUNNING (the boot, the worker's download and start); job: RUNNING to the end; to_terminated: the end read to the instance seen shutting-down or terminated (its billing stops)",
        POLL_PAUSE.as_millis()
    );
    println!("  cost: {}", run.cost_basis);
}
