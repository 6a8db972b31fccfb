//! `up`: creates the stack step by step, independent steps at once. Every step first looks
//! for its resource and only creates what is missing, so running `up` again creates nothing
//! new and finishes a stack an interrupted `up` left half-made. Every resource is tagged at
//! creation (or, for S3, right after, before anything else is done to it).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TableStatus,
};
use aws_sdk_ec2::types::{
    CreditSpecificationRequest, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceStateName, IpPermission,
    IpRange, ResourceType, ShutdownBehavior, TagSpecification,
};
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime, State};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CorsConfiguration, CorsRule,
    CreateBucketConfiguration, Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration,
    NotificationConfiguration, NotificationConfigurationFilter, PublicAccessBlockConfiguration,
    S3KeyFilter, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tagging, VersioningConfiguration,
};
use base64::Engine as _;
use sha2::Digest as _;

mod jobs;

use super::artifacts::{ArtifactSource, Artifacts, Variants, build};
use super::describe::{
    RESIZER_NOTIFICATION_ID, RESIZER_PERMISSION_ID, ROLE_POLICY_NAME, UPLOAD_EVENT, uploads_cors,
};
use super::error::{Response, StackError, code_of, error_line, is_not_found, sdk_error};
use super::names::{IAM_PATH, StackId, StackNames};
use super::plan::{
    RESIZER_MEMORY_MB, RESIZER_TIMEOUT_SECONDS, SERVER_BINARY_KEY, SERVER_ENV_KEY,
    ServerSecretValues, StackSettings, UPLOADS_PREFIX, server_env_file,
};
use super::policy::{ArnContext, lambda_policy, resizer_policy, server_policy, trust_policy};
use super::progress::{Reporter, Step, StepEvent, StepStatus};
use super::state::{StackState, StepRecord};
use super::target::StackClients;
use base64::engine::general_purpose::STANDARD as BASE64;
use hybridlab_wire::launch::{ServerLaunch, parse_env_file, user_data_failure};
use hybridlab_wire::now_rfc3339;
use hybridlab_wire::tags::{ENDPOINT_TAG, ROLE_IMAGE_SERVER, ROLE_TAG, STACK_TAG};
use hybridlab_wire::tls::{CERT_PIN_ENV, CertFingerprint, TLS_CERT_ENV, TLS_KEY_ENV};
use hybridlab_wire::token::{TOKEN_ENV, check_token};

/// What `up` is asked to do.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub stack: StackId,
    pub settings: StackSettings,
    pub artifacts: ArtifactSource,
    /// Stop with an error right after this step, as a crash would (fault injection).
    pub fail_after: Option<Step>,
}

/// A stack that is up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpReport {
    pub stack: StackId,
    pub target: String,
    pub names: StackNames,
    pub function_arn: String,
    /// The resizer function, for a stack with the pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resizer_arn: Option<String>,
    /// The jobs API's endpoint, for a stack with the jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_api_endpoint: Option<String>,
    /// The most job workers at once.
    pub worker_cap: u32,
    pub server_endpoint: String,
    /// The SHA-256 fingerprint of the server's self-signed certificate, as a browser shows it:
    /// what a student compares before trusting the gallery's certificate warning.
    pub cert_sha256: String,
    pub instance_id: String,
    /// Steps that created or changed something, and steps that found everything in place.
    pub done: usize,
    pub skipped: usize,
    pub elapsed_ms: u64,
}

/// The environment variable that asks `up` to stop after a step (fault injection).
pub const FAIL_AFTER_ENV: &str = "HYBRIDLAB_FAIL_AFTER_STEP";

/// A function `up` deploys.
struct FunctionSpec<'a> {
    /// The step that deploys it, which its waits are reported under.
    step: Step,
    name: &'a str,
    description: String,
    binary: &'a std::path::Path,
    variables: HashMap<String, String>,
    memory_mb: i32,
    timeout_seconds: i32,
}

impl<'a> FunctionSpec<'a> {
    /// The spec of a function the stack description declares.
    fn of(
        function: &'a crate::stack::describe::Function,
        binary: &'a std::path::Path,
        variables: HashMap<String, String>,
    ) -> Self {
        Self {
            step: function.step,
            name: &function.name,
            description: function.description.clone(),
            binary,
            variables,
            memory_mb: function.memory_mb,
            timeout_seconds: function.timeout_seconds,
        }
    }
}

enum Outcome {
    Done(String),
    Skipped(String),
}

struct Run<'a> {
    clients: &'a StackClients,
    id: StackId,
    names: StackNames,
    settings: StackSettings,
    state_key: String,
    state: Mutex<StackState>,
    reporter: Reporter,
    fail_after: Option<Step>,
}

