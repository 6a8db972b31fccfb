//! Job workers on the sandbox. With the test in the launcher's place: an instance launched
//! for a LAUNCHING job (with its worker role, and the job in its user-data) fetches the worker,
//! which moves the job to RUNNING once its instance is attached, appends the text to the
//! input, writes the output and ends the job SUCCEEDED; then the instance terminates itself.
//! Wired by hand with short leases: jobs whose workers died end FAILED. Through a stack made
//! by `hybridlab up --with jobs`: jobs submitted, listed, logged and cancelled with `hybridlab
//! job`, twenty jobs under a cap of three, a duplicated stream record, and `down` while jobs
//! run.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataOptionsRequest, InstanceType,
    ResourceType, ShutdownBehavior, Tag, TagSpecification,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::sandbox::{
    EdgeClients, bootstrap_zip, build_binary, deploy_function, edge_clients,
};
use hybridlab_wire::job::{self, Job, JobEvent, JobKind, JobStatus};
use hybridlab_wire::job_item;
use hybridlab_wire::launch::WorkerLaunch;
use hybridlab_wire::tags::{ROLE_JOB_WORKER, ROLE_TAG};
use serde_json::json;

use crate::common::eventually;
use crate::sandbox_ec2::{ServerProfile, server_profile};
use crate::stack::result_of;
use hybridlab_tests::stack::{hybridlab_async as run_cli, json_lines};

async fn job_row(clients: &EdgeClients, table: &str, id: &str) -> Option<Job> {
    let item = job_item::get_job(&clients.dynamodb, table, id)
        .send()
        .await
        .ok()?
        .item?;
    job_item::from_item(&item).ok()
}

/// What every job test needs, as `up --with jobs` will make it: the jobs table with its
/// stream, the jobs and artifacts buckets, and the worker's binary, role and profile.
struct JobsStore {
    table: String,
    table_arn: String,
    stream: String,
    bucket: String,
    artifacts: String,
    worker: ServerProfile,
}

