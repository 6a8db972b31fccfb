//! The resizer function of the event-driven pipeline: for each uploaded object an S3 event
//! names, read its image id from the object's metadata, move the row to PROCESSING
//! (conditionally, so a duplicate event writes nothing), make the lab's variants with the
//! server's own image code, store them in the processed bucket and move the row to COMPLETED,
//! or to FAILED with the reason.
//!
//! Records are processed one after another and independently: one record's failure is in its
//! own summary and never loses the others. The invocation fails (so Lambda's async retry runs
//! it again) only when a record failed in a way a retry can fix, S3 or DynamoDB unreachable;
//! the records already done are then duplicates that the conditions turn away.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use hybridlab_imaging::{DecodeLimits, ExtraFormat, LAB_VARIANTS, make_variants_in};
use hybridlab_wire::keys::{image_id_of_upload_key, variant_key};
use hybridlab_wire::sdk_error::describe_sdk_error;
use hybridlab_wire::transition::{self, Completion, ConditionalUpdate};
use hybridlab_wire::{ImageStatus, ORIGINAL, StageTimings};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The decoding limit when `HYBRIDLAB_MAX_PIXELS` is unset: the image server's default.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

/// The largest object the function reads. The pixel limit guards decoding; this guards the
/// download, which is held in memory whole (a 64 MP PNG is well under it).
pub const MAX_OBJECT_BYTES: i64 = 256 * 1024 * 1024;

/// The lease of an attempt when the invocation has no deadline (tests): Lambda's longest
/// timeout, so no attempt that may still be running is taken over.
pub const FALLBACK_LEASE: Duration = Duration::from_secs(15 * 60);

/// The user metadata (`x-amz-meta-image-id`) the upload puts on the object.
pub const IMAGE_ID_METADATA: &str = "image-id";

/// The share of the function's memory one decode may need, in percent; the rest is the
/// runtime, the SDK clients, the original as read and the encoded variants.
pub const DECODE_MEMORY_PERCENT: u64 = 70;

/// The resizer's configuration, from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizerConfig {
    /// The metadata table (`HYBRIDLAB_TABLE`).
    pub table: String,
    /// Where variants go (`HYBRIDLAB_PROCESSED_BUCKET`); never read from, which keeps the
    /// function from triggering itself.
    pub processed_bucket: String,
    /// Formats made besides each variant's JPEG (`HYBRIDLAB_EXTRA_FORMATS`, e.g. `webp,png`).
    pub extra_formats: Vec<ExtraFormat>,
    /// The most pixels an image may have (`HYBRIDLAB_MAX_PIXELS`).
    pub max_pixels: u64,
    /// The most memory one decode may need: a share of the function's memory
    /// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, which Lambda sets), so an image the function
    /// cannot hold is refused with a reason instead of the environment being killed.
    pub decode_memory_bytes: u64,
}

/// Why the function's environment is not usable; reported as an init error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set: the resizer needs the table and the processed bucket")]
    Missing(&'static str),
    #[error("HYBRIDLAB_EXTRA_FORMATS names `{0}`: the extra formats are `webp` and `png`")]
    UnknownFormat(String),
    #[error("HYBRIDLAB_MAX_PIXELS `{0}` is not a positive whole number")]
    BadMaxPixels(String),
}

