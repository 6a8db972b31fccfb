//! The resizer Lambda's entry point: reads its configuration and builds its S3 and DynamoDB
//! clients once per execution environment, then hands each S3 event to `Resizer::handle`.

use hybridlab_lambda::resizer::{Resizer, ResizerConfig, S3Event};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    hybridlab_lambda::log_json_lines();

    // An unusable environment fails init with this message in the log, instead of failing
    // every invocation the same way. Building the clients reads the environment only.
    let config = ResizerConfig::from_env()?;
    let resizer = Resizer::from_env(config).await;
    let resizer = &resizer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        resizer.handle(event).await
    }))
    .await
}
