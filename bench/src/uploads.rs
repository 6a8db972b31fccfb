//! The event-driven pipeline under upload load (`hybridlab bench --upload`): N uploads at a
//! fixed concurrency through an [`UploadPipeline`], each followed until its row is COMPLETED
//! or FAILED. Measured per image: the whole span from the start of the upload until the final
//! status was read (`to_final`), the upload itself, and from the row's own history the time
//! the S3 event took to start the resizer (`trigger`: PENDING to PROCESSING) and the resizer's
//! work (`processing`: PROCESSING to the final status).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hybridlab_wire::{ImageRecord, ImageStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::MeasureSummary;
use crate::stats::summarize_ms;

/// The measures of an upload run, in the order they are shown.
pub const UPLOAD_MEASURES: [&str; 4] = ["to_final", "upload", "trigger", "processing"];

/// How often each image's row is read while waiting for its final status. The measured span
/// is late by up to this much, which is why `trigger` and `processing` come from the row.
pub const POLL_PAUSE: Duration = Duration::from_millis(25);

/// One uploaded image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSample {
    pub image_id: Option<String>,
    /// `COMPLETED`, `FAILED`, or `error` when the upload or the wait itself failed.
    pub outcome: String,
    pub to_final_ms: Option<f64>,
    pub upload_ms: Option<f64>,
    pub trigger_ms: Option<f64>,
    pub processing_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl UploadSample {
    fn value_ms(&self, measure: &str) -> Option<f64> {
        match measure {
            "to_final" => self.to_final_ms,
            "upload" => self.upload_ms,
            "trigger" => self.trigger_ms,
            "processing" => self.processing_ms,
            _ => None,
        }
    }
}

/// The `format` field of the file `bench --upload --out` writes: an [`UploadRunFile`]. Files
/// written before it existed hold one bare [`UploadRun`], without a `format`.
pub const UPLOAD_RUN_FILE_FORMAT: &str = "hybridlab-upload-bench/1";

/// What `bench --upload --out` writes: one run, or one per memory size of a `--memory` sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRunFile {
    pub format: String,
    pub runs: Vec<UploadRun>,
}

impl UploadRunFile {
    pub fn new(runs: Vec<UploadRun>) -> Self {
        Self {
            format: UPLOAD_RUN_FILE_FORMAT.to_owned(),
            runs,
        }
    }
}

/// The run as `--out` writes it and `--json` prints it (without the samples).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRun {
    /// A name for plots and tables (`m=512` in a memory sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// RFC 3339; absent in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Stopped by Ctrl-C: the uploads started before the stop were followed to their end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The resizer's configured memory during the run, when the bench set or read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// The REPORT lines of the resizer's invocations during the run, read from its log group:
    /// what its duration and cost are computed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resizer_reports: Vec<hybridlab_wire::report::Report>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<crate::model::RunEnvironment>,
    pub target: String,
    pub stack: String,
    pub file: String,
    pub file_bytes: u64,
    pub via: String,
    pub uploads: u64,
    pub concurrency: usize,
    pub completed: u64,
    pub failed: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    /// Images that reached their final status per second of the run.
    pub images_per_s: f64,
    pub measures: Vec<MeasureSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub samples: Vec<UploadSample>,
}

