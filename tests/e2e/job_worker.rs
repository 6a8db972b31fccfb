//! A job worker on the sandbox, with the test in the launcher's place: an instance launched
//! for a LAUNCHING job (with its worker role, and the job in its user-data) fetches the worker,
//! which moves the job to RUNNING once its instance is attached, appends the text to the
//! input, writes the output and ends the job SUCCEEDED; then the instance terminates itself.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataOptionsRequest, InstanceType,
    ResourceType, ShutdownBehavior, Tag, TagSpecification,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::sandbox::{EdgeClients, build_binary, edge_clients};
use hybridlab_wire::job::{self, Job, JobEvent, JobKind, JobStatus};
use hybridlab_wire::job_item;
use hybridlab_wire::launch::WorkerLaunch;
use hybridlab_wire::tags::{ROLE_JOB_WORKER, ROLE_TAG};
use serde_json::json;

use crate::common::eventually;
use crate::sandbox_ec2::server_profile;

async fn job_row(clients: &EdgeClients, table: &str, id: &str) -> Option<Job> {
    let item = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(job::JOB_KEY_ATTRIBUTE, AttributeValue::S(id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .ok()?
        .item?;
    job_item::from_item(&item).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_its_append_text_job_to_succeeded_and_its_instance_terminates() {
    let clients = edge_clients().await;
    let table = unique_name("jobs");
    let bucket = unique_name("jobs");
    let artifacts = unique_name("artifacts");
    clients
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
        .send()
        .await
        .expect("the jobs table");
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
    let profile = server_profile(&clients).await;
    let table_arn = format!(
        "arn:aws:dynamodb:us-east-1:{}:table/{table}",
        hybridlab_sandbox::SANDBOX_ACCOUNT
    );
    clients
        .iam
        .put_role_policy()
        .role_name(&profile.name)
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
    let image = clients
        .ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .expect("moto lists images")
        .images()
        .first()
        .and_then(|image| image.image_id().map(str::to_owned))
        .expect("an Amazon image");
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
    job_item::attach_instance(&instance)
        .apply(
            clients
                .dynamodb
                .update_item()
                .table_name(&table)
                .key(job::JOB_KEY_ATTRIBUTE, AttributeValue::S(job_id.into())),
        )
        .send()
        .await
        .expect("the instance is attached");

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

    let terminated = eventually(Duration::from_secs(30), || async {
        let state = clients
            .ec2
            .describe_instances()
            .instance_ids(&instance)
            .send()
            .await
            .ok()?
            .reservations()
            .first()?
            .instances()
            .first()?
            .state()?
            .name()?
            .as_str()
            .to_owned();
        matches!(state.as_str(), "shutting-down" | "terminated").then_some(())
    })
    .await;
    let console = crate::sandbox_principals::console_output(&clients, &instance)
        .await
        .unwrap_or_default();
    assert!(
        terminated.is_some(),
        "the worker's instance terminated: {console}"
    );
    assert!(
        console.contains(&format!("job {job_id} SUCCEEDED")),
        "{console}"
    );
}