impl ResizerConfig {
    /// Reads `HYBRIDLAB_TABLE`, `HYBRIDLAB_PROCESSED_BUCKET`, `HYBRIDLAB_EXTRA_FORMATS` and
    /// `HYBRIDLAB_MAX_PIXELS` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let table = required("HYBRIDLAB_TABLE")?;
        let processed_bucket = required("HYBRIDLAB_PROCESSED_BUCKET")?;
        let mut extra_formats = Vec::new();
        for name in lookup("HYBRIDLAB_EXTRA_FORMATS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let format =
                ExtraFormat::parse(name).ok_or_else(|| ConfigError::UnknownFormat(name.into()))?;
            if !extra_formats.contains(&format) {
                extra_formats.push(format);
            }
        }
        let max_pixels = match lookup("HYBRIDLAB_MAX_PIXELS") {
            None => DEFAULT_MAX_PIXELS,
            Some(raw) => match raw.trim().replace('_', "").parse::<u64>() {
                Ok(pixels) if pixels > 0 => pixels,
                _ => return Err(ConfigError::BadMaxPixels(raw)),
            },
        };
        let decode_memory_bytes = lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|mb| mb.trim().parse::<u64>().ok())
            .map_or(DecodeLimits::default().max_bytes, |mb| {
                mb * 1024 * 1024 / 100 * DECODE_MEMORY_PERCENT
            });
        Ok(Self {
            table,
            processed_bucket,
            extra_formats,
            max_pixels,
            decode_memory_bytes,
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The S3 notification document, as much of it as the resizer reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3EventRecord>,
}

/// One record of an [`S3Event`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3EventRecord {
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    #[serde(default)]
    pub s3: S3Entity,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Entity {
    #[serde(default)]
    pub bucket: S3Bucket,
    #[serde(default)]
    pub object: S3Object,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Bucket {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Object {
    /// URL-encoded, with `+` for a space: see [`decode_event_key`].
    #[serde(default)]
    pub key: String,
    /// The version the event is about, in a versioned bucket: the resizer reads exactly that
    /// one, not whatever is current when it gets there.
    #[serde(rename = "versionId", default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Variants stored, row COMPLETED.
    Completed,
    /// Row FAILED, with the reason; no variants kept.
    Failed,
    /// The row was not PENDING (a duplicate event, or already done): nothing written.
    Duplicate,
    /// Not for the resizer (another event type, an object gone or without an image id).
    Skipped,
    /// An object in the processed bucket: processing it could loop, so nothing was written.
    Refused,
    /// S3 or DynamoDB failed in a way a retry may fix; the invocation reports an error.
    Retry,
}

/// The summary of one record, returned in the invocation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    pub bucket: String,
    /// Decoded.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub outcome: Outcome,
    /// Why, for anything but `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The row's keys after completion.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
}

/// The invocation's answer: one summary per record, in the event's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeSummary {
    pub records: Vec<RecordSummary>,
}

/// Why an invocation is reported as failed to Lambda, so that it is retried.
#[derive(Debug, thiserror::Error)]
pub enum ResizerError {
    #[error(
        "{count} of {total} records could not be processed and may be on retry; first: {first}"
    )]
    Retry {
        count: usize,
        total: usize,
        first: String,
    },
}

impl From<ResizerError> for lambda_runtime::Diagnostic {
    fn from(err: ResizerError) -> Self {
        Self {
            error_type: "Resizer.Retry".into(),
            error_message: err.to_string(),
        }
    }
}

