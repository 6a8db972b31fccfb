//! A DynamoDB stream's event source mapping, run by the sandbox's agent as Lambda runs it:
//! refused while the function's role may not read the stream; then inserts (and only
//! inserts, as its filter says) reach the function in order, a record the function fails on
//! is isolated by bisecting and given up to the on-failure queue after its retry, and the
//! mapping is listed, read and deleted with Lambda's shapes.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{
    DestinationConfig, EventSourcePosition, Filter, FilterCriteria, OnFailure,
};
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::sandbox::{EdgeClients, bootstrap_zip, deploy_function, edge_clients};
use serde_json::{Value, json};

use crate::common::eventually;

/// A call to SQS on the sandbox with the query protocol (the tests have no SQS SDK): the
/// operator's key in a credential scope that names the service, as moto routes by it.
async fn sqs(clients: &EdgeClients, form: &[(&str, &str)]) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().copied().chain([("Version", "2012-11-05")]))
        .finish();
    crate::common::http()
        .post(format!("{}/", clients.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            hybridlab_sandbox::moto::scope_authorization("sqs", "us-east-1"),
        )
        .body(body)
        .send()
        .await
        .expect("SQS answers")
        .text()
        .await
        .expect("a body")
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_mapping_filters_bisects_gives_up_to_its_queue_and_keeps_order() {
    let clients = edge_clients().await;
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    let function = deploy_function(&clients, "stream", zip, 5, &[]).await;
    let table = unique_name("jobs");
    let stream = clients
        .dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("a key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
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
        .expect("the table")
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .expect("a stream ARN")
        .to_owned();
    let queue = unique_name("failures");
    let created = sqs(
        &clients,
        &[("Action", "CreateQueue"), ("QueueName", &queue)],
    )
    .await;
    let queue_url = between(&created, "<QueueUrl>", "</QueueUrl>")
        .expect("a queue URL")
        .to_owned();
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:{}:{queue}",
        hybridlab_sandbox::SANDBOX_ACCOUNT
    );

    let create = || {
        clients
            .lambda
            .create_event_source_mapping()
            .function_name(&function)
            .event_source_arn(&stream)
            .starting_position(EventSourcePosition::TrimHorizon)
            .batch_size(10)
            .maximum_batching_window_in_seconds(1)
            .filter_criteria(
                FilterCriteria::builder()
                    .filters(
                        Filter::builder()
                            .pattern(r#"{"eventName": ["INSERT"]}"#)
                            .build(),
                    )
                    .build(),
            )
            .maximum_retry_attempts(1)
            .bisect_batch_on_function_error(true)
            .destination_config(
                DestinationConfig::builder()
                    .on_failure(OnFailure::builder().destination(&queue_arn).build())
                    .build(),
            )
            .send()
    };
    // Lambda reads the stream with the function's role: without the permissions, no mapping.
    let refused = create()
        .await
        .expect_err("the role may not read the stream");
    assert_eq!(
        refused.code(),
        Some("InvalidParameterValueException"),
        "{refused:?}"
    );
    assert!(
        refused
            .message()
            .is_some_and(|m| m.starts_with(&format!("Cannot access stream {stream}"))),
        "{refused:?}"
    );
    let role = clients.function_role_name(&function).await;
    clients
        .iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("stream")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"], "Resource": stream},
                {"Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}
            ]})
            .to_string(),
        )
        .send()
        .await
        .expect("the policy");
    let mapping = create().await.expect("the mapping is created");
    let uuid = mapping.uuid().expect("a UUID").to_owned();
    assert_eq!(mapping.state(), Some("Creating"));
    assert_eq!(mapping.maximum_retry_attempts(), Some(1));

    // Five jobs, the third one failing; then a change to the first, which the filter drops.
    for n in 1..=5 {
        let mut put = clients
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("id", AttributeValue::S(format!("j-{n}")));
        if n == 3 {
            put = put.item("fail", AttributeValue::Bool(true));
        }
        put.send().await.expect("a job");
    }
    clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S("j-1".into()))
        .item("status", AttributeValue::S("LAUNCHING".into()))
        .send()
        .await
        .expect("a change");

    let group = format!("/aws/lambda/{function}");
    let given_up = eventually(Duration::from_secs(30), || async {
        let received = sqs(
            &clients,
            &[
                ("Action", "ReceiveMessage"),
                ("QueueUrl", &queue_url),
                ("WaitTimeSeconds", "1"),
            ],
        )
        .await;
        let body = between(&received, "<Body>", "</Body>")?
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        serde_json::from_str::<Value>(&body).ok()
    })
    .await
    .expect("the failing record reaches the on-failure queue");
    let info = &given_up["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{given_up}");
    assert_eq!(info["streamArn"], stream.as_str());
    assert_eq!(
        given_up["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert!(
        given_up["responseContext"]["functionError"]
            .as_str()
            .is_some_and(|e| e.contains("record j-3 fails on purpose")),
        "{given_up}"
    );

    let delivered = eventually(Duration::from_secs(20), || async {
        let messages = clients.log_messages(&group).await;
        let records: Vec<String> = messages
            .iter()
            .filter(|m| m.starts_with("ddb record"))
            .cloned()
            .collect();
        records
            .iter()
            .any(|m| m == "ddb record j-5 INSERT")
            .then_some(records)
    })
    .await
    .expect("the jobs after the failing one are delivered");
    assert!(
        delivered.iter().all(|m| m.ends_with(" INSERT")),
        "only inserts pass the filter: {delivered:?}"
    );
    // The last successful delivery of each job, in order: the failing one never succeeded.
    let first_seen = |id: &str| {
        delivered
            .iter()
            .position(|m| m == &format!("ddb record {id} INSERT"))
    };
    let order: Vec<usize> = ["j-1", "j-2", "j-4", "j-5"]
        .iter()
        .map(|id| first_seen(id).unwrap_or_else(|| panic!("{id} delivered: {delivered:?}")))
        .collect();
    assert!(
        order.windows(2).all(|pair| pair[0] < pair[1]),
        "{delivered:?}"
    );

    // Read, listed, updated and deleted with Lambda's shapes.
    let read = clients
        .lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect("GetEventSourceMapping");
    assert_eq!(read.state(), Some("Enabled"));
    assert_eq!(read.event_source_arn(), Some(stream.as_str()));
    let listed = clients
        .lambda
        .list_event_source_mappings()
        .function_name(&function)
        .send()
        .await
        .expect("ListEventSourceMappings");
    assert!(
        listed
            .event_source_mappings()
            .iter()
            .any(|m| m.uuid() == Some(uuid.as_str()))
    );
    let disabled = clients
        .lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(false)
        .send()
        .await
        .expect("UpdateEventSourceMapping");
    assert_eq!(disabled.state(), Some("Updating"));
    let deleted = clients
        .lambda
        .delete_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect("DeleteEventSourceMapping");
    assert_eq!(deleted.state(), Some("Deleting"));
    let gone = clients
        .lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect_err("a deleted mapping");
    assert_eq!(gone.code(), Some("ResourceNotFoundException"), "{gone:?}");
}
