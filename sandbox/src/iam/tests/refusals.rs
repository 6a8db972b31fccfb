//! Refusals as each service sends them, read back by the AWS SDK for Rust as the right error
//! code and message. Secrets Manager, STS and API Gateway have no SDK in the sandbox's tests:
//! their bodies go through the client of a service with the same protocol (CloudWatch Logs
//! for awsJson1.1, IAM for awsQuery, Lambda for restJson1), whose generated error parsers are
//! the same code.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ec2::types::InstanceType;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use super::sdk::{Clients, Seen, outcome};
use crate::iam::policy::StatementRef;
use crate::iam::{
    Decision, RefusalResponse, Refused, RequestContext, Resource, Service, Verdict, refusal,
};

const PRINCIPAL: &str =
    "arn:aws:sts::123456789012:assumed-role/hybridlab-server-abcd1234/i-0123456789abcdef0";

fn implicit() -> Decision {
    Decision {
        verdict: Verdict::ImplicitDeny,
        statement: None,
        unknown_operators: Vec::new(),
    }
}

fn response(
    service: Service,
    check: &RequestContext,
    decision: &Decision,
    head: bool,
) -> RefusalResponse {
    refusal(
        service,
        &Refused {
            principal: PRINCIPAL,
            check,
            decision,
            request_id: "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE",
            head,
        },
    )
}

async fn answered(response: RefusalResponse) -> Clients {
    Clients::new("ASIAROLE", Some(response)).await
}

fn expect(seen: Option<Seen>, code: &str, message: &str) {
    let seen = seen.expect("an error");
    assert_eq!(seen.code.as_deref(), Some(code), "{seen:?}");
    assert_eq!(seen.message.as_deref(), Some(message), "{seen:?}");
}

#[tokio::test]
async fn s3_refusals_are_access_denied_xml_naming_the_quoted_object() {
    let check = RequestContext::new(
        "s3:PutObject",
        Resource::arn("arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/a&b.jpg"),
    );
    let refused = response(Service::S3, &check, &implicit(), false);
    assert_eq!(refused.status, 403);
    let body = String::from_utf8(refused.body.clone()).expect("text");
    assert!(
        body.contains("<Error><Code>AccessDenied</Code><Message>"),
        "{body}"
    );
    assert!(body.contains("a&amp;b.jpg"), "escaped: {body}");
    let c = answered(refused).await;
    expect(
        outcome!(
            c.s3.put_object()
                .bucket("hybridlab-uploads-abcd1234")
                .key("uploads/a&b.jpg")
                .body(ByteStream::from_static(b"j"))
                .send()
        ),
        "AccessDenied",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::hybridlab-uploads-abcd1234/uploads/a&b.jpg\" because no identity-based policy allows the s3:PutObject action"
        ),
    );

    // HEAD: the status alone, as S3 sends it.
    let get = RequestContext::new("s3:GetObject", Resource::arn("arn:aws:s3:::b/k"));
    let head = response(Service::S3, &get, &implicit(), true);
    assert_eq!((head.status, head.body.len()), (403, 0));
    let c = answered(head).await;
    let seen = outcome!(c.s3.head_object().bucket("b").key("k").send()).expect("an error");
    // As with S3 itself: no code, no message, only the status (botocore calls it "403").
    assert_eq!(
        seen,
        Seen {
            code: None,
            message: None
        }
    );
}

#[tokio::test]
async fn explicit_denies_say_so_and_name_a_managed_policy() {
    let check = RequestContext::new("s3:DeleteObject", Resource::arn("arn:aws:s3:::b/k"));
    let inline = Decision {
        verdict: Verdict::ExplicitDeny,
        statement: Some(StatementRef {
            policy: "hybridlab-role-policy".into(),
            sid: Some("Keep".into()),
            index: 0,
            resource_based: false,
        }),
        unknown_operators: Vec::new(),
    };
    let c = answered(response(Service::S3, &check, &inline, false)).await;
    expect(
        outcome!(c.s3.delete_object().bucket("b").key("k").send()),
        "AccessDenied",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: s3:DeleteObject on resource: \"arn:aws:s3:::b/k\" with an explicit deny in an identity-based policy"
        ),
    );
    let managed = Decision {
        statement: Some(StatementRef {
            policy: "arn:aws:iam::123456789012:policy/no-deletes".into(),
            sid: None,
            index: 0,
            resource_based: false,
        }),
        ..inline.clone()
    };
    let body =
        String::from_utf8(response(Service::S3, &check, &managed, false).body).expect("text");
    assert!(body.contains("with an explicit deny in an identity-based policy: arn:aws:iam::123456789012:policy/no-deletes</Message>"), "{body}");
    let bucket = Decision {
        statement: Some(StatementRef {
            policy: "the bucket policy of b".into(),
            sid: Some("NoDeletes".into()),
            index: 1,
            resource_based: true,
        }),
        ..inline
    };
    let body = String::from_utf8(response(Service::S3, &check, &bucket, false).body).expect("text");
    assert!(
        body.contains("with an explicit deny in a resource-based policy</Message>"),
        "{body}"
    );
}

