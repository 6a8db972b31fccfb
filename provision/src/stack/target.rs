//! Where a stack lives: the local sandbox (an endpoint on loopback) or an AWS account reached
//! through the standard credential chain. Both get the same SDK clients, so every step of
//! `up`, `down` and `status` is one code path.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::ProvideCredentials;

use super::error::StackError;
use hybridlab_wire::sandbox::{
    DEFAULT_EDGE_PORT, DEFAULT_REGION, OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY,
};

/// Which target to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local sandbox, or another AWS-compatible endpoint, at this URL.
    Sandbox { endpoint: String },
    /// AWS itself; `None` means the credential chain's default.
    Aws {
        region: Option<String>,
        profile: Option<String>,
    },
}

/// SDK clients for every service the stack uses, all on one target.
#[derive(Debug, Clone)]
pub struct StackClients {
    pub target: Target,
    pub region: String,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub lambda: aws_sdk_lambda::Client,
    /// The jobs variant's HTTP API.
    pub apigateway: aws_sdk_apigatewayv2::Client,
    /// For the server's `/health`.
    pub http: reqwest::Client,
    /// What the clients were built from: endpoint, region and credentials provider, for
    /// callers that sign their own requests (the benchmark engine).
    pub config: aws_config::SdkConfig,
    /// The AWS account the credentials belong to (STS GetCallerIdentity); `None` on the
    /// sandbox, whose state is kept by port.
    pub account: Option<String>,
}

