//! `hybridlab bench`: parse the load, run the engine (`hybridlab_bench`) with a progress
//! display, print the summary (or its JSON), and save the run (the run file, and CSV).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use serde_json::json;

use super::bench_memory::Tuning;
use super::interrupts::Interrupts;
use super::invoke::AimArgs;
use super::output::{Goal, paint, stderr_is_terminal, stdout_colour};
use crate::lab::function_config::ConfiguredFunction;
use crate::lab::invoke::aim;
use crate::lab::run_environment::{RunInput, run_environment};
use crate::lab::target::TargetChoice;
use crate::lab::tone::Tone;
use hybridlab_bench::engine::{self, BenchPlan, Invoke, Progress};
use hybridlab_bench::invocation::{file_payload, url_payload};
use hybridlab_bench::memory::{MemoryPoint, check_levels, point};
use hybridlab_bench::model::{LoadShape, Outcome, Run, RunConfig, RunFile, RunSummary};
use hybridlab_bench::run_file;
use hybridlab_bench::samples_csv::write_csv;
use hybridlab_bench::signed::SignedInvoker;
use hybridlab_bench::stats::summarize;
use hybridlab_wire::report::Report;

/// Default cap on outstanding invocations of an open loop.
const DEFAULT_MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 every invocation succeeded; 5 the run completed with failed invocations (see the error counts); 1 the run could not be made."
)]
pub struct BenchArgs {
    /// Measured invocations (default 100 unless --duration is given).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Invocations in flight at once (closed loop).
    #[arg(short = 'c', long, default_value_t = 1, conflicts_with = "sweep")]
    pub concurrency: usize,

    /// Open loop: send this many invocations per second whatever the answers do, and measure
    /// latency from each one's scheduled time (coordinated omission corrected).
    #[arg(long, conflicts_with = "sweep")]
    pub rate: Option<f64>,

    /// With --rate: the most invocations outstanding; later ones wait, and the wait counts.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, requires = "rate")]
    pub max_in_flight: usize,

    /// Stop starting invocations after this long (e.g. 30s, 2m).
    #[arg(long, value_parser = crate::lab::units::parse_duration)]
    pub duration: Option<Duration>,

    /// Invocations sent first and not measured (they take the cold starts). Default 0; with
    /// --memory, 1 per memory size (an upload with --upload), so a new environment's cold
    /// start is not measured.
    #[arg(long)]
    pub warmup: Option<u64>,

    /// A memory sweep (aws-lambda-power-tuning's): one run per memory size in MB, e.g.
    /// 128,256,512,1024,1769, each after setting the function's memory and waiting for the
    /// update; the function's memory is put back at the end. With --upload, the resizer's.
    #[arg(long, value_name = "MB", value_delimiter = ',', conflicts_with_all = ["sweep", "jobs"])]
    pub memory: Option<Vec<u32>>,

    /// Make every measured invocation a cold start: change the function's environment
    /// (HYBRIDLAB_COLD_START) and wait for the update before each one, outside its measured
    /// time; the environment is put back at the end. One at a time (-c 1).
    #[arg(long, conflicts_with_all = ["rate", "sweep", "upload", "jobs"])]
    pub cold: bool,

    /// One closed-loop run per concurrency level, e.g. 1,2,4,8,16,32,64.
    #[arg(long, value_delimiter = ',')]
    pub sweep: Option<Vec<usize>>,

    /// The image URL to process (the lab's function).
    #[arg(long, conflicts_with_all = ["urls", "payload"])]
    pub url: Option<String>,

    /// A file of image URLs, one per line, used in turn.
    #[arg(long, conflicts_with = "payload")]
    pub urls: Option<PathBuf>,

    /// A JSON event sent as it is (for --function).
    #[arg(long)]
    pub payload: Option<PathBuf>,

    /// Drive the event-driven pipeline instead of the function: upload this file -n times at
    /// concurrency -c and measure each image from upload to COMPLETED (`up --with pipeline`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "urls", "payload", "rate", "sweep", "duration", "csv"])]
    pub upload: Option<PathBuf>,