async fn jobs_store(clients: &EdgeClients) -> JobsStore {
    let table = unique_name("jobs");
    let bucket = unique_name("jobs");
    let artifacts = unique_name("artifacts");
    let stream = clients
        .dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(job::JOB_KEY_ATTRIBUTE)
                .key_type(KeyType::Hash)
                .build()
                .expect("a key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(job::JOB_KEY_ATTRIBUTE)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("an attribute"),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .expect("a stream"),
        )
        .send()
        .await
        .expect("the jobs table")
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .expect("a stream")
        .to_owned();
    for name in [&bucket, &artifacts] {
        clients
            .s3
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("a bucket");
    }
    let binary = std::fs::read(build_binary("hybridlab-worker", "hybridlab-worker"))
        .expect("the worker binary");
    clients
        .s3
        .put_object()
        .bucket(&artifacts)
        .key("worker/hybridlab-worker")
        .body(binary.into())
        .send()
        .await
        .expect("the worker is stored");
    // The worker's role may read its binary and the input, write the outputs, and read and
    // update the jobs table: nothing else (the sandbox enforces it).
    let table_arn = format!(
        "arn:aws:dynamodb:us-east-1:{}:table/{table}",
        hybridlab_sandbox::SANDBOX_ACCOUNT
    );
    let worker = server_profile(clients).await;
    clients
        .iam
        .put_role_policy()
        .role_name(&worker.name)
        .policy_name("worker")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [
                    format!("arn:aws:s3:::{artifacts}/worker/*"),
                    format!("arn:aws:s3:::{bucket}/jobs/*/input")
                ]},
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/jobs/*/output/*")},
                {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"], "Resource": table_arn}
            ]})
            .to_string(),
        )
        .send()
        .await
        .expect("the worker's policy");
    JobsStore {
        table,
        table_arn,
        stream,
        bucket,
        artifacts,
        worker,
    }
}

/// Whether `instance` has terminated itself (or is on its way), within 30 s.
async fn terminates(clients: &EdgeClients, instance: &str) -> bool {
    eventually(Duration::from_secs(30), || async {
        let state = clients.instance_state(instance).await?;
        matches!(state.as_str(), "shutting-down" | "terminated").then_some(())
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_its_append_text_job_to_succeeded_and_its_instance_terminates() {
    let clients = edge_clients().await;
    let JobsStore {
        table,
        bucket,
        artifacts,
        worker: profile,
        ..
    } = jobs_store(&clients).await;

    let job_id = "j-00000000000000a1";
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(job::input_key(job_id))
        .body(b"line one\n".to_vec().into())
        .send()
        .await
        .expect("the input");
    let at = hybridlab_wire::now_rfc3339();
    let job = Job {
        job_id: job_id.into(),
        kind: JobKind::AppendText {
            text: "line two".into(),
        },
        status: JobStatus::Launching,
        submitted_at: at.clone(),
        instance_id: None,
        heartbeat_at: None,
        launched_at: None,
        lease_seconds: 60,
        input_bytes: None,
        outputs: Vec::new(),
        error: None,
        history: vec![
            JobEvent {
                status: JobStatus::Submitted,
                at: at.clone(),
                detail: String::new(),
            },
            JobEvent {
                status: JobStatus::Launching,
                at,
                detail: String::new(),
            },
        ],
    };
    clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .set_item(Some(job_item::to_item(&job)))
        .send()
        .await
        .expect("the job's row");

    let launch = WorkerLaunch {
        artifact_bucket: artifacts.clone(),
        binary_key: "worker/hybridlab-worker".into(),
        region: "us-east-1".into(),
        job_id: job_id.into(),
        jobs_table: table.clone(),
        jobs_bucket: bucket.clone(),
        heartbeat_seconds: 1,
        ttl_seconds: 3600,
    };
    let image = clients.amazon_image().await;
    let launched = clients
        .ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .user_data(STANDARD.encode(launch.render()))
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(&profile.name)
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
                .tags(Tag::builder().key(ROLE_TAG).value(ROLE_JOB_WORKER).build())
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
    // As the launcher does once RunInstances answers.
    let attached = job_item::apply(
        &clients.dynamodb,
        &table,
        job_id,
        job_item::attach_instance(&instance, &hybridlab_wire::now_rfc3339()),
    )
    .await
    .expect("UpdateItem");
    assert!(attached, "the LAUNCHING job takes its instance");

    let done = eventually(Duration::from_secs(90), || async {
        let job = job_row(&clients, &table, job_id).await?;
        job.status.is_final().then_some(job)
    })
    .await;
    let console = crate::sandbox_principals::console_output(&clients, &instance)
        .await
        .unwrap_or_default();
    let done = done.unwrap_or_else(|| panic!("the job ends: {console}"));
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?} {console}");
    assert_eq!(
        done.history.iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![
            JobStatus::Submitted,
            JobStatus::Launching,
            JobStatus::Running,
            JobStatus::Succeeded
        ]
    );
    assert_eq!(done.instance_id.as_deref(), Some(instance.as_str()));
    let output_key = job::output_key(job_id, "output.txt");
    assert_eq!(done.outputs, vec![output_key.clone()]);
    let output = clients.object_bytes(&bucket, &output_key).await;
    assert_eq!(output.as_ref(), b"line one\nline two\n");

    let terminated = terminates(&clients, &instance).await;
    let console = crate::sandbox_principals::console_output(&clients, &instance)
        .await
        .unwrap_or_default();
    assert!(terminated, "the worker's instance terminated: {console}");
    assert!(
        console.contains(&format!("job {job_id} SUCCEEDED")),
        "{console}"
    );
}

/// The jobs variant's pieces on the sandbox wired by hand, with leases far shorter than a
/// stack's: the [`jobs_store`], the launcher with its mapping (inserts, and jobs that ended),
/// and the submit function (invoked directly, without the API).
struct JobsLab {
    table: String,
    bucket: String,
    submit: String,
}

/// The token the hand-wired submit function checks.
const LAB_TOKEN: &str = "jobs-token-0123456789abcdef0123456789";

async fn jobs_lab(clients: &EdgeClients, cap: usize) -> JobsLab {
    use aws_sdk_lambda::types::{EventSourcePosition, Filter, FilterCriteria};

    let JobsStore {
        table,
        table_arn,
        stream,
        bucket,
        artifacts,
        worker,
    } = jobs_store(clients).await;
    let profile_arn = clients
        .iam
        .get_instance_profile()
        .instance_profile_name(&worker.name)
        .send()
        .await
        .expect("the profile")
        .instance_profile()
        .map(|p| p.arn().to_owned())
        .expect("an ARN");
    let image = clients.amazon_image().await;

    let stack = unique_name("stack");
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-lambda", "launcher"))
        .await
        .expect("the build does not panic");
    let cap = cap.to_string();
    let launcher = deploy_function(
        clients,
        "launcher",
        zip,
        30,
        &[
            ("HYBRIDLAB_STACK", stack.as_str()),
            ("HYBRIDLAB_JOBS_TABLE", table.as_str()),
            ("HYBRIDLAB_JOBS_BUCKET", bucket.as_str()),
            ("HYBRIDLAB_ARTIFACT_BUCKET", artifacts.as_str()),
            ("HYBRIDLAB_WORKER_KEY", "worker/hybridlab-worker"),
            ("HYBRIDLAB_WORKER_PROFILE_ARN", profile_arn.as_str()),
            ("HYBRIDLAB_WORKER_IMAGE", image.as_str()),
            ("HYBRIDLAB_WORKER_INSTANCE_TYPE", "t3.micro"),
            ("HYBRIDLAB_WORKER_CAP", cap.as_str()),
            ("HYBRIDLAB_HEARTBEAT_SECONDS", "1"),
        ],
    )
    .await;
    let launcher_role = clients.function_role_name(&launcher).await;
    // What the launcher's role needs, and the sandbox checks: the stream, the table, EC2, and
    // passing the worker's role to its instances.
    clients
        .iam
        .put_role_policy()
        .role_name(&launcher_role)
        .policy_name("launcher")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"], "Resource": stream},
                {"Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"},
                {"Effect": "Allow", "Action": ["dynamodb:Scan", "dynamodb:UpdateItem"], "Resource": table_arn},
                {"Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateTags", "ec2:TerminateInstances"], "Resource": "*"},
                {"Effect": "Allow", "Action": "iam:PassRole", "Resource": worker.role_arn}
            ]})
            .to_string(),
        )
        .send()
        .await
        .expect("the launcher's policy");
    clients
        .lambda
        .create_event_source_mapping()
        .function_name(&launcher)
        .event_source_arn(&stream)
        .starting_position(EventSourcePosition::TrimHorizon)
        .batch_size(10)
        .filter_criteria(
            FilterCriteria::builder()
                .filters(Filter::builder().pattern(r#"{"eventName": ["INSERT"]}"#).build())
                .filters(
                    Filter::builder()
                        .pattern(r#"{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["SUCCEEDED", "FAILED", "CANCELLED"]}}}}"#)
                        .build(),
                )
                .build(),
        )
        .maximum_retry_attempts(2)
        .send()
        .await
        .expect("the launcher's mapping");
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-lambda", "submit"))
        .await
        .expect("the build does not panic");
    let submit = deploy_function(
        clients,
        "submit",
        zip,
        10,
        &[
            ("HYBRIDLAB_JOBS_TABLE", table.as_str()),
            ("HYBRIDLAB_JOBS_BUCKET", bucket.as_str()),
            ("HYBRIDLAB_TOKEN", LAB_TOKEN),
        ],
    )
    .await;
    let role = clients.function_role_name(&submit).await;
    clients
        .iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("submit")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"], "Resource": table_arn},
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/jobs/*/input")}
            ]})
            .to_string(),
        )
        .send()
        .await
        .expect("the submit function's policy");
    JobsLab {
        table,
        bucket,
        submit,
    }
}

