//! Invocations through the sandbox's edge port: throughput and latency for a no-op function at
//! concurrency 1 and 16, the agent's added latency (client round trip minus the Duration the
//! REPORT line gives for the function itself), and the proxy function's cold start.
//!
//! `cargo bench -p hybridlab-tests --bench sandbox_invoke`
//! (`HYBRIDLAB_BENCH_INVOCATIONS=N` sets the invocations per level, default 2000.)

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use hdrhistogram::Histogram;
use hybridlab_tests::sandbox::{bootstrap_zip, deploy_function, edge_clients};

/// The `Duration` field of a REPORT line, in microseconds.
fn report_duration_us(log: &str) -> Option<u64> {
    let report = log.lines().find(|line| line.starts_with("REPORT"))?;
    let field = report
        .split('\t')
        .find_map(|f| f.strip_prefix("Duration: "))?;
    let ms: f64 = field.trim_end_matches(" ms").parse().ok()?;
    Some((ms * 1000.0) as u64)
}

fn init_duration_ms(log: &str) -> Option<f64> {
    let report = log.lines().find(|line| line.starts_with("REPORT"))?;
    let field = report
        .split('\t')
        .find_map(|f| f.strip_prefix("Init Duration: "))?;
    field.trim_end_matches(" ms").parse().ok()
}

fn decode_log(encoded: Option<&str>) -> String {
    encoded
        .and_then(|text| STANDARD.decode(text).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let invocations: usize = std::env::var("HYBRIDLAB_BENCH_INVOCATIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2000);
    let clients = edge_clients().await;
    let noop = deploy_function(
        &clients,
        "noop",
        bootstrap_zip("hybridlab-tests", "lab-test-function"),
        10,
        &[],
    )
    .await;
    let endpoint = format!(
        "{}/2015-03-31/functions/{noop}/invocations",
        clients.endpoint
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    // Warm every environment the runs below will use.
    futures::stream::iter(0..64)
        .for_each_concurrent(16, |_| {
            let http = http.clone();
            let endpoint = endpoint.clone();
            async move {
                let _ = http.post(&endpoint).body("{}").send().await;
            }
        })
        .await;

    println!("no-op function, {invocations} invocations per level, raw HTTP to the edge port");
    println!("| concurrency | invocations/s | p50 ms | p99 ms | max ms | throttled |");
    println!("|---|---|---|---|---|---|");
    for concurrency in [1usize, 16] {
        let started = Instant::now();
        let results: Vec<(Duration, u16)> = futures::stream::iter(0..invocations)
            .map(|_| {
                let http = http.clone();
                let endpoint = endpoint.clone();
                async move {
                    let sent = Instant::now();
                    let status = match http.post(&endpoint).body("{}").send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    (sent.elapsed(), status)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let mut histogram = Histogram::<u64>::new(3).expect("histogram");
        let mut throttled = 0;
        for (latency, status) in &results {
            if *status == 429 {
                throttled += 1;
            }
            histogram
                .record(latency.as_micros() as u64)
                .expect("in range");
        }
        println!(
            "| {concurrency} | {:.0} | {:.2} | {:.2} | {:.2} | {throttled} |",
            results.len() as f64 / elapsed.as_secs_f64(),
            histogram.value_at_quantile(0.5) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
            histogram.max() as f64 / 1000.0,
        );
    }

    // The agent's share: round trip (SDK, LogType Tail) minus the function's own Duration.
    let mut overhead = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..200 {
        let sent = Instant::now();
        let output = clients
            .lambda
            .invoke()
            .function_name(&noop)
            .log_type(LogType::Tail)
            .payload(Blob::new("{}"))
            .send()
            .await
            .expect("invoked");
        let round_trip = sent.elapsed().as_micros() as u64;
        if let Some(inside) = report_duration_us(&decode_log(output.log_result())) {
            overhead
                .record(round_trip.saturating_sub(inside))
                .expect("in range");
        }
    }
    println!();
    println!(
        "agent overhead (SDK round trip minus REPORT Duration, 200 sequential calls): p50 {:.2} ms, p99 {:.2} ms",
        overhead.value_at_quantile(0.5) as f64 / 1000.0,
        overhead.value_at_quantile(0.99) as f64 / 1000.0
    );

    // Cold starts of the proxy: a fresh function each time, so every first call is cold.
    let proxy_zip = bootstrap_zip("hybridlab-lambda", "proxy");
    let mut init = Vec::new();
    let mut cold_round_trip = Vec::new();
    for _ in 0..5 {
        let proxy = deploy_function(
            &clients,
            "proxy",
            proxy_zip.clone(),
            10,
            &[("EC2_ENDPOINT", "http://127.0.0.1:9")],
        )
        .await;
        let sent = Instant::now();
        let output = clients
            .lambda
            .invoke()
            .function_name(&proxy)
            .log_type(LogType::Tail)
            .payload(Blob::new(r#"{"image_url": "http://example.com/a.jpg"}"#))
            .send()
            .await
            .expect("invoked");
        cold_round_trip.push(sent.elapsed().as_secs_f64() * 1000.0);
        if let Some(ms) = init_duration_ms(&decode_log(output.log_result())) {
            init.push(ms);
        }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    println!(
        "proxy cold start ({} fresh functions): Init Duration mean {:.2} ms (min {:.2}, max {:.2}); cold round trip mean {:.2} ms",
        init.len(),
        mean(&init),
        init.iter().cloned().fold(f64::INFINITY, f64::min),
        init.iter().cloned().fold(0.0, f64::max),
        mean(&cold_round_trip),
    );
}
