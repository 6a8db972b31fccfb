//! `hybridlab bench --memory` and `bench --cold` through the real binary on the sandbox: a
//! memory sweep of the pipeline's resizer through uploads, measured by the REPORT lines of its
//! log group, with its memory put back after; a sweep of a function interrupted by Ctrl-C that
//! still puts the memory back; cold starts forced by a change of the environment before each
//! invocation, and the environment put back after.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hybridlab_provision::stack::StackId;
use hybridlab_tests::fixtures;
use hybridlab_tests::lab::lab_stack;
use hybridlab_tests::sandbox::{EdgeClients, bootstrap_zip, deploy_function, edge_clients};
use hybridlab_tests::stack::hybridlab_async as run_cli;
use hybridlab_wire::lambda_cpu::{LambdaCpuShare, STATUS_FIELD};
use serde_json::Value;

use crate::stack::down_leaves_nothing;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hybridlab-bench-memory-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the file was written")).expect("JSON")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `body`, then `cleanup` whatever happened in it, then fails as `body` did.
async fn cleaning_up<B, C>(body: B, cleanup: C)
where
    B: std::future::Future<Output = ()>,
    C: std::future::Future<Output = ()>,
{
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(body)).await;
    cleanup.await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A test function of its own (its memory and environment are changed), with `variables`.
async fn test_function(clients: &EdgeClients, prefix: &str, variables: &[(&str, &str)]) -> String {
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    deploy_function(clients, prefix, zip, 10, variables).await
}

/// Deletes a function [`test_function`] made, and its role.
async fn remove_function(clients: &EdgeClients, function: &str) {
    let role = clients.function_role_name(function).await;
    let _ = clients
        .lambda
        .delete_function()
        .function_name(function)
        .send()
        .await;
    let _ = clients
        .iam
        .delete_role_policy()
        .role_name(&role)
        .policy_name("AWSLambdaBasicExecutionRole")
        .send()
        .await;
    let _ = clients.iam.delete_role().role_name(&role).send().await;
}

async fn memory_of(clients: &EdgeClients, function: &str) -> Option<i32> {
    clients.function_configuration(function).await.memory_size()
}