/// `GET /jobs/{id}` as the API hands it to the submit function (payload format 2.0).
async fn get_through_submit(clients: &EdgeClients, lab: &JobsLab, id: &str) -> serde_json::Value {
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /jobs/{id}",
        "rawPath": format!("/jobs/{id}"),
        "headers": {"authorization": format!("Bearer {LAB_TOKEN}")},
        "pathParameters": {"id": id},
        "isBase64Encoded": false
    });
    let answer = clients
        .lambda
        .invoke()
        .function_name(&lab.submit)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .expect("the submit function is invoked");
    let answer: serde_json::Value =
        serde_json::from_slice(answer.payload().expect("a payload").as_ref()).expect("JSON");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    serde_json::from_str(answer["body"].as_str().expect("a body")).expect("a JSON body")
}

/// Writes a SUBMITTED job `id` (its input too, when given) as the submit function does.
async fn submit_job(
    clients: &EdgeClients,
    lab: &JobsLab,
    id: &str,
    input: Option<&str>,
    lease_seconds: u64,
) {
    if let Some(input) = input {
        clients
            .s3
            .put_object()
            .bucket(&lab.bucket)
            .key(job::input_key(id))
            .body(input.as_bytes().to_vec().into())
            .send()
            .await
            .expect("an input");
    }
    let at = hybridlab_wire::now_rfc3339();
    let job = Job {
        job_id: id.to_owned(),
        kind: JobKind::AppendText {
            text: "more".into(),
        },
        status: JobStatus::Submitted,
        submitted_at: at.clone(),
        instance_id: None,
        heartbeat_at: None,
        launched_at: None,
        lease_seconds,
        input_bytes: None,
        outputs: Vec::new(),
        error: None,
        history: vec![JobEvent {
            status: JobStatus::Submitted,
            at,
            detail: String::new(),
        }],
    };
    clients
        .dynamodb
        .put_item()
        .table_name(&lab.table)
        .set_item(Some(job_item::to_item(&job)))
        .send()
        .await
        .expect("a job");
}

