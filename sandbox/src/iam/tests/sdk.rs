//! The AWS SDK for Rust as a test instrument, without a network: every request a client sends
//! is recorded, and answered with a fixed response (an empty 200, or a refusal to parse).

use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::REGION;
use crate::iam::RefusalResponse;
use crate::iam::request::HttpRequestParts;

/// A request as it left the SDK.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Sent {
    pub fn parts(&self) -> HttpRequestParts<'_> {
        HttpRequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
            source_ip: None,
        }
    }

    /// A request from its pieces (presigned URLs, hand-written requests).
    pub fn from_uri(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let uri: http::Uri = uri.parse().expect("a URI");
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        if let Some(authority) = uri.authority()
            && !map.contains_key("host")
        {
            map.insert(
                "host",
                HeaderValue::from_str(authority.as_str()).expect("a host"),
            );
        }
        Self {
            method: method.to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers: map,
            body: body.to_vec(),
        }
    }
}

/// Records requests and answers each with `answer`.
#[derive(Debug, Clone)]
struct Recorder {
    sent: Arc<Mutex<Vec<Sent>>>,
    answer: Option<RefusalResponse>,
}

impl HttpConnector for Recorder {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut headers = HeaderMap::new();
        for (name, value) in request.headers() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let uri: http::Uri = request.uri().parse().expect("the SDK sends valid URIs");
        if let Some(authority) = uri.authority()
            && !headers.contains_key("host")
        {
            headers.insert(
                "host",
                HeaderValue::from_str(authority.as_str()).expect("a host"),
            );
        }
        self.sent.lock().expect("not poisoned").push(Sent {
            method: request.method().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers,
            body: request.body().bytes().unwrap_or_default().to_vec(),
        });
        let (status, headers, body) = match &self.answer {
            Some(answer) => (answer.status, answer.headers.clone(), answer.body.clone()),
            None => (200, Vec::new(), Vec::new()),
        };
        let mut response = HttpResponse::new(
            StatusCode::try_from(status).expect("a status"),
            SdkBody::from(body),
        );
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// SDK clients for every service the module knows, signing with one principal's access key,
/// all talking to one recorder.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    sent: Arc<Mutex<Vec<Sent>>>,
    pub s3: aws_sdk_s3::Client,
    /// S3 with virtual-hosted addressing (`bucket.s3.localhost.localstack.cloud`).
    pub s3_virtual: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Clients {
    /// Clients of `access_key_id` (with a session token, as role credentials carry) whose
    /// requests get `answer` (an empty 200 when `None`).
    pub async fn new(access_key_id: &str, answer: Option<RefusalResponse>) -> Self {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder {
            sent: sent.clone(),
            answer,
        };
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url("http://127.0.0.1:4566")
            .credentials_provider(Credentials::new(
                access_key_id,
                "secret",
                Some("session-token".into()),
                None,
                "iam-tests",
            ))
            .retry_config(RetryConfig::disabled())
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(recorder.clone())
            }))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let s3_virtual = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .endpoint_url("http://s3.localhost.localstack.cloud:4566")
                .build(),
        );
        Self {
            sent,
            s3,
            s3_virtual,
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
        }
    }

    /// The one request sent since the last call.
    pub fn take(&self) -> Sent {
        let mut sent = std::mem::take(&mut *self.sent.lock().expect("not poisoned"));
        assert_eq!(sent.len(), 1, "expected one request, got {sent:#?}");
        sent.remove(0)
    }
}

/// The error an SDK call ended with, as its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// `None` for success, else the error's code and message as the SDK parsed them.
macro_rules! outcome {
    ($call:expr) => {{
        use aws_sdk_s3::error::ProvideErrorMetadata as _;
        match $call.await {
            Ok(_) => None,
            Err(err) => Some($crate::iam::tests::sdk::Seen {
                code: err.code().map(str::to_owned),
                message: err.message().map(str::to_owned),
            }),
        }
    }};
}
pub(crate) use outcome;
