//! The proxy Lambda's entry point: reads its configuration and builds its HTTP client once per
//! execution environment, then hands each invocation to `ProxyFunction::handle`.

use hybridlab_lambda::proxy::{ProxyConfig, ProxyFunction};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Plain text without colours or timestamps: CloudWatch adds its own, and ANSI codes only
    // clutter the log view.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();

    // An unusable environment fails init, which Lambda reports as Runtime.ExitError with this
    // message in the log, instead of failing every invocation the same way.
    let config = ProxyConfig::from_env()?;
    let function = ProxyFunction::new(config)?;
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(function.handle(event).await)
    }))
    .await
}