/// Workers whose instances die mid-job stop beating; once their lease has run out, reading
/// one job through the API fails it ("seen by the API"), and that change wakes the launcher,
/// which fails the other ("lease ran out"): neither stays RUNNING, though no new job came.
/// A job submitted afterwards runs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_whose_workers_died_fail_after_their_lease() {
    let clients = edge_clients().await;
    let lab = jobs_lab(&clients, 3).await;
    let (read, other) = ("j-00000000000000c1", "j-00000000000000c3");
    // No input yet: the workers are RUNNING, beating, waiting for it.
    submit_job(&clients, &lab, read, None, 3).await;
    submit_job(&clients, &lab, other, None, 3).await;
    for lost in [read, other] {
        let running = eventually(Duration::from_secs(60), || async {
            let job = job_row(&clients, &lab.table, lost).await?;
            (job.status == JobStatus::Running && job.heartbeat_at.is_some()).then_some(job)
        })
        .await
        .expect("the worker runs the job");
        let instance = running.instance_id.expect("its instance");
        clients
            .ec2
            .terminate_instances()
            .instance_ids(&instance)
            .send()
            .await
            .expect("the instance dies");
    }
    // Past both leases, with the beats stopped...
    let silent = eventually(Duration::from_secs(30), || async {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        for lost in [read, other] {
            let job = job_row(&clients, &lab.table, lost).await?;
            if !job.lease_expired(now) {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(silent.is_some(), "the workers stopped beating");
    // ...a read through the API fails the job it reads...
    let seen = get_through_submit(&clients, &lab, read).await;
    assert_eq!(seen["status"], "FAILED", "{seen}");
    assert_eq!(seen["error"], job::LEASE_EXPIRED, "{seen}");
    // ...and the launcher, woken by that change, fails the other.
    let other_ended = eventually(Duration::from_secs(30), || async {
        let job = job_row(&clients, &lab.table, other).await?;
        job.status.is_final().then_some(job)
    })
    .await
    .expect("the other lost job ends");
    assert_eq!(other_ended.status, JobStatus::Failed, "{other_ended:?}");
    assert_eq!(other_ended.error.as_deref(), Some(job::LEASE_EXPIRED));
    let details = |job: &Job| job.history.last().map(|e| e.detail.clone());
    let read_job = job_row(&clients, &lab.table, read).await.expect("the row");
    assert_eq!(
        details(&read_job).as_deref(),
        Some("lease ran out (seen by the API)")
    );
    assert_eq!(details(&other_ended).as_deref(), Some("lease ran out"));

    let next = "j-00000000000000c2";
    submit_job(&clients, &lab, next, Some("input\n"), 60).await;
    let next = eventually(Duration::from_secs(90), || async {
        let job = job_row(&clients, &lab.table, next).await?;
        job.status.is_final().then_some(job)
    })
    .await
    .expect("the next job ends");
    assert_eq!(next.status, JobStatus::Succeeded, "{next:?}");
}

/// A stack brought up with `hybridlab up --with jobs`, and what its tests need of it.
struct JobsStack {
    id: String,
    names: hybridlab_provision::stack::StackNames,
    endpoint: String,
    token: String,
}

async fn jobs_stack(clients: &EdgeClients, worker_cap: u32) -> JobsStack {
    let id = hybridlab_provision::stack::StackId::generate();
    let cap = worker_cap.to_string();
    let up = run_cli(
        &clients.endpoint,
        &[
            "up",
            "--json",
            "--stack",
            id.as_str(),
            "--with",
            "jobs",
            "--worker-cap",
            &cap,
        ],
        &[],
    )
    .await;
    let lines = json_lines(&up);
    let result = result_of(&lines);
    assert_eq!(
        result["ok"],
        true,
        "up --with jobs: {result} {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let endpoint = result["report"]["jobs_api_endpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("the jobs API's endpoint: {result}"))
        .to_owned();
    let names = hybridlab_provision::stack::StackNames::new(&id);
    let config = clients
        .lambda
        .get_function_configuration()
        .function_name(&names.submit)
        .send()
        .await
        .expect("the submit function");
    let token = config
        .environment()
        .and_then(|e| e.variables())
        .and_then(|v| v.get(hybridlab_wire::token::TOKEN_ENV))
        .cloned()
        .expect("its token");
    JobsStack {
        id: id.to_string(),
        names,
        endpoint,
        token,
    }
}

/// `POST /jobs` of an append-text job whose input will be `size` bytes: the API's answer.
async fn post_job(stack: &JobsStack, text: &str, size: usize) -> serde_json::Value {
    let submitted: serde_json::Value = crate::common::http()
        .post(format!("{}/jobs", stack.endpoint))
        .bearer_auth(&stack.token)
        .json(&json!({"kind": "append-text", "text": text, "size": size}))
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    assert!(submitted["job_id"].is_string(), "{submitted}");
    submitted
}

/// PUTs `body` to the upload URL of `submitted` with the headers the API said to send: the
/// status S3 answered.
async fn put_input(submitted: &serde_json::Value, body: &str) -> u16 {
    let mut request = crate::common::http()
        .put(submitted["upload_url"].as_str().expect("an upload URL"))
        .body(body.to_owned());
    for (name, value) in submitted["upload_headers"]
        .as_object()
        .into_iter()
        .flatten()
    {
        request = request.header(name, value.as_str().unwrap_or_default());
    }
    request.send().await.expect("S3 answers").status().as_u16()
}

/// `POST /jobs` of an append-text job, its input never uploaded: its worker runs and waits.
async fn submit_without_input(stack: &JobsStack) -> String {
    post_job(stack, "x", 1).await["job_id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

/// Runs `hybridlab job ARGS --json --stack ID` and returns its exit code and JSON lines.
async fn job_cli(
    clients: &EdgeClients,
    stack: &JobsStack,
    args: &[&str],
) -> (Option<i32>, Vec<serde_json::Value>) {
    let mut all = vec!["job"];
    all.extend_from_slice(args);
    all.extend(["--json", "--stack", stack.id.as_str()]);
    let output = run_cli(&clients.endpoint, &all, &[]).await;
    let lines = json_lines(&output);
    assert!(
        !lines.is_empty(),
        "job {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), lines)
}

/// `hybridlab job submit ...` (`args`) of a job that ends SUCCEEDED: the job.
async fn submit_succeeds(clients: &EdgeClients, stack: &JobsStack, args: &[&str]) -> Job {
    let (code, lines) = job_cli(clients, stack, args).await;
    let job: Job = serde_json::from_value(lines.last().cloned().expect("the job")).expect("a job");
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    job
}

/// The bytes of `key` in the stack's jobs bucket.
async fn jobs_object(clients: &EdgeClients, stack: &JobsStack, key: String) -> bytes::Bytes {
    clients.object_bytes(&stack.names.jobs_bucket, &key).await
}

/// The stack as a student uses it: `up --with jobs`, a file submitted with `hybridlab job
/// submit` that ends SUCCEEDED with the right bytes and its worker terminated, `job ls`,
/// `job logs` with the launcher's and the worker's lines, `job cancel` of a running job, and
/// `down` while two jobs hold workers, which leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_stack_runs_submitted_jobs_cancels_one_and_is_torn_down_with_jobs_running() {
    let clients = edge_clients().await;
    let stack = jobs_stack(&clients, 3).await;
    let dir = std::env::temp_dir().join(format!("hybridlab-jobs-{}", stack.id));
    std::fs::create_dir_all(&dir).expect("a directory");
    let input = dir.join("notes.txt");
    std::fs::write(&input, "from the student\n").expect("write");
    let input_arg = input.display().to_string();

    let job = submit_succeeds(
        &clients,
        &stack,
        &["submit", &input_arg, "--text", "and from the worker"],
    )
    .await;
    assert_eq!(
        job.history.iter().map(|e| e.status).collect::<Vec<_>>(),
        [
            JobStatus::Submitted,
            JobStatus::Launching,
            JobStatus::Running,
            JobStatus::Succeeded
        ]
    );
    let output_key = job::output_key(&job.job_id, "output.txt");
    assert_eq!(job.outputs, std::slice::from_ref(&output_key));
    let output = jobs_object(&clients, &stack, output_key).await;
    assert_eq!(output.as_ref(), b"from the student\nand from the worker\n");
    let instance = job.instance_id.clone().expect("its worker");
    assert!(
        terminates(&clients, &instance).await,
        "{instance} terminated"
    );

    let (_, listed) = job_cli(&clients, &stack, &["ls"]).await;
    assert!(
        listed[0]["jobs"]
            .as_array()
            .is_some_and(|jobs| jobs.iter().any(|j| j["job_id"] == job.job_id.as_str())),
        "{listed:#?}"
    );
    let (_, logs) = job_cli(&clients, &stack, &["logs", &job.job_id]).await;
    let logs = logs[0]["lines"].as_array().cloned().unwrap_or_default();
    assert!(
        logs.iter().any(|l| l["source"] == "launcher"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("worker launched"))),
        "{logs:#?}"
    );
    assert!(
        logs.iter().any(|l| l["source"] == "worker"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("job {} SUCCEEDED", job.job_id)))),
        "{logs:#?}"
    );

    // An image batch with something that is no image inside: SUCCEEDED, the bad entry
    // listed in the manifest, the good ones' variants written.
    let batch = dir.join("batch.zip");
    {
        use std::io::Write as _;
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&batch).expect("a file"));
        for (name, bytes) in [
            (
                "holiday/beach.jpg",
                hybridlab_tests::fixtures::jpeg(1600, 1000),
            ),
            ("holiday/readme.txt", b"not an image".to_vec()),
            (
                "holiday/diagram.png",
                hybridlab_tests::fixtures::png(500, 700),
            ),
        ] {
            writer
                .start_file(name, zip::write::SimpleFileOptions::default())
                .expect("an entry");
            writer.write_all(&bytes).expect("written");
        }
        writer.finish().expect("a zip");
    }
    let batch_arg = batch.display().to_string();
    let done = submit_succeeds(
        &clients,
        &stack,
        &["submit", &batch_arg, "--kind", "image-batch"],
    )
    .await;
    let read = |key: String| jobs_object(&clients, &stack, key);
    assert_eq!(
        done.outputs,
        [
            job::output_key(&done.job_id, "contact-sheet.jpg"),
            job::output_key(&done.job_id, "manifest.json")
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(job::output_key(&done.job_id, "manifest.json")).await)
            .expect("the manifest is JSON");
    assert_eq!(
        manifest["images"].as_array().map(Vec::len),
        Some(2),
        "{manifest}"
    );
    assert_eq!(
        manifest["failed"][0]["entry"], "holiday/readme.txt",
        "{manifest}"
    );
    assert_eq!(manifest["images"][1]["width"], 500, "{manifest}");
    let large = manifest["images"][0]["variants"][2]["output"]
        .as_str()
        .expect("a variant");
    let large = read(job::output_key(&done.job_id, large)).await;
    assert_eq!(
        hybridlab_imaging::detect_format(&large).map(|f| f.to_string()),
        Some("jpeg".to_owned())
    );
    assert!(
        !read(job::output_key(&done.job_id, "contact-sheet.jpg"))
            .await
            .is_empty()
    );

    // `bench --jobs`: every stage measured, from the submit to the worker stopped.
    let bench = run_cli(
        &clients.endpoint,
        &[
            "bench", "--jobs", "2", "-c", "2", "--json", "--stack", &stack.id,
        ],
        &[],
    )
    .await;
    let run: serde_json::Value = json_lines(&bench)
        .pop()
        .unwrap_or_else(|| panic!("bench --jobs: {}", String::from_utf8_lossy(&bench.stderr)));
    assert_eq!(bench.status.code(), Some(0), "{run}");
    assert_eq!(run["format"], "hybridlab-bench-jobs/2");
    assert_eq!(run["succeeded"], 2, "{run}");
    let measured: Vec<&str> = run["measures"]
        .as_array()
        .expect("measures")
        .iter()
        .filter(|m| m["count"] == 2)
        .filter_map(|m| m["name"].as_str())
        .collect();
    for stage in [
        "end_to_end",
        "submit",
        "to_launcher",
        "run_instances",
        "pending_to_running",
        "boot_to_worker",
        "job",
        "to_terminated",
    ] {
        assert!(measured.contains(&stage), "{stage} in {run}");
    }
    let cost = run["cost_per_job_usd"].as_f64().expect("a cost");
    // At least the instance's first minute of a t3.micro with its volume and address.
    assert!(cost > 0.000_27 && cost < 0.01, "{run}");

    // Without the stack's token the API submits nothing.
    let refused = crate::common::http()
        .post(format!("{}/jobs", stack.endpoint))
        .json(&json!({"kind": "append-text", "text": "x"}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(refused.status(), 401);

    // The upload URL is signed for one object of the declared size, once: on AWS another
    // size is a signature mismatch (403). moto checks no signatures, so here the object is
    // stored, and the worker, which knows the declared size, fails the job without reading
    // it. A second upload through the URL is refused (412): an input a worker has read
    // cannot be swapped.
    let sized = post_job(&stack, "x", 5).await;
    let signed = reqwest::Url::parse(sized["upload_url"].as_str().expect("a URL"))
        .expect("a URL")
        .query_pairs()
        .find(|(name, _)| name == "X-Amz-SignedHeaders")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    for header in ["content-length", "if-none-match"] {
        assert!(
            signed.split(';').any(|h| h == header),
            "{header} in {signed}"
        );
    }
    assert_eq!(
        put_input(&sized, "not five bytes").await,
        200,
        "moto took it"
    );
    assert_eq!(put_input(&sized, "12345").await, 412);
    let sized_id = sized["job_id"].as_str().expect("an id");
    let refused = eventually(Duration::from_secs(90), || async {
        let job = job_row(&clients, &stack.names.jobs_table, sized_id).await?;
        job.status.is_final().then_some(job)
    })
    .await
    .expect("the job ends");
    assert_eq!(refused.status, JobStatus::Failed, "{refused:?}");
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not the 5 its submit declared")),
        "{refused:?}"
    );
    let too_big = crate::common::http()
        .post(format!("{}/jobs", stack.endpoint))
        .bearer_auth(&stack.token)
        .json(&json!({"kind": "image-batch", "size": hybridlab_wire::job::MAX_INPUT_BYTES + 1}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(too_big.status(), 413);

    // A job whose worker waits for its input, cancelled while RUNNING.
    let waiting = submit_without_input(&stack).await;
    let running = eventually(Duration::from_secs(90), || async {
        let job = job_row(&clients, &stack.names.jobs_table, &waiting).await?;
        (job.status == JobStatus::Running).then_some(job)
    })
    .await
    .expect("the worker runs the job");
    let (code, cancelled) = job_cli(&clients, &stack, &["cancel", &waiting]).await;
    assert_eq!(code, Some(0));
    assert_eq!(cancelled[0]["status"], "CANCELLED", "{cancelled:#?}");
    assert_eq!(cancelled[0]["from"], "RUNNING", "{cancelled:#?}");
    let worker = running.instance_id.expect("its worker");
    assert_eq!(cancelled[0]["terminated"], worker.as_str());
    assert!(terminates(&clients, &worker).await, "{worker} terminated");
    let again = job_row(&clients, &stack.names.jobs_table, &waiting)
        .await
        .expect("the row");
    assert_eq!(again.status, JobStatus::Cancelled, "{again:?}");

    // Two jobs holding workers when `down` comes.
    let held = [
        submit_without_input(&stack).await,
        submit_without_input(&stack).await,
    ];
    let holding = eventually(Duration::from_secs(60), || async {
        let mut instances = Vec::new();
        for id in &held {
            let job = job_row(&clients, &stack.names.jobs_table, id).await?;
            instances.push(job.instance_id?);
        }
        Some(instances)
    })
    .await
    .expect("both jobs have a worker");
    for instance in &holding {
        let state = clients.instance_state(instance).await;
        assert!(
            matches!(state.as_deref(), Some("pending" | "running")),
            "{instance}: {state:?}"
        );
    }
    crate::stack::down_leaves_nothing(&clients.endpoint, &clients, &stack.id).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Twenty jobs at once with a cap of three: never more than three hold a worker, every job
/// ends SUCCEEDED, each on an instance of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_jobs_with_a_cap_of_three_all_finish_never_more_than_three_at_once() {
    let clients = edge_clients().await;
    let stack = jobs_stack(&clients, 3).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let input = format!("input {n}\n");
        let submitted = post_job(&stack, &format!("job {n}"), input.len()).await;
        assert_eq!(put_input(&submitted, &input).await, 200);
        ids.push(submitted["job_id"].as_str().expect("an id").to_owned());
    }
    let table = &stack.names.jobs_table;
    let mut finished = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(400);
    while std::time::Instant::now() < deadline {
        let mut jobs = Vec::new();
        for id in &ids {
            if let Some(job) = job_row(&clients, table, id).await {
                jobs.push(job);
            }
        }
        if jobs.len() == ids.len() && jobs.iter().all(|j| j.status.is_final()) {
            finished = Some(jobs);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let finished = finished.unwrap_or_else(|| panic!("every job ends within 400 s"));
    // Read from the histories, not from polls: twenty reads are no snapshot, and a poll can
    // see a job still RUNNING and, a moment later, the job launched after it ended.
    let most_at_once = most_holding_a_worker(&finished);
    assert!(
        most_at_once <= 3,
        "{most_at_once} workers at once, with a cap of 3: {finished:#?}"
    );
    assert_eq!(most_at_once, 3, "the cap is used");
    for job in &finished {
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    }
    let mut instances: Vec<&str> = finished
        .iter()
        .filter_map(|j| j.instance_id.as_deref())
        .collect();
    instances.sort_unstable();
    instances.dedup();
    assert_eq!(instances.len(), 20, "one instance per job");
    crate::stack::down_leaves_nothing(&clients.endpoint, &clients, &stack.id).await;
}

/// The most jobs that held a worker at once, from their histories: each holds one from
/// LAUNCHING until it ends (the launcher writes LAUNCHING only after it has read the end of
/// the job whose place it takes, so an end and a start at the same instant do not overlap).
fn most_holding_a_worker(jobs: &[Job]) -> usize {
    let mut changes: Vec<(String, i32)> = Vec::new();
    for job in jobs {
        let at = |wanted: fn(JobStatus) -> bool| {
            job.history
                .iter()
                .find(|e| wanted(e.status))
                .map(|e| time_of(&e.at))
        };
        if let (Some(start), Some(end)) =
            (at(|s| s == JobStatus::Launching), at(JobStatus::is_final))
        {
            changes.push((start, 1));
            changes.push((end, -1));
        }
    }
    // Ends before starts at the same instant.
    changes.sort();
    let (mut now, mut most) = (0, 0);
    for (_, change) in changes {
        now += change;
        most = most.max(now);
    }
    most as usize
}

/// An RFC 3339 time as a string that sorts in time order (the fraction padded to nine digits).
fn time_of(at: &str) -> String {
    let parsed = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    format!("{:020}", parsed.unix_timestamp_nanos())
}

/// Stream delivery is at least once: the same INSERT record handed to the launcher four
/// times at once (three direct invocations and the mapping's own) launches one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_stream_record_launches_one_instance() {
    let clients = edge_clients().await;
    let stack = jobs_stack(&clients, 3).await;
    let id = "j-00000000000000d1";
    let lab = JobsLab {
        table: stack.names.jobs_table.clone(),
        bucket: stack.names.jobs_bucket.clone(),
        submit: stack.names.submit.clone(),
    };
    submit_job(&clients, &lab, id, Some("input\n"), 60).await;
    let record = json!({"Records": [{
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"job_id": {"S": id}}, "NewImage": {"job_id": {"S": id}, "status": {"S": "SUBMITTED"}}, "StreamViewType": "NEW_IMAGE"}
    }]})
    .to_string();
    let invocations = (0..3).map(|_| {
        clients
            .lambda
            .invoke()
            .function_name(&stack.names.launcher)
            .payload(aws_sdk_lambda::primitives::Blob::new(record.clone()))
            .send()
    });
    for answer in futures::future::join_all(invocations).await {
        let answer = answer.expect("the launcher is invoked");
        assert_eq!(answer.function_error(), None, "{answer:?}");
    }
    let done = eventually(Duration::from_secs(90), || async {
        let job = job_row(&clients, &stack.names.jobs_table, id).await?;
        job.status.is_final().then_some(job)
    })
    .await
    .expect("the job ends");
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let launched: usize = clients
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", hybridlab_wire::tags::JOB_TAG))
                .values(id)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:hybridlab:stack")
                .values(&stack.id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .iter()
        .map(|r| r.instances().len())
        .sum();
    assert_eq!(launched, 1, "one instance for job {id}");
    assert_eq!(
        done.history
            .iter()
            .filter(|e| e.status == JobStatus::Launching)
            .count(),
        1,
        "{done:?}"
    );
    the_jobs_view_shows_the_job_its_history_and_submits_another(&clients, &stack, id).await;
    crate::stack::down_leaves_nothing(&clients.endpoint, &clients, &stack.id).await;
}

/// The console's Jobs view on `stack`, in a pseudo-terminal: job `id` listed SUCCEEDED with
/// its worker terminated, `Enter` shows its history and the worker's log line, and `j`
/// submits a file whose job the list then shows.
async fn the_jobs_view_shows_the_job_its_history_and_submits_another(
    clients: &EdgeClients,
    stack: &JobsStack,
    id: &str,
) {
    let (endpoint, stack_id, id) = (clients.endpoint.clone(), stack.id.clone(), id.to_owned());
    let submitted = tokio::task::spawn_blocking(move || {
        let dir = std::env::temp_dir().join(format!("hybridlab-jobs-view-{stack_id}"));
        std::fs::create_dir_all(&dir).expect("a directory");
        let input = dir.join("from-the-console.txt");
        std::fs::write(&input, "typed in the console\n").expect("write");
        let mut console = crate::console::Console::start(
            &dir,
            &["--endpoint", &endpoint, "--stack", &stack_id],
            &[],
        );
        console.wait_for(&["LOCAL SANDBOX", "6 Jobs"], Duration::from_secs(60));
        console.type_keys("6");
        console.wait_for(
            &[&id, "SUCCEEDED", "append-text", "terminated"],
            Duration::from_secs(60),
        );
        console.type_keys("\r");
        console.wait_for(
            &[
                &format!("Job {id}"),
                "LAUNCHING",
                "RUNNING",
                "worker",
                "SUCCEEDED:",
            ],
            Duration::from_secs(60),
        );
        // Esc alone (followed at once by a key, a terminal reads Esc as Alt).
        console.type_keys("\x1b");
        console.wait_for(&["s submit a file"], Duration::from_secs(10));
        console.type_keys("s");
        console.type_keys(&format!("{}\r", input.display()));
        let text = console.wait_for(&["submitted j-"], Duration::from_secs(60));
        let submitted = text
            .split("submitted ")
            .nth(1)
            .and_then(|rest| rest.get(..18))
            .expect("the new job's id")
            .to_owned();
        console.wait_for(&[&submitted], Duration::from_secs(30));
        console.quit();
        let _ = std::fs::remove_dir_all(&dir);
        submitted
    })
    .await
    .expect("the console test does not panic");
    assert!(job::is_job_id(&submitted), "{submitted}");
    let ended = eventually(Duration::from_secs(90), || async {
        let job = job_row(clients, &stack.names.jobs_table, &submitted).await?;
        job.status.is_final().then_some(job)
    })
    .await
    .expect("the console's job ends");
    assert_eq!(ended.status, JobStatus::Succeeded, "{ended:?}");
}
