//! The launcher Lambda's entry point: reads its configuration and builds its clients once per
//! execution environment, then hands each batch of the jobs table's stream records to
//! `Launcher::handle`.

use hybridlab_lambda::launcher::{Launcher, LauncherConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    hybridlab_lambda::log_json_lines();
    let config = LauncherConfig::from_env()?;
    let launcher = Launcher::from_env(config).await;
    let launcher = &launcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        launcher.handle(event).await
    }))
    .await
}
