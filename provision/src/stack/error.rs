//! Why a stack operation failed, in terms a student can act on: missing credentials, the
//! action that was denied, a quota, a region without the image, or the AWS error as it came.

use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use hybridlab_wire::error_body::xml_error;

use super::artifacts::ArtifactError;
use super::progress::Step;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "no usable AWS credentials ({0}); run `aws configure` or `aws sso login`, or pass --profile"
    )]
    Credentials(String),
    #[error(
        "the AWS credentials were refused ({0}): they are expired, revoked or not for this account; run `aws sso login` or `aws configure`, or pass another --profile"
    )]
    CredentialsRefused(String),
    #[error("no AWS region is configured; pass --region or set AWS_REGION")]
    NoRegion,
    #[error("access denied to {action}: {message}; the caller's IAM policy must allow it")]
    AccessDenied { action: String, message: String },
    #[error(
        "{action} hit a service quota: {message}; delete unused resources or ask AWS for more (Service Quotas console)"
    )]
    Quota { action: String, message: String },
    #[error("no Amazon Linux 2023 x86_64 image is published in {region}; choose another --region")]
    NoImage { region: String },
    #[error("{action} failed: {message}")]
    Aws { action: String, message: String },
    #[error(
        "instance {instance}'s user-data failed, so its server never started; its console output ends: {tail} (fix the script, then `hybridlab up` replaces the instance, or `hybridlab down`)"
    )]
    UserDataFailed { instance: String, tail: String },
    #[error("{what} did not happen within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("cannot write the stack's state file {path}: {source}")]
    State {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("stopped after step `{}` as HYBRIDLAB_FAIL_AFTER_STEP asked", .0.name())]
    FaultInjected(Step),
}

/// The raw response type of every SDK client.
pub type Response = aws_sdk_s3::config::http::HttpResponse;

/// The error code of an SDK error (`NoSuchBucket`, `AccessDenied`, ...), if the service sent one.
pub fn code_of<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// An SDK error in one line, as a progress message quotes it: `Code: message`.
pub fn error_line<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, Response>,
) -> String {
    match err {
        SdkError::ServiceError(service) => format!(
            "{}: {}",
            service.err().code().unwrap_or("error"),
            service.err().message().unwrap_or("no message")
        ),
        other => DisplayErrorContext(other).to_string(),
    }
}

/// Whether `err` says the resource does not exist.
pub fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() == 404
                || service.err().code().is_some_and(|code| {
                    code.contains("NotFound")
                        || matches!(code, "NoSuchBucket" | "NoSuchEntity" | "NoSuchKey")
                })
        }
        _ => false,
    }
}

/// What a service answered to a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFault {
    pub status: u16,
    /// Empty when the answer carried none.
    pub code: String,
    pub message: String,
}

/// The status, code and message of a service's error answer, or `None` if there was no answer.
/// The code is the SDK's, or, when the body was not in the protocol's format, the `<Code>` of
/// an XML error body: moto answers a JSON-protocol service's refused credentials in XML, and a
/// proxy in front of AWS may answer in anything.
pub fn service_fault<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> Option<ServiceFault> {
    let SdkError::ServiceError(service) = err else {
        return None;
    };
    let status = service.raw().status().as_u16();
    let parsed = (service.err().code(), service.err().message());
    let (code, message) = match parsed {
        (Some(code), message) => (code.to_owned(), message.unwrap_or_default().to_owned()),
        (None, _) => service
            .raw()
            .body()
            .bytes()
            .and_then(xml_error)
            .unwrap_or_default(),
    };
    Some(ServiceFault {
        status,
        code,
        message,
    })
}

/// Whether a service error code means the caller's credentials were refused.
pub fn is_credentials_refused(code: &str) -> bool {
    matches!(
        code,
        "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "InvalidSignatureException"
            | "AuthFailure"
    )
}

