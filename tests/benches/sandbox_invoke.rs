//! Invocations through the sandbox's edge port: throughput, latency and CPU time per invocation
//! for a no-op function, driven with raw HTTP (unsigned POSTs with `X-Amz-Log-Type: Tail`, the
//! cheapest possible client; concurrency 1, 16 and 64), with `hybridlab bench`'s own invoker
//! (SigV4-signed HTTP) and with the AWS SDK for Rust (`Invoke` with `LogType::Tail`), both at
//! concurrency 16, 32 and 64; each level is a closed loop of that many tasks; the agent's added latency (client round trip minus the Duration the REPORT line
//! gives for the function itself); and the proxy function's cold start.
//!
//! The CPU time of each level is read from /proc before and after it, split by who spent it:
//! the client (this process's own threads), the agent (the sandbox runtime's threads, named
//! `sandbox`), the function processes (`bootstrap`) and moto, whose share is the log shipping:
//! each level waits until its lines are in CloudWatch. What the rest of the machine
//! spent meanwhile is shown as "other" (other builds on a shared machine depress the
//! throughput, not the CPU time per invocation, which is what decides it on an idle machine).
//!
//! `cargo bench -p hybridlab-tests --bench sandbox_invoke [-- raw engine sdk overhead cold]`
//! (naming sections runs only those; `HYBRIDLAB_BENCH_INVOCATIONS=N` sets the invocations per
//! raw HTTP level, default 5000, `HYBRIDLAB_BENCH_SDK_INVOCATIONS=N` per engine and SDK level,
//! default 20000.)

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hybridlab_tests::procfs::{self, ProcStat};
use hybridlab_tests::sandbox::{EdgeClients, bootstrap_zip, deploy_function, edge_clients};

/// Linux reports process times in USER_HZ ticks, 100 per second on every x86-64 kernel.
const TICKS_PER_SECOND: f64 = 100.0;

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

/// CPU ticks spent so far, by who spent them.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTicks {
    client: u64,
    agent: u64,
    functions: u64,
    moto: u64,
    /// Busy ticks of the whole machine, summed over its cores.
    machine: u64,
}

