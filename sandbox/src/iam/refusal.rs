//! The error AWS sends when it refuses a request, per service, as data the edge turns into an
//! HTTP response. Each carries the message AWS writes:
//! `User: PRINCIPAL is not authorized to perform: ACTION on resource: RESOURCE because no
//! identity-based policy allows the ACTION action` (or `with an explicit deny in an
//! identity-based policy`), with each service's code, status and body format:
//!
//! | service | status | body |
//! |---|---|---|
//! | S3 | 403 | `<Error><Code>AccessDenied</Code>` XML, resource quoted; none for HEAD |
//! | DynamoDB | 400 | JSON `__type` `com.amazon.coral.service#AccessDeniedException`, `Message` |
//! | CloudWatch Logs | 400 | JSON `__type` `AccessDeniedException`, `message` |
//! | Secrets Manager | 400 | JSON `__type` `AccessDeniedException`, `Message` |
//! | Lambda | 403 | JSON `Message`, code in `x-amzn-ErrorType: AccessDeniedException` |
//! | API Gateway | 403 | JSON `message`, code in `x-amzn-ErrorType: AccessDeniedException` |
//! | EC2 | 403 | `<Response><Errors><Error><Code>UnauthorizedOperation</Code>` XML |
//! | IAM, STS | 403 | `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>` XML |
//!
//! The shapes are those of refusals quoted from AWS (DynamoDB's coral type and capitalised
//! `Message` as dynalite records them; Logs and Secrets Manager answering 400 as their SDK
//! errors report; API Gateway's `AccessDeniedException`, whose model names its member
//! `message`, with the same wording: "User: ... is not authorized to perform: apigateway:PUT
//! on resource: arn:aws:apigateway:us-east-1::/tags/... because no identity-based policy
//! allows the apigateway:PUT action", https://github.com/mattclay/aws-terminator/pull/284),
//! and the AWS SDK for Rust reads each as its code (see the tests).

use serde_json::json;

use super::context::RequestContext;
use super::policy::{Decision, Verdict};
use super::request::Service;

/// A refused check, and what the refusal needs to say.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    /// The caller as AWS names it: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION` for a
    /// role session, `arn:aws:iam::ACCOUNT:user/NAME` for a user.
    pub principal: &'a str,
    /// The check that was refused.
    pub check: &'a RequestContext,
    pub decision: &'a Decision,
    /// The `x-amz-request-id` / `x-amzn-RequestId` to answer with.
    pub request_id: &'a str,
    /// A HEAD request, whose refusal has no body (S3).
    pub head: bool,
}

/// An HTTP response for the edge to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The message AWS writes for a refusal.
pub fn refusal_message(service: Service, refused: &Refused<'_>) -> String {
    let action = &refused.check.action;
    let resource = refused.check.resource.named_as();
    let resource = if service == Service::S3 {
        format!("\"{resource}\"")
    } else {
        resource.to_owned()
    };
    let reason = match refused.decision.verdict {
        Verdict::ExplicitDeny => {
            // A managed policy's deny is named by its ARN.
            match refused.decision.statement.as_ref() {
                Some(statement) if statement.resource_based => {
                    "with an explicit deny in a resource-based policy".to_owned()
                }
                Some(statement) if statement.policy.starts_with("arn:") => {
                    let policy = &statement.policy;
                    format!("with an explicit deny in an identity-based policy: {policy}")
                }
                _ => "with an explicit deny in an identity-based policy".to_owned(),
            }
        }
        Verdict::ImplicitDeny | Verdict::Allowed => {
            format!("because no identity-based policy allows the {action} action")
        }
    };
    format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} {reason}",
        refused.principal
    )
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The response AWS sends for `refused`.
pub fn refusal(service: Service, refused: &Refused<'_>) -> RefusalResponse {
    let message = refusal_message(service, refused);
    let error = match service {
        Service::S3 => ServiceError::new(403, "AccessDenied", &message),
        Service::DynamoDb => ServiceError::new(
            400,
            "com.amazon.coral.service#AccessDeniedException",
            &message,
        ),
        Service::Logs | Service::SecretsManager => {
            ServiceError::new(400, "AccessDeniedException", &message)
        }
        Service::Lambda | Service::ApiGateway => {
            ServiceError::new(403, "AccessDeniedException", &message)
        }
        Service::Ec2 => ServiceError::new(
            403,
            "UnauthorizedOperation",
            &format!("You are not authorized to perform this operation. {message}"),
        ),
        Service::Iam | Service::Sts => ServiceError::new(403, "AccessDenied", &message),
    };
    error_response(service, &error, refused.request_id, refused.head)
}