    /// With --upload: how the file reaches the uploads bucket.
    #[arg(long, value_enum, default_value_t = super::upload::UploadVia::Presigned, requires = "upload")]
    pub via: super::upload::UploadVia,

    /// With --upload: how long one image may take to reach its final status.
    #[arg(long, default_value = "120s", value_parser = crate::lab::units::parse_duration, requires = "upload")]
    pub upload_timeout: Duration,

    /// Drive the job-worker variant instead of the function: submit this many jobs at
    /// concurrency -c and measure each stage, from the submit to the worker's instance
    /// terminated, with the cost per job (`up --with jobs`).
    #[arg(long, value_name = "N", conflicts_with_all = ["upload", "url", "urls", "payload", "rate", "sweep", "duration", "csv", "requests"])]
    pub jobs: Option<u64>,

    /// With --jobs: each job's input (default: one line of text).
    #[arg(long, value_name = "FILE", requires = "jobs")]
    pub job_input: Option<PathBuf>,

    /// With --jobs: what the jobs do.
    #[arg(long, value_enum, default_value = "append-text", requires = "jobs")]
    pub job_kind: super::job::KindArg,

    /// With --jobs: how long one job may take, and then its instance to stop.
    #[arg(long, default_value = "10m", value_parser = crate::lab::units::parse_duration, requires = "jobs")]
    pub job_timeout: Duration,

    #[command(flatten)]
    pub aim: AimArgs,

    /// Write the run (config, summary, raw histograms, every sample) as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Write every sample as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// A label for the run in reports (default: the load, e.g. `c=8`).
    #[arg(long)]
    pub label: Option<String>,

    /// Print the summary as JSON (the run file without its samples).
    #[arg(long)]
    pub json: bool,
}

/// The events a run sends, from the flags.
fn payloads(args: &BenchArgs) -> anyhow::Result<Vec<Bytes>> {
    if let Some(url) = &args.url {
        return Ok(vec![url_payload(url)?]);
    }
    if let Some(path) = &args.urls {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the URL list {}", path.display()))?;
        let urls: Vec<Bytes> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .enumerate()
            .map(|(number, url)| {
                url_payload(url).with_context(|| format!("{} line {}", path.display(), number + 1))
            })
            .collect::<anyhow::Result<_>>()?;
        if urls.is_empty() {
            bail!("{} has no URLs (one per line)", path.display());
        }
        return Ok(urls);
    }
    if let Some(path) = &args.payload {
        return Ok(vec![file_payload(path)?]);
    }
    bail!("nothing to send: give --url, --urls FILE, or --payload FILE (with --function)")
}

/// The runs the flags ask for: one, or one per sweep level.
fn plans(args: &BenchArgs, payloads: Vec<Bytes>) -> anyhow::Result<Vec<(String, BenchPlan)>> {
    let requests = match (args.requests, args.duration) {
        (None, None) => Some(100),
        (requests, _) => requests,
    };
    if requests == Some(0) {
        bail!("-n must be at least 1");
    }
    let plan = |shape: LoadShape| BenchPlan {
        shape,
        requests,
        duration: args.duration,
        warmup: args.warmup.unwrap_or(0),
        payloads: payloads.clone(),
    };
    if let Some(levels) = &args.sweep {
        if levels.is_empty() || levels.contains(&0) {
            bail!("--sweep takes concurrency levels of at least 1, e.g. 1,2,4,8");
        }
        return Ok(levels
            .iter()
            .map(|&concurrency| {
                (
                    format!("c={concurrency}"),
                    plan(LoadShape::Closed { concurrency }),
                )
            })
            .collect());
    }
    let shape = match args.rate {
        Some(rate) if !(rate.is_finite() && rate > 0.0) => {
            bail!("--rate must be a positive number of invocations per second")
        }
        Some(rate) => LoadShape::Open {
            rate,
            max_in_flight: args.max_in_flight.max(1),
        },
        None if args.concurrency == 0 => bail!("-c must be at least 1"),
        None => LoadShape::Closed {
            concurrency: args.concurrency,
        },
    };
    let label = args.label.clone().unwrap_or_else(|| match shape {
        LoadShape::Closed { concurrency } => format!("c={concurrency}"),
        LoadShape::Open { rate, .. } => format!("rate={rate}/s"),
    });
    Ok(vec![(label, plan(shape))])
}

