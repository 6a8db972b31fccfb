//! The stack described before anything is touched: its settings and, for each step of `up`,
//! the resource it makes with its name and settings. `up --dry-run` prints this plan, and `up`
//! creates exactly what it lists.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::{StackId, StackNames};
use super::progress::Step;

/// What a user may choose about a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSettings {
    pub region: String,
    pub instance_type: String,
    /// The instance terminates itself this long after boot.
    pub ttl_seconds: u64,
    pub server_port: u16,
    pub function_memory_mb: i32,
    pub function_timeout_seconds: i32,
    pub log_retention_days: i32,
    /// Who may reach the server port. The function runs outside any VPC, so on AWS it calls
    /// the instance's public address; the bearer token guards the server.
    pub ingress_cidr: String,
    /// The event-driven pipeline (`up --with pipeline`): uploads and processed buckets, the
    /// resizer function and the notification that runs it. Stacks recorded before it existed
    /// read as without.
    #[serde(default)]
    pub pipeline: bool,
    /// The job-worker variant (`up --with jobs`): the jobs API, table and bucket, the submit
    /// and launcher functions, and a worker instance per job. Stacks recorded before it
    /// existed read as without.
    #[serde(default)]
    pub jobs: bool,
    /// The most job workers running at once; the rest wait QUEUED.
    #[serde(default = "default_worker_cap")]
    pub worker_cap: u32,
    /// How a burstable (T family) instance pays for CPU beyond its baseline. `standard`
    /// unless asked: a `t3` launched without a credit specification runs `unlimited`, and a
    /// long benchmark then adds surplus-credit charges to the bill.
    #[serde(default)]
    pub cpu_credits: CpuCredits,
}

/// A burstable instance's CPU credit option (EC2's `CreditSpecification.CpuCredits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuCredits {
    /// Throttled to the baseline once the earned credits are spent; never billed extra.
    #[default]
    Standard,
    /// Bursts as long as it likes; surplus credits are billed.
    Unlimited,
}

impl CpuCredits {
    /// The value EC2, CloudFormation and Terraform take.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuCredits::Standard => "standard",
            CpuCredits::Unlimited => "unlimited",
        }
    }
}

/// Whether `instance_type` is burstable (T2, T3, T3a, T4g): only those take a credit
/// specification, and EC2 refuses one for any other type.
pub fn is_burstable(instance_type: &str) -> bool {
    matches!(
        instance_type.split('.').next(),
        Some("t2" | "t3" | "t3a" | "t4g")
    )
}

impl StackSettings {
    /// The credit specification the instance is launched with: none for a type that is not
    /// burstable.
    pub fn credit_specification(&self) -> Option<CpuCredits> {
        is_burstable(&self.instance_type).then_some(self.cpu_credits)
    }
}

pub const DEFAULT_TTL: Duration = Duration::from_secs(2 * 3600);

/// Workers running at once unless asked otherwise: three `t3.micro` cost about 3 cents an
/// hour, and the account's default vCPU quota for new accounts is far above six.
pub const DEFAULT_WORKER_CAP: u32 = 3;

fn default_worker_cap() -> u32 {
    DEFAULT_WORKER_CAP
}

impl StackSettings {
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            instance_type: "t3.micro".into(),
            ttl_seconds: DEFAULT_TTL.as_secs(),
            server_port: 8080,
            function_memory_mb: 256,
            function_timeout_seconds: 30,
            log_retention_days: 7,
            ingress_cidr: "0.0.0.0/0".into(),
            pipeline: false,
            jobs: false,
            worker_cap: DEFAULT_WORKER_CAP,
            cpu_credits: CpuCredits::Standard,
        }
    }
}

/// Object keys of the server's artifacts in the artifacts bucket.
pub const SERVER_BINARY_KEY: &str = "server/hybridlab-ec2-server";
pub const SERVER_ENV_KEY: &str = "server/server.env";
/// The worker binary's key in the artifacts bucket, which every job's instance fetches.
pub const WORKER_BINARY_KEY: &str = "worker/hybridlab-worker";

