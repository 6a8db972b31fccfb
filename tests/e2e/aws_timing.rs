//! AWS's waits and rates, kept by a sandbox of its own: a new role is refused by Lambda and a
//! new instance profile by EC2 until they propagate, with AWS's errors; a new function is
//! `Pending` (and refuses invocations) and an updated one `InProgress` (and refuses the next
//! update); a change to a role's permissions applies to its sessions once it has propagated;
//! an instance is `pending` while it boots; a deleted bucket's name is not free at once;
//! Lambda's control plane throttles a burst beyond 15 requests. The whole lab through
//! these waits, on a new account's concurrency, is in `operator_policy`.

use std::time::{Duration, Instant};

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, FunctionCode, InvocationType, LastUpdateStatus, Runtime, State,
};
use hybridlab_sandbox::timing::Timing;
use hybridlab_sandbox::{Sandbox, SandboxOptions};
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::sandbox::{EdgeClients, bootstrap_zip, lambda_role};

use crate::common::eventually;

/// Each of AWS's waits, short enough for the suite.
pub const SHORT: Timing = Timing {
    iam_propagation: Duration::from_secs(3),
    instance_boot: Duration::from_secs(3),
    function_create: Duration::from_secs(1),
    function_update: Duration::from_secs(1),
    bucket_name_reuse: Duration::from_secs(3),
    throttling: true,
};

/// A sandbox of its own with `timing`, and clients on its edge (Lambda's without retries:
/// what the service answers is what is checked; the other errors checked are not retried).
async fn sandbox_with(timing: Timing, name: &str) -> (Sandbox, EdgeClients) {
    let dir = std::env::temp_dir().join(format!("hybridlab-timing-{name}-{}", unique_name("t")));
    let mut options = SandboxOptions::new(dir);
    options.edge_port = 0;
    options.timing = timing;
    let sandbox = Sandbox::start(options, |message| eprintln!("{message}"))
        .await
        .expect("the sandbox starts");
    let clients = EdgeClients::connect(sandbox.endpoint()).await;
    (sandbox, clients)
}

/// `CreateFunction` for `name` with `role`, as `up` sends it.
async fn create_function(
    clients: &EdgeClients,
    name: &str,
    role: &str,
    zip: &[u8],
) -> Result<
    aws_sdk_lambda::operation::create_function::CreateFunctionOutput,
    aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::create_function::CreateFunctionError,
    >,