async fn variables_of(clients: &EdgeClients, function: &str) -> HashMap<String, String> {
    clients
        .function_configuration(function)
        .await
        .environment()
        .and_then(|environment| environment.variables())
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_cold_makes_every_invocation_a_cold_start_and_puts_the_environment_back() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let function = test_function(&clients, "benchcold", &[("KEEP", "this one")]).await;
    let dir = scratch("cold");
    let body = async {
        let payload = dir.join("short.json");
        std::fs::write(&payload, r#"{"sleep_ms": 20}"#).expect("writes");
        let run_file = dir.join("cold.json");
        let output = run_cli(
            &lab.endpoint,
            &[
                "bench",
                "--function",
                &function,
                "--cold",
                "-n",
                "3",
                "--payload",
                payload.to_str().expect("UTF-8"),
                "--out",
                run_file.to_str().expect("UTF-8"),
            ],
            &[],
        )
        .await;
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        eprintln!("{stderr}{stdout}");
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("init_duration"), "{stdout}");
        let run = &read_json(&run_file)["runs"][0];
        assert_eq!(run["config"]["cold"], true);
        assert_eq!(run["config"]["memory_mb"], 128);
        assert_eq!(run["config"]["environment"]["target_kind"], "sandbox");
        let samples = run["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 3);
        for sample in samples {
            assert!(
                sample["lambda"]["init_duration_ms"].as_f64().is_some(),
                "every invocation is a cold start: {sample}"
            );
        }
        assert_eq!(run["summary"]["cold_starts"], 3);
        assert_eq!(
            variables_of(&clients, &function).await,
            HashMap::from([("KEEP".to_owned(), "this one".to_owned())]),
            "the environment is back as it was"
        );
        assert_eq!(memory_of(&clients, &function).await, Some(128));
    };
    cleaning_up(body, async {
        remove_function(&clients, &function).await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// A memory sweep of two levels stopped by Ctrl-C during the second: the first level is kept,
/// the second is a partial run, and the function's memory is put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_sweep_interrupted_by_ctrl_c_keeps_its_levels_and_restores_the_memory() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let function = test_function(&clients, "benchmemstop", &[]).await;
    let dir = scratch("interrupted");
    let body = async {
        let payload = dir.join("short.json");
        std::fs::write(&payload, r#"{"sleep_ms": 50}"#).expect("writes");
        let run_file = dir.join("sweep.json");
        let mut command = hybridlab_tests::stack::hybridlab_command();
        // Each level is long enough (120 invocations of at least 50 ms) to be interrupted.
        command
            .args(["bench", "--function", &function, "--memory", "256,512"])
            .args(["-n", "120", "--payload", payload.to_str().expect("UTF-8")])
            .args(["--out", run_file.to_str().expect("UTF-8")])
            .args(["--endpoint", &lab.endpoint])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("hybridlab starts");
        let stderr = child.stderr.take().expect("piped");
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        // The second level has started once its memory update is announced; then some of its
        // invocations run before the Ctrl-C.
        let mut seen = Vec::new();
        let second_level = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.recv().await {
                let started = line.contains("m=512: setting the memory");
                seen.push(line);
                if started {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(second_level, Ok(true), "the second level starts: {seen:?}");
        let at_512 = crate::common::eventually(Duration::from_secs(30), || async {
            (memory_of(&clients, &function).await == Some(512)).then_some(())
        })
        .await;
        assert!(at_512.is_some(), "the function is set to 512 MB");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let interrupt = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(interrupt.success());
        let output = tokio::time::timeout(
            Duration::from_secs(90),
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await
        .expect("the bench ends within 90 s of Ctrl-C")
        .expect("joined")
        .expect("its output");
        let _ = reader.join();
        while let Ok(line) = lines.try_recv() {
            seen.push(line);
        }
        let (stdout, stderr) = (text(&output.stdout), seen.join("\n"));
        assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
        assert!(stderr.contains("is back as it was"), "{stderr}");
        assert_eq!(
            memory_of(&clients, &function).await,
            Some(128),
            "the memory is restored"
        );
        let file = read_json(&run_file);
        let runs = file["runs"].as_array().expect("runs");
        let labels: Vec<&str> = runs
            .iter()
            .filter_map(|run| run["config"]["label"].as_str())
            .collect();
        assert_eq!(labels, ["m=256", "m=512"]);
        assert_eq!(runs[0]["config"]["memory_mb"], 256);
        assert!(runs[0]["config"]["interrupted"].is_null());
        assert_eq!(runs[0]["summary"]["invocations"], 120);
        assert_eq!(runs[1]["config"]["interrupted"], true);
        let partial = runs[1]["summary"]["invocations"].as_u64().expect("a count");
        assert!(partial < 120, "{partial} invocations at 512 MB");
        assert!(stdout.contains("Memory sweep"), "{stdout}");
    };
    cleaning_up(body, async {
        remove_function(&clients, &function).await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

fn mean_duration(run: &Value) -> f64 {
    let durations: Vec<f64> = run["resizer_reports"]
        .as_array()
        .expect("REPORT lines")
        .iter()
        .filter_map(|report| report["duration_ms"].as_f64())
        .collect();
    durations.iter().sum::<f64>() / durations.len().max(1) as f64
}

/// `bench --upload --memory` on a stack of its own with the pipeline: per level, the resizer's
/// memory set and its REPORT lines of that memory read from its log group; the levels saved,
/// the picks printed, the memory put back; and, where the sandbox caps each environment's CPU
/// by its memory, the resizing is much slower at the low level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_sweep_of_the_resizer_through_uploads_reads_its_reports_and_restores_it() {
    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();
    let id = StackId::generate().to_string();
    let names = hybridlab_provision::stack::StackNames::new(&StackId::parse(&id).expect("an id"));
    let dir = scratch("resizer");
    let body = async {
        let up = run_cli(
            &endpoint,
            &["up", "--json", "--stack", &id, "--with", "pipeline"],
            &[],
        )
        .await;
        assert!(up.status.success(), "up: {}", text(&up.stderr));
        let original = memory_of(&clients, &names.resizer).await;
        // Big enough for the decoding and resizing to outweigh the resizer's S3 and DynamoDB
        // calls, which a CPU cap does not slow.
        let photo = dir.join("large.jpg");
        std::fs::write(&photo, fixtures::jpeg(3600, 2400)).expect("writes");
        let sweep_file = dir.join("sweep.json");
        let output = run_cli(
            &endpoint,
            &[
                "bench",
                "--stack",
                &id,
                "--upload",
                photo.to_str().expect("UTF-8"),
                "--memory",
                "256,1769",
                "-n",
                "3",
                "--out",
                sweep_file.to_str().expect("UTF-8"),
            ],
            &[],
        )
        .await;
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        // The sweep's table, for whoever runs the test with --nocapture.
        eprintln!("{stderr}{stdout}");
        assert!(output.status.success(), "{stdout}\n{stderr}");
        for expected in ["Memory sweep", "cheapest", "fastest", "balanced"] {
            assert!(stdout.contains(expected), "`{expected}` in {stdout}");
        }
        assert_eq!(
            memory_of(&clients, &names.resizer).await,
            original,
            "the resizer's memory is restored"
        );
        let file = read_json(&sweep_file);
        assert_eq!(file["format"], "hybridlab-upload-bench/1");
        let runs = file["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2);
        for (run, level) in runs.iter().zip([256, 1769]) {
            assert_eq!(run["label"], format!("m={level}"));
            assert_eq!(run["memory_mb"], level);
            assert_eq!(run["completed"], 3, "{run}");
            assert_eq!(run["environment"]["target_kind"], "sandbox");
            let reports = run["resizer_reports"].as_array().expect("REPORT lines");
            assert!(
                reports.len() >= 3,
                "m={level}: {} REPORT lines",
                reports.len()
            );
            assert!(
                reports
                    .iter()
                    .all(|report| report["memory_size_mb"] == level),
                "m={level}: {reports:?}"
            );
        }
        // The sweep's report: its table with the picks, and the chart of duration and cost
        // against memory.
        let report_dir = dir.join("report");
        let report = run_cli(
            &endpoint,
            &[
                "report",
                sweep_file.to_str().expect("UTF-8"),
                "--out",
                report_dir.to_str().expect("UTF-8"),
            ],
            &[],
        )
        .await;
        assert!(report.status.success(), "{}", text(&report.stderr));
        let markdown = std::fs::read_to_string(report_dir.join("report.md")).expect("report.md");
        assert!(markdown.contains("## Memory sweep of"), "{markdown}");
        assert!(markdown.contains("**Cheapest:**"), "{markdown}");
        let charts: Vec<String> = std::fs::read_dir(&report_dir)
            .expect("the report's folder")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("memory-sweep-") && name.ends_with(".svg"))
            .collect();
        assert_eq!(charts.len(), 1, "one memory-sweep chart: {charts:?}");
        let chart = std::fs::read_to_string(report_dir.join(&charts[0])).expect("the chart");
        for level in ["256", "1769"] {
            assert!(
                chart.contains(&format!(">{level}</text>")),
                "{level} on the chart"
            );
        }
        let picked: Vec<&str> = chart
            .split("data-label=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        for pick in ["cheapest", "fastest", "balanced"] {
            assert!(
                picked.iter().any(|label| label.contains(pick)),
                "{pick} marked on the chart: {picked:?}"
            );
        }
        let status = hybridlab_sandbox::control::status(&endpoint)
            .await
            .expect("the sandbox's status");
        match status.get(STATUS_FIELD) {
            Some(share) => {
                let share: LambdaCpuShare =
                    serde_json::from_value(share.clone()).expect("the CPU share");
                if share.capped() {
                    // 256 MB gets a seventh of the CPU of 1,769 MB; twice as slow is a wide
                    // margin for a CPU-bound resize.
                    let (low, high) = (mean_duration(&runs[0]), mean_duration(&runs[1]));
                    assert!(
                        low > 2.0 * high,
                        "mean resizer duration {low:.1} ms at 256 MB, {high:.1} ms at 1769 MB"
                    );
                    assert!(stderr.contains(share.mechanism.name()), "{stderr}");
                } else {
                    assert!(
                        stderr.contains("durations will not fall with memory"),
                        "{stderr}"
                    );
                }
            }
            None => assert!(stderr.contains("CPU share per memory: unknown"), "{stderr}"),
        }
    };
    cleaning_up(body, async {
        down_leaves_nothing(&endpoint, &clients, &id).await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}
