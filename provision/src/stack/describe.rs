//! The stack as typed resources with every setting `up` gives them, built from the stack's
//! names and settings: the Terraform module and the CloudFormation template are rendered from
//! it, and a test holds it, them and the [`plan`](super::plan) to the same set of resources.
//! Nothing here touches AWS; ARNs and names may carry a target's interpolations.

use serde_json::Value;

use super::names::{IAM_PATH, StackNames};
use super::plan::{
    CpuCredits, JOB_LEASE_SECONDS, JOBS_API_PERMISSION_ID, JOBS_ROUTES, LAUNCHER_BATCH_SIZE,
    LAUNCHER_FILTERS, LAUNCHER_MEMORY_MB, LAUNCHER_RETRIES, LAUNCHER_TIMEOUT_SECONDS,
    RESIZER_MEMORY_MB, RESIZER_TIMEOUT_SECONDS, SERVER_BINARY_KEY, SERVER_ENV_KEY,
    SUBMIT_MEMORY_MB, SUBMIT_TIMEOUT_SECONDS, ServerSecretValues, StackSettings, UPLOADS_PREFIX,
    WORKER_BINARY_KEY, WORKER_HEARTBEAT_SECONDS, server_env_file,
};
use super::policy::{
    ArnContext, lambda_policy, launcher_policy, resizer_policy, server_policy, submit_policy,
    trust_policy, worker_policy,
};
use super::progress::Step;
use hybridlab_wire::job::JOB_KEY_ATTRIBUTE;
use hybridlab_wire::launch::{ServerLaunch, launcher_env, submit_env};
use hybridlab_wire::tags::{ROLE_IMAGE_SERVER, ROLE_TAG, STACK_TAG};
use hybridlab_wire::tls::CERT_PIN_ENV;
use hybridlab_wire::token::TOKEN_ENV;

/// The statement id of the resizer's invoke permission and the id of the notification that
/// uses it, so `up` recognises its own.
pub const RESIZER_PERMISSION_ID: &str = "hybridlab-uploads-notification";
pub const RESIZER_NOTIFICATION_ID: &str = "hybridlab-resizer";
/// The event that runs the resizer.
pub const UPLOAD_EVENT: &str = "s3:ObjectCreated:*";
/// The name of each role's one inline policy.
pub const ROLE_POLICY_NAME: &str = "hybridlab-least-privilege";

/// The uploads bucket's CORS rule: the gallery page, served by the instance, PUTs straight
/// to the bucket with a presigned URL. Any origin: the URL itself is the authorisation, and the
/// instance's address is not known when the bucket is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRule {
    pub methods: Vec<&'static str>,
    pub origins: Vec<&'static str>,
    pub headers: Vec<&'static str>,
    pub max_age_seconds: i32,
}

pub fn uploads_cors() -> CorsRule {
    CorsRule {
        methods: vec!["PUT"],
        origins: vec!["*"],
        headers: vec!["content-type", "x-amz-meta-image-id", "if-none-match"],
        max_age_seconds: 3000,
    }
}

/// A private, SSE-S3 encrypted bucket with all four public-access blocks on.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub step: Step,
    pub name: String,
    pub versioned: bool,
    pub cors: Option<CorsRule>,
}

/// An on-demand table keyed by one string attribute: the images' metadata (`image_id`), or
/// the jobs (`job_id`, with a stream of each row's new image, which runs the launcher).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub partition_key: &'static str,
    /// The stream's view type, for a table that has one.
    pub stream: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogGroup {
    pub step: Step,
    pub name: String,
    pub retention_days: i32,
}

/// A role under [`IAM_PATH`] that `service` assumes, with one inline least-privilege policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub step: Step,
    pub name: String,
    pub path: &'static str,
    pub service: &'static str,
    pub trust: Value,
    pub policy: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceProfile {
    pub name: String,
    pub role: String,
}

/// The server's security group in the default VPC: one TCP port open to one CIDR.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub port: u16,
    pub cidr: String,
}

/// The server binary and its environment file in the artifacts bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerArtifacts {
    pub bucket: String,
    pub binary_key: &'static str,
    pub env_key: &'static str,
    /// The file's text; the token and the TLS key are the target's own secrets (see
    /// [`StackDescription::new`]).
    pub env_file: String,
}