/// Creates whatever of the stack is missing and waits until it serves.
pub async fn up(
    clients: &StackClients,
    options: UpOptions,
    reporter: Reporter,
) -> Result<UpReport, StackError> {
    let started = Instant::now();
    let state_key = clients.state_key();
    let mut state = StackState::load(&state_key, &options.stack).unwrap_or_else(|| {
        StackState::new(
            options.stack.clone(),
            clients.describe(),
            options.settings.clone(),
        )
    });
    // A stack keeps its pipeline when `up` runs again without `--with pipeline`: dropping it
    // is `down`'s work, not a side effect of a flag left out.
    let settings = StackSettings {
        pipeline: options.settings.pipeline || state.settings.pipeline,
        jobs: options.settings.jobs || state.settings.jobs,
        ..options.settings.clone()
    };
    state.settings = settings.clone();
    // Recorded before anything exists, so the stack is known even if `up` dies at once.
    state.save(&state_key)?;
    let run = Run {
        clients,
        id: options.stack.clone(),
        names: StackNames::new(&options.stack),
        settings,
        state_key,
        state: Mutex::new(state),
        reporter,
        fail_after: options.fail_after,
    };
    let names = &run.names;

    // Every step of a wave runs to its end even when one fails: a request already sent may
    // still create its resource, and it must be in the state file when `up` returns, not
    // appear behind it (`down` would still find it by name and tag, but later).
    let (
        artifacts,
        images_bucket,
        artifacts_bucket,
        table,
        function_log_group,
        server_log_group,
        lambda_role,
        instance_profile,
        security_group,
        image,
        pipeline_wave,
        jobs_wave,
    ) = tokio::join!(
        run.step(Step::Build, "", run.build(&options.artifacts)),
        run.step(
            Step::ImagesBucket,
            &names.images_bucket,
            run.bucket(Step::ImagesBucket, &names.images_bucket, true)
        ),
        run.step(
            Step::ArtifactsBucket,
            &names.artifacts_bucket,
            run.bucket(Step::ArtifactsBucket, &names.artifacts_bucket, false)
        ),
        run.step(Step::Table, &names.table, async {
            let (outcome, _) = run.table(&names.table, "image_id", false).await?;
            Ok((outcome, ()))
        }),
        run.step(
            Step::FunctionLogGroup,
            &names.function_log_group,
            run.log_group(&names.function_log_group)
        ),
        run.step(
            Step::ServerLogGroup,
            &names.server_log_group,
            run.log_group(&names.server_log_group)
        ),
        run.step(
            Step::LambdaRole,
            &names.lambda_role,
            run.function_role(&names.lambda_role, |arns| lambda_policy(names, arns))
        ),
        run.step(Step::ServerRole, &names.server_role, run.server_role()),
        run.step(
            Step::SecurityGroup,
            &names.security_group,
            run.security_group()
        ),
        run.step(Step::Image, "", run.image()),
        Box::pin(run.pipeline_wave()),
        Box::pin(run.jobs_wave()),
    );
    let artifacts = artifacts?;
    images_bucket?;
    artifacts_bucket?;
    table?;
    function_log_group?;
    server_log_group?;
    let (lambda_role, instance_profile, security_group, image) =
        (lambda_role?, instance_profile?, security_group?, image?);
    let resizer_role = pipeline_wave?;
    let jobs_base = jobs_wave?;

    // The server's artifacts hold the stack's token, which the jobs API shares.
    let (secrets, replace_instance) = run
        .step(
            Step::ServerArtifacts,
            &names.artifacts_bucket,
            run.server_artifacts(&artifacts),
        )
        .await?;

    // The server and the proxy on one side, the resizer and its trigger on another, the jobs
    // on a third: none waits for the others.
    let server_side = async {
        let (instance_id, endpoint) = run
            .step(
                Step::Instance,
                &names.instance,
                run.instance(&image, &security_group, &instance_profile, replace_instance),
            )
            .await?;
        let (server_health, function_arn) = tokio::join!(
            run.step(
                Step::ServerHealth,
                &endpoint,
                run.server_health(&instance_id, &endpoint, secrets.certificate.fingerprint())
            ),
            run.step(
                Step::Function,
                &names.function,
                run.function(&lambda_role, &artifacts, &endpoint, &secrets)
            ),
        );
        server_health?;
        let cert_sha256 = secrets.certificate.fingerprint().to_string();
        Ok::<_, StackError>((instance_id, endpoint, function_arn?, cert_sha256))
    };
    let resizer_side = async {
        let Some(resizer_role) = &resizer_role else {
            return Ok(None);
        };
        let resizer_arn = run
            .step(
                Step::Resizer,
                &names.resizer,
                run.resizer(resizer_role, &artifacts),
            )
            .await?;
        run.step(
            Step::ResizerTrigger,
            &names.uploads_bucket,
            run.resizer_trigger(resizer_role, &resizer_arn),
        )
        .await?;
        Ok::<_, StackError>(Some(resizer_arn))
    };
    let jobs_side = async {
        let Some(base) = &jobs_base else {
            return Ok(None);
        };
        let programs = artifacts.jobs.as_ref().ok_or_else(|| {
            StackError::Invalid("the build made no job programs for a stack with the jobs".into())
        })?;
        run.jobs_side(base, programs, &image, &secrets.token)
            .await
            .map(Some)
    };
    let (server_side, resizer_side, jobs_side) = tokio::join!(
        Box::pin(server_side),
        Box::pin(resizer_side),
        Box::pin(jobs_side)
    );
    let (instance_id, endpoint, function_arn, cert_sha256) = server_side?;
    let resizer_arn = resizer_side?;
    let jobs_api_endpoint = jobs_side?;

    let state = run
        .state
        .lock()
        .map(|state| state.clone())
        .map_err(|_| StackError::Invalid("the state lock was poisoned".into()))?;
    let count = |status| state.steps.values().filter(|s| s.status == status).count();
    Ok(UpReport {
        stack: run.id.clone(),
        target: clients.describe(),
        names: run.names.clone(),
        function_arn,
        resizer_arn,
        jobs_api_endpoint,
        worker_cap: run.settings.worker_cap,
        server_endpoint: endpoint,
        cert_sha256,
        instance_id,
        done: count(StepStatus::Done),
        skipped: count(StepStatus::Skipped),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// A random bearer token shared by the function and the server (244 random bits, 64
/// characters: above `MIN_TOKEN_CHARS`).
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What the server and the function share in secret: the bearer token, and the server's TLS
/// certificate (whose key only the server's private environment file holds; the function gets
/// the certificate's fingerprint).
#[derive(Debug, Clone)]
pub struct ServerSecrets {
    pub token: String,
    pub certificate: ServerCertificate,
}

/// The image server's self-signed TLS certificate and its key, both DER.
///
/// Self-signed because the instance has no name a certificate authority would vouch for (its
/// public IP changes with every instance); the proxy pins its SHA-256 fingerprint instead.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCertificate {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key, not even in a debug log.
        f.debug_struct("ServerCertificate")
            .field("sha256", &self.fingerprint().to_string())
            .finish_non_exhaustive()
    }
}

/// The name in the certificate; informational, since nothing checks it.
const CERT_NAME: &str = "hybridlab-image-server";

impl ServerCertificate {
    /// A new P-256 key and a certificate for it.
    pub fn generate() -> Result<Self, StackError> {
        let made =
            rcgen::generate_simple_self_signed(vec![CERT_NAME.to_owned()]).map_err(|err| {
                StackError::Invalid(format!("making the server's certificate: {err}"))
            })?;
        Ok(Self {
            cert_der: made.cert.der().to_vec(),
            key_der: made.signing_key.serialize_der(),
        })
    }

    pub fn fingerprint(&self) -> CertFingerprint {
        hybridlab_wire::tls::fingerprint(&self.cert_der)
    }

    /// The stack's secrets with this certificate and `token`, as the environment file and
    /// the function take them.
    pub fn values(&self, token: &str) -> ServerSecretValues {
        ServerSecretValues {
            token: token.to_owned(),
            tls_certificate: BASE64.encode(&self.cert_der),
            tls_key: BASE64.encode(&self.key_der),
            cert_sha256: self.fingerprint().to_string(),
        }
    }

    /// The certificate an environment file holds, if it holds a whole one.
    pub fn from_env(pairs: &[(String, String)]) -> Option<Self> {
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        Self::from_base64(value(TLS_CERT_ENV)?, value(TLS_KEY_ENV)?)
    }

    /// The certificate and key from their base64 forms, if both decode to something.
    pub fn from_base64(cert: &str, key: &str) -> Option<Self> {
        let decode = |text: &str| BASE64.decode(text).ok().filter(|der| !der.is_empty());
        Some(Self {
            cert_der: decode(cert)?,
            key_der: decode(key)?,
        })
    }
}

/// An HTTP client that trusts only the server's pinned certificate.
pub fn pinned_http(pin: CertFingerprint, timeout: Duration) -> Result<reqwest::Client, StackError> {
    let tls = hybridlab_wire::tls::pinned_client_config(pin)
        .map_err(|err| StackError::Invalid(format!("the TLS client: {err}")))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|err| StackError::Invalid(format!("the TLS client: {err}")))
}

/// The pause before trying again a call AWS refused while something propagates.
const RETRY_PAUSE: Duration = Duration::from_secs(3);

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

fn stack_tag_list<T>(id: &StackId, make: impl Fn(&str, &str) -> T) -> Vec<T> {
    vec![make(STACK_TAG, id.as_str())]
}

fn invalid(context: &str) -> impl Fn(aws_sdk_s3::error::BuildError) -> StackError + '_ {
    move |err| StackError::Invalid(format!("{context}: {err}"))
}