/// What is wrong with a request's temporary credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// The session has expired.
    Expired,
    /// The session token is missing or not the key's.
    Invalid,
}

/// The response AWS sends for a request signed with expired or mismatched temporary
/// credentials, per service (S3's `ExpiredToken`/`InvalidToken`, the JSON services'
/// `ExpiredTokenException`/`UnrecognizedClientException`, EC2's `RequestExpired`/`AuthFailure`,
/// IAM's and STS's `ExpiredToken`/`InvalidClientTokenId`).
pub fn token_refusal(
    service: Service,
    problem: TokenProblem,
    request_id: &str,
    head: bool,
) -> RefusalResponse {
    use TokenProblem::{Expired, Invalid};
    let (status, code, message) = match (service, problem) {
        (Service::S3, Expired) => (400, "ExpiredToken", "The provided token has expired."),
        (Service::S3, Invalid) => (
            400,
            "InvalidToken",
            "The provided token is malformed or otherwise invalid.",
        ),
        (Service::Ec2, Expired) => (400, "RequestExpired", "Request has expired."),
        (Service::Ec2, Invalid) => (
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ),
        (Service::Iam | Service::Sts, Expired) => (
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ),
        (Service::Iam | Service::Sts, Invalid) => (
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        (_, Expired) => (
            400,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
        (_, Invalid) => (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
    };
    error_response(
        service,
        &ServiceError::new(status, code, message),
        request_id,
        head,
    )
}

/// An error as a service reports it: HTTP status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ServiceError {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// `error` in the wire format of `service`, as its SDKs read it.
pub fn error_response(
    service: Service,
    error: &ServiceError,
    request_id: &str,
    head: bool,
) -> RefusalResponse {
    let id = request_id.to_owned();
    let (code, message, status) = (&error.code, &error.message, error.status);
    let json_error = |content_type: &str, message_field: &str| RefusalResponse {
        status,
        headers: vec![
            ("content-type", content_type.to_owned()),
            ("x-amzn-requestid", id.clone()),
        ],
        body: json!({"__type": code, message_field: message})
            .to_string()
            .into_bytes(),
    };
    match service {
        Service::S3 => {
            let host_id = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                id.as_bytes(),
            );
            let body = if head {
                Vec::new()
            } else {
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId><HostId>{}</HostId></Error>",
                    xml_escape(code),
                    xml_escape(message),
                    xml_escape(&id),
                    xml_escape(&host_id)
                )
                .into_bytes()
            };
            RefusalResponse {
                status,
                headers: vec![
                    ("content-type", "application/xml".to_owned()),
                    ("x-amz-request-id", id.clone()),
                    ("x-amz-id-2", host_id),
                ],
                body,
            }
        }
        Service::DynamoDb => json_error("application/x-amz-json-1.0", "Message"),
        Service::Logs => json_error("application/x-amz-json-1.1", "message"),
        Service::SecretsManager => json_error("application/x-amz-json-1.1", "Message"),
        Service::Lambda => RefusalResponse {
            status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-amzn-errortype", code.clone()),
                ("x-amzn-requestid", id),
            ],
            body: json!({"Type": "User", "Message": message})
                .to_string()
                .into_bytes(),
        },
        Service::ApiGateway => RefusalResponse {
            status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-amzn-errortype", code.clone()),
                ("x-amzn-requestid", id),
            ],
            body: json!({"message": message}).to_string().into_bytes(),
        },
        Service::Ec2 => RefusalResponse {
            status,
            headers: vec![("content-type", "text/xml;charset=UTF-8".to_owned())],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
                xml_escape(code),
                xml_escape(message),
                xml_escape(&id)
            )
            .into_bytes(),
        },
        Service::Iam | Service::Sts => {
            let namespace = if service == Service::Iam {
                "https://iam.amazonaws.com/doc/2010-05-08/"
            } else {
                "https://sts.amazonaws.com/doc/2011-06-15/"
            };
            RefusalResponse {
                status,
                headers: vec![
                    ("content-type", "text/xml".to_owned()),
                    ("x-amzn-requestid", id.clone()),
                ],
                body: format!(
                    "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
                    xml_escape(code),
                    xml_escape(message),
                    xml_escape(&id)
                )
                .into_bytes(),
            }
        }
    }
}