/// Classifies an SDK error of `action` (an IAM action name such as `s3:CreateBucket`).
pub fn sdk_error<E>(action: &str, err: SdkError<E, Response>) -> StackError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let Some(fault) = service_fault(&err) else {
        // No answer: the request could not be built (no credentials) or sent.
        let message = format!("{}", DisplayErrorContext(&err));
        if matches!(err, SdkError::ConstructionFailure(_)) && message.contains("credentials") {
            return StackError::Credentials(format!("{action}: {message}"));
        }
        return StackError::Aws {
            action: action.to_owned(),
            message,
        };
    };
    let ServiceFault {
        status,
        code,
        message,
    } = fault;
    if is_credentials_refused(&code) {
        return StackError::CredentialsRefused(format!("{action}: {code}: {message}"));
    }
    if code.contains("AccessDenied")
        || code == "UnauthorizedOperation"
        || code == "AccessDeniedException"
    {
        return StackError::AccessDenied {
            action: action.to_owned(),
            message,
        };
    }
    if code.contains("LimitExceeded") || code.contains("QuotaExceeded") || code == "TooManyBuckets"
    {
        return StackError::Quota {
            action: action.to_owned(),
            message,
        };
    }
    let message = match (code.is_empty(), message.is_empty()) {
        (true, _) => format!("HTTP {status} without an error code"),
        (false, true) => code,
        (false, false) => format!("{code}: {message}"),
    };
    StackError::Aws {
        action: action.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::create_bucket::CreateBucketError;

    fn service_error(
        status: u16,
        code: &str,
        message: &str,
    ) -> SdkError<CreateBucketError, Response> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = Response::new(
            status.try_into().expect("a status code"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(CreateBucketError::generic(meta), raw)
    }

    /// An answer the SDK could not parse: no code in its metadata, only the raw body.
    fn unparsed_error(status: u16, body: &str) -> SdkError<CreateBucketError, Response> {
        let raw = Response::new(
            status.try_into().expect("a status code"),
            aws_smithy_types::body::SdkBody::from(body.to_owned()),
        );
        SdkError::service_error(
            CreateBucketError::generic(ErrorMetadata::builder().build()),
            raw,
        )
    }

    #[test]
    fn refused_credentials_are_recognised_in_an_xml_body_the_sdk_did_not_parse() {
        // What moto answers a JSON-protocol service (Lambda, DynamoDB) when it checks credentials.
        let refused = sdk_error(
            "lambda:ListFunctions",
            unparsed_error(
                403,
                "<?xml version=\"1.0\"?>\n<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>",
            ),
        );
        assert!(
            matches!(refused, StackError::CredentialsRefused(_)),
            "{refused:?}"
        );
        let text = refused.to_string();
        assert!(
            text.contains("InvalidClientTokenId")
                && text.contains("aws sso login")
                && !text.contains('\n'),
            "{text}"
        );
        // Nothing to read at all: the status says what little is known, on one line.
        let bare = sdk_error(
            "lambda:ListFunctions",
            unparsed_error(403, "<html>no</html>"),
        );
        assert_eq!(
            bare.to_string(),
            "lambda:ListFunctions failed: HTTP 403 without an error code"
        );
    }

    #[test]
    fn a_denied_action_is_named() {
        let err = sdk_error(
            "s3:CreateBucket",
            service_error(
                403,
                "AccessDenied",
                "User: arn:aws:iam::1:user/student is not authorized",
            ),
        );
        let text = err.to_string();
        assert!(matches!(err, StackError::AccessDenied { .. }), "{err:?}");
        assert!(
            text.contains("s3:CreateBucket") && text.contains("not authorized"),
            "{text}"
        );
    }

    #[test]
    fn quotas_and_credentials_say_what_to_do() {
        let quota = sdk_error(
            "s3:CreateBucket",
            service_error(
                400,
                "TooManyBuckets",
                "You have attempted to create more buckets than allowed",
            ),
        );
        assert!(matches!(quota, StackError::Quota { .. }), "{quota:?}");
        assert!(quota.to_string().contains("Service Quotas"));
        let limit = sdk_error(
            "ec2:RunInstances",
            service_error(400, "VcpuLimitExceeded", "vCPU limit"),
        );
        assert!(matches!(limit, StackError::Quota { .. }), "{limit:?}");
        let expired = sdk_error(
            "s3:CreateBucket",
            service_error(400, "ExpiredToken", "The provided token has expired."),
        );
        assert!(
            matches!(expired, StackError::CredentialsRefused(_)),
            "{expired:?}"
        );
        assert!(expired.to_string().contains("aws sso login"));
    }

    #[test]
    fn other_errors_keep_their_code_and_not_found_is_recognised() {
        let other = sdk_error(
            "s3:CreateBucket",
            service_error(409, "BucketAlreadyExists", "taken"),
        );
        assert_eq!(
            other.to_string(),
            "s3:CreateBucket failed: BucketAlreadyExists: taken"
        );
        assert!(is_not_found(&service_error(404, "NoSuchBucket", "")));
        assert!(is_not_found(&service_error(
            400,
            "InvalidGroup.NotFound",
            ""
        )));
        assert!(!is_not_found(&service_error(403, "AccessDenied", "")));
        assert_eq!(
            code_of(&service_error(400, "Throttling", "")),
            Some("Throttling")
        );
    }
}
