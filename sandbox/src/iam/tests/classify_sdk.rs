//! Requests as the AWS SDK for Rust sends them, classified as AWS authorises them.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::sdk::{Clients, Sent};
use super::{ACCOUNT, REGION};
use crate::iam::request::{Classification, Lookups, NoLookups, SigningScheme, classify};
use crate::iam::{Authorization, Service};

const ROLE_PATH_ARN: &str = "arn:aws:iam::123456789012:role/hybridlab/hybridlab-server-abcd1234";

/// What the sandbox's state would tell: the server profile's role, the roles' paths.
pub(crate) struct StackLookups;

impl Lookups for StackLookups {
    fn instance_profile_role(&self, profile: &str) -> Option<String> {
        profile
            .ends_with("hybridlab-server-abcd1234")
            .then(|| ROLE_PATH_ARN.to_owned())
    }
    fn role_arn(&self, name: &str) -> Option<String> {
        name.starts_with("hybridlab-")
            .then(|| format!("arn:aws:iam::{ACCOUNT}:role/hybridlab/{name}"))
    }
    fn secret_arn(&self, secret_id: &str) -> Option<String> {
        (secret_id == "hybridlab-server-abcd1234").then(|| {
            format!(
                "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:hybridlab-server-abcd1234-AbCdEf"
            )
        })
    }
}

pub(crate) fn known(sent: &Sent, lookups: &dyn Lookups) -> Authorization {
    match classify(&sent.parts(), ACCOUNT, REGION, lookups) {
        Classification::Known(authorization) => authorization,
        Classification::Unknown { reason, .. } => panic!("not classified: {reason}\n{sent:#?}"),
    }
}

/// The (action, resource) pairs of a request.
fn pairs(authorization: &Authorization) -> Vec<(String, String)> {
    authorization
        .checks
        .iter()
        .map(|check| (check.action.clone(), check.resource.as_str().to_owned()))
        .collect()
}

fn expect(
    sent: &Sent,
    service: Service,
    operation: &str,
    checks: &[(&str, &str)],
) -> Authorization {
    let authorization = known(sent, &StackLookups);
    assert_eq!(authorization.service, service, "{sent:#?}");
    assert_eq!(authorization.operation, operation, "{sent:#?}");
    let want: Vec<(String, String)> = checks
        .iter()
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect();
    assert_eq!(pairs(&authorization), want, "{operation}");
    let credential = authorization.credential.as_ref().expect("signed");
    assert_eq!(credential.access_key_id, "ASIAEXAMPLE");
    assert_eq!(credential.session_token.as_deref(), Some("session-token"));
    authorization
}

const UPLOADS: &str = "hybridlab-uploads-abcd1234";
const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/hybridlab-images-abcd1234";

