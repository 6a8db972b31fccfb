//! `hybridlab sandbox --detach`, `status` and `stop`, through the real binary: the sandbox
//! runs in the background, answers AWS calls and runs functions, and `stop` leaves no process
//! of it behind.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::procfs::{self, alive};
use hybridlab_tests::sandbox::{bootstrap_zip, build_binary};
use serde_json::Value;

/// Every live process descended from `root`, `root` included.
fn descendants(root: u32) -> BTreeSet<u32> {
    let parents: Vec<(u32, u32)> = procfs::processes()
        .into_iter()
        .filter(|(_, stat)| !stat.zombie())
        .map(|(pid, stat)| (pid, stat.parent))
        .collect();
    let mut found = BTreeSet::from([root]);
    loop {
        let before = found.len();
        for (pid, ppid) in &parents {
            if found.contains(ppid) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

fn hybridlab(binary: &Path, state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary)
        .args(args)
        .env("HYBRIDLAB_SANDBOX_DIR", state)
        .output()
        .expect("hybridlab runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_sandbox_serves_until_stop_and_leaves_no_process_behind() {
    let (binary, zip) = tokio::task::spawn_blocking(|| {
        (
            build_binary("hybridlab-console", "hybridlab"),
            bootstrap_zip("hybridlab-tests", "lab-test-function"),
        )
    })
    .await
    .expect("built");
    let state = std::env::temp_dir().join(unique_name("hybridlab-sandbox-service"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();

    let status = hybridlab(&binary, &state, &["sandbox", "status", "--json"]);
    assert_eq!(status.status.code(), Some(3), "not running yet");

    // A dry run plans for the sandbox without starting it.
    let plan = Command::new(&binary)
        .args(["up", "--dry-run", "--json"])
        .env("HYBRIDLAB_SANDBOX_DIR", &state)
        .env("HYBRIDLAB_SANDBOX_PORT", port.to_string())
        .output()
        .expect("hybridlab runs");
    assert!(plan.status.success(), "{plan:?}");
    let plan: Value = serde_json::from_slice(&plan.stdout).expect("the plan as JSON");
    assert_eq!(
        plan["target"],
        format!("local sandbox (http://127.0.0.1:{port})")
    );
    assert!(
        plan["plan"]
            .as_array()
            .is_some_and(|steps| steps.len() >= 14),
        "{plan}"
    );
    let status = hybridlab(&binary, &state, &["sandbox", "status", "--json"]);
    assert_eq!(
        status.status.code(),
        Some(3),
        "still not running after a dry run"
    );

    let started = hybridlab(
        &binary,
        &state,
        // Without AWS's waits: this test is about the service, not the timing (which the
        // detached sandbox is given through its flags, as the health answer shows).
        &[
            "sandbox",
            "--detach",
            "--port",
            &port.to_string(),
            "--fast",
            "--new-account",
        ],
    );
    assert!(
        started.status.success(),
        "{}{}",
        String::from_utf8_lossy(&started.stdout),
        String::from_utf8_lossy(&started.stderr)
    );
    let status = hybridlab(&binary, &state, &["sandbox", "status", "--json"]);
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).expect("JSON status");
    assert_eq!(status["running"], true);
    let endpoint = status["endpoint"].as_str().expect("an endpoint").to_owned();
    assert_eq!(endpoint, format!("http://127.0.0.1:{port}"));
    let pid = status["pid"].as_u64().expect("a pid") as u32;
    let health: Value = reqwest::get(format!("{endpoint}/_hybridlab/health"))
        .await
        .expect("the edge answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["timing"]["instance_boot_seconds"], 0.0, "{health}");
    assert_eq!(health["timing"]["iam_propagation_seconds"], 0.0, "{health}");
    assert_eq!(health["lambda_concurrency"], 10, "{health}");

    // It answers AWS calls and runs a function.
    let config = hybridlab_sandbox::sdk_config(&endpoint, "us-east-1").await;
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let role = iam
        .create_role()
        .role_name(unique_name("role"))
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("a role")
        .role()
        .map(|r| r.arn().to_owned())
        .expect("an ARN");
    let function = unique_name("service-fn");
    lambda
        .create_function()
        .function_name(&function)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(zip))
                .build(),
        )
        .send()
        .await
        .expect("created");
    let output = lambda
        .invoke()
        .function_name(&function)
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoked");
    assert_eq!(output.function_error(), None);

    let processes = descendants(pid);
    assert!(
        processes.len() >= 3,
        "the sandbox, moto and a function environment: {processes:?}"
    );

    let stopped = hybridlab(&binary, &state, &["sandbox", "stop"]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let mut left = Vec::new();
    for _ in 0..50 {
        left = processes.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let status = hybridlab(&binary, &state, &["sandbox", "status"]);
    assert_eq!(status.status.code(), Some(3), "stopped");
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_the_local_target_starts_the_sandbox_itself() {
    let binary = tokio::task::spawn_blocking(|| build_binary("hybridlab-console", "hybridlab"))
        .await
        .expect("built");
    let state = std::env::temp_dir().join(unique_name("hybridlab-sandbox-auto"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let run = |args: &[&str]| {
        let (config_var, config_dir) = hybridlab_tests::sandbox::without_user_config();
        Command::new(&binary)
            .args(args)
            .env("HYBRIDLAB_SANDBOX_DIR", &state)
            .env("HYBRIDLAB_SANDBOX_PORT", port.to_string())
            .env(config_var, config_dir)
            .env_remove("HYBRIDLAB_ENDPOINT")
            .env_remove("HYBRIDLAB_TARGET")
            .output()
            .expect("hybridlab runs")
    };

    let first = run(&["status"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(3), "no stack yet: {stderr}");
    assert!(stderr.contains("starting one"), "{stderr}");
    let status = run(&["sandbox", "status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("JSON status");
    assert_eq!(status["running"], true);
    assert_eq!(status["endpoint"], format!("http://127.0.0.1:{port}"));
    let pid = status["pid"].as_u64().expect("a pid");

    // The next command uses the sandbox that runs.
    let second = run(&["status", "--json"]);
    assert_eq!(second.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&second.stderr).contains("starting one"));
    let listed: Value = serde_json::from_slice(&second.stdout).expect("JSON");
    assert_eq!(listed["stacks"], serde_json::json!([]));
    let again = run(&["sandbox", "status", "--json"]);
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON status");
    assert_eq!(again["pid"].as_u64(), Some(pid), "the same sandbox");

    assert!(run(&["sandbox", "stop"]).status.success());
    assert_eq!(run(&["sandbox", "status"]).status.code(), Some(3));
    let _ = std::fs::remove_dir_all(&state);
}
