//! The launcher Lambda's entry point: reads its configuration and builds its clients once per
//! execution environment, then hands each batch of the jobs table's stream records to
//! `Launcher::handle`.

use hybridlab_lambda::launcher::{Launcher, LauncherConfig};
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
    let config = LauncherConfig::from_env()?;
    let launcher = Launcher::from_env(config).await;
    let launcher = &launcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        launcher.handle(event).await
    }))
    .await
}
