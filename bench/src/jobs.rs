//! The job-worker variant under load (`hybridlab bench --jobs N -c C`): N jobs submitted at a
//! fixed concurrency through a [`JobPipeline`], each followed until it ends and its worker's
//! instance has terminated. Measured per job, from the client's clock: `submit` (the API's
//! answer and the input's upload), `end_to_end` (the submit's start until the final status
//! was read) and `to_terminated` (the final status read until the instance was seen
//! terminated); from the row's history, written by the launcher and the worker:
//! `to_launcher` (SUBMITTED until the launcher first acted on the job: the stream's delivery
//! and the launcher's start), `queued` (QUEUED until LAUNCHING, when the cap made it wait),
//! `run_instances` (LAUNCHING until RunInstances answered), `pending_to_running`
//! (RunInstances' answer until EC2 showed the instance `running`, as the bench saw it while
//! the job ran), `boot_to_worker` (then until the worker moved the job to RUNNING: the OS's
//! boot, the worker's download and start) and `job` (RUNNING until the job ended). The
//! moment the instance was seen running is on the client's clock: it is put on the row's
//! through the final status, which both saw.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hybridlab_wire::job::{Job, JobStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::MeasureSummary;
use crate::stats::summarize_ms;

/// The measures of a jobs run, in the order they are shown.
pub const JOB_MEASURES: [&str; 9] = [
    "end_to_end",
    "submit",
    "to_launcher",
    "queued",
    "run_instances",
    "pending_to_running",
    "boot_to_worker",
    "job",
    "to_terminated",
];

/// How often a job's row (and then its instance) is read while waiting.
pub const POLL_PAUSE: Duration = Duration::from_millis(250);

/// One job of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSample {
    pub job_id: Option<String>,
    /// `SUCCEEDED`, `FAILED`, `CANCELLED`, or `error` when the submit or a wait failed.
    pub outcome: String,
    pub instance_id: Option<String>,
    pub end_to_end_ms: Option<f64>,
    pub submit_ms: Option<f64>,
    pub to_launcher_ms: Option<f64>,
    pub queued_ms: Option<f64>,
    pub run_instances_ms: Option<f64>,
    pub pending_to_running_ms: Option<f64>,
    pub boot_to_worker_ms: Option<f64>,
    pub job_ms: Option<f64>,
    pub to_terminated_ms: Option<f64>,
    /// How long the instance lived, RunInstances' answer until it was seen terminated: what
    /// EC2 bills (with its 60 s minimum).
    pub instance_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobSample {
    fn value_ms(&self, measure: &str) -> Option<f64> {
        match measure {
            "end_to_end" => self.end_to_end_ms,
            "submit" => self.submit_ms,
            "to_launcher" => self.to_launcher_ms,
            "queued" => self.queued_ms,
            "run_instances" => self.run_instances_ms,
            "pending_to_running" => self.pending_to_running_ms,
            "boot_to_worker" => self.boot_to_worker_ms,
            "job" => self.job_ms,
            "to_terminated" => self.to_terminated_ms,
            _ => None,
        }
    }
}

/// The stages the row's history tells, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowStages {
    pub to_launcher_ms: Option<f64>,
    pub queued_ms: Option<f64>,
    pub run_instances_ms: Option<f64>,
    /// RunInstances' answer until RUNNING: pending, boot, the worker's start (the bench
    /// splits it where it saw the instance running).
    pub boot_to_worker_ms: Option<f64>,
    pub job_ms: Option<f64>,
}

