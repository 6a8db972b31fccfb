//! Progress as a stream of events: each step of `up` or `down` reports that it started, then
//! that it is done, skipped (the resource already existed, or was already gone) or failed,
//! with its elapsed time. The command line prints them; the console draws them.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The steps of `up`, in the order the plan lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Build the server binary and the function's `bootstrap`.
    Build,
    ImagesBucket,
    ArtifactsBucket,
    /// The pipeline's buckets (`--with pipeline`): where uploads land, where variants go.
    UploadsBucket,
    ProcessedBucket,
    Table,
    FunctionLogGroup,
    ServerLogGroup,
    ResizerLogGroup,
    LambdaRole,
    ServerRole,
    ResizerRole,
    SecurityGroup,
    /// Look up the latest Amazon Linux 2023 image.
    Image,
    /// Upload the server binary and its environment file.
    ServerArtifacts,
    /// Launch the instance and wait for its address.
    Instance,
    /// Wait until the server answers `/health`.
    ServerHealth,
    /// Create the function and wait until it is Active.
    Function,
    /// Create the resizer function and wait until it is Active.
    Resizer,
    /// Allow S3 to invoke the resizer, then point the uploads bucket's notification at it.
    ResizerTrigger,
    /// The job-worker variant's (`--with jobs`) inputs and outputs, and its table with a
    /// `NEW_IMAGE` stream.
    JobsBucket,
    JobsTable,
    SubmitLogGroup,
    LauncherLogGroup,
    SubmitRole,
    LauncherRole,
    /// The workers' role and instance profile.
    WorkerRole,
    /// Upload the worker binary.
    WorkerArtifacts,
    /// Create the submit function and wait until it is Active.
    Submit,
    /// Create the launcher function and wait until it is Active.
    Launcher,
    /// Point the jobs table's stream at the launcher.
    LauncherMapping,
    /// The HTTP API: routes to the submit function, the `$default` stage, the permission.
    JobsApi,
}

impl Step {
    pub const ALL: [Step; 32] = [
        Step::Build,
        Step::ImagesBucket,
        Step::ArtifactsBucket,
        Step::UploadsBucket,
        Step::ProcessedBucket,
        Step::Table,
        Step::FunctionLogGroup,
        Step::ServerLogGroup,
        Step::ResizerLogGroup,
        Step::LambdaRole,
        Step::ServerRole,
        Step::ResizerRole,
        Step::SecurityGroup,
        Step::Image,
        Step::ServerArtifacts,
        Step::Instance,
        Step::ServerHealth,
        Step::Function,
        Step::Resizer,
        Step::ResizerTrigger,
        Step::JobsBucket,
        Step::JobsTable,
        Step::SubmitLogGroup,
        Step::LauncherLogGroup,
        Step::SubmitRole,
        Step::LauncherRole,
        Step::WorkerRole,
        Step::WorkerArtifacts,
        Step::Submit,
        Step::Launcher,
        Step::LauncherMapping,
        Step::JobsApi,
    ];

    /// True for the steps only a stack with the event-driven pipeline has.
    pub fn is_pipeline(self) -> bool {
        matches!(
            self,
            Step::UploadsBucket
                | Step::ProcessedBucket
                | Step::ResizerLogGroup
                | Step::ResizerRole
                | Step::Resizer
                | Step::ResizerTrigger
        )
    }

    /// True for the steps only a stack with the job-worker variant has.
    pub fn is_jobs(self) -> bool {
        self >= Step::JobsBucket
    }

    /// The steps of a stack, with or without the pipeline and the jobs, in order.
    pub fn of_stack(pipeline: bool, jobs: bool) -> Vec<Step> {
        Self::ALL
            .into_iter()
            .filter(|step| pipeline || !step.is_pipeline())
            .filter(|step| jobs || !step.is_jobs())
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Build => "build",
            Step::ImagesBucket => "images-bucket",
            Step::ArtifactsBucket => "artifacts-bucket",
            Step::UploadsBucket => "uploads-bucket",
            Step::ProcessedBucket => "processed-bucket",
            Step::ResizerLogGroup => "resizer-log-group",
            Step::ResizerRole => "resizer-role",
            Step::Resizer => "resizer",
            Step::ResizerTrigger => "resizer-trigger",
            Step::Table => "table",
            Step::FunctionLogGroup => "function-log-group",
            Step::ServerLogGroup => "server-log-group",
            Step::LambdaRole => "lambda-role",
            Step::ServerRole => "server-role",
            Step::SecurityGroup => "security-group",
            Step::Image => "image",
            Step::ServerArtifacts => "server-artifacts",
            Step::Instance => "instance",
            Step::ServerHealth => "server-health",
            Step::Function => "function",
            Step::JobsBucket => "jobs-bucket",
            Step::JobsTable => "jobs-table",
            Step::SubmitLogGroup => "submit-log-group",
            Step::LauncherLogGroup => "launcher-log-group",
            Step::SubmitRole => "submit-role",
            Step::LauncherRole => "launcher-role",
            Step::WorkerRole => "worker-role",
            Step::WorkerArtifacts => "worker-artifacts",
            Step::Submit => "submit",
            Step::Launcher => "launcher",
            Step::LauncherMapping => "launcher-mapping",
            Step::JobsApi => "jobs-api",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.name() == name)
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    /// Still under way, waiting for AWS: a retry after an error AWS sends while something
    /// propagates, or a resource that has a state to leave (an instance booting, a function
    /// Pending). The detail says which.
    Waiting,
    /// Created, deleted, updated or looked up.
    Done,
    /// Nothing to do: the resource already existed (up) or was already gone (down).
    Skipped,
    Failed,
}

/// One event of `up` or `down`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEvent {
    pub stack: String,
    /// A step of `up` (`images-bucket`) or a deletion of `down` (`delete bucket`).
    pub step: String,
    /// The resource the step is about, if any.
    pub resource: String,
    pub status: StepStatus,
    pub elapsed_ms: u64,
    /// What happened, or why it failed.
    pub detail: String,
}

impl StepEvent {
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms)
    }
}

/// Receives every event, from whichever task the step runs on.
pub type Reporter = Arc<dyn Fn(StepEvent) + Send + Sync>;

/// A reporter that drops every event.
pub fn silent() -> Reporter {
    Arc::new(|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_and_are_unique() {
        let mut names: Vec<_> = Step::ALL.iter().map(|s| s.name()).collect();
        for step in Step::ALL {
            assert_eq!(Step::parse(step.name()), Some(step));
            let json = serde_json::to_string(&step).expect("serializes");
            assert_eq!(json, format!("\"{}\"", step.name()));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Step::ALL.len());
        assert_eq!(Step::parse("nope"), None);
    }
}