> {
    clients
        .lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .architectures(Architecture::X8664)
        .handler("bootstrap")
        .role(role)
        .timeout(10)
        .memory_size(128)
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_refuses_a_new_role_a_pending_function_and_an_update_in_progress_and_permissions_change_late()
 {
    let (sandbox, clients) = sandbox_with(SHORT, "lambda").await;
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    let name = unique_name("timed");

    // A role created a moment ago: Lambda cannot assume it yet.
    let role = lambda_role(&clients).await;
    let created_role_at = Instant::now();
    let refused = create_function(&clients, &name, &role, &zip)
        .await
        .expect_err("a new role is refused");
    assert_eq!(
        refused.code(),
        Some("InvalidParameterValueException"),
        "{refused:?}"
    );
    assert_eq!(
        refused.message(),
        Some("The role defined for the function cannot be assumed by Lambda.")
    );
    // Once it has propagated, the same call goes through and the function is Pending.
    tokio::time::sleep(
        (created_role_at + SHORT.iam_propagation).saturating_duration_since(Instant::now()),
    )
    .await;
    let created = create_function(&clients, &name, &role, &zip)
        .await
        .expect("the role has propagated");
    assert_eq!(created.state(), Some(&State::Pending));
    assert_eq!(
        created.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );

    // A Pending function refuses invocations, with AWS's conflict.
    let pending = clients
        .lambda
        .invoke()
        .function_name(&name)
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .expect_err("a Pending function is not invoked");
    assert_eq!(
        pending.code(),
        Some("ResourceConflictException"),
        "{pending:?}"
    );
    assert!(
        pending
            .message()
            .is_some_and(|m| m.ends_with("in the following state: Pending")),
        "{pending:?}"
    );
    let configuration = clients
        .lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .expect("GetFunction");
    let configuration = configuration.configuration().expect("a configuration");
    assert_eq!(configuration.state(), Some(&State::Pending));
    assert_eq!(
        configuration.state_reason_code().map(|c| c.as_str()),
        Some("Creating")
    );

    // Active after its time, and then invoked.
    let active = eventually(Duration::from_secs(10), || async {
        let configuration = clients
            .lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
            .ok()?;
        (configuration.state() == Some(&State::Active)
            && configuration.last_update_status() == Some(&LastUpdateStatus::Successful))
        .then_some(())
    })
    .await;
    assert!(active.is_some(), "the function became Active");
    let invoked = clients
        .lambda
        .invoke()
        .function_name(&name)
        .payload(Blob::new(r#"{"echo": 1}"#))
        .send()
        .await
        .expect("an Active function is invoked");
    assert_eq!(invoked.status_code(), 200);

    // An update is InProgress for a while: a second update is refused, invocations go on.
    let updated = clients
        .lambda
        .update_function_configuration()
        .function_name(&name)
        .memory_size(256)
        .send()
        .await
        .expect("the first update");
    assert_eq!(
        updated.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    let second = clients
        .lambda
        .update_function_configuration()
        .function_name(&name)
        .memory_size(512)
        .send()
        .await
        .expect_err("an update while one is in progress");
    assert_eq!(
        second.code(),
        Some("ResourceConflictException"),
        "{second:?}"
    );
    assert!(
        second
            .message()
            .is_some_and(|m| m.contains("An update is in progress for resource: arn:aws:lambda:")),
        "{second:?}"
    );
    let during = clients
        .lambda
        .invoke()
        .function_name(&name)
        .payload(Blob::new(r#"{"echo": 2}"#))
        .send()
        .await
        .expect("invocations go on during an update");
    assert_eq!(during.status_code(), 200);

    // A burst beyond the control plane's 15 requests per second is throttled, as AWS's is.
    let burst = futures::future::join_all((0..30).map(|_| {
        clients
            .lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
    }))
    .await;
    let throttled = burst
        .iter()
        .filter(|answer| {
            answer
                .as_ref()
                .err()
                .is_some_and(|err| err.code() == Some("TooManyRequestsException"))
        })
        .count();
    let answered = burst.iter().filter(|answer| answer.is_ok()).count();
    assert!(
        throttled > 0 && answered >= 1,
        "{throttled} throttled, {answered} answered"
    );
    assert_eq!(throttled + answered, 30, "only answers and throttles");

    // A change to the role's permissions applies once it has propagated: the function's own
    // session (its environment's keys) keeps what it had until then.
    let as_role = clients.s3_as_function(&name).await;
    let bucket = unique_name("propagation");
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("a bucket");
    let lists = || async {
        as_role
            .list_objects_v2()
            .bucket(&bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| aws_sdk_s3::error::ProvideErrorMetadata::code(&err).map(str::to_owned))
    };
    assert_eq!(
        lists().await,
        Err(Some("AccessDenied".into())),
        "no permission yet"
    );
    let role_name = role.rsplit('/').next().expect("a role name");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::{bucket}")}]
    });
    clients
        .iam
        .put_role_policy()
        .role_name(role_name)
        .policy_name("list")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("PutRolePolicy");
    assert_eq!(
        lists().await,
        Err(Some("AccessDenied".into())),
        "the grant has not propagated yet"
    );
    let granted = eventually(Duration::from_secs(10), || async { lists().await.ok() }).await;
    assert!(granted.is_some(), "the grant applies once propagated");
    clients
        .iam
        .delete_role_policy()
        .role_name(role_name)
        .policy_name("list")
        .send()
        .await
        .expect("DeleteRolePolicy");
    assert_eq!(
        lists().await,
        Ok(()),
        "the revocation has not propagated yet"
    );
    let revoked = eventually(Duration::from_secs(10), || async { lists().await.err() }).await;
    assert_eq!(
        revoked,
        Some(Some("AccessDenied".into())),
        "the revocation applies once propagated"
    );
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_refuses_a_new_instance_profile_an_instance_boots_and_a_bucket_name_is_reused_late() {
    let (sandbox, clients) = sandbox_with(SHORT, "ec2").await;
    let profile = unique_name("profile");
    clients
        .iam
        .create_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .expect("the profile");
    let profile_at = Instant::now();
    let run = || {
        clients
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .iam_instance_profile(
                aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                    .name(&profile)
                    .build(),
            )
            .send()
    };
    let refused = run().await.expect_err("a new profile is unknown to EC2");
    assert_eq!(
        aws_sdk_ec2::error::ProvideErrorMetadata::code(&refused),
        Some("InvalidParameterValue"),
        "{refused:?}"
    );
    let message = aws_sdk_ec2::error::ProvideErrorMetadata::message(&refused).unwrap_or_default();
    assert!(
        message.contains(&profile) && message.contains("Invalid IAM Instance Profile name"),
        "{message}"
    );
    tokio::time::sleep(
        (profile_at + SHORT.iam_propagation).saturating_duration_since(Instant::now()),
    )
    .await;
    let launched = run().await.expect("the profile has propagated");
    let id = launched.instances()[0]
        .instance_id()
        .expect("an id")
        .to_owned();
    let launched_at = Instant::now();

    let state = || async {
        clients
            .ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .expect("DescribeInstances")
            .reservations()[0]
            .instances()[0]
            .state()
            .and_then(|state| state.name())
            .cloned()
    };
    use aws_sdk_ec2::types::InstanceStateName;
    assert_eq!(state().await, Some(InstanceStateName::Pending));
    let running = eventually(Duration::from_secs(10), || async {
        (state().await == Some(InstanceStateName::Running)).then(Instant::now)
    })
    .await
    .expect("the instance runs after its boot");
    assert!(
        running.duration_since(launched_at) + Duration::from_secs(1) >= SHORT.instance_boot,
        "running after {:?}",
        running.duration_since(launched_at)
    );

    // A bucket's name, deleted, is not free again at once.
    let bucket = unique_name("reused");
    let s3 = &clients.s3;
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("created");
    s3.delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("deleted");
    let deleted_at = Instant::now();
    let again = s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect_err("the name is not free yet");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&again),
        Some("OperationAborted"),
        "{again:?}"
    );
    tokio::time::sleep(
        (deleted_at + SHORT.bucket_name_reuse).saturating_duration_since(Instant::now()),
    )
    .await;
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the name is free again");
    sandbox.stop().await;
}

/// EC2's On-Demand vCPU quota: with 4 vCPUs, two t3.micro run and a third is refused with
/// `VcpuLimitExceeded`, as AWS refuses it; once one has terminated, it launches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_past_the_vcpu_quota_is_refused_until_an_instance_ends() {
    let dir = std::env::temp_dir().join(format!("hybridlab-timing-vcpu-{}", unique_name("t")));
    let mut options = SandboxOptions::new(dir);
    options.edge_port = 0;
    options.timing = Timing::fast();
    options.vcpu_limit = 4;
    let sandbox = Sandbox::start(options, |message| eprintln!("{message}"))
        .await
        .expect("the sandbox starts");
    let clients = EdgeClients::connect(sandbox.endpoint()).await;
    let image = clients.amazon_image().await;
    let launch = || {
        clients
            .ec2
            .run_instances()
            .image_id(&image)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
    };
    let first = launch().await.expect("2 of 4 vCPUs");
    launch().await.expect("4 of 4 vCPUs");
    let refused = launch().await.expect_err("6 of 4 vCPUs");
    assert_eq!(
        aws_sdk_ec2::error::ProvideErrorMetadata::code(&refused),
        Some("VcpuLimitExceeded"),
        "{refused:?}"
    );
    assert!(
        aws_sdk_ec2::error::ProvideErrorMetadata::message(&refused)
            .is_some_and(|m| m.contains("current vCPU limit of 4")),
        "{refused:?}"
    );
    let id = first
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("an instance")
        .to_owned();
    clients
        .ec2
        .terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("TerminateInstances");
    launch()
        .await
        .expect("a terminated instance frees its vCPUs");
    sandbox.stop().await;
}
