//! The whole stack on the sandbox: `hybridlab up` creates it (and creates nothing twice), an
//! invocation runs end to end through it, `status` sees it, `down` removes every resource and
//! is harmless when repeated; an `up` killed after any step is still torn down completely; a
//! bucket with many object versions is emptied and deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::eventually;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use futures::StreamExt as _;
use hybridlab_provision::stack::progress::silent;
use hybridlab_provision::stack::{
    Scope, StackClients, StackError, StackId, StackNames, StackSettings, Step, StepEvent,
    StepStatus, Target, UpOptions, down, up,
};
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::sandbox::{EdgeClients, edge_clients};
use hybridlab_tests::stack::{hybridlab_async as run_cli, json_lines, leftovers};
use serde_json::{Value, json};

pub(crate) fn result_of(lines: &[Value]) -> &Value {
    lines
        .iter()
        .rev()
        .find(|line| line["type"] == "result")
        .expect("a result line")
}

pub(crate) fn step_events<'a>(lines: &'a [Value], status: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|line| line["type"] == "step" && line["event"]["status"] == status)
        .filter_map(|line| line["event"]["step"].as_str())
        .collect()
}

/// `hybridlab down --yes` of stack `id` succeeds and leaves nothing of it (looked up with
/// `clients`).
pub(crate) async fn down_leaves_nothing(endpoint: &str, clients: &EdgeClients, id: &str) {
    let down = run_cli(endpoint, &["down", "--json", "--stack", id, "--yes"], &[]).await;
    assert!(
        down.status.success(),
        "down: {}{}",
        String::from_utf8_lossy(&down.stderr),
        String::from_utf8_lossy(&down.stdout)
    );
    assert_eq!(leftovers(clients, id).await, Vec::<String>::new());
}