/// The submit function answers from one row or one scan: the smallest memory does.
pub const SUBMIT_MEMORY_MB: i32 = 128;
pub const SUBMIT_TIMEOUT_SECONDS: i32 = 10;
/// The launcher scans the table and calls RunInstances once per job it launches.
pub const LAUNCHER_MEMORY_MB: i32 = 256;
pub const LAUNCHER_TIMEOUT_SECONDS: i32 = 60;
/// How often a worker beats, and how long it may stay silent before its job fails: four
/// missed beats, so one slow write does not fail a healthy job.
pub const WORKER_HEARTBEAT_SECONDS: u64 = 15;
pub const JOB_LEASE_SECONDS: u64 = 60;
/// The launcher's mapping: inserts launch a job; a job that ends frees a worker for the
/// queue. The second pattern keeps a worker's own RUNNING updates and heartbeats away.
pub const LAUNCHER_FILTERS: [&str; 2] = [
    r#"{"eventName": ["INSERT"]}"#,
    r#"{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["SUCCEEDED", "FAILED", "CANCELLED"]}}}}"#,
];
/// The batch the launcher gets: a handful of records is one scan of the table either way.
pub const LAUNCHER_BATCH_SIZE: i32 = 10;
/// A launcher that fails (EC2 refusing, a throttle) sees the batch twice more, then the
/// records are given up: the next insert or ending job plans again from the table.
pub const LAUNCHER_RETRIES: i32 = 2;
/// The HTTP API's routes, all to the submit function.
pub const JOBS_ROUTES: [&str; 3] = ["POST /jobs", "GET /jobs/{id}", "GET /jobs"];
/// The statement id of the API's invoke permission on the submit function.
pub const JOBS_API_PERMISSION_ID: &str = "hybridlab-jobs-api";

/// One resource `up` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedResource {
    pub step: Step,
    /// `s3:bucket`, `iam:role`, ...; empty for steps that make nothing in AWS.
    pub kind: &'static str,
    pub name: String,
    pub settings: Vec<(&'static str, String)>,
}

