//! The stack's own role policies (copied from what `provision`'s `server_policy`,
//! `resizer_policy` and `lambda_policy` write for stack `abcd1234` in account 123456789012,
//! us-east-1; the sandbox does not depend on `provision`) against the calls
//! `provision/src/stack/calls.rs` lists for each program, made by the AWS SDK for Rust: each
//! role is allowed every call, and without any one statement some call is refused with the
//! error AWS sends, as the SDK reads it.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::classify_sdk::{StackLookups, known};
use super::sdk::{Clients, Seen, Sent, outcome};
use crate::iam::request::NoLookups;
use crate::iam::{
    Policy, Refused, RequestContext, Service, Verdict, evaluate, first_refusal, refusal,
};

const TABLE: &str = "hybridlab-images-abcd1234";

/// `server_policy(names, arns, pipeline: true)`.
fn server_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "FetchServerArtifacts", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": ["arn:aws:s3:::hybridlab-artifacts-abcd1234/server/*"]},
            {"Sid": "StoreImages", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
             "Resource": ["arn:aws:s3:::hybridlab-images-abcd1234/images/*"]},
            {"Sid": "ImageRows", "Effect": "Allow",
             "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
             "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/hybridlab-images-abcd1234"]},
            {"Sid": "OwnLogGroup", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
             "Resource": ["arn:aws:logs:us-east-1:123456789012:log-group:/hybridlab/abcd1234/ec2-server:*"]},
            {"Sid": "AcceptUploads", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
             "Resource": ["arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/*"]},
            {"Sid": "LinkVariants", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": ["arn:aws:s3:::hybridlab-processed-abcd1234/images/*"]}
        ]
    })
}

/// `resizer_policy(names, arns)`.
fn resizer_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadUploads", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": ["arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/*"]},
            {"Sid": "TellMissingUploads", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": ["arn:aws:s3:::hybridlab-uploads-abcd1234"]},
            {"Sid": "WriteVariants", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
             "Resource": ["arn:aws:s3:::hybridlab-processed-abcd1234/images/*"]},
            {"Sid": "RowStatus", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
             "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/hybridlab-images-abcd1234"]},
            {"Sid": "OwnLogGroup", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/hybridlab-resizer-abcd1234:*"]}
        ]
    })
}

/// `lambda_policy(names, arns)`: the proxy's role.
fn proxy_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/hybridlab-proxy-abcd1234:*"]
        }]
    })
}

type Make = fn(Clients) -> BoxFuture<'static, Option<Seen>>;

/// One line of `CALLS`: what it is and the SDK call that makes it.
struct Call {
    what: &'static str,
    make: Make,
    /// The key read may be gone (the resizer reads uploads deleted since their event): S3's
    /// answer then depends on `s3:ListBucket`.
    may_be_missing: bool,
}

const fn call(what: &'static str, make: Make) -> Call {
    Call {
        what,
        make,
        may_be_missing: false,
    }
}

fn id() -> AttributeValue {
    AttributeValue::S("0001".into())
}

fn event() -> InputLogEvent {
    InputLogEvent::builder()
        .timestamp(1)
        .message("line")
        .build()
        .expect("an event")
}

fn server_calls() -> Vec<Call> {
    vec![
        call("server put_object images", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.put_object()
                        .bucket("hybridlab-images-abcd1234")
                        .key("images/0001/original.jpg")
                        .body(ByteStream::from_static(b"j"))
                        .send()
                )
            })
        }),
        call("server delete_object images", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.delete_object()
                        .bucket("hybridlab-images-abcd1234")
                        .key("images/0001/original.jpg")
                        .send()
                )
            })
        }),
        call("server get_object images", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.get_object()
                        .bucket("hybridlab-images-abcd1234")
                        .key("images/0001/thumbnail.jpg")
                        .send()
                )
            })
        }),
        call("server put_item", |c| {
            Box::pin(async move {
                outcome!(
                    c.dynamodb
                        .put_item()
                        .table_name(TABLE)
                        .item("id", id())
                        .send()
                )
            })
        }),
        call("server scan", |c| {
            Box::pin(async move { outcome!(c.dynamodb.scan().table_name(TABLE).send()) })
        }),
        call("server get_item", |c| {
            Box::pin(async move {
                outcome!(
                    c.dynamodb
                        .get_item()
                        .table_name(TABLE)
                        .key("id", id())
                        .send()
                )
            })
        }),
        call("server update_item", |c| {
            Box::pin(async move {
                outcome!(
                    c.dynamodb
                        .update_item()
                        .table_name(TABLE)
                        .key("id", id())
                        .update_expression("SET s = :s")
                        .send()
                )
            })
        }),
        call("server put_object uploads", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.put_object()
                        .bucket("hybridlab-uploads-abcd1234")
                        .key("uploads/0001/cat.jpg")
                        .body(ByteStream::from_static(b"j"))
                        .send()
                )
            })
        }),
        call("server delete_object uploads", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.delete_object()
                        .bucket("hybridlab-uploads-abcd1234")
                        .key("uploads/0001/cat.jpg")
                        .send()
                )
            })
        }),
        call("server get_object uploads", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.get_object()
                        .bucket("hybridlab-uploads-abcd1234")
                        .key("uploads/0001/cat.jpg")
                        .send()
                )
            })
        }),
        call("server get_object processed", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.get_object()
                        .bucket("hybridlab-processed-abcd1234")
                        .key("images/0001/small.jpg")
                        .send()
                )
            })
        }),
        call("boot: aws s3 cp the binary", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.get_object()
                        .bucket("hybridlab-artifacts-abcd1234")
                        .key("server/hybridlab-ec2-server")
                        .send()
                )
            })
        }),
        call("boot: aws s3 cp the environment", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.get_object()
                        .bucket("hybridlab-artifacts-abcd1234")
                        .key("server/server.env")
                        .send()
                )
            })
        }),
        call("CloudWatch agent create_log_stream", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .create_log_stream()
                        .log_group_name("/hybridlab/abcd1234/ec2-server")
                        .log_stream_name("i-0123456789abcdef0")
                        .send()
                )
            })
        }),
        call("CloudWatch agent put_log_events", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .put_log_events()
                        .log_group_name("/hybridlab/abcd1234/ec2-server")
                        .log_stream_name("i-0123456789abcdef0")
                        .log_events(event())
                        .send()
                )
            })
        }),
        call("CloudWatch agent describe_log_streams", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .describe_log_streams()
                        .log_group_name("/hybridlab/abcd1234/ec2-server")
                        .send()
                )
            })
        }),
    ]
}

fn proxy_calls() -> Vec<Call> {
    vec![
        call("Lambda's log delivery create_log_stream", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .create_log_stream()
                        .log_group_name("/aws/lambda/hybridlab-proxy-abcd1234")
                        .log_stream_name("2026/01/01/[$LATEST]abc")
                        .send()
                )
            })
        }),
        call("Lambda's log delivery put_log_events", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .put_log_events()
                        .log_group_name("/aws/lambda/hybridlab-proxy-abcd1234")
                        .log_stream_name("2026/01/01/[$LATEST]abc")
                        .log_events(event())
                        .send()
                )
            })
        }),
    ]
}

fn resizer_calls() -> Vec<Call> {
    vec![
        Call {
            may_be_missing: true,
            ..call("resizer head_object upload", |c| {
                Box::pin(async move {
                    outcome!(
                        c.s3.head_object()
                            .bucket("hybridlab-uploads-abcd1234")
                            .key("uploads/0001/cat.jpg")
                            .send()
                    )
                })
            })
        },
        Call {
            may_be_missing: true,
            ..call("resizer get_object upload", |c| {
                Box::pin(async move {
                    outcome!(
                        c.s3.get_object()
                            .bucket("hybridlab-uploads-abcd1234")
                            .key("uploads/0001/cat.jpg")
                            .send()
                    )
                })
            })
        },
        call("resizer head_object the event's version", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.head_object()
                        .bucket("hybridlab-uploads-abcd1234")
                        .key("uploads/0001/cat.jpg")
                        .version_id("v1")
                        .send()
                )
            })
        }),
        call("resizer get_object the event's version", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.get_object()
                        .bucket("hybridlab-uploads-abcd1234")
                        .key("uploads/0001/cat.jpg")
                        .version_id("v1")
                        .send()
                )
            })
        }),
        call("resizer get_item", |c| {
            Box::pin(async move {
                outcome!(
                    c.dynamodb
                        .get_item()
                        .table_name(TABLE)
                        .key("id", id())
                        .send()
                )
            })
        }),
        call("resizer update_item", |c| {
            Box::pin(async move {
                outcome!(
                    c.dynamodb
                        .update_item()
                        .table_name(TABLE)
                        .key("id", id())
                        .update_expression("SET s = :s")
                        .send()
                )
            })
        }),
        call("resizer put_object variant", |c| {
            Box::pin(async move {
                outcome!(
                    c.s3.put_object()
                        .bucket("hybridlab-processed-abcd1234")
                        .key("images/0001/small.jpg")
                        .body(ByteStream::from_static(b"j"))
                        .send()
                )
            })
        }),
        call("resizer delete_objects variants", |c| {
            Box::pin(async move {
                let delete = Delete::builder()
                    .objects(
                        ObjectIdentifier::builder()
                            .key("images/0001/small.jpg")
                            .build()
                            .expect("a key"),
                    )
                    .objects(
                        ObjectIdentifier::builder()
                            .key("images/0001/medium.jpg")
                            .build()
                            .expect("a key"),
                    )
                    .build()
                    .expect("objects");
                outcome!(
                    c.s3.delete_objects()
                        .bucket("hybridlab-processed-abcd1234")
                        .delete(delete)
                        .send()
                )
            })
        }),
        call("Lambda's log delivery create_log_stream", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .create_log_stream()
                        .log_group_name("/aws/lambda/hybridlab-resizer-abcd1234")
                        .log_stream_name("2026/01/01/[$LATEST]abc")
                        .send()
                )
            })
        }),
        call("Lambda's log delivery put_log_events", |c| {
            Box::pin(async move {
                outcome!(
                    c.logs
                        .put_log_events()
                        .log_group_name("/aws/lambda/hybridlab-resizer-abcd1234")
                        .log_stream_name("2026/01/01/[$LATEST]abc")
                        .log_events(event())
                        .send()
                )
            })
        }),
    ]
}

struct Role {
    name: &'static str,
    /// The caller as AWS names it in refusals.
    principal: &'static str,
    policy: Value,
    calls: Vec<Call>,
}

fn roles() -> Vec<Role> {
    vec![
        Role {
            name: "server",
            principal: "arn:aws:sts::123456789012:assumed-role/hybridlab-server-abcd1234/i-0123456789abcdef0",
            policy: server_policy(),
            calls: server_calls(),
        },
        Role {
            name: "proxy",
            principal: "arn:aws:sts::123456789012:assumed-role/hybridlab-lambda-abcd1234/hybridlab-proxy-abcd1234",
            policy: proxy_policy(),
            calls: proxy_calls(),
        },
        Role {
            name: "resizer",
            principal: "arn:aws:sts::123456789012:assumed-role/hybridlab-resizer-abcd1234/hybridlab-resizer-abcd1234",
            policy: resizer_policy(),
            calls: resizer_calls(),
        },
    ]
}

/// Every check a call makes, with the missing-key check where the key may be gone.
fn checks(call: &Call, sent: &Sent) -> (Service, Vec<RequestContext>) {
    let authorization = known(sent, &StackLookups);
    let mut checks = authorization.checks;
    if call.may_be_missing {
        checks.extend(authorization.when_missing);
    }
    (authorization.service, checks)
}

/// The code the SDK reports for a refusal of `service`.
fn refusal_code(service: Service) -> &'static str {
    match service {
        Service::S3 | Service::Iam | Service::Sts => "AccessDenied",
        Service::Ec2 => "UnauthorizedOperation",
        Service::DynamoDb
        | Service::Logs
        | Service::Lambda
        | Service::SecretsManager
        | Service::ApiGateway => "AccessDeniedException",
    }
}

#[tokio::test]
async fn each_role_is_allowed_its_calls_and_refused_one_without_any_statement() {
    for role in roles() {
        let policy = Policy::from_json(role.name, &role.policy).expect("the stack's policy parses");
        let recorder = Clients::new("ASIAROLE", None).await;
        let mut made = Vec::new();
        for call in &role.calls {
            let _ = (call.make)(recorder.clone()).await;
            made.push((call, recorder.take()));
        }
        for (call, sent) in &made {
            for check in checks(call, sent).1 {
                let decision = evaluate(std::slice::from_ref(&policy), &check);
                assert!(
                    decision.is_allowed(),
                    "{}: {} refused {check:?}: {decision:?}",
                    role.name,
                    call.what
                );
            }
        }

        let statements = role.policy["Statement"]
            .as_array()
            .expect("statements")
            .clone();
        for (index, statement) in statements.iter().enumerate() {
            let mut reduced = role.policy.clone();
            if let Some(list) = reduced["Statement"].as_array_mut() {
                list.remove(index);
            }
            // A policy needs a statement; an empty one grants nothing.
            let reduced = if statements.len() == 1 {
                Vec::new()
            } else {
                vec![Policy::from_json(role.name, &reduced).expect("still a policy")]
            };
            let mut refused = Vec::new();
            for (call, sent) in &made {
                let (service, checks) = checks(call, sent);
                let Some((check, decision)) = first_refusal(&reduced, &checks) else {
                    continue;
                };
                assert_eq!(decision.verdict, Verdict::ImplicitDeny);
                refused.push(call.what);
                // AWS's refusal, fed back through the SDK that made the call.
                let head = sent.method == "HEAD";
                let response = refusal(
                    service,
                    &Refused {
                        principal: role.principal,
                        check,
                        decision: &decision,
                        request_id: "4442587FB7D0A2F9",
                        head,
                    },
                );
                let answered = Clients::new("ASIAROLE", Some(response)).await;
                let seen = (call.make)(answered)
                    .await
                    .unwrap_or_else(|| panic!("{}: the SDK accepted a refusal", call.what));
                if head {
                    // S3 sends HEAD refusals without a body: the SDK sees only the status.
                    assert_eq!(
                        seen,
                        Seen {
                            code: None,
                            message: None
                        },
                        "{}",
                        call.what
                    );
                    continue;
                }
                assert_eq!(
                    seen.code.as_deref(),
                    Some(refusal_code(service)),
                    "{}: {seen:?}",
                    call.what
                );
                let message = seen.message.unwrap_or_default();
                let resource = check.resource.named_as();
                assert!(
                    message.starts_with(&format!(
                        "User: {} is not authorized to perform: {}",
                        role.principal, check.action
                    )) && message.contains(resource)
                        && message.ends_with(&format!(
                            "because no identity-based policy allows the {} action",
                            check.action
                        )),
                    "{}: {message}",
                    call.what
                );
            }
            assert!(
                !refused.is_empty(),
                "{}: no call needs statement {}",
                role.name,
                statement["Sid"]
            );
        }
    }
}

#[tokio::test]
async fn the_resizer_cannot_change_the_uploads_it_is_triggered_by() {
    let policy = Policy::from_json("resizer", &resizer_policy()).expect("parses");
    let c = Clients::new("ASIAROLE", None).await;
    let _ =
        c.s3.put_object()
            .bucket("hybridlab-uploads-abcd1234")
            .key("uploads/0001/cat.jpg")
            .body(ByteStream::from_static(b"j"))
            .send()
            .await;
    let put = known(&c.take(), &NoLookups);
    let _ =
        c.s3.delete_object()
            .bucket("hybridlab-uploads-abcd1234")
            .key("uploads/0001/cat.jpg")
            .send()
            .await;
    let delete = known(&c.take(), &NoLookups);
    let _ = c
        .dynamodb
        .put_item()
        .table_name(TABLE)
        .item("id", id())
        .send()
        .await;
    let create_row = known(&c.take(), &NoLookups);
    for authorization in [put, delete, create_row] {
        let refused = first_refusal(std::slice::from_ref(&policy), &authorization.checks);
        assert!(refused.is_some(), "{} allowed", authorization.operation);
    }
}

/// The CloudFormation template's server role: the binary from the code bucket and the token
/// from its secret, which the boot script reads with `aws secretsmanager get-secret-value`.
#[test]
fn the_cloudformation_server_reads_its_secret_by_arn_or_name() {
    let secret =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:hybridlab-server-abcd1234-AbCdEf";
    let mut document = server_policy();
    if let Some(statements) = document["Statement"].as_array_mut() {
        statements.retain(|s| s["Sid"] != "FetchServerArtifacts");
        statements.push(
            json!({"Sid": "FetchServerBinary", "Effect": "Allow", "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::hybridlab-code/releases/hybridlab-ec2-server"]}),
        );
        statements.push(json!({"Sid": "ReadServerSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [secret]}));
    }
    let policy = Policy::from_json("server", &document).expect("parses");
    let get_secret = |id: &str| {
        Sent::from_uri(
            "POST",
            "http://127.0.0.1:4566/",
            &[
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=ASIAROLE/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
                ),
                ("x-amz-target", "secretsmanager.GetSecretValue"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            format!(r#"{{"SecretId":"{id}"}}"#).as_bytes(),
        )
    };
    for (id, lookups) in [
        (secret, &NoLookups as &dyn crate::iam::Lookups),
        ("hybridlab-server-abcd1234", &StackLookups),
        ("hybridlab-server-abcd1234", &NoLookups),
    ] {
        let authorization = known(&get_secret(id), lookups);
        assert!(
            first_refusal(std::slice::from_ref(&policy), &authorization.checks).is_none(),
            "{id}"
        );
    }
    let other = known(&get_secret("hybridlab-server-other"), &NoLookups);
    assert!(
        first_refusal(std::slice::from_ref(&policy), &other.checks).is_some(),
        "another secret"
    );
    let binary = Sent::from_uri(
        "GET",
        "http://127.0.0.1:4566/hybridlab-code/releases/hybridlab-ec2-server",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAROLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )],
        b"",
    );
    assert!(
        first_refusal(
            std::slice::from_ref(&policy),
            &known(&binary, &NoLookups).checks
        )
        .is_none()
    );
    // The artifacts bucket is not the template's.
    let artifacts = Sent::from_uri(
        "GET",
        "http://127.0.0.1:4566/hybridlab-artifacts-abcd1234/server/server.env",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAROLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )],
        b"",
    );
    assert!(
        first_refusal(
            std::slice::from_ref(&policy),
            &known(&artifacts, &NoLookups).checks
        )
        .is_some()
    );
}
