//! Every function environment and instance on the sandbox signs as a session of its own role,
//! as on AWS: a Lambda environment holds its execution role's temporary credentials in its
//! environment, an instance gets its profile's role from its metadata service (IMDSv2) and
//! the server's SDK finds them there with no access key of its own, and the edge answers STS
//! `GetCallerIdentity` for those keys with the assumed-role identity.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_s3::config::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata as _;
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::sandbox::{EdgeClients, bootstrap_zip, deploy_function, edge_clients};
use serde_json::{Value, json};

use crate::common::{eventually, http, invoke};
use crate::sandbox_ec2::{endpoint_tag, launch_server_with, server_profile, server_store};

const ACCOUNT: &str = "123456789012";
const TOKEN: &str = "principals-token-0123456789abcdef0123456789";

/// An STS client on the edge that signs with the given credentials.
async fn sts_as(
    clients: &EdgeClients,
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
) -> aws_sdk_sts::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&clients.endpoint)
        .credentials_provider(Credentials::new(
            access_key_id,
            secret,
            session_token.map(str::to_owned),
            None,
            "test",
        ))
        .load()
        .await;
    aws_sdk_sts::Client::new(&config)
}

/// `GetCallerIdentity`'s ARN, UserId and Account, or the error code.
async fn caller_identity(sts: &aws_sdk_sts::Client) -> Result<(String, String, String), String> {
    match sts.get_caller_identity().send().await {
        Ok(output) => Ok((
            output.arn().unwrap_or_default().to_owned(),
            output.user_id().unwrap_or_default().to_owned(),
            output.account().unwrap_or_default().to_owned(),
        )),
        Err(err) => Err(err.code().unwrap_or("no code").to_owned()),
    }
}

