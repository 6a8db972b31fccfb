//! `hybridlab bench --upload FILE`: the event-driven path under load, driven by
//! `hybridlab_bench::uploads` through the lab's [`Uploader`], with a progress line and the
//! summary printed.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use hybridlab_bench::memory::{MemoryPoint, point};
use hybridlab_bench::uploads::{
    POLL_PAUSE, UploadPipeline, UploadRun, UploadRunFile, drive_until, summarize_uploads,
};
use hybridlab_wire::ImageRecord;

use super::bench_memory::Tuning;
use super::interrupts::Interrupts;
use super::output::{clear_progress, paint, stdout_colour};
use crate::lab::Lab;
use crate::lab::function_config::ConfiguredFunction;
use crate::lab::reports::{DELIVERY_PATIENCE, epoch_ms_now, reports_since};
use crate::lab::run_environment::{RunInput, run_environment};
use crate::lab::target::TargetChoice;
use crate::lab::tone::Tone;
use crate::lab::upload::{LocalFile, UploadPath, Uploader};

/// The stack's pipeline as the bench drives it: the lab's [`Uploader`] with one file.
struct LabPipeline<'a> {
    uploader: &'a Uploader,
    file: &'a LocalFile,
    via: UploadPath,
    timeout: Duration,
}

impl UploadPipeline for LabPipeline<'_> {
    async fn upload(&self) -> anyhow::Result<String> {
        let file = self.file;
        let accepted = self
            .uploader
            .upload(
                self.via,
                &file.filename,
                file.content_type,
                file.bytes.clone(),
            )
            .await?;
        Ok(accepted.image_id)
    }

    fn wait_final(
        &self,
        image_id: &str,
    ) -> impl Future<Output = anyhow::Result<(ImageRecord, Instant)>> + Send {
        self.uploader.wait_final(image_id, self.timeout, POLL_PAUSE)
    }
}

/// What `bench --upload` needs from the command line.
pub struct UploadBench<'a> {
    pub file: &'a PathBuf,
    pub via: UploadPath,
    pub uploads: u64,
    pub concurrency: usize,
    pub stack: Option<&'a str>,
    pub timeout: Duration,
    pub out: Option<&'a PathBuf>,
    pub json: bool,
    /// The run's name in reports (a sweep's levels are `m=<MB>`).
    pub label: Option<String>,
    /// `--memory`: one run per memory size of the resizer.
    pub memory: Option<Vec<u32>>,
    /// Uploads made first and not measured (default 0; 1 per memory size).
    pub warmup: Option<u64>,
}

/// What a run is asked to do, beside the pipeline.
struct Level<'a> {
    bench: &'a UploadBench<'a>,
    label: Option<String>,
    memory_mb: Option<u32>,
    warmup: u64,
}

