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
        }
    }

    pub fn is_sandbox(&self) -> bool {
        matches!(self.target, Target::Sandbox { .. })
    }

    /// What the target is, for headers and state files: `sandbox` or `aws/<region>`.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Sandbox { endpoint } => format!("local sandbox ({endpoint})"),
            Target::Aws { profile, .. } => match profile {
                Some(profile) => format!("AWS {} (profile {profile})", self.region),
                None => format!("AWS {}", self.region),
            },
        }
    }

    /// The directory name of this target's state files: `sandbox` for the default sandbox,
    /// `sandbox-<port>` for another endpoint (a test's, say), `aws-<profile>-<region>`.
    pub fn state_key(&self) -> String {
        match &self.target {
            Target::Sandbox { endpoint } => {
                let port = url::Url::parse(endpoint)
                    .ok()
                    .and_then(|url| url.port_or_known_default());
                sandbox_state_key(port.unwrap_or(DEFAULT_EDGE_PORT))
            }
            Target::Aws { profile, .. } => {
                format!(
                    "aws-{}-{}",
                    profile.as_deref().unwrap_or("default"),
                    self.region
                )
            }
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
