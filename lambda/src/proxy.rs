//! The proxy function: validates the event, POSTs it to `${EC2_ENDPOINT}/process-image` with
//! the invocation's request id, and answers `{statusCode, body}` in the API Gateway shape.
//! The instance is reached over TLS with its certificate pinned (`hybridlab_wire::tls`); plain HTTP
//! is accepted only to a loopback address (local tests), so the token never crosses a network
//! in clear.
//! Every failure is an answer with a status and a stable error code, never a panic or an
//! unhandled error, so a caller always learns what happened.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hybridlab_wire::tls::{CERT_PIN_ENV, CertFingerprint};
use hybridlab_wire::token::{TOKEN_ENV, TokenError, check_token};
use hybridlab_wire::{ErrorBody, ErrorCode, LambdaInfo, ProcessImageRequest, ProxyResponse};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// Default time allowed for the image server's answer; below Lambda's usual 30 s timeout so a
/// slow server is reported as a 504 rather than the function being killed.
pub const DEFAULT_EC2_TIMEOUT: Duration = Duration::from_secs(25);

/// The proxy's configuration, from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Base URL of the image server, e.g. `https://203.0.113.7:8080`.
    pub ec2_endpoint: String,
    /// The SHA-256 fingerprint of the server's certificate, the only one trusted; required for
    /// an `https://` endpoint.
    pub cert_pin: Option<CertFingerprint>,
    /// Sent as `Authorization: Bearer <token>`; required, and as long as the server requires.
    pub token: String,
    pub ec2_timeout: Duration,
}

/// Why the function's environment is not usable; reported as an init error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "EC2_ENDPOINT is not set: it must name the image server, e.g. https://203.0.113.7:8080"
    )]
    MissingEndpoint,
    #[error(
        "EC2_ENDPOINT `{0}` must be an https:// URL (http:// only to a loopback address, for local tests)"
    )]
    UnsupportedEndpoint(String),
    #[error(
        "EC2_CERT_SHA256 is not set: an https:// endpoint needs the SHA-256 fingerprint of the server's certificate (`hybridlab status` shows it)"
    )]
    MissingPin,
    #[error("EC2_CERT_SHA256 `{0}` is not a SHA-256 fingerprint (64 hex digits, colons allowed)")]
    BadPin(String),
    #[error("the TLS configuration could not be built: {0}")]
    Tls(String),
    #[error("EC2_TIMEOUT_MS `{0}` is not a positive whole number of milliseconds")]
    BadTimeout(String),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl ProxyConfig {
    /// Reads `EC2_ENDPOINT`, `HYBRIDLAB_TOKEN` and `EC2_TIMEOUT_MS` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let endpoint = lookup("EC2_ENDPOINT")
            .map(|value| value.trim().trim_end_matches('/').to_owned())
            .filter(|value| !value.is_empty())
            .ok_or(ConfigError::MissingEndpoint)?;
        let cert_pin = match lookup(CERT_PIN_ENV).filter(|pin| !pin.trim().is_empty()) {
            Some(pin) => Some(CertFingerprint::parse(&pin).ok_or(ConfigError::BadPin(pin))?),
            None => None,
        };
        if endpoint.starts_with("https://") {
            if cert_pin.is_none() {
                return Err(ConfigError::MissingPin);
            }
        } else if !is_loopback_http(&endpoint) {
            return Err(ConfigError::UnsupportedEndpoint(endpoint));
        }
        let ec2_timeout = match lookup("EC2_TIMEOUT_MS") {
            None => DEFAULT_EC2_TIMEOUT,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => return Err(ConfigError::BadTimeout(raw)),
            },
        };
        // The same rule as the server's: a function without a usable token fails init with the
        // reason, rather than every invocation failing with the server's 401.
        let token = lookup(TOKEN_ENV);
        let token = check_token(token.as_deref())?.to_owned();
        Ok(Self {
            ec2_endpoint: endpoint,
            cert_pin,
            token,
            ec2_timeout,
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Why an invocation could not be answered with the image server's answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    BadEvent(String),
    #[error("the image server at {endpoint} could not be reached: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("the image server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the image server answered HTTP {status} with a body that is not JSON")]
    BadResponse { status: u16 },
    #[error(
        "the server at {endpoint} presented a certificate other than the pinned one (EC2_CERT_SHA256); nothing was sent"
    )]
    Untrusted { endpoint: String },
}

