//! The local sandbox, AWS on loopback: moto's server on an internal port, and hybridlab's
//! compute agent on the edge port in front of it, which runs what AWS would run as local
//! processes. It knows nothing of stacks: whoever starts it forgets dead stacks' state.
//!
//! The agent forwards every AWS call to moto except the ones that need compute: Lambda
//! `Invoke` runs the deployed `bootstrap` (see [`lambda_host`]), running image-server
//! instances boot: their user-data runs and what it starts becomes local processes (see
//! [`ec2_host`] and `instance_os`), and S3 event notifications reach
//! their functions (see [`s3_events`]).
//!
//! Each function environment and each instance gets credentials of its own role, as on AWS
//! (see [`principals`]; instances fetch theirs from [`imds`]), and the edge knows every
//! request's caller. IAM is enforced for those keys: each request is decided against its
//! role's policies before moto sees it (see [`authorizer`]). AWS's waits (IAM propagation,
//! instance boot, functions Pending) and control-plane rates are kept too (see [`timing`]),
//! and each function environment gets the CPU share of its memory (see [`cpu_share`]).

pub mod authorizer;
pub mod code;
pub mod control;
pub mod cpu_share;
pub mod ec2_host;
pub mod edge;
pub mod http_api;
pub mod iam;
pub mod imds;
mod instance_os;
pub mod lambda_host;
pub mod logs;
pub mod moto;
mod output;
pub mod principals;
pub mod resource_tags;
pub mod runtime_api;
pub mod s3_events;
mod spawner;
pub mod stream_mapping;
pub mod sts;
pub mod timing;
pub mod web_guard;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::oneshot;

use crate::moto::{MotoError, MotoServer};
use authorizer::{Authorizer, IamMode};
use code::CodeStore;
use cpu_share::CpuShare;
use ec2_host::{Ec2Host, Ec2Settings};
use hybridlab_tools::{ensure_aws_cli, ensure_moto};
use hybridlab_wire::sandbox::{
    DEFAULT_EDGE_PORT, DEFAULT_REGION, OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY,
};
use lambda_host::{HostSettings, LambdaHost};
use logs::LogShipper;
use principals::{PrincipalTable, RoleDirectory};
use spawner::Spawner;
use timing::{Settling, Timing};

/// Lambda's concurrency quota of an established account.
pub const DEFAULT_LAMBDA_CONCURRENCY: usize = 1000;
/// What a new account gets until it has been used for a while.
pub const NEW_ACCOUNT_LAMBDA_CONCURRENCY: usize = 10;

/// EC2's default quota of Running On-Demand Standard instances, in vCPUs (sixteen t3.micro).
pub const DEFAULT_VCPU_LIMIT: u32 = 32;

/// The account every sandbox resource belongs to: moto's default account.
pub const SANDBOX_ACCOUNT: &str = "123456789012";

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// 0 lets the OS choose (tests).
    pub edge_port: u16,
    /// Where code, instance binaries and moto's log go.
    pub state_dir: PathBuf,
    /// The most function environments running at once (the account's concurrency limit):
    /// 1,000 as on an established AWS account, 10 as on a new one.
    pub concurrency_limit: usize,
    /// AWS's waits: IAM propagation, functions Pending, instances booting.
    pub timing: Timing,
    /// EC2's quota of On-Demand vCPUs running at once: a launch past it is refused with
    /// `VcpuLimitExceeded`.
    pub vcpu_limit: u32,
    pub region: String,
    /// Whether IAM is enforced for the sandbox's principals.
    pub iam: IamMode,
    /// The operator's identity policy, enforced for every request signed with a key the
    /// sandbox did not issue (`--operator-policy`); `None`: the operator may do anything.
    pub operator_policy: Option<Vec<iam::Policy>>,
}

impl SandboxOptions {
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            edge_port: DEFAULT_EDGE_PORT,
            state_dir,
            concurrency_limit: DEFAULT_LAMBDA_CONCURRENCY,
            vcpu_limit: DEFAULT_VCPU_LIMIT,
            timing: Timing::realistic(),
            region: DEFAULT_REGION.to_owned(),
            iam: IamMode::Enforce,
            operator_policy: None,
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Moto(#[from] MotoError),
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source}; is another sandbox or emulator running? (`hybridlab sandbox status`)"
    )]
    Listen { port: u16, source: std::io::Error },
    #[error("cannot use the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Client(String),
}

/// A running sandbox. [`Sandbox::stop`] (or dropping it) stops every process it runs.
#[derive(Debug)]
pub struct Sandbox {
    endpoint: String,
    port: u16,
    moto: MotoServer,
    lambda: Arc<LambdaHost>,
    cpu_share: Arc<CpuShare>,
    ec2: Arc<Ec2Host>,
    stop_edge: Option<oneshot::Sender<()>>,
    stop_ec2: Option<oneshot::Sender<()>>,
    edge: Option<tokio::task::JoinHandle<()>>,
}

