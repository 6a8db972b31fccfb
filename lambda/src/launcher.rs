//! The launcher of the job-worker variant: the jobs table's stream runs it (inserted jobs, and
//! jobs that ended, which free a worker). It moves each waiting job to LAUNCHING with a
//! conditional update before `RunInstances` (stream delivery is at least once: a duplicated
//! record fails the condition and launches nothing), starts at most the stack's cap of
//! workers at once (the rest wait QUEUED, oldest first), and fails the RUNNING jobs whose
//! worker went silent past its lease, terminating their instances.
//!
//! [`plan`] decides from the table's jobs and is plain; [`Launcher::handle`] does the calls.

use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataOptionsRequest, InstanceType,
    ResourceType, ShutdownBehavior, Tag, TagSpecification,
};
use base64::Engine as _;
use hybridlab_wire::job::{self, Job, JobStatus};
use hybridlab_wire::job_item::{self, Change};
use hybridlab_wire::launch::{WorkerLaunch, launcher_env};
use hybridlab_wire::tags::{JOB_TAG, ROLE_JOB_WORKER, ROLE_TAG, STACK_TAG};
use hybridlab_wire::transition::ConditionalUpdate;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// What the launcher does on one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Jobs to launch now, oldest first.
    pub launch: Vec<String>,
    /// SUBMITTED jobs that wait for a worker.
    pub queue: Vec<String>,
    /// RUNNING jobs whose lease ran out, with their instance.
    pub expire: Vec<(String, Option<String>)>,
}

/// Decides from every job of the table (as read now) and the time (Unix seconds).
pub fn plan(jobs: &[Job], cap: usize, now_epoch_s: i64) -> Plan {
    let expire: Vec<(String, Option<String>)> = jobs
        .iter()
        .filter(|job| job.lease_expired(now_epoch_s))
        .map(|job| (job.job_id.clone(), job.instance_id.clone()))
        .collect();
    let holding = jobs
        .iter()
        .filter(|job| job.status.holds_a_worker())
        .filter(|job| !expire.iter().any(|(id, _)| id == &job.job_id))
        .count();
    let mut waiting: Vec<&Job> = jobs
        .iter()
        .filter(|job| matches!(job.status, JobStatus::Submitted | JobStatus::Queued))
        .collect();
    waiting.sort_by(|a, b| (&a.submitted_at, &a.job_id).cmp(&(&b.submitted_at, &b.job_id)));
    let ids: Vec<String> = waiting.iter().map(|job| job.job_id.clone()).collect();
    let (launch, rest) = job::to_launch(&ids, holding, cap);
    let queue = rest
        .into_iter()
        .filter(|id| {
            waiting
                .iter()
                .any(|job| &job.job_id == id && job.status == JobStatus::Submitted)
        })
        .collect();
    Plan {
        launch,
        queue,
        expire,
    }
}

/// The launcher's settings, from its environment.
#[derive(Debug, Clone)]
pub struct LauncherConfig {
    pub stack: String,
    pub region: String,
    pub jobs_table: String,
    pub jobs_bucket: String,
    pub artifact_bucket: String,
    pub worker_binary_key: String,
    /// The worker instance profile's ARN.
    pub worker_profile_arn: String,
    pub image_id: String,
    pub instance_type: String,
    pub security_group_id: Option<String>,
    pub cap: usize,
    pub heartbeat_seconds: u64,
    pub ttl_seconds: u64,
}

