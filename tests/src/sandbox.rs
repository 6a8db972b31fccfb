//! The sandbox for the tests: one per test binary, started on a runtime of its own (each
//! `#[tokio::test]` has a runtime that ends with the test, and the sandbox must outlive them),
//! on an edge port the OS chooses. Also: SDK clients on the edge port, and the lab's binaries
//! built and zipped as Lambda deployment packages.

use std::path::PathBuf;
use std::sync::OnceLock;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use hybridlab_sandbox::timing::Timing;
use hybridlab_sandbox::{Sandbox, SandboxOptions, s3_client, sdk_config};
use hybridlab_wire::package::package_bootstrap;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static SANDBOX: OnceLock<Sandbox> = OnceLock::new();

fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("sandbox")
            .build()
            .expect("a runtime for the sandbox")
    })
}

/// The prefix of the test sandboxes' state directories, followed by the test process's id.
const STATE_DIR_PREFIX: &str = "hybridlab-test-sandbox-";

/// Removes the state directories of test sandboxes whose process has ended. The sandbox is
/// a static that is never dropped, so its directory (moto's log, function code, instance
/// binaries: up to a GB after a full run) outlives the test binary; the next run clears it.
fn remove_dead_sandbox_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(STATE_DIR_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !crate::procfs::alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where this test process's sandbox keeps its state (function code, instances' binaries).
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("{STATE_DIR_PREFIX}{}", std::process::id()))
}

/// The shared sandbox, started on first use.
pub async fn sandbox() -> &'static Sandbox {
    tokio::task::spawn_blocking(|| {
        SANDBOX.get_or_init(|| {
            remove_dead_sandbox_dirs();
            let mut options = SandboxOptions::new(state_dir());
            options.edge_port = 0;
            // The tests that are about AWS's waits start a sandbox of their own that keeps them.
            options.timing = Timing::fast();
            let sandbox = std::thread::spawn(move || {
                runtime().block_on(Sandbox::start(options, |message| eprintln!("{message}")))
            })
            .join()
            .expect("the sandbox thread does not panic")
            .unwrap_or_else(|err| panic!("the sandbox starts: {err}"));
            // As `hybridlab sandbox` does: stacks recorded for this port are an old sandbox's.
            hybridlab_provision::stack::state::forget_gone_sandbox_stacks(sandbox.port());
            sandbox
        })
    })
    .await
    .expect("starting the sandbox does not panic")
}

/// SDK clients on the sandbox's edge port.
#[derive(Debug, Clone)]
pub struct EdgeClients {
    pub endpoint: String,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

/// Clients on the shared sandbox's edge.
pub async fn edge_clients() -> EdgeClients {
    EdgeClients::connect(sandbox().await.endpoint()).await
}

impl EdgeClients {
    /// Clients on `endpoint` (a sandbox's edge, or its moto) with the operator's credentials.
    pub async fn connect(endpoint: &str) -> Self {
        let config = sdk_config(endpoint, "us-east-1").await;
        // Throttling is what some tests count: the SDK must not retry it away.
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                .build(),
        );
        Self {
            s3: s3_client(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            lambda,
            iam: aws_sdk_iam::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            endpoint: endpoint.to_owned(),
        }
    }

    /// The bytes of the object at `key` in `bucket`, read through the edge.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> bytes::Bytes {
        crate::aws::object_bytes(&self.s3, bucket, key).await
    }

    /// The first Amazon image moto lists, for an instance whose image does not matter.
    pub async fn amazon_image(&self) -> String {
        self.ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .expect("moto lists images")
            .images()
            .first()
            .and_then(|image| image.image_id().map(str::to_owned))
            .expect("moto has an Amazon image")
    }

    /// The state EC2 reports for `instance` (`pending`, `running`, `terminated`, ...).
    pub async fn instance_state(&self, instance: &str) -> Option<String> {
        self.ec2
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .ok()?
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()?
            .state()?
            .name()
            .map(|name| name.as_str().to_owned())
    }