/// Everything `up` will do for stack `id`, step by step.
pub fn plan(id: &StackId, settings: &StackSettings) -> Vec<PlannedResource> {
    let names = StackNames::new(id);
    let tag = format!("hybridlab:stack={id}");
    let bucket = |versioning: &str| {
        vec![
            ("region", settings.region.clone()),
            ("public access", "all four blocks on".to_owned()),
            ("encryption", "SSE-S3 (AES256)".to_owned()),
            ("versioning", versioning.to_owned()),
            ("tags", tag.clone()),
        ]
    };
    let log_group = || {
        vec![
            ("retention", format!("{} days", settings.log_retention_days)),
            ("tags", tag.clone()),
        ]
    };
    let resource = |step, kind, name: &str, settings| PlannedResource {
        step,
        kind,
        name: name.to_owned(),
        settings,
    };
    let mut resources = vec![
        resource(
            Step::Build,
            "",
            match (settings.pipeline, settings.jobs) {
                (false, false) => "hybridlab-ec2-server, bootstrap",
                (true, false) => "hybridlab-ec2-server, bootstrap (proxy), bootstrap (resizer)",
                (false, true) => {
                    "hybridlab-ec2-server, hybridlab-worker, bootstrap (proxy, submit, launcher)"
                }
                (true, true) => {
                    "hybridlab-ec2-server, hybridlab-worker, bootstrap (proxy, resizer, submit, launcher)"
                }
            },
            vec![(
                "packaging",
                "bootstrap.zip for provided.al2023 x86_64".into(),
            )],
        ),
        resource(
            Step::ImagesBucket,
            "s3:bucket",
            &names.images_bucket,
            bucket("enabled"),
        ),
        resource(
            Step::ArtifactsBucket,
            "s3:bucket",
            &names.artifacts_bucket,
            bucket("off"),
        ),
        resource(
            Step::Table,
            "dynamodb:table",
            &names.table,
            vec![
                ("billing", "on demand (PAY_PER_REQUEST)".into()),
                ("partition key", "image_id (S)".into()),
                ("tags", tag.clone()),
            ],
        ),
        resource(
            Step::FunctionLogGroup,
            "logs:log-group",
            &names.function_log_group,
            log_group(),
        ),
        resource(
            Step::ServerLogGroup,
            "logs:log-group",
            &names.server_log_group,
            log_group(),
        ),
        resource(
            Step::LambdaRole,
            "iam:role",
            &names.lambda_role,
            vec![
                ("trust", "lambda.amazonaws.com".into()),
                (
                    "allows",
                    format!(
                        "logs:CreateLogStream, logs:PutLogEvents on {}",
                        names.function_log_group
                    ),
                ),
                ("tags", tag.clone()),
            ],
        ),
        resource(
            Step::ServerRole,
            "iam:role+instance-profile",
            &names.server_role,
            vec![
                ("trust", "ec2.amazonaws.com".into()),
                (
                    "allows",
                    format!(
                        "s3 objects in {} and {}/server, dynamodb rows of {}, logs of {}",
                        names.images_bucket,
                        names.artifacts_bucket,
                        names.table,
                        names.server_log_group
                    ),
                ),
                ("tags", tag.clone()),
            ],
        ),
        resource(
            Step::SecurityGroup,
            "ec2:security-group",
            &names.security_group,
            vec![
                ("vpc", "the region's default VPC".into()),
                (
                    "ingress",
                    format!(
                        "tcp {} from {}",
                        settings.server_port, settings.ingress_cidr
                    ),
                ),
                ("tags", tag.clone()),
            ],
        ),
        resource(
            Step::Image,
            "",
            "latest Amazon Linux 2023 x86_64",
            vec![(
                "lookup",
                "DescribeImages owner amazon, name al2023-ami-2023.*-kernel-*-x86_64".into(),
            )],
        ),
        resource(
            Step::ServerArtifacts,
            "s3:object",
            &format!("s3://{}/{SERVER_BINARY_KEY}", names.artifacts_bucket),
            vec![(
                "environment file",
                format!("s3://{}/{SERVER_ENV_KEY}", names.artifacts_bucket),
            )],
        ),
        resource(
            Step::Instance,
            "ec2:instance",
            &names.instance,
            vec![
                ("type", settings.instance_type.clone()),
                (
                    "cpu credits",
                    match settings.credit_specification() {
                        Some(CpuCredits::Standard) => {
                            "standard (throttled at the baseline, no surplus charges)".into()
                        }
                        Some(CpuCredits::Unlimited) => format!(
                            "unlimited (bursts beyond the baseline are billed: up to {})",
                            super::cost::surplus_text(&settings.instance_type)
                        ),
                        None => "none (not a burstable type)".into(),
                    },
                ),
                ("metadata", "IMDSv2 required".into()),
                ("shutdown behaviour", "terminate".into()),
                (
                    "ttl",
                    format!(
                        "terminates itself {} after its first boot (a deadline on disk and a persistent systemd timer: a reboot does not reset it)",
                        human_seconds(settings.ttl_seconds)
                    ),
                ),
                (
                    "user-data",
                    "fetch server from artifacts bucket, systemd unit".into(),
                ),
                ("tags", format!("{tag}, hybridlab:role=image-server")),
            ],
        ),
        resource(
            Step::ServerHealth,
            "",
            &format!("http://<instance>:{}/health", settings.server_port),
            vec![],
        ),
        resource(
            Step::Function,
            "lambda:function",
            &names.function,
            vec![
                ("runtime", "provided.al2023, x86_64".into()),
                ("memory", format!("{} MB", settings.function_memory_mb)),
                (
                    "timeout",
                    format!("{} s", settings.function_timeout_seconds),
                ),
                (
                    "environment",
                    "EC2_ENDPOINT (https), HYBRIDLAB_TOKEN (random per stack), EC2_CERT_SHA256 (the server's certificate, made per stack)".into(),
                ),
                ("tags", tag.clone()),
            ],
        ),
    ];
    if settings.pipeline {
        resources.extend(pipeline_plan(&names, settings, &tag));
    }
    if settings.jobs {
        resources.extend(jobs_plan(&names, settings, &tag));
    }
    resources.sort_by_key(|resource| resource.step);
    resources
}

