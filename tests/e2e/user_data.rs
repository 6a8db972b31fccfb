//! The stack's user-data runs as cloud-init runs it on Amazon Linux: its output is the
//! instance's console output, a typo fails it there and in `status`, and `up` replaces an
//! instance whose script failed (cloud-init never runs it again). A stopped and started
//! instance runs what the script enabled, and the TTL timer it set powers the instance off.
//! A job worker's script runs its job once and `shutdown -h now` terminates the instance;
//! its output stays readable.

use std::time::Duration;

use aws_sdk_ec2::types::{
    Filter, HttpTokensState, IamInstanceProfileSpecification, InstanceAttributeName,
    InstanceMetadataOptionsRequest, ResourceType, ShutdownBehavior, TagSpecification,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_provision::stack::StackId;
use hybridlab_tests::sandbox::{EdgeClients, edge_clients};
use hybridlab_tests::stack::{hybridlab_async as run_cli, json_lines};
use hybridlab_wire::launch::USER_DATA_FAILED;
use hybridlab_wire::tags::{ENDPOINT_TAG, STACK_TAG};
use serde_json::Value;

use crate::common::eventually;
use crate::sandbox_ec2::{endpoint_tag, launch_server_with, server_profile, server_store};
use crate::sandbox_principals::console_output;
use crate::stack::{down_leaves_nothing, result_of};

/// The running instances of stack `id`.
async fn stack_instances(clients: &EdgeClients, id: &str) -> Vec<String> {
    clients
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{STACK_TAG}"))
                .values(id)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// Launches a copy of `original` (its image, type, profile, security groups, tags but the
/// sandbox's address, and
/// shutdown behaviour) whose user-data is `edit` of the original's: what a student who edited
/// the script by hand would launch.
async fn relaunch_with(
    clients: &EdgeClients,
    original: &str,
    edit: impl Fn(&str) -> String,
) -> String {
    let described = clients
        .ec2
        .describe_instances()
        .instance_ids(original)
        .send()
        .await
        .expect("DescribeInstances");
    let instance = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .expect("the instance")
        .clone();
    let user_data = clients
        .ec2
        .describe_instance_attribute()
        .instance_id(original)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .expect("the user-data")
        .user_data()
        .and_then(|value| value.value())
        .map(|encoded| STANDARD.decode(encoded).expect("base64"))
        .expect("the stack's instance has user-data");
    let script = String::from_utf8(user_data).expect("a script");
    let edited = edit(&script);
    assert_ne!(edited, script, "the edit changes the script");
    let launched = clients
        .ec2
        .run_instances()
        .image_id(instance.image_id().expect("an image"))
        .set_instance_type(instance.instance_type().cloned())
        .min_count(1)
        .max_count(1)
        .user_data(STANDARD.encode(edited))
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .set_security_group_ids(Some(
            instance
                .security_groups()
                .iter()
                .filter_map(|group| group.group_id().map(str::to_owned))
                .collect(),
        ))
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .arn(
                    instance
                        .iam_instance_profile()
                        .and_then(|profile| profile.arn())
                        .expect("an instance profile"),
                )
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                // Not the address the sandbox tagged the original with.
                .set_tags(Some(
                    instance
                        .tags()
                        .iter()
                        .filter(|tag| tag.key() != Some(ENDPOINT_TAG))
                        .cloned()
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    launched
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("an instance id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_the_user_data_fails_the_instance_visibly_and_up_replaces_it() {
    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();
    let id = StackId::generate().to_string();
    let up = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    assert!(
        up.status.success(),
        "up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let instances = stack_instances(&clients, &id).await;
    let [original] = instances.as_slice() else {
        panic!("one instance: {instances:?}");
    };

    // What the script printed is the console output: the AWS CLI's download line, the
    // CloudWatch agent's, cloud-init's last line; no failure.
    let console = console_output(&clients, original)
        .await
        .expect("the boot's console output");
    assert!(console.contains("download: s3://"), "{console}");
    assert!(
        console.contains("Successfully fetched the config"),
        "{console}"
    );
    assert!(!console.contains(USER_DATA_FAILED), "{console}");

    // The same script with a typo, launched in the stack's place.
    let broken = relaunch_with(&clients, original, |script| {
        script.replacen("chmod 755", "chmdo 755", 1)
    })
    .await;
    clients
        .ec2
        .terminate_instances()
        .instance_ids(original)
        .send()
        .await
        .expect("TerminateInstances");
    let console = eventually(Duration::from_secs(60), || {
        console_output(&clients, &broken)
    })
    .await
    .expect("the broken boot's console output");
    assert!(console.contains("chmdo: command not found"), "{console}");
    assert!(console.contains(USER_DATA_FAILED), "{console}");

    // `status` says so, in JSON and in text, and the stack is incomplete (exit 4).
    let status = run_cli(&endpoint, &["status", "--json", "--stack", &id], &[]).await;
    assert_eq!(status.status.code(), Some(4), "an incomplete stack");
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let stack = &status["stacks"][0];
    assert_eq!(stack["instance"]["id"], broken.as_str());
    assert!(
        stack["instance"]["user_data_error"]
            .as_str()
            .is_some_and(|error| error.contains("chmdo: command not found")),
        "{stack}"
    );
    assert_eq!(stack["server"], Value::Null, "no server, so no address");
    let text = run_cli(&endpoint, &["status", "--stack", &id], &[]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("user-data FAILED, its console output ends:") && text.contains("chmdo"),
        "{text}"
    );

    // cloud-init never runs the script again: `up` replaces the instance, and the stack serves.
    let again = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    assert!(
        again.status.success(),
        "up again: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let lines = json_lines(&again);
    assert_eq!(result_of(&lines)["ok"], true);
    let instance_step = lines
        .iter()
        .find(|line| {
            line["type"] == "step"
                && line["event"]["step"] == "instance"
                && line["event"]["status"] == "done"
        })
        .expect("the instance step is done");
    assert!(
        instance_step["event"]["detail"]
            .as_str()
            .is_some_and(|detail| detail
                .contains(&format!("in place of {broken} (its user-data had failed)"))),
        "{instance_step}"
    );
    let status = run_cli(&endpoint, &["status", "--json", "--stack", &id], &[]).await;
    assert_eq!(status.status.code(), Some(0), "the stack is whole again");

    down_leaves_nothing(&endpoint, &clients, &id).await;
}

const TOKEN: &str = "user-data-token-0123456789abcdef0123456789";

/// Whether the server at `endpoint` answers `/health` (the stand-alone launch has no
/// certificate: plain HTTP).
async fn healthy(endpoint: &str) -> bool {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a client");
    http.get(format!("{endpoint}/health"))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_and_started_instance_runs_its_enabled_units_not_its_user_data_again() {
    let clients = edge_clients().await;
    let (_store, bucket, table) = server_store(&clients).await;
    let profile = server_profile(&clients).await;
    let (instance, _log_group) = launch_server_with(
        &clients,
        &bucket,
        &table,
        TOKEN,
        "",
        Some(&profile.name),
        7200,
    )
    .await;
    let first = eventually(Duration::from_secs(60), || async {
        let endpoint = endpoint_tag(&clients, &instance).await?;
        healthy(&endpoint).await.then_some(endpoint)
    })
    .await
    .expect("the server serves after the first boot");

    clients
        .ec2
        .stop_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("StopInstances");
    let stopped = eventually(Duration::from_secs(20), || async {
        (!healthy(&first).await).then_some(())
    })
    .await;
    assert!(stopped.is_some(), "the server stops with its instance");
    clients
        .ec2
        .start_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("StartInstances");
    let second = eventually(Duration::from_secs(30), || async {
        let endpoint = endpoint_tag(&clients, &instance).await?;
        (endpoint != first && healthy(&endpoint).await).then_some(endpoint)
    })
    .await;
    let console = console_output(&clients, &instance)
        .await
        .unwrap_or_default();
    clients
        .ec2
        .terminate_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("TerminateInstances");
    assert!(
        second.is_some(),
        "the server serves again after a start: {console}"
    );
    assert_eq!(
        console.matches("running 'modules:final'").count(),
        1,
        "the user-data ran once: {console}"
    );
    assert!(
        console.contains("starting the units enabled on the instance's disk"),
        "{console}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_timer_the_user_data_set_powers_the_instance_off_and_it_terminates() {
    let clients = edge_clients().await;
    let (_store, bucket, table) = server_store(&clients).await;
    let profile = server_profile(&clients).await;
    let (instance, _log_group) =
        launch_server_with(&clients, &bucket, &table, TOKEN, "", Some(&profile.name), 3).await;
    let terminated = eventually(Duration::from_secs(60), || async {
        let state = clients.instance_state(&instance).await?;
        matches!(state.as_str(), "shutting-down" | "terminated").then_some(state)
    })
    .await;
    let console = console_output(&clients, &instance)
        .await
        .unwrap_or_default();
    assert!(
        terminated.is_some(),
        "the instance terminated itself: {console}"
    );
    assert!(console.contains("reboot: Power down"), "{console}");
    assert!(!console.contains(USER_DATA_FAILED), "{console}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_workers_script_runs_once_and_its_shutdown_terminates_the_instance() {
    let clients = edge_clients().await;
    let image = clients.amazon_image().await;
    let script =
        "#!/bin/bash\nset -euo pipefail\necho \"job j-1: $(( 6 * 7 ))\"\nshutdown -h now\n";
    let launched = clients
        .ec2
        .run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .user_data(STANDARD.encode(script))
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(hybridlab_wire::tags::ROLE_TAG)
                        .value(hybridlab_wire::tags::ROLE_JOB_WORKER)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let instance = launched
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("an instance")
        .to_owned();
    let terminated = eventually(Duration::from_secs(60), || async {
        let state = clients.instance_state(&instance).await?;
        matches!(state.as_str(), "shutting-down" | "terminated").then_some(state)
    })
    .await;
    // The console output outlives the instance.
    let console = console_output(&clients, &instance)
        .await
        .unwrap_or_default();
    assert!(
        terminated.is_some(),
        "the worker terminated itself: {console}"
    );
    assert!(console.contains("job j-1: 42"), "{console}");
    assert!(console.contains("reboot: Power down"), "{console}");
    assert_eq!(
        console.matches("running 'modules:final'").count(),
        1,
        "{console}"
    );
}