/// The bytes of `s3://bucket/key`, or a one-line reason.
pub(crate) async fn fetch_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| {
            format!(
                "s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            )
        })?;
    Ok(object
        .body
        .collect()
        .await
        .map_err(|err| format!("s3://{bucket}/{key}: {err}"))?
        .into_bytes()
        .to_vec())
}

/// SDK configuration for talking straight to moto (or the edge), with the sandbox's throwaway
/// operator credentials.
pub async fn sdk_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    sdk_config_as(
        endpoint,
        region,
        aws_sdk_s3::config::Credentials::new(
            OPERATOR_ACCESS_KEY_ID,
            OPERATOR_SECRET_ACCESS_KEY,
            None,
            None,
            "hybridlab-sandbox",
        ),
    )
    .await
}

/// SDK configuration for `endpoint` signing with `credentials` (an issued role session's, say).
pub async fn sdk_config_as(
    endpoint: &str,
    region: &str,
    credentials: aws_sdk_s3::config::Credentials,
) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// An S3 client for an AWS-compatible endpoint (path-style addressing).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

impl Sandbox {
    /// Installs moto if needed (telling `progress`), starts it and the agent.
    pub async fn start(
        options: SandboxOptions,
        progress: impl FnMut(&str) + Send + 'static,
    ) -> Result<Self, SandboxError> {
        let state_dir = options.state_dir.clone();
        std::fs::create_dir_all(&state_dir).map_err(|source| SandboxError::StateDir {
            path: state_dir.clone(),
            source,
        })?;
        let log = state_dir.join("moto.log");
        let (moto, aws_cli) = tokio::task::spawn_blocking(move || {
            let mut progress = progress;
            let install = ensure_moto(&mut progress).map_err(MotoError::from)?;
            // The instances' user-data calls `aws`: the real CLI, in the same virtualenv.
            let aws_cli = ensure_aws_cli(&mut progress).map_err(MotoError::from)?;
            MotoServer::start(&install, 0, &log).map(|moto| (moto, aws_cli))
        })
        .await
        .map_err(|err| SandboxError::Client(err.to_string()))??;

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.edge_port))
            .await
            .map_err(|source| SandboxError::Listen {
                port: options.edge_port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| SandboxError::Listen {
                port: options.edge_port,
                source,
            })?
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");

        let config = sdk_config(&moto.endpoint(), &options.region).await;
        let s3 = s3_client(&config);
        let spawner = Spawner::start().map_err(|err| {
            SandboxError::Client(format!(
                "cannot start the thread that starts processes: {err}"
            ))
        })?;
        let code = Arc::new(CodeStore::new(state_dir.join("code")));
        let principals = Arc::new(PrincipalTable::default());
        let roles = RoleDirectory::new(aws_sdk_iam::Client::new(&config));
        let mut authorizer = Authorizer::new(
            options.iam,
            roles.clone(),
            aws_sdk_ec2::Client::new(&config),
            SANDBOX_ACCOUNT,
            &options.region,
        );
        if let Some(policies) = options.operator_policy.clone() {
            authorizer = authorizer.with_operator_policy(policies);
        }
        let resource_tags = Arc::new(resource_tags::ResourceTags::default());
        authorizer = authorizer
            .with_resource_tags(resource_tags.clone())
            .with_propagation(options.timing.iam_propagation)
            .with_bucket_policies(s3.clone());
        let authorizer = Arc::new(authorizer);
        let logs = LogShipper::start(
            aws_sdk_cloudwatchlogs::Client::new(&config),
            Some(authorizer.clone()),
        );
        let cpu_share = Arc::new(CpuShare::start());
        tracing::info!("{}", cpu_share.status().line());
        let lambda = Arc::new(LambdaHost::new(
            aws_sdk_lambda::Client::new(&config),
            code.clone(),
            logs.clone(),
            spawner.clone(),
            principals.clone(),
            roles.clone(),
            HostSettings {
                region: options.region.clone(),
                edge_endpoint: endpoint.clone(),
                concurrency_limit: options.concurrency_limit.max(1),
                cpu_share: cpu_share.clone(),
            },
        ));
        let settling = Arc::new(Settling::new(options.timing));
        let consoles = Arc::new(ec2_host::ConsoleOutputs::default());
        let ec2 = Arc::new(Ec2Host::new(
            aws_sdk_ec2::Client::new(&config),
            logs,
            spawner,
            principals.clone(),
            roles,
            Ec2Settings {
                edge_endpoint: endpoint.clone(),
                state_dir: state_dir.clone(),
                aws_cli,
                settling: settling.clone(),
                consoles: consoles.clone(),
            },
        ));
        let (stop_ec2, ec2_stopped) = oneshot::channel();
        tokio::spawn(ec2.clone().run(ec2_stopped));

        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|err| SandboxError::Client(err.to_string()))?;
        let status = {
            let lambda = lambda.clone();
            let ec2 = ec2.clone();
            let moto_endpoint = moto.endpoint();
            let principals = principals.clone();
            let timing = options.timing;
            let lambda_concurrency = options.concurrency_limit.max(1);
            let vcpu_limit = options.vcpu_limit;
            let lambda_cpu = serde_json::to_value(cpu_share.status()).unwrap_or_default();
            Arc::new(move || {
                let environments: Vec<_> = lambda
                    .environments()
                    .into_iter()
                    .map(|(name, count)| json!({"function": name, "environments": count}))
                    .collect();
                let instances = ec2.servers();
                json!({
                    "status": "running",
                    "moto": moto_endpoint,
                    "functions": environments,
                    "instances": instances,
                    "principals": principals.summary(),
                    "timing": {
                        "iam_propagation_seconds": timing.iam_propagation.as_secs_f64(),
                        "instance_boot_seconds": timing.instance_boot.as_secs_f64(),
                        "function_pending_seconds": timing.function_create.as_secs_f64(),
                        "function_update_seconds": timing.function_update.as_secs_f64(),
                        "bucket_name_reuse_seconds": timing.bucket_name_reuse.as_secs_f64(),
                        "throttling": timing.throttling,
                    },
                    "lambda_concurrency": lambda_concurrency,
                    "vcpu_limit": vcpu_limit,
                    (hybridlab_wire::lambda_cpu::STATUS_FIELD): lambda_cpu.clone(),
                })
            })
        };
        let stream_mappings = Arc::new(stream_mapping::StreamMappings::new(
            stream_mapping::Services {
                moto_endpoint: moto.endpoint(),
                http: client.clone(),
                lambda: lambda.clone(),
                lambda_control: aws_sdk_lambda::Client::new(&config),
                authorizer: authorizer.clone(),
                tags: resource_tags,
                region: options.region.clone(),
                account: SANDBOX_ACCOUNT.to_owned(),
            },
        ));
        let http_apis = Arc::new(http_api::HttpApis {
            moto_endpoint: moto.endpoint(),
            edge_endpoint: endpoint.clone(),
            http: client.clone(),
            lambda: lambda.clone(),
            lambda_control: aws_sdk_lambda::Client::new(&config),
            region: options.region.clone(),
            account: SANDBOX_ACCOUNT.to_owned(),
        });
        let router = edge::router(edge::EdgeState {
            moto_endpoint: moto.endpoint(),
            client,
            stream_mappings,
            http_apis,
            vcpu_quota: Arc::new(edge::VcpuQuota::new(
                aws_sdk_ec2::Client::new(&config),
                options.vcpu_limit,
            )),
            lambda: lambda.clone(),
            code,
            s3,
            notifications: Arc::new(s3_events::NotificationCache::default()),
            region: options.region.clone(),
            status,
            dynamodb_writes: Arc::default(),
            principals,
            authorizer,
            settling,
            lambda_control: aws_sdk_lambda::Client::new(&config),
            consoles,
        });
        let (stop_edge, edge_stopped) = oneshot::channel::<()>();
        let edge = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = edge_stopped.await;
                })
                .await;
        });
        tracing::info!(endpoint = %endpoint, moto = %moto.endpoint(), "sandbox running");
        Ok(Self {
            endpoint,
            port,
            moto,
            lambda,
            cpu_share,
            ec2,
            stop_edge: Some(stop_edge),
            stop_ec2: Some(stop_ec2),
            edge: Some(edge),
        })
    }

    /// `http://127.0.0.1:<edge port>`: the endpoint URL for every AWS client.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The edge port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// moto's own endpoint, behind the agent.
    pub fn moto_endpoint(&self) -> String {
        self.moto.endpoint()
    }

    /// The instances the sandbox runs as server processes.
    pub fn servers(&self) -> Vec<ec2_host::MaterializedServer> {
        self.ec2.servers()
    }

    /// How each function environment's CPU follows its memory here, or why it does not.
    pub fn lambda_cpu(&self) -> &hybridlab_wire::lambda_cpu::LambdaCpuShare {
        self.cpu_share.status()
    }

    /// Stops the edge, every function environment and server process, and moto.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop_ec2.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_edge.take() {
            let _ = stop.send(());
        }
        if let Some(edge) = self.edge.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), edge).await;
        }
        for (name, _) in self.lambda.environments() {
            self.lambda.invalidate(&name);
        }
        self.cpu_share.release().await;
        self.moto.stop();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_ec2.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_edge.take() {
            let _ = stop.send(());
        }
        self.moto.stop();
    }
}