/// The image server's instance: IMDSv2 only, terminated (not stopped) when it shuts itself
/// down at the end of its TTL.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    pub instance_type: String,
    /// The credit option of a burstable type (the exports apply it only when the type they
    /// are given is one).
    pub cpu_credits: CpuCredits,
    pub launch: ServerLaunch,
    /// `Name` and the role tag, beside the stack tag.
    pub extra_tags: Vec<(&'static str, String)>,
    /// The AMI's name pattern: the latest Amazon Linux 2023 for x86_64.
    pub image_name_pattern: &'static str,
}

/// Where a function's environment variable gets its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Literal(String),
    /// The server's URL, known once the instance runs.
    ServerUrl,
    /// The stack's bearer token, shared with the server.
    Token,
    /// The SHA-256 fingerprint of the server's certificate, which the proxy pins.
    CertSha256,
    /// The instance type (the server's, and each job worker's).
    InstanceType,
    /// The AMI workers boot: the latest Amazon Linux 2023 for x86_64.
    WorkerImage,
    /// The ARN of the workers' instance profile.
    WorkerProfileArn,
    /// Where the worker binary is: the artifacts bucket for `up` and Terraform, the code
    /// bucket for CloudFormation, which cannot upload into a bucket it makes.
    WorkerBucket,
    WorkerKey,
}

/// Which program a function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Proxy,
    Resizer,
    Submit,
    Launcher,
}

/// A `provided.al2023` x86_64 function whose `bootstrap` is one of the lab's programs.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub step: Step,
    pub name: String,
    pub description: String,
    pub program: Program,
    pub role: String,
    pub log_group: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub environment: Vec<(&'static str, EnvValue)>,
}

/// S3 may invoke the resizer for the uploads bucket of this account, and the bucket's
/// notification runs it for each new object under [`UPLOADS_PREFIX`].
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub bucket: String,
    pub function: String,
    pub permission_id: &'static str,
    pub notification_id: &'static str,
    pub event: &'static str,
    pub prefix: &'static str,
}

/// What `--with pipeline` adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub uploads_bucket: Bucket,
    pub processed_bucket: Bucket,
    pub resizer_log_group: LogGroup,
    pub resizer_role: Role,
    pub resizer: Function,
    pub trigger: Trigger,
}

/// The jobs table's stream runs the launcher: from the oldest record, in small batches,
/// retried and bisected on error, and only for inserts and jobs that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMapping {
    pub function: String,
    pub table: String,
    pub starting_position: &'static str,
    pub batch_size: i32,
    pub maximum_retry_attempts: i32,
    pub bisect_batch_on_function_error: bool,
    /// Lambda's event filter patterns (JSON).
    pub filters: Vec<&'static str>,
}

/// The HTTP API in front of the submit function: a Lambda proxy integration (payload 2.0),
/// its routes, the auto-deployed `$default` stage, and API Gateway's permission to invoke
/// the function from this API only.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpApi {
    pub name: String,
    pub description: String,
    pub function: String,
    pub payload_format_version: &'static str,
    pub routes: Vec<&'static str>,
    pub stage: &'static str,
    pub permission_id: &'static str,
}

/// What `--with jobs` adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Jobs {
    pub bucket: Bucket,
    pub table: Table,
    pub submit_log_group: LogGroup,
    pub launcher_log_group: LogGroup,
    pub submit_role: Role,
    pub launcher_role: Role,
    pub worker_role: Role,
    pub worker_profile: InstanceProfile,
    /// The worker binary's key in the artifacts bucket.
    pub worker_binary_key: &'static str,
    pub submit: Function,
    pub launcher: Function,
    pub mapping: StreamMapping,
    pub api: HttpApi,
}

/// Every resource of one stack with its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StackDescription {
    pub names: StackNames,
    /// The stack tag's value: the stack id, or the target's interpolation of it.
    pub stack_tag: (&'static str, String),
    pub images_bucket: Bucket,
    pub artifacts_bucket: Bucket,
    pub table: Table,
    pub function_log_group: LogGroup,
    pub server_log_group: LogGroup,
    pub lambda_role: Role,
    pub server_role: Role,
    pub instance_profile: InstanceProfile,
    pub security_group: SecurityGroup,
    pub server_artifacts: ServerArtifacts,
    pub instance: Instance,
    pub function: Function,
    pub pipeline: Option<Pipeline>,
    pub jobs: Option<Jobs>,
}