/// The resources `--with jobs` adds.
fn jobs_plan(names: &StackNames, settings: &StackSettings, tag: &str) -> Vec<PlannedResource> {
    let resource =
        |step, kind, name: &str, settings: Vec<(&'static str, String)>| PlannedResource {
            step,
            kind,
            name: name.to_owned(),
            settings,
        };
    let log_group = |step, name: &str| {
        resource(
            step,
            "logs:log-group",
            name,
            vec![
                ("retention", format!("{} days", settings.log_retention_days)),
                ("tags", tag.to_owned()),
            ],
        )
    };
    let function = |step, name: &str, memory: i32, timeout: i32, environment: &str| {
        resource(
            step,
            "lambda:function",
            name,
            vec![
                ("runtime", "provided.al2023, x86_64".into()),
                ("memory", format!("{memory} MB")),
                ("timeout", format!("{timeout} s")),
                ("environment", environment.to_owned()),
                ("tags", tag.to_owned()),
            ],
        )
    };
    vec![
        resource(
            Step::JobsBucket,
            "s3:bucket",
            &names.jobs_bucket,
            vec![
                ("purpose", "each job's input (jobs/<id>/input, PUT by the client with a presigned URL) and outputs (jobs/<id>/output/...)".into()),
                ("region", settings.region.clone()),
                ("public access", "all four blocks on".to_owned()),
                ("encryption", "SSE-S3 (AES256)".to_owned()),
                ("versioning", "off".to_owned()),
                ("tags", tag.to_owned()),
            ],
        ),
        resource(
            Step::JobsTable,
            "dynamodb:table",
            &names.jobs_table,
            vec![
                ("billing", "on demand (PAY_PER_REQUEST)".into()),
                ("partition key", format!("{} (S)", hybridlab_wire::job::JOB_KEY_ATTRIBUTE)),
                ("stream", "NEW_IMAGE".into()),
                ("tags", tag.to_owned()),
            ],
        ),
        log_group(Step::SubmitLogGroup, &names.submit_log_group),
        log_group(Step::LauncherLogGroup, &names.launcher_log_group),
        resource(
            Step::SubmitRole,
            "iam:role",
            &names.submit_role,
            vec![
                ("trust", "lambda.amazonaws.com".into()),
                (
                    "allows",
                    format!(
                        "put, get, scan (and fail a silent job's) rows of {}, presign PUTs to {}/jobs/*/input, logs of {}",
                        names.jobs_table, names.jobs_bucket, names.submit_log_group
                    ),
                ),
                ("tags", tag.to_owned()),
            ],
        ),
        resource(
            Step::LauncherRole,
            "iam:role",
            &names.launcher_role,
            vec![
                ("trust", "lambda.amazonaws.com".into()),
                (
                    "allows",
                    format!(
                        "read the stream of {table}, scan and update its rows, RunInstances tagged hybridlab:stack, TerminateInstances of the stack's, PassRole {} to EC2, logs of {}",
                        names.worker_role,
                        names.launcher_log_group,
                        table = names.jobs_table
                    ),
                ),
                ("tags", tag.to_owned()),
            ],
        ),
        resource(
            Step::WorkerRole,
            "iam:role+instance-profile",
            &names.worker_role,
            vec![
                ("trust", "ec2.amazonaws.com".into()),
                (
                    "allows",
                    format!(
                        "read {}/{WORKER_BINARY_KEY} and {bucket}/jobs/*/input, write {bucket}/jobs/*/output/*, get and update rows of {}",
                        names.artifacts_bucket,
                        names.jobs_table,
                        bucket = names.jobs_bucket
                    ),
                ),
                ("tags", tag.to_owned()),
            ],
        ),
        resource(
            Step::WorkerArtifacts,
            "s3:object",
            &format!("s3://{}/{WORKER_BINARY_KEY}", names.artifacts_bucket),
            vec![],
        ),
        function(
            Step::Submit,
            &names.submit,
            SUBMIT_MEMORY_MB,
            SUBMIT_TIMEOUT_SECONDS,
            "HYBRIDLAB_JOBS_TABLE, HYBRIDLAB_JOBS_BUCKET, HYBRIDLAB_TOKEN (the stack's), HYBRIDLAB_LEASE_SECONDS",
        ),
        function(
            Step::Launcher,
            &names.launcher,
            LAUNCHER_MEMORY_MB,
            LAUNCHER_TIMEOUT_SECONDS,
            &format!(
                "the jobs table and bucket, the worker's binary, profile, AMI and type ({}), a cap of {} workers, the TTL ({})",
                settings.instance_type,
                settings.worker_cap,
                human_seconds(settings.ttl_seconds)
            ),
        ),
        resource(
            Step::LauncherMapping,
            "lambda:event-source-mapping",
            &names.launcher,
            vec![
                ("source", format!("the stream of {}", names.jobs_table)),
                ("filters", "inserts, and jobs that ended (SUCCEEDED, FAILED, CANCELLED)".into()),
                ("batch", "up to 10 records, 2 retries, bisect on error".into()),
            ],
        ),
        resource(
            Step::JobsApi,
            "apigateway:http-api",
            &names.jobs_api,
            vec![
                ("routes", format!("{} to {}", JOBS_ROUTES.join(", "), names.submit)),
                ("stage", "$default, auto-deployed".into()),
                ("auth", "the stack's bearer token, checked by the function".into()),
                ("tags", tag.to_owned()),
            ],
        ),
    ]
}

