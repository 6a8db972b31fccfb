//! The submit Lambda's entry point: behind the jobs variant's HTTP API, it writes and reads
//! jobs (see `hybridlab_lambda::submit`).

use hybridlab_lambda::submit::{Submit, SubmitConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    hybridlab_lambda::log_json_lines();
    let config = SubmitConfig::from_env()?;
    let submit = Submit::from_env(config).await;
    let submit = &submit;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        submit.handle(event).await
    }))
    .await
}
