//! The lab's Lambda functions: `proxy` calls the image server on EC2 synchronously with an image
//! URL and returns its answer with the Lambda's own timings; `resizer` (feature `resizer`) makes
//! the variants of each uploaded object an S3 event names and moves its row to COMPLETED or FAILED;
//! the job-worker variant's (feature `jobs`): `submit` behind the HTTP API writes jobs, and
//! `launcher` starts a worker instance for each job the jobs table's stream reports, under
//! the stack's cap.
//!
//! Handlers live in modules that take plain inputs, so they are tested without the Lambda
//! runtime.

#[cfg(feature = "jobs")]
pub mod launcher;
pub mod proxy;
#[cfg(feature = "resizer")]
pub mod resizer;
#[cfg(feature = "jobs")]
pub mod submit;

/// Logs one JSON object per line, so CloudWatch Logs Insights can filter on fields; no
/// timestamps or colours, CloudWatch adds its own. `RUST_LOG` picks the level (`info`).
pub fn log_json_lines() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

/// An S3 client for `shared`: a custom endpoint (moto, the sandbox's edge) serves buckets by
/// path, not by host.
#[cfg(any(feature = "resizer", feature = "jobs"))]
fn s3_client(shared: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(shared.endpoint_url().is_some())
            .build(),
    )
}

/// An environment variable a function cannot start without (an empty value counts as none).
#[cfg(feature = "jobs")]
fn required_env(name: &str) -> Result<String, lambda_runtime::Error> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("{name} is not set").into())
}