impl CpuTicks {
    fn now() -> Self {
        let mut ticks = Self::default();
        let own = std::process::id();
        // This process: the sandbox's runtime threads (named `sandbox` by the tests' helper) and
        // the threads that fork its processes (`sandbox-spawn`) are the agent, the rest (the
        // main thread is `sandbox_invoke-...`) is the client.
        if let Ok(threads) = std::fs::read_dir("/proc/self/task") {
            for thread in threads.flatten() {
                let path = format!("{}/stat", thread.path().display());
                if let Some(stat) = ProcStat::read(&path) {
                    if stat.name == "sandbox" || stat.name == "sandbox-spawn" {
                        ticks.agent += stat.cpu_ticks;
                    } else {
                        ticks.client += stat.cpu_ticks;
                    }
                }
            }
        }
        // Every descendant: the function environments and moto.
        let mut children: HashMap<u32, Vec<(u32, ProcStat)>> = HashMap::new();
        for (pid, stat) in procfs::processes() {
            children.entry(stat.parent).or_default().push((pid, stat));
        }
        let mut stack = vec![own];
        while let Some(parent) = stack.pop() {
            for (pid, stat) in children.remove(&parent).unwrap_or_default() {
                if stat.name == "bootstrap" {
                    ticks.functions += stat.cpu_ticks;
                } else {
                    ticks.moto += stat.cpu_ticks;
                }
                stack.push(pid);
            }
        }
        // user nice system idle iowait irq softirq steal
        if let Ok(stat) = std::fs::read_to_string("/proc/stat")
            && let Some(line) = stat.lines().next()
        {
            let values: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|value| value.parse().ok())
                .collect();
            ticks.machine = [0, 1, 2, 5, 6, 7]
                .iter()
                .filter_map(|&at| values.get(at))
                .sum();
        }
        ticks
    }

    fn since(self, before: Self) -> Self {
        Self {
            client: self.client.saturating_sub(before.client),
            agent: self.agent.saturating_sub(before.agent),
            functions: self.functions.saturating_sub(before.functions),
            moto: self.moto.saturating_sub(before.moto),
            machine: self.machine.saturating_sub(before.machine),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// What one invocation came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// 200 with a REPORT line in the log tail (the SDK) or any 200 (raw HTTP).
    Ok,
    Throttled,
    /// 200 without a REPORT line in the tail.
    NoReport,
    Failed,
}

/// One level's results, printed as a table row.
/// `elapsed` is the level's own time (for the rate); `window` runs until its log lines were
/// shipped (for the CPU the rest of the machine spent meanwhile).
fn print_row(
    client: &str,
    concurrency: usize,
    elapsed: Duration,
    window: Duration,
    results: &[(Duration, Answer)],
    cpu: CpuTicks,
    load: &str,
) {
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for (latency, _) in results {
        histogram
            .record(latency.as_micros() as u64)
            .expect("in range");
    }
    let count = |answer| results.iter().filter(|(_, a)| *a == answer).count();
    let invocations = results.len().max(1) as f64;
    let us = |ticks: u64| ticks as f64 * 1_000_000.0 / TICKS_PER_SECOND / invocations;
    let ours = cpu.client + cpu.agent + cpu.functions + cpu.moto;
    let other_cores =
        cpu.machine.saturating_sub(ours) as f64 / TICKS_PER_SECOND / window.as_secs_f64();
    println!(
        "| {client} | {concurrency} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.0}** | {other_cores:.2} | {load} |",
        results.len() as f64 / elapsed.as_secs_f64(),
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
        count(Answer::Throttled),
        count(Answer::Failed) + count(Answer::NoReport),
        us(cpu.client),
        us(cpu.agent),
        us(cpu.functions),
        us(cpu.moto),
        us(ours),
    );
}

fn print_header() {
    println!(
        "| client | concurrency | invocations/s | p50 ms | p99 ms | max ms | throttled | failed | client µs | agent µs | functions µs | moto µs | total µs | other cores | load |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
}

/// Runs `total` invocations from `concurrency` spawned tasks, each calling `invoke` in a loop
/// (a closed loop, as the benchmark engine drives it), and prints the level's row.
async fn run_level<F, Fut>(label: &str, concurrency: usize, total: usize, invoke: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Answer> + Send,
{
    let load = load_average();
    let next = Arc::new(AtomicUsize::new(0));
    let before = CpuTicks::now();
    let started = Instant::now();
    let lanes: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let invoke = invoke.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let sent = Instant::now();
                    let answer = invoke().await;
                    results.push((sent.elapsed(), answer));
                }
                results
            })
        })
        .collect();
    let mut results = Vec::with_capacity(total);
    for lane in lanes {
        results.extend(lane.await.expect("a lane does not panic"));
    }
    let elapsed = started.elapsed();
    wait_for_log_shipping().await;
    let cpu = CpuTicks::now().since(before);
    print_row(
        label,
        concurrency,
        elapsed,
        started.elapsed(),
        &results,
        cpu,
        &load,
    );
}

/// Waits until the sandbox has shipped the level's log lines into moto, so their cost is
/// counted with the level that wrote them. The shipper paces its rounds by the calls they make
/// (with 64 busy streams, 6.4 s apart), so this waits that long, then for moto to go quiet.
async fn wait_for_log_shipping() {
    let started = Instant::now();
    let mut last = CpuTicks::now().moto;
    let mut quiet_since = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = CpuTicks::now().moto;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if started.elapsed() > Duration::from_secs(7)
            && quiet_since.elapsed() > Duration::from_secs(1)
        {
            return;
        }
    }
}

async fn raw_levels(clients: &EdgeClients, noop: &str, invocations: usize) {
    let endpoint: Arc<str> = format!(
        "{}/2015-03-31/functions/{noop}/invocations",
        clients.endpoint
    )
    .into();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for concurrency in [1usize, 16, 64] {
        let http = http.clone();
        let endpoint = endpoint.clone();
        run_level("raw HTTP", concurrency, invocations, move || {
            let http = http.clone();
            let endpoint = endpoint.clone();
            async move {
                match http
                    .post(&*endpoint)
                    .header("x-amz-log-type", "Tail")
                    .body("{}")
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        match status {
                            200 => Answer::Ok,
                            429 => Answer::Throttled,
                            _ => Answer::Failed,
                        }
                    }
                    Err(_) => Answer::Failed,
                }
            }
        })
        .await;
    }
}

