//! The operator's least-privilege policy (`hybridlab iam-policy`) enforced by a sandbox of its
//! own (`--operator-policy`): the whole lab runs with only that policy (up with the pipeline,
//! invoke, bench, an upload to COMPLETED, logs, s3, db, down, nothing left), and without
//! `lambda:InvokeFunction` the invoke step fails with Lambda's `AccessDeniedException`. The
//! job-worker variant runs with the second document beside the first, and not without it.
//!
//! The first sandbox also keeps AWS's waits (short) and a new account's Lambda concurrency of
//! 10: `up` goes through them and says so in its step events, and `bench` counts the
//! throttles as throttles.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::pipeline::upload;
use crate::stack::down_leaves_nothing;

use hybridlab_provision::stack::{StackId, StackNames};
use hybridlab_sandbox::iam::Policy;
use hybridlab_sandbox::timing::Timing;
use hybridlab_sandbox::{Sandbox, SandboxOptions};
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::sandbox::{EdgeClients, build_binary};
use hybridlab_tests::stack::hybridlab_async;
use serde_json::Value;

/// `hybridlab ARGS --endpoint ENDPOINT`.
async fn hybridlab(endpoint: &str, args: &[&str]) -> Output {
    hybridlab_async(endpoint, args, &[]).await
}

fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} with only the operator policy: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
}

/// `hybridlab iam-policy --with pipeline`'s document.
fn operator_policy() -> Value {
    iam_policy(&["--with", "pipeline"])
}

/// `hybridlab iam-policy ARGS --region us-east-1`'s document.
fn iam_policy(args: &[&str]) -> Value {
    let output = Command::new(build_binary("hybridlab-console", "hybridlab"))
        .arg("iam-policy")
        .args(args)
        .args(["--region", "us-east-1"])
        .output()
        .expect("hybridlab runs");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("the policy is JSON")
}