#[tokio::test]
async fn json_services_refuse_with_400_and_their_own_error_type() {
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/hybridlab-images-abcd1234";
    let check = RequestContext::new("dynamodb:PutItem", Resource::arn(table));
    let refused = response(Service::DynamoDb, &check, &implicit(), false);
    assert_eq!(refused.status, 400);
    let body: Value = serde_json::from_slice(&refused.body).expect("JSON");
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#AccessDeniedException"
    );
    let c = answered(refused).await;
    expect(
        outcome!(
            c.dynamodb
                .put_item()
                .table_name("hybridlab-images-abcd1234")
                .item("id", AttributeValue::S("1".into()))
                .send()
        ),
        "AccessDeniedException",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: dynamodb:PutItem on resource: {table} because no identity-based policy allows the dynamodb:PutItem action"
        ),
    );

    let stream = "arn:aws:logs:us-east-1:123456789012:log-group:/hybridlab/abcd1234/ec2-server:log-stream:i-0123456789abcdef0";
    let check = RequestContext::new("logs:PutLogEvents", Resource::arn(stream));
    let refused = response(Service::Logs, &check, &implicit(), false);
    assert_eq!(refused.status, 400);
    let c = answered(refused).await;
    let event = InputLogEvent::builder()
        .timestamp(1)
        .message("m")
        .build()
        .expect("an event");
    expect(
        outcome!(
            c.logs
                .put_log_events()
                .log_group_name("/hybridlab/abcd1234/ec2-server")
                .log_stream_name("i-0123456789abcdef0")
                .log_events(event)
                .send()
        ),
        "AccessDeniedException",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: logs:PutLogEvents on resource: {stream} because no identity-based policy allows the logs:PutLogEvents action"
        ),
    );

    // Secrets Manager names the secret as the request did; awsJson1.1, as Logs.
    let by_name = RequestContext::new(
        "secretsmanager:GetSecretValue",
        Resource::arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf")
            .named("token"),
    );
    let refused = response(Service::SecretsManager, &by_name, &implicit(), false);
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .headers
            .contains(&("content-type", "application/x-amz-json-1.1".to_owned()))
    );
    let c = answered(refused).await;
    expect(
        outcome!(c.logs.describe_log_groups().send()),
        "AccessDeniedException",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: secretsmanager:GetSecretValue on resource: token because no identity-based policy allows the secretsmanager:GetSecretValue action"
        ),
    );
}

#[tokio::test]
async fn lambda_refuses_with_403_and_the_error_type_header() {
    let function = "arn:aws:lambda:us-east-1:123456789012:function:hybridlab-proxy-abcd1234";
    let check = RequestContext::new("lambda:InvokeFunction", Resource::arn(function));
    let refused = response(Service::Lambda, &check, &implicit(), false);
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .headers
            .contains(&("x-amzn-errortype", "AccessDeniedException".to_owned()))
    );
    let c = answered(refused).await;
    expect(
        outcome!(
            c.lambda
                .invoke()
                .function_name("hybridlab-proxy-abcd1234")
                .send()
        ),
        "AccessDeniedException",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: lambda:InvokeFunction on resource: {function} because no identity-based policy allows the lambda:InvokeFunction action"
        ),
    );
    // CreateFunction refused for the role it passes.
    let role = "arn:aws:iam::123456789012:role/hybridlab/hybridlab-lambda-abcd1234";
    let pass = RequestContext::new("iam:PassRole", Resource::arn(role));
    let c = answered(response(Service::Lambda, &pass, &implicit(), false)).await;
    let seen = outcome!(
        c.lambda
            .create_function()
            .function_name("f")
            .role(role)
            .send()
    )
    .expect("an error");
    assert_eq!(seen.code.as_deref(), Some("AccessDeniedException"));
    assert!(
        seen.message
            .unwrap_or_default()
            .contains(&format!("iam:PassRole on resource: {role} because"))
    );
}

