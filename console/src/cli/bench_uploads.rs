//! `hybridlab bench --upload FILE`: the event-driven path under load, driven by
//! `hybridlab_bench::uploads` through the lab's [`Uploader`], with a progress line and the
//! summary printed.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::bail;
use hybridlab_bench::uploads::{POLL_PAUSE, UploadPipeline, UploadRun, drive, summarize_uploads};
use hybridlab_wire::ImageRecord;

use super::output::{clear_progress, paint, stdout_colour};
use crate::lab::Lab;
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

    let done = Arc::new(AtomicU64::new(0));
    let display = tokio::spawn(super::output::show_progress(
        "pipeline",
        "images",
        bench.uploads,
        done.clone(),
    ));
    let started = Instant::now();
    let samples = tokio::select! {
        samples = drive(&pipeline, bench.uploads, bench.concurrency, &done) => samples,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; nothing was saved"),
    };
    let elapsed = started.elapsed().as_secs_f64();
    display.abort();
    clear_progress();
    let count = |outcome: &str| samples.iter().filter(|s| s.outcome == outcome).count() as u64;
    let finished = count("COMPLETED") + count("FAILED");
    let mut run = UploadRun {
        label: None,
        started_at: None,
        interrupted: false,
        memory_mb: None,
        resizer_reports: Vec::new(),
        environment: None,
        target: lab.clients.describe(),
        stack: lab.stack.to_string(),
        file: bench.file.display().to_string(),
        file_bytes: file.bytes.len() as u64,
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
    Ok(if run.completed == run.uploads {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::FAILED)
    })
}

fn print_run(run: &UploadRun, first_error: Option<&str>) {
    let colour = stdout_colour();
    println!(
        "{} {} uploads of {} ({} bytes) via {}, concurrency {}, stack {} on {}",
        paint("pipeline", Tone::Accent, colour),
        run.uploads,
        run.file,
        run.file_bytes,
        run.via,
        run.concurrency,
        run.stack,
        run.target
    );
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