pub async fn run(target: &TargetChoice, bench: UploadBench<'_>) -> anyhow::Result<ExitCode> {
    if bench.uploads == 0 || bench.concurrency == 0 {
        bail!("-n and -c must be at least 1");
    }
    let file = LocalFile::read(bench.file).await?;
    let lab = Lab::open(target, bench.stack).await?;
    let uploader = Uploader::for_lab(&lab).await?;
    let pipeline = LabPipeline {
        uploader: &uploader,
        file: &file,
        via: bench.via,
        timeout: bench.timeout,
    };
    let resizer = ConfiguredFunction::new(&lab.clients, &lab.names.resizer);
    // One GetFunctionConfiguration: the memory each run records, and what --memory puts back.
    let tuning = Tuning::read(resizer, bench.memory.is_some(), false).await?;
    let environment = run_environment(
        &lab.clients,
        Some(lab.stack.as_str()),
        Some(&RunInput::Upload(bench.file.clone())),
    );
    let levels: Vec<Level> = match &bench.memory {
        Some(levels) => levels
            .iter()
            .map(|&memory_mb| Level {
                bench: &bench,
                label: Some(format!("m={memory_mb}")),
                memory_mb: Some(memory_mb),
                warmup: bench.warmup.unwrap_or(1),
            })
            .collect(),
        None => vec![Level {
            bench: &bench,
            label: bench.label.clone(),
            memory_mb: None,
            warmup: bench.warmup.unwrap_or(0),
        }],
    };
    if bench.memory.is_some() {
        super::bench_memory::say_cpu_share(&lab.clients).await;
    }
    let interrupts = Interrupts::listen();
    let work = async {
        let mut runs = Vec::new();
        let mut failure: Option<anyhow::Error> = None;
        for level in levels {
            if interrupts.count() > 0 {
                break;
            }
            if let Some(memory_mb) = level.memory_mb
                && let Err(err) = tuning.set_memory(memory_mb).await
            {
                failure = Some(err);
                break;
            }
            // A Ctrl-C while the update was applied: no run of this level.
            if interrupts.count() > 0 {
                break;
            }
            let mut run = match measure(&lab, &pipeline, &level, &interrupts).await {
                Ok(run) => run,
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            };
            run.memory_mb = Some(level.memory_mb.unwrap_or(tuning.original.memory_mb));
            run.environment = Some(environment.clone());
            let interrupted = run.interrupted;
            runs.push(run);
            if interrupted {
                break;
            }
        }
        let restored = tuning.restore().await;
        (runs, failure, restored)
    };
    let (mut runs, failure, restored) = tokio::select! {
        done = work => done,
        () = interrupts.reached(2) => {
            clear_progress();
            tuning.restore_quickly().await;
            eprintln!("hybridlab: interrupted again; nothing was saved");
            return Ok(ExitCode::from(super::exit::INTERRUPTED));
        }
    };
    let points: Vec<MemoryPoint> = runs
        .iter()
        .filter(|_| bench.memory.is_some())
        .filter_map(|run| {
            point(
                run.memory_mb?,
                &run.resizer_reports,
                run.uploads - run.completed,
            )
        })
        .collect();
    if let Some(path) = bench.out {
        hybridlab_bench::run_file::save(path, &UploadRunFile::new(runs.clone()))?;
    }
    let first_errors: Vec<Option<String>> = runs
        .iter()
        .map(|run| run.samples.iter().find_map(|s| s.error.clone()))
        .collect();
    for run in &mut runs {
        run.samples.clear();
    }
    if bench.json {
        let mut printed = serde_json::to_value(UploadRunFile::new(runs.clone()))?;
        if bench.memory.is_some() {
            printed["memory"] = super::bench_memory::memory_json(&points);
        }
        println!("{printed}");
    } else {
        for (run, first_error) in runs.iter().zip(&first_errors) {
            print_run(run, first_error.as_deref());
        }
        if bench.memory.is_some() {
            let levels: Vec<u32> = runs.iter().filter_map(|run| run.memory_mb).collect();
            super::bench_memory::print_memory(&lab.names.resizer, &points, &levels);
        }
        if let Some(path) = bench.out {
            println!("Wrote the run to {}.", path.display());
        }
    }
    super::bench_memory::failure_or_restore(failure, restored)?;
    Ok(
        if interrupts.count() > 0 || runs.iter().any(|run| run.interrupted) {
            ExitCode::from(super::exit::INTERRUPTED)
        } else if runs.iter().all(|run| run.completed == run.uploads) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(super::exit::FAILED)
        },
    )
}

/// The progress line of one run, stopped and cleared when dropped (a second Ctrl-C drops the
/// run unfinished).
struct ProgressDisplay(tokio::task::JoinHandle<()>);

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.0.abort();
        clear_progress();
    }
}

