//! `AppError`: every failure of a request, as a stable JSON `error` code and the right status.
//! Server-side failures (5xx) are logged in full and answered with a message that reveals no
//! internals; the caller's own mistakes are explained.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hybridlab_imaging::ImagingError;
use hybridlab_wire::{ErrorBody, ErrorCode};

use crate::download::DownloadError;
use crate::storage::StorageError;

/// A failed request.
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: Option<String>,
    /// Seconds, for 503 answers.
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
            retry_after: None,
        }
    }

    /// Attaches the request id so the caller can quote it and find the log lines.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    /// A failure that is ours, not the caller's: logged in full, answered in general terms.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status each error code is answered with.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest | ErrorCode::InvalidUrl => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::ForbiddenAddress | ErrorCode::CrossOrigin => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::PipelineNotDeployed => StatusCode::NOT_FOUND,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::NotAnImage => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::ImageTooLarge | ErrorCode::DecodeFailed | ErrorCode::DecodeTimeout => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::DownloadFailed | ErrorCode::StorageFailed | ErrorCode::Ec2Unreachable => {
            StatusCode::BAD_GATEWAY
        }
        ErrorCode::Ec2BadResponse | ErrorCode::Ec2Untrusted => StatusCode::BAD_GATEWAY,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DownloadTimeout | ErrorCode::Ec2Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: self.code,
            message: self.message,
            request_id: self.request_id,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hybridlab\""),
            );
        }
        response
    }
}

impl From<DownloadError> for AppError {
    fn from(err: DownloadError) -> Self {
        let code = match &err {
            DownloadError::InvalidUrl(_) => ErrorCode::InvalidUrl,
            DownloadError::Forbidden { .. } => ErrorCode::ForbiddenAddress,
            DownloadError::TooLarge { .. } => ErrorCode::TooLarge,
            DownloadError::Timeout(_) => ErrorCode::DownloadTimeout,
            DownloadError::Empty => ErrorCode::NotAnImage,
            DownloadError::TooManyRedirects
            | DownloadError::Status(_)
            | DownloadError::Connect(_) => ErrorCode::DownloadFailed,
            // The same answer as a decode that finds no memory: the server is busy, not the
            // image at fault.
            DownloadError::Busy { .. } => ErrorCode::Overloaded,
        };
        let mut answer = Self::new(code, err.to_string());
        if code == ErrorCode::Overloaded {
            answer.retry_after = Some(1);
        }
        answer
    }
}

impl From<ImagingError> for AppError {
    fn from(err: ImagingError) -> Self {
        match err {
            ImagingError::NotAnImage => Self::new(ErrorCode::NotAnImage, err.to_string()),
            ImagingError::TooManyPixels { .. }
            | ImagingError::FrameTooLarge { .. }
            | ImagingError::TooMuchMemory { .. }
            | ImagingError::DecoderLimit { .. } => {
                Self::new(ErrorCode::ImageTooLarge, err.to_string())
            }
            // A scan bomb is refused as a file that does not decode: the limit is final, no
            // other decoder gets a try.
            ImagingError::Corrupt { .. } | ImagingError::TooManyScans { .. } => {
                Self::new(ErrorCode::DecodeFailed, err.to_string())
            }
            ImagingError::Resize(_) | ImagingError::Encode(_) => Self::internal(err),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::BadCursor => Self::new(ErrorCode::InvalidRequest, err.to_string()),
            other => {
                tracing::error!(error = %other, "storage failed");
                Self::new(
                    ErrorCode::StorageFailed,
                    "S3 or DynamoDB refused the request; the server log has the details",
                )
            }
        }
    }
}
