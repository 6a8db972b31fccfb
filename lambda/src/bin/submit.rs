//! The submit Lambda's entry point: behind the jobs variant's HTTP API, it writes and reads
//! jobs (see `hybridlab_lambda::submit`).

use hybridlab_lambda::submit::{Submit, SubmitConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
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
    let config = SubmitConfig::from_env()?;
    let submit = Submit::from_env(config).await;
    let submit = &submit;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        submit.handle(event).await
    }))
    .await
}
