//! A job of the job-worker variant (issue 21), as the submit function, the launcher, the
//! worker and the command line all read it: its statuses and the moves between them, its
//! kinds, where its input and outputs live, its lease, and which submitted jobs the launcher
//! starts now under the stack's cap on workers. Plain values; the row as a DynamoDB item and
//! its conditional updates are in `job_item` (feature `dynamodb`).

use serde::{Deserialize, Serialize};

/// The attribute that keys the jobs table.
pub const JOB_KEY_ATTRIBUTE: &str = "job_id";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Written by the submit function; its stream record wakes the launcher.
    Submitted,
    /// Waiting for a worker: the stack's cap was reached when it was submitted.
    Queued,
    /// The launcher took it (a conditional update, so a duplicate stream record launches no
    /// second instance) and starts its instance.
    Launching,
    /// Its worker runs it, with a heartbeat.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Submitted,
        JobStatus::Queued,
        JobStatus::Launching,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Submitted => "SUBMITTED",
            JobStatus::Queued => "QUEUED",
            JobStatus::Launching => "LAUNCHING",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Nothing moves a job on from here.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// Whether a worker instance exists, or is being started, for a job here: what the
    /// stack's cap counts.
    pub fn holds_a_worker(self) -> bool {
        matches!(self, JobStatus::Launching | JobStatus::Running)
    }

    /// The statuses a job may move to from this one. Any job not yet final may be
    /// cancelled, or fail (a launch refused, a lease run out).
    pub fn next(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Submitted => &[Launching, Queued, Failed, Cancelled],
            Queued => &[Launching, Failed, Cancelled],
            Launching => &[Running, Failed, Cancelled],
            Running => &[Succeeded, Failed, Cancelled],
            Succeeded | Failed | Cancelled => &[],
        }
    }

    pub fn may_become(self, next: JobStatus) -> bool {
        self.next().contains(&next)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobKind {
    /// The input text file with `text` appended, written as the output `output.txt`.
    AppendText { text: String },
    /// A zip or tar of images in; every image's variants, a contact sheet and a manifest out.
    ImageBatch,
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::AppendText { .. } => "append-text",
            JobKind::ImageBatch => "image-batch",
        }
    }
}

/// One status change, with its time (RFC 3339) and what the program that made it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    pub status: JobStatus,
    pub at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A job's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    #[serde(flatten)]
    pub kind: JobKind,
    pub status: JobStatus,
    pub submitted_at: String,
    /// The worker's instance, once the launcher started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// When RunInstances answered for its worker (RFC 3339), set with the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<String>,
    /// The worker's last heartbeat (Unix seconds) while RUNNING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<i64>,
    /// How long a RUNNING job may go without a heartbeat before it is FAILED.
    pub lease_seconds: u64,
    /// The input's size as the client declared it, which its upload URL is signed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bytes: Option<u64>,
    /// The output objects' keys, once SUCCEEDED.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Why it FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub history: Vec<JobEvent>,
}

/// The largest input a job takes: the submit function presigns its upload for the size the
/// client declares, up to this, and the worker reads at most this (an instance's memory is
/// the limit; a t3.micro has 1 GiB).
pub const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// The error of a job failed because its worker went silent past its lease.
pub const LEASE_EXPIRED: &str = "the worker sent no heartbeat within the job's lease";

impl Job {
    /// Whether a RUNNING job's worker has gone silent for longer than its lease (its
    /// instance died, or its program hangs): it is then FAILED, never RUNNING forever.
    pub fn lease_expired(&self, now_epoch_s: i64) -> bool {
        self.status == JobStatus::Running
            && self
                .heartbeat_at
                .is_none_or(|beat| now_epoch_s - beat > self.lease_seconds as i64)
    }
}

/// The key of a job's input object.
pub fn input_key(job_id: &str) -> String {
    format!("jobs/{job_id}/input")
}