/// The submit function, as `up` deploys it and the exports declare it.
pub fn submit_function(names: &StackNames, stack_id: &str) -> Function {
    Function {
        step: Step::Submit,
        name: names.submit.clone(),
        description: format!("hybridlab stack {stack_id}: the jobs API"),
        program: Program::Submit,
        role: names.submit_role.clone(),
        log_group: names.submit_log_group.clone(),
        memory_mb: SUBMIT_MEMORY_MB,
        timeout_seconds: SUBMIT_TIMEOUT_SECONDS,
        environment: vec![
            (
                submit_env::JOBS_TABLE,
                EnvValue::Literal(names.jobs_table.clone()),
            ),
            (
                submit_env::JOBS_BUCKET,
                EnvValue::Literal(names.jobs_bucket.clone()),
            ),
            (TOKEN_ENV, EnvValue::Token),
            (
                submit_env::LEASE_SECONDS,
                EnvValue::Literal(JOB_LEASE_SECONDS.to_string()),
            ),
        ],
    }
}

/// The launcher function, as `up` deploys it and the exports declare it.
pub fn launcher_function(names: &StackNames, stack_id: &str, settings: &StackSettings) -> Function {
    Function {
        step: Step::Launcher,
        name: names.launcher.clone(),
        description: format!("hybridlab stack {stack_id}: launches a worker for each job"),
        program: Program::Launcher,
        role: names.launcher_role.clone(),
        log_group: names.launcher_log_group.clone(),
        memory_mb: LAUNCHER_MEMORY_MB,
        timeout_seconds: LAUNCHER_TIMEOUT_SECONDS,
        environment: vec![
            (launcher_env::STACK, EnvValue::Literal(stack_id.to_owned())),
            (
                launcher_env::JOBS_TABLE,
                EnvValue::Literal(names.jobs_table.clone()),
            ),
            (
                launcher_env::JOBS_BUCKET,
                EnvValue::Literal(names.jobs_bucket.clone()),
            ),
            (launcher_env::ARTIFACT_BUCKET, EnvValue::WorkerBucket),
            (launcher_env::WORKER_KEY, EnvValue::WorkerKey),
            (launcher_env::WORKER_PROFILE_ARN, EnvValue::WorkerProfileArn),
            (launcher_env::WORKER_IMAGE, EnvValue::WorkerImage),
            (launcher_env::WORKER_INSTANCE_TYPE, EnvValue::InstanceType),
            (
                launcher_env::WORKER_CAP,
                EnvValue::Literal(settings.worker_cap.to_string()),
            ),
            (
                launcher_env::HEARTBEAT_SECONDS,
                EnvValue::Literal(WORKER_HEARTBEAT_SECONDS.to_string()),
            ),
            (
                launcher_env::TTL_SECONDS,
                EnvValue::Literal(settings.ttl_seconds.to_string()),
            ),
        ],
    }
}

impl Function {
    /// The environment with each value that is not a literal given by `resolve`; the first
    /// variable it has no value for is the error.
    pub fn variables(
        &self,
        resolve: impl Fn(&EnvValue) -> Option<String>,
    ) -> Result<std::collections::HashMap<String, String>, &'static str> {
        self.environment
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    EnvValue::Literal(text) => Some(text.clone()),
                    other => resolve(other),
                };
                value.map(|value| ((*key).to_owned(), value)).ok_or(*key)
            })
            .collect()
    }
}

/// One resource as the comparison between the plan and the exports sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceKey {
    pub kind: &'static str,
    pub name: String,
}