/// The resources `--with pipeline` adds.
fn pipeline_plan(names: &StackNames, settings: &StackSettings, tag: &str) -> Vec<PlannedResource> {
    let bucket = |step, name: &str, purpose: &str| PlannedResource {
        step,
        kind: "s3:bucket",
        name: name.to_owned(),
        settings: vec![
            ("purpose", purpose.to_owned()),
            ("region", settings.region.clone()),
            ("public access", "all four blocks on".to_owned()),
            ("encryption", "SSE-S3 (AES256)".to_owned()),
            ("versioning", "enabled".to_owned()),
            ("tags", tag.to_owned()),
        ],
    };
    vec![
        bucket(
            Step::UploadsBucket,
            &names.uploads_bucket,
            "uploads (uploads/<image_id>/...), whose notification runs the resizer; CORS lets a browser PUT with a presigned URL",
        ),
        bucket(
            Step::ProcessedBucket,
            &names.processed_bucket,
            "the resizer's variants (images/<image_id>/...); no notification",
        ),
        PlannedResource {
            step: Step::ResizerLogGroup,
            kind: "logs:log-group",
            name: names.resizer_log_group.clone(),
            settings: vec![
                ("retention", format!("{} days", settings.log_retention_days)),
                ("tags", tag.to_owned()),
            ],
        },
        PlannedResource {
            step: Step::ResizerRole,
            kind: "iam:role",
            name: names.resizer_role.clone(),
            settings: vec![
                ("trust", "lambda.amazonaws.com".into()),
                (
                    "allows",
                    format!(
                        "read (and list) {}/uploads/*, write {}/images/*, update rows of {}, logs of {}",
                        names.uploads_bucket,
                        names.processed_bucket,
                        names.table,
                        names.resizer_log_group
                    ),
                ),
                ("tags", tag.to_owned()),
            ],
        },
        PlannedResource {
            step: Step::Resizer,
            kind: "lambda:function",
            name: names.resizer.clone(),
            settings: vec![
                ("runtime", "provided.al2023, x86_64".into()),
                ("memory", format!("{} MB", RESIZER_MEMORY_MB)),
                ("timeout", format!("{} s", RESIZER_TIMEOUT_SECONDS)),
                (
                    "environment",
                    "HYBRIDLAB_TABLE, HYBRIDLAB_PROCESSED_BUCKET".into(),
                ),
                ("tags", tag.to_owned()),
            ],
        },
        PlannedResource {
            step: Step::ResizerTrigger,
            kind: "s3:notification",
            name: names.uploads_bucket.clone(),
            settings: vec![
                (
                    "permission",
                    format!(
                        "lambda:InvokeFunction for s3.amazonaws.com from {} (this account)",
                        names.uploads_bucket
                    ),
                ),
                (
                    "notification",
                    format!(
                        "s3:ObjectCreated:* with prefix {UPLOADS_PREFIX} to {}",
                        names.resizer
                    ),
                ),
            ],
        },
    ]
}

/// The key prefix of uploads, and the only prefix whose new objects run the resizer.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// The resizer decodes a 12-megapixel photo and encodes three variants; Lambda gives CPU in
/// proportion to memory, and 1024 MB is a little over half a vCPU.
pub const RESIZER_MEMORY_MB: i32 = 1024;
pub const RESIZER_TIMEOUT_SECONDS: i32 = 60;

/// `2h`, `90m`, `45s`.
pub fn human_seconds(seconds: u64) -> String {
    if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The stack's secrets as a target writes them: their values (`up`), or the target's
/// references to them (a template's parameters, a module's variables). The server and the
/// function share the token; the server holds the certificate and its key; the function pins
/// the certificate's fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecretValues {
    pub token: String,
    /// The server's TLS certificate, base64 of its DER.
    pub tls_certificate: String,
    /// The certificate's private key, base64 of its PKCS #8 DER.
    pub tls_key: String,
    /// The certificate's SHA-256 fingerprint, as the proxy's `EC2_CERT_SHA256` takes it.
    pub cert_sha256: String,
}

impl std::fmt::Debug for ServerSecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token nor the key, not even in a debug log.
        f.debug_struct("ServerSecretValues")
            .field("cert_sha256", &self.cert_sha256)
            .finish_non_exhaustive()
    }
}