/// The prefix of a job's output objects.
pub fn output_prefix(job_id: &str) -> String {
    format!("jobs/{job_id}/output/")
}

/// The key of output `name` of a job.
pub fn output_key(job_id: &str, name: &str) -> String {
    format!("{}{name}", output_prefix(job_id))
}

/// Whether `job_id` is one hybridlab makes (`j-` and 16 lower-case hex digits): a path
/// parameter or a command-line argument that is not is refused before any lookup.
pub fn is_job_id(job_id: &str) -> bool {
    job_id.strip_prefix("j-").is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Which of the waiting jobs (oldest first) the launcher starts now, when `holding` jobs
/// already hold a worker and the stack allows `cap` at once; the rest wait QUEUED.
pub fn to_launch(waiting: &[String], holding: usize, cap: usize) -> (Vec<String>, Vec<String>) {
    let free = cap.saturating_sub(holding).min(waiting.len());
    (waiting[..free].to_vec(), waiting[free..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_move_forward_only_and_end() {
        use JobStatus::*;
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.is_final(), status.next().is_empty());
            assert!(!status.may_become(status), "{status} to itself");
            assert!(
                !status.may_become(Submitted),
                "back to SUBMITTED from {status}"
            );
        }
        assert!(Submitted.may_become(Launching));
        assert!(Queued.may_become(Launching));
        assert!(!Submitted.may_become(Running), "only through LAUNCHING");
        assert!(Running.may_become(Failed));
        assert!(!Succeeded.may_become(Failed));
        assert!(Launching.holds_a_worker() && Running.holds_a_worker());
        assert!(!Queued.holds_a_worker());
        assert_eq!(JobStatus::parse("running"), None);
    }

    #[test]
    fn a_job_reads_and_writes_as_json_with_its_kind_flattened() {
        let job = Job {
            job_id: "j-0123456789abcdef".into(),
            kind: JobKind::AppendText { text: "hi".into() },
            status: JobStatus::Running,
            submitted_at: "2026-12-06T08:00:00.000Z".into(),
            instance_id: Some("i-1".into()),
            heartbeat_at: Some(100),
            launched_at: None,
            lease_seconds: 60,
            input_bytes: None,
            outputs: Vec::new(),
            error: None,
            history: vec![JobEvent {
                status: JobStatus::Submitted,
                at: "2026-12-06T08:00:00.000Z".into(),
                detail: String::new(),
            }],
        };
        let json = serde_json::to_value(&job).expect("JSON");
        assert_eq!(json["kind"], "append-text");
        assert_eq!(json["text"], "hi");
        assert_eq!(json["status"], "RUNNING");
        assert!(json.get("outputs").is_none());
        assert_eq!(serde_json::from_value::<Job>(json).expect("read back"), job);
        assert!(!job.lease_expired(160));
        assert!(job.lease_expired(161));
        let silent = Job {
            heartbeat_at: None,
            launched_at: None,
            ..job.clone()
        };
        assert!(silent.lease_expired(0), "a RUNNING job that never beat");
        let done = Job {
            status: JobStatus::Succeeded,
            ..job
        };
        assert!(!done.lease_expired(10_000));
    }

    #[test]
    fn keys_ids_and_the_cap() {
        assert_eq!(input_key("j-1"), "jobs/j-1/input");
        assert_eq!(
            output_key("j-1", "output.txt"),
            "jobs/j-1/output/output.txt"
        );
        assert!(is_job_id("j-0123456789abcdef"));
        assert!(!is_job_id("j-0123456789ABCDEF"));
        assert!(!is_job_id("j-../../etc"));
        let waiting: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(
            to_launch(&waiting, 1, 3),
            (vec!["a".into(), "b".into()], vec!["c".into(), "d".into()])
        );
        assert_eq!(to_launch(&waiting, 5, 3).0, Vec::<String>::new());
        assert_eq!(to_launch(&waiting, 0, 10).1, Vec::<String>::new());
    }
}