impl LauncherConfig {
    pub fn from_env() -> Result<Self, Error> {
        let var = super::required_env;
        let number = |name: &str, default: u64| -> Result<u64, Error> {
            match std::env::var(name) {
                Ok(text) => text
                    .parse()
                    .map_err(|_| format!("{name} is not a number: {text:?}").into()),
                Err(_) => Ok(default),
            }
        };
        Ok(Self {
            stack: var(launcher_env::STACK)?,
            region: var("AWS_REGION")?,
            jobs_table: var(launcher_env::JOBS_TABLE)?,
            jobs_bucket: var(launcher_env::JOBS_BUCKET)?,
            artifact_bucket: var(launcher_env::ARTIFACT_BUCKET)?,
            worker_binary_key: var(launcher_env::WORKER_KEY)?,
            worker_profile_arn: var(launcher_env::WORKER_PROFILE_ARN)?,
            image_id: var(launcher_env::WORKER_IMAGE)?,
            instance_type: var(launcher_env::WORKER_INSTANCE_TYPE)?,
            security_group_id: std::env::var(launcher_env::WORKER_SECURITY_GROUP)
                .ok()
                .filter(|value| !value.is_empty()),
            cap: usize::try_from(number(launcher_env::WORKER_CAP, 3)?.max(1)).unwrap_or(3),
            heartbeat_seconds: number(launcher_env::HEARTBEAT_SECONDS, 15)?,
            ttl_seconds: number(launcher_env::TTL_SECONDS, 3600)?,
        })
    }
}

pub struct Launcher {
    config: LauncherConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    ec2: aws_sdk_ec2::Client,
}

