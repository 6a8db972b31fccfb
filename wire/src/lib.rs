//! Every contract two of the lab's programs share, written and read in one place: the wire
//! types (what the server answers, what the proxy returns, the metadata row), the object
//! [`keys`], the [`tags`], the [`launch`] description, Lambda's [`report`] line, the [`sandbox`],
//! the gallery's one-time [`sign_in`].
//!
//! Serde only by default, so the proxy stays light; feature `dynamodb` adds the row as a
//! DynamoDB item (`item`), the row read, the SDK error line and the pipeline's status changes
//! (`transition`), and a job's row and status changes (`job_item`; the [`job`] itself is
//! plain); feature `package` the Lambda deployment package.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod error_body;
#[cfg(feature = "dynamodb")]
pub mod item;
pub mod job;
#[cfg(feature = "dynamodb")]
pub mod job_item;
pub mod keys;
pub mod lambda_cpu;
pub mod launch;
#[cfg(feature = "package")]
pub mod package;
pub mod report;
pub mod sandbox;
#[cfg(feature = "dynamodb")]
pub mod sdk_error;
pub mod sign_in;
pub mod tags;
pub mod tls;
pub mod token;
#[cfg(feature = "dynamodb")]
pub mod transition;

/// The names of the resized variants every path makes, with the longest side of each in pixels.
pub const VARIANT_SIDES: [(&str, u32); 3] = [("thumbnail", 150), ("medium", 600), ("large", 1200)];

/// The object key name under which the untouched original is stored, beside the variants.
pub const ORIGINAL: &str = "original";

/// The time now in RFC 3339, to the millisecond, as every timestamp the lab writes is.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// `at` in RFC 3339, to the millisecond.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let at = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The body of `POST /process-image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessImageRequest {
    pub image_url: String,
    /// The caller's request id (the Lambda's invocation id); the server makes one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Milliseconds spent in each stage of one image's processing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub download: f64,
    pub decode: f64,
    pub resize: f64,
    pub encode: f64,
    pub s3: f64,
    pub dynamodb: f64,
    pub total: f64,
}

impl StageTimings {
    /// Each stage with its name as it appears on the wire, `total` last.
    pub fn stages(&self) -> [(&'static str, f64); 7] {
        [
            ("download", self.download),
            ("decode", self.decode),
            ("resize", self.resize),
            ("encode", self.encode),
            ("s3", self.s3),
            ("dynamodb", self.dynamodb),
            ("total", self.total),
        ]
    }
}

/// Where an image's metadata row stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl ImageStatus {
    /// The value stored in DynamoDB and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// Parses the stored value; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "PENDING" => Some(Self::Pending),
            "PROCESSING" => Some(Self::Processing),
            "COMPLETED" => Some(Self::Completed),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of a successful `POST /process-image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessImageResponse {
    pub image_id: String,
    pub request_id: String,
    pub bucket: String,
    /// Object key per variant name, plus [`ORIGINAL`].
    pub keys: BTreeMap<String, String>,
    pub size_bytes: u64,
    pub width: u32,
    pub height: u32,
    /// The detected source format (`jpeg`, `png`, `gif`, `webp`).
    pub format: String,
    pub timings_ms: StageTimings,
}

/// The metadata row of one image, as stored in DynamoDB (keyed by `image_id`) and listed by
/// `GET /api/images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub image_id: String,
    pub status: ImageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub bucket: String,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<StageTimings>,
    /// Why the image failed, for status `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The bucket of `keys["original"]` where it is not `bucket`: the event-driven pipeline
    /// keeps uploads in their own bucket and writes the variants to `bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_bucket: Option<String>,
    /// The name of the uploaded file, for rows made by an upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_filename: Option<String>,
    /// RFC 3339: when the upload was accepted, for rows made by an upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// Every status the row has had, oldest first (the pipeline appends to it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<StatusChange>,
}