/// The server's environment file (`KEY=VALUE` lines), as the instance's systemd unit loads it.
pub fn server_env_file(
    names: &StackNames,
    settings: &StackSettings,
    secrets: &ServerSecretValues,
) -> String {
    use hybridlab_wire::tls::{TLS_CERT_ENV, TLS_KEY_ENV};
    use hybridlab_wire::token::TOKEN_ENV;
    let mut env = format!(
        "# hybridlab image server configuration\n\
         HYBRIDLAB_BUCKET={}\n\
         HYBRIDLAB_TABLE={}\n\
         {TOKEN_ENV}={}\n\
         AWS_REGION={}\n",
        names.images_bucket, names.table, secrets.token, settings.region
    );
    if settings.pipeline {
        env.push_str(&format!(
            "HYBRIDLAB_UPLOADS_BUCKET={}\nHYBRIDLAB_PROCESSED_BUCKET={}\n",
            names.uploads_bucket, names.processed_bucket
        ));
    }
    env.push_str(&format!(
        "{TLS_CERT_ENV}={}\n{TLS_KEY_ENV}={}\n",
        secrets.tls_certificate, secrets.tls_key
    ));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_one_entry_per_step_in_order() {
        let id = StackId::parse("abcd1234").expect("valid");
        let plan = plan(&id, &StackSettings::new("eu-west-1"));
        let steps: Vec<Step> = plan.iter().map(|r| r.step).collect();
        assert_eq!(steps, Step::of_stack(false, false));
        let with_pipeline = super::plan(
            &id,
            &StackSettings {
                pipeline: true,
                ..StackSettings::new("eu-west-1")
            },
        );
        let steps: Vec<Step> = with_pipeline.iter().map(|r| r.step).collect();
        assert_eq!(steps, Step::of_stack(true, false));
        let with_both = super::plan(
            &id,
            &StackSettings {
                pipeline: true,
                jobs: true,
                ..StackSettings::new("eu-west-1")
            },
        );
        let steps: Vec<Step> = with_both.iter().map(|r| r.step).collect();
        assert_eq!(steps, Step::ALL.to_vec());
        let names = StackNames::new(&id);
        let named: Vec<&str> = plan.iter().map(|r| r.name.as_str()).collect();
        for name in [
            &names.images_bucket,
            &names.table,
            &names.function,
            &names.lambda_role,
        ] {
            assert!(
                named.contains(&name.as_str()),
                "{name} missing from the plan"
            );
        }
        // Every AWS resource carries the stack tag.
        for resource in with_both.iter().filter(|r| {
            !r.kind.is_empty()
                && ![
                    "s3:object",
                    "s3:notification",
                    "lambda:event-source-mapping",
                ]
                .contains(&r.kind)
        }) {
            assert!(
                resource.settings.iter().any(
                    |(key, value)| *key == "tags" && value.contains("hybridlab:stack=abcd1234")
                ),
                "{} is not tagged",
                resource.name
            );
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_seconds(7200), "2h");
        assert_eq!(human_seconds(5400), "90m");
        assert_eq!(human_seconds(45), "45s");
    }

    #[test]
    fn the_env_file_names_the_stack_resources() {
        let id = StackId::parse("abcd1234").expect("valid");
        let names = StackNames::new(&id);
        let secrets = ServerSecretValues {
            token: "secret".into(),
            tls_certificate: "Y2VydA==".into(),
            tls_key: "a2V5".into(),
            cert_sha256: "00".into(),
        };
        let env = server_env_file(&names, &StackSettings::new("us-east-1"), &secrets);
        let parsed = hybridlab_wire::launch::parse_env_file(&env);
        assert!(parsed.contains(&("HYBRIDLAB_BUCKET".into(), names.images_bucket.clone())));
        assert!(parsed.contains(&("HYBRIDLAB_TOKEN".into(), "secret".into())));
        assert!(parsed.contains(&("HYBRIDLAB_TLS_CERT".into(), "Y2VydA==".into())));
        assert!(parsed.contains(&("HYBRIDLAB_TLS_KEY".into(), "a2V5".into())));
        assert!(!env.contains("HYBRIDLAB_UPLOADS_BUCKET"));
        let settings = StackSettings {
            pipeline: true,
            ..StackSettings::new("us-east-1")
        };
        let parsed =
            hybridlab_wire::launch::parse_env_file(&server_env_file(&names, &settings, &secrets));
        assert!(parsed.contains(&(
            "HYBRIDLAB_UPLOADS_BUCKET".into(),
            names.uploads_bucket.clone()
        )));
        assert!(parsed.contains(&(
            "HYBRIDLAB_PROCESSED_BUCKET".into(),
            names.processed_bucket.clone()
        )));
    }
}