impl Run<'_> {
    fn report(
        &self,
        step: Step,
        resource: &str,
        status: StepStatus,
        elapsed: Duration,
        detail: String,
    ) {
        (self.reporter)(StepEvent {
            stack: self.id.to_string(),
            step: step.name().to_owned(),
            resource: resource.to_owned(),
            status,
            elapsed_ms: elapsed.as_millis() as u64,
            detail,
        });
    }

    /// Reports that a step waits for AWS (a retry after an error AWS sends while something
    /// propagates, or a state it has to leave), with what it waits for. Not recorded in the
    /// state file: only the step's outcome is.
    fn waiting(&self, step: Step, resource: &str, since: Instant, detail: String) {
        tracing::info!(step = step.name(), resource, "{detail}");
        self.report(step, resource, StepStatus::Waiting, since.elapsed(), detail);
    }

    /// Sends `call` again, every [`RETRY_PAUSE`], while AWS answers with an error `settling`
    /// recognises (something just created or deleted has not reached the service yet) and
    /// `patience` lasts; each retry is reported as a wait for `what`.
    async fn while_settling<T, E, Call, Sent>(
        &self,
        (step, resource): (Step, &str),
        what: &str,
        patience: Duration,
        settling: impl Fn(&aws_sdk_s3::error::SdkError<E, Response>) -> bool,
        mut call: Call,
    ) -> Result<T, aws_sdk_s3::error::SdkError<E, Response>>
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
        Call: FnMut() -> Sent,
        Sent: Future<Output = Result<T, aws_sdk_s3::error::SdkError<E, Response>>>,
    {
        let started = Instant::now();
        loop {
            match call().await {
                Err(err) if settling(&err) && started.elapsed() < patience => {
                    self.waiting(
                        step,
                        resource,
                        started,
                        format!(
                            "{what} ({}); retrying in {}",
                            error_line(&err),
                            seconds(RETRY_PAUSE)
                        ),
                    );
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                result => return result,
            }
        }
    }

    fn record(
        &self,
        step: Step,
        status: StepStatus,
        detail: &str,
        update: impl FnOnce(&mut StackState),
    ) -> Result<(), StackError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StackError::Invalid("the state lock was poisoned".into()))?;
        state.steps.insert(
            step.name().to_owned(),
            StepRecord {
                status,
                detail: detail.to_owned(),
                at: now_rfc3339(),
            },
        );
        update(&mut state);
        state.save(&self.state_key)
    }

    /// Runs one step: reports it, records its outcome in the state file, and stops here if
    /// fault injection asks for it. The step lives on the heap: `up` awaits a dozen of them
    /// at once, and held inline their SDK futures made `up`'s own future large enough to
    /// overflow a 2 MiB thread stack in a debug build.
    fn step<'a, T: Send + 'a>(
        &'a self,
        step: Step,
        resource: &'a str,
        work: impl Future<Output = Result<(Outcome, T), StackError>> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = Result<T, StackError>> + Send + 'a>> {
        Box::pin(self.run_step(step, resource, work))
    }

    async fn run_step<T>(
        &self,
        step: Step,
        resource: &str,
        work: impl Future<Output = Result<(Outcome, T), StackError>>,
    ) -> Result<T, StackError> {
        let started = Instant::now();
        self.report(
            step,
            resource,
            StepStatus::Started,
            Duration::ZERO,
            String::new(),
        );
        match work.await {
            Ok((outcome, value)) => {
                let (status, detail) = match outcome {
                    Outcome::Done(detail) => (StepStatus::Done, detail),
                    Outcome::Skipped(detail) => (StepStatus::Skipped, detail),
                };
                self.record(step, status, &detail, |_| {})?;
                self.report(step, resource, status, started.elapsed(), detail);
                if self.fail_after == Some(step) {
                    return Err(StackError::FaultInjected(step));
                }
                Ok(value)
            }
            Err(err) => {
                let detail = err.to_string();
                let _ = self.record(step, StepStatus::Failed, &detail, |_| {});
                self.report(
                    step,
                    resource,
                    StepStatus::Failed,
                    started.elapsed(),
                    detail,
                );
                Err(err)
            }
        }
    }

    fn output(&self, update: impl FnOnce(&mut StackState)) -> Result<(), StackError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StackError::Invalid("the state lock was poisoned".into()))?;
        update(&mut state);
        state.save(&self.state_key)
    }

    async fn build(&self, source: &ArtifactSource) -> Result<(Outcome, Artifacts), StackError> {
        let source = source.clone();
        let variants = Variants::of(&self.settings);
        let artifacts = tokio::task::spawn_blocking(move || {
            build(&source, variants, &mut |message| {
                tracing::info!("{message}")
            })
        })
        .await
        .map_err(|err| StackError::Invalid(format!("the build task failed: {err}")))??;
        let size = |path: &std::path::Path| {
            std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
        };
        let mut detail = format!(
            "server {:.1} MiB, bootstrap {:.1} MiB",
            size(&artifacts.server_binary),
            size(&artifacts.proxy_binary)
        );
        if let Some(resizer) = &artifacts.resizer_binary {
            detail.push_str(&format!(", resizer {:.1} MiB", size(resizer)));
        }
        if let Some(jobs) = &artifacts.jobs {
            detail.push_str(&format!(
                ", worker {:.1} MiB, submit {:.1} MiB, launcher {:.1} MiB",
                size(&jobs.worker),
                size(&jobs.submit),
                size(&jobs.launcher)
            ));
        }
        Ok((Outcome::Done(detail), artifacts))
    }

    async fn bucket(
        &self,
        step: Step,
        name: &str,
        versioned: bool,
    ) -> Result<(Outcome, ()), StackError> {
        let s3 = &self.clients.s3;
        let existed = match s3.head_bucket().bucket(name).send().await {
            Ok(_) => true,
            Err(err) if is_not_found(&err) => false,
            Err(err) => {
                let forbidden = matches!(&err, aws_sdk_s3::error::SdkError::ServiceError(service)
                        if service.raw().status().as_u16() == 403);
                if !forbidden {
                    return Err(sdk_error("s3:ListBucket", err));
                }
                // A HEAD answer has no body to say why. Listing one's own buckets tells refused
                // credentials (which fail it too, with a code) from a name someone else owns.
                if let Err(err) = s3.list_buckets().max_buckets(1).send().await {
                    return Err(sdk_error("s3:ListAllMyBuckets", err));
                }
                // S3 answers 403 too when these credentials may not `s3:ListBucket` the name:
                // an IAM user whose policy lacks the variant's buckets reads the same.
                return Err(StackError::Invalid(format!(
                    "S3 refuses to say whether bucket {name} exists: the name belongs to another account (bring up a new stack: `hybridlab up` without --stack), or these credentials may not s3:ListBucket it (`hybridlab iam-policy` prints what the lab needs; `--with pipeline` and `--jobs-document` add the variants' buckets)"
                )));
            }
        };
        if !existed {
            // A name deleted a moment ago (a `down` then an `up` of the same stack) is
            // refused with OperationAborted for a while.
            let created = self
                .while_settling(
                    (step, name),
                    "the name was deleted a moment ago",
                    self.clients.patience(Duration::from_secs(120)),
                    |err| code_of(err) == Some("OperationAborted"),
                    || {
                        let mut create = s3.create_bucket().bucket(name);
                        if self.settings.region != "us-east-1" {
                            create = create.create_bucket_configuration(
                                CreateBucketConfiguration::builder()
                                    .location_constraint(BucketLocationConstraint::from(
                                        self.settings.region.as_str(),
                                    ))
                                    .build(),
                            );
                        }
                        create.send()
                    },
                )
                .await;
            match created {
                Ok(_) => {}
                Err(err) if code_of(&err) == Some("BucketAlreadyOwnedByYou") => {}
                Err(err) => return Err(sdk_error("s3:CreateBucket", err)),
            }
        }
        // The tag goes first: whatever fails below, `down` finds the bucket by it.
        let tags = stack_tag_list(&self.id, |key, value| {
            aws_sdk_s3::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid("bucket tag"))?;
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .map_err(invalid("bucket tagging"))?,
            )
            .send()
            .await
            .map_err(|err| sdk_error("s3:PutBucketTagging", err))?;
        s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|err| sdk_error("s3:PutBucketPublicAccessBlock", err))?;
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(ServerSideEncryption::Aes256)
                                    .build()
                                    .map_err(invalid("encryption"))?,
                            )
                            .build(),
                    )
                    .build()
                    .map_err(invalid("encryption"))?,
            )
            .send()
            .await
            .map_err(|err| sdk_error("s3:PutEncryptionConfiguration", err))?;
        if versioned {
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|err| sdk_error("s3:PutBucketVersioning", err))?;
        }
        let settings = if versioned {
            "private, SSE-S3, versioned"
        } else {
            "private, SSE-S3"
        };
        Ok((
            if existed {
                Outcome::Skipped(format!("exists; settings checked ({settings})"))
            } else {
                Outcome::Done(format!("created ({settings})"))
            },
            (),
        ))
    }

    /// An on-demand table `name` keyed by the string `key`, with a `NEW_IMAGE` stream when
    /// `stream`; waits until it is ACTIVE and returns its latest stream's ARN, if any.
    async fn table(
        &self,
        name: &str,
        key: &str,
        stream: bool,
    ) -> Result<(Outcome, Option<String>), StackError> {
        let dynamodb = &self.clients.dynamodb;
        match dynamodb.describe_table().table_name(name).send().await {
            Ok(found) => {
                let stream_arn = found
                    .table()
                    .and_then(|t| t.latest_stream_arn())
                    .map(str::to_owned);
                if stream && stream_arn.is_none() {
                    return Err(StackError::Invalid(format!(
                        "table {name} exists without a stream; `down` the stack and bring it up again"
                    )));
                }
                return Ok((Outcome::Skipped("exists".into()), stream_arn));
            }
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(sdk_error("dynamodb:DescribeTable", err)),
        }
        let to_invalid = |err: aws_sdk_dynamodb::error::BuildError| {
            StackError::Invalid(format!("table definition: {err}"))
        };
        let specification = stream
            .then(|| {
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(to_invalid)
            })
            .transpose()?;
        dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(to_invalid)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(to_invalid)?,
            )
            .set_stream_specification(specification)
            .tags(
                aws_sdk_dynamodb::types::Tag::builder()
                    .key(STACK_TAG)
                    .value(self.id.as_str())
                    .build()
                    .map_err(to_invalid)?,
            )
            .send()
            .await
            .map_err(|err| sdk_error("dynamodb:CreateTable", err))?;
        let patience = self.clients.patience(Duration::from_secs(120));
        let deadline = Instant::now() + patience;
        loop {
            let description = dynamodb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|err| sdk_error("dynamodb:DescribeTable", err))?;
            let table = description.table();
            if table.and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                let stream_arn = table.and_then(|t| t.latest_stream_arn()).map(str::to_owned);
                let what = if stream {
                    "created (on demand, key {key}, NEW_IMAGE stream)"
                } else {
                    "created (on demand, key {key})"
                };
                return Ok((Outcome::Done(what.replace("{key}", key)), stream_arn));
            }
            if Instant::now() > deadline {
                return Err(StackError::Timeout {
                    what: format!("table {name} becoming ACTIVE"),
                    after: patience,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn log_group(&self, name: &str) -> Result<(Outcome, ()), StackError> {
        let logs = &self.clients.logs;
        let existed = match logs
            .create_log_group()
            .log_group_name(name)
            .tags(STACK_TAG, self.id.as_str())
            .send()
            .await
        {
            Ok(_) => false,
            Err(err) if code_of(&err) == Some("ResourceAlreadyExistsException") => true,
            Err(err) => return Err(sdk_error("logs:CreateLogGroup", err)),
        };
        logs.put_retention_policy()
            .log_group_name(name)
            .retention_in_days(self.settings.log_retention_days)
            .send()
            .await
            .map_err(|err| sdk_error("logs:PutRetentionPolicy", err))?;
        let retention = format!("{} days retention", self.settings.log_retention_days);
        Ok((
            if existed {
                Outcome::Skipped(format!("exists; {retention}"))
            } else {
                Outcome::Done(format!("created, {retention}"))
            },
            (),
        ))
    }

    /// The role `name` assumable by `service`, with its inline policy; returns (existed, ARN).
    async fn role(
        &self,
        name: &str,
        service: &str,
        policy: impl FnOnce(&ArnContext) -> serde_json::Value,
    ) -> Result<(bool, String), StackError> {
        let iam = &self.clients.iam;
        let (existed, arn) = match iam.get_role().role_name(name).send().await {
            Ok(found) => (
                true,
                found.role().map(|r| r.arn().to_owned()).unwrap_or_default(),
            ),
            Err(err) if is_not_found(&err) => {
                let created = iam
                    .create_role()
                    .role_name(name)
                    .path(IAM_PATH)
                    .description(format!("hybridlab stack {}", self.id))
                    .assume_role_policy_document(trust_policy(service).to_string())
                    .tags(
                        aws_sdk_iam::types::Tag::builder()
                            .key(STACK_TAG)
                            .value(self.id.as_str())
                            .build()
                            .map_err(|err| StackError::Invalid(format!("role tag: {err}")))?,
                    )
                    .send()
                    .await
                    .map_err(|err| sdk_error("iam:CreateRole", err))?;
                (
                    false,
                    created
                        .role()
                        .map(|r| r.arn().to_owned())
                        .unwrap_or_default(),
                )
            }
            Err(err) => return Err(sdk_error("iam:GetRole", err)),
        };
        let context = ArnContext::from_role_arn(&arn, &self.settings.region).ok_or_else(|| {
            StackError::Invalid(format!("IAM answered an unexpected role ARN `{arn}`"))
        })?;
        iam.put_role_policy()
            .role_name(name)
            .policy_name(ROLE_POLICY_NAME)
            .policy_document(policy(&context).to_string())
            .send()
            .await
            .map_err(|err| sdk_error("iam:PutRolePolicy", err))?;
        Ok((existed, arn))
    }

    /// A Lambda execution role `name` with `policy`, as a step's outcome and the role's ARN.
    async fn function_role(
        &self,
        name: &str,
        policy: impl FnOnce(&ArnContext) -> serde_json::Value,
    ) -> Result<(Outcome, String), StackError> {
        let (existed, arn) = self.role(name, "lambda.amazonaws.com", policy).await?;
        let outcome = if existed {
            Outcome::Skipped(format!("exists ({arn}); policy checked"))
        } else {
            Outcome::Done(format!("created {arn}"))
        };
        Ok((outcome, arn))
    }

    async fn server_role(&self) -> Result<(Outcome, String), StackError> {
        let names = &self.names;
        let (outcome, _) = self
            .instance_role(&names.server_role, &names.instance_profile, |context| {
                server_policy(names, context, self.settings.pipeline)
            })
            .await?;
        Ok((outcome, names.instance_profile.clone()))
    }

    /// The role `role` that EC2 assumes, with `policy`, in the instance profile `profile`;
    /// returns the profile's ARN.
    async fn instance_role(
        &self,
        role: &str,
        profile: &str,
        policy: impl FnOnce(&ArnContext) -> serde_json::Value,
    ) -> Result<(Outcome, String), StackError> {
        let iam = &self.clients.iam;
        let (role_existed, _) = self.role(role, "ec2.amazonaws.com", policy).await?;
        let (profile_existed, roles, profile_arn) = match iam
            .get_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
        {
            Ok(found) => (
                true,
                found
                    .instance_profile()
                    .map(|p| p.roles().len())
                    .unwrap_or_default(),
                found
                    .instance_profile()
                    .map(|p| p.arn().to_owned())
                    .unwrap_or_default(),
            ),
            Err(err) if is_not_found(&err) => {
                let created = iam
                    .create_instance_profile()
                    .instance_profile_name(profile)
                    .path(IAM_PATH)
                    .tags(
                        aws_sdk_iam::types::Tag::builder()
                            .key(STACK_TAG)
                            .value(self.id.as_str())
                            .build()
                            .map_err(|err| StackError::Invalid(format!("profile tag: {err}")))?,
                    )
                    .send()
                    .await
                    .map_err(|err| sdk_error("iam:CreateInstanceProfile", err))?;
                (
                    false,
                    0,
                    created
                        .instance_profile()
                        .map(|p| p.arn().to_owned())
                        .unwrap_or_default(),
                )
            }
            Err(err) => return Err(sdk_error("iam:GetInstanceProfile", err)),
        };
        if roles == 0 {
            iam.add_role_to_instance_profile()
                .instance_profile_name(profile)
                .role_name(role)
                .send()
                .await
                .map_err(|err| sdk_error("iam:AddRoleToInstanceProfile", err))?;
        }
        let outcome = if role_existed && profile_existed && roles > 0 {
            Outcome::Skipped("role and instance profile exist; policy checked".into())
        } else {
            Outcome::Done("role, policy and instance profile created".into())
        };
        Ok((outcome, profile_arn))
    }

    async fn security_group(&self) -> Result<(Outcome, String), StackError> {
        let ec2 = &self.clients.ec2;
        let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
        let vpcs = ec2
            .describe_vpcs()
            .filters(filter("is-default", "true"))
            .send()
            .await
            .map_err(|err| sdk_error("ec2:DescribeVpcs", err))?;
        let vpc = vpcs
            .vpcs()
            .first()
            .and_then(|vpc| vpc.vpc_id())
            .ok_or_else(|| {
                StackError::Invalid(format!(
                    "{} has no default VPC; create one with `aws ec2 create-default-vpc --region {}`",
                    self.settings.region, self.settings.region
                ))
            })?
            .to_owned();
        let name = &self.names.security_group;
        let found = ec2
            .describe_security_groups()
            .filters(filter("group-name", name))
            .filters(filter("vpc-id", &vpc))
            .send()
            .await
            .map_err(|err| sdk_error("ec2:DescribeSecurityGroups", err))?;
        let existing = found
            .security_groups()
            .first()
            .and_then(|group| group.group_id())
            .map(str::to_owned);
        let existed = existing.is_some();
        let group_id = match existing {
            Some(id) => id,
            None => ec2
                .create_security_group()
                .group_name(name)
                .description(format!(
                    "hybridlab stack {}: the image server port",
                    self.id
                ))
                .vpc_id(&vpc)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .set_tags(Some(stack_tag_list(&self.id, |k, v| {
                            aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()
                        })))
                        .build(),
                )
                .send()
                .await
                .map_err(|err| sdk_error("ec2:CreateSecurityGroup", err))?
                .group_id()
                .unwrap_or_default()
                .to_owned(),
        };
        let port = i32::from(self.settings.server_port);
        match ec2
            .authorize_security_group_ingress()
            .group_id(&group_id)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(port)
                    .to_port(port)
                    .ip_ranges(
                        IpRange::builder()
                            .cidr_ip(&self.settings.ingress_cidr)
                            .description("hybridlab image server")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
        {
            Ok(_) => {}
            Err(err) if code_of(&err) == Some("InvalidPermission.Duplicate") => {}
            Err(err) => return Err(sdk_error("ec2:AuthorizeSecurityGroupIngress", err)),
        }
        let rule = format!("tcp {port} from {}", self.settings.ingress_cidr);
        self.output(|state| state.outputs.security_group_id = Some(group_id.clone()))?;
        Ok((
            if existed {
                Outcome::Skipped(format!("{group_id} exists; {rule}"))
            } else {
                Outcome::Done(format!("{group_id} created; {rule}"))
            },
            group_id,
        ))
    }

    async fn image(&self) -> Result<(Outcome, String), StackError> {
        let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
        let images = self
            .clients
            .ec2
            .describe_images()
            .owners("amazon")
            .filters(filter("name", "al2023-ami-2023.*-kernel-*-x86_64"))
            .filters(filter("architecture", "x86_64"))
            .filters(filter("state", "available"))
            .send()
            .await
            .map_err(|err| sdk_error("ec2:DescribeImages", err))?;
        let latest = images
            .images()
            .iter()
            .filter(|image| image.image_id().is_some())
            .max_by(|a, b| a.creation_date().cmp(&b.creation_date()))
            .ok_or_else(|| StackError::NoImage {
                region: self.settings.region.clone(),
            })?;
        let id = latest.image_id().unwrap_or_default().to_owned();
        self.output(|state| state.outputs.image_id = Some(id.clone()))?;
        Ok((
            Outcome::Done(format!("{id} ({})", latest.name().unwrap_or("unnamed"))),
            id,
        ))
    }

    /// Uploads the server binary (unless the same one is there) and its environment file
    /// (unless it says the same); returns the stack's token and certificate and whether a
    /// running instance must make way for one that reads the new file.
    ///
    /// The file is the only way the certificate's key reaches the instance: it stays in the
    /// private artifacts bucket, is read with the instance role and written 0600.
    async fn server_artifacts(
        &self,
        artifacts: &Artifacts,
    ) -> Result<(Outcome, (ServerSecrets, bool)), StackError> {
        let s3 = &self.clients.s3;
        let bucket = &self.names.artifacts_bucket;
        let mut changed = Vec::new();
        if let Some(size) = self
            .upload_binary(&artifacts.server_binary, SERVER_BINARY_KEY)
            .await?
        {
            changed.push(format!("server binary ({size})"));
        }
        let existing_token = match s3
            .get_object()
            .bucket(bucket)
            .key(SERVER_ENV_KEY)
            .send()
            .await
        {
            Ok(object) => {
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|err| StackError::Invalid(format!("reading {SERVER_ENV_KEY}: {err}")))?
                    .into_bytes();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let pairs = parse_env_file(&text);
                let certificate = ServerCertificate::from_env(&pairs);
                pairs
                    .into_iter()
                    .find(|(key, _)| key == TOKEN_ENV)
                    .map(|(_, token)| (text, token, certificate))
            }
            Err(err) if is_not_found(&err) => None,
            Err(err) => return Err(sdk_error("s3:GetObject", err)),
        };
        // An existing token is kept (the function holds it) only if the server would accept
        // it: an empty or short one, left by an older version or by hand, is replaced, and the
        // new file and function environment below carry the replacement.
        let usable = |token: &String| check_token(Some(token)).is_ok();
        let token = match &existing_token {
            Some((_, token, _)) if usable(token) => token.clone(),
            _ => self
                .state
                .lock()
                .ok()
                .and_then(|state| state.outputs.token.clone())
                .filter(usable)
                .unwrap_or_else(new_token),
        };
        // The file is rewritten when the stack's settings change what it says (adding the
        // pipeline, say), keeping the token the function already holds.
        // The certificate is kept too (the function pins it); a file from before TLS gets one.
        let certificate = match existing_token
            .as_ref()
            .and_then(|(_, _, certificate)| certificate.clone())
        {
            Some(certificate) => certificate,
            None => ServerCertificate::generate()?,
        };
        let wanted = server_env_file(&self.names, &self.settings, &certificate.values(&token));
        let env_changed = match &existing_token {
            Some((text, _, _)) => *text != wanted,
            None => true,
        };
        if env_changed {
            s3.put_object()
                .bucket(bucket)
                .key(SERVER_ENV_KEY)
                .content_type("text/plain")
                .body(wanted.into_bytes().into())
                .send()
                .await
                .map_err(|err| sdk_error("s3:PutObject", err))?;
            changed.push("environment file".to_owned());
        }
        self.output(|state| {
            state.outputs.token = Some(token.clone());
            state.outputs.cert_sha256 = Some(certificate.fingerprint().to_string());
        })?;
        let outcome = if changed.is_empty() {
            Outcome::Skipped("server binary and environment file are up to date".into())
        } else {
            Outcome::Done(format!("uploaded {}", changed.join(" and ")))
        };
        // Only a change of an existing file asks for a new instance: a first upload is read
        // by the instance about to be launched.
        let replace_instance = env_changed && existing_token.is_some();
        Ok((
            outcome,
            (ServerSecrets { token, certificate }, replace_instance),
        ))
    }

    /// Uploads the program at `path` to `key` in the artifacts bucket unless the object there
    /// has its SHA-256 already; returns the size uploaded, if it was.
    async fn upload_binary(
        &self,
        path: &std::path::Path,
        key: &str,
    ) -> Result<Option<String>, StackError> {
        let s3 = &self.clients.s3;
        let bucket = &self.names.artifacts_bucket;
        let binary = tokio::fs::read(path)
            .await
            .map_err(|err| StackError::Invalid(format!("{}: {err}", path.display())))?;
        let digest = format!("{:x}", sha2::Sha256::digest(&binary));
        let uploaded = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()
            .and_then(|head| head.metadata().and_then(|m| m.get("sha256").cloned()));
        if uploaded.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        let size = binary.len();
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/octet-stream")
            .metadata("sha256", &digest)
            .body(binary.into())
            .send()
            .await
            .map_err(|err| sdk_error("s3:PutObject", err))?;
        Ok(Some(format!("{:.1} MiB", size as f64 / 1_048_576.0)))
    }

    /// The stack's running (or starting) server instance, if there is one.
    async fn existing_instance(&self) -> Result<Option<String>, StackError> {
        let filter = |name: &str, values: &[&str]| {
            Filter::builder()
                .name(name)
                .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
                .build()
        };
        let found = self
            .clients
            .ec2
            .describe_instances()
            .filters(filter(&format!("tag:{STACK_TAG}"), &[self.id.as_str()]))
            .filters(filter(&format!("tag:{ROLE_TAG}"), &[ROLE_IMAGE_SERVER]))
            .filters(filter("instance-state-name", &["pending", "running"]))
            .send()
            .await
            .map_err(|err| sdk_error("ec2:DescribeInstances", err))?;
        Ok(found
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.instance_id().map(str::to_owned)))
    }

    async fn instance(
        &self,
        image: &str,
        security_group: &str,
        instance_profile: &str,
        replace: bool,
    ) -> Result<(Outcome, (String, String)), StackError> {
        let mut existing = self.existing_instance().await?;
        let mut replaced = None;
        // cloud-init runs the user-data once: an instance whose script failed never serves.
        let failed = match &existing {
            Some(old) if !replace => self.check_user_data(old).await.is_err(),
            _ => false,
        };
        if let (true, Some(old)) = (replace || failed, &existing) {
            // The instance reads its configuration once, at boot.
            self.clients
                .ec2
                .terminate_instances()
                .instance_ids(old)
                .send()
                .await
                .map_err(|err| sdk_error("ec2:TerminateInstances", err))?;
            replaced = existing.take();
        }
        let existed = existing.is_some();
        let instance_id = match existing {
            Some(id) => id,
            None => self.launch(image, security_group, instance_profile).await?,
        };
        self.output(|state| state.outputs.instance_id = Some(instance_id.clone()))?;
        let endpoint = self.address_of(&instance_id).await?;
        self.output(|state| state.outputs.server_endpoint = Some(endpoint.clone()))?;
        Ok((
            match replaced {
                Some(old) => Outcome::Done(format!(
                    "{instance_id} launched in place of {old} ({}), serving at {endpoint}",
                    if failed {
                        "its user-data had failed"
                    } else {
                        "its configuration changed"
                    }
                )),
                None if existed => {
                    Outcome::Skipped(format!("{instance_id} is running at {endpoint}"))
                }
                None => Outcome::Done(format!("{instance_id} launched, serving at {endpoint}")),
            },
            (instance_id, endpoint),
        ))
    }

    async fn launch(
        &self,
        image: &str,
        security_group: &str,
        instance_profile: &str,
    ) -> Result<String, StackError> {
        let launch = ServerLaunch {
            artifact_bucket: self.names.artifacts_bucket.clone(),
            binary_key: SERVER_BINARY_KEY.into(),
            env_key: SERVER_ENV_KEY.into(),
            log_group: self.names.server_log_group.clone(),
            region: self.settings.region.clone(),
            port: self.settings.server_port,
            ttl_seconds: self.settings.ttl_seconds,
        };
        let user_data = base64::engine::general_purpose::STANDARD.encode(launch.render());
        let tags = |resource| {
            TagSpecification::builder()
                .resource_type(resource)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(STACK_TAG)
                        .value(self.id.as_str())
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(ROLE_TAG)
                        .value(ROLE_IMAGE_SERVER)
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Name")
                        .value(&self.names.instance)
                        .build(),
                )
                .build()
        };
        // A new instance profile takes a few seconds to reach EC2 on AWS.
        let launched = self
            .while_settling(
                (Step::Instance, &self.names.instance),
                "the instance profile has not reached EC2 yet",
                self.clients.patience(Duration::from_secs(90)),
                |err| {
                    code_of(err) == Some("InvalidParameterValue")
                        && format!("{}", aws_sdk_ec2::error::DisplayErrorContext(err))
                            .to_lowercase()
                            .contains("iam instance profile")
                },
                || {
                    self.clients
                        .ec2
                        .run_instances()
                        .image_id(image)
                        .instance_type(aws_sdk_ec2::types::InstanceType::from(
                            self.settings.instance_type.as_str(),
                        ))
                        .min_count(1)
                        .max_count(1)
                        .security_group_ids(security_group)
                        .iam_instance_profile(
                            IamInstanceProfileSpecification::builder()
                                .name(instance_profile)
                                .build(),
                        )
                        .metadata_options(
                            InstanceMetadataOptionsRequest::builder()
                                .http_tokens(HttpTokensState::Required)
                                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                                .http_put_response_hop_limit(1)
                                .build(),
                        )
                        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
                        // Without one a T3 runs `unlimited`; EC2 refuses one for other types.
                        .set_credit_specification(self.settings.credit_specification().map(
                            |credits| {
                                CreditSpecificationRequest::builder()
                                    .cpu_credits(credits.as_str())
                                    .build()
                            },
                        ))
                        .user_data(&user_data)
                        .tag_specifications(tags(ResourceType::Instance))
                        .tag_specifications(tags(ResourceType::Volume))
                        .send()
                },
            )
            .await
            .map_err(|err| sdk_error("ec2:RunInstances", err))?;
        launched
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_owned)
            .ok_or_else(|| StackError::Invalid("RunInstances returned no instance".into()))
    }

    /// Waits until the instance runs and has an address: its public IP on AWS, the address
    /// the sandbox tags it with locally.
    async fn address_of(&self, instance_id: &str) -> Result<String, StackError> {
        let patience = self.clients.patience(Duration::from_secs(300));
        let started = Instant::now();
        let deadline = started + patience;
        let pause = self.clients.poll_pause(Duration::from_secs(3));
        let mut reported = None;
        loop {
            let found = self
                .clients
                .ec2
                .describe_instances()
                .instance_ids(instance_id)
                .send()
                .await;
            match found {
                Ok(found) => {
                    if let Some(instance) = found
                        .reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .next()
                    {
                        let state = instance.state().and_then(|s| s.name()).cloned();
                        if state == Some(InstanceStateName::Pending) && state != reported {
                            self.waiting(
                                Step::Instance,
                                &self.names.instance,
                                started,
                                format!("{instance_id} pending: the instance is booting"),
                            );
                            reported = state.clone();
                        }
                        match state {
                            Some(InstanceStateName::Running) => {
                                // The sandbox's tag names the server's local address, with
                                // the scheme it serves (https: `up` always gives it a
                                // certificate).
                                let address = if self.clients.is_sandbox() {
                                    instance
                                        .tags()
                                        .iter()
                                        .find(|tag| tag.key() == Some(ENDPOINT_TAG))
                                        .and_then(|tag| tag.value())
                                        .map(str::to_owned)
                                } else {
                                    instance.public_ip_address().map(|ip| {
                                        format!("https://{ip}:{}", self.settings.server_port)
                                    })
                                };
                                if let Some(address) = address {
                                    return Ok(address);
                                }
                                // On the sandbox the address comes once the user-data started
                                // the server: a failed script means it never will.
                                if self.clients.is_sandbox() {
                                    self.check_user_data(instance_id).await?;
                                }
                                if reported != state {
                                    let waiting_for = if self.clients.is_sandbox() {
                                        "its user-data to start the server"
                                    } else {
                                        "its public IP address"
                                    };
                                    self.waiting(
                                        Step::Instance,
                                        &self.names.instance,
                                        started,
                                        format!("{instance_id} running: waiting for {waiting_for}"),
                                    );
                                    reported = state.clone();
                                }
                            }
                            Some(
                                InstanceStateName::ShuttingDown | InstanceStateName::Terminated,
                            ) => {
                                let reason = instance
                                    .state_reason()
                                    .and_then(|r| r.message())
                                    .unwrap_or("no reason given");
                                return Err(StackError::Invalid(format!(
                                    "instance {instance_id} terminated while starting: {reason}"
                                )));
                            }
                            _ => {}
                        }
                    }
                }
                // Eventual consistency: a new instance may not be describable for a moment.
                Err(err) if code_of(&err) == Some("InvalidInstanceID.NotFound") => {}
                Err(err) => return Err(sdk_error("ec2:DescribeInstances", err)),
            }
            if Instant::now() > deadline {
                let mut what = if self.clients.is_sandbox() {
                    format!(
                        "instance {instance_id} running with a server process (is the sandbox's agent running?)"
                    )
                } else {
                    format!(
                        "instance {instance_id} running with a public IP (the default subnet must assign public IPs)"
                    )
                };
                if let Some(tail) = self.console_tail(instance_id).await {
                    what.push_str(&format!("; its console output ends: {tail}"));
                }
                return Err(StackError::Timeout {
                    what,
                    after: patience,
                });
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// The last lines of the instance's console output.
    async fn console_tail(&self, instance_id: &str) -> Option<String> {
        let text = super::status::console_output(self.clients, instance_id).await?;
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        (!lines.is_empty()).then(|| lines[lines.len().saturating_sub(3)..].join(" | "))
    }

    /// An error if cloud-init says the instance's user-data failed: no server will come.
    async fn check_user_data(&self, instance_id: &str) -> Result<(), StackError> {
        match super::status::console_output(self.clients, instance_id)
            .await
            .as_deref()
            .and_then(user_data_failure)
        {
            Some(tail) => Err(StackError::UserDataFailed {
                instance: instance_id.to_owned(),
                tail,
            }),
            None => Ok(()),
        }
    }

    async fn server_health(
        &self,
        instance_id: &str,
        endpoint: &str,
        pin: CertFingerprint,
    ) -> Result<(Outcome, ()), StackError> {
        let patience = self.clients.patience(Duration::from_secs(600));
        let deadline = Instant::now() + patience;
        let url = format!("{endpoint}/health");
        // The same trust as the function's: this certificate and no other.
        let http = pinned_http(pin, Duration::from_secs(10))?;
        let mut last: String;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match http.get(&url).send().await {
                Ok(response) if response.status().is_success() => {
                    let health = response
                        .bytes()
                        .await
                        .map_err(|err| err.to_string())
                        .and_then(|body| {
                            serde_json::from_slice::<hybridlab_wire::Health>(&body)
                                .map_err(|err| err.to_string())
                        });
                    match health {
                        Ok(health) if health.status == "ok" => {
                            return Ok((
                                Outcome::Done(format!(
                                    "healthy: version {}, bucket {}, table {}, TLS certificate SHA-256 {pin}",
                                    health.version, health.bucket, health.table
                                )),
                                (),
                            ));
                        }
                        Ok(health) => last = format!("status {}", health.status),
                        Err(err) => last = format!("unreadable /health: {err}"),
                    }
                }
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(err) => last = err.to_string(),
            }
            // On AWS the address comes before the user-data has run: a failed script shows
            // here, in the console output (every sixth try: EC2 updates it slowly anyway).
            if attempts.is_multiple_of(6) {
                self.check_user_data(instance_id).await?;
            }
            if Instant::now() > deadline {
                return Err(StackError::Timeout {
                    what: format!(
                        "{url} answering (last: {last}); the server's log group {} may tell why",
                        self.names.server_log_group
                    ),
                    after: patience,
                });
            }
            tokio::time::sleep(self.clients.poll_pause(Duration::from_secs(5))).await;
        }
    }

    async fn function(
        &self,
        role_arn: &str,
        artifacts: &Artifacts,
        endpoint: &str,
        secrets: &ServerSecrets,
    ) -> Result<(Outcome, String), StackError> {
        let spec = FunctionSpec {
            step: Step::Function,
            name: &self.names.function,
            description: format!("hybridlab stack {}: proxy to the image server", self.id),
            binary: &artifacts.proxy_binary,
            variables: [
                ("EC2_ENDPOINT".to_owned(), endpoint.to_owned()),
                (TOKEN_ENV.to_owned(), secrets.token.clone()),
                (
                    CERT_PIN_ENV.to_owned(),
                    secrets.certificate.fingerprint().to_string(),
                ),
            ]
            .into(),
            memory_mb: self.settings.function_memory_mb,
            timeout_seconds: self.settings.function_timeout_seconds,
        };
        let (outcome, arn) = self.deploy_function(role_arn, &spec).await?;
        self.output(|state| state.outputs.function_arn = Some(arn.clone()))?;
        Ok((outcome, arn))
    }

    /// The first wave's pipeline steps (buckets, log group, role), run only for a stack with
    /// the pipeline; returns the resizer's role ARN then.
    async fn pipeline_wave(&self) -> Result<Option<String>, StackError> {
        if !self.settings.pipeline {
            return Ok(None);
        }
        let names = &self.names;
        let (uploads, processed, log_group, role) = tokio::join!(
            self.step(Step::UploadsBucket, &names.uploads_bucket, async {
                let made = self
                    .bucket(Step::UploadsBucket, &names.uploads_bucket, true)
                    .await?;
                self.uploads_cors().await?;
                Ok(made)
            }),
            self.step(
                Step::ProcessedBucket,
                &names.processed_bucket,
                self.bucket(Step::ProcessedBucket, &names.processed_bucket, true)
            ),
            self.step(
                Step::ResizerLogGroup,
                &names.resizer_log_group,
                self.log_group(&names.resizer_log_group)
            ),
            self.step(
                Step::ResizerRole,
                &names.resizer_role,
                self.function_role(&names.resizer_role, |arns| resizer_policy(names, arns))
            ),
        );
        uploads?;
        processed?;
        log_group?;
        role.map(Some)
    }

    /// Sets the uploads bucket's CORS rule ([`uploads_cors`]).
    async fn uploads_cors(&self) -> Result<(), StackError> {
        let wanted = uploads_cors();
        let rule = CorsRule::builder()
            .set_allowed_methods(Some(
                wanted.methods.iter().map(|m| (*m).to_owned()).collect(),
            ))
            .set_allowed_origins(Some(
                wanted.origins.iter().map(|o| (*o).to_owned()).collect(),
            ))
            .set_allowed_headers(Some(
                wanted.headers.iter().map(|h| (*h).to_owned()).collect(),
            ))
            .max_age_seconds(wanted.max_age_seconds)
            .build()
            .map_err(invalid("CORS rule"))?;
        self.clients
            .s3
            .put_bucket_cors()
            .bucket(&self.names.uploads_bucket)
            .cors_configuration(
                CorsConfiguration::builder()
                    .cors_rules(rule)
                    .build()
                    .map_err(invalid("CORS configuration"))?,
            )
            .send()
            .await
            .map_err(|err| sdk_error("s3:PutBucketCors", err))?;
        Ok(())
    }

    async fn resizer(
        &self,
        role_arn: &str,
        artifacts: &Artifacts,
    ) -> Result<(Outcome, String), StackError> {
        let binary = artifacts.resizer_binary.as_ref().ok_or_else(|| {
            StackError::Invalid("the build made no resizer for a stack with the pipeline".into())
        })?;
        let spec = FunctionSpec {
            step: Step::Resizer,
            name: &self.names.resizer,
            description: format!(
                "hybridlab stack {}: makes the variants of each upload",
                self.id
            ),
            binary,
            variables: [
                ("HYBRIDLAB_TABLE".to_owned(), self.names.table.clone()),
                (
                    "HYBRIDLAB_PROCESSED_BUCKET".to_owned(),
                    self.names.processed_bucket.clone(),
                ),
            ]
            .into(),
            memory_mb: RESIZER_MEMORY_MB,
            timeout_seconds: RESIZER_TIMEOUT_SECONDS,
        };
        self.deploy_function(role_arn, &spec).await
    }

    /// Lets S3 invoke the resizer for this account's uploads bucket, then points the bucket's
    /// notification at it: in this order, because S3 checks that it may invoke the function
    /// when the notification is set.
    async fn resizer_trigger(
        &self,
        role_arn: &str,
        resizer_arn: &str,
    ) -> Result<(Outcome, ()), StackError> {
        let context =
            ArnContext::from_role_arn(role_arn, &self.settings.region).ok_or_else(|| {
                StackError::Invalid(format!("IAM answered an unexpected role ARN `{role_arn}`"))
            })?;
        let bucket = &self.names.uploads_bucket;
        let mut changed = Vec::new();
        let granted = self
            .has_permission(&self.names.resizer, RESIZER_PERMISSION_ID)
            .await?;
        if !granted {
            match self
                .clients
                .lambda
                .add_permission()
                .function_name(&self.names.resizer)
                .statement_id(RESIZER_PERMISSION_ID)
                .action("lambda:InvokeFunction")
                .principal("s3.amazonaws.com")
                .source_arn(format!("arn:{}:s3:::{bucket}", context.partition))
                // A bucket name can pass to another account once deleted: the account pins it.
                .source_account(&context.account)
                .send()
                .await
            {
                Ok(_) => changed.push("invoke permission for S3"),
                Err(err) if code_of(&err) == Some("ResourceConflictException") => {}
                Err(err) => return Err(sdk_error("lambda:AddPermission", err)),
            }
        }
        let wanted = LambdaFunctionConfiguration::builder()
            .id(RESIZER_NOTIFICATION_ID)
            .lambda_function_arn(resizer_arn)
            .events(Event::from(UPLOAD_EVENT))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value(UPLOADS_PREFIX)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(invalid("bucket notification"))?;
        // Only to tell "in place" from "set": whatever keeps it from being read, the put below
        // either succeeds or reports the real problem. (moto answers a bucket without any
        // configuration with an empty body the SDK cannot parse.)
        let in_place = self
            .clients
            .s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .is_ok_and(|current| {
                current
                    .lambda_function_configurations()
                    .iter()
                    .any(|found| {
                        found.lambda_function_arn() == resizer_arn
                            && found.events() == wanted.events()
                            && found.filter() == wanted.filter()
                    })
            });
        if !in_place {
            self.clients
                .s3
                .put_bucket_notification_configuration()
                .bucket(bucket)
                .notification_configuration(
                    NotificationConfiguration::builder()
                        .lambda_function_configurations(wanted)
                        .build(),
                )
                .send()
                .await
                .map_err(|err| sdk_error("s3:PutBucketNotificationConfiguration", err))?;
            changed.push("notification");
        }
        let what = format!("s3:ObjectCreated:* under {UPLOADS_PREFIX} runs the resizer");
        Ok((
            if changed.is_empty() {
                Outcome::Skipped(format!("in place: {what}"))
            } else {
                Outcome::Done(format!("{} set: {what}", changed.join(" and ")))
            },
            (),
        ))
    }

    /// Creates the function `spec` describes, or brings the environment of an existing one in
    /// line; waits until it is Active and returns its ARN.
    async fn deploy_function(
        &self,
        role_arn: &str,
        spec: &FunctionSpec<'_>,
    ) -> Result<(Outcome, String), StackError> {
        let lambda = &self.clients.lambda;
        let environment = Environment::builder()
            .set_variables(Some(spec.variables.clone()))
            .build();
        let outcome = match lambda
            .get_function_configuration()
            .function_name(spec.name)
            .send()
            .await
        {
            Ok(config) => {
                let current = config
                    .environment()
                    .and_then(|e| e.variables())
                    .cloned()
                    .unwrap_or_default();
                if current == spec.variables {
                    Outcome::Skipped("exists".into())
                } else {
                    // Lambda refuses an update while the last one is in progress.
                    self.wait_active(spec).await?;
                    lambda
                        .update_function_configuration()
                        .function_name(spec.name)
                        .environment(environment)
                        .send()
                        .await
                        .map_err(|err| sdk_error("lambda:UpdateFunctionConfiguration", err))?;
                    let mut changed: Vec<&str> = spec
                        .variables
                        .iter()
                        .filter(|(key, value)| current.get(*key) != Some(value))
                        .map(|(key, _)| key.as_str())
                        .collect();
                    changed.sort_unstable();
                    Outcome::Done(format!(
                        "exists; environment updated ({})",
                        changed.join(", ")
                    ))
                }
            }
            Err(err) if is_not_found(&err) => {
                let binary = spec.binary.to_path_buf();
                let zip = tokio::task::spawn_blocking(move || {
                    hybridlab_wire::package::package_bootstrap(&binary)
                })
                .await
                .map_err(|err| StackError::Invalid(format!("packaging task: {err}")))?
                .map_err(|err| StackError::Invalid(format!("packaging bootstrap.zip: {err}")))?;
                self.create_function(role_arn, spec, zip, environment)
                    .await?;
                Outcome::Done("created".into())
            }
            Err(err) => return Err(sdk_error("lambda:GetFunctionConfiguration", err)),
        };
        let arn = self.wait_active(spec).await?;
        Ok((outcome, arn))
    }

    async fn create_function(
        &self,
        role_arn: &str,
        spec: &FunctionSpec<'_>,
        zip: Vec<u8>,
        environment: Environment,
    ) -> Result<(), StackError> {
        // A new role takes a few seconds before Lambda may assume it on AWS.
        let created = self
            .while_settling(
                (spec.step, spec.name),
                "the execution role has not reached Lambda yet",
                self.clients.patience(Duration::from_secs(120)),
                |err| {
                    code_of(err) == Some("InvalidParameterValueException")
                        && format!("{}", aws_sdk_lambda::error::DisplayErrorContext(err))
                            .contains("cannot be assumed")
                },
                || {
                    self.clients
                        .lambda
                        .create_function()
                        .function_name(spec.name)
                        .runtime(Runtime::Providedal2023)
                        .architectures(Architecture::X8664)
                        .handler("bootstrap")
                        .role(role_arn)
                        .memory_size(spec.memory_mb)
                        .timeout(spec.timeout_seconds)
                        .description(&spec.description)
                        .environment(environment.clone())
                        .tags(STACK_TAG, self.id.as_str())
                        .code(
                            FunctionCode::builder()
                                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip.clone()))
                                .build(),
                        )
                        .send()
                },
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err) if code_of(&err) == Some("ResourceConflictException") => Ok(()),
            Err(err) => Err(sdk_error("lambda:CreateFunction", err)),
        }
    }

    /// Waits until the function is Active and its last update is done; returns its ARN.
    async fn wait_active(&self, spec: &FunctionSpec<'_>) -> Result<String, StackError> {
        let name = spec.name;
        let patience = self.clients.patience(Duration::from_secs(180));
        let started = Instant::now();
        let deadline = started + patience;
        let mut reported = None;
        loop {
            let config = self
                .clients
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(|err| sdk_error("lambda:GetFunctionConfiguration", err))?;
            let updating = config.last_update_status()
                == Some(&aws_sdk_lambda::types::LastUpdateStatus::InProgress);
            let phase = (config.state().cloned(), updating);
            if reported.as_ref() != Some(&phase) {
                let waiting_for = match &phase {
                    (Some(State::Pending), _) => Some("Pending: Lambda is creating the function"),
                    (Some(State::Active), true) => Some("an update is in progress"),
                    _ => None,
                };
                if let Some(waiting_for) = waiting_for {
                    self.waiting(spec.step, name, started, waiting_for.to_owned());
                }
                reported = Some(phase);
            }
            match config.state() {
                Some(State::Active) if !updating => {
                    return Ok(config.function_arn().unwrap_or_default().to_owned());
                }
                Some(State::Failed) => {
                    return Err(StackError::Invalid(format!(
                        "function {name} failed: {}",
                        config.state_reason().unwrap_or("no reason given")
                    )));
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(StackError::Timeout {
                    what: format!("function {name} becoming Active"),
                    after: patience,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