/// Invokes the stack's function with a JPEG served on loopback and checks the image and its
/// row landed, and that both log groups got lines.
pub(crate) async fn invoke_end_to_end(clients: &EdgeClients, names: &StackNames) {
    let host = ImageHost::start().await;
    let url = host.add("stack.jpg", fixtures::jpeg(1600, 1000), "image/jpeg");
    let answer = clients
        .lambda
        .invoke()
        .function_name(&names.function)
        .log_type(LogType::Tail)
        .payload(Blob::new(json!({"image_url": url}).to_string()))
        .send()
        .await
        .expect("the sandbox invokes the function");
    assert_eq!(answer.status_code(), 200);
    assert_eq!(answer.function_error(), None);
    let proxy: Value =
        serde_json::from_slice(answer.payload().expect("a payload").as_ref()).expect("JSON");
    assert_eq!(proxy["statusCode"], 200, "{proxy}");
    let body: Value =
        serde_json::from_str(proxy["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(body["bucket"], names.images_bucket.as_str());
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(1600), Some(1000))
    );
    let image_id = body["image_id"].as_str().expect("an image id");
    let keys = body["keys"].as_object().expect("keys");
    assert_eq!(keys.len(), 4, "original and three variants: {keys:?}");
    for key in keys.values() {
        clients
            .s3
            .head_object()
            .bucket(&names.images_bucket)
            .key(key.as_str().expect("a key"))
            .send()
            .await
            .unwrap_or_else(|err| panic!("{key} is stored: {err:?}"));
    }
    let row = clients
        .dynamodb
        .get_item()
        .table_name(&names.table)
        .key("image_id", AttributeValue::S(image_id.to_owned()))
        .send()
        .await
        .expect("GetItem");
    let row = row.item().expect("the row exists");
    assert_eq!(
        row.get("status")
            .and_then(|s| s.as_s().ok())
            .map(String::as_str),
        Some("COMPLETED")
    );

    let report = eventually(Duration::from_secs(15), || async {
        let lines = clients.log_messages(&names.function_log_group).await;
        lines
            .into_iter()
            .find(|line| line.starts_with("REPORT RequestId"))
    })
    .await;
    assert!(
        report.is_some(),
        "a REPORT line in {}",
        names.function_log_group
    );
    let server_line = eventually(Duration::from_secs(15), || async {
        let lines = clients.log_messages(&names.server_log_group).await;
        lines.into_iter().find(|line| line.contains(image_id))
    })
    .await;
    assert!(
        server_line.is_some(),
        "the server logged the image in {}",
        names.server_log_group
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_comes_up_once_serves_the_lab_and_goes_down_leaving_nothing() {
    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();

    // Named, because the other tests' stacks live on the same sandbox.
    let id = StackId::generate().to_string();
    let first = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    assert!(
        first.status.success(),
        "up: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let lines = json_lines(&first);
    let result = result_of(&lines);
    assert_eq!(result["ok"], true);
    assert_eq!(result["report"]["stack"], id.as_str());
    let names = StackNames::new(&StackId::parse(&id).expect("a valid id"));
    let finished: Vec<&str> =
        [step_events(&lines, "done"), step_events(&lines, "skipped")].concat();
    for step in Step::of_stack(false, false) {
        assert!(finished.contains(&step.name()), "{} finished", step.name());
    }
    assert!(
        !finished
            .iter()
            .any(|name| Step::parse(name).is_some_and(Step::is_pipeline)),
        "a stack without the pipeline runs none of its steps"
    );
    assert!(step_events(&lines, "failed").is_empty());

    // Again: every resource is found, none created.
    let again = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    assert!(
        again.status.success(),
        "second up: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let lines = json_lines(&again);
    let changed = step_events(&lines, "done");
    let lookups = [Step::Build, Step::Image, Step::ServerHealth].map(Step::name);
    for step in &changed {
        assert!(lookups.contains(step), "the second up changed {step}");
    }
    assert_eq!(
        step_events(&lines, "skipped").len(),
        Step::of_stack(false, false).len() - lookups.len()
    );
    let instances: Vec<String> = leftovers(&clients, &id)
        .await
        .into_iter()
        .filter(|r| r.starts_with("instance i-"))
        .collect();
    assert_eq!(instances.len(), 1, "one server instance: {instances:?}");

    invoke_end_to_end(&clients, &names).await;

    let status = run_cli(&endpoint, &["status", "--json", "--stack", &id], &[]).await;
    assert_eq!(
        status.status.code(),
        Some(0),
        "status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let stack = &status["stacks"][0];
    assert_eq!(stack["server"]["healthy"], true);
    let resources = stack["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 11);
    assert!(
        resources.iter().all(|r| r["state"] != "missing"),
        "{resources:?}"
    );
    // Every resource but the security group (EC2 keeps no creation time for one) has an
    // age, and the stack was made within this test.
    for resource in resources {
        let age = resource["age_s"].as_u64();
        if resource["kind"] == "security-group" {
            assert_eq!(age, None, "{resource}");
        } else {
            assert!(age.is_some_and(|s| s < 3600), "{resource}");
        }
    }
    assert!(
        stack["cost"]["per_hour_usd"]
            .as_f64()
            .is_some_and(|c| c > 0.0)
    );

    let gone = run_cli(&endpoint, &["down", "--json", "--stack", &id], &[]).await;
    assert_eq!(
        gone.status.code(),
        Some(0),
        "down: {}",
        String::from_utf8_lossy(&gone.stderr)
    );
    let lines = json_lines(&gone);
    let report = &result_of(&lines)["report"];
    assert_eq!(report["remaining"], json!([]));
    assert_eq!(report["deleted"].as_array().map(Vec::len), Some(11));
    assert_eq!(leftovers(&clients, &id).await, Vec::<String>::new());

    let again = run_cli(&endpoint, &["down", "--json", "--stack", &id], &[]).await;
    assert_eq!(again.status.code(), Some(0));
    let lines = json_lines(&again);
    assert_eq!(result_of(&lines)["report"]["deleted"], json!([]));

    let status = run_cli(&endpoint, &["status", "--stack", &id], &[]).await;
    assert_eq!(status.status.code(), Some(3), "no stack: exit 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_touches_nothing_and_an_injected_fault_leaves_a_stack_down_can_remove() {
    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();
    let id = StackId::generate().to_string();

    let plan = run_cli(
        &endpoint,
        &["up", "--dry-run", "--json", "--stack", &id],
        &[],
    )
    .await;
    assert!(plan.status.success());
    let plan: Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(
        plan["plan"].as_array().map(Vec::len),
        Some(Step::of_stack(false, false).len())
    );
    assert_eq!(leftovers(&clients, &id).await, Vec::<String>::new());

    let broken = run_cli(
        &endpoint,
        &["up", "--stack", &id],
        &[("HYBRIDLAB_FAIL_AFTER_STEP", "table")],
    )
    .await;
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("HYBRIDLAB_FAIL_AFTER_STEP"), "{stderr}");
    assert!(
        stderr.contains(&format!("hybridlab down --stack {id}")),
        "{stderr}"
    );
    assert!(
        leftovers(&clients, &id)
            .await
            .iter()
            .any(|r| r.starts_with("table"))
    );
    let steps = String::from_utf8_lossy(&broken.stdout);
    assert!(
        steps.contains("Bringing up stack") && steps.contains(" ok table"),
        "the steps as they happen:\n{steps}"
    );
    // --quiet: the error, and nothing of the steps or the preamble.
    let quiet = run_cli(
        &endpoint,
        &["up", "--quiet", "--stack", &id],
        &[("HYBRIDLAB_FAIL_AFTER_STEP", "table")],
    )
    .await;
    assert!(!quiet.status.success());
    assert_eq!(
        String::from_utf8_lossy(&quiet.stdout),
        "",
        "--quiet prints no steps"
    );
    assert!(String::from_utf8_lossy(&quiet.stderr).contains("HYBRIDLAB_FAIL_AFTER_STEP"));

    let unknown = run_cli(
        &endpoint,
        &["up", "--stack", &id],
        &[("HYBRIDLAB_FAIL_AFTER_STEP", "nope")],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("is not a step"));

    let gone = run_cli(&endpoint, &["down", "--stack", &id], &[]).await;
    assert_eq!(
        gone.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gone.stdout)
    );
    assert_eq!(leftovers(&clients, &id).await, Vec::<String>::new());
}

async fn stack_clients(clients: &EdgeClients) -> StackClients {
    StackClients::connect(&Target::Sandbox {
        endpoint: clients.endpoint.clone(),
    })
    .await
    .expect("clients for the sandbox")
}

/// A stack with the pipeline, and with the jobs when a jobs step is to fail, so every step
/// can be the one that fails.
fn options(id: &StackId, fail_after: Step) -> UpOptions {
    UpOptions {
        stack: id.clone(),
        settings: StackSettings {
            pipeline: true,
            jobs: fail_after.is_jobs(),
            ..StackSettings::new("us-east-1")
        },
        artifacts: hybridlab_tests::sandbox::lab_programs(),
        fail_after: Some(fail_after),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_up_stopped_after_any_step_is_still_removed_completely() {
    let clients = edge_clients().await;
    let stack_clients = stack_clients(&clients).await;
    let outcomes = futures::stream::iter(Step::ALL)
        .map(|step| {
            let clients = &clients;
            let stack_clients = &stack_clients;
            async move {
                let id = StackId::generate();
                let err = up(stack_clients, options(&id, step), silent())
                    .await
                    .expect_err("the injected fault stops up");
                assert!(
                    matches!(err, StackError::FaultInjected(s) if s == step),
                    "{step:?}: {err}"
                );
                let before = leftovers(clients, id.as_str()).await;
                if step != Step::Build {
                    assert!(
                        !before.is_empty(),
                        "{step:?}: up created something before stopping"
                    );
                }
                // The jobs' steps run beside the server's, which may not have launched yet.
                if step >= Step::Instance && !step.is_jobs() {
                    assert!(
                        before.iter().any(|r| r.starts_with("instance i-")),
                        "{step:?}: {before:?}"
                    );
                }
                let report = down(stack_clients, &Scope::Stack(id.clone()), silent())
                    .await
                    .unwrap_or_else(|err| panic!("{step:?}: down fails: {err}"));
                assert!(
                    report.remaining.is_empty(),
                    "{step:?}: the sweep found {:?}",
                    report.remaining
                );
                assert_eq!(
                    report.deleted.len(),
                    before.len(),
                    "{step:?}: deleted {:?}, found {before:?}",
                    report.deleted
                );
                let after = leftovers(clients, id.as_str()).await;
                assert!(after.is_empty(), "{step:?}: left behind {after:?}");
                step
            }
        })
        .buffer_unordered(3)
        .collect::<Vec<Step>>()
        .await;
    assert_eq!(outcomes.len(), Step::ALL.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_with_many_object_versions_is_emptied_and_deleted() {
    let clients = edge_clients().await;
    let stack_clients = stack_clients(&clients).await;
    let id = StackId::generate();
    let names = StackNames::new(&id);
    let _ = up(&stack_clients, options(&id, Step::ImagesBucket), silent()).await;

    // 200 keys, five versions each, then a delete marker on each: 1,200 entries, more than
    // one page of ListObjectVersions and one DeleteObjects call.
    futures::stream::iter(0..200)
        .map(|key| {
            let s3 = clients.s3.clone();
            let bucket = names.images_bucket.clone();
            async move {
                for version in 0..5 {
                    s3.put_object()
                        .bucket(&bucket)
                        .key(format!("images/{key}/original"))
                        .body(format!("version {version}").into_bytes().into())
                        .send()
                        .await
                        .expect("PutObject");
                }
                s3.delete_object()
                    .bucket(&bucket)
                    .key(format!("images/{key}/original"))
                    .send()
                    .await
                    .expect("DeleteObject");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let listed = clients
        .s3
        .list_object_versions()
        .bucket(&names.images_bucket)
        .send()
        .await
        .expect("versions");
    assert_eq!(
        listed.versions().len() + listed.delete_markers().len(),
        1000,
        "the first page is full"
    );

    let events: Arc<Mutex<Vec<StepEvent>>> = Arc::default();
    let recorder = {
        let events = events.clone();
        Arc::new(move |event: StepEvent| events.lock().expect("not poisoned").push(event))
    };
    let report = down(&stack_clients, &Scope::Stack(id.clone()), recorder)
        .await
        .expect("down");
    assert!(report.remaining.is_empty(), "{:?}", report.remaining);
    let events = events.lock().expect("not poisoned").clone();
    let emptied = events
        .iter()
        .find(|e| {
            e.step == "delete s3 bucket"
                && e.resource == names.images_bucket
                && e.status == StepStatus::Done
        })
        .expect("the images bucket was deleted");
    assert!(
        emptied.detail.contains("1200 object versions"),
        "{}",
        emptied.detail
    );
    assert_eq!(leftovers(&clients, id.as_str()).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_without_credentials_is_refused_with_what_to_do() {
    let output = tokio::task::spawn_blocking(|| {
        let binary = hybridlab_tests::sandbox::build_binary("hybridlab-console", "hybridlab");
        let mut command = std::process::Command::new(binary);
        command
            .args(["status", "--aws", "--region", "eu-west-1"])
            .env_remove("HYBRIDLAB_ENDPOINT");
        hybridlab_tests::sandbox::without_aws_credentials(&mut command);
        command.output().expect("hybridlab runs")
    })
    .await
    .expect("the CLI thread does not panic");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no usable AWS credentials"), "{stderr}");
    assert!(stderr.contains("aws configure"), "{stderr}");
}
