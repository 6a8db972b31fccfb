//! One invocation of a Lambda function with the SDK, measured and classified ([`invoke_once`]
//! never fails: every way an invocation can end is an outcome), and the function a command
//! aims at ([`aim`]): the proxy of a stack, or any function by name.

use std::time::Instant;

use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use bytes::Bytes;
use hybridlab_bench::invocation::{Invocation, answered, unanswered};
use hybridlab_bench::model::Outcome;

use super::target::{TargetChoice, connect};
use super::{Lab, explain};

/// Invokes `function` with `payload` and its log tail, and says how it went.
pub async fn invoke_once(
    client: &aws_sdk_lambda::Client,
    function: &str,
    payload: Bytes,
) -> Invocation {
    let started = Instant::now();
    let result = client
        .invoke()
        .function_name(function)
        .log_type(LogType::Tail)
        .payload(Blob::new(payload))
        .send()
        .await;
    let round_trip_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(output) => answered(
            output.status_code(),
            output.function_error(),
            output.log_result(),
            output
                .payload()
                .map(|blob| blob.as_ref())
                .unwrap_or_default(),
            round_trip_ms,
        ),
        Err(err) => {
            let (outcome, status_code, error) = classify_sdk_error(&err);
            unanswered(outcome, status_code, error, round_trip_ms)
        }
    }
}

fn classify_sdk_error<E>(
    err: &SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> (Outcome, Option<i32>, String)
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match hybridlab_provision::stack::error::service_fault(err) {
        Some(fault) => {
            let outcome = Outcome::of_refusal(fault.status, &fault.code);
            let code = if fault.code.is_empty() {
                "Unknown"
            } else {
                &fault.code
            };
            (
                outcome,
                Some(i32::from(fault.status)),
                format!("{code}: {}", fault.message),
            )
        }
        None => (
            Outcome::ClientError,
            None,
            format!("{}", DisplayErrorContext(err)),
        ),
    }
}

/// What to invoke: a function name, and the stack it belongs to if any.
pub struct Aim {
    pub clients: hybridlab_provision::stack::StackClients,
    /// A Lambda client that never retries: a throttled or failed invocation is measured and
    /// counted as what it was, not hidden behind the SDK's retries and their back-off.
    pub lambda: aws_sdk_lambda::Client,
    pub function: String,
    pub stack: Option<String>,
}

fn without_retries(client: &aws_sdk_lambda::Client) -> aws_sdk_lambda::Client {
    let config = client
        .config()
        .to_builder()
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// `--function proxy`: the stack's proxy (what no `--function` means too).
pub const STACK_PROXY: &str = "proxy";
/// `--function resizer`: the stack's resizer, the pipeline's function.
pub const STACK_RESIZER: &str = "resizer";

/// The function `--function` names (`proxy` and `resizer` mean the stack's own), or the proxy
/// of the stack `--stack` names. The function is looked up first, so a function that does not
/// exist, a stack that is not deployed or refused credentials are said in one line before
/// anything is invoked or measured.
pub async fn aim(
    target: &TargetChoice,
    stack: Option<&str>,
    function: Option<&str>,
) -> anyhow::Result<Aim> {
    let (clients, function, stack) = match function {
        Some(function) if function != STACK_PROXY && function != STACK_RESIZER => {
            if let Some(stack) = stack {
                anyhow::bail!(
                    "--stack {stack} names a stack, and --function {function} any function on the target: give --function {STACK_PROXY} or {STACK_RESIZER} with --stack, or the function's name alone"
                );
            }
            (connect(target).await?, function.to_owned(), None)
        }
        of_stack => {
            let lab = Lab::open(target, stack).await?;
            let function = match of_stack {
                Some(STACK_RESIZER) => lab.names.resizer,
                _ => lab.names.function,
            };
            (lab.clients, function, Some(lab.stack))
        }
    };
    clients
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .map_err(|err| {
            explain(
                &clients,
                stack.as_ref(),
                "lambda:GetFunctionConfiguration",
                &format!("the function {function}"),
                err,
            )
        })?;
    Ok(Aim {
        lambda: without_retries(&clients.lambda),
        function,
        stack: stack.map(|stack| stack.to_string()),
        clients,
    })
}
