//! A Lambda function for the sandbox's tests, built with `lambda_runtime` like the lab's own.
//! The event says what to do: `{"print": "text", "sleep_ms": 100, "fail": "why", "exit": 3}`,
//! and `{"spawn_sleep": 300}` starts a `sleep 300` of its own and prints `spawned <pid>`;
//! an S3 event is printed as `s3 event <name> <bucket> <key>`, then `s3 object <key> <size>
//! <eTag>`; a DynamoDB stream batch as `ddb record <id> <eventName>` a record, failing if a
//! record's new image has `fail` set; an HTTP API's event whose JSON body has `respond` answers
//! that, one with `fail` fails;
//! it answers with the event, its process id (warm reuse keeps it), how many invocations this
//! environment has served, the variables the tests set, and under `env` those of the
//! variables an `{"env": ["NAME", ...]}` event names that are set. `{"spin_ms": 1000}` keeps
//! one CPU busy for that wall-clock time and answers, under `spin`, how many rounds of work it
//! did: a measure of the CPU the environment was given.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

static SERVED: AtomicU64 = AtomicU64::new(0);

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    let payload = event.payload;
    if let Some(text) = payload.get("print").and_then(Value::as_str) {
        println!("{text}");
    }
    // An HTTP API's event (payload format 2.0): a JSON body may ask for an answer of its
    // own (`{"respond": {...}}`) or a failure (`{"fail": "why"}`); else the event is echoed.
    if payload.get("version").and_then(Value::as_str) == Some("2.0")
        && payload.get("routeKey").is_some()
    {
        let body: Value = payload["body"]
            .as_str()
            .and_then(|body| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null);
        if let Some(reason) = body.get("fail").and_then(Value::as_str) {
            return Err(reason.to_owned().into());
        }
        if let Some(respond) = body.get("respond") {
            return Ok(respond.clone());
        }
    }
    // A DynamoDB stream's batch: each record printed; one whose new image has `fail` set
    // fails the whole invocation.
    if payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        == Some("aws:dynamodb")
    {
        let records = payload["Records"].as_array().cloned().unwrap_or_default();
        for record in &records {
            println!(
                "ddb record {} {}",
                record["dynamodb"]["Keys"]["id"]["S"]
                    .as_str()
                    .unwrap_or("?"),
                record["eventName"].as_str().unwrap_or("?"),
            );
        }
        if let Some(bad) = records
            .iter()
            .find(|record| record["dynamodb"]["NewImage"]["fail"]["BOOL"] == true)
        {
            return Err(format!(
                "record {} fails on purpose",
                bad["dynamodb"]["Keys"]["id"]["S"].as_str().unwrap_or("?")
            )
            .into());
        }
        return Ok(json!({"records": records.len()}));
    }
    if let Some(record) = payload.pointer("/Records/0") {
        println!(
            "s3 event {} {} {}",
            record["eventName"].as_str().unwrap_or("?"),
            record["s3"]["bucket"]["name"].as_str().unwrap_or("?"),
            record["s3"]["object"]["key"].as_str().unwrap_or("?"),
        );
        println!(
            "s3 object {} {} {}",
            record["s3"]["object"]["key"].as_str().unwrap_or("?"),
            record["s3"]["object"]["size"],
            record["s3"]["object"]["eTag"].as_str().unwrap_or("?"),
        );
    }
    if let Some(seconds) = payload.get("spawn_sleep").and_then(Value::as_u64) {
        // Not waited for: the test checks that it ends with the environment.
        let child = std::process::Command::new("sleep")
            .arg(seconds.to_string())
            .spawn()?;
        println!("spawned {}", child.id());
    }
    let spin = payload
        .get("spin_ms")
        .and_then(Value::as_u64)
        .map(|ms| spin_for(std::time::Duration::from_millis(ms)));
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(code) = payload.get("exit").and_then(Value::as_i64) {
        std::process::exit(code as i32);
    }
    if let Some(reason) = payload.get("fail").and_then(Value::as_str) {
        return Err(reason.to_owned().into());
    }
    let env: serde_json::Map<String, Value> = payload
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|name| Some((name.to_owned(), Value::from(std::env::var(name).ok()?))))
        .collect();
    Ok(json!({
        "echo": payload,
        "env": env,
        "pid": std::process::id(),
        "served": served,
        "request_id": event.context.request_id,
        "function_name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        "test_var": std::env::var("HYBRIDLAB_TEST_VAR").ok(),
        "spin": spin,
    }))
}

/// Busy work for `wall` of wall-clock time: the rounds done measure the CPU time the process
/// got meanwhile, whatever the machine's speed, so two environments compare by their ratio.
fn spin_for(wall: std::time::Duration) -> Value {
    let started = std::time::Instant::now();
    let mut rounds: u64 = 0;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while started.elapsed() < wall {
        for _ in 0..1000 {
            state = std::hint::black_box(state.rotate_left(7) ^ rounds.wrapping_mul(31));
            rounds += 1;
        }
    }
    json!({
        "rounds": rounds,
        "wall_ms": started.elapsed().as_secs_f64() * 1000.0,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if std::env::var("HYBRIDLAB_TEST_FAIL_INIT").is_ok() {
        return Err("init failed on purpose".into());
    }
    lambda_runtime::run(service_fn(handle)).await
}