fn at(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn span(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> Option<f64> {
    Some(((to? - from?).as_seconds_f64() * 1000.0).max(0.0))
}

/// The stages of `job` from its history and `launched_at`.
pub fn row_stages(job: &Job) -> RowStages {
    let first = |wanted: &dyn Fn(JobStatus) -> bool| {
        job.history
            .iter()
            .find(|event| wanted(event.status))
            .and_then(|event| at(&event.at))
    };
    let submitted = first(&|s| s == JobStatus::Submitted);
    let acted = first(&|s| matches!(s, JobStatus::Queued | JobStatus::Launching));
    let queued = first(&|s| s == JobStatus::Queued);
    let launching = first(&|s| s == JobStatus::Launching);
    let launched = job.launched_at.as_deref().and_then(at);
    let running = first(&|s| s == JobStatus::Running);
    let ended = first(&JobStatus::is_final);
    RowStages {
        to_launcher_ms: span(submitted, acted),
        queued_ms: span(queued, launching),
        run_instances_ms: span(launching, launched),
        boot_to_worker_ms: span(launched, running),
        job_ms: span(running, ended),
    }
}

/// `(pending_to_running, boot_to_worker)` of `job`, split where the bench saw its instance
/// `running` (`running_seen`, on the client's clock), put on the row's clock through the
/// final status, which the row wrote when the job ended and the client read at
/// `final_seen`. `None` where the row lacks the times.
pub fn split_at_running(
    job: &Job,
    running_seen: Instant,
    final_seen: Instant,
) -> (Option<f64>, Option<f64>) {
    let find = |wanted: &dyn Fn(JobStatus) -> bool| {
        job.history
            .iter()
            .find(|event| wanted(event.status))
            .and_then(|event| at(&event.at))
    };
    let ended = find(&JobStatus::is_final);
    let before_end = final_seen.saturating_duration_since(running_seen);
    let running = ended.map(|ended| ended - before_end);
    let launched = job.launched_at.as_deref().and_then(at);
    let worker = find(&|s| s == JobStatus::Running);
    (span(launched, running), span(running, worker))
}

/// Percentiles of each measure over `samples` (those that have it).
pub fn summarize_jobs(samples: &[JobSample]) -> Vec<MeasureSummary> {
    summarize_ms(&JOB_MEASURES, samples, JobSample::value_ms)
}

/// The run as `--out` writes it and `--json` prints it (without the samples).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRun {
    pub format: String,
    pub target: String,
    pub stack: String,
    pub kind: String,
    pub input_bytes: u64,
    pub jobs: u64,
    pub concurrency: usize,
    pub worker_cap: Option<u32>,
    pub instance_type: String,
    pub succeeded: u64,
    pub failed: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub jobs_per_minute: f64,
    pub measures: Vec<MeasureSummary>,
    /// The mean cost of one job at list prices, and what it counts.
    pub cost_per_job_usd: f64,
    pub cost_basis: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub samples: Vec<JobSample>,
}

/// The `format` of a jobs run file.
pub const JOB_RUN_FORMAT: &str = "hybridlab-bench-jobs/2";

/// The stack's jobs as a bench drives them.
pub trait JobPipeline: Sync {
    /// Submits one job with its input; its id.
    fn submit(&self) -> impl Future<Output = anyhow::Result<String>> + Send;
    /// Job `job_id` as it is now.
    fn read(&self, job_id: &str) -> impl Future<Output = anyhow::Result<Job>> + Send;
    /// The state of instance `instance_id` (`pending`, `running`, ...); `None` when EC2 no
    /// longer lists it.
    fn instance_state(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
    /// Waits until `instance_id` is terminated: when it was seen so.
    fn wait_terminated(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = anyhow::Result<Instant>> + Send;
    /// How long one job may take before the bench gives up on it.
    fn patience(&self) -> Duration;
}

/// Job `job_id` followed to its end, with when its end and its instance's `running` were
/// seen.
struct Followed {
    job: Job,
    ended_seen: Instant,
    running_seen: Option<Instant>,
    /// Why the instance could not be watched, if it could not.
    instance_error: Option<String>,
}

/// Reads job `job_id` every [`POLL_PAUSE`] until it ends and, each time, its worker's
/// instance until that is seen `running` (one read of each per pause: the job's reads are
/// not doubled by a second watcher).
async fn follow(pipeline: &impl JobPipeline, job_id: &str) -> anyhow::Result<Followed> {
    let patience = pipeline.patience();
    let deadline = Instant::now() + patience;
    let mut running_seen = None;
    let mut instance_error = None;
    let mut watching = true;
    loop {
        let job = pipeline.read(job_id).await?;
        if job.status.is_final() {
            return Ok(Followed {
                job,
                ended_seen: Instant::now(),
                running_seen,
                instance_error,
            });
        }
        if watching && let Some(instance) = &job.instance_id {
            match pipeline.instance_state(instance).await {
                Ok(Some(state)) if state == "running" => {
                    running_seen = Some(Instant::now());
                    watching = false;
                }
                Ok(Some(state)) if state == "pending" => {}
                // Past `running` unseen (a job shorter than a pause), or gone.
                Ok(_) => watching = false,
                Err(err) => {
                    instance_error = Some(format!("{err:#}"));
                    watching = false;
                }
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "job {job_id} is still {} after {}s",
                job.status,
                patience.as_secs()
            );
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
}

/// Submits `jobs` jobs, `concurrency` at once, and follows each until its instance has
/// terminated; `done` counts the jobs that have ended.
pub async fn drive(
    pipeline: &impl JobPipeline,
    jobs: u64,
    concurrency: usize,
    done: &AtomicU64,
) -> Vec<JobSample> {
    futures::stream::iter(0..jobs)
        .map(|_| async move {
            let sample = one_job(pipeline).await;
            done.fetch_add(1, Ordering::Relaxed);
            sample
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn one_job(pipeline: &impl JobPipeline) -> JobSample {
    let started = Instant::now();
    let failed = |job_id: Option<String>, err: anyhow::Error| JobSample {
        job_id,
        outcome: "error".into(),
        error: Some(format!("{err:#}")),
        ..JobSample::default()
    };
    let job_id = match pipeline.submit().await {
        Ok(job_id) => job_id,
        Err(err) => return failed(None, err),
    };
    let submit_ms = started.elapsed().as_secs_f64() * 1000.0;
    // The instance is watched while the job runs: its `running` is seen only then.
    let Followed {
        job,
        ended_seen: seen,
        running_seen,
        instance_error,
    } = match follow(pipeline, &job_id).await {
        Ok(followed) => followed,
        Err(err) => {
            return JobSample {
                submit_ms: Some(submit_ms),
                ..failed(Some(job_id), err)
            };
        }
    };
    let stages = row_stages(&job);
    let (pending_to_running_ms, boot_to_worker_ms) = match running_seen {
        Some(running) => split_at_running(&job, running, seen),
        None => (None, None),
    };
    let mut sample = JobSample {
        job_id: Some(job_id),
        outcome: job.status.as_str().to_owned(),
        instance_id: job.instance_id.clone(),
        end_to_end_ms: Some((seen - started).as_secs_f64() * 1000.0),
        submit_ms: Some(submit_ms),
        to_launcher_ms: stages.to_launcher_ms,
        queued_ms: stages.queued_ms,
        run_instances_ms: stages.run_instances_ms,
        pending_to_running_ms,
        boot_to_worker_ms,
        job_ms: stages.job_ms,
        error: job.error.clone().or(instance_error),
        ..JobSample::default()
    };
    if let Some(instance) = &job.instance_id {
        match pipeline.wait_terminated(instance).await {
            Ok(terminated) => {
                sample.to_terminated_ms = Some((terminated - seen).as_secs_f64() * 1000.0);
                // The instance's life: from RunInstances' answer (on the row's clock, put
                // on the client's through the final status both saw) until seen terminated.
                let life_after_end = (terminated - seen).as_secs_f64();
                let life_before_end = job
                    .launched_at
                    .as_deref()
                    .and_then(at)
                    .zip(
                        job.history
                            .iter()
                            .rfind(|e| e.status.is_final())
                            .and_then(|e| at(&e.at)),
                    )
                    .map(|(launched, ended)| (ended - launched).as_seconds_f64().max(0.0));
                sample.instance_s = life_before_end.map(|before| before + life_after_end);
            }
            Err(err) => {
                sample.error.get_or_insert_with(|| format!("{err:#}"));
            }
        }
    }
    sample
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::job::{JobEvent, JobKind};

    fn job(history: &[(JobStatus, &str)], launched_at: Option<&str>) -> Job {
        Job {
            job_id: "j-0000000000000001".into(),
            kind: JobKind::AppendText { text: "x".into() },
            status: history.last().map_or(JobStatus::Submitted, |(s, _)| *s),
            submitted_at: history.first().map_or("", |(_, at)| at).to_owned(),
            instance_id: Some("i-1".into()),
            launched_at: launched_at.map(str::to_owned),
            heartbeat_at: None,
            lease_seconds: 60,
            input_bytes: None,
            outputs: Vec::new(),
            error: None,
            history: history
                .iter()
                .map(|(status, at)| JobEvent {
                    status: *status,
                    at: (*at).to_owned(),
                    detail: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_history_splits_into_the_launchers_ec2s_and_the_workers_stages() {
        let job = job(
            &[
                (JobStatus::Submitted, "2026-12-06T10:00:00.000Z"),
                (JobStatus::Queued, "2026-12-06T10:00:00.250Z"),
                (JobStatus::Launching, "2026-12-06T10:00:10.250Z"),
                (JobStatus::Running, "2026-12-06T10:00:25.750Z"),
                (JobStatus::Succeeded, "2026-12-06T10:00:26.000Z"),
            ],
            Some("2026-12-06T10:00:10.750Z"),
        );
        let stages = row_stages(&job);
        assert_eq!(stages.to_launcher_ms, Some(250.0));
        assert_eq!(stages.queued_ms, Some(10_000.0));
        assert_eq!(stages.run_instances_ms, Some(500.0));
        assert_eq!(stages.boot_to_worker_ms, Some(15_000.0));
        assert_eq!(stages.job_ms, Some(250.0));
    }

    #[test]
    fn the_launch_to_worker_span_splits_where_the_instance_was_seen_running() {
        let job = job(
            &[
                (JobStatus::Submitted, "2026-12-06T10:00:00.000Z"),
                (JobStatus::Launching, "2026-12-06T10:00:00.250Z"),
                (JobStatus::Running, "2026-12-06T10:00:25.750Z"),
                (JobStatus::Succeeded, "2026-12-06T10:00:26.000Z"),
            ],
            Some("2026-12-06T10:00:00.750Z"),
        );
        // Seen running 16 s before the final status was read, which the row wrote at 26.0 s:
        // running at 10.0 s on the row's clock.
        let final_seen = Instant::now() + Duration::from_secs(60);
        let running_seen = final_seen - Duration::from_secs(16);
        let (pending, boot) = split_at_running(&job, running_seen, final_seen);
        assert_eq!(pending, Some(9_250.0));
        assert_eq!(boot, Some(15_750.0));
        // The two add up to the row's own span.
        assert_eq!(
            pending.zip(boot).map(|(p, b)| p + b),
            row_stages(&job).boot_to_worker_ms
        );
        // A launch time missing: no pending time, the boot still.
        let mut unlaunched = job.clone();
        unlaunched.launched_at = None;
        assert_eq!(
            split_at_running(&unlaunched, running_seen, final_seen),
            (None, Some(15_750.0))
        );
    }

    #[test]
    fn a_job_never_queued_or_launched_has_only_the_stages_it_went_through() {
        let job = job(
            &[
                (JobStatus::Submitted, "2026-12-06T10:00:00Z"),
                (JobStatus::Launching, "2026-12-06T10:00:01Z"),
                (JobStatus::Failed, "2026-12-06T10:00:02Z"),
            ],
            None,
        );
        let stages = row_stages(&job);
        assert_eq!(stages.to_launcher_ms, Some(1000.0));
        assert_eq!(stages.queued_ms, None);
        assert_eq!(stages.run_instances_ms, None);
        assert_eq!(stages.job_ms, None);
        let summary = summarize_jobs(&[JobSample {
            to_launcher_ms: stages.to_launcher_ms,
            ..JobSample::default()
        }]);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].name, "to_launcher");
    }

    /// A job that is LAUNCHING without an instance, then with one `pending` twice, then
    /// RUNNING on a `running` instance, then SUCCEEDED; counts the reads.
    struct Scripted {
        reads: std::sync::Mutex<usize>,
        states: std::sync::Mutex<Vec<&'static str>>,
    }

    impl JobPipeline for Scripted {
        async fn submit(&self) -> anyhow::Result<String> {
            Ok("j-0000000000000001".into())
        }

        async fn read(&self, _job_id: &str) -> anyhow::Result<Job> {
            let read = {
                let mut reads = self.reads.lock().expect("reads");
                *reads += 1;
                *reads
            };
            let status = match read {
                1..=4 => JobStatus::Launching,
                5 => JobStatus::Running,
                _ => JobStatus::Succeeded,
            };
            let mut job = job(&[(status, "2026-12-06T10:00:00Z")], None);
            if read == 1 {
                job.instance_id = None;
            }
            Ok(job)
        }

        async fn instance_state(&self, _instance_id: &str) -> anyhow::Result<Option<String>> {
            let mut states = self.states.lock().expect("states");
            Ok(Some(
                if states.len() > 1 {
                    states.remove(0)
                } else {
                    states[0]
                }
                .to_owned(),
            ))
        }

        async fn wait_terminated(&self, _instance_id: &str) -> anyhow::Result<Instant> {
            Ok(Instant::now())
        }

        fn patience(&self) -> Duration {
            Duration::from_secs(600)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_loop_reads_the_job_once_a_pause_and_sees_the_instance_running() {
        let pipeline = Scripted {
            reads: std::sync::Mutex::new(0),
            states: std::sync::Mutex::new(vec!["pending", "pending", "running", "running"]),
        };
        let followed = follow(&pipeline, "j-0000000000000001").await.expect("ends");
        assert_eq!(followed.job.status, JobStatus::Succeeded);
        assert!(followed.running_seen.is_some(), "running was seen");
        assert!(followed.instance_error.is_none());
        // Six reads for six polls: no second reader of the job.
        assert_eq!(*pipeline.reads.lock().expect("reads"), 6);
        // The instance is no longer read once seen running.
        assert_eq!(*pipeline.states.lock().expect("states"), vec!["running"]);
    }
}