    /// Function `function`'s configuration, as Lambda has it.
    pub async fn function_configuration(
        &self,
        function: &str,
    ) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
        self.lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .expect("the function exists")
    }

    /// The name of function `function`'s execution role.
    pub async fn function_role_name(&self, function: &str) -> String {
        self.function_configuration(function)
            .await
            .role()
            .and_then(|arn| arn.rsplit('/').next().map(str::to_owned))
            .expect("a role")
    }

    /// Function `function`'s ARN, as Lambda has it.
    pub async fn function_arn(&self, function: &str) -> String {
        self.function_configuration(function)
            .await
            .function_arn()
            .expect("an ARN")
            .to_owned()
    }

    /// An S3 client that signs as function `function`'s execution role: with the keys its
    /// environment got, which the lab's test function answers when asked (an
    /// `{"env": [...]}` event).
    pub async fn s3_as_function(&self, function: &str) -> aws_sdk_s3::Client {
        let answer = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(Blob::new(
                r#"{"env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]}"#,
            ))
            .send()
            .await
            .expect("the function tells its keys");
        let answer: serde_json::Value =
            serde_json::from_slice(answer.payload().expect("a payload").as_ref()).expect("JSON");
        let key = |name: &str| {
            answer["env"][name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {answer}"))
                .to_owned()
        };
        let credentials = aws_sdk_s3::config::Credentials::new(
            key("AWS_ACCESS_KEY_ID"),
            key("AWS_SECRET_ACCESS_KEY"),
            Some(key("AWS_SESSION_TOKEN")),
            None,
            "function-session",
        );
        s3_client(&hybridlab_sandbox::sdk_config_as(&self.endpoint, "us-east-1", credentials).await)
    }

    /// Every message of a CloudWatch Logs group, oldest first (empty if the group is missing).
    pub async fn log_messages(&self, group: &str) -> Vec<String> {
        let mut messages = Vec::new();
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let Ok(page) = page else { break };
            messages.extend(
                page.events()
                    .iter()
                    .filter_map(|event| event.message().map(str::to_owned)),
            );
        }
        messages
    }
}

/// The directory the workspace's programs were built into, once per test process.
static BUILT: OnceLock<PathBuf> = OnceLock::new();

/// Builds the workspace's programs once and returns the path of `bin` (a binary of
/// `package`), built with the profile and target directory of this test binary.
///
/// One `cargo build --workspace --bins` with the test targets selected too: Cargo then
/// resolves features exactly as `cargo test --workspace` (or `cargo bench`) did, for every
/// member with dev-dependencies on, so the build reuses every library the test build compiled
/// and only links the binaries. A `cargo build -p <package> --bin <bin>` resolves features for
/// that package alone, and so compiled the AWS SDK crates a second time with other features.
pub fn build_binary(package: &str, bin: &str) -> PathBuf {
    let profile_dir = BUILT.get_or_init(build_workspace_binaries);
    let path = profile_dir.join(bin);
    assert!(
        path.exists(),
        "{package}/{bin} was not built into {}",
        profile_dir.display()
    );
    path
}

fn build_workspace_binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    // <target>/<profile>/deps/e2e-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory")
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .expect("a target directory")
        .to_path_buf();
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--quiet", "--workspace", "--bins"])
        .env("CARGO_TARGET_DIR", &target_dir);
    if release {
        // `cargo bench` built the benches in release: select them, not the tests.
        command.args(["--benches", "--release"]);
    } else {
        command.arg("--tests");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "the workspace's programs build");
    profile_dir
}

/// The image server and the functions as `up` deploys them, from the one build of the test
/// binary (see [`build_binary`]), for the tests that bring a stack up in-process.
pub fn lab_programs() -> hybridlab_provision::stack::artifacts::ArtifactSource {
    hybridlab_provision::stack::artifacts::ArtifactSource::Prebuilt {
        server: build_binary("hybridlab-ec2-server", "hybridlab-ec2-server"),
        proxy: build_binary("hybridlab-lambda", "proxy"),
        resizer: Some(build_binary("hybridlab-lambda", "resizer")),
        jobs: Some(hybridlab_provision::stack::artifacts::JobPrograms {
            worker: build_binary("hybridlab-worker", "hybridlab-worker"),
            submit: build_binary("hybridlab-lambda", "submit"),
            launcher: build_binary("hybridlab-lambda", "launcher"),
        }),
    }
}