#[tokio::test]
async fn ec2_refuses_with_unauthorized_operation() {
    let check = RequestContext::new(
        "ec2:RunInstances",
        Resource::arn("arn:aws:ec2:us-east-1:123456789012:instance/*"),
    );
    let refused = response(Service::Ec2, &check, &implicit(), false);
    assert_eq!(refused.status, 403);
    let c = answered(refused).await;
    expect(
        outcome!(
            c.ec2
                .run_instances()
                .image_id("ami-1")
                .instance_type(InstanceType::T3Micro)
                .min_count(1)
                .max_count(1)
                .send()
        ),
        "UnauthorizedOperation",
        &format!(
            "You are not authorized to perform this operation. User: {PRINCIPAL} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:123456789012:instance/* because no identity-based policy allows the ec2:RunInstances action"
        ),
    );
}

#[tokio::test]
async fn iam_and_sts_refuse_with_access_denied_sender_errors() {
    let role = RequestContext::new(
        "iam:GetRole",
        Resource::arn("arn:aws:iam::123456789012:role/hybridlab/web").named("role web"),
    );
    let refused = response(Service::Iam, &role, &implicit(), false);
    assert_eq!(refused.status, 403);
    let body = String::from_utf8(refused.body.clone()).expect("text");
    assert!(
        body.contains("<Type>Sender</Type>")
            && body.contains("xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\""),
        "{body}"
    );
    let c = answered(refused).await;
    expect(
        outcome!(c.iam.get_role().role_name("web").send()),
        "AccessDenied",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: iam:GetRole on resource: role web because no identity-based policy allows the iam:GetRole action"
        ),
    );
    let assume = RequestContext::new(
        "sts:AssumeRole",
        Resource::arn("arn:aws:iam::123456789012:role/hybridlab/web"),
    );
    let refused = response(Service::Sts, &assume, &implicit(), false);
    let body = String::from_utf8(refused.body.clone()).expect("text");
    assert!(
        body.contains("xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\""),
        "{body}"
    );
    let c = answered(refused).await;
    expect(
        outcome!(c.iam.list_roles().send()),
        "AccessDenied",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/hybridlab/web because no identity-based policy allows the sts:AssumeRole action"
        ),
    );
}

#[tokio::test]
async fn api_gateway_refuses_with_403_the_error_type_header_and_a_message() {
    let check = RequestContext::new(
        "apigateway:GET",
        Resource::arn("arn:aws:apigateway:us-east-1::/apis"),
    );
    let refused = response(Service::ApiGateway, &check, &implicit(), false);
    let message = format!(
        "User: {PRINCIPAL} is not authorized to perform: apigateway:GET on resource: arn:aws:apigateway:us-east-1::/apis because no identity-based policy allows the apigateway:GET action"
    );
    assert_eq!(refused.status, 403);
    for header in [
        ("content-type", "application/json"),
        ("x-amzn-errortype", "AccessDeniedException"),
        ("x-amzn-requestid", "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"),
    ] {
        assert!(
            refused.headers.contains(&(header.0, header.1.to_owned())),
            "{:?}",
            refused.headers
        );
    }
    // apigatewayv2's AccessDeniedException names its member `message`, lower-case.
    let body: Value = serde_json::from_slice(&refused.body).expect("JSON");
    assert_eq!(body, serde_json::json!({ "message": message }));
    let c = answered(refused).await;
    expect(
        outcome!(c.lambda.list_functions().send()),
        "AccessDeniedException",
        &message,
    );

    // A tagged stage refused for the TagResource it also needs.
    let stages = "arn:aws:apigateway:us-east-1::/apis/abc123/stages";
    let tag = RequestContext::new("apigateway:TagResource", Resource::arn(stages));
    let c = answered(response(Service::ApiGateway, &tag, &implicit(), false)).await;
    expect(
        outcome!(c.lambda.list_functions().send()),
        "AccessDeniedException",
        &format!(
            "User: {PRINCIPAL} is not authorized to perform: apigateway:TagResource on resource: {stages} because no identity-based policy allows the apigateway:TagResource action"
        ),
    );
}