#[tokio::test]
async fn s3_requests_name_their_object_or_bucket_and_the_subresource_action() {
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let object = "arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/0001/my cat+1.jpg";
    let key = "uploads/0001/my cat+1.jpg";

    let _ =
        c.s3.put_object()
            .bucket(UPLOADS)
            .key(key)
            .body(ByteStream::from_static(b"jpeg"))
            .send()
            .await;
    let put = expect(
        &c.take(),
        Service::S3,
        "PutObject",
        &[("s3:PutObject", object)],
    );
    let check = &put.checks[0];
    assert_eq!(
        check.key("s3:authType"),
        Some(&["REST-HEADER".to_owned()][..])
    );
    assert_eq!(
        check.key("s3:signatureversion"),
        Some(&["AWS4-HMAC-SHA256".to_owned()][..])
    );
    assert_eq!(
        check.key("aws:RequestedRegion"),
        Some(&["us-east-1".to_owned()][..])
    );

    let _ =
        c.s3.put_object()
            .bucket(UPLOADS)
            .key(key)
            .tagging("stage=raw&owner=ana")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
    let tagged = expect(
        &c.take(),
        Service::S3,
        "PutObject",
        &[("s3:PutObject", object), ("s3:PutObjectTagging", object)],
    );
    assert_eq!(
        tagged.checks[0].key("s3:RequestObjectTagKeys"),
        Some(&["stage".to_owned(), "owner".to_owned()][..])
    );

    let _ = c.s3.get_object().bucket(UPLOADS).key(key).send().await;
    let get = expect(
        &c.take(),
        Service::S3,
        "GetObject",
        &[("s3:GetObject", object)],
    );
    let missing = get
        .when_missing
        .expect("GetObject says what a missing key needs");
    assert_eq!(
        (missing.action.as_str(), missing.resource.as_str()),
        ("s3:ListBucket", "arn:aws:s3:::hybridlab-uploads-abcd1234")
    );

    let _ =
        c.s3.get_object()
            .bucket(UPLOADS)
            .key(key)
            .version_id("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
            .send()
            .await;
    let version = expect(
        &c.take(),
        Service::S3,
        "GetObject",
        &[("s3:GetObjectVersion", object)],
    );
    assert_eq!(
        version.checks[0].key("s3:versionid"),
        Some(&["3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".to_owned()][..])
    );

    let _ =
        c.s3.head_object()
            .bucket(UPLOADS)
            .key(key)
            .version_id("v1")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "HeadObject",
        &[("s3:GetObjectVersion", object)],
    );

    let _ = c.s3.delete_object().bucket(UPLOADS).key(key).send().await;
    expect(
        &c.take(),
        Service::S3,
        "DeleteObject",
        &[("s3:DeleteObject", object)],
    );
    let _ =
        c.s3.delete_object()
            .bucket(UPLOADS)
            .key(key)
            .version_id("v1")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "DeleteObject",
        &[("s3:DeleteObjectVersion", object)],
    );

    let _ =
        c.s3.list_objects_v2()
            .bucket(UPLOADS)
            .prefix("uploads/")
            .max_keys(10)
            .send()
            .await;
    let list = expect(
        &c.take(),
        Service::S3,
        "ListObjectsV2",
        &[("s3:ListBucket", "arn:aws:s3:::hybridlab-uploads-abcd1234")],
    );
    assert_eq!(
        list.checks[0].key("s3:prefix"),
        Some(&["uploads/".to_owned()][..])
    );
    assert_eq!(
        list.checks[0].key("s3:max-keys"),
        Some(&["10".to_owned()][..])
    );
    let _ = c.s3.list_object_versions().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "ListObjectVersions",
        &[(
            "s3:ListBucketVersions",
            "arn:aws:s3:::hybridlab-uploads-abcd1234",
        )],
    );
    let _ = c.s3.head_bucket().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "HeadBucket",
        &[("s3:ListBucket", "arn:aws:s3:::hybridlab-uploads-abcd1234")],
    );
    let _ = c.s3.list_buckets().send().await;
    expect(
        &c.take(),
        Service::S3,
        "ListBuckets",
        &[("s3:ListAllMyBuckets", "arn:aws:s3:::*")],
    );

    // Bucket sub-resources.
    let bucket = "arn:aws:s3:::hybridlab-uploads-abcd1234";
    let _ = c.s3.get_bucket_versioning().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "GetBucketVersioning",
        &[("s3:GetBucketVersioning", bucket)],
    );
    let _ =
        c.s3.get_bucket_notification_configuration()
            .bucket(UPLOADS)
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "GetBucketNotificationConfiguration",
        &[("s3:GetBucketNotification", bucket)],
    );
    let _ = c.s3.get_bucket_policy().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "GetBucketPolicy",
        &[("s3:GetBucketPolicy", bucket)],
    );
    let _ = c.s3.delete_bucket_cors().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "DeleteBucketCors",
        &[("s3:PutBucketCORS", bucket)],
    );
    let _ = c.s3.get_bucket_acl().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "GetBucketAcl",
        &[("s3:GetBucketAcl", bucket)],
    );
    let _ =
        c.s3.get_object_tagging()
            .bucket(UPLOADS)
            .key(key)
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "GetObjectTagging",
        &[("s3:GetObjectTagging", object)],
    );
    let _ = c.s3.delete_bucket().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "DeleteBucket",
        &[("s3:DeleteBucket", bucket)],
    );
}

#[tokio::test]
async fn s3_copies_multipart_uploads_and_batch_deletes_need_every_action_aws_checks() {
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let _ =
        c.s3.copy_object()
            .bucket("hybridlab-processed-abcd1234")
            .key("images/0001/small.jpg")
            .copy_source("hybridlab-uploads-abcd1234/uploads/0001/my%20cat.jpg?versionId=v7")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "CopyObject",
        &[
            (
                "s3:PutObject",
                "arn:aws:s3:::hybridlab-processed-abcd1234/images/0001/small.jpg",
            ),
            (
                "s3:GetObjectVersion",
                "arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/0001/my cat.jpg",
            ),
        ],
    );

    let object = "arn:aws:s3:::hybridlab-uploads-abcd1234/big.bin";
    let _ =
        c.s3.create_multipart_upload()
            .bucket(UPLOADS)
            .key("big.bin")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "CreateMultipartUpload",
        &[("s3:PutObject", object)],
    );
    let _ =
        c.s3.upload_part()
            .bucket(UPLOADS)
            .key("big.bin")
            .upload_id("u1")
            .part_number(1)
            .body(ByteStream::from_static(b"part"))
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "UploadPart",
        &[("s3:PutObject", object)],
    );
    let _ =
        c.s3.list_parts()
            .bucket(UPLOADS)
            .key("big.bin")
            .upload_id("u1")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "ListParts",
        &[("s3:ListMultipartUploadParts", object)],
    );
    let _ =
        c.s3.complete_multipart_upload()
            .bucket(UPLOADS)
            .key("big.bin")
            .upload_id("u1")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "CompleteMultipartUpload",
        &[("s3:PutObject", object)],
    );
    let _ =
        c.s3.abort_multipart_upload()
            .bucket(UPLOADS)
            .key("big.bin")
            .upload_id("u1")
            .send()
            .await;
    expect(
        &c.take(),
        Service::S3,
        "AbortMultipartUpload",
        &[("s3:AbortMultipartUpload", object)],
    );
    let _ = c.s3.list_multipart_uploads().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "ListMultipartUploads",
        &[(
            "s3:ListBucketMultipartUploads",
            "arn:aws:s3:::hybridlab-uploads-abcd1234",
        )],
    );

    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let delete = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("images/0001/small.jpg")
                .build()
                .expect("a key"),
        )
        .objects(
            ObjectIdentifier::builder()
                .key("images/0001/<odd> & key")
                .version_id("v2")
                .build()
                .expect("a key"),
        )
        .build()
        .expect("objects");
    let _ =
        c.s3.delete_objects()
            .bucket("hybridlab-processed-abcd1234")
            .delete(delete)
            .send()
            .await;
    let sent = c.take();
    assert!(
        crate::iam::body_needed(&sent.parts()),
        "DeleteObjects needs its body"
    );
    expect(
        &sent,
        Service::S3,
        "DeleteObjects",
        &[
            (
                "s3:DeleteObject",
                "arn:aws:s3:::hybridlab-processed-abcd1234/images/0001/small.jpg",
            ),
            (
                "s3:DeleteObjectVersion",
                "arn:aws:s3:::hybridlab-processed-abcd1234/images/0001/<odd> & key",
            ),
        ],
    );
    let mut without_body = sent.clone();
    without_body.body.clear();
    assert!(matches!(
        classify(&without_body.parts(), ACCOUNT, REGION, &NoLookups),
        Classification::Unknown { .. }
    ));
}