/// The same programs for a `hybridlab` process that brings a stack up: the variables `up`
/// takes prebuilt programs from instead of building them itself.
pub fn lab_programs_env() -> [(&'static str, PathBuf); 6] {
    [
        (
            "HYBRIDLAB_SERVER_BIN",
            build_binary("hybridlab-ec2-server", "hybridlab-ec2-server"),
        ),
        (
            "HYBRIDLAB_PROXY_BIN",
            build_binary("hybridlab-lambda", "proxy"),
        ),
        (
            "HYBRIDLAB_RESIZER_BIN",
            build_binary("hybridlab-lambda", "resizer"),
        ),
        (
            "HYBRIDLAB_WORKER_BIN",
            build_binary("hybridlab-worker", "hybridlab-worker"),
        ),
        (
            "HYBRIDLAB_SUBMIT_BIN",
            build_binary("hybridlab-lambda", "submit"),
        ),
        (
            "HYBRIDLAB_LAUNCHER_BIN",
            build_binary("hybridlab-lambda", "launcher"),
        ),
    ]
}

/// A deployment package (`bootstrap` at the root) of a workspace binary.
pub fn bootstrap_zip(package: &str, bin: &str) -> Vec<u8> {
    package_bootstrap(&build_binary(package, bin)).expect("the binary zips")
}

/// An execution role for test functions, with what AWS's managed
/// `AWSLambdaBasicExecutionRole` grants (as a console-made role has it) as an inline policy:
/// moto does not load AWS's managed policies. The sandbox enforces IAM, and without
/// `logs:CreateLogStream` and `logs:PutLogEvents` a function's lines never reach CloudWatch.
pub async fn lambda_role(clients: &EdgeClients) -> String {
    let name = crate::aws::unique_name("lambda-role");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = clients
        .iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(policy)
        .send()
        .await
        .expect("moto creates the role");
    let basic_execution = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#;
    clients
        .iam
        .put_role_policy()
        .role_name(&name)
        .policy_name("AWSLambdaBasicExecutionRole")
        .policy_document(basic_execution)
        .send()
        .await
        .expect("IAM takes the policy");
    role.role().map(|r| r.arn().to_owned()).expect("a role ARN")
}

/// Creates a `provided.al2023` function from `zip` and returns its name.
pub async fn deploy_function(
    clients: &EdgeClients,
    prefix: &str,
    zip: Vec<u8>,
    timeout_seconds: i32,
    variables: &[(&str, &str)],
) -> String {
    let name = crate::aws::unique_name(prefix);
    let role = lambda_role(clients).await;
    let environment = Environment::builder()
        .set_variables(Some(
            variables
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
        .build();
    clients
        .lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .architectures(Architecture::X8664)
        .handler("bootstrap")
        .role(role)
        .timeout(timeout_seconds)
        .memory_size(128)
        .environment(environment)
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .expect("the sandbox creates the function");
    name
}

/// What a test gives every `hybridlab` it runs so that the user's own settings cannot choose
/// its target: an empty directory as `XDG_CONFIG_HOME` (no config file there), to go with
/// removing [`USER_TARGET_VARS`]. A developer's `target = "aws"` must never send a test to AWS.
pub fn without_user_config() -> (&'static str, std::path::PathBuf) {
    let dir = std::env::temp_dir().join("hybridlab-tests-no-config");
    let _ = std::fs::create_dir_all(&dir);
    ("XDG_CONFIG_HOME", dir)
}

/// Leaves `command` no AWS credentials or configuration to find: no files, no environment,
/// and the instance metadata service not asked (it would be a network call).
pub fn without_aws_credentials(command: &mut std::process::Command) {
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/hybridlab-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/hybridlab-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        command.env_remove(name);
    }
}

/// The environment variables that choose a target, removed from a test's `hybridlab`.
pub const USER_TARGET_VARS: [&str; 2] = ["HYBRIDLAB_TARGET", "HYBRIDLAB_ENDPOINT"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_directories_of_ended_test_processes_are_removed() {
        let temp = std::env::temp_dir();
        // No process has this id (Linux pids stop at 2^22).
        let dead = temp.join(format!("{STATE_DIR_PREFIX}99999999"));
        let own = temp.join(format!("{STATE_DIR_PREFIX}{}", std::process::id()));
        let other = temp.join(format!("{STATE_DIR_PREFIX}not-a-pid"));
        for dir in [&dead, &own, &other] {
            std::fs::create_dir_all(dir.join("instances")).expect("a directory");
        }
        remove_dead_sandbox_dirs();
        assert!(!dead.exists(), "an ended process's directory is removed");
        assert!(own.exists(), "this process's directory stays");
        assert!(other.exists(), "a name without a pid is not ours to remove");
        let _ = std::fs::remove_dir_all(&own);
        let _ = std::fs::remove_dir_all(&other);
    }
}