fn is_temporary_key(key: &str) -> bool {
    key.len() == 20
        && key.starts_with("ASIA")
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// The sandbox's status.
async fn status(clients: &EdgeClients) -> Option<Value> {
    http()
        .get(format!("{}/_hybridlab/health", clients.endpoint))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// How many requests the edge counted for session `arn` (0 if it does not list it).
async fn requests_of(clients: &EdgeClients, arn: &str) -> u64 {
    status(clients)
        .await
        .and_then(|status| {
            status["principals"]
                .as_array()?
                .iter()
                .filter(|principal| principal["arn"] == arn)
                .map(|principal| principal["requests"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_environment_signs_as_a_session_of_its_execution_role() {
    let clients = edge_clients().await;
    let function = deploy_function(
        &clients,
        "whoami",
        bootstrap_zip("hybridlab-tests", "lab-test-function"),
        10,
        &[],
    )
    .await;
    let role_arn = clients
        .lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .expect("the function exists")
        .configuration()
        .and_then(|configuration| configuration.role().map(str::to_owned))
        .expect("an execution role");
    let role_name = role_arn.rsplit('/').next().expect("a name").to_owned();
    let role_id = clients
        .iam
        .get_role()
        .role_name(&role_name)
        .send()
        .await
        .expect("the role exists")
        .role()
        .map(|role| role.role_id().to_owned())
        .expect("a role id");

    // Two calls at once get an environment each; each holds credentials of its own.
    let event = json!({
        "env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
        "sleep_ms": 300,
    });
    let (first, second) = tokio::join!(
        invoke(&clients, &function, event.clone()),
        invoke(&clients, &function, event.clone())
    );
    let credentials = |payload: &Value| -> (String, String, String) {
        let env = &payload["env"];
        let get = |name: &str| {
            env[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} is set: {payload}"))
                .to_owned()
        };
        (
            get("AWS_ACCESS_KEY_ID"),
            get("AWS_SECRET_ACCESS_KEY"),
            get("AWS_SESSION_TOKEN"),
        )
    };
    assert_eq!(first.function_error, None, "{}", first.payload);
    assert_eq!(second.function_error, None, "{}", second.payload);
    assert_ne!(
        first.payload["pid"], second.payload["pid"],
        "two environments"
    );
    let (key, secret, token) = credentials(&first.payload);
    let (other_key, ..) = credentials(&second.payload);
    for issued in [&key, &other_key] {
        assert!(is_temporary_key(issued), "an ASIA key: {issued}");
    }
    assert_ne!(key, other_key, "each environment has its own key");
    assert_ne!(secret, "sandbox");
    assert_ne!(token, "sandbox");

    // A warm environment keeps its credentials.
    let warm = invoke(&clients, &function, event).await;
    let (warm_key, ..) = credentials(&warm.payload);
    let expected = if warm.payload["pid"] == first.payload["pid"] {
        &key
    } else {
        &other_key
    };
    assert_eq!(&warm_key, expected);

    // The edge names the execution role's session, as STS does for a Lambda environment.
    let sts = sts_as(&clients, &key, &secret, Some(&token)).await;
    let (arn, user_id, account) = caller_identity(&sts)
        .await
        .expect("GetCallerIdentity answers for the function's key");
    assert_eq!(
        arn,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{function}")
    );
    assert_eq!(user_id, format!("{role_id}:{function}"));
    assert_eq!(account, ACCOUNT);
    assert!(
        requests_of(&clients, &arn).await >= 1,
        "the edge counted the function's request"
    );

    // The key with another session token, or none, is not that session.
    for wrong in [Some("not-the-session-token"), None] {
        let sts = sts_as(&clients, &key, &secret, wrong).await;
        assert_eq!(
            caller_identity(&sts).await,
            Err("InvalidClientTokenId".to_owned()),
            "session token {wrong:?}"
        );
    }

    // The operator's key is no principal of the sandbox's: moto answers, as before.
    let operator = sts_as(&clients, "sandbox", "sandbox", None).await;
    let (arn, ..) = caller_identity(&operator)
        .await
        .expect("moto answers the operator");
    assert!(!arn.contains("assumed-role"), "{arn}");
}

/// The instance's server process as the sandbox's status reports it.
async fn served_instance(clients: &EdgeClients, instance: &str) -> Option<Value> {
    let status = status(clients).await?;
    status["instances"]
        .as_array()?
        .iter()
        .find(|server| server["instance_id"] == instance)
        .cloned()
}

/// The server's process id and its instance's metadata endpoint, once it runs.
async fn server_process(clients: &EdgeClients, instance: &str) -> Option<(u32, String)> {
    let server = served_instance(clients, instance).await?;
    let pid = server["pid"].as_u64().filter(|pid| *pid != 0)?;
    let endpoint = server["metadata_endpoint"].as_str()?.to_owned();
    Some((u32::try_from(pid).ok()?, endpoint))
}

/// A process's environment variables.
fn environment_of(pid: u32) -> HashMap<String, String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the server's environ");
    environ
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (name, value) = entry.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// `PUT /latest/api/token` with a TTL: the status and the token.
async fn imds_token(endpoint: &str, ttl: &str) -> (u16, String) {
    let response = http()
        .put(format!("{endpoint}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", ttl)
        .send()
        .await
        .expect("the metadata service answers");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

/// `GET` of a metadata path with an optional token: the status and the body.
async fn imds_get(endpoint: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = http().get(format!("{endpoint}/latest/{path}"));
    if let Some(token) = token {
        request = request.header("X-aws-ec2-metadata-token", token);
    }
    let response = request.send().await.expect("the metadata service answers");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn terminate(clients: &EdgeClients, instance: &str) {
    let _ = clients
        .ec2
        .terminate_instances()
        .instance_ids(instance)
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_gets_its_profile_role_from_its_metadata_and_the_server_works_with_it() {
    let clients = edge_clients().await;
    let (store, bucket, table) = server_store(&clients).await;
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
    let endpoint = eventually(Duration::from_secs(60), || {
        endpoint_tag(&clients, &instance)
    })
    .await
    .expect("the sandbox tags the instance with its server's address");
    let (pid, metadata) = eventually(Duration::from_secs(30), || {
        server_process(&clients, &instance)
    })
    .await
    .expect("the status names the server's process and metadata endpoint");
    assert!(metadata.starts_with("http://127.0.0.1:"), "{metadata}");

    // The server has no key of its own: only the way to the instance's metadata.
    let environment = environment_of(pid);
    for variable in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "HOME",
    ] {
        assert!(
            !environment.contains_key(variable),
            "{variable} is not set for the server"
        );
    }
    assert_eq!(
        environment.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
        Some(&metadata)
    );

    // The lab works through it: its S3 puts and DynamoDB writes are signed with the
    // credentials its SDK fetched from the metadata service.
    let images = ImageHost::start().await;
    let url = images.add("photo.jpg", fixtures::jpeg(320, 240), "image/jpeg");
    let session_arn = format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/{}/{instance}",
        profile.name
    );
    let answer: Value = eventually(Duration::from_secs(30), || async {
        let response = http()
            .post(format!("{endpoint}/process-image"))
            .bearer_auth(TOKEN)
            .json(&json!({ "image_url": url }))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    })
    .await
    .expect("the server answers /process-image");
    let image_id = answer["image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the image is processed: {answer}"))
        .to_owned();
    let keys = store.list_keys(&bucket).await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter()
            .all(|key| key.starts_with(&format!("images/{image_id}/")))
    );
    assert_eq!(store.scan_all(&table).await.len(), 1);
    assert!(
        requests_of(&clients, &session_arn).await >= 5,
        "the server's puts and writes were signed by its instance's session"
    );

    // The metadata service as EC2's: a token first, with a TTL within bounds.
    assert_eq!(imds_token(&metadata, "0").await.0, 400);
    assert_eq!(imds_token(&metadata, "21601").await.0, 400);
    let (status, token) = imds_token(&metadata, "60").await;
    assert_eq!(status, 200);
    let listing = "meta-data/iam/security-credentials/";
    assert_eq!(imds_get(&metadata, listing, None).await.0, 401);
    assert_eq!(
        imds_get(&metadata, listing, Some("not-a-token")).await.0,
        401
    );
    assert_eq!(
        imds_get(&metadata, listing, Some(&token)).await,
        (200, profile.name.clone())
    );
    assert_eq!(
        imds_get(&metadata, "meta-data/instance-id", Some(&token)).await,
        (200, instance.clone())
    );
    let (status, document) = imds_get(
        &metadata,
        &format!("{listing}{}", profile.name),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&document).expect("a JSON document");
    assert_eq!(document["Code"], "Success");
    assert_eq!(document["Type"], "AWS-HMAC");
    let key = document["AccessKeyId"].as_str().expect("a key");
    assert!(is_temporary_key(key), "{key}");

    // Those credentials are the instance profile's role, in a session named after the
    // instance.
    let sts = sts_as(
        &clients,
        key,
        document["SecretAccessKey"].as_str().expect("a secret"),
        document["Token"].as_str(),
    )
    .await;
    let identity = caller_identity(&sts).await;
    terminate(&clients, &instance).await;
    let (arn, user_id, account) = identity.expect("GetCallerIdentity answers");
    assert_eq!(arn, session_arn);
    assert_eq!(user_id, format!("{}:{instance}", profile.role_id));
    assert_eq!(account, ACCOUNT);
    assert!(profile.role_arn.ends_with(&format!("/{}", profile.name)));
}

/// As on EC2, nothing else gives an instance credentials: without a profile its user-data
/// cannot fetch the server (`aws s3 cp` finds no credentials), no server ever runs, and the
/// instance's console output says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_a_profile_cannot_fetch_its_server_and_its_console_says_so() {
    let clients = edge_clients().await;
    let (_store, bucket, table) = server_store(&clients).await;
    let (instance, _log_group) =
        launch_server_with(&clients, &bucket, &table, TOKEN, "", None, 7200).await;
    let output = eventually(Duration::from_secs(30), || {
        console_output(&clients, &instance)
    })
    .await
    .expect("the console output of the boot");
    let tag = endpoint_tag(&clients, &instance).await;
    terminate(&clients, &instance).await;
    assert!(
        output.contains("fatal error: Unable to locate credentials"),
        "{output}"
    );
    assert!(
        output.contains("Failed to run module scripts_user"),
        "{output}"
    );
    assert_eq!(tag, None, "no server, so no address");
}

/// The console output `GetConsoleOutput` gives for `instance` once its boot has printed the
/// user-data's end.
pub(crate) async fn console_output(clients: &EdgeClients, instance: &str) -> Option<String> {
    let answer = clients
        .ec2
        .get_console_output()
        .instance_id(instance)
        .send()
        .await
        .ok()?;
    let encoded = answer.output()?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // cloud-init's last line, written whether the script succeeded or not.
    text.contains(" finished at ").then_some(text)
}

/// A bucket's policy counts beside the caller's role, as in one AWS account: its allow lets a
/// role without S3 permissions read, its deny refuses what the role's own policy allows (and
/// the refusal says it was a resource-based policy), and without it the role's own stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_policy_allows_and_denies_beside_the_callers_role() {
    let clients = edge_clients().await;
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    let function = deploy_function(&clients, "bucket-policy", zip, 5, &[]).await;
    let role = clients
        .function_configuration(&function)
        .await
        .role()
        .expect("a role")
        .to_owned();
    let as_role = clients.s3_as_function(&function).await;
    let bucket = hybridlab_tests::aws::unique_name("bucket-policy");
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("a bucket");
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect("an object");
    let read = || async {
        as_role
            .get_object()
            .bucket(&bucket)
            .key("k")
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                (
                    aws_sdk_s3::error::ProvideErrorMetadata::code(&err).map(str::to_owned),
                    aws_sdk_s3::error::ProvideErrorMetadata::message(&err).map(str::to_owned),
                )
            })
    };
    let refused = read().await.expect_err("the role may not read");
    assert_eq!(refused.0.as_deref(), Some("AccessDenied"), "{refused:?}");

    let policy = |effect: &str| {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": effect,
            "Principal": {"AWS": role},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")
        }]})
        .to_string()
    };
    clients
        .s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(policy("Allow"))
        .send()
        .await
        .expect("PutBucketPolicy");
    assert_eq!(read().await, Ok(()), "the bucket's allow is enough");

    // The role's own allow, and the bucket's deny.
    let role_name = role.rsplit('/').next().expect("a role name");
    clients
        .iam
        .put_role_policy()
        .role_name(role_name)
        .policy_name("read")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]})
                .to_string(),
        )
        .send()
        .await
        .expect("PutRolePolicy");
    clients
        .s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(policy("Deny"))
        .send()
        .await
        .expect("PutBucketPolicy");
    let denied = read().await.expect_err("the bucket's deny wins");
    assert_eq!(denied.0.as_deref(), Some("AccessDenied"), "{denied:?}");
    assert!(
        denied
            .1
            .as_deref()
            .is_some_and(|m| m.ends_with("with an explicit deny in a resource-based policy")),
        "{denied:?}"
    );
    clients
        .s3
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .expect("DeleteBucketPolicy");
    assert_eq!(read().await, Ok(()), "the role's own allow stands");
}