/// What the run sends, for its recorded environment.
fn input_of(args: &BenchArgs) -> Option<RunInput> {
    if let Some(url) = &args.url {
        return Some(RunInput::Url(url.clone()));
    }
    if let Some(path) = &args.urls {
        return Some(RunInput::UrlList(path.clone()));
    }
    args.payload.clone().map(RunInput::Payload)
}

pub async fn run(target: &TargetChoice, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(jobs) = args.jobs {
        if args.aim.function.is_some() {
            bail!("--jobs drives the stack's jobs; it takes --stack, not --function");
        }
        let kind = match args.job_kind {
            super::job::KindArg::AppendText => hybridlab_wire::job::JobKind::AppendText {
                text: "appended by the bench".into(),
            },
            super::job::KindArg::ImageBatch => hybridlab_wire::job::JobKind::ImageBatch,
        };
        let bench = super::bench_jobs::JobsBench {
            jobs,
            concurrency: args.concurrency,
            kind,
            input: args.job_input.as_ref(),
            stack: args.aim.stack.as_deref(),
            timeout: args.job_timeout,
            out: args.out.as_ref(),
            json: args.json,
        };
        return super::bench_jobs::run(target, bench).await;
    }
    if let Some(levels) = &args.memory {
        check_levels(levels).map_err(|problem| anyhow!("--memory: {problem}"))?;
    }
    if let Some(file) = &args.upload {
        if args.aim.function.is_some() {
            bail!("--upload drives the stack's pipeline; it takes --stack, not --function");
        }
        let bench = super::bench_uploads::UploadBench {
            file,
            via: args.via.into(),
            uploads: args.requests.unwrap_or(100),
            concurrency: args.concurrency,
            stack: args.aim.stack.as_deref(),
            timeout: args.upload_timeout,
            out: args.out.as_ref(),
            json: args.json,
            label: args.label.clone(),
            memory: args.memory.clone(),
            warmup: args.warmup,
        };
        return super::bench_uploads::run(target, bench).await;
    }
    if args.cold && args.concurrency > 1 {
        bail!(
            "--cold runs one invocation at a time (-c 1): each one changes the function's configuration first, and Lambda applies one update at a time"
        );
    }
    let payloads = payloads(&args)?;
    let plans = plans(&args, payloads)?;
    // A memory sweep runs the one plan the flags make at each memory size, after at least one
    // unmeasured invocation: the first after an update is a new environment's cold start.
    let levels: Vec<(String, BenchPlan, Option<u32>)> = match &args.memory {
        Some(levels) => {
            let Some((_, plan)) = plans.into_iter().next() else {
                bail!("nothing to run");
            };
            levels
                .iter()
                .map(|&memory_mb| {
                    let plan = BenchPlan {
                        warmup: args.warmup.unwrap_or(1),
                        ..plan.clone()
                    };
                    (format!("m={memory_mb}"), plan, Some(memory_mb))
                })
                .collect()
        }
        None => plans
            .into_iter()
            .map(|(label, plan)| (label, plan, None))
            .collect(),
    };
    let aim = aim(
        target,
        args.aim.stack.as_deref(),
        args.aim.function.as_deref(),
    )
    .await?;
    let signed = SignedInvoker::new(&aim.clients.config, &aim.function)?;
    // One GetFunctionConfiguration: the memory each run records, and what --memory and --cold
    // put back.
    let tuning = Tuning::read(
        ConfiguredFunction::new(&aim.clients, &aim.function),
        args.memory.is_some(),
        args.cold,
    )
    .await?;
    let environment = run_environment(&aim.clients, aim.stack.as_deref(), input_of(&args).as_ref());
    if args.memory.is_some() {
        super::bench_memory::say_cpu_share(&aim.clients).await;
    }
    let interrupts = Interrupts::listen();
    let work = async {
        let mut runs = Vec::new();
        let mut failure: Option<anyhow::Error> = None;
        for (label, plan, memory_mb) in levels {
            if interrupts.count() > 0 {
                break;
            }
            if let Some(memory_mb) = memory_mb
                && let Err(err) = tuning.set_memory(memory_mb).await
            {
                failure = Some(err);
                break;
            }
            // A Ctrl-C while the update was applied: no run of this level.
            if interrupts.count() > 0 {
                break;
            }
            let config = RunConfig {
                label,
                target: aim.clients.describe(),
                stack: aim.stack.clone(),
                function: aim.function.clone(),
                shape: plan.shape,
                requests: plan.requests,
                duration_s: plan.duration.map(|d| d.as_secs_f64()),
                warmup: plan.warmup,
                payloads: plan.payloads.len(),
                interrupted: false,
                cold: args.cold,
                memory_mb: Some(memory_mb.unwrap_or(tuning.original.memory_mb)),
                environment: Some(environment.clone()),
                started_at: hybridlab_wire::now_rfc3339(),
            };
            let (run, halted) = if args.cold {
                measure(
                    tuning.cold_invoker(signed.clone()),
                    &plan,
                    config,
                    &interrupts,
                )
                .await
            } else {
                measure(signed.clone(), &plan, config, &interrupts).await
            };
            let interrupted = run.config.interrupted;
            runs.push(run);
            if let Some(reason) = halted {
                failure = Some(anyhow!(reason));
                break;
            }
            if interrupted {
                // The sweep's other levels are not run.
                break;
            }
        }
        let restored = tuning.restore().await;
        (runs, failure, restored)
    };
    let (runs, failure, restored) = tokio::select! {
        done = work => done,
        () = interrupts.reached(2) => {
            super::output::clear_progress();
            tuning.restore_quickly().await;
            eprintln!("hybridlab: interrupted again; nothing was saved");
            return Ok(ExitCode::from(super::exit::INTERRUPTED));
        }
    };
    let file = RunFile::new(runs);
    let points: Vec<MemoryPoint> = file
        .runs
        .iter()
        .filter_map(|run| memory_point(run, args.memory.is_some()))
        .collect();
    if let Some(path) = &args.out {
        run_file::save(path, &file)?;
    }
    if let Some(path) = &args.csv {
        write_csv(path, &file.runs)?;
    }
    if args.json {
        let runs: Vec<_> = file
            .runs
            .iter()
            .map(|run| json!({"config": run.config, "summary": run.summary}))
            .collect();
        let mut printed = json!({"format": file.format, "runs": runs});
        if args.memory.is_some() {
            printed["memory"] = super::bench_memory::memory_json(&points);
        }
        println!("{printed}");
    } else {
        for run in &file.runs {
            print_run(run);
        }
        if args.memory.is_some() {
            let levels: Vec<u32> = file
                .runs
                .iter()
                .filter_map(|run| run.config.memory_mb)
                .collect();
            super::bench_memory::print_memory(&aim.function, &points, &levels);
        } else if file.runs.len() > 1 {
            print_sweep(&file.runs);
        }
        for (what, path) in [("run", &args.out), ("samples", &args.csv)] {
            if let Some(path) = path {
                println!("Wrote the {what} to {}.", path.display());
            }
        }
    }
    super::bench_memory::failure_or_restore(failure, restored)?;
    let all_ok = file
        .runs
        .iter()
        .all(|run| run.summary.ok == run.summary.invocations);
    let interrupted = interrupts.count() > 0 || file.runs.iter().any(|run| run.config.interrupted);
    Ok(if interrupted {
        ExitCode::from(super::exit::INTERRUPTED)
    } else if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::FAILED)
    })
}