impl ProxyError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::BadEvent(_) => ErrorCode::InvalidRequest,
            Self::Unreachable { .. } => ErrorCode::Ec2Unreachable,
            Self::Timeout(_) => ErrorCode::Ec2Timeout,
            Self::BadResponse { .. } => ErrorCode::Ec2BadResponse,
            Self::Untrusted { .. } => ErrorCode::Ec2Untrusted,
        }
    }

    fn status(&self) -> u16 {
        match self {
            Self::BadEvent(_) => 400,
            Self::Unreachable { .. } | Self::BadResponse { .. } | Self::Untrusted { .. } => 502,
            Self::Timeout(_) => 504,
        }
    }
}

/// Reads the image URL out of the event: `{"image_url": ...}`, or an API Gateway or Function
/// URL event whose `body` (a string, possibly base64, or an object) holds that object.
pub fn parse_event(event: &Value) -> Result<String, ProxyError> {
    let bad = |message: &str| ProxyError::BadEvent(message.to_owned());
    let Value::Object(fields) = event else {
        return Err(bad(
            "the event must be a JSON object like {\"image_url\": \"https://...\"}",
        ));
    };
    if let Some(url) = fields.get("image_url") {
        return match url {
            Value::String(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
            _ => Err(bad("`image_url` must be a non-empty string")),
        };
    }
    match fields.get("body") {
        Some(Value::String(body)) => {
            let base64 = fields
                .get("isBase64Encoded")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let text = if base64 {
                let bytes = decode_base64(body).ok_or_else(|| bad("`body` is not valid base64"))?;
                String::from_utf8(bytes).map_err(|_| bad("`body` is not UTF-8 text"))?
            } else {
                body.clone()
            };
            let inner: Value = serde_json::from_str(&text)
                .map_err(|err| ProxyError::BadEvent(format!("`body` is not JSON: {err}")))?;
            if inner.get("body").is_some() && inner.get("image_url").is_none() {
                return Err(bad(
                    "`body` must hold {\"image_url\": ...}, not another body",
                ));
            }
            parse_event(&inner)
        }
        Some(inner @ Value::Object(_)) => parse_event(inner),
        Some(_) => Err(bad("`body` must be a JSON string or object")),
        None => Err(bad(
            "the event has no `image_url`: send {\"image_url\": \"https://...\"}",
        )),
    }
}

/// Standard base64 (API Gateway's encoding), without pulling in a crate for it.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' | b'-' => Some(62),
            b'/' | b'_' => Some(63),
            _ => None,
        }
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    if clean.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The proxy with its HTTP client, built once per execution environment.
#[derive(Debug)]
pub struct ProxyFunction {
    config: ProxyConfig,
    client: reqwest::Client,
    /// Set by the first invocation: that one is the cold start.
    warmed: AtomicBool,
}