#[tokio::test]
async fn presigned_and_virtual_hosted_s3_requests_name_the_signer_and_the_object() {
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let presigned =
        c.s3.put_object()
            .bucket(UPLOADS)
            .key("uploads/0002/dog.jpg")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("a duration"))
            .await
            .expect("presigned");
    let headers: Vec<(&str, &str)> = presigned.headers().collect();
    let sent = Sent::from_uri(presigned.method(), presigned.uri(), &headers, b"");
    let put = expect(
        &sent,
        Service::S3,
        "PutObject",
        &[(
            "s3:PutObject",
            "arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/0002/dog.jpg",
        )],
    );
    let credential = put.credential.expect("presigned by someone");
    assert_eq!(credential.scheme, SigningScheme::SigV4Query);
    assert_eq!(credential.scope_service.as_deref(), Some("s3"));
    assert_eq!(
        put.checks[0].key("s3:authType"),
        Some(&["REST-QUERY-STRING".to_owned()][..])
    );

    // boto3's SigV2 presigned PUT (FIELD-NOTES): no credential scope, `AWSAccessKeyId`.
    let sigv2 = Sent::from_uri(
        "PUT",
        "http://127.0.0.1:4566/hybridlab-uploads-abcd1234/uploads/0003/a%2Bb.jpg?AWSAccessKeyId=ASIAEXAMPLE&Signature=abc%3D&Expires=1893456000&x-amz-security-token=session-token",
        &[],
        b"jpeg",
    );
    let put = expect(
        &sigv2,
        Service::S3,
        "PutObject",
        &[(
            "s3:PutObject",
            "arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/0003/a+b.jpg",
        )],
    );
    assert_eq!(
        put.credential.as_ref().map(|c| c.scheme),
        Some(SigningScheme::SigV2Query)
    );
    assert_eq!(
        put.checks[0].key("s3:signatureversion"),
        Some(&["AWS".to_owned()][..])
    );
    // A SigV2 header (`AWS AKID:signature`).
    let header = Sent::from_uri(
        "GET",
        "http://127.0.0.1:4566/hybridlab-uploads-abcd1234/k",
        &[
            ("authorization", "AWS ASIAEXAMPLE:c2lnbmF0dXJl"),
            ("x-amz-security-token", "session-token"),
        ],
        b"",
    );
    let get = expect(
        &header,
        Service::S3,
        "GetObject",
        &[("s3:GetObject", "arn:aws:s3:::hybridlab-uploads-abcd1234/k")],
    );
    assert_eq!(
        get.credential.as_ref().map(|c| c.scheme),
        Some(SigningScheme::SigV2Header)
    );

    let _ = c
        .s3_virtual
        .get_object()
        .bucket(UPLOADS)
        .key("uploads/0001/cat.jpg")
        .send()
        .await;
    let sent = c.take();
    assert!(
        sent.headers["host"]
            .to_str()
            .expect("text")
            .starts_with("hybridlab-uploads-abcd1234.s3."),
        "virtual-hosted: {sent:?}"
    );
    expect(
        &sent,
        Service::S3,
        "GetObject",
        &[(
            "s3:GetObject",
            "arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/0001/cat.jpg",
        )],
    );
    let _ = c.s3_virtual.list_objects_v2().bucket(UPLOADS).send().await;
    expect(
        &c.take(),
        Service::S3,
        "ListObjectsV2",
        &[("s3:ListBucket", "arn:aws:s3:::hybridlab-uploads-abcd1234")],
    );
}

