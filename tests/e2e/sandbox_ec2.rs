//! The sandbox runs an image-server instance as a local process, from the binary and
//! environment file its user-data names in S3, and the whole lab works through it: the proxy
//! function, invoked through the edge port, calls that server, which stores to the sandbox.

use std::time::Duration;

use crate::common::eventually;
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataOptionsRequest, InstanceType,
    ResourceType, ShutdownBehavior, Tag, TagSpecification,
};
use aws_sdk_lambda::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_provision::stack::policy::{ArnContext, server_policy};
use hybridlab_provision::stack::{StackId, StackNames};
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::sandbox::{
    EdgeClients, bootstrap_zip, build_binary, deploy_function, edge_clients,
};
use hybridlab_wire::launch::ServerLaunch;
use hybridlab_wire::tags::{ENDPOINT_TAG, ROLE_IMAGE_SERVER, ROLE_TAG};
use serde_json::{Value, json};

/// moto's S3 and DynamoDB through the edge, with a new bucket and table for an image server:
/// `(store, bucket, table)`.
pub(crate) async fn server_store(
    clients: &EdgeClients,
) -> (hybridlab_tests::aws::Clients, String, String) {
    let store = hybridlab_tests::aws::Clients {
        endpoint: clients.endpoint.clone(),
        s3: clients.s3.clone(),
        dynamodb: clients.dynamodb.clone(),
    };
    let bucket = unique_name("images");
    let table = unique_name("images");
    store.create_bucket(&bucket).await;
    store.create_table(&table).await;
    (store, bucket, table)
}

pub(crate) async fn endpoint_tag(clients: &EdgeClients, instance: &str) -> Option<String> {
    let output = clients
        .ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .ok()?;
    output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .find(|tag| tag.key() == Some(ENDPOINT_TAG))
        .and_then(|tag| tag.value().map(str::to_owned))
}

/// An instance profile and its role, as `up` gives the server.
pub(crate) struct ServerProfile {
    pub name: String,
    pub role_arn: String,
    pub role_id: String,
}

/// Creates a role EC2 may assume and an instance profile holding it (no policy: nothing
/// enforces one yet).
pub(crate) async fn server_profile(clients: &EdgeClients) -> ServerProfile {
    let name = unique_name("server");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = clients
        .iam
        .create_role()
        .role_name(&name)
        .path("/hybridlab/")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("moto creates the role");
    let role = role.role().expect("a role");
    clients
        .iam
        .create_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
        .expect("moto creates the instance profile");
    clients
        .iam
        .add_role_to_instance_profile()
        .instance_profile_name(&name)
        .role_name(&name)
        .send()
        .await
        .expect("the role goes into the profile");
    ServerProfile {
        name,
        role_arn: role.arn().to_owned(),
        role_id: role.role_id().to_owned(),
    }
}

/// Stores the server binary and its environment file (with `extra_env` lines appended), then
/// launches an instance whose user-data names them, with an instance profile of its own as
/// `up` launches it (the server's SDK gets its credentials from the instance's metadata).
/// Returns the instance id and the server's log group.
pub(crate) async fn launch_server(
    clients: &EdgeClients,
    bucket: &str,
    table: &str,
    token: &str,
    extra_env: &str,
) -> (String, String) {
    let profile = server_profile(clients).await;
    launch_server_with(
        clients,
        bucket,
        table,
        token,
        extra_env,
        Some(&profile.name),
        7200,
    )
    .await
}

