//! Load run of `POST /process-image` on loopback: the release server binary as its own
//! process, S3 and DynamoDB on moto, a 1-megapixel JPEG from a loopback host. For each
//! concurrency level it reports requests/s, p50/p99/max latency, the server's mean stage
//! timings, and the server's CPU time per request read from /proc (so the load generator,
//! the image host and moto are not counted).
//!
//! `cargo bench -p hybridlab-tests --bench process_load`
//! (`HYBRIDLAB_BENCH_REQUESTS=N` sets the requests per level, default 150.)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use hybridlab_tests::aws::{clients, unique_name};
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::server::LAB_TOKEN;
use hybridlab_wire::ProcessImageResponse;

const LEVELS: [usize; 3] = [1, 8, 32];
/// Linux reports process times in USER_HZ ticks, 100 per second on every x86-64 kernel.
const TICKS_PER_SECOND: f64 = 100.0;

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of `pid`, all threads, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server runs");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks * 1000.0 / TICKS_PER_SECOND
}

fn build_server() -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "hybridlab-ec2-server",
            "--bin",
            "hybridlab-ec2-server",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the server builds");
    // This bench runs from <target>/release/deps/; the server binary sits in <target>/release/.
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .join("hybridlab-ec2-server")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks; there is one run.
    }
    let requests: usize = std::env::var("HYBRIDLAB_BENCH_REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(150);
    let server_binary = build_server();
    let aws = clients().await;
    let bucket = unique_name("bench");
    let table = unique_name("bench");
    aws.create_bucket(&bucket).await;
    aws.create_table(&table).await;
    let host = ImageHost::start().await;
    let image = fixtures::jpeg(1155, 866);
    let image_bytes = image.len();
    let url = host.add("photo.jpg", image, "image/jpeg");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let server = ServerProcess(
        Command::new(&server_binary)
            .env("HYBRIDLAB_LISTEN", format!("127.0.0.1:{port}"))
            .env("HYBRIDLAB_TOKEN", LAB_TOKEN)
            .env("HYBRIDLAB_BUCKET", &bucket)
            .env("HYBRIDLAB_TABLE", &table)
            .env("HYBRIDLAB_ENDPOINT_URL", &aws.endpoint)
            .env("HYBRIDLAB_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server starts"),
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server answers /health");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let endpoint = format!("{base}/process-image");
    let run = |count: usize, concurrency: usize| {
        let client = client.clone();
        let endpoint = endpoint.clone();
        let url = url.clone();
        async move {
            futures::stream::iter(0..count)
                .map(|_| {
                    let client = client.clone();
                    let endpoint = endpoint.clone();
                    let url = url.clone();
                    async move {
                        let started = Instant::now();
                        let response = client
                            .post(&endpoint)
                            .bearer_auth(LAB_TOKEN)
                            .json(&serde_json::json!({ "image_url": url }))
                            .send()
                            .await
                            .expect("answers");
                        assert!(response.status().is_success(), "{}", response.status());
                        let body: ProcessImageResponse = response.json().await.expect("JSON");
                        (started.elapsed(), body)
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<_>>()
                .await
        }
    };
    run(20, 4).await; // warm-up: connections, moto's first-use costs, page cache

    println!("image: 1155x866 JPEG, {image_bytes} bytes; {requests} requests per level");
    println!(
        "| concurrency | req/s | p50 ms | p99 ms | max ms | decode | resize | encode | s3 | dynamodb | server CPU ms/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for concurrency in LEVELS {
        let cpu_before = cpu_ms(pid);
        let started = Instant::now();
        let results = run(requests, concurrency).await;
        let elapsed = started.elapsed();
        let cpu = cpu_ms(pid) - cpu_before;
        let mut latency = Histogram::<u64>::new(3).expect("histogram");
        let mut stages = [0.0f64; 5];
        for (duration, body) in &results {
            latency
                .record(duration.as_micros() as u64)
                .expect("in range");
            let t = body.timings_ms;
            for (sum, value) in stages
                .iter_mut()
                .zip([t.decode, t.resize, t.encode, t.s3, t.dynamodb])
            {
                *sum += value;
            }
        }
        let n = results.len() as f64;
        let ms = |micros: u64| micros as f64 / 1000.0;
        println!(
            "| {concurrency} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |",
            n / elapsed.as_secs_f64(),
            ms(latency.value_at_quantile(0.5)),
            ms(latency.value_at_quantile(0.99)),
            ms(latency.max()),
            stages[0] / n,
            stages[1] / n,
            stages[2] / n,
            stages[3] / n,
            stages[4] / n,
            cpu / n,
        );
    }
    drop(server);
}