impl StackDescription {
    /// The stack whose names end in `names`' suffix, with `settings`; ARNs are built in
    /// `arns` and the server's secrets are `secrets` (each may be a target's interpolation).
    pub fn new(
        names: StackNames,
        stack_id: &str,
        settings: &StackSettings,
        arns: &ArnContext,
        secrets: &ServerSecretValues,
    ) -> Self {
        let bucket = |step, name: &str, versioned| Bucket {
            step,
            name: name.to_owned(),
            versioned,
            cors: None,
        };
        let log_group = |step, name: &str| LogGroup {
            step,
            name: name.to_owned(),
            retention_days: settings.log_retention_days,
        };
        let role = |step, name: &str, service, policy| Role {
            step,
            name: name.to_owned(),
            path: IAM_PATH,
            service,
            trust: trust_policy(service),
            policy,
        };
        let launch = ServerLaunch {
            artifact_bucket: names.artifacts_bucket.clone(),
            binary_key: SERVER_BINARY_KEY.into(),
            env_key: SERVER_ENV_KEY.into(),
            log_group: names.server_log_group.clone(),
            region: settings.region.clone(),
            port: settings.server_port,
            ttl_seconds: settings.ttl_seconds,
        };
        let pipeline = settings.pipeline.then(|| Pipeline {
            uploads_bucket: Bucket {
                cors: Some(uploads_cors()),
                ..bucket(Step::UploadsBucket, &names.uploads_bucket, true)
            },
            processed_bucket: bucket(Step::ProcessedBucket, &names.processed_bucket, true),
            resizer_log_group: log_group(Step::ResizerLogGroup, &names.resizer_log_group),
            resizer_role: role(
                Step::ResizerRole,
                &names.resizer_role,
                "lambda.amazonaws.com",
                resizer_policy(&names, arns),
            ),
            resizer: Function {
                step: Step::Resizer,
                name: names.resizer.clone(),
                description: format!(
                    "hybridlab stack {stack_id}: makes the variants of each upload"
                ),
                program: Program::Resizer,
                role: names.resizer_role.clone(),
                log_group: names.resizer_log_group.clone(),
                memory_mb: RESIZER_MEMORY_MB,
                timeout_seconds: RESIZER_TIMEOUT_SECONDS,
                environment: vec![
                    ("HYBRIDLAB_TABLE", EnvValue::Literal(names.table.clone())),
                    (
                        "HYBRIDLAB_PROCESSED_BUCKET",
                        EnvValue::Literal(names.processed_bucket.clone()),
                    ),
                ],
            },
            trigger: Trigger {
                bucket: names.uploads_bucket.clone(),
                function: names.resizer.clone(),
                permission_id: RESIZER_PERMISSION_ID,
                notification_id: RESIZER_NOTIFICATION_ID,
                event: UPLOAD_EVENT,
                prefix: UPLOADS_PREFIX,
            },
        });
        let jobs = settings.jobs.then(|| Jobs {
            bucket: bucket(Step::JobsBucket, &names.jobs_bucket, false),
            table: Table {
                name: names.jobs_table.clone(),
                partition_key: JOB_KEY_ATTRIBUTE,
                stream: Some("NEW_IMAGE"),
            },
            submit_log_group: log_group(Step::SubmitLogGroup, &names.submit_log_group),
            launcher_log_group: log_group(Step::LauncherLogGroup, &names.launcher_log_group),
            submit_role: role(
                Step::SubmitRole,
                &names.submit_role,
                "lambda.amazonaws.com",
                submit_policy(&names, arns),
            ),
            launcher_role: role(
                Step::LauncherRole,
                &names.launcher_role,
                "lambda.amazonaws.com",
                launcher_policy(&names, arns, stack_id),
            ),
            worker_role: role(
                Step::WorkerRole,
                &names.worker_role,
                "ec2.amazonaws.com",
                worker_policy(&names, arns),
            ),
            worker_profile: InstanceProfile {
                name: names.worker_profile.clone(),
                role: names.worker_role.clone(),
            },
            worker_binary_key: WORKER_BINARY_KEY,
            submit: submit_function(&names, stack_id),
            launcher: launcher_function(&names, stack_id, settings),
            mapping: StreamMapping {
                function: names.launcher.clone(),
                table: names.jobs_table.clone(),
                starting_position: "TRIM_HORIZON",
                batch_size: LAUNCHER_BATCH_SIZE,
                maximum_retry_attempts: LAUNCHER_RETRIES,
                bisect_batch_on_function_error: true,
                filters: LAUNCHER_FILTERS.to_vec(),
            },
            api: HttpApi {
                name: names.jobs_api.clone(),
                description: format!("hybridlab stack {stack_id}: jobs"),
                function: names.submit.clone(),
                payload_format_version: "2.0",
                routes: JOBS_ROUTES.to_vec(),
                stage: "$default",
                permission_id: JOBS_API_PERMISSION_ID,
            },
        });
        Self {
            stack_tag: (STACK_TAG, stack_id.to_owned()),
            images_bucket: bucket(Step::ImagesBucket, &names.images_bucket, true),
            artifacts_bucket: bucket(Step::ArtifactsBucket, &names.artifacts_bucket, false),
            table: Table {
                name: names.table.clone(),
                partition_key: "image_id",
                stream: None,
            },
            function_log_group: log_group(Step::FunctionLogGroup, &names.function_log_group),
            server_log_group: log_group(Step::ServerLogGroup, &names.server_log_group),
            lambda_role: role(
                Step::LambdaRole,
                &names.lambda_role,
                "lambda.amazonaws.com",
                lambda_policy(&names, arns),
            ),
            server_role: role(
                Step::ServerRole,
                &names.server_role,
                "ec2.amazonaws.com",
                server_policy(&names, arns, settings.pipeline),
            ),
            instance_profile: InstanceProfile {
                name: names.instance_profile.clone(),
                role: names.server_role.clone(),
            },
            security_group: SecurityGroup {
                name: names.security_group.clone(),
                description: format!("hybridlab stack {stack_id}: the image server port"),
                port: settings.server_port,
                cidr: settings.ingress_cidr.clone(),
            },
            server_artifacts: ServerArtifacts {
                bucket: names.artifacts_bucket.clone(),
                binary_key: SERVER_BINARY_KEY,
                env_key: SERVER_ENV_KEY,
                env_file: server_env_file(&names, settings, secrets),
            },
            instance: Instance {
                name: names.instance.clone(),
                instance_type: settings.instance_type.clone(),
                cpu_credits: settings.cpu_credits,
                launch,
                extra_tags: vec![
                    ("Name", names.instance.clone()),
                    (ROLE_TAG, ROLE_IMAGE_SERVER.to_owned()),
                ],
                image_name_pattern: "al2023-ami-2023.*-kernel-*-x86_64",
            },
            function: Function {
                step: Step::Function,
                name: names.function.clone(),
                description: format!("hybridlab stack {stack_id}: proxy to the image server"),
                program: Program::Proxy,
                role: names.lambda_role.clone(),
                log_group: names.function_log_group.clone(),
                memory_mb: settings.function_memory_mb,
                timeout_seconds: settings.function_timeout_seconds,
                environment: vec![
                    ("EC2_ENDPOINT", EnvValue::ServerUrl),
                    (TOKEN_ENV, EnvValue::Token),
                    (CERT_PIN_ENV, EnvValue::CertSha256),
                ],
            },
            pipeline,
            jobs,
            names,
        }
    }