/// Puts on the role of instance profile `profile` the policy `up` gives the server's role
/// (`provision`'s `server_policy`, with the pipeline's statements), naming this test's
/// artifacts bucket, images bucket, table and log group: the sandbox enforces it.
async fn grant_server_policy(
    clients: &EdgeClients,
    profile: &str,
    artifacts: &str,
    bucket: &str,
    table: &str,
    log_group: &str,
) {
    let role = clients
        .iam
        .get_instance_profile()
        .instance_profile_name(profile)
        .send()
        .await
        .expect("the instance profile exists")
        .instance_profile()
        .and_then(|profile| profile.roles().first())
        .map(|role| role.role_name().to_owned())
        .expect("the profile holds a role");
    let mut names = StackNames::new(&StackId::generate());
    names.artifacts_bucket = artifacts.to_owned();
    names.images_bucket = bucket.to_owned();
    names.table = table.to_owned();
    names.server_log_group = log_group.to_owned();
    let arns = ArnContext {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: hybridlab_sandbox::SANDBOX_ACCOUNT.into(),
    };
    clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name("server")
        .policy_document(server_policy(&names, &arns, true).to_string())
        .send()
        .await
        .expect("IAM takes the server's policy");
}

/// [`launch_server`] with instance profile `profile` (or none) and a TTL of `ttl_seconds`,
/// IMDSv2 required and powering off terminating it, as `up` launches it.
pub(crate) async fn launch_server_with(
    clients: &EdgeClients,
    bucket: &str,
    table: &str,
    token: &str,
    extra_env: &str,
    profile: Option<&str>,
    ttl_seconds: u64,
) -> (String, String) {
    let artifacts = unique_name("artifacts");
    clients
        .s3
        .create_bucket()
        .bucket(&artifacts)
        .send()
        .await
        .expect("artifacts bucket");
    let binary = std::fs::read(build_binary("hybridlab-ec2-server", "hybridlab-ec2-server"))
        .expect("the server binary");
    clients
        .s3
        .put_object()
        .bucket(&artifacts)
        .key("server/hybridlab-ec2-server")
        .body(binary.into())
        .send()
        .await
        .expect("binary stored");
    let env_file = format!(
        "HYBRIDLAB_BUCKET={bucket}\nHYBRIDLAB_TABLE={table}\nHYBRIDLAB_TOKEN={token}\nAWS_REGION=us-east-1\n{extra_env}"
    );
    clients
        .s3
        .put_object()
        .bucket(&artifacts)
        .key("server/server.env")
        .body(env_file.into_bytes().into())
        .send()
        .await
        .expect("env file stored");
    let log_group = format!("/hybridlab/{}/ec2-server", unique_name("stack"));
    // As `up` makes it: the server's role may write to its group, not create it.
    clients
        .logs
        .create_log_group()
        .log_group_name(&log_group)
        .send()
        .await
        .expect("the server's log group is created");
    if let Some(profile) = profile {
        grant_server_policy(clients, profile, &artifacts, bucket, table, &log_group).await;
    }
    let launch = ServerLaunch {
        artifact_bucket: artifacts,
        binary_key: "server/hybridlab-ec2-server".into(),
        env_key: "server/server.env".into(),
        log_group: log_group.clone(),
        region: "us-east-1".into(),
        port: 8080,
        ttl_seconds,
    };
    let image = clients.amazon_image().await;
    let reservation = clients
        .ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .user_data(STANDARD.encode(launch.render()))
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .set_iam_instance_profile(profile.map(|name| {
            IamInstanceProfileSpecification::builder()
                .name(name)
                .build()
        }))
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(
                    Tag::builder()
                        .key(ROLE_TAG)
                        .value(ROLE_IMAGE_SERVER)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("moto runs the instance");
    let instance = reservation
        .instances()
        .first()
        .and_then(|i| i.instance_id().map(str::to_owned))
        .expect("an instance id");
    (instance, log_group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_instance_is_a_local_server_and_the_whole_lab_runs_through_it() {
    let clients = edge_clients().await;
    let (moto_clients, bucket, table) = server_store(&clients).await;
    let token = "sandbox-token-0123456789abcdef0123456789";
    let (instance, log_group) = launch_server(&clients, &bucket, &table, token, "").await;

    let endpoint = eventually(Duration::from_secs(60), || {
        endpoint_tag(&clients, &instance)
    })
    .await
    .expect("the sandbox tags the instance with its server's address");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let health: Value = eventually(Duration::from_secs(30), || async {
        let response = http.get(format!("{endpoint}/health")).send().await.ok()?;
        response.json().await.ok()
    })
    .await
    .expect("the server answers /health");
    assert_eq!(health["bucket"], bucket.as_str());
    assert_eq!(health["table"], table.as_str());

    // The proxy function, deployed to the sandbox, calls that server.
    let images = ImageHost::start().await;
    let url = images.add("photo.jpg", fixtures::jpeg(640, 480), "image/jpeg");
    let function = deploy_function(
        &clients,
        "proxy",
        bootstrap_zip("hybridlab-lambda", "proxy"),
        30,
        &[("EC2_ENDPOINT", &endpoint), ("HYBRIDLAB_TOKEN", token)],
    )
    .await;
    let output = clients
        .lambda
        .invoke()
        .function_name(&function)
        .payload(Blob::new(json!({ "image_url": url }).to_string()))
        .send()
        .await
        .expect("the proxy is invoked");
    assert_eq!(output.function_error(), None);
    let answer: Value =
        serde_json::from_slice(output.payload().expect("payload").as_ref()).expect("JSON");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value =
        serde_json::from_str(answer["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(body["width"], 640);
    assert_eq!(body["lambda"]["cold_start"], true);
    let image_id = body["image_id"].as_str().expect("an id").to_owned();
    let keys = moto_clients.list_keys(&bucket).await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter()
            .all(|key| key.starts_with(&format!("images/{image_id}/")))
    );
    assert_eq!(moto_clients.scan_all(&table).await.len(), 1);

    // The server's output is in its log group, under the instance's stream.
    let logged = eventually(Duration::from_secs(10), || async {
        let messages = clients.log_messages(&log_group).await;
        messages.iter().any(|m| m.contains(&image_id)).then_some(())
    })
    .await;
    assert!(logged.is_some(), "the server's log reaches {log_group}");

    // A crashed server is restarted by the sandbox, and the crash is logged.
    let health_url = format!("{}/_hybridlab/health", clients.endpoint);
    let server_pid = |status: Value| {
        status["instances"]
            .as_array()?
            .iter()
            .find(|i| i["instance_id"] == instance.as_str())
            .and_then(|i| i["pid"].as_u64())
            .filter(|pid| *pid != 0)
    };
    let first_pid = eventually(Duration::from_secs(5), || async {
        server_pid(http.get(&health_url).send().await.ok()?.json().await.ok()?)
    })
    .await
    .expect("the agent reports the server's pid");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first_pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let second_pid = eventually(Duration::from_secs(20), || async {
        let pid = server_pid(http.get(&health_url).send().await.ok()?.json().await.ok()?)?;
        let healthy = http
            .get(format!("{endpoint}/health"))
            .send()
            .await
            .ok()?
            .status()
            .is_success();
        (pid != first_pid && healthy).then_some(pid)
    })
    .await;
    assert!(second_pid.is_some(), "the server is back under a new pid");
    let crash_logged = eventually(Duration::from_secs(10), || async {
        let messages = clients.log_messages(&log_group).await;
        messages
            .iter()
            .any(|m| m.contains("restarting"))
            .then_some(())
    })
    .await;
    assert!(
        crash_logged.is_some(),
        "the crash is in the server's log group"
    );

    // Terminating the instance stops the process.
    clients
        .ec2
        .terminate_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("terminated");
    let stopped = eventually(Duration::from_secs(15), || async {
        http.get(format!("{endpoint}/health"))
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(stopped.is_some(), "the server stops with its instance");
    // ...and its disk goes with it: the sandbox's copy of the server binary is removed.
    let disk = hybridlab_tests::sandbox::state_dir()
        .join("instances")
        .join(&instance);
    let removed = eventually(Duration::from_secs(15), || async {
        (!disk.exists()).then_some(())
    })
    .await;
    assert!(removed.is_some(), "{} is removed", disk.display());
}