/// One run: the warm-up uploads, then the measured ones (the first Ctrl-C starts no more and
/// keeps those started), then, in a memory sweep, the resizer's REPORT lines of the run.
async fn measure(
    lab: &Lab,
    pipeline: &LabPipeline<'_>,
    level: &Level<'_>,
    interrupts: &Interrupts,
) -> anyhow::Result<UploadRun> {
    let bench = level.bench;
    let name = level.label.as_deref().unwrap_or("pipeline");
    if level.warmup > 0 {
        eprintln!(
            "hybridlab: {name}: warming up with {} unmeasured upload(s)",
            level.warmup
        );
        let (stop, warmed) = (AtomicBool::new(false), AtomicU64::new(0));
        let warm = drive_until(pipeline, level.warmup, 1, &warmed, &stop);
        // A Ctrl-C while warming up abandons the warm-up: nothing of it is measured.
        tokio::select! {
            _ = warm => {}
            () = interrupts.reached(1) => {}
        }
        if level.memory_mb.is_some() {
            // The resizer writes its REPORT line just after the row it finished: a pause
            // keeps the warm-up's line out of the measured window.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let window_start_ms = epoch_ms_now();
    let started_at = hybridlab_wire::now_rfc3339();
    let done = Arc::new(AtomicU64::new(0));
    let display = ProgressDisplay(tokio::spawn(super::output::show_progress(
        "pipeline",
        "images",
        bench.uploads,
        done.clone(),
    )));
    let stop = AtomicBool::new(interrupts.count() > 0);
    let mut interrupted = stop.load(Ordering::Relaxed);
    let started = Instant::now();
    let samples = {
        let uploads = drive_until(pipeline, bench.uploads, bench.concurrency, &done, &stop);
        tokio::pin!(uploads);
        loop {
            tokio::select! {
                samples = &mut uploads => break samples,
                () = interrupts.reached(1), if !interrupted => {
                    interrupted = true;
                    stop.store(true, Ordering::Relaxed);
                    clear_progress();
                    eprintln!(
                        "hybridlab: interrupted: no more uploads start; those started are followed to their end and the run is kept as a partial run (Ctrl-C again quits at once)"
                    );
                }
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    drop(display);
    let count = |outcome: &str| samples.iter().filter(|s| s.outcome == outcome).count() as u64;
    let finished = count("COMPLETED") + count("FAILED");
    let resizer_reports = match level.memory_mb {
        Some(memory_mb) => {
            let reports = reports_since(
                lab,
                &lab.names.resizer_log_group,
                window_start_ms,
                memory_mb,
                finished as usize,
            )
            .await?;
            if (reports.len() as u64) < finished {
                eprintln!(
                    "hybridlab: {name}: {} REPORT lines of the resizer for {finished} images after waiting {}s for CloudWatch",
                    reports.len(),
                    DELIVERY_PATIENCE.as_secs()
                );
            }
            reports
        }
        None => Vec::new(),
    };
    Ok(UploadRun {
        label: level.label.clone(),
        started_at: Some(started_at),
        interrupted,
        memory_mb: level.memory_mb,
        resizer_reports,
        environment: None,
        target: lab.clients.describe(),
        stack: lab.stack.to_string(),
        file: bench.file.display().to_string(),
        file_bytes: pipeline.file.bytes.len() as u64,
        via: format!("{:?}", bench.via).to_lowercase(),
        uploads: bench.uploads,
        concurrency: bench.concurrency,
        completed: count("COMPLETED"),
        failed: count("FAILED"),
        errors: count("error"),
        elapsed_s: elapsed,
        images_per_s: finished as f64 / elapsed.max(f64::EPSILON),
        measures: summarize_uploads(&samples),
        samples,
    })
}

fn print_run(run: &UploadRun, first_error: Option<&str>) {
    let colour = stdout_colour();
    println!(
        "{} {} uploads of {} ({} bytes) via {}, concurrency {}, stack {} on {}{}",
        paint(
            run.label.as_deref().unwrap_or("pipeline"),
            Tone::Accent,
            colour
        ),
        run.uploads,
        run.file,
        run.file_bytes,
        run.via,
        run.concurrency,
        run.stack,
        run.target,
        if run.interrupted {
            paint(" - interrupted: a partial run", Tone::Warn, colour)
        } else {
            String::new()
        }
    );
    if let Some(memory_mb) = run.memory_mb {
        println!(
            "  resizer memory {memory_mb} MB; {} of its REPORT lines read",
            run.resizer_reports.len()
        );
    }
    println!(
        "  {:.2}s: {:.1} images/s, {} COMPLETED, {} FAILED, {} errors",
        run.elapsed_s, run.images_per_s, run.completed, run.failed, run.errors
    );
    if let Some(error) = first_error {
        println!("  {} {error}", paint("first failure:", Tone::Bad, colour));
    }
    println!(
        "  {:<11} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "ms", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for measure in &run.measures {
        println!(
            "  {:<11} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            measure.name,
            measure.count,
            measure.p50_ms,
            measure.p90_ms,
            measure.p99_ms,
            measure.p999_ms,
            measure.max_ms
        );
    }
    println!(
        "  to_final: upload start to the final status read (rows polled every {} ms); trigger: PENDING to PROCESSING; processing: PROCESSING to the final status (both from the row's history)",
        POLL_PAUSE.as_millis()
    );
}