/// `Invoke` with `LogType::Tail` through the SDK, as the benchmark engine calls it.
async fn sdk_invoke(lambda: &aws_sdk_lambda::Client, function: &str) -> Answer {
    match lambda
        .invoke()
        .function_name(function)
        .log_type(LogType::Tail)
        .payload(Blob::new("{}"))
        .send()
        .await
    {
        Ok(output) if decode_log(output.log_result()).contains("\nREPORT RequestId: ") => {
            Answer::Ok
        }
        Ok(_) => Answer::NoReport,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|err| err.is_too_many_requests_exception()) =>
        {
            Answer::Throttled
        }
        Err(_) => Answer::Failed,
    }
}

async fn sdk_levels(clients: &EdgeClients, noop: &str, invocations: usize) {
    let function: Arc<str> = noop.into();
    for concurrency in [16usize, 32, 64] {
        let lambda = clients.lambda.clone();
        let function = function.clone();
        run_level("SDK, Tail", concurrency, invocations, move || {
            let lambda = lambda.clone();
            let function = function.clone();
            async move { sdk_invoke(&lambda, &function).await }
        })
        .await;
    }
}

/// `hybridlab bench`'s own invoker (SigV4-signed HTTP, `bench/src/signed.rs`), which
/// is what the benchmark engine drives the sandbox with.
async fn engine_levels(clients: &EdgeClients, noop: &str, invocations: usize) {
    use hybridlab_bench::engine::Invoke as _;
    use hybridlab_bench::model::Outcome;
    use hybridlab_bench::signed::SignedInvoker;
    let config = hybridlab_sandbox::sdk_config(&clients.endpoint, "us-east-1").await;
    let invoker = SignedInvoker::new(&config, noop).expect("the engine's invoker");
    for concurrency in [16usize, 32, 64] {
        let invoker = invoker.clone();
        run_level("engine, signed", concurrency, invocations, move || {
            let invoker = invoker.clone();
            async move {
                let invocation = invoker.invoke(bytes::Bytes::from_static(b"{}")).await;
                match invocation.outcome {
                    Outcome::Ok if invocation.report.is_some() => Answer::Ok,
                    Outcome::Ok => Answer::NoReport,
                    Outcome::Throttled => Answer::Throttled,
                    _ => Answer::Failed,
                }
            }
        })
        .await;
    }
}

async fn agent_overhead(clients: &EdgeClients, noop: &str) {
    // The agent's share: round trip (SDK, LogType Tail) minus the function's own Duration.
    let mut overhead = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..200 {
        let sent = Instant::now();
        let output = clients
            .lambda
            .invoke()
            .function_name(noop)
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
}

async fn proxy_cold_starts(clients: &EdgeClients) {
    // Cold starts of the proxy: a fresh function each time, so every first call is cold.
    let proxy_zip = bootstrap_zip("hybridlab-lambda", "proxy");
    let mut init = Vec::new();
    let mut cold_round_trip = Vec::new();
    for _ in 0..5 {
        let proxy = deploy_function(
            clients,
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        return;
    }
    let sections: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |section: &str| sections.is_empty() || sections.contains(&section);
    let count = |variable: &str, default: usize| {
        std::env::var(variable)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let invocations = count("HYBRIDLAB_BENCH_INVOCATIONS", 5000);
    let sdk_invocations = count("HYBRIDLAB_BENCH_SDK_INVOCATIONS", 20_000);

    let clients = edge_clients().await;
    let noop = deploy_function(
        &clients,
        "noop",
        bootstrap_zip("hybridlab-tests", "lab-test-function"),
        10,
        &[],
    )
    .await;
    // Warm every environment the runs below will use (64, the sandbox's concurrency limit).
    futures::StreamExt::for_each_concurrent(futures::stream::iter(0..256), 64, |_| async {
        let _ = sdk_invoke(&clients.lambda, &noop).await;
    })
    .await;
    wait_for_log_shipping().await;

    if wanted("raw") || wanted("engine") || wanted("sdk") {
        println!(
            "no-op function, warm; raw HTTP: {invocations} invocations per level; engine and SDK: {sdk_invocations}; CPU time per invocation"
        );
        print_header();
    }
    if wanted("raw") {
        raw_levels(&clients, &noop, invocations).await;
    }
    if wanted("engine") {
        engine_levels(&clients, &noop, sdk_invocations).await;
    }
    if wanted("sdk") {
        sdk_levels(&clients, &noop, sdk_invocations).await;
    }
    if wanted("overhead") {
        agent_overhead(&clients, &noop).await;
    }
    if wanted("cold") {
        proxy_cold_starts(&clients).await;
    }
}