/// A level of a memory sweep from the REPORT lines of its measured invocations (those of its
/// memory size: any other would be an environment of before the update).
fn memory_point(run: &Run, sweep: bool) -> Option<MemoryPoint> {
    let memory_mb = run.config.memory_mb.filter(|_| sweep)?;
    let reports: Vec<Report> = run
        .samples
        .iter()
        .filter_map(|sample| sample.lambda.clone())
        .filter(|report| report.memory_size_mb == memory_mb)
        .collect();
    point(
        memory_mb,
        &reports,
        run.summary.invocations - run.summary.ok,
    )
}

/// The progress display of one run, stopped and cleared when dropped: also when the run is
/// dropped unfinished by a second Ctrl-C.
struct ProgressDisplay(tokio::task::JoinHandle<()>);

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.0.abort();
        super::output::clear_progress();
    }
}

/// One run of `plan` with a progress display; the first Ctrl-C stops sending and the run is
/// kept as a partial one. Also why the engine stopped early, if it did.
async fn measure<I: Invoke>(
    invoker: I,
    plan: &BenchPlan,
    mut config: RunConfig,
    interrupts: &Interrupts,
) -> (Run, Option<String>) {
    let progress = Arc::new(Progress::default());
    let goal = match (plan.requests, plan.duration) {
        (Some(requests), _) => Goal::Count(requests),
        (None, Some(duration)) => Goal::Time(duration),
        (None, None) => Goal::Open,
    };
    let display = ProgressDisplay(tokio::spawn(show_progress(
        config.label.clone(),
        goal,
        progress.clone(),
    )));
    let engine = engine::run(invoker, plan, progress.clone());
    tokio::pin!(engine);
    let samples = loop {
        tokio::select! {
            samples = &mut engine => break samples,
            () = interrupts.reached(1), if !config.interrupted => {
                config.interrupted = true;
                progress.stop.store(true, Ordering::Relaxed);
                super::output::clear_progress();
                eprintln!(
                    "hybridlab: interrupted: no more invocations are sent; those in flight finish and the run is kept as a partial run (Ctrl-C again quits at once)"
                );
            }
        }
    };
    drop(display);
    let summary = summarize(&samples);
    let halted = progress.halted.get().cloned();
    (
        Run {
            config,
            summary,
            samples,
        },
        halted,
    )
}

