//! One invocation of a Lambda function as the bench measures it: the events it sends
//! ([`url_payload`], [`file_payload`]), how an answer is classified into an [`Outcome`] with the
//! REPORT line of its log tail and the image server's timings when the function is the lab's
//! proxy ([`answered`], [`unanswered`]). Sending the call is the invoker's business.

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hybridlab_wire::report::{Report, decode_tail, report_of_tail};
use hybridlab_wire::{ProxyResponse, StageTimings};
use serde::Serialize;
use serde_json::{Value, json};

use crate::model::Outcome;

/// The event for an image URL, after checking it is an absolute http(s) URL.
pub fn url_payload(url: &str) -> anyhow::Result<Bytes> {
    let parsed = url::Url::parse(url.trim()).with_context(|| {
        format!("`{url}` is not a URL; give an absolute one like https://example.com/cat.jpg")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        bail!(
            "`{url}` is not an http(s) URL with a host; give one like https://example.com/cat.jpg"
        );
    }
    Ok(Bytes::from(
        json!({"image_url": parsed.as_str()}).to_string(),
    ))
}

/// A payload file's bytes, after checking they are JSON (Lambda takes nothing else).
pub fn file_payload(path: &std::path::Path) -> anyhow::Result<Bytes> {
    let bytes = if path.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
            .context("reading the payload from standard input")?;
        buffer
    } else {
        std::fs::read(path)
            .with_context(|| format!("cannot read the payload file {}", path.display()))?
    };
    serde_json::from_slice::<Value>(&bytes).map_err(|err| {
        anyhow::anyhow!(
            "the payload {} is not JSON ({err}); Lambda events are JSON documents",
            path.display()
        )
    })?;
    Ok(Bytes::from(bytes))
}

/// How one invocation went.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    pub outcome: Outcome,
    /// From the call to the complete answer.
    pub round_trip_ms: f64,
    /// Lambda's HTTP status (200 when the function ran, 429 throttled, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
    /// The function's answer, as JSON when it is JSON, else as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// The proxy's answer body (the image server's JSON), when the function is the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_ms: Option<StageTimings>,
    /// The proxy's call to the image server, as the proxy timed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_round_trip_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the function answered, reduced to what classification needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub function_error: Option<String>,
    pub payload: Value,
    pub report: Option<Report>,
}

/// The outcome of an answered invocation, the proxy's body and the server's stage timings.
pub fn classify(answer: &Answer) -> (Outcome, Option<Value>, Option<StageTimings>) {
    let timed_out = answer
        .report
        .as_ref()
        .and_then(|report| report.status.as_deref())
        == Some("timeout");
    if timed_out {
        return (Outcome::Timeout, None, None);
    }
    if answer.function_error.is_some() {
        return (Outcome::FunctionError, None, None);
    }
    // The lab's proxy answers in the API Gateway shape; any other function's answer is
    // its own business and counts as success.
    let Ok(proxy) = serde_json::from_value::<ProxyResponse>(answer.payload.clone()) else {
        return (Outcome::Ok, None, None);
    };
    let body = proxy.body_json().ok();
    let timings = body
        .as_ref()
        .and_then(|body| body.get("timings_ms"))
        .and_then(|timings| serde_json::from_value::<StageTimings>(timings.clone()).ok());
    let outcome = if (200..300).contains(&proxy.status_code) {
        Outcome::Ok
    } else {
        Outcome::Ec2Error
    };
    (outcome, body, timings)
}

/// An invocation Lambda answered (the function ran, or failed in it): its log tail, REPORT
/// line, answer and outcome. `log_result` is the base64 tail, `raw` the answer's bytes.
pub fn answered(
    status_code: i32,
    function_error: Option<&str>,
    log_result: Option<&str>,
    raw: &[u8],
    round_trip_ms: f64,
) -> Invocation {
    let log_tail = log_result.and_then(decode_tail);
    let report = log_tail.as_deref().and_then(report_of_tail);
    let payload = serde_json::from_slice::<Value>(raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()));
    let answer = Answer {
        function_error: function_error.map(str::to_owned),
        payload,
        report,
    };
    let (outcome, body, ec2_ms) = classify(&answer);
    let ec2_round_trip_ms = body
        .as_ref()
        .and_then(|body| body["lambda"]["ec2_round_trip_ms"].as_f64());
    let error = match outcome {
        Outcome::Ok => None,
        _ => Some(error_text(&answer.payload, body.as_ref())),
    };
    Invocation {
        outcome,
        round_trip_ms,
        status_code: Some(status_code),
        function_error: answer.function_error,
        response: Some(answer.payload),
        body,
        report: answer.report,
        ec2_ms,
        ec2_round_trip_ms,
        log_tail,
        error,
    }
}