impl Launcher {
    pub async fn from_env(config: LauncherConfig) -> Self {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            config,
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            ec2: aws_sdk_ec2::Client::new(&aws),
        }
    }

    /// Every job of the table (a lab's table is small: a consistent scan is its snapshot).
    async fn jobs(&self) -> Result<Vec<Job>, Error> {
        let rows = job_item::scan_jobs(&self.dynamodb, &self.config.jobs_table, true).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                row.inspect_err(|err| tracing::warn!(error = %err, "a row that is not a job"))
                    .ok()
            })
            .collect())
    }

    /// Applies `update` to job `job_id`; `false` when its condition failed.
    async fn update(&self, job_id: &str, update: ConditionalUpdate) -> Result<bool, Error> {
        Ok(job_item::apply(&self.dynamodb, &self.config.jobs_table, job_id, update).await?)
    }

    /// Handles one batch of stream records: whatever they say, the table decides.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let records = event.payload["Records"].as_array().map_or(0, Vec::len);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let plan = plan(&self.jobs().await?, self.config.cap, now);
        tracing::info!(
            records,
            launch = plan.launch.len(),
            queue = plan.queue.len(),
            expire = plan.expire.len(),
            "plan"
        );
        let at = hybridlab_wire::now_rfc3339();
        for (job_id, instance) in &plan.expire {
            let error = job::LEASE_EXPIRED;
            if self
                .update(
                    job_id,
                    job_item::transition(&Change::Failed { error }, &at, "lease ran out"),
                )
                .await?
                && let Some(instance) = instance
            {
                let _ = self
                    .ec2
                    .terminate_instances()
                    .instance_ids(instance)
                    .send()
                    .await;
            }
        }
        for job_id in &plan.queue {
            self.update(
                job_id,
                job_item::transition(
                    &Change::Queued,
                    &at,
                    "the stack's cap of workers is reached",
                ),
            )
            .await?;
        }
        for job_id in &plan.launch {
            // A duplicated record, or another invocation, took it first: nothing to launch.
            if !self
                .update(
                    job_id,
                    job_item::transition(&Change::Launching, &at, "launching its worker"),
                )
                .await?
            {
                continue;
            }
            match self.run_instance(job_id).await {
                Ok(instance) => {
                    self.update(
                        job_id,
                        job_item::attach_instance(&instance, &hybridlab_wire::now_rfc3339()),
                    )
                    .await?;
                    tracing::info!(job = %job_id, instance = %instance, "worker launched");
                }
                Err(err) => {
                    let error = format!("RunInstances failed: {err}");
                    tracing::warn!(job = %job_id, "{error}");
                    self.update(
                        job_id,
                        job_item::transition(&Change::Failed { error: &error }, &at, "no worker"),
                    )
                    .await?;
                }
            }
        }
        Ok(
            serde_json::json!({"launched": plan.launch, "queued": plan.queue, "expired": plan.expire.len()}),
        )
    }

    async fn run_instance(&self, job_id: &str) -> Result<String, String> {
        let config = &self.config;
        let launch = WorkerLaunch {
            artifact_bucket: config.artifact_bucket.clone(),
            binary_key: config.worker_binary_key.clone(),
            region: config.region.clone(),
            job_id: job_id.to_owned(),
            jobs_table: config.jobs_table.clone(),
            jobs_bucket: config.jobs_bucket.clone(),
            heartbeat_seconds: config.heartbeat_seconds,
            ttl_seconds: config.ttl_seconds,
        };
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key(STACK_TAG).value(&config.stack).build())
            .tags(Tag::builder().key(ROLE_TAG).value(ROLE_JOB_WORKER).build())
            .tags(Tag::builder().key(JOB_TAG).value(job_id).build())
            .tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("hybridlab-worker-{job_id}"))
                    .build(),
            )
            .build();
        let launched = self
            .ec2
            .run_instances()
            .image_id(&config.image_id)
            .instance_type(InstanceType::from(config.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .user_data(base64::engine::general_purpose::STANDARD.encode(launch.render()))
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            .iam_instance_profile(
                IamInstanceProfileSpecification::builder()
                    .arn(&config.worker_profile_arn)
                    .build(),
            )
            .set_security_group_ids(config.security_group_id.clone().map(|id| vec![id]))
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .build(),
            )
            .tag_specifications(tags)
            .client_token(job_id)
            .send()
            .await
            .map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())?;
        launched
            .instances()
            .first()
            .and_then(|instance| instance.instance_id())
            .map(str::to_owned)
            .ok_or_else(|| "RunInstances returned no instance".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::job::JobKind;

    fn job(id: &str, status: JobStatus, submitted: &str, beat: Option<i64>) -> Job {
        Job {
            job_id: id.into(),
            kind: JobKind::AppendText { text: "x".into() },
            status,
            submitted_at: submitted.into(),
            instance_id: status.holds_a_worker().then(|| format!("i-{id}")),
            heartbeat_at: beat,
            launched_at: None,
            lease_seconds: 60,
            input_bytes: None,
            outputs: Vec::new(),
            error: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn the_oldest_waiting_jobs_fill_the_free_workers_and_the_rest_queue() {
        let jobs = vec![
            job("a", JobStatus::Running, "1", Some(1_000)),
            job("b", JobStatus::Submitted, "3", None),
            job("c", JobStatus::Queued, "2", None),
            job("d", JobStatus::Submitted, "4", None),
            job("e", JobStatus::Succeeded, "0", None),
        ];
        let plan = plan(&jobs, 2, 1_010);
        assert_eq!(
            plan.launch,
            vec!["c".to_owned()],
            "one free worker, the oldest waiting job"
        );
        assert_eq!(
            plan.queue,
            vec!["b".to_owned(), "d".to_owned()],
            "QUEUED ones stay"
        );
        assert!(plan.expire.is_empty());
    }

    #[test]
    fn a_silent_worker_frees_its_place_and_its_job_fails() {
        let jobs = vec![
            job("a", JobStatus::Running, "1", Some(1_000)),
            job("b", JobStatus::Submitted, "2", None),
        ];
        let plan = plan(&jobs, 1, 1_061);
        assert_eq!(plan.expire, vec![("a".to_owned(), Some("i-a".to_owned()))]);
        assert_eq!(plan.launch, vec!["b".to_owned()]);
        // A LAUNCHING job holds its place without a heartbeat yet.
        let launching = vec![
            job("a", JobStatus::Launching, "1", None),
            job("b", JobStatus::Submitted, "2", None),
        ];
        let plan = super::plan(&launching, 1, 99_999);
        assert!(plan.launch.is_empty() && plan.expire.is_empty());
        assert_eq!(plan.queue, vec!["b".to_owned()]);
    }
}