/// S3 keys in event documents are URL-encoded with `+` for a space.
pub fn decode_event_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The end of an attempt's lease, in Unix seconds: the invocation's deadline (the attempt
/// cannot run past it, and Lambda retries only after it), or [`FALLBACK_LEASE`] from `now`
/// when the invocation has none.
pub fn lease_until(now: i64, deadline_ms: u64) -> i64 {
    let deadline = i64::try_from(deadline_ms.div_ceil(1000)).unwrap_or(i64::MAX);
    if deadline > now {
        deadline
    } else {
        now.saturating_add(FALLBACK_LEASE.as_secs() as i64)
    }
}

/// The size the upload declared, from the row `start_processing` returned.
fn declared_size(row: &std::collections::HashMap<String, AttributeValue>) -> Option<i64> {
    row.get("size_bytes")
        .and_then(|size| size.as_n().ok())
        .and_then(|size| size.parse().ok())
}

/// Milliseconds, with microsecond precision.
fn ms(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

/// The current time in RFC 3339, to the millisecond, and in Unix seconds.
fn now() -> (String, i64) {
    let now = OffsetDateTime::now_utc();
    (hybridlab_wire::rfc3339(now), now.unix_timestamp())
}

/// How one record ended, before it is summarised.
enum Ended {
    Completed(BTreeMap<String, String>),
    Failed(String),
    Duplicate(String),
    Skipped(String),
    Refused(String),
    Retry(String),
}

/// The resizer with its configuration and clients, built once per execution environment.
#[derive(Debug, Clone)]
pub struct Resizer {
    config: ResizerConfig,
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Resizer {
    pub fn new(
        config: ResizerConfig,
        s3: aws_sdk_s3::Client,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Self {
        Self {
            config,
            s3,
            dynamodb,
        }
    }

    /// Clients from the standard chain (the sandbox sets `AWS_ENDPOINT_URL` and credentials;
    /// on AWS the execution role is used). Reads nothing over the network.
    pub async fn from_env(config: ResizerConfig) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let s3 = super::s3_client(&shared);
        let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
        Self::new(config, s3, dynamodb)
    }

    pub fn config(&self) -> &ResizerConfig {
        &self.config
    }

    /// The Lambda handler: [`Self::process`], then an error if any record should be retried.
    pub async fn handle(&self, event: LambdaEvent<S3Event>) -> Result<ResizeSummary, ResizerError> {
        let summary = self.process(event.payload, event.context.deadline).await;
        let retries: Vec<&RecordSummary> = summary
            .records
            .iter()
            .filter(|record| record.outcome == Outcome::Retry)
            .collect();
        match retries.first() {
            None => Ok(summary),
            Some(first) => Err(ResizerError::Retry {
                count: retries.len(),
                total: summary.records.len(),
                first: format!(
                    "s3://{}/{}: {}",
                    first.bucket,
                    first.key,
                    first.reason.as_deref().unwrap_or("no reason")
                ),
            }),
        }
    }

    /// Processes every record of `event`, one after another; `deadline_ms` is the
    /// invocation's deadline in Unix milliseconds (0 when unknown).
    pub async fn process(&self, event: S3Event, deadline_ms: u64) -> ResizeSummary {
        let mut records = Vec::with_capacity(event.records.len());
        for record in event.records {
            records.push(self.process_record(record, deadline_ms).await);
        }
        ResizeSummary { records }
    }

    async fn process_record(&self, record: S3EventRecord, deadline_ms: u64) -> RecordSummary {
        let bucket = record.s3.bucket.name;
        let key = decode_event_key(&record.s3.object.key);
        let version = record.s3.object.version_id.filter(|v| !v.is_empty());
        let mut image_id = None;
        let ended = self
            .run(
                &record.event_name,
                &bucket,
                &key,
                version.as_deref(),
                &mut image_id,
                deadline_ms,
            )
            .await;
        let id = image_id.as_deref().unwrap_or("");
        let (outcome, reason, keys) = match ended {
            Ended::Completed(keys) => (Outcome::Completed, None, keys),
            Ended::Failed(reason) => {
                tracing::warn!(image_id = id, %bucket, %key, %reason, "image failed");
                (Outcome::Failed, Some(reason), BTreeMap::new())
            }
            Ended::Duplicate(reason) => {
                tracing::info!(image_id = id, %bucket, %key, %reason, "duplicate event ignored");
                (Outcome::Duplicate, Some(reason), BTreeMap::new())
            }
            Ended::Skipped(reason) => {
                tracing::info!(image_id = id, %bucket, %key, %reason, "record skipped");
                (Outcome::Skipped, Some(reason), BTreeMap::new())
            }
            Ended::Refused(reason) => {
                tracing::error!(image_id = id, %bucket, %key, %reason, "record refused");
                (Outcome::Refused, Some(reason), BTreeMap::new())
            }
            Ended::Retry(reason) => {
                tracing::error!(image_id = id, %bucket, %key, %reason, "record left for a retry");
                (Outcome::Retry, Some(reason), BTreeMap::new())
            }
        };
        RecordSummary {
            bucket,
            key,
            image_id,
            outcome,
            reason,
            keys,
        }
    }

    async fn run(
        &self,
        event_name: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        image_id: &mut Option<String>,
        deadline_ms: u64,
    ) -> Ended {
        let started = Instant::now();
        if !event_name.starts_with("ObjectCreated:") {
            return Ended::Skipped(format!("`{event_name}` is not an ObjectCreated event"));
        }
        if bucket == self.config.processed_bucket {
            return Ended::Refused(format!(
                "the object is in the processed bucket {bucket}, where the resizer writes: \
                 its notification must name the uploads bucket only, or the function triggers \
                 itself"
            ));
        }

        let head = match self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(head) => head,
            Err(err) => {
                let reason = describe_sdk_error(&err);
                return match err.into_service_error().is_not_found() {
                    true => Ended::Skipped("the object no longer exists".into()),
                    false => Ended::Retry(format!("HeadObject failed: {reason}")),
                };
            }
        };
        let id = head
            .metadata()
            .and_then(|metadata| metadata.get(IMAGE_ID_METADATA))
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        let Some(id) = id else {
            return self.without_metadata(key, image_id).await;
        };
        *image_id = Some(id.clone());

        // The lease: a duplicate event finds PROCESSING (or a final status) and stops here.
        let dynamodb_started = Instant::now();
        let (at, now_s) = now();
        let row = match self
            .update(
                &id,
                transition::start_processing(
                    &at,
                    now_s,
                    lease_until(now_s, deadline_ms),
                    bucket,
                    key,
                ),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(err) => {
                let reason = describe_sdk_error(&err);
                return match err
                    .into_service_error()
                    .is_conditional_check_failed_exception()
                {
                    true => Ended::Duplicate(
                        "no PENDING row has this object as its original: another attempt has \
                         it, it is done, it does not exist, or the metadata names another \
                         image's row"
                            .into(),
                    ),
                    false => Ended::Retry(format!("setting PROCESSING failed: {reason}")),
                };
            }
        };
        let dynamodb = dynamodb_started.elapsed();
        tracing::info!(image_id = %id, %bucket, %key, "processing");

        // The upload declared its size and the presigned URL was signed for it; an object of
        // another size came some other way (or through an endpoint that does not check the
        // signature, as the sandbox's moto does not) and is not read at all.
        let declared = declared_size(&row);
        let size = head.content_length().unwrap_or_default();
        if let Some(declared) = declared.filter(|&declared| declared != size) {
            return self
                .fail(
                    &id,
                    format!("the object is {size} bytes but the upload declared {declared}"),
                )
                .await;
        }
        if size > MAX_OBJECT_BYTES {
            return self
                .fail(
                    &id,
                    format!("the object is {size} bytes, over the limit of {MAX_OBJECT_BYTES}"),
                )
                .await;
        }
        // The read stops at the size HeadObject reported: the body may not grow on the way.
        let cap = declared.unwrap_or(MAX_OBJECT_BYTES).min(MAX_OBJECT_BYTES);

        let download_started = Instant::now();
        let original = match self.download(bucket, key, version, cap).await {
            Ok(bytes) => bytes,
            Err(Ended::Failed(reason)) => return self.fail(&id, reason).await,
            Err(other) => return other,
        };
        let download = download_started.elapsed();

        let limits = DecodeLimits {
            max_pixels: self.config.max_pixels,
            max_bytes: self.config.decode_memory_bytes,
            ..DecodeLimits::default()
        };
        // Inline rather than on a blocking thread: an invocation has one event and nothing
        // else to do meanwhile. The limits bound its work and memory; its time is bounded by
        // the function's timeout, which ends the environment.
        let processed =
            match make_variants_in(&original, &LAB_VARIANTS, limits, &self.config.extra_formats) {
                Ok(processed) => processed,
                Err(err) => return self.fail(&id, err.to_string()).await,
            };
        drop(original);

        let mut keys = stored_keys(&row, key);
        let mut objects = Vec::new();
        for variant in processed.variants {
            let jpeg_key = variant_key(&id, variant.name, "jpg");
            keys.insert(variant.name.to_owned(), jpeg_key.clone());
            objects.push((jpeg_key, variant.jpeg, "image/jpeg"));
            for (format, bytes) in variant.extra {
                let object_key = variant_key(&id, variant.name, format.name());
                keys.insert(
                    format!("{}.{}", variant.name, format.name()),
                    object_key.clone(),
                );
                objects.push((object_key, bytes, format.mime_type()));
            }
        }

        let s3_started = Instant::now();
        if let Err(reason) = self.put_variants(&id, objects).await {
            return self.fail(&id, reason).await;
        }
        let s3 = s3_started.elapsed();

        // The total is fixed before the row is written, as the image server does, so the row
        // holds every stage it reports.
        let timings = StageTimings {
            download: ms(download),
            decode: ms(processed.timings.decode),
            resize: ms(processed.timings.resize),
            encode: ms(processed.timings.encode),
            s3: ms(s3),
            dynamodb: ms(dynamodb),
            total: ms(started.elapsed()),
        };
        let (at, _) = now();
        let completion = Completion {
            keys: &keys,
            width: processed.width,
            height: processed.height,
            format: processed.format.name(),
            timings: &timings,
            at: &at,
        };
        match self
            .update(&id, transition::complete(&completion))
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(
                    image_id = %id,
                    width = processed.width,
                    height = processed.height,
                    variants = keys.len() - 1,
                    total_ms = timings.total,
                    "completed"
                );
                Ended::Completed(keys)
            }
            Err(err) => {
                let reason = describe_sdk_error(&err);
                match err
                    .into_service_error()
                    .is_conditional_check_failed_exception()
                {
                    // Only an attempt that took over after this one's lease ran out changes
                    // the row meanwhile; it writes the same keys, so the objects stay.
                    true => Ended::Duplicate(
                        "the row left PROCESSING while the variants were made".into(),
                    ),
                    false => Ended::Retry(format!("setting COMPLETED failed: {reason}")),
                }
            }
        }
    }

    /// An object without the `image-id` metadata: if its key names a PENDING row, that row can
    /// never complete, so it is marked FAILED; anything else is not the resizer's.
    async fn without_metadata(&self, key: &str, image_id: &mut Option<String>) -> Ended {
        let Some(id) = image_id_of_upload_key(key) else {
            return Ended::Skipped(
                "the object has no image-id metadata and its key is not uploads/<id>/...".into(),
            );
        };
        let row = match hybridlab_wire::item::get_row(&self.dynamodb, &self.config.table, id)
            .send()
            .await
        {
            Ok(output) => output.item,
            Err(err) => {
                return Ended::Retry(format!("GetItem failed: {}", describe_sdk_error(&err)));
            }
        };
        let pending = matches!(
            row.as_ref().and_then(|row| row.get("status")),
            Some(AttributeValue::S(status)) if status == ImageStatus::Pending.as_str()
        );
        if !pending {
            return Ended::Skipped(format!(
                "the object has no image-id metadata and no PENDING row {id} exists"
            ));
        }
        *image_id = Some(id.to_owned());
        self.fail(id, "the object has no image-id metadata".into())
            .await
    }

    /// GetObject of `version` (the current one when `None`) and its body, at most `cap` bytes:
    /// `Failed` for a longer body or an object deleted since the event, `Retry` for anything a
    /// retry may fix.
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        cap: i64,
    ) -> Result<Vec<u8>, Ended> {
        let output = match self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                let reason = describe_sdk_error(&err);
                return Err(match err.into_service_error().is_no_such_key() {
                    true => Ended::Failed("the object was deleted before it was read".into()),
                    false => Ended::Retry(format!("GetObject failed: {reason}")),
                });
            }
        };
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut body = output.body;
        let mut bytes = Vec::with_capacity(
            usize::try_from(output.content_length.unwrap_or_default())
                .unwrap_or(0)
                .min(cap),
        );
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > cap {
                        return Err(Ended::Failed(format!(
                            "the object's body is longer than the {cap} bytes expected"
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(bytes),
                Err(err) => {
                    return Err(Ended::Retry(format!(
                        "reading the object failed: {}",
                        DisplayErrorContext(&err)
                    )));
                }
            }
        }
    }

    /// Puts every variant at once. If any put fails, the ones already written are deleted so
    /// the processed bucket never holds variants of a FAILED row.
    async fn put_variants(
        &self,
        image_id: &str,
        objects: Vec<(String, Vec<u8>, &'static str)>,
    ) -> Result<(), String> {
        let keys: Vec<String> = objects.iter().map(|(key, _, _)| key.clone()).collect();
        let puts = objects.into_iter().map(|(key, body, content_type)| {
            self.s3
                .put_object()
                .bucket(&self.config.processed_bucket)
                .key(key)
                .content_type(content_type)
                .metadata(IMAGE_ID_METADATA, image_id)
                .body(ByteStream::from(body))
                .send()
        });
        let results = futures::future::join_all(puts).await;
        let Some(err) = results.iter().find_map(|result| result.as_ref().err()) else {
            return Ok(());
        };
        let reason = format!("storing the variants failed: {}", describe_sdk_error(err));
        self.delete_variants(image_id, &keys).await;
        Err(reason)
    }

    /// Best effort: a failure is logged, the row says FAILED either way.
    async fn delete_variants(&self, image_id: &str, keys: &[String]) {
        let objects: Vec<ObjectIdentifier> = keys
            .iter()
            .filter_map(|key| ObjectIdentifier::builder().key(key).build().ok())
            .collect();
        let delete = match Delete::builder().set_objects(Some(objects)).build() {
            Ok(delete) => delete,
            Err(err) => {
                tracing::error!(image_id, error = %err, "the variants could not be listed for deletion");
                return;
            }
        };
        if let Err(err) = self
            .s3
            .delete_objects()
            .bucket(&self.config.processed_bucket)
            .delete(delete)
            .send()
            .await
        {
            tracing::error!(image_id, error = %describe_sdk_error(&err), keys = ?keys, "variants of a failed image were left behind");
        }
    }

    /// Moves the row to FAILED with `reason`. A row already finished is left as it is.
    async fn fail(&self, image_id: &str, reason: String) -> Ended {
        let (at, _) = now();
        match self
            .update(image_id, transition::fail(&reason, &at))
            .send()
            .await
        {
            Ok(_) => Ended::Failed(reason),
            Err(err) => {
                let error = describe_sdk_error(&err);
                match err
                    .into_service_error()
                    .is_conditional_check_failed_exception()
                {
                    true => Ended::Duplicate(format!(
                        "{reason}; the row was no longer PENDING or PROCESSING, so it was left as it is"
                    )),
                    false => Ended::Retry(format!("{reason}; setting FAILED failed: {error}")),
                }
            }
        }
    }

    fn update(
        &self,
        image_id: &str,
        change: ConditionalUpdate,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        change.apply(
            self.dynamodb
                .update_item()
                .table_name(&self.config.table)
                .key("image_id", AttributeValue::S(image_id.to_owned())),
        )
    }
}

/// The row's keys as the PROCESSING update returned them (the original's, from the upload),
/// with the event's key as the original if the row has none.
fn stored_keys(
    row: &std::collections::HashMap<String, AttributeValue>,
    key: &str,
) -> BTreeMap<String, String> {
    let mut keys: BTreeMap<String, String> = match row.get("keys") {
        Some(AttributeValue::M(map)) => map
            .iter()
            .filter_map(|(name, value)| match value {
                AttributeValue::S(key) => Some((name.clone(), key.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    keys.entry(ORIGINAL.to_owned())
        .or_insert_with(|| key.to_owned());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(candidate, _)| candidate == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn config_needs_the_table_and_the_processed_bucket() {
        assert_eq!(
            ResizerConfig::from_lookup(env(&[("HYBRIDLAB_PROCESSED_BUCKET", "p")])),
            Err(ConfigError::Missing("HYBRIDLAB_TABLE"))
        );
        assert_eq!(
            ResizerConfig::from_lookup(env(&[("HYBRIDLAB_TABLE", "t")])),
            Err(ConfigError::Missing("HYBRIDLAB_PROCESSED_BUCKET"))
        );
        let config = ResizerConfig::from_lookup(env(&[
            ("HYBRIDLAB_TABLE", "t"),
            ("HYBRIDLAB_PROCESSED_BUCKET", "p"),
        ]))
        .expect("complete");
        assert_eq!(config.extra_formats, []);
        assert_eq!(config.max_pixels, DEFAULT_MAX_PIXELS);
    }

    #[test]
    fn config_reads_extra_formats_and_the_pixel_limit() {
        let base = [
            ("HYBRIDLAB_TABLE", "t"),
            ("HYBRIDLAB_PROCESSED_BUCKET", "p"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            ResizerConfig::from_lookup(env(&pairs))
        };
        let config = with(("HYBRIDLAB_EXTRA_FORMATS", " WebP, png ,webp")).expect("valid");
        assert_eq!(config.extra_formats, [ExtraFormat::WebP, ExtraFormat::Png]);
        assert_eq!(
            with(("HYBRIDLAB_EXTRA_FORMATS", "webp,avif")),
            Err(ConfigError::UnknownFormat("avif".into()))
        );
        assert_eq!(
            with(("HYBRIDLAB_MAX_PIXELS", "1_000_000"))
                .expect("valid")
                .max_pixels,
            1_000_000
        );
        assert_eq!(
            with(("HYBRIDLAB_MAX_PIXELS", "0")),
            Err(ConfigError::BadMaxPixels("0".into()))
        );
        assert_eq!(
            with(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
                .expect("valid")
                .decode_memory_bytes,
            1024 * 1024 * 1024 / 100 * DECODE_MEMORY_PERCENT
        );
    }

    #[test]
    fn event_keys_are_url_decoded_with_plus_for_space() {
        assert_eq!(
            decode_event_key("uploads/abc/cat+photo%282%29.jpg"),
            "uploads/abc/cat photo(2).jpg"
        );
        assert_eq!(
            decode_event_key("uploads/abc/a%2Bb.jpg"),
            "uploads/abc/a+b.jpg"
        );
        assert_eq!(
            decode_event_key("uploads/abc/%C3%A9t%C3%A9.png"),
            "uploads/abc/été.png"
        );
    }

    #[test]
    fn the_lease_ends_at_the_deadline_or_after_the_fallback() {
        assert_eq!(lease_until(1_000, 1_030_500), 1_031);
        assert_eq!(
            lease_until(1_000, 0),
            1_000 + FALLBACK_LEASE.as_secs() as i64
        );
        assert_eq!(
            lease_until(1_000, 900_000),
            1_000 + FALLBACK_LEASE.as_secs() as i64
        );
    }

    #[test]
    fn the_sandbox_event_document_parses() {
        let document = serde_json::json!({
            "Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": "uploads", "arn": "arn:aws:s3:::uploads"},
                    "object": {"key": "uploads/abc/cat+1.jpg", "size": 10, "eTag": "e"},
                },
            }]
        });
        let event: S3Event = serde_json::from_value(document).expect("parses");
        assert_eq!(event.records.len(), 1);
        assert_eq!(event.records[0].event_name, "ObjectCreated:Put");
        assert_eq!(event.records[0].s3.bucket.name, "uploads");
        assert_eq!(event.records[0].s3.object.key, "uploads/abc/cat+1.jpg");
    }

    #[test]
    fn stored_keys_keep_the_original_of_the_row() {
        let row = std::collections::HashMap::from([(
            "keys".to_owned(),
            AttributeValue::M(std::collections::HashMap::from([(
                "original".to_owned(),
                AttributeValue::S("uploads/abc/cat.jpg".into()),
            )])),
        )]);
        assert_eq!(
            stored_keys(&row, "ignored")["original"],
            "uploads/abc/cat.jpg"
        );
        assert_eq!(
            stored_keys(&Default::default(), "uploads/abc/x.jpg")["original"],
            "uploads/abc/x.jpg"
        );
    }
}