impl ProxyFunction {
    /// Builds the HTTP client. Nothing is connected yet: init stays cheap.
    pub fn new(config: ProxyConfig) -> Result<Self, ConfigError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.ec2_timeout)
            .connect_timeout(config.ec2_timeout.min(Duration::from_secs(5)))
            // Below the server's keep-alive limit (its 20 s header-read timeout), so the pool
            // never sends on a connection the server is closing.
            .pool_idle_timeout(Duration::from_secs(15))
            .no_proxy();
        if let Some(pin) = config.cert_pin {
            let tls = hybridlab_wire::tls::pinned_client_config(pin)
                .map_err(|err| ConfigError::Tls(err.to_string()))?;
            builder = builder.tls_backend_preconfigured(tls);
        }
        let client = builder
            .build()
            .map_err(|err| ConfigError::Tls(innermost(&err)))?;
        Ok(Self {
            config,
            client,
            warmed: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Handles one invocation; the answer always has a status and a JSON body.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> ProxyResponse {
        let started = Instant::now();
        let cold_start = !self.warmed.swap(true, Ordering::Relaxed);
        let request_id = event.context.request_id.clone();
        let mut info = LambdaInfo {
            request_id: request_id.clone(),
            cold_start,
            total_ms: 0.0,
            ec2_round_trip_ms: None,
        };
        let outcome = match parse_event(&event.payload) {
            Ok(image_url) => self.call_ec2(image_url, &request_id, &mut info).await,
            Err(err) => Err(err),
        };
        info.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status, mut body) = match outcome {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(error = err.code().as_str(), message = %err, "invocation failed");
                let body = ErrorBody {
                    error: err.code(),
                    message: err.to_string(),
                    request_id: Some(request_id.clone()),
                };
                (
                    err.status(),
                    serde_json::to_value(body).unwrap_or(Value::Null),
                )
            }
        };
        if let Value::Object(fields) = &mut body {
            fields.insert(
                "lambda".into(),
                serde_json::to_value(&info).unwrap_or(Value::Null),
            );
        }
        tracing::info!(
            status,
            cold_start,
            total_ms = info.total_ms,
            ec2_round_trip_ms = info.ec2_round_trip_ms,
            "answered"
        );
        ProxyResponse {
            status_code: status,
            headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            body: body.to_string(),
        }
    }

    /// POSTs to the image server and returns its status and JSON body as they are, so its
    /// error codes reach the caller unchanged.
    async fn call_ec2(
        &self,
        image_url: String,
        request_id: &str,
        info: &mut LambdaInfo,
    ) -> Result<(u16, Value), ProxyError> {
        let url = format!("{}/process-image", self.config.ec2_endpoint);
        let payload = ProcessImageRequest {
            image_url,
            request_id: Some(request_id.to_owned()),
        };
        let request = self
            .client
            .post(&url)
            .header("x-request-id", request_id)
            .bearer_auth(&self.config.token)
            .json(&payload);
        let sent = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        info.ec2_round_trip_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
        let (status, bytes) = result.map_err(|err| {
            if hybridlab_wire::tls::is_untrusted_certificate(&err) {
                ProxyError::Untrusted {
                    endpoint: self.config.ec2_endpoint.clone(),
                }
            } else if err.is_timeout() {
                ProxyError::Timeout(self.config.ec2_timeout)
            } else {
                ProxyError::Unreachable {
                    endpoint: self.config.ec2_endpoint.clone(),
                    reason: innermost(&err),
                }
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(body @ Value::Object(_)) => Ok((status, body)),
            _ => Err(ProxyError::BadResponse { status }),
        }
    }
}

/// Whether `endpoint` is `http://` to a loopback address: plain HTTP never leaves the machine.
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    // `[::1]:8080`, `127.0.0.1:8080`, `localhost:8080`.
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The innermost cause of an error chain ("Connection refused"), the part a person can act on.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_event_may_be_direct_or_api_gateway_shaped() {
        let url = "https://example.com/cat.jpg";
        assert_eq!(
            parse_event(&json!({"image_url": url})).ok(),
            Some(url.into())
        );
        let body = json!({"image_url": url}).to_string();
        assert_eq!(parse_event(&json!({"body": body})).ok(), Some(url.into()));
        assert_eq!(
            parse_event(&json!({"body": {"image_url": url}})).ok(),
            Some(url.into())
        );
        let encoded = "eyJpbWFnZV91cmwiOiAiaHR0cHM6Ly9leGFtcGxlLmNvbS9jYXQuanBnIn0=";
        assert_eq!(
            parse_event(&json!({"body": encoded, "isBase64Encoded": true})).ok(),
            Some(url.into())
        );
    }

    #[test]
    fn bad_events_are_refused_with_a_reason() {
        for event in [
            json!(null),
            json!("https://example.com/cat.jpg"),
            json!({}),
            json!({"image_url": ""}),
            json!({"image_url": 42}),
            json!({"body": "not json"}),
            json!({"body": 7}),
            json!({"body": "{\"body\": \"{}\"}"}),
            json!({"body": "%%%", "isBase64Encoded": true}),
        ] {
            let err = parse_event(&event).expect_err("bad event");
            assert!(matches!(err, ProxyError::BadEvent(_)), "{event}");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn configuration_comes_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        const TOKEN: &str = "0123456789abcdef0123456789abcdef";
        let config = ProxyConfig::from_lookup(env(&[
            ("EC2_ENDPOINT", "http://127.0.0.1:8080/"),
            ("HYBRIDLAB_TOKEN", TOKEN),
            ("EC2_TIMEOUT_MS", "1500"),
        ]))
        .expect("valid");
        assert_eq!(config.ec2_endpoint, "http://127.0.0.1:8080");
        assert_eq!(config.token, TOKEN);
        assert_eq!(config.ec2_timeout, Duration::from_millis(1500));

        assert_eq!(
            ProxyConfig::from_lookup(env(&[])),
            Err(ConfigError::MissingEndpoint)
        );
        assert!(matches!(
            ProxyConfig::from_lookup(env(&[
                ("EC2_ENDPOINT", "https://x"),
                ("HYBRIDLAB_TOKEN", TOKEN)
            ])),
            Err(ConfigError::MissingPin)
        ));
        assert!(matches!(
            ProxyConfig::from_lookup(env(&[
                ("EC2_ENDPOINT", "https://x"),
                ("EC2_CERT_SHA256", "AB:CD"),
                ("HYBRIDLAB_TOKEN", TOKEN)
            ])),
            Err(ConfigError::BadPin(_))
        ));
        let pin = "00".repeat(32);
        let pinned = ProxyConfig::from_lookup(|name: &str| match name {
            "EC2_ENDPOINT" => Some("https://203.0.113.7:8080".into()),
            "EC2_CERT_SHA256" => Some(pin.clone()),
            "HYBRIDLAB_TOKEN" => Some(TOKEN.into()),
            _ => None,
        })
        .expect("https with a pin");
        assert_eq!(pinned.cert_pin, Some(CertFingerprint([0; 32])));
        // Plain HTTP only to loopback: the token must not cross a network in clear.
        for endpoint in ["http://203.0.113.7:8080", "http://example.com", "ftp://x"] {
            assert!(
                matches!(
                    ProxyConfig::from_lookup(|name: &str| match name {
                        "EC2_ENDPOINT" => Some(endpoint.into()),
                        "HYBRIDLAB_TOKEN" => Some(TOKEN.into()),
                        _ => None,
                    }),
                    Err(ConfigError::UnsupportedEndpoint(_))
                ),
                "{endpoint}"
            );
        }
        for endpoint in [
            "http://127.0.0.1:8080",
            "http://[::1]:80",
            "http://localhost",
        ] {
            assert!(is_loopback_http(endpoint), "{endpoint}");
        }
        // There is no opt-out: an old opt-in variable changes nothing.
        let opted_in = ProxyConfig::from_lookup(|name: &str| match name {
            "EC2_ENDPOINT" => Some("http://203.0.113.7:8080".into()),
            "EC2_ALLOW_PLAINTEXT" => Some("true".into()),
            "HYBRIDLAB_TOKEN" => Some(TOKEN.into()),
            _ => None,
        });
        assert!(
            matches!(opted_in, Err(ConfigError::UnsupportedEndpoint(_))),
            "{opted_in:?}"
        );
        assert!(matches!(
            ProxyConfig::from_lookup(env(&[
                ("EC2_ENDPOINT", "http://127.0.0.1"),
                ("HYBRIDLAB_TOKEN", TOKEN),
                ("EC2_TIMEOUT_MS", "0")
            ])),
            Err(ConfigError::BadTimeout(_))
        ));
        for token in [None, Some(""), Some("right")] {
            let mut pairs = vec![("EC2_ENDPOINT", "http://127.0.0.1")];
            pairs.extend(token.map(|token| ("HYBRIDLAB_TOKEN", token)));
            let lookup = |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            };
            assert!(
                matches!(ProxyConfig::from_lookup(lookup), Err(ConfigError::Token(_))),
                "{token:?}"
            );
        }
    }

    #[test]
    fn base64_decodes_padded_and_unpadded_text() {
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            decode_base64("aGVsbG8gd29ybGQ=").as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("a*bc"), None);
    }
}