/// A bar redrawn on a terminal, with the time left; a plain line every few seconds otherwise.
async fn show_progress(label: String, goal: Goal, progress: Arc<Progress>) {
    let terminal = stderr_is_terminal();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(super::output::progress_every(terminal));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let done = progress.done.load(Ordering::Relaxed);
        let failed = progress.failed.load(Ordering::Relaxed);
        let line = if progress.warming.load(Ordering::Relaxed) {
            format!("{label}: warming up")
        } else {
            super::output::progress_line(
                &label,
                "invocations",
                done,
                failed,
                goal,
                started.elapsed(),
                terminal,
            )
        };
        super::output::draw_progress(&line, terminal);
    }
}

fn print_run(run: &Run) {
    let colour = stdout_colour();
    let summary: &RunSummary = &run.summary;
    let shape = match run.config.shape {
        LoadShape::Closed { concurrency } => format!("closed loop, concurrency {concurrency}"),
        LoadShape::Open {
            rate,
            max_in_flight,
        } => format!("open loop, {rate}/s, at most {max_in_flight} in flight"),
    };
    println!(
        "{} {} on {} ({shape}){}",
        paint(&run.config.label, Tone::Accent, colour),
        run.config.function,
        run.config.target,
        if run.config.interrupted {
            paint(" - interrupted: a partial run", Tone::Warn, colour)
        } else {
            String::new()
        }
    );
    println!(
        "  {} invocations in {:.2}s: {:.1}/s, {} ok, {} cold starts",
        summary.invocations,
        summary.elapsed_s,
        summary.throughput_per_s,
        summary.ok,
        summary.cold_starts
    );
    if run.config.cold {
        println!(
            "  --cold: the configuration changed before each invocation; {} of {} report an Init Duration (init_duration below)",
            summary.cold_starts, summary.invocations
        );
    }
    if !summary.errors.is_empty() {
        let errors: Vec<String> = Outcome::ALL
            .iter()
            .filter_map(|outcome| {
                summary
                    .errors
                    .get(outcome)
                    .map(|count| format!("{outcome} {count}"))
            })
            .collect();
        println!(
            "  {} {}",
            paint("errors:", Tone::Bad, colour),
            errors.join(", ")
        );
        if let Some(example) = run.samples.iter().find_map(|s| s.error.as_deref()) {
            println!("  first error: {example}");
        }
    }
    println!(
        "  {:<16} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "ms", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    for measure in &summary.measures {
        println!(
            "  {:<16} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            measure.name,
            measure.count,
            measure.p50_ms,
            measure.p90_ms,
            measure.p99_ms,
            measure.p999_ms,
            measure.max_ms,
            measure.mean_ms
        );
    }
    println!(
        "  cost on AWS: ${:.6} ({:.3} GB-s, {} requests)",
        summary.cost.total_usd, summary.cost.gb_seconds, summary.cost.requests
    );
}