impl ImageRecord {
    /// The bucket that holds the object stored under key name `name` of [`Self::keys`].
    pub fn bucket_of(&self, name: &str) -> &str {
        match (&self.original_bucket, name == ORIGINAL) {
            (Some(bucket), true) => bucket,
            _ => &self.bucket,
        }
    }
}

/// One step of a row's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: ImageStatus,
    /// RFC 3339.
    pub at: String,
}

/// One row of `GET /api/images`, with a link per object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageListItem {
    #[serde(flatten)]
    pub record: ImageRecord,
    /// Per key name of `record.keys`, the server's link to that object
    /// (`/api/images/<image_id>/objects/<name>`), which redirects an authenticated caller to a
    /// short-lived presigned GET URL: nothing is presigned until it is asked for.
    #[serde(default)]
    pub urls: BTreeMap<String, String>,
}

/// A page of `GET /api/images`; pass `next_cursor` back as `?cursor=` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageListPage {
    pub items: Vec<ImageListItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The answer of `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub uptime_s: f64,
    pub bucket: String,
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Requests being processed now, and the most that are admitted at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
    /// The bucket that takes uploads, when the event-driven pipeline is deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploads_bucket: Option<String>,
    /// The bucket the pipeline's resizer writes variants to, when the pipeline is deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_bucket: Option<String>,
    /// `libjpeg-turbo` or `pure-rust`: the JPEG codec the server was built with, which about
    /// halves or doubles its CPU per image. Absent from servers older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg_codec: Option<String>,
}

/// The answer of a successful `POST /upload`: the original is stored and its row is `PENDING`
/// until the pipeline's resizer picks it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResponse {
    pub image_id: String,
    pub status: ImageStatus,
    /// The uploads bucket, which holds the original.
    pub bucket: String,
    /// The original's key in `bucket`.
    pub key: String,
    pub size_bytes: u64,
    /// Where the row can be followed: `/api/images/<image_id>`.
    pub status_url: String,
}

/// The body of `POST /api/uploads`: the file the browser is about to PUT to S3 itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignUploadRequest {
    pub filename: String,
    /// Sent as the object's Content-Type; `application/octet-stream` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The size the caller declares; required: checked against the cap, stored in the row and
    /// signed into the URL as its `Content-Length`, so the PUT must send exactly this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// The answer of `POST /api/uploads`: a presigned PUT URL and the headers that must go with it
/// (they are part of the signature). The row stays `PENDING` until the object arrives and the
/// pipeline processes it; a URL never used leaves a `PENDING` row and no object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignUploadResponse {
    pub image_id: String,
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// Header name (lower case) and value to send with the PUT, exactly.
    pub headers: BTreeMap<String, String>,
    pub key: String,
    pub bucket: String,
    pub expires_in_s: u64,
    pub status_url: String,
}

/// The stable error codes of the image server and the proxy Lambda. Clients match on these,
/// never on the human message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or event is not what the endpoint takes.
    InvalidRequest,
    /// The image URL is not an absolute http(s) URL.
    InvalidUrl,
    /// The URL resolves to a loopback, private, link-local or metadata address.
    ForbiddenAddress,
    /// The image could not be fetched (connection, HTTP status, too many redirects).
    DownloadFailed,
    /// The image did not arrive within the download timeout.
    DownloadTimeout,
    /// The download exceeded the size cap.
    TooLarge,
    /// The bytes are not an image of a supported format.
    NotAnImage,
    /// The image, or a frame of it, has more pixels than the decoding limit allows, or its
    /// decode needs more memory than the server's decode budget.
    ImageTooLarge,
    /// The bytes start like an image but do not decode (truncated, corrupt, or a JPEG with
    /// more scans than the limit).
    DecodeFailed,
    /// Decoding took longer than the server's decode time budget; nothing was stored.
    DecodeTimeout,
    /// S3 or DynamoDB refused the write; nothing was left half-written.
    StorageFailed,
    /// A bearer token is required and was missing or wrong.
    Unauthorized,
    /// A request authenticated by the gallery's session cookie came from another origin (or
    /// said none): refused so that another site cannot act with a signed-in browser.
    CrossOrigin,
    /// The server is at its concurrency limit; retry after `Retry-After`.
    Overloaded,
    /// No such image or route.
    NotFound,
    /// The proxy could not reach the image server.
    Ec2Unreachable,
    /// The image server did not answer within the proxy's timeout.
    Ec2Timeout,
    /// The image server answered something that is not the lab's JSON.
    Ec2BadResponse,
    /// The event-driven pipeline (uploads bucket, processed bucket) is not part of this stack.
    PipelineNotDeployed,
    /// The request (its body included) took longer than the server's request timeout.
    RequestTimeout,
    /// The image server presented a certificate other than the one the proxy pins.
    Ec2Untrusted,
    /// A bug or an unexpected failure; details are in the server's log, not the answer.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidUrl => "invalid_url",
            Self::ForbiddenAddress => "forbidden_address",
            Self::DownloadFailed => "download_failed",
            Self::DownloadTimeout => "download_timeout",
            Self::TooLarge => "too_large",
            Self::NotAnImage => "not_an_image",
            Self::ImageTooLarge => "image_too_large",
            Self::DecodeFailed => "decode_failed",
            Self::DecodeTimeout => "decode_timeout",
            Self::StorageFailed => "storage_failed",
            Self::Unauthorized => "unauthorized",
            Self::CrossOrigin => "cross_origin",
            Self::Overloaded => "overloaded",
            Self::NotFound => "not_found",
            Self::Ec2Unreachable => "ec2_unreachable",
            Self::Ec2Timeout => "ec2_timeout",
            Self::Ec2BadResponse => "ec2_bad_response",
            Self::PipelineNotDeployed => "pipeline_not_deployed",
            Self::RequestTimeout => "request_timeout",
            Self::Ec2Untrusted => "ec2_untrusted",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What the proxy Lambda adds to the image server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaInfo {
    pub request_id: String,
    /// True for the first invocation of this execution environment.
    pub cold_start: bool,
    pub total_ms: f64,
    /// `None` when the image server was never reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_round_trip_ms: Option<f64>,
}

/// The proxy Lambda's result, in the API Gateway proxy shape: `body` is a JSON string holding
/// the image server's answer (or an [`ErrorBody`]) plus a `lambda` field of [`LambdaInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyResponse {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl ProxyResponse {
    /// Parses `body` as JSON.
    pub fn body_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let stamp = now_rfc3339();
        let parsed =
            time::OffsetDateTime::parse(&stamp, &time::format_description::well_known::Rfc3339);
        assert!(parsed.is_ok(), "{stamp}");
        assert!(stamp.ends_with('Z'), "{stamp}");
    }

    #[test]
    fn error_codes_serialize_as_their_wire_strings() {
        for code in [
            ErrorCode::InvalidUrl,
            ErrorCode::ForbiddenAddress,
            ErrorCode::TooLarge,
            ErrorCode::ImageTooLarge,
            ErrorCode::DecodeTimeout,
            ErrorCode::Ec2Timeout,
            ErrorCode::PipelineNotDeployed,
        ] {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn status_round_trips_through_its_stored_value() {
        for status in [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Completed,
            ImageStatus::Failed,
        ] {
            assert_eq!(ImageStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).expect("serializes"),
                format!("\"{status}\"")
            );
        }
        assert_eq!(ImageStatus::parse("completed"), None);
    }

    #[test]
    fn proxy_response_uses_the_api_gateway_field_name() {
        let response = ProxyResponse {
            status_code: 502,
            headers: BTreeMap::new(),
            body: "{}".into(),
        };
        let json = serde_json::to_value(&response).expect("serializes");
        assert_eq!(json["statusCode"], 502);
    }
}