    /// Every bucket, in plan order.
    pub fn buckets(&self) -> Vec<&Bucket> {
        let mut buckets = vec![&self.images_bucket, &self.artifacts_bucket];
        if let Some(pipeline) = &self.pipeline {
            buckets.extend([&pipeline.uploads_bucket, &pipeline.processed_bucket]);
        }
        if let Some(jobs) = &self.jobs {
            buckets.push(&jobs.bucket);
        }
        buckets
    }

    pub fn log_groups(&self) -> Vec<&LogGroup> {
        let mut groups = vec![&self.function_log_group, &self.server_log_group];
        if let Some(pipeline) = &self.pipeline {
            groups.push(&pipeline.resizer_log_group);
        }
        if let Some(jobs) = &self.jobs {
            groups.extend([&jobs.submit_log_group, &jobs.launcher_log_group]);
        }
        groups
    }

    pub fn roles(&self) -> Vec<&Role> {
        let mut roles = vec![&self.lambda_role, &self.server_role];
        if let Some(pipeline) = &self.pipeline {
            roles.push(&pipeline.resizer_role);
        }
        if let Some(jobs) = &self.jobs {
            roles.extend([&jobs.submit_role, &jobs.launcher_role, &jobs.worker_role]);
        }
        roles
    }

    pub fn functions(&self) -> Vec<&Function> {
        let mut functions = vec![&self.function];
        if let Some(pipeline) = &self.pipeline {
            functions.push(&pipeline.resizer);
        }
        if let Some(jobs) = &self.jobs {
            functions.extend([&jobs.submit, &jobs.launcher]);
        }
        functions
    }

    /// What the stack has beside the server, in words: "" or " with the event-driven pipeline
    /// and the job-worker variant".
    pub fn variant_words(&self) -> String {
        let parts: Vec<&str> = [
            self.pipeline.as_ref().map(|_| "the event-driven pipeline"),
            self.jobs.as_ref().map(|_| "the job-worker variant"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" with {}", parts.join(" and "))
        }
    }