#[tokio::test]
async fn dynamodb_requests_name_tables_indexes_and_each_item_of_a_batch() {
    use aws_sdk_dynamodb::types::{
        AttributeValue, ConditionCheck, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
    };
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let table = "hybridlab-images-abcd1234";
    let id = || AttributeValue::S("0001".into());
    let _ = c
        .dynamodb
        .put_item()
        .table_name(table)
        .item("id", id())
        .send()
        .await;
    expect(
        &c.take(),
        Service::DynamoDb,
        "PutItem",
        &[("dynamodb:PutItem", TABLE_ARN)],
    );
    let _ = c
        .dynamodb
        .update_item()
        .table_name(table)
        .key("id", id())
        .update_expression("SET #s = :s")
        .send()
        .await;
    expect(
        &c.take(),
        Service::DynamoDb,
        "UpdateItem",
        &[("dynamodb:UpdateItem", TABLE_ARN)],
    );
    let _ = c
        .dynamodb
        .get_item()
        .table_name(table)
        .key("id", id())
        .send()
        .await;
    expect(
        &c.take(),
        Service::DynamoDb,
        "GetItem",
        &[("dynamodb:GetItem", TABLE_ARN)],
    );
    let _ = c.dynamodb.scan().table_name(table).send().await;
    expect(
        &c.take(),
        Service::DynamoDb,
        "Scan",
        &[("dynamodb:Scan", TABLE_ARN)],
    );
    let _ = c
        .dynamodb
        .query()
        .table_name(table)
        .index_name("by-status")
        .key_condition_expression("#s = :s")
        .select(aws_sdk_dynamodb::types::Select::AllProjectedAttributes)
        .send()
        .await;
    let query = expect(
        &c.take(),
        Service::DynamoDb,
        "Query",
        &[("dynamodb:Query", &format!("{TABLE_ARN}/index/by-status"))],
    );
    assert_eq!(
        query.checks[0].key("dynamodb:Select"),
        Some(&["ALL_PROJECTED_ATTRIBUTES".to_owned()][..])
    );
    let write = |t: &str| {
        (
            t.to_owned(),
            vec![
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .item("id", id())
                            .build()
                            .expect("item"),
                    )
                    .build(),
            ],
        )
    };
    let _ = c
        .dynamodb
        .batch_write_item()
        .set_request_items(Some([write(table), write("other")].into_iter().collect()))
        .send()
        .await;
    let batch = known(&c.take(), &NoLookups);
    let mut resources: Vec<&str> = batch.checks.iter().map(|c| c.resource.as_str()).collect();
    resources.sort();
    assert_eq!(
        resources,
        vec![
            TABLE_ARN,
            "arn:aws:dynamodb:us-east-1:123456789012:table/other"
        ]
    );
    assert!(
        batch
            .checks
            .iter()
            .all(|c| c.action == "dynamodb:BatchWriteItem")
    );
    let _ = c
        .dynamodb
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .item("id", id())
                        .build()
                        .expect("put"),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(table)
                        .key("id", id())
                        .update_expression("SET a = :a")
                        .build()
                        .expect("update"),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("other")
                        .key("id", id())
                        .condition_expression("attribute_exists(id)")
                        .build()
                        .expect("check"),
                )
                .build(),
        )
        .send()
        .await;
    expect(
        &c.take(),
        Service::DynamoDb,
        "TransactWriteItems",
        &[
            ("dynamodb:PutItem", TABLE_ARN),
            ("dynamodb:UpdateItem", TABLE_ARN),
            (
                "dynamodb:ConditionCheckItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/other",
            ),
        ],
    );
    let _ = c.dynamodb.list_tables().send().await;
    expect(
        &c.take(),
        Service::DynamoDb,
        "ListTables",
        &[("dynamodb:ListTables", "*")],
    );
}

#[tokio::test]
async fn logs_requests_name_the_group_or_stream_as_aws_refusals_do() {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let group = "/aws/lambda/hybridlab-proxy-abcd1234";
    let stream = "2026/01/01/[$LATEST]0123456789abcdef";
    let stream_arn =
        format!("arn:aws:logs:us-east-1:123456789012:log-group:{group}:log-stream:{stream}");
    let _ = c
        .logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    expect(
        &c.take(),
        Service::Logs,
        "CreateLogStream",
        &[("logs:CreateLogStream", &stream_arn)],
    );
    let event = InputLogEvent::builder()
        .timestamp(1)
        .message("hello")
        .build()
        .expect("event");
    let _ = c
        .logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .log_events(event)
        .send()
        .await;
    expect(
        &c.take(),
        Service::Logs,
        "PutLogEvents",
        &[("logs:PutLogEvents", &stream_arn)],
    );
    let _ = c
        .logs
        .describe_log_streams()
        .log_group_name(group)
        .send()
        .await;
    expect(
        &c.take(),
        Service::Logs,
        "DescribeLogStreams",
        &[(
            "logs:DescribeLogStreams",
            &format!("arn:aws:logs:us-east-1:123456789012:log-group:{group}:log-stream:"),
        )],
    );
    let _ = c
        .logs
        .filter_log_events()
        .log_group_identifier(format!(
            "arn:aws:logs:us-east-1:123456789012:log-group:{group}"
        ))
        .send()
        .await;
    expect(
        &c.take(),
        Service::Logs,
        "FilterLogEvents",
        &[(
            "logs:FilterLogEvents",
            &format!("arn:aws:logs:us-east-1:123456789012:log-group:{group}:log-stream:"),
        )],
    );
    let _ = c.logs.describe_log_groups().send().await;
    expect(
        &c.take(),
        Service::Logs,
        "DescribeLogGroups",
        &[(
            "logs:DescribeLogGroups",
            "arn:aws:logs:us-east-1:123456789012:log-group::log-stream:",
        )],
    );
}