/// `policy` without `action` in any statement (a statement left with no action goes too).
fn without_action(mut policy: Value, action: &str) -> Value {
    let statements = policy["Statement"].as_array_mut().expect("statements");
    let mut found = false;
    for statement in statements.iter_mut() {
        let actions = match &statement["Action"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if actions.iter().any(|a| a == action) {
            found = true;
            statement["Action"] = actions
                .into_iter()
                .filter(|a| a != action)
                .collect::<Vec<_>>()
                .into();
        }
    }
    statements.retain(|statement| {
        statement["Action"]
            .as_array()
            .is_none_or(|actions| !actions.is_empty())
    });
    assert!(found, "the operator policy grants {action}");
    policy
}

/// A sandbox of its own that enforces `policy` for the operator, on a new account (the default
/// preset's waits and a Lambda concurrency of 10: `hybridlab sandbox --new-account`) or not (no
/// waits, an established account's concurrency); and SDK clients straight to its moto, to look
/// at what is left without the policy in the way.
async fn sandbox_with(policy: &Value, dir: &Path, new_account: bool) -> (Sandbox, EdgeClients) {
    sandbox_with_all(std::slice::from_ref(policy), dir, new_account).await
}

/// [`sandbox_with`] the operator's `policies` together (a user's several managed policies).
async fn sandbox_with_all(
    policies: &[Value],
    dir: &Path,
    new_account: bool,
) -> (Sandbox, EdgeClients) {
    let policies = policies
        .iter()
        .enumerate()
        .map(|(n, policy)| {
            Policy::from_json(&format!("operator-{n}"), policy).expect("IAM would take the policy")
        })
        .collect();
    let mut options = SandboxOptions::new(dir.to_owned());
    options.edge_port = 0;
    options.operator_policy = Some(policies);
    if new_account {
        options.timing = Timing::default();
        options.concurrency_limit = hybridlab_sandbox::NEW_ACCOUNT_LAMBDA_CONCURRENCY;
    } else {
        options.timing = Timing::fast();
    }
    let sandbox = Sandbox::start(options, |message| eprintln!("{message}"))
        .await
        .expect("the sandbox starts");
    let moto = EdgeClients::connect(&sandbox.moto_endpoint()).await;
    (sandbox, moto)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hybridlab-operator-{name}-{}", StackId::generate()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_lab_runs_on_a_new_account_with_only_the_operator_policy_and_not_without_its_invoke()
 {
    let dir = temp_dir("lab");
    let policy = operator_policy();
    let (sandbox, moto) = sandbox_with(&policy, &dir.join("sandbox"), true).await;
    let endpoint = sandbox.endpoint().to_owned();
    let id = StackId::generate().to_string();

    let up = hybridlab(
        &endpoint,
        &["up", "--json", "--stack", &id, "--with", "pipeline"],
    )
    .await;
    succeeded(&up, "up --with pipeline");
    // `up` waited for the instance's boot and the functions' Pending, and said so.
    let waits: Vec<Value> = String::from_utf8_lossy(&up.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["type"] == "step" && line["event"]["status"] == "waiting")
        .map(|line| line["event"].clone())
        .collect();
    let waited = |step: &str, words: &str| {
        waits.iter().any(|event| {
            event["step"] == step && event["detail"].as_str().is_some_and(|d| d.contains(words))
        })
    };
    assert!(
        waited("instance", "pending: the instance is booting"),
        "{waits:#?}"
    );
    assert!(waited("function", "Pending"), "{waits:#?}");
    assert!(waited("resizer", "Pending"), "{waits:#?}");
    let status = hybridlab(&endpoint, &["status", "--json", "--stack", &id]).await;
    succeeded(&status, "status");

    let images = ImageHost::start().await;
    let url = images.add("photo.jpg", fixtures::jpeg(800, 600), "image/jpeg");
    let invoked = hybridlab(
        &endpoint,
        &["invoke", "--stack", &id, "--url", &url, "--json"],
    )
    .await;
    succeeded(&invoked, "invoke");
    // Twelve at once against the new account's ten: the rest are throttled, and counted so.
    let run_file = dir.join("run.json");
    let bench = hybridlab(
        &endpoint,
        &[
            "bench",
            "--stack",
            &id,
            "-n",
            "24",
            "-c",
            "12",
            "--url",
            &url,
            "--out",
            run_file.to_str().expect("UTF-8"),
        ],
    )
    .await;
    let run: Value =
        serde_json::from_slice(&std::fs::read(&run_file).expect("bench wrote its run"))
            .expect("JSON");
    let summary = &run["runs"][0]["summary"];
    let throttled = summary["errors"]["throttled"].as_u64().unwrap_or(0);
    let ok = summary["ok"].as_u64().unwrap_or(0);
    assert!(throttled > 0 && ok > 0, "{summary}\n{bench:?}");
    assert_eq!(ok + throttled, 24, "only runs and throttles: {summary}");
    assert_eq!(
        bench.status.code(),
        Some(5),
        "throttles are bench's errors: {bench:?}"
    );

    let photo = dir.join("photo.jpg");
    std::fs::write(&photo, fixtures::jpeg(640, 480)).expect("write");
    let (code, outcomes) = upload(&endpoint, &id, "presigned", &[&photo]).await;
    assert_eq!(
        code,
        Some(0),
        "upload with only the operator policy: {outcomes:?}"
    );
    let outcome = &outcomes[0];
    assert_eq!(outcome["row"]["status"], "COMPLETED", "{outcome}");
    let image_id = outcome["row"]["image_id"]
        .as_str()
        .expect("an image id")
        .to_owned();

    for (args, what) in [
        (
            vec!["logs", "lambda", "--json", "--stack", &id],
            "logs lambda",
        ),
        (vec!["logs", "ec2", "--json", "--stack", &id], "logs ec2"),
        (vec!["s3", "ls", "images/", "--stack", &id], "s3 ls"),
        (
            vec!["db", "get", &image_id, "--json", "--stack", &id],
            "db get",
        ),
        (vec!["db", "scan", "--stack", &id], "db scan"),
    ] {
        succeeded(&hybridlab(&endpoint, &args).await, what);
    }

    down_leaves_nothing(&endpoint, &moto, &id).await;
    drop(images);
    sandbox.stop().await;

    // The same policy without lambda:InvokeFunction: `up` still works, `invoke` is refused
    // with the error AWS sends, and the rest of the lab still goes down.
    let dir2 = temp_dir("noinvoke");
    let (sandbox, moto) = sandbox_with(
        &without_action(policy, "lambda:InvokeFunction"),
        &dir2.join("sandbox"),
        false,
    )
    .await;
    let endpoint = sandbox.endpoint().to_owned();
    let id = StackId::generate().to_string();
    succeeded(
        &hybridlab(&endpoint, &["up", "--json", "--stack", &id]).await,
        "up",
    );
    let refused = hybridlab(
        &endpoint,
        &[
            "invoke",
            "--stack",
            &id,
            "--url",
            "http://127.0.0.1:9/x.jpg",
        ],
    )
    .await;
    assert!(!refused.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        said.contains("AccessDenied")
            && said.contains("lambda:InvokeFunction")
            && said.contains(&names_function(&id)),
        "{said}"
    );
    down_leaves_nothing(&endpoint, &moto, &id).await;
    sandbox.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

fn names_function(id: &str) -> String {
    StackNames::new(&StackId::parse(id).expect("a valid id")).function
}

/// The job-worker variant with the two documents `iam-policy` prints (the first without the
/// pipeline, and `--jobs-document`): `up --with jobs`, a job submitted and followed to its end,
/// listed, its logs read, `status`, and `down` leaving nothing. With the first document alone,
/// `up --with jobs` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_variant_runs_with_the_two_operator_documents_and_not_with_the_first_alone() {
    let dir = temp_dir("jobs");
    let first = iam_policy(&[]);
    let jobs = iam_policy(&["--jobs-document"]);

    let (alone, _) = sandbox_with(&first, &dir.join("alone"), false).await;
    let refused = hybridlab(
        alone.endpoint(),
        &[
            "up",
            "--json",
            "--stack",
            &StackId::generate().to_string(),
            "--with",
            "jobs",
        ],
    )
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(
        said.contains("access denied to iam:CreateRole")
            && said.contains(
                "is not authorized to perform: iam:CreateRole on resource: role hybridlab-submit-"
            ),
        "refused as AWS refuses: {said}"
    );
    drop(alone);

    let (sandbox, moto) = sandbox_with_all(&[first, jobs], &dir.join("both"), false).await;
    let endpoint = sandbox.endpoint().to_owned();
    let id = StackId::generate().to_string();
    let up = hybridlab(
        &endpoint,
        &["up", "--json", "--stack", &id, "--with", "jobs"],
    )
    .await;
    succeeded(&up, "up --with jobs");
    let input = dir.join("notes.txt");
    std::fs::write(&input, "one line\n").expect("write");
    let submitted = hybridlab(
        &endpoint,
        &[
            "job",
            "submit",
            input.to_str().expect("UTF-8"),
            "--text",
            "two",
            "--json",
            "--stack",
            &id,
        ],
    )
    .await;
    succeeded(&submitted, "job submit");
    let job: Value = String::from_utf8_lossy(&submitted.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .next_back()
        .expect("the job");
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let job_id = job["job_id"].as_str().expect("an id");
    for args in [
        vec!["job", "ls", "--json", "--stack", &id],
        vec!["job", "logs", job_id, "--json", "--stack", &id],
        vec!["status", "--json", "--stack", &id],
    ] {
        let output = hybridlab(&endpoint, &args).await;
        succeeded(&output, &args.join(" "));
    }
    mappings_are_deleted_only_with_the_stack_tag(&endpoint, &id).await;
    down_leaves_nothing(&endpoint, &moto, &id).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The jobs document lets the operator delete a mapping only if it carries the stack tag,
/// which the sandbox reads as Lambda does: an untagged mapping of the stack's launcher is
/// refused, the same mapping once tagged (through Lambda's tagging API) is deleted.
async fn mappings_are_deleted_only_with_the_stack_tag(endpoint: &str, id: &str) {
    let operator = EdgeClients::connect(endpoint).await;
    let names = StackNames::new(&StackId::parse(id).expect("valid"));
    let stream = operator
        .dynamodb
        .describe_table()
        .table_name(&names.jobs_table)
        .send()
        .await
        .expect("the jobs table")
        .table
        .and_then(|table| table.latest_stream_arn)
        .expect("its stream");
    let untagged = operator
        .lambda
        .create_event_source_mapping()
        .function_name(&names.launcher)
        .event_source_arn(&stream)
        .starting_position(aws_sdk_lambda::types::EventSourcePosition::Latest)
        .send()
        .await
        .expect("the jobs document lets a launcher's mapping be created");
    let uuid = untagged.uuid().expect("a UUID");
    let arn = untagged.event_source_mapping_arn().expect("an ARN");
    let refused = operator
        .lambda
        .delete_event_source_mapping()
        .uuid(uuid)
        .send()
        .await
        .expect_err("an untagged mapping is not the stack's");
    let said = format!("{}", aws_sdk_lambda::error::DisplayErrorContext(&refused));
    assert!(
        said.contains("AccessDenied") && said.contains("lambda:DeleteEventSourceMapping"),
        "{said}"
    );
    operator
        .lambda
        .tag_resource()
        .resource(arn)
        .tags(hybridlab_wire::tags::STACK_TAG, id)
        .send()
        .await
        .expect("the stack's tag may be put on a mapping");
    operator
        .lambda
        .delete_event_source_mapping()
        .uuid(uuid)
        .send()
        .await
        .expect("a tagged mapping of the stack is deleted");
}