impl StackClients {
    /// Clients for `target`; on AWS, fails early and clearly without credentials or a region.
    pub async fn connect(target: &Target) -> Result<Self, StackError> {
        let config = match target {
            Target::Sandbox { endpoint } => {
                aws_config::defaults(BehaviorVersion::latest())
                    .region(aws_config::Region::new(DEFAULT_REGION))
                    .endpoint_url(endpoint)
                    .credentials_provider(aws_sdk_s3::config::Credentials::new(
                        OPERATOR_ACCESS_KEY_ID,
                        OPERATOR_SECRET_ACCESS_KEY,
                        None,
                        None,
                        "hybridlab-sandbox",
                    ))
                    .load()
                    .await
            }
            Target::Aws { region, profile } => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(profile) = profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(region) = region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                let config = loader.load().await;
                let provider = config.credentials_provider().ok_or_else(|| {
                    StackError::Credentials("no credential provider is configured".into())
                })?;
                provider
                    .provide_credentials()
                    .await
                    .map_err(|err| StackError::Credentials(err.to_string()))?;
                config
            }
        };
        let account = match target {
            Target::Sandbox { .. } => None,
            Target::Aws { .. } => Some(caller_account(&config).await?),
        };
        let region = config
            .region()
            .map(|region| region.to_string())
            .ok_or(StackError::NoRegion)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| StackError::Invalid(format!("HTTP client: {err}")))?;
        Ok(Self {
            target: target.clone(),
            region,
            // Path-style addressing: an emulator's endpoint has no bucket subdomains, and AWS
            // answers both.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigateway: aws_sdk_apigatewayv2::Client::new(&config),
            http,
            config,
            account,
        })
    }

    /// The same target and credentials in another region (`down --all` looks in each).
    pub fn in_region(&self, region: &str) -> Self {
        let config = self
            .config
            .to_builder()
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        Self {
            target: self.target.clone(),
            region: region.to_owned(),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigateway: aws_sdk_apigatewayv2::Client::new(&config),
            http: self.http.clone(),
            config,
            account: self.account.clone(),
        }
    }

    pub fn is_sandbox(&self) -> bool {
        matches!(self.target, Target::Sandbox { .. })
    }

    /// What the target is, for headers and state files: `local sandbox (<endpoint>)` or
    /// `AWS <region>`, with the profile and any endpoint the environment or the AWS config
    /// redirects AWS's calls to (`AWS_ENDPOINT_URL`), so a redirected run never looks like AWS.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Sandbox { endpoint } => format!("local sandbox ({endpoint})"),
            Target::Aws { profile, .. } => {
                let mut described = format!("AWS {}", self.region);
                if let Some(profile) = profile {
                    described.push_str(&format!(" (profile {profile})"));
                }
                let overrides = self.endpoint_overrides(|name| std::env::var(name).ok());
                if !overrides.is_empty() {
                    described.push_str(&format!(" via {}", overrides.join(", ")));
                }
                described
            }
        }
    }

    /// The endpoints that replace AWS's own for an AWS target, as `NAME=url`: the global one
    /// (`AWS_ENDPOINT_URL` or the profile's `endpoint_url`, as the SDK resolved it) and the
    /// services' own variables (`AWS_ENDPOINT_URL_S3`, ...), unless
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` turns them off. Empty on the sandbox, whose
    /// endpoint is the target itself.
    pub fn endpoint_overrides(&self, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
        if self.is_sandbox() {
            return Vec::new();
        }
        let ignored =
            env(IGNORE_ENDPOINTS_ENV).is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if ignored {
            return Vec::new();
        }
        let global = self.config.endpoint_url().map(|url| {
            let from_env = env(ENDPOINT_URL_ENV).is_some_and(|value| value == url);
            let name = if from_env {
                ENDPOINT_URL_ENV
            } else {
                "endpoint_url"
            };
            format!("{name}={url}")
        });
        let services = SERVICE_ENDPOINT_SUFFIXES.iter().filter_map(|service| {
            let name = format!("{ENDPOINT_URL_ENV}_{service}");
            env(&name)
                .filter(|url| !url.is_empty())
                .map(|url| format!("{name}={url}"))
        });
        global.into_iter().chain(services).collect()
    }

    /// The directory name of this target's state files: `sandbox` for the default sandbox,
    /// `sandbox-<port>` for another endpoint (a test's, say), `aws-<account>-<region>` on AWS,
    /// so two accounts never share state, and two profiles of one account do.
    pub fn state_key(&self) -> String {
        match &self.target {
            Target::Sandbox { endpoint } => {
                let port = url::Url::parse(endpoint)
                    .ok()
                    .and_then(|url| url.port_or_known_default());
                sandbox_state_key(port.unwrap_or(DEFAULT_EDGE_PORT))
            }
            Target::Aws { .. } => format!(
                "aws-{}-{}",
                self.account.as_deref().unwrap_or("unknown"),
                self.region
            ),
        }
    }

    /// The name earlier releases gave this AWS target's state (`aws-<profile>-<region>`,
    /// without the account), for the one-time move to [`Self::state_key`]; `None` on the
    /// sandbox.
    pub fn legacy_state_key(&self) -> Option<String> {
        match &self.target {
            Target::Sandbox { .. } => None,
            Target::Aws { profile, .. } => Some(format!(
                "aws-{}-{}",
                profile.as_deref().unwrap_or("default"),
                self.region
            )),
        }
    }

    /// The pause between polls: short on the sandbox, where things happen at once, `on_aws`
    /// on AWS, where they take seconds and every call counts against rate limits.
    pub(crate) fn poll_pause(&self, on_aws: Duration) -> Duration {
        if self.is_sandbox() {
            Duration::from_millis(200)
        } else {
            on_aws
        }
    }

    /// How long to wait for things that take minutes on AWS and moments in the sandbox.
    pub(crate) fn patience(&self, on_aws: Duration) -> Duration {
        if self.is_sandbox() {
            Duration::from_secs(60).min(on_aws)
        } else {
            on_aws
        }
    }
}

/// The AWS CLI's and SDKs' variable that redirects every AWS call, and the prefix of the
/// services' own ones (`AWS_ENDPOINT_URL_S3`, ...).
pub const ENDPOINT_URL_ENV: &str = "AWS_ENDPOINT_URL";
/// Set to `true`, the SDKs ignore every configured endpoint URL.
pub const IGNORE_ENDPOINTS_ENV: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// The `AWS_ENDPOINT_URL_<SERVICE>` suffixes of the services the lab calls (the SDK's service
/// ids, upper-cased, spaces as underscores).
const SERVICE_ENDPOINT_SUFFIXES: [&str; 8] = [
    "S3",
    "DYNAMODB",
    "IAM",
    "CLOUDWATCH_LOGS",
    "EC2",
    "LAMBDA",
    "APIGATEWAYV2",
    "STS",
];

/// The account the credentials in `config` belong to. GetCallerIdentity needs no permission,
/// so it fails only when the credentials do.
async fn caller_account(config: &aws_config::SdkConfig) -> Result<String, StackError> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| super::error::sdk_error("sts:GetCallerIdentity", err))?;
    identity
        .account
        .ok_or_else(|| StackError::Invalid("STS GetCallerIdentity named no account".into()))
}

/// The state directory name of the sandbox on `port`: `sandbox` for the default port,
/// `sandbox-<port>` for another.
pub fn sandbox_state_key(port: u16) -> String {
    if port == DEFAULT_EDGE_PORT {
        "sandbox".into()
    } else {
        format!("sandbox-{port}")
    }
}

/// The port of a sandbox's state directory name; `None` for an AWS target's.
pub fn sandbox_port_of_state_key(key: &str) -> Option<u16> {
    match key {
        "sandbox" => Some(DEFAULT_EDGE_PORT),
        _ => key.strip_prefix("sandbox-")?.parse().ok(),
    }
}
