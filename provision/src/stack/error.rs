//! Why a stack operation failed, in terms a student can act on: missing credentials, the
//! action that was denied, a quota, a region without the image, or the AWS error as it came.

use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::artifacts::ArtifactError;
use super::progress::Step;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "no usable AWS credentials ({0}); run `aws configure` or `aws sso login`, or pass --profile"
    )]
    Credentials(String),
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

/// Classifies an SDK error of `action` (an IAM action name such as `s3:CreateBucket`).
pub fn sdk_error<E>(action: &str, err: SdkError<E, Response>) -> StackError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = code_of(&err).unwrap_or_default().to_owned();
    let message = match &err {
        SdkError::ServiceError(service) => service
            .err()
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}", DisplayErrorContext(&err))),
        _ => format!("{}", DisplayErrorContext(&err)),
    };
    let credentials = matches!(
        code.as_str(),
        "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "AuthFailure"
    ) || matches!(err, SdkError::ConstructionFailure(_))
        && message.contains("credentials");
    if credentials {
        return StackError::Credentials(format!("{action}: {code} {message}"));
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
    let message = if code.is_empty() {
        message
    } else {
        format!("{code}: {message}")
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
        assert!(matches!(expired, StackError::Credentials(_)), "{expired:?}");
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
