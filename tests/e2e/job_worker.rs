//! Job workers on the sandbox. With the test in the launcher's place: an instance launched
//! for a LAUNCHING job (with its worker role, and the job in its user-data) fetches the worker,
//! which moves the job to RUNNING once its instance is attached, appends the text to the
//! input, writes the output and ends the job SUCCEEDED; then the instance terminates itself.
//! With the launcher function behind the jobs table's stream mapping: four jobs inserted at
//! once, with a cap of two workers, all end SUCCEEDED, never more than two at once, each
//! with exactly one instance.

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
        lease_seconds: 60,
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
        job_item::attach_instance(&instance),
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
    let output = clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&output_key)
        .send()
        .await
        .expect("the output")
        .body
        .collect()
        .await
        .expect("its bytes")
        .into_bytes();
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

/// The jobs variant's pieces on the sandbox, wired as `up --with jobs` will wire them: the
/// [`jobs_store`], and the launcher with its mapping (inserts, and jobs that ended).
struct JobsLab {
    table: String,
    bucket: String,
    launcher: String,
}

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
    JobsLab {
        table,
        bucket,
        launcher,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_runs_inserted_jobs_under_the_cap_each_on_one_instance() {
    let clients = edge_clients().await;
    let lab = jobs_lab(&clients, 2).await;
    let (table, launcher) = (&lab.table, &lab.launcher);

    let ids: Vec<String> = (1..=4).map(|n| format!("j-00000000000000b{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        submit_job(&clients, &lab, id, Some(&format!("job {n}\n")), 60).await;
    }

    let mut most_at_once = 0;
    let mut finished = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    while std::time::Instant::now() < deadline {
        let mut jobs = Vec::new();
        for id in &ids {
            if let Some(job) = job_row(&clients, table, id).await {
                jobs.push(job);
            }
        }
        most_at_once = most_at_once.max(jobs.iter().filter(|j| j.status.holds_a_worker()).count());
        if jobs.len() == ids.len() && jobs.iter().all(|j| j.status.is_final()) {
            finished = Some(jobs);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let launcher_log = clients
        .log_messages(&format!("/aws/lambda/{launcher}"))
        .await;
    let finished =
        finished.unwrap_or_else(|| panic!("every job ends; the launcher said: {launcher_log:#?}"));
    for job in &finished {
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        assert!(
            job.history.iter().any(|e| e.status == JobStatus::Running),
            "{job:?}"
        );
    }
    assert!(
        most_at_once <= 2,
        "{most_at_once} workers at once, with a cap of 2"
    );
    assert!(
        finished
            .iter()
            .any(|j| j.history.iter().any(|e| e.status == JobStatus::Queued)),
        "with four jobs and two workers, some waited: {finished:#?}"
    );
    // Each job had one instance, however often the stream said so.
    for id in &ids {
        let instances: usize = clients
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name(format!("tag:{}", hybridlab_wire::tags::JOB_TAG))
                    .values(id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances")
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum();
        assert_eq!(instances, 1, "job {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_through_the_api_ends_succeeded_with_its_output() {
    let clients = edge_clients().await;
    let JobsLab { table, bucket, .. } = jobs_lab(&clients, 3).await;
    let token = "jobs-token-0123456789abcdef0123456789";
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-lambda", "submit"))
        .await
        .expect("the build does not panic");
    let submit = deploy_function(
        &clients,
        "submit",
        zip,
        10,
        &[
            ("HYBRIDLAB_JOBS_TABLE", table.as_str()),
            ("HYBRIDLAB_JOBS_BUCKET", bucket.as_str()),
            ("HYBRIDLAB_TOKEN", token),
        ],
    )
    .await;
    let role = clients.function_role_name(&submit).await;
    let account = hybridlab_sandbox::SANDBOX_ACCOUNT;
    clients
        .iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("submit")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan"], "Resource": format!("arn:aws:dynamodb:us-east-1:{account}:table/{table}")},
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/jobs/*/input")}
            ]})
            .to_string(),
        )
        .send()
        .await
        .expect("the submit function's policy");
    let api = crate::http_api::control(
        &clients,
        reqwest::Method::POST,
        "/v2/apis",
        json!({"name": "jobs", "protocolType": "HTTP"}),
    )
    .await;
    let api_id = api["apiId"].as_str().expect("an API").to_owned();
    let endpoint = api["apiEndpoint"].as_str().expect("an endpoint").to_owned();
    let integration = crate::http_api::control(
        &clients,
        reqwest::Method::POST,
        &format!("/v2/apis/{api_id}/integrations"),
        json!({"integrationType": "AWS_PROXY", "integrationUri": clients.function_arn(&submit).await, "payloadFormatVersion": "2.0"}),
    )
    .await;
    let target = format!(
        "integrations/{}",
        integration["integrationId"].as_str().expect("an id")
    );
    for key in ["POST /jobs", "GET /jobs/{id}", "GET /jobs"] {
        crate::http_api::control(
            &clients,
            reqwest::Method::POST,
            &format!("/v2/apis/{api_id}/routes"),
            json!({"routeKey": key, "target": target}),
        )
        .await;
    }
    crate::http_api::control(
        &clients,
        reqwest::Method::POST,
        &format!("/v2/apis/{api_id}/stages"),
        json!({"stageName": "$default"}),
    )
    .await;
    clients
        .lambda
        .add_permission()
        .function_name(&submit)
        .statement_id("api")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:us-east-1:{account}:{api_id}/*"
        ))
        .send()
        .await
        .expect("the permission");

    let http = crate::common::http();
    // Without the token, nothing is submitted.
    let refused = http
        .post(format!("{endpoint}/jobs"))
        .json(&json!({"kind": "append-text", "text": "x"}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(refused.status(), 401);
    let submitted: serde_json::Value = http
        .post(format!("{endpoint}/jobs"))
        .bearer_auth(token)
        .json(&json!({"kind": "append-text", "text": "appended by the worker"}))
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    let job_id = submitted["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{submitted}"))
        .to_owned();
    let upload_url = submitted["upload_url"].as_str().expect("an upload URL");
    let uploaded = http
        .put(upload_url)
        .body("the client's text\n")
        .send()
        .await
        .expect("S3 answers");
    assert!(uploaded.status().is_success(), "{uploaded:?}");

    let done = eventually(Duration::from_secs(120), || async {
        let job: serde_json::Value = http
            .get(format!("{endpoint}/jobs/{job_id}"))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        JobStatus::parse(job["status"].as_str()?)?
            .is_final()
            .then_some(job)
    })
    .await
    .expect("the job ends");
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let output_key = job::output_key(&job_id, "output.txt");
    assert_eq!(done["outputs"], json!([output_key]));
    let output = clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&output_key)
        .send()
        .await
        .expect("the output")
        .body
        .collect()
        .await
        .expect("its bytes")
        .into_bytes();
    assert_eq!(
        output.as_ref(),
        b"the client's text\nappended by the worker\n"
    );
    let listed: serde_json::Value = http
        .get(format!("{endpoint}/jobs"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    assert!(
        listed["jobs"]
            .as_array()
            .is_some_and(|jobs| jobs.iter().any(|j| j["job_id"] == job_id.as_str())),
        "{listed}"
    );
    // Its instance terminated itself.
    let instance = done["instance_id"]
        .as_str()
        .expect("an instance")
        .to_owned();
    let terminated = terminates(&clients, &instance).await;
    assert!(terminated, "{instance} terminated");
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
        lease_seconds,
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

/// A worker whose instance dies mid-job stops beating; once its lease has run out, the
/// launcher's next run fails the job instead of leaving it RUNNING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_died_fails_after_its_lease() {
    let clients = edge_clients().await;
    let lab = jobs_lab(&clients, 3).await;
    let lost = "j-00000000000000c1";
    // No input yet: the worker is RUNNING, beating, waiting for it.
    submit_job(&clients, &lab, lost, None, 3).await;
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
    // Past the lease, with the beats stopped...
    let silent = eventually(Duration::from_secs(30), || async {
        let job = job_row(&clients, &lab.table, lost).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        job.lease_expired(now).then_some(())
    })
    .await;
    assert!(silent.is_some(), "the worker stopped beating");
    // ...the next job wakes the launcher, which fails the lost one and runs the new one.
    let next = "j-00000000000000c2";
    submit_job(&clients, &lab, next, Some("input\n"), 60).await;
    let ended = eventually(Duration::from_secs(90), || async {
        let lost = job_row(&clients, &lab.table, lost).await?;
        let next = job_row(&clients, &lab.table, next).await?;
        (lost.status.is_final() && next.status.is_final()).then_some((lost, next))
    })
    .await
    .expect("both jobs end");
    assert_eq!(ended.0.status, JobStatus::Failed, "{:?}", ended.0);
    assert!(
        ended
            .0
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no heartbeat")),
        "{:?}",
        ended.0
    );
    assert_eq!(ended.1.status, JobStatus::Succeeded, "{:?}", ended.1);
}
