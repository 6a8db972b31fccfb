//! The AWS target as the AWS CLI's users reach it, pointed at the test sandbox with
//! `AWS_ENDPOINT_URL` and the operator's keys in the environment: the target says where its
//! calls go; its stack records are kept by account (STS) under the state directory, and the
//! records earlier releases kept in the cache, or under the profile's name, move there once,
//! with a message; and `up` shows the plan with its hourly cost and asks, so `n` in a terminal
//! cancels and creates nothing, and without a terminal `--yes` is required.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hybridlab_provision::stack::{StackId, StackSettings, StackState};
use hybridlab_tests::sandbox::{build_binary, edge_clients, without_aws_credentials};
use hybridlab_tests::stack::leftovers;
use hybridlab_wire::sandbox::{DEFAULT_REGION, OPERATOR_ACCESS_KEY_ID, OPERATOR_SECRET_ACCESS_KEY};

use crate::console::Console;

/// A user's directories of their own (config, cache, state), removed when dropped.
struct Home(PathBuf);

impl Home {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hybridlab-aws-target-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("config")).expect("a home");
        Self(dir)
    }

    fn records(&self, key: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.join("state/stacks").join(key))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| entry.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The variables that make `hybridlab --aws` reach the sandbox at `edge` as AWS, with the
/// directories of `home`, and nothing of the developer's AWS configuration.
fn aws_env(home: &Path, edge: &str) -> Vec<(String, String)> {
    let path = |name: &str| home.join(name).display().to_string();
    [
        ("XDG_CONFIG_HOME", path("config")),
        ("HYBRIDLAB_CACHE_DIR", path("cache")),
        ("HYBRIDLAB_STATE_DIR", path("state")),
        ("AWS_ENDPOINT_URL", edge.to_owned()),
        ("AWS_ACCESS_KEY_ID", OPERATOR_ACCESS_KEY_ID.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            OPERATOR_SECRET_ACCESS_KEY.to_owned(),
        ),
        ("AWS_REGION", DEFAULT_REGION.to_owned()),
        (
            "AWS_CONFIG_FILE",
            "/nonexistent/hybridlab-test/config".to_owned(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/hybridlab-test/credentials".to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// `hybridlab ARGS` as [`aws_env`] sets it up, with no terminal.
fn run(home: &Path, edge: &str, args: &[&str]) -> Output {
    let mut command = Command::new(build_binary("hybridlab-console", "hybridlab"));
    command
        .args(args)
        .env_remove("HYBRIDLAB_TARGET")
        .env_remove("HYBRIDLAB_ENDPOINT")
        .stdin(Stdio::null());
    without_aws_credentials(&mut command);
    command.envs(aws_env(home, edge));
    command.output().expect("hybridlab runs")
}

/// [`run`] on a blocking thread, so the test's runtime keeps serving the sandbox.
async fn run_async(home: &Path, edge: &str, args: &[&str]) -> Output {
    let (home, edge) = (home.to_owned(), edge.to_owned());
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&home, &edge, &args)
    })
    .await
    .expect("the CLI thread does not panic")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The account the operator's keys belong to, as STS says.
async fn account(edge: &str) -> String {
    let config = hybridlab_sandbox::sdk_config(edge, DEFAULT_REGION).await;
    aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .account()
        .expect("an account")
        .to_owned()
}

fn write_record(dir: &Path, id: &StackId) {
    std::fs::create_dir_all(dir).expect("a records directory");
    let state = StackState::new(
        id.clone(),
        "AWS us-east-1".into(),
        StackSettings::new(DEFAULT_REGION),
    );
    std::fs::write(
        dir.join(format!("{id}.json")),
        serde_json::to_vec(&state).expect("JSON"),
    )
    .expect("a record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_endpoint_url_redirects_aws_and_says_so_and_records_move_to_the_state_directory_by_account()
 {
    let edge = edge_clients().await.endpoint;
    let account = account(&edge).await;
    let home = Home::new();
    // What an earlier release left: a record in the cache, under the profile's name.
    let old = StackId::generate();
    write_record(
        &home
            .0
            .join("cache/stacks")
            .join(format!("aws-default-{DEFAULT_REGION}")),
        &old,
    );

    let status = run_async(&home.0, &edge, &["status", "--aws", "--json"]).await;
    let said = stderr(&status);
    assert!(
        said.contains("moved 1 stack record directory from")
            && said.contains("where a cache cleaner could delete it"),
        "{said}"
    );
    let key = format!("aws-{account}-{DEFAULT_REGION}");
    assert!(
        said.contains("are now kept per account") && said.contains(&key),
        "{said}"
    );
    assert!(
        !home.0.join("cache/stacks").exists(),
        "the cache holds no state"
    );
    assert_eq!(home.records(&key), [format!("{old}.json")]);
    assert_eq!(
        home.records(&format!("aws-default-{DEFAULT_REGION}")),
        Vec::<String>::new()
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&status.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let described = lines
        .iter()
        .find_map(|line| line["target"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("a target in {lines:?}; stderr: {said}"));
    assert_eq!(
        described,
        format!("AWS {DEFAULT_REGION} via AWS_ENDPOINT_URL={edge}"),
        "an --aws run whose calls go elsewhere says so"
    );

    // Once done, nothing moves and nothing is said.
    let again = run_async(&home.0, &edge, &["status", "--aws", "--json"]).await;
    let said = stderr(&again);
    assert!(
        !said.contains("moved") && !said.contains("now kept"),
        "{said}"
    );

    // Without --aws, AWS_ENDPOINT_URL is the local target, as HYBRIDLAB_ENDPOINT would be.
    let config = run_async(&home.0, &edge, &["config", "--json"]).await;
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).expect("JSON");
    assert_eq!(config["settings"]["target"]["value"], "sandbox");
    assert_eq!(config["settings"]["endpoint"]["value"], edge.as_str());
    assert_eq!(
        config["settings"]["endpoint"]["source"],
        serde_json::json!({"kind": "env", "name": "AWS_ENDPOINT_URL"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_aws_shows_the_plan_and_its_cost_and_n_cancels_creating_nothing() {
    let clients = edge_clients().await;
    let home = Home::new();
    let id = StackId::generate().to_string();

    // No terminal to ask on: --yes is required, and nothing is created.
    let refused = run_async(&home.0, &clients.endpoint, &["up", "--aws", "--stack", &id]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let said = stderr(&refused);
    assert!(
        said.contains(&format!("refusing to create stack {id} on AWS"))
            && said.contains("pass --yes"),
        "{said}"
    );

    // In a terminal: the plan, the cost, the question; `n` cancels.
    let envs = aws_env(&home.0, &clients.endpoint);
    let screen = {
        let (home_dir, id) = (home.0.clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            let envs: Vec<(&str, &str)> = envs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let mut up = Console::start(&home_dir, &["up", "--aws", "--stack", &id], &envs);
            // The plan is longer than the screen: its end, the cost and the question, show.
            let asked = up.wait_for(&["per hour", "[y/N]"], Duration::from_secs(60));
            up.type_keys("n\r");
            let code = up.wait_exit(Duration::from_secs(30));
            (
                asked,
                up.wait_for(&["cancelled: nothing was created"], Duration::from_secs(5)),
                code,
            )
        })
        .await
        .expect("the terminal session ran")
    };
    let (asked, answered, code) = screen;
    assert!(
        asked.contains(&format!("hybridlab-proxy-{id}")),
        "the plan names the stack's resources:\n{asked}"
    );
    assert!(
        asked.contains(&format!("on AWS {DEFAULT_REGION} via AWS_ENDPOINT_URL=")),
        "{asked}"
    );
    assert!(asked.contains("t3.micro on demand"), "{asked}");
    assert!(asked.contains("terminates itself after 2h00m"), "{asked}");
    assert!(answered.contains("cancelled"), "{answered}");
    assert_eq!(code, 1, "a cancelled up is not a success");
    assert_eq!(leftovers(&clients, &id).await, Vec::<String>::new());
    assert!(
        !home.0.join("state/stacks").exists()
            || std::fs::read_dir(home.0.join("state/stacks"))
                .expect("readable")
                .flatten()
                .all(|dir| !dir.path().join(format!("{id}.json")).exists()),
        "no record of a stack that was not made"
    );
}
