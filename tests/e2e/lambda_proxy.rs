//! The proxy Lambda's handler against a running image server: the answer passes through with
//! the Lambda's timings, the request id reaches the row, and every failure is an answer.

use std::time::Duration;

use hybridlab_lambda::proxy::{ProxyConfig, ProxyFunction};
use hybridlab_tests::fixtures;
use hybridlab_tests::server::{LAB_TOKEN, Lab};
use hybridlab_wire::{ProxyResponse, StageTimings};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::common::rows;

fn proxy(endpoint: &str, token: &str, timeout: Duration) -> ProxyFunction {
    ProxyFunction::new(ProxyConfig {
        ec2_endpoint: endpoint.to_owned(),
        cert_pin: None,
        token: token.to_owned(),
        ec2_timeout: timeout,
    })
    .expect("the client builds")
}

async fn invoke(
    function: &ProxyFunction,
    payload: Value,
    request_id: &str,
) -> (ProxyResponse, Value) {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    let response = function.handle(LambdaEvent::new(payload, context)).await;
    let body = response.body_json().expect("the body is JSON");
    (response, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_returns_the_servers_answer_with_the_lambdas_timings() {
    let token = "proxy-token-0123456789abcdef0123456789";
    let lab = Lab::start_with(|config| config.token = Some(token.into())).await;
    let url = lab
        .images
        .add("photo.jpg", fixtures::jpeg(800, 600), "image/jpeg");
    let function = proxy(&lab.server.url, token, Duration::from_secs(20));

    let (response, body) = invoke(&function, json!({ "image_url": url }), "req-cold").await;
    assert_eq!(response.status_code, 200, "{body}");
    assert_eq!(
        response.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(body["width"], 800);
    assert_eq!(body["request_id"], "req-cold");
    let timings: StageTimings =
        serde_json::from_value(body["timings_ms"].clone()).expect("EC2 timings pass through");
    assert!(timings.total > 0.0);
    let lambda = &body["lambda"];
    assert_eq!(lambda["request_id"], "req-cold");
    assert_eq!(lambda["cold_start"], true);
    let round_trip = lambda["ec2_round_trip_ms"].as_f64().expect("timed");
    let total = lambda["total_ms"].as_f64().expect("timed");
    assert!(round_trip > 0.0 && round_trip <= total, "{lambda}");

    // An API Gateway event, on the same (now warm) environment.
    let gateway =
        json!({ "body": json!({ "image_url": url }).to_string(), "isBase64Encoded": false });
    let (response, body) = invoke(&function, gateway, "req-warm").await;
    assert_eq!(response.status_code, 200, "{body}");
    assert_eq!(body["lambda"]["cold_start"], false);

    let rows = rows(&lab).await;
    let mut request_ids: Vec<_> = rows
        .iter()
        .filter_map(|row| row.request_id.clone())
        .collect();
    request_ids.sort();
    assert_eq!(
        request_ids,
        ["req-cold", "req-warm"],
        "the invocation id reaches the row"
    );
}

/// A token of the server's minimum length.
const RIGHT: &str = "right-token-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_pass_through_with_their_status_and_code() {
    let lab = Lab::start_with(|config| config.token = Some(RIGHT.into())).await;
    let page = lab
        .images
        .add("page.html", b"<html></html>".to_vec(), "text/html");

    let function = proxy(&lab.server.url, RIGHT, Duration::from_secs(20));
    let (response, body) = invoke(&function, json!({ "image_url": page }), "r1").await;
    assert_eq!(
        (response.status_code, body["error"].as_str()),
        (415, Some("not_an_image")),
        "{body}"
    );
    assert!(body["lambda"]["ec2_round_trip_ms"].is_number());

    let wrong_token = proxy(
        &lab.server.url,
        "wrong-token-0123456789abcdef0123456789",
        Duration::from_secs(20),
    );
    let (response, body) = invoke(&wrong_token, json!({ "image_url": page }), "r2").await;
    assert_eq!(
        (response.status_code, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_is_a_400_and_never_reaches_the_server() {
    let lab = Lab::start().await;
    let function = proxy(&lab.server.url, LAB_TOKEN, Duration::from_secs(20));
    for event in [
        json!({}),
        json!({"image_url": 3}),
        json!({"body": "{oops"}),
        json!("x"),
    ] {
        let (response, body) = invoke(&function, event.clone(), "bad").await;
        assert_eq!(response.status_code, 400, "{event}");
        assert_eq!(body["error"], "invalid_request", "{event}");
        assert_eq!(
            body["lambda"]["ec2_round_trip_ms"],
            Value::Null,
            "{event}: no call made"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(rows(&lab).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_server_is_a_502_or_504() {
    // Nothing listens on port 1.
    let function = proxy("http://127.0.0.1:1", LAB_TOKEN, Duration::from_secs(5));
    let (response, body) = invoke(
        &function,
        json!({"image_url": "http://example.com/a.jpg"}),
        "u",
    )
    .await;
    assert_eq!(
        (response.status_code, body["error"].as_str()),
        (502, Some("ec2_unreachable")),
        "{body}"
    );

    // A server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("bound");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let function = proxy(
        &format!("http://{address}"),
        LAB_TOKEN,
        Duration::from_millis(300),
    );
    let (response, body) = invoke(
        &function,
        json!({"image_url": "http://example.com/a.jpg"}),
        "s",
    )
    .await;
    assert_eq!(
        (response.status_code, body["error"].as_str()),
        (504, Some("ec2_timeout")),
        "{body}"
    );
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_json_is_a_502() {
    let lab = Lab::start().await;
    // The image host is not an image server: it answers 404 with an empty body.
    let function = proxy(&lab.images.base(), LAB_TOKEN, Duration::from_secs(5));
    let (response, body) = invoke(
        &function,
        json!({"image_url": "http://example.com/a.jpg"}),
        "n",
    )
    .await;
    assert_eq!(
        (response.status_code, body["error"].as_str()),
        (502, Some("ec2_bad_response")),
        "{body}"
    );
}