#[tokio::test]
async fn lambda_requests_name_the_function_and_the_role_passed_to_it() {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{FunctionCode, Runtime};
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let function = "arn:aws:lambda:us-east-1:123456789012:function:hybridlab-proxy-abcd1234";
    let _ = c
        .lambda
        .invoke()
        .function_name("hybridlab-proxy-abcd1234")
        .payload(Blob::new("{}"))
        .send()
        .await;
    let sent = c.take();
    assert!(
        !crate::iam::body_needed(&sent.parts()),
        "Invoke's payload is not needed"
    );
    expect(
        &sent,
        Service::Lambda,
        "Invoke",
        &[("lambda:InvokeFunction", function)],
    );
    let _ = c
        .lambda
        .invoke()
        .function_name(function)
        .qualifier("live")
        .send()
        .await;
    expect(
        &c.take(),
        Service::Lambda,
        "Invoke",
        &[("lambda:InvokeFunction", &format!("{function}:live"))],
    );

    let _ = c
        .lambda
        .create_function()
        .function_name("hybridlab-proxy-abcd1234")
        .role("arn:aws:iam::123456789012:role/hybridlab/hybridlab-lambda-abcd1234")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(b"PK".to_vec()))
                .build(),
        )
        .tags("hybridlab:stack", "abcd1234")
        .send()
        .await;
    let sent = c.take();
    assert!(crate::iam::body_needed(&sent.parts()));
    let create = expect(
        &sent,
        Service::Lambda,
        "CreateFunction",
        &[
            ("lambda:CreateFunction", function),
            (
                "iam:PassRole",
                "arn:aws:iam::123456789012:role/hybridlab/hybridlab-lambda-abcd1234",
            ),
        ],
    );
    assert_eq!(
        create.checks[0].key("aws:RequestTag/hybridlab:stack"),
        Some(&["abcd1234".to_owned()][..])
    );
    assert_eq!(
        create.checks[1].key("iam:PassedToService"),
        Some(&["lambda.amazonaws.com".to_owned()][..])
    );

    let _ = c
        .lambda
        .get_function()
        .function_name("hybridlab-proxy-abcd1234")
        .send()
        .await;
    expect(
        &c.take(),
        Service::Lambda,
        "GetFunction",
        &[("lambda:GetFunction", function)],
    );
    let _ = c
        .lambda
        .get_function_configuration()
        .function_name("hybridlab-proxy-abcd1234")
        .send()
        .await;
    expect(
        &c.take(),
        Service::Lambda,
        "GetFunctionConfiguration",
        &[("lambda:GetFunctionConfiguration", function)],
    );
    let _ = c
        .lambda
        .update_function_configuration()
        .function_name("hybridlab-proxy-abcd1234")
        .timeout(30)
        .send()
        .await;
    expect(
        &c.take(),
        Service::Lambda,
        "UpdateFunctionConfiguration",
        &[("lambda:UpdateFunctionConfiguration", function)],
    );
    let _ = c
        .lambda
        .update_function_code()
        .function_name("hybridlab-proxy-abcd1234")
        .zip_file(Blob::new(b"PK".to_vec()))
        .send()
        .await;
    expect(
        &c.take(),
        Service::Lambda,
        "UpdateFunctionCode",
        &[("lambda:UpdateFunctionCode", function)],
    );
    let _ = c
        .lambda
        .add_permission()
        .function_name("hybridlab-resizer-abcd1234")
        .statement_id("uploads")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn("arn:aws:s3:::hybridlab-uploads-abcd1234")
        .source_account(ACCOUNT)
        .send()
        .await;
    let permission = expect(
        &c.take(),
        Service::Lambda,
        "AddPermission",
        &[(
            "lambda:AddPermission",
            "arn:aws:lambda:us-east-1:123456789012:function:hybridlab-resizer-abcd1234",
        )],
    );
    assert_eq!(
        permission.checks[0].key("lambda:Principal"),
        Some(&["s3.amazonaws.com".to_owned()][..])
    );
    let _ = c.lambda.list_functions().send().await;
    expect(
        &c.take(),
        Service::Lambda,
        "ListFunctions",
        &[("lambda:ListFunctions", "*")],
    );
    let _ = c
        .lambda
        .delete_function()
        .function_name("hybridlab-proxy-abcd1234")
        .send()
        .await;
    expect(
        &c.take(),
        Service::Lambda,
        "DeleteFunction",
        &[("lambda:DeleteFunction", function)],
    );
}