fn at(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// From the row's history: milliseconds from PENDING to the first PROCESSING (until the event
/// started the resizer), and from the last PROCESSING (a retry may have taken the row over)
/// to the final status.
pub fn stage_split(row: &ImageRecord) -> (Option<f64>, Option<f64>) {
    let when = |wanted: &[ImageStatus], last: bool| {
        let mut matching = row
            .history
            .iter()
            .filter(|change| wanted.contains(&change.status));
        let change = if last {
            matching.next_back()
        } else {
            matching.next()
        };
        change.and_then(|change| at(&change.at))
    };
    let pending = when(&[ImageStatus::Pending], false);
    let first_processing = when(&[ImageStatus::Processing], false);
    let last_processing = when(&[ImageStatus::Processing], true);
    let finished = when(&[ImageStatus::Completed, ImageStatus::Failed], true);
    let span = |from: Option<OffsetDateTime>, to: Option<OffsetDateTime>| {
        Some(((to? - from?).as_seconds_f64() * 1000.0).max(0.0))
    };
    (
        span(pending, first_processing),
        span(last_processing, finished),
    )
}

/// Percentiles of each measure over `samples` (those that have it).
pub fn summarize_uploads(samples: &[UploadSample]) -> Vec<MeasureSummary> {
    summarize_ms(&UPLOAD_MEASURES, samples, UploadSample::value_ms)
}

/// The pipeline an upload bench drives: one upload of the file, then the wait for its row.
pub trait UploadPipeline: Sync {
    /// Uploads the file once; the image id the pipeline gave it.
    fn upload(&self) -> impl Future<Output = anyhow::Result<String>> + Send;
    /// Waits until the row of `image_id` is COMPLETED or FAILED: the row, and when it was
    /// seen so.
    fn wait_final(
        &self,
        image_id: &str,
    ) -> impl Future<Output = anyhow::Result<(ImageRecord, Instant)>> + Send;
}

/// Uploads `uploads` times, `concurrency` at once, and follows each to its end; `done`
/// counts the images that have ended.
pub async fn drive(
    pipeline: &impl UploadPipeline,
    uploads: u64,
    concurrency: usize,
    done: &AtomicU64,
) -> Vec<UploadSample> {
    drive_until(
        pipeline,
        uploads,
        concurrency,
        done,
        &AtomicBool::new(false),
    )
    .await
}

/// Like [`drive`], but no upload starts once `stop` is set (Ctrl-C): those started are still
/// followed to their end and recorded, so the samples are a partial run's.
pub async fn drive_until(
    pipeline: &impl UploadPipeline,
    uploads: u64,
    concurrency: usize,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Vec<UploadSample> {
    // The stream asks for the next upload only when one of the `concurrency` slots frees.
    let admitted = (0..uploads).take_while(|_| !stop.load(Ordering::Relaxed));
    futures::stream::iter(admitted)
        .map(|_| async move {
            let started = Instant::now();
            let sample = match pipeline.upload().await {
                Err(err) => UploadSample {
                    image_id: None,
                    outcome: "error".into(),
                    to_final_ms: None,
                    upload_ms: None,
                    trigger_ms: None,
                    processing_ms: None,
                    error: Some(format!("{err:#}")),
                },
                Ok(image_id) => {
                    let upload_ms = started.elapsed().as_secs_f64() * 1000.0;
                    match pipeline.wait_final(&image_id).await {
                        Ok((row, seen)) => {
                            let (trigger_ms, processing_ms) = stage_split(&row);
                            UploadSample {
                                image_id: Some(image_id),
                                outcome: row.status.to_string(),
                                to_final_ms: Some((seen - started).as_secs_f64() * 1000.0),
                                upload_ms: Some(upload_ms),
                                trigger_ms,
                                processing_ms,
                                error: row.error,
                            }
                        }
                        Err(err) => UploadSample {
                            image_id: Some(image_id),
                            outcome: "error".into(),
                            to_final_ms: None,
                            upload_ms: Some(upload_ms),
                            trigger_ms: None,
                            processing_ms: None,
                            error: Some(format!("{err:#}")),
                        },
                    }
                }
            };
            done.fetch_add(1, Ordering::Relaxed);
            sample
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::StatusChange;

    fn row(history: &[(ImageStatus, &str)]) -> ImageRecord {
        ImageRecord {
            image_id: "i".into(),
            status: history.last().map_or(ImageStatus::Pending, |(s, _)| *s),
            source_url: None,
            bucket: "b".into(),
            keys: Default::default(),
            size_bytes: None,
            width: None,
            height: None,
            format: None,
            created_at: "2026-11-29T10:00:00Z".into(),
            updated_at: "2026-11-29T10:00:00Z".into(),
            timings_ms: None,
            error: None,
            request_id: None,
            original_bucket: None,
            original_filename: None,
            uploaded_at: None,
            history: history
                .iter()
                .map(|(status, at)| StatusChange {
                    status: *status,
                    at: (*at).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_history_splits_into_trigger_and_processing() {
        let done = row(&[
            (ImageStatus::Pending, "2026-11-29T10:00:00.100Z"),
            (ImageStatus::Processing, "2026-11-29T10:00:00.350Z"),
            (ImageStatus::Completed, "2026-11-29T10:00:01.000Z"),
        ]);
        let (trigger, processing) = stage_split(&done);
        assert!((trigger.expect("trigger") - 250.0).abs() < 1e-6);
        assert!((processing.expect("processing") - 650.0).abs() < 1e-6);

        // A retry took the row over: the trigger ends at the first PROCESSING, the processing
        // span starts at the last.
        let retried = row(&[
            (ImageStatus::Pending, "2026-11-29T10:00:00Z"),
            (ImageStatus::Processing, "2026-11-29T10:00:01Z"),
            (ImageStatus::Processing, "2026-11-29T10:01:01Z"),
            (ImageStatus::Failed, "2026-11-29T10:01:02Z"),
        ]);
        let (trigger, processing) = stage_split(&retried);
        assert_eq!(trigger, Some(1000.0));
        assert_eq!(processing, Some(1000.0));

        // A row that never left PENDING has neither span.
        assert_eq!(
            stage_split(&row(&[(ImageStatus::Pending, "2026-11-29T10:00:00Z")])),
            (None, None)
        );
    }

    #[test]
    fn each_measure_counts_only_the_samples_that_have_it() {
        let sample = |to_final: Option<f64>, trigger: Option<f64>| UploadSample {
            image_id: None,
            outcome: "COMPLETED".into(),
            to_final_ms: to_final,
            upload_ms: Some(5.0),
            trigger_ms: trigger,
            processing_ms: None,
            error: None,
        };
        let measures = summarize_uploads(&[
            sample(Some(100.0), Some(10.0)),
            sample(Some(300.0), None),
            sample(None, Some(30.0)),
        ]);
        let names: Vec<&str> = measures.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["to_final", "upload", "trigger"]);
        assert_eq!(measures[0].count, 2);
        assert!((measures[0].max_ms - 300.0).abs() < 0.5);
        assert_eq!(measures[1].count, 3);
        assert_eq!(measures[2].count, 2);
    }

    /// A pipeline whose n-th upload takes n times 10 ms (no two end together) and whose rows
    /// are COMPLETED at once; its `stop_after`-th upload sets `stop` as it starts.
    struct StoppingPipeline {
        started: AtomicU64,
        stop_after: u64,
        stop: std::sync::Arc<AtomicBool>,
    }

    impl UploadPipeline for StoppingPipeline {
        async fn upload(&self) -> anyhow::Result<String> {
            let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.stop_after {
                self.stop.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(10 * n)).await;
            Ok(format!("image-{n}"))
        }

        async fn wait_final(&self, image_id: &str) -> anyhow::Result<(ImageRecord, Instant)> {
            let mut done = row(&[(ImageStatus::Completed, "2026-11-29T10:00:00Z")]);
            done.image_id = image_id.to_owned();
            Ok((done, Instant::now()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_starts_no_more_uploads_and_keeps_those_started() {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let pipeline = StoppingPipeline {
            started: AtomicU64::new(0),
            stop_after: 3,
            stop: stop.clone(),
        };
        let done = AtomicU64::new(0);
        let samples = drive_until(&pipeline, 100, 2, &done, &stop).await;
        // Two slots: the third upload starts when the first ends, while the second is in
        // flight, and sets the stop; no fourth starts, and all three are followed to their end.
        assert_eq!(pipeline.started.load(Ordering::SeqCst), 3);
        assert_eq!(samples.len(), 3);
        assert!(samples.iter().all(|s| s.outcome == "COMPLETED"));
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }
}