fn print_sweep(runs: &[Run]) {
    println!("\nThroughput and client latency against concurrency:");
    println!(
        "  {:>11} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "concurrency", "inv/s", "p50 ms", "p90 ms", "p99 ms", "errors"
    );
    for run in runs {
        let client = run.summary.measure("client");
        let p = |f: fn(&hybridlab_bench::model::MeasureSummary) -> f64| {
            client.map(f).unwrap_or(f64::NAN)
        };
        println!(
            "  {:>11} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            run.config.shape.concurrency(),
            run.summary.throughput_per_s,
            p(|m| m.p50_ms),
            p(|m| m.p90_ms),
            p(|m| m.p99_ms),
            run.summary.invocations - run.summary.ok
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(line: &[&str]) -> BenchArgs {
        let mut full = vec!["hybridlab", "bench"];
        full.extend_from_slice(line);
        match crate::cli::Cli::try_parse_from(full) {
            Ok(crate::cli::Cli {
                command: Some(crate::cli::Command::Bench(args)),
                ..
            }) => *args,
            other => panic!("not a bench command line: {other:?}"),
        }
    }

    #[test]
    fn the_flags_make_closed_open_and_sweep_plans() {
        let one = plans(
            &args(&["-n", "50", "-c", "8", "--url", "http://x/a.jpg"]),
            vec![],
        )
        .expect("a plan");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, "c=8");
        assert_eq!(one[0].1.shape, LoadShape::Closed { concurrency: 8 });
        assert_eq!(one[0].1.requests, Some(50));

        let open = plans(
            &args(&["--rate", "200", "--duration", "10s", "--url", "http://x/a"]),
            vec![],
        )
        .expect("a plan");
        assert_eq!(
            open[0].1.shape,
            LoadShape::Open {
                rate: 200.0,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT
            }
        );
        assert_eq!(open[0].1.requests, None, "a duration alone sets no count");

        let sweep =
            plans(&args(&["--sweep", "1,2,4", "--url", "http://x/a"]), vec![]).expect("plans");
        let labels: Vec<&str> = sweep.iter().map(|(label, _)| label.as_str()).collect();
        assert_eq!(labels, ["c=1", "c=2", "c=4"]);
        assert_eq!(sweep[0].1.requests, Some(100), "the default count");

        assert!(plans(&args(&["--rate", "0", "--url", "http://x/a"]), vec![]).is_err());
        assert!(plans(&args(&["--sweep", "1,0", "--url", "http://x/a"]), vec![]).is_err());
        assert!(plans(&args(&["-n", "0", "--url", "http://x/a"]), vec![]).is_err());
    }

    #[test]
    fn memory_and_cold_refuse_the_loads_they_cannot_run_with() {
        let parses = |line: &[&str]| {
            let mut full = vec!["hybridlab", "bench", "--url", "http://x/a"];
            full.extend_from_slice(line);
            crate::cli::Cli::try_parse_from(full).is_ok()
        };
        assert!(parses(&["--memory", "128,1769", "-c", "2"]));
        assert!(parses(&["--cold", "-n", "3"]));
        assert!(!parses(&["--memory", "128", "--sweep", "1,2"]));
        assert!(!parses(&["--cold", "--rate", "5"]));
        assert!(!parses(&["--cold", "--sweep", "1,2"]));
        let memory = args(&["--memory", "128,512", "--url", "http://x/a"]);
        assert_eq!(memory.memory, Some(vec![128, 512]));
        assert_eq!(
            memory.warmup, None,
            "a sweep's warm-up default is decided later"
        );
    }
}
