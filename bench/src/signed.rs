//! The engine's invoker: Lambda's `Invoke` REST call (`POST
//! /2015-03-31/functions/{name}/invocations` with `X-Amz-Log-Type: Tail`), signed with SigV4
//! and sent on a pooled HTTP client: the request the SDK sends, to the same endpoint, at a
//! fraction of its CPU. Measured in release, the SDK's orchestrator (interceptors, type-erased
//! config, retry classifiers) costs about 220 µs of client CPU per call, which at thousands
//! of invocations a second would make the load generator the bottleneck it must not be.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials as _, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use hybridlab_wire::error_body::xml_error;

use crate::engine::Invoke;
use crate::invocation::{Invocation, answered, unanswered};
use crate::model::Outcome;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Why the invoker cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SignedInvokerError {
    #[error("the Lambda client has no credentials provider")]
    NoCredentials,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Invokes one function with SigV4-signed HTTP requests.
#[derive(Debug, Clone)]
pub struct SignedInvoker {
    http: reqwest::Client,
    url: Arc<str>,
    region: Arc<str>,
    credentials: SharedCredentialsProvider,
    cached: Arc<Mutex<Option<Credentials>>>,
}

/// The `Invoke` URL of `function` under `endpoint` (no trailing slash). The name may be an
/// ARN, whose colons are escaped in the path as the SDK does.
pub fn invoke_url(endpoint: &str, function: &str) -> String {
    let name: String = function
        .chars()
        .map(|c| match c {
            ':' => "%3A".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "{}/2015-03-31/functions/{name}/invocations",
        endpoint.trim_end_matches('/')
    )
}

impl SignedInvoker {
    /// An invoker for `function` with the endpoint, region and credentials of `config`.
    pub fn new(config: &aws_config::SdkConfig, function: &str) -> Result<Self, SignedInvokerError> {
        let region = config
            .region()
            .map(|region| region.to_string())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = match config.endpoint_url() {
            Some(endpoint) => endpoint.to_owned(),
            None if region.starts_with("cn-") => {
                format!("https://lambda.{region}.amazonaws.com.cn")
            }
            None => format!("https://lambda.{region}.amazonaws.com"),
        };
        let credentials = config
            .credentials_provider()
            .ok_or(SignedInvokerError::NoCredentials)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .map_err(|err| SignedInvokerError::Http(err.to_string()))?;
        Ok(Self {
            http,
            url: Arc::from(invoke_url(&endpoint, function)),
            region: Arc::from(region),
            credentials,
            cached: Arc::default(),
        })
    }

    /// Credentials, from the cache while they are fresh.
    async fn credentials(&self) -> Result<Credentials, String> {
        let fresh = |credentials: &Credentials| {
            credentials.expiry().is_none_or(|expiry| {
                expiry
                    .duration_since(SystemTime::now())
                    .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
            })
        };
        if let Ok(cached) = self.cached.lock()
            && let Some(credentials) = cached.as_ref().filter(|c| fresh(c))
        {
            return Ok(credentials.clone());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|err| format!("credentials: {err}"))?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some(credentials.clone());
        }
        Ok(credentials)
    }

    /// The signed request for `payload`.
    fn request(
        &self,
        credentials: Credentials,
        payload: Bytes,
    ) -> Result<reqwest::Request, String> {
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("lambda")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| format!("signing: {err}"))?
            .into();
        let headers = [
            ("content-type", "application/json"),
            ("x-amz-log-type", "Tail"),
            ("x-amz-invocation-type", "RequestResponse"),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.url.as_ref(),
            headers.iter().copied(),
            SignableBody::Bytes(&payload),
        )
        .map_err(|err| format!("signing: {err}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|err| format!("signing: {err}"))?
            .into_parts();
        let mut builder = self.http.post(self.url.as_ref());
        for (name, value) in headers.into_iter().chain(instructions.headers()) {
            builder = builder.header(name, value);
        }
        builder
            .body(payload)
            .build()
            .map_err(|err| format!("request: {err}"))
    }

    async fn call(&self, payload: Bytes) -> Invocation {
        let started = tokio::time::Instant::now();
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let request = match self.credentials().await {
            Ok(credentials) => self.request(credentials, payload),
            Err(err) => Err(err),
        };
        let request = match request {
            Ok(request) => request,
            Err(err) => return unanswered(Outcome::ClientError, None, err, elapsed_ms()),
        };
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(err) => {
                return unanswered(Outcome::ClientError, None, err.to_string(), elapsed_ms());
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let function_error = header("x-amz-function-error");
        let log_result = header("x-amz-log-result");
        let error_type = header("x-amzn-errortype");
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                return unanswered(
                    Outcome::ClientError,
                    Some(i32::from(status)),
                    format!("reading the answer: {err}"),
                    elapsed_ms(),
                );
            }
        };
        let round_trip_ms = elapsed_ms();
        if (200..300).contains(&status) {
            return answered(
                i32::from(status),
                function_error.as_deref(),
                log_result.as_deref(),
                &body,
                round_trip_ms,
            );
        }
        let (outcome, error) = refusal(status, error_type.as_deref(), &body);
        unanswered(outcome, Some(i32::from(status)), error, round_trip_ms)
    }
}

/// The outcome and message of an error answer: `x-amzn-ErrorType` (`Code:` and more) and the
/// JSON body's `message`/`Message`, or the `<Code>` and `<Message>` of an XML body (moto
/// answers refused credentials in XML whatever the protocol).
pub fn refusal(status: u16, error_type: Option<&str>, body: &[u8]) -> (Outcome, String) {
    let json_message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            json.get("message")
                .or_else(|| json.get("Message"))
                .and_then(|m| m.as_str().map(str::to_owned))
        });
    let (code, message) = match error_type.and_then(|value| value.split(':').next()) {
        Some(code) => (code.to_owned(), json_message.unwrap_or_default()),
        None => xml_error(body)
            .unwrap_or_else(|| ("Unknown".to_owned(), json_message.unwrap_or_default())),
    };
    (
        Outcome::of_refusal(status, &code),
        format!("{code}: {message}"),
    )
}

impl Invoke for SignedInvoker {
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Invocation> + Send {
        let this = self.clone();
        async move { this.call(payload).await }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_make_the_invoke_path() {
        assert_eq!(
            invoke_url("http://127.0.0.1:4566/", "noop"),
            "http://127.0.0.1:4566/2015-03-31/functions/noop/invocations"
        );
        assert_eq!(
            invoke_url(
                "https://lambda.eu-west-1.amazonaws.com",
                "arn:aws:lambda:eu-west-1:123456789012:function:f"
            ),
            "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Af/invocations"
        );
    }

    #[test]
    fn error_answers_are_told_apart() {
        let (outcome, message) = refusal(
            429,
            Some("TooManyRequestsException:http://internal.amazon.com/coral/"),
            br#"{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
        );
        assert_eq!(outcome, Outcome::Throttled);
        assert_eq!(message, "TooManyRequestsException: Rate Exceeded.");
        let (outcome, message) = refusal(
            404,
            Some("ResourceNotFoundException"),
            br#"{"Message":"Function not found: f"}"#,
        );
        assert_eq!(outcome, Outcome::ClientError);
        assert_eq!(message, "ResourceNotFoundException: Function not found: f");
        assert_eq!(refusal(500, None, b"oops").1, "Unknown: ");
        let (outcome, message) = refusal(
            403,
            None,
            b"<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>",
        );
        assert_eq!(outcome, Outcome::ClientError);
        assert_eq!(
            message,
            "InvalidClientTokenId: The security token included in the request is invalid."
        );
    }
}