#[tokio::test]
async fn ec2_launches_need_every_resource_tags_on_create_and_the_profiles_role() {
    use aws_sdk_ec2::types::{
        IamInstanceProfileSpecification, InstanceType, ResourceType, Tag, TagSpecification,
    };
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(
            Tag::builder()
                .key("hybridlab:stack")
                .value("abcd1234")
                .build(),
        )
        .build();
    let _ = c
        .ec2
        .run_instances()
        .image_id("ami-0123456789abcdef0")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id("subnet-0abc")
        .security_group_ids("sg-0abc")
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name("hybridlab-server-abcd1234")
                .build(),
        )
        .tag_specifications(tags)
        .send()
        .await;
    let run = expect(
        &c.take(),
        Service::Ec2,
        "RunInstances",
        &[
            (
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:123456789012:instance/*",
            ),
            (
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:123456789012:volume/*",
            ),
            (
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:123456789012:network-interface/*",
            ),
            (
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0",
            ),
            (
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0abc",
            ),
            (
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0abc",
            ),
            (
                "ec2:CreateTags",
                "arn:aws:ec2:us-east-1:123456789012:instance/*",
            ),
            ("iam:PassRole", ROLE_PATH_ARN),
        ],
    );
    assert_eq!(
        run.checks[0].key("ec2:InstanceType"),
        Some(&["t3.micro".to_owned()][..])
    );
    assert_eq!(
        run.checks[0].key("aws:RequestTag/hybridlab:stack"),
        Some(&["abcd1234".to_owned()][..])
    );
    assert_eq!(
        run.checks[6].key("ec2:CreateAction"),
        Some(&["RunInstances".to_owned()][..])
    );
    assert_eq!(
        run.checks[7].key("iam:PassedToService"),
        Some(&["ec2.amazonaws.com".to_owned()][..])
    );

    // Without lookups, the profile's role is some role of the account.
    let _ = c
        .ec2
        .run_instances()
        .image_id("ami-1")
        .min_count(1)
        .max_count(1)
        .iam_instance_profile(IamInstanceProfileSpecification::builder().name("p").build())
        .send()
        .await;
    let unknown = known(&c.take(), &NoLookups);
    let pass = unknown.checks.last().expect("a PassRole");
    assert_eq!(pass.action, "iam:PassRole");
    assert!(!pass.resource.is_exact());
    // The default subnet and security group, whichever they are.
    assert!(unknown.checks.iter().any(|c| c.resource.as_str()
        == "arn:aws:ec2:us-east-1:123456789012:subnet/*"
        && !c.resource.is_exact()));

    let _ = c
        .ec2
        .terminate_instances()
        .instance_ids("i-0123")
        .instance_ids("i-0456")
        .send()
        .await;
    expect(
        &c.take(),
        Service::Ec2,
        "TerminateInstances",
        &[
            (
                "ec2:TerminateInstances",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-0123",
            ),
            (
                "ec2:TerminateInstances",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-0456",
            ),
        ],
    );
    let _ = c.ec2.describe_instances().send().await;
    expect(
        &c.take(),
        Service::Ec2,
        "DescribeInstances",
        &[("ec2:DescribeInstances", "*")],
    );
    let _ = c
        .ec2
        .create_tags()
        .resources("sg-0abc")
        .tags(Tag::builder().key("k").value("v").build())
        .send()
        .await;
    expect(
        &c.take(),
        Service::Ec2,
        "CreateTags",
        &[(
            "ec2:CreateTags",
            "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0abc",
        )],
    );
}

#[tokio::test]
async fn iam_requests_name_roles_with_their_path_and_pass_roles_added_to_profiles() {
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let _ = c
        .iam
        .get_role()
        .role_name("hybridlab-server-abcd1234")
        .send()
        .await;
    let sent = c.take();
    let get = expect(
        &sent,
        Service::Iam,
        "GetRole",
        &[("iam:GetRole", ROLE_PATH_ARN)],
    );
    assert_eq!(
        get.checks[0].resource.named_as(),
        "role hybridlab-server-abcd1234"
    );
    assert_eq!(
        get.checks[0].key("aws:RequestedRegion"),
        Some(&["us-east-1".to_owned()][..])
    );
    // Without lookups the role is matched under any path.
    let unknown = known(&sent, &NoLookups);
    assert!(!unknown.checks[0].resource.is_exact());
    assert_eq!(
        unknown.checks[0].resource.as_str(),
        "arn:aws:iam::123456789012:role/hybridlab-server-abcd1234"
    );

    let _ = c
        .iam
        .create_role()
        .role_name("web")
        .path("/hybridlab/")
        .assume_role_policy_document("{}")
        .send()
        .await;
    expect(
        &c.take(),
        Service::Iam,
        "CreateRole",
        &[(
            "iam:CreateRole",
            "arn:aws:iam::123456789012:role/hybridlab/web",
        )],
    );
    let _ = c
        .iam
        .add_role_to_instance_profile()
        .instance_profile_name("hybridlab-server-abcd1234")
        .role_name("hybridlab-server-abcd1234")
        .send()
        .await;
    let add = expect(
        &c.take(),
        Service::Iam,
        "AddRoleToInstanceProfile",
        &[
            (
                "iam:AddRoleToInstanceProfile",
                "arn:aws:iam::123456789012:instance-profile/hybridlab-server-abcd1234",
            ),
            ("iam:PassRole", ROLE_PATH_ARN),
        ],
    );
    assert!(
        !add.checks[0].resource.is_exact(),
        "the profile's path is not known"
    );
    let _ = c
        .iam
        .attach_role_policy()
        .role_name("hybridlab-server-abcd1234")
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await;
    let attach = expect(
        &c.take(),
        Service::Iam,
        "AttachRolePolicy",
        &[("iam:AttachRolePolicy", ROLE_PATH_ARN)],
    );
    assert_eq!(
        attach.checks[0].key("iam:PolicyARN"),
        Some(&["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()][..])
    );
}

/// A request as aws-sdk-apigatewayv2 1.123 sends it (recorded from that client; the sandbox's
/// tests do not build it): SigV4 for `apigateway`, a JSON body, the tagged resource's ARN
/// percent-encoded as one path segment.
fn apigateway(method: &str, path_and_query: &str, body: &str) -> Sent {
    Sent::from_uri(
        method,
        &format!("http://127.0.0.1:4566{path_and_query}"),
        &[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/apigateway/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=0f",
            ),
            ("x-amz-security-token", "session-token"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

const JOBS_API: &str = "arn:aws:apigateway:us-east-1::/apis/abc123";

#[test]
fn api_gateway_calls_are_their_http_verb_on_their_path_without_v2() {
    let route = r#"{"routeKey":"POST /jobs","target":"integrations/int1"}"#;
    let integration = r#"{"integrationType":"AWS_PROXY","integrationUri":"arn:aws:lambda:us-east-1:123456789012:function:f","payloadFormatVersion":"2.0"}"#;
    let cases = [
        ("GET", "/v2/apis", "", "GetApis", "apigateway:GET", "/apis"),
        (
            "POST",
            "/v2/apis",
            r#"{"name":"hybridlab-jobs-abcd1234","protocolType":"HTTP"}"#,
            "CreateApi",
            "apigateway:POST",
            "/apis",
        ),
        (
            "GET",
            "/v2/apis/abc123",
            "",
            "GetApi",
            "apigateway:GET",
            "/apis/abc123",
        ),
        (
            "DELETE",
            "/v2/apis/abc123",
            "",
            "DeleteApi",
            "apigateway:DELETE",
            "/apis/abc123",
        ),
        (
            "GET",
            "/v2/apis/abc123/integrations",
            "",
            "GetIntegrations",
            "apigateway:GET",
            "/apis/abc123/integrations",
        ),
        (
            "POST",
            "/v2/apis/abc123/integrations",
            integration,
            "CreateIntegration",
            "apigateway:POST",
            "/apis/abc123/integrations",
        ),
        (
            "GET",
            "/v2/apis/abc123/routes",
            "",
            "GetRoutes",
            "apigateway:GET",
            "/apis/abc123/routes",
        ),
        (
            "POST",
            "/v2/apis/abc123/routes",
            route,
            "CreateRoute",
            "apigateway:POST",
            "/apis/abc123/routes",
        ),
        (
            "PATCH",
            "/v2/apis/abc123/routes/xyz",
            r#"{"target":"integrations/int1"}"#,
            "UpdateRoute",
            "apigateway:PATCH",
            "/apis/abc123/routes/xyz",
        ),
        (
            "GET",
            "/v2/apis/abc123/stages",
            "",
            "GetStages",
            "apigateway:GET",
            "/apis/abc123/stages",
        ),
        (
            "POST",
            "/v2/apis/abc123/stages",
            r#"{"autoDeploy":true,"stageName":"$default"}"#,
            "CreateStage",
            "apigateway:POST",
            "/apis/abc123/stages",
        ),
        (
            "GET",
            "/v2/apis/abc123/stages/%24default",
            "",
            "GetStage",
            "apigateway:GET",
            "/apis/abc123/stages/$default",
        ),
        (
            "GET",
            "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fabc123",
            "",
            "GetTags",
            "apigateway:GET",
            "/tags/arn:aws:apigateway:us-east-1::/apis/abc123",
        ),
    ];
    for (method, path, body, operation, action, resource) in cases {
        let resource = format!("arn:aws:apigateway:us-east-1::{resource}");
        let authorization = expect(
            &apigateway(method, path, body),
            Service::ApiGateway,
            operation,
            &[(action, &resource)],
        );
        assert_eq!(
            authorization.checks[0].key("aws:RequestedRegion"),
            Some(&["us-east-1".to_owned()][..]),
            "{operation}"
        );
        assert_eq!(
            authorization.checks[0].key("aws:TagKeys"),
            None,
            "{operation}"
        );
    }
}

#[test]
fn api_gateway_tags_reach_the_request_and_a_tagged_stage_needs_tag_resource() {
    let stack_tag = Some(&["abcd1234".to_owned()][..]);
    let tag_keys = Some(&["hybridlab:stack".to_owned()][..]);
    let api = expect(
        &apigateway(
            "POST",
            "/v2/apis",
            r#"{"description":"d","name":"hybridlab-jobs-abcd1234","protocolType":"HTTP","tags":{"hybridlab:stack":"abcd1234"}}"#,
        ),
        Service::ApiGateway,
        "CreateApi",
        &[("apigateway:POST", "arn:aws:apigateway:us-east-1::/apis")],
    );
    assert_eq!(
        api.checks[0].key("aws:RequestTag/hybridlab:stack"),
        stack_tag
    );
    assert_eq!(api.checks[0].key("aws:TagKeys"), tag_keys);

    let stages = "arn:aws:apigateway:us-east-1::/apis/abc123/stages";
    let tagged = apigateway(
        "POST",
        "/v2/apis/abc123/stages",
        r#"{"autoDeploy":true,"stageName":"$default","tags":{"hybridlab:stack":"abcd1234"}}"#,
    );
    let stage = expect(
        &tagged,
        Service::ApiGateway,
        "CreateStage",
        &[
            ("apigateway:POST", stages),
            ("apigateway:TagResource", stages),
        ],
    );
    for check in &stage.checks {
        assert_eq!(check.key("aws:RequestTag/hybridlab:stack"), stack_tag);
        assert_eq!(check.key("aws:TagKeys"), tag_keys);
    }
    // A policy that grants the verbs but not TagResource lets the stage be made untagged only.
    let verbs = [crate::iam::Policy::from_json(
        "verbs",
        &serde_json::json!({"Statement": {"Effect": "Allow", "Action": ["apigateway:GET", "apigateway:POST"], "Resource": format!("{JOBS_API}/*")}}),
    )
    .expect("a policy")];
    let (refused, _) =
        crate::iam::first_refusal(&verbs, &stage.checks).expect("TagResource is not granted");
    assert_eq!(refused.action, "apigateway:TagResource");
    let untagged = known(
        &apigateway(
            "POST",
            "/v2/apis/abc123/stages",
            r#"{"autoDeploy":true,"stageName":"$default"}"#,
        ),
        &NoLookups,
    );
    assert_eq!(untagged.checks.len(), 1);
    assert!(crate::iam::first_refusal(&verbs, &untagged.checks).is_none());

    let tags = format!("arn:aws:apigateway:us-east-1::/tags/{JOBS_API}");
    let tag = expect(
        &apigateway(
            "POST",
            "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fabc123",
            r#"{"tags":{"team":"lab"}}"#,
        ),
        Service::ApiGateway,
        "TagResource",
        &[("apigateway:POST", &tags)],
    );
    assert_eq!(
        tag.checks[0].key("aws:RequestTag/team"),
        Some(&["lab".to_owned()][..])
    );
    let untag = expect(
        &apigateway(
            "DELETE",
            "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fabc123?tagKeys=team&tagKeys=env",
            "",
        ),
        Service::ApiGateway,
        "UntagResource",
        &[("apigateway:DELETE", &tags)],
    );
    assert_eq!(
        untag.checks[0].key("aws:TagKeys"),
        Some(&["team".to_owned(), "env".to_owned()][..])
    );
}

#[test]
fn api_gateway_data_plane_and_unknown_paths_are_not_classified() {
    // The sandbox's HTTP API data plane is `execute-api:Invoke`, never a control-plane call,
    // whatever the request is signed for.
    for (scope, service) in [
        ("apigateway", Some(Service::ApiGateway)),
        ("execute-api", None),
    ] {
        let invoke = Sent::from_uri(
            "POST",
            "http://127.0.0.1:4566/_aws/execute-api/abc123/jobs",
            &[(
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/{scope}/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )],
            br#"{"tags":{"k":"v"}}"#,
        );
        match classify(&invoke.parts(), ACCOUNT, REGION, &NoLookups) {
            Classification::Unknown {
                service: unknown,
                reason,
                ..
            } => {
                assert_eq!(unknown, service, "{reason}");
                let named = if service.is_some() {
                    "/_aws/execute-api/abc123/jobs"
                } else {
                    "`execute-api`"
                };
                assert!(reason.contains(named), "{reason}");
            }
            known => panic!("classified: {known:?}"),
        }
    }
    for (method, path) in [
        ("GET", "/v2/domainnames"),
        ("PUT", "/v2/apis/abc123/routes/xyz"),
        ("GET", "/v2/apis/abc123/routes/"),
        ("GET", "/apis"),
    ] {
        assert!(
            matches!(
                classify(
                    &apigateway(method, path, "").parts(),
                    ACCOUNT,
                    REGION,
                    &NoLookups
                ),
                Classification::Unknown {
                    service: Some(Service::ApiGateway),
                    ..
                }
            ),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn unknown_operations_are_said_to_be_unknown() {
    let c = Clients::new("ASIAEXAMPLE", None).await;
    let _ =
        c.s3.get_bucket_analytics_configuration()
            .bucket(UPLOADS)
            .id("a")
            .send()
            .await;
    let sent = c.take();
    match classify(&sent.parts(), ACCOUNT, REGION, &NoLookups) {
        Classification::Unknown {
            service,
            credential,
            reason,
        } => {
            assert_eq!(service, Some(Service::S3));
            assert_eq!(
                credential.map(|c| c.access_key_id).as_deref(),
                Some("ASIAEXAMPLE")
            );
            assert!(reason.contains("analytics"), "{reason}");
        }
        known => panic!("classified: {known:?}"),
    }
    let _ = c.ec2.allocate_address().send().await;
    assert!(matches!(
        classify(&c.take().parts(), ACCOUNT, REGION, &NoLookups),
        Classification::Unknown {
            service: Some(Service::Ec2),
            ..
        }
    ));
    let sqs = Sent::from_uri(
        "POST",
        "http://127.0.0.1:4566/",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
        )],
        b"Action=SendMessage",
    );
    assert!(matches!(
        classify(&sqs.parts(), ACCOUNT, REGION, &NoLookups),
        Classification::Unknown { service: None, .. }
    ));
}