/// An invocation Lambda refused or never answered.
pub fn unanswered(
    outcome: Outcome,
    status_code: Option<i32>,
    error: String,
    round_trip_ms: f64,
) -> Invocation {
    Invocation {
        outcome,
        round_trip_ms,
        status_code,
        function_error: None,
        response: None,
        body: None,
        report: None,
        ec2_ms: None,
        ec2_round_trip_ms: None,
        log_tail: None,
        error: Some(error),
    }
}

/// The short reason of a failed answer: the proxy's error code and message, or Lambda's
/// `errorType: errorMessage`.
fn error_text(payload: &Value, body: Option<&Value>) -> String {
    if let Some(body) = body {
        let code = body["error"].as_str().unwrap_or("error");
        let message = body["message"].as_str().unwrap_or_default();
        return format!("{code}: {message}");
    }
    match (
        payload["errorType"].as_str(),
        payload["errorMessage"].as_str(),
    ) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        _ => payload.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Option<&str>) -> Report {
        Report {
            request_id: "r".into(),
            duration_ms: 10.0,
            billed_duration_ms: 10.0,
            memory_size_mb: 256,
            max_memory_used_mb: 20,
            init_duration_ms: None,
            status: status.map(str::to_owned),
            error_type: None,
        }
    }

    fn proxy(status: u16, body: Value) -> Value {
        json!({"statusCode": status, "headers": {}, "body": body.to_string()})
    }

    #[test]
    fn a_proxy_success_carries_the_servers_timings() {
        let body = json!({"image_id": "i", "timings_ms": {"download": 1.0, "decode": 2.0, "resize": 3.0, "encode": 4.0, "s3": 5.0, "dynamodb": 6.0, "total": 21.0}});
        let answer = Answer {
            function_error: None,
            payload: proxy(200, body),
            report: Some(report(None)),
        };
        let (outcome, body, timings) = classify(&answer);
        assert_eq!(outcome, Outcome::Ok);
        assert_eq!(body.expect("a body")["image_id"], "i");
        assert_eq!(timings.expect("timings").total, 21.0);
    }

    #[test]
    fn failures_are_told_apart() {
        let ec2 = Answer {
            function_error: None,
            payload: proxy(502, json!({"error": "ec2_unreachable", "message": "down"})),
            report: Some(report(None)),
        };
        assert_eq!(classify(&ec2).0, Outcome::Ec2Error);
        assert_eq!(
            error_text(&ec2.payload, classify(&ec2).1.as_ref()),
            "ec2_unreachable: down"
        );
        let unhandled = Answer {
            function_error: Some("Unhandled".into()),
            payload: json!({"errorType": "Runtime.ExitError", "errorMessage": "exit 3"}),
            report: Some(report(Some("error"))),
        };
        assert_eq!(classify(&unhandled).0, Outcome::FunctionError);
        assert_eq!(
            error_text(&unhandled.payload, None),
            "Runtime.ExitError: exit 3"
        );
        let timeout = Answer {
            function_error: Some("Unhandled".into()),
            payload: json!({"errorType": "Sandbox.Timedout"}),
            report: Some(report(Some("timeout"))),
        };
        assert_eq!(classify(&timeout).0, Outcome::Timeout);
        let other_function = Answer {
            function_error: None,
            payload: json!({"pid": 3}),
            report: None,
        };
        assert_eq!(classify(&other_function).0, Outcome::Ok);
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let payload = url_payload("https://example.com/a.jpg").expect("a good URL");
        let event: Value = serde_json::from_slice(&payload).expect("JSON");
        assert_eq!(event["image_url"], "https://example.com/a.jpg");
        assert!(url_payload("cat.jpg").is_err());
        assert!(url_payload("ftp://example.com/a.jpg").is_err());
        assert!(url_payload("http://").is_err());
    }
}
