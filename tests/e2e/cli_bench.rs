//! `hybridlab invoke` and `hybridlab bench` through the real binary on the sandbox: one
//! invocation with its timing breakdown; a closed, an open and a sweep run whose exported
//! percentiles are checked against the raw samples; failures counted by kind; bad input
//! refused with one line and a non-zero exit.

use std::path::Path;
use std::process::Output;

use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::lab::lab_stack;
use hybridlab_tests::sandbox::{bootstrap_zip, deploy_function, edge_clients};
use hybridlab_tests::stack::hybridlab_async;
use serde_json::Value;

async fn run_cli(endpoint: &str, args: Vec<String>, envs: Vec<(&str, &str)>) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hybridlab_async(endpoint, &args, &envs).await
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

fn stdout_json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|err| {
        panic!(
            "stdout is one JSON document ({err}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The one line a refused command prints, after checking it is one line and non-zero.
fn refusal(output: &Output) -> String {
    assert!(!output.status.success(), "the command must fail");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// The exact percentile by nearest rank, which HdrHistogram also uses.
fn nearest_rank(values: &mut [u64], quantile: f64) -> u64 {
    values.sort_unstable();
    let rank = ((quantile * values.len() as f64).ceil() as usize).max(1);
    values[rank - 1]
}

/// Checks every client-latency percentile of `run` against the raw samples it exported.
fn check_percentiles_against_samples(run: &Value) {
    let mut latencies: Vec<u64> = run["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            s["done_us"].as_u64().expect("done_us") - s["intended_us"].as_u64().expect("intended")
        })
        .collect();
    let client = run["summary"]["measures"]
        .as_array()
        .expect("measures")
        .iter()
        .find(|m| m["name"] == "client")
        .expect("a client measure");
    assert_eq!(client["count"].as_u64(), Some(latencies.len() as u64));
    for (quantile, field) in [
        (0.5, "p50_ms"),
        (0.9, "p90_ms"),
        (0.99, "p99_ms"),
        (0.999, "p999_ms"),
        (1.0, "max_ms"),
    ] {
        let exact = nearest_rank(&mut latencies, quantile) as f64 / 1000.0;
        let reported = client[field].as_f64().expect("a number");
        // Three significant digits: within 0.1% (plus a microsecond of rounding).
        assert!(
            (reported - exact).abs() <= exact * 0.001 + 0.001,
            "{field}: reported {reported} ms, exact {exact} ms"
        );
    }
    let bucket_total: u64 = client["histogram"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|pair| pair[1].as_u64().expect("a count"))
        .sum();
    assert_eq!(bucket_total, latencies.len() as u64);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the file was written")).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_shows_the_answer_and_every_timing() {
    let lab = lab_stack().await;
    let host = ImageHost::start().await;
    let url = host.add("invoke.jpg", fixtures::jpeg(1400, 900), "image/jpeg");

    let output = run_cli(
        &lab.endpoint,
        strings(&["invoke", "--stack", &lab.stack, "--url", &url, "--json"]),
        vec![],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let answer = stdout_json(&output);
    assert_eq!(answer["function"], lab.names.function.as_str());
    let invocation = &answer["invocation"];
    assert_eq!(invocation["outcome"], "ok");
    assert_eq!(invocation["status_code"], 200);
    assert_eq!(invocation["body"]["width"], 1400);
    assert_eq!(
        invocation["body"]["bucket"],
        lab.names.images_bucket.as_str()
    );
    assert!(invocation["round_trip_ms"].as_f64().expect("a round trip") > 0.0);
    let report = &invocation["report"];
    assert!(report["duration_ms"].as_f64().expect("a duration") > 0.0);
    assert!(report["billed_duration_ms"].as_f64().expect("billed") >= 1.0);
    assert_eq!(report["memory_size_mb"], 256);
    assert!(invocation["ec2_ms"]["total"].as_f64().expect("EC2 timings") > 0.0);
    assert!(
        invocation["log_tail"]
            .as_str()
            .expect("the log tail")
            .contains("REPORT RequestId")
    );

    // The same for a person: the response and a line per timing, no colour when piped.
    let output = run_cli(
        &lab.endpoint,
        strings(&["invoke", "--stack", &lab.stack, "--url", &url]),
        vec![],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "ok hybridlab-proxy-",
        "\"image_id\"",
        "client round trip",
        "lambda duration",
        "billed duration",
        "ec2 decode",
        "ec2 total",
    ] {
        assert!(text.contains(expected), "`{expected}` in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no escape codes when piped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_exports_runs_whose_percentiles_match_their_samples() {
    let lab = lab_stack().await;
    let host = ImageHost::start().await;
    let urls: Vec<String> = (0..3)
        .map(|i| {
            host.add(
                &format!("bench-{i}.jpg"),
                fixtures::jpeg(640 + i * 10, 480),
                "image/jpeg",
            )
        })
        .collect();
    let dir = tempdir("bench");
    let url_file = dir.join("urls.txt");
    std::fs::write(&url_file, format!("# three images\n{}\n", urls.join("\n"))).expect("writes");
    let run_file = dir.join("run.json");
    let csv_file = dir.join("samples.csv");

    // Closed loop: 24 invocations, 4 at a time, after 4 warm-up calls.
    let output = run_cli(
        &lab.endpoint,
        strings(&[
            "bench",
            "--stack",
            &lab.stack,
            "-n",
            "24",
            "-c",
            "4",
            "--warmup",
            "4",
            "--urls",
            url_file.to_str().expect("UTF-8"),
            "--out",
            run_file.to_str().expect("UTF-8"),
            "--csv",
            csv_file.to_str().expect("UTF-8"),
            "--json",
        ]),
        vec![],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let printed = stdout_json(&output);
    assert_eq!(printed["format"], "hybridlab-bench/1");
    let file = read_json(&run_file);
    let run = &file["runs"][0];
    assert_eq!(run["config"]["shape"]["kind"], "closed");
    assert_eq!(run["config"]["shape"]["concurrency"], 4);
    assert_eq!(run["samples"].as_array().expect("samples").len(), 24);
    assert_eq!(run["summary"]["ok"], 24, "{}", run["summary"]);
    assert_eq!(printed["runs"][0]["summary"], run["summary"]);
    check_percentiles_against_samples(run);
    let measures: Vec<&str> = run["summary"]["measures"]
        .as_array()
        .expect("measures")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for measure in [
        "client",
        "lambda_duration",
        "ec2_total",
        "ec2_decode",
        "ec2_s3",
    ] {
        assert!(measures.contains(&measure), "{measure} in {measures:?}");
    }
    assert!(run["summary"]["cost"]["gb_seconds"].as_f64().expect("cost") > 0.0);
    assert!(
        !run["summary"]["measures"][0]["histogram"]["hdr_v2_deflate_base64"]
            .as_str()
            .expect("the V2 encoding")
            .is_empty()
    );
    let csv = std::fs::read_to_string(&csv_file).expect("the CSV");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 25, "a header and a row per sample");
    assert!(rows[0].starts_with("run,seq,intended_us"));
    assert!(
        rows[1..]
            .iter()
            .all(|row| row.starts_with("c=4,") && row.contains(",ok,"))
    );

    // Open loop: 20 invocations scheduled 25 ms apart, latencies from the schedule.
    let open_file = dir.join("open.json");
    let output = run_cli(
        &lab.endpoint,
        strings(&[
            "bench",
            "--stack",
            &lab.stack,
            "-n",
            "20",
            "--rate",
            "40",
            "--url",
            &urls[0],
            "--out",
            open_file.to_str().expect("UTF-8"),
        ]),
        vec![],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("open loop, 40/s"), "{text}");
    let open = read_json(&open_file);
    let run = &open["runs"][0];
    assert_eq!(run["config"]["shape"]["kind"], "open");
    let intended: Vec<u64> = run["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["intended_us"].as_u64().expect("intended"))
        .collect();
    assert_eq!(intended.len(), 20);
    for (i, at) in intended.iter().enumerate() {
        assert_eq!(
            *at,
            i as u64 * 25_000,
            "the schedule, not the answers, sets send times"
        );
    }
    check_percentiles_against_samples(run);

    // A sweep: one run per level and the table against concurrency.
    let sweep_file = dir.join("sweep.json");
    let output = run_cli(
        &lab.endpoint,
        strings(&[
            "bench",
            "--stack",
            &lab.stack,
            "-n",
            "6",
            "--sweep",
            "1,3",
            "--url",
            &urls[1],
            "--out",
            sweep_file.to_str().expect("UTF-8"),
        ]),
        vec![],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("against concurrency"), "{text}");
    let sweep = read_json(&sweep_file);
    let labels: Vec<&str> = sweep["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|run| run["config"]["label"].as_str())
        .collect();
    assert_eq!(labels, ["c=1", "c=3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_counts_throttles_and_function_errors_apart() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    let function = deploy_function(&clients, "benchkinds", zip, 10, &[]).await;
    clients
        .lambda
        .put_function_concurrency()
        .function_name(&function)
        .reserved_concurrent_executions(2)
        .send()
        .await
        .expect("reserved concurrency");
    let dir = tempdir("kinds");
    let slow = dir.join("slow.json");
    std::fs::write(&slow, r#"{"sleep_ms": 300}"#).expect("writes");
    let run_file = dir.join("run.json");
    // Six at once against a reserved concurrency of 2: some are throttled.
    let output = run_cli(
        &lab.endpoint,
        strings(&[
            "bench",
            "--function",
            &function,
            "--payload",
            slow.to_str().expect("UTF-8"),
            "-n",
            "12",
            "-c",
            "6",
            "--out",
            run_file.to_str().expect("UTF-8"),
        ]),
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("throttled"), "{text}");
    let run = &read_json(&run_file)["runs"][0];
    let summary = &run["summary"];
    let throttled = summary["errors"]["throttled"].as_u64().unwrap_or(0);
    let ok = summary["ok"].as_u64().expect("ok");
    assert!(throttled > 0, "{summary}");
    assert!(ok > 0, "{summary}");
    // A 300 ms function under a concurrency of 2 either runs or is throttled: anything else
    // is a fault of the sandbox or the engine (two cold starts unpacking the new function's
    // code at once once failed one of them), so its recorded error is shown.
    let samples = run["samples"].as_array().expect("samples");
    let odd: Vec<&Value> = samples
        .iter()
        .filter(|s| s["outcome"] != "ok" && s["outcome"] != "throttled")
        .collect();
    assert!(odd.is_empty(), "neither ran nor throttled: {odd:?}");
    assert_eq!(ok + throttled, 12, "{summary}");
    let throttled_samples = samples
        .iter()
        .filter(|s| s["outcome"] == "throttled")
        .count();
    assert_eq!(throttled_samples as u64, throttled);
    assert!(
        run["summary"]["cold_starts"].as_u64().expect("cold starts") >= 1,
        "{}",
        run["summary"]
    );

    let failing = dir.join("fail.json");
    std::fs::write(&failing, r#"{"fail": "on purpose"}"#).expect("writes");
    let output = run_cli(
        &lab.endpoint,
        strings(&[
            "bench",
            "--function",
            &function,
            "--payload",
            failing.to_str().expect("UTF-8"),
            "-n",
            "3",
            "--json",
        ]),
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let summary = &stdout_json(&output)["runs"][0]["summary"];
    assert_eq!(summary["errors"]["function_error"], 3, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_and_a_non_zero_exit() {
    let lab = lab_stack().await;
    let dir = tempdir("bad");
    let not_json = dir.join("event.json");
    std::fs::write(&not_json, "image_url=http://x").expect("writes");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            strings(&["invoke", "--stack", &lab.stack, "--url", "cat.jpg"]),
            "not a URL",
        ),
        (
            strings(&[
                "invoke",
                "--stack",
                &lab.stack,
                "--payload",
                not_json.to_str().expect("UTF-8"),
            ]),
            "not JSON",
        ),
        (
            strings(&[
                "invoke",
                "--stack",
                "nosuchstack",
                "--url",
                "http://example.com/a.jpg",
            ]),
            "no stack `nosuchstack`",
        ),
        (
            strings(&["bench", "--stack", &lab.stack, "-n", "2"]),
            "nothing to send",
        ),
        (
            strings(&[
                "bench",
                "--stack",
                &lab.stack,
                "--url",
                "http://example.com/a.jpg",
                "--rate",
                "0",
            ]),
            "--rate must be a positive",
        ),
        (
            strings(&[
                "invoke",
                "--function",
                "hybridlab-nothing-here",
                "--url",
                "http://example.com/a.jpg",
            ]),
            "hybridlab-nothing-here",
        ),
    ];
    for (args, expected) in cases {
        let output = run_cli(&lab.endpoint, args.clone(), vec![]).await;
        let line = refusal(&output);
        assert!(
            line.contains(expected),
            "{args:?}: `{expected}` in `{line}`"
        );
    }

    // Nothing listens on port 9: the endpoint is unreachable, and the error says what to do.
    let output = run_cli(
        "http://127.0.0.1:9",
        strings(&[
            "invoke",
            "--stack",
            &lab.stack,
            "--url",
            "http://example.com/a.jpg",
        ]),
        vec![],
    )
    .await;
    let line = refusal(&output);
    assert!(line.contains("cannot reach"), "{line}");
    assert!(line.contains("hybridlab sandbox"), "{line}");
}

/// Credentials the service refuses (expired, revoked, another account's) stop every command with
/// one line that says what to do. moto checks credentials only when told to, so this test has
/// its own moto that does: it refuses the sandbox's made-up keys as AWS refuses a stale token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_one_line_that_says_what_to_do() {
    let moto = tokio::task::spawn_blocking(|| {
        let install =
            hybridlab_tools::ensure_moto(&mut |m| eprintln!("{m}")).expect("moto installs");
        let log = tempdir("auth").join("moto.log");
        hybridlab_sandbox::moto::MotoServer::start_with_env(
            &install,
            0,
            &log,
            &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")],
        )
        .expect("moto starts")
    })
    .await
    .expect("no panic");
    let endpoint = moto.endpoint();
    let url = "http://example.com/a.jpg";
    let commands: [&[&str]; 7] = [
        &["invoke", "--function", "f", "--url", url],
        &["bench", "--function", "f", "--url", url, "-n", "2"],
        &["s3", "ls", "--stack", "abcd1234"],
        &["db", "scan", "--stack", "abcd1234"],
        &["logs", "--stack", "abcd1234"],
        &["status"],
        &["down", "--stack", "abcd1234"],
    ];
    for args in commands {
        let output = hybridlab_async(&endpoint, args, &[]).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        let line = refusal(&output);
        // Which service refuses first varies for commands that ask several at once, and each
        // names the refusal its own way (InvalidClientTokenId, S3's InvalidAccessKeyId, EC2's
        // AuthFailure).
        assert!(
            line.contains("credentials were refused") && line.contains("aws sso login"),
            "{args:?}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_help_and_completions_are_generated() {
    let binary = tokio::task::spawn_blocking(|| {
        hybridlab_tests::sandbox::build_binary("hybridlab-console", "hybridlab")
    })
    .await
    .expect("the build does not panic");
    for command in [
        "up", "down", "status", "invoke", "bench", "report", "logs", "s3", "db",
    ] {
        let output = std::process::Command::new(&binary)
            .args([command, "--help"])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{command} --help: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: hybridlab"), "{command}: {text}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let output = std::process::Command::new(&binary)
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains("hybridlab"), "{shell}");
        // fish spells long options `-l sweep`, the others `--sweep`.
        assert!(
            script.contains("bench") && script.contains("sweep"),
            "{shell}"
        );
    }
}

/// Ctrl-C in the middle of a long bench: no more invocations are sent, those in flight finish,
/// the summary is printed and `--out` is saved as a partial run, which `report` reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_bench_keeps_its_partial_run_and_report_reads_it() {
    // A function of its own, not the shared stack's: a million invocations of the proxy would
    // fill the shared images bucket that other tests list.
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    let function = deploy_function(&clients, "benchstop", zip, 10, &[]).await;
    let dir = tempdir("interrupted");
    let payload = dir.join("short.json");
    std::fs::write(&payload, r#"{"sleep_ms": 20}"#).expect("writes");
    let run_file = dir.join("partial.json");
    let mut command = hybridlab_tests::stack::hybridlab_command();
    command
        .args(["bench", "--function", &function, "-n", "1000000", "-c", "2"])
        .args(["--payload", payload.to_str().expect("UTF-8")])
        .args(["--out", run_file.to_str().expect("UTF-8")])
        .args(["--endpoint", &lab.endpoint])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("hybridlab starts");
    // Long enough for some invocations on the sandbox, far too short for a million.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupt.success());
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the bench ends within a minute of Ctrl-C")
    .expect("joined")
    .expect("its output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted: no more invocations are sent"),
        "{stderr}"
    );
    assert!(
        stdout.contains("interrupted: a partial run"),
        "the summary says so: {stdout}"
    );

    let file = read_json(&run_file);
    let run = &file["runs"][0];
    assert_eq!(run["config"]["interrupted"], true);
    let samples = run["samples"].as_array().expect("samples").len() as u64;
    assert!(samples > 0 && samples < 1_000_000, "{samples} samples");
    // Every invocation sent before the stop finished and was recorded, none cut off.
    assert_eq!(run["summary"]["invocations"], samples);
    assert_eq!(run["summary"]["ok"], samples, "{}", run["summary"]);

    let out = dir.join("report");
    let report = std::process::Command::new(hybridlab_tests::sandbox::build_binary(
        "hybridlab-console",
        "hybridlab",
    ))
    .args(["report", run_file.to_str().expect("UTF-8"), "--out"])
    .arg(&out)
    .env("NO_COLOR", "1")
    .output()
    .expect("report runs");
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(markdown.contains("c=2 (partial)"), "{markdown}");
    assert!(
        markdown.contains("interrupted by Ctrl-C: a partial run"),
        "{markdown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hybridlab-cli-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