    /// The `--with` flags of `up` that make this stack: "", " --with pipeline", ...
    pub fn with_flags(&self) -> String {
        [
            self.pipeline.as_ref().map(|_| " --with pipeline"),
            self.jobs.as_ref().map(|_| " --with jobs"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Every table: the images' and, with the jobs, the jobs'.
    pub fn tables(&self) -> Vec<&Table> {
        let mut tables = vec![&self.table];
        if let Some(jobs) = &self.jobs {
            tables.push(&jobs.table);
        }
        tables
    }

    /// Every instance profile with the role it holds: the server's and the workers'.
    pub fn instance_profiles(&self) -> Vec<&InstanceProfile> {
        let mut profiles = vec![&self.instance_profile];
        if let Some(jobs) = &self.jobs {
            profiles.push(&jobs.worker_profile);
        }
        profiles
    }

    /// The AWS resources the stack is made of, as `(kind, name)` in the kinds the plan uses
    /// (the plan lists a role and its instance profile as one `iam:role+instance-profile`).
    pub fn resource_keys(&self) -> Vec<ResourceKey> {
        let key = |kind, name: &str| ResourceKey {
            kind,
            name: name.to_owned(),
        };
        let mut keys: Vec<ResourceKey> = Vec::new();
        keys.extend(self.buckets().iter().map(|b| key("s3:bucket", &b.name)));
        keys.extend(self.tables().iter().map(|t| key("dynamodb:table", &t.name)));
        keys.extend(
            self.log_groups()
                .iter()
                .map(|g| key("logs:log-group", &g.name)),
        );
        let profiles = self.instance_profiles();
        keys.extend(self.roles().iter().map(|r| {
            if profiles.iter().any(|p| p.role == r.name) {
                key("iam:role+instance-profile", &r.name)
            } else {
                key("iam:role", &r.name)
            }
        }));
        keys.push(key("ec2:security-group", &self.security_group.name));
        keys.push(key(
            "s3:object",
            &format!(
                "s3://{}/{}",
                self.server_artifacts.bucket, self.server_artifacts.binary_key
            ),
        ));
        keys.push(key("ec2:instance", &self.instance.name));
        keys.extend(
            self.functions()
                .iter()
                .map(|f| key("lambda:function", &f.name)),
        );
        if let Some(pipeline) = &self.pipeline {
            keys.push(key("s3:notification", &pipeline.trigger.bucket));
        }
        if let Some(jobs) = &self.jobs {
            keys.push(key(
                "s3:object",
                &format!(
                    "s3://{}/{}",
                    self.server_artifacts.bucket, jobs.worker_binary_key
                ),
            ));
            keys.push(key("lambda:event-source-mapping", &jobs.mapping.function));
            keys.push(key("apigateway:http-api", &jobs.api.name));
        }
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::names::StackId;
    use crate::stack::plan::plan;

    fn arns() -> ArnContext {
        ArnContext {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        }
    }

    fn secrets() -> ServerSecretValues {
        ServerSecretValues {
            token: "t".into(),
            tls_certificate: "c".into(),
            tls_key: "k".into(),
            cert_sha256: "f".into(),
        }
    }

    #[test]
    fn the_description_declares_what_the_plan_lists() {
        let id = StackId::parse("abcd1234").expect("valid");
        for (pipeline, jobs) in [(false, false), (true, false), (false, true), (true, true)] {
            let settings = StackSettings {
                pipeline,
                jobs,
                ..StackSettings::new("eu-west-1")
            };
            let description = StackDescription::new(
                StackNames::new(&id),
                id.as_str(),
                &settings,
                &arns(),
                &secrets(),
            );
            let mut planned: Vec<ResourceKey> = plan(&id, &settings)
                .into_iter()
                .filter(|r| !r.kind.is_empty())
                .map(|r| ResourceKey {
                    kind: r.kind,
                    name: r.name,
                })
                .collect();
            planned.sort();
            assert_eq!(
                description.resource_keys(),
                planned,
                "pipeline={pipeline} jobs={jobs}"
            );
        }
    }

    #[test]
    fn only_the_pipeline_has_the_uploads_bucket_and_its_cors() {
        let id = StackId::parse("abcd1234").expect("valid");
        let plain = StackDescription::new(
            StackNames::new(&id),
            id.as_str(),
            &StackSettings::new("eu-west-1"),
            &arns(),
            &secrets(),
        );
        assert!(plain.pipeline.is_none());
        assert!(plain.buckets().iter().all(|b| b.cors.is_none()));
        assert!(!plain.server_artifacts.env_file.contains("UPLOADS"));
        let settings = StackSettings {
            pipeline: true,
            ..StackSettings::new("eu-west-1")
        };
        let with = StackDescription::new(
            StackNames::new(&id),
            id.as_str(),
            &settings,
            &arns(),
            &secrets(),
        );
        let pipeline = with.pipeline.as_ref().expect("a pipeline");
        assert_eq!(pipeline.uploads_bucket.cors, Some(uploads_cors()));
        assert_eq!(pipeline.trigger.prefix, "uploads/");
        assert!(with.images_bucket.versioned && !with.artifacts_bucket.versioned);
    }
}
