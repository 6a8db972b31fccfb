//! The server's only contact with AWS: S3 objects and DynamoDB rows, in a few named functions.
//! Uploads are all-or-nothing: if one object fails, the others are removed again. The
//! pipeline's uploads go to their own bucket, so the functions they use name the bucket.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hybridlab_wire::sdk_error::describe_sdk_error;
use hybridlab_wire::{ImageRecord, ImageStatus, StatusChange};

use hybridlab_wire::item::{self as records, RecordError};

/// The most rows `recent_records` reads to find the newest, so one `GET /` costs at most a
/// few small Scans however large the table grows; a lab table stays below it. Beyond it the
/// gallery shows the newest of the rows it read.
pub const RECENT_SCAN_LIMIT: usize = 300;

/// Rows per Scan page of `recent_records` and of the stale-row sweep.
const SCAN_PAGE_ROWS: i32 = 100;

/// Why S3 or DynamoDB refused; the text carries the service's error code for the log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("S3 PutObject {key}: {detail}")]
    PutObject { key: String, detail: String },
    #[error("S3 DeleteObject {key}: {detail}")]
    DeleteObject { key: String, detail: String },
    #[error("S3 presign {key}: {detail}")]
    Presign { key: String, detail: String },
    #[error("S3 GetObject {key}: {detail}")]
    GetObject { key: String, detail: String },
    #[error("DynamoDB PutItem {image_id}: {detail}")]
    PutItem { image_id: String, detail: String },
    #[error("DynamoDB UpdateItem {image_id}: {detail}")]
    UpdateItem { image_id: String, detail: String },
    #[error("DynamoDB GetItem {image_id}: {detail}")]
    GetItem { image_id: String, detail: String },
    #[error("DynamoDB Scan: {detail}")]
    Scan { detail: String },
    #[error("the listing cursor is not one this server issued")]
    BadCursor,
    #[error(transparent)]
    BadRow(#[from] RecordError),
}

/// A stored object, opened to be streamed.
#[derive(Debug)]
pub struct StoredObject {
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub body: ByteStream,
}

/// One object to upload.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub key: String,
    pub body: Bytes,
    pub content_type: &'static str,
}

/// The bucket and table of the lab, with their clients.
#[derive(Debug, Clone)]
pub struct ImageStore {
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    bucket: String,
    table: String,
}

impl ImageStore {
    pub fn new(
        s3: aws_sdk_s3::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        bucket: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            s3,
            dynamodb,
            bucket: bucket.into(),
            table: table.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Uploads every object concurrently, each with metadata `image-id`. If any upload fails,
    /// the ones that succeeded are deleted before the error is returned.
    pub async fn put_objects(
        &self,
        image_id: &str,
        objects: Vec<NewObject>,
    ) -> Result<(), StorageError> {
        let uploads = objects.into_iter().map(|object| async move {
            let result = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&object.key)
                .content_type(object.content_type)
                .metadata(IMAGE_ID_METADATA, image_id)
                .body(ByteStream::from(object.body))
                .send()
                .await;
            (object.key, result)
        });
        let results = futures::future::join_all(uploads).await;

        let mut stored = Vec::new();
        let mut first_error = None;
        for (key, result) in results {
            match result {
                Ok(_) => stored.push(key),
                Err(err) => {
                    let detail = describe_sdk_error(&err);
                    first_error.get_or_insert(StorageError::PutObject { key, detail });
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(err) => {
                self.delete_objects(&self.bucket, &stored).await;
                Err(err)
            }
        }
    }

    /// Deletes `keys`, logging (not returning) failures: this runs while another error is
    /// already being reported, and a failure here is what the log is for.
    pub async fn delete_objects(&self, bucket: &str, keys: &[String]) {
        let deletes = keys.iter().map(|key| async move {
            let result = self.s3.delete_object().bucket(bucket).key(key).send().await;
            if let Err(err) = result {
                let err = StorageError::DeleteObject {
                    key: key.clone(),
                    detail: describe_sdk_error(&err),
                };
                tracing::error!(error = %err, "could not remove an object of a failed image");
            }
        });
        futures::future::join_all(deletes).await;
    }

    /// Writes (or replaces) the row of `record.image_id`.
    pub async fn put_record(&self, record: &ImageRecord) -> Result<(), StorageError> {
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(records::to_item(record)))
            .send()
            .await
            .map_err(|err| StorageError::PutItem {
                image_id: record.image_id.clone(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(())
    }

    /// One page of rows in table order, and the cursor of the next page if there is one.
    pub async fn list_records(
        &self,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<(Vec<ImageRecord>, Option<String>), StorageError> {
        let start_key = cursor.map(decode_cursor).transpose()?;
        let output = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|err| StorageError::Scan {
                detail: describe_sdk_error(&err),
            })?;
        let records = output
            .items()
            .iter()
            .map(records::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = output
            .last_evaluated_key()
            .and_then(|key| key.get("image_id"))
            .and_then(|id| id.as_s().ok())
            .map(|id| URL_SAFE_NO_PAD.encode(id));
        Ok((records, next))
    }

    /// The `count` newest rows by creation time, newest first, from at most
    /// [`RECENT_SCAN_LIMIT`] rows. Rows that do not parse are logged and skipped, so one bad
    /// row cannot take the page down.
    pub async fn recent_records(&self, count: usize) -> Result<Vec<ImageRecord>, StorageError> {
        let mut rows = Vec::new();
        let mut start_key = None;
        loop {
            let output = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .limit(SCAN_PAGE_ROWS)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|err| StorageError::Scan {
                    detail: describe_sdk_error(&err),
                })?;
            for item in output.items() {
                match records::from_item(item) {
                    Ok(record) => rows.push(record),
                    Err(err) => tracing::warn!(error = %err, "skipping a malformed row"),
                }
            }
            start_key = output.last_evaluated_key().cloned();
            if start_key.is_none() || rows.len() >= RECENT_SCAN_LIMIT {
                break;
            }
        }
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        rows.truncate(count);
        Ok(rows)
    }

    /// Opens one stored object to stream it to a caller: its type, size and body.
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<StoredObject, StorageError> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| StorageError::GetObject {
                key: key.to_owned(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(StoredObject {
            content_type: object.content_type().map(str::to_owned),
            content_length: object.content_length().and_then(|n| u64::try_from(n).ok()),
            body: object.body,
        })
    }

    /// A presigned PUT URL for an upload of `key` to `bucket`. The Content-Type, the
    /// `image-id` metadata, the Content-Length and `If-None-Match: *` are signed headers, so the
    /// object can only arrive with them: exactly `size_bytes` bytes, and only while no object
    /// has that key (S3 answers a second PUT through the same URL 412 PreconditionFailed:
    /// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>). The
    /// answer lists them for the caller to send.
    pub async fn presign_upload(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        size_bytes: u64,
        image_id: &str,
        expires: Duration,
    ) -> Result<PresignedUpload, StorageError> {
        let presign_error = |detail: String| StorageError::Presign {
            key: key.to_owned(),
            detail,
        };
        let config =
            PresigningConfig::expires_in(expires).map_err(|err| presign_error(err.to_string()))?;
        let request = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .content_length(i64::try_from(size_bytes).unwrap_or(i64::MAX))
            .if_none_match("*")
            .metadata(IMAGE_ID_METADATA, image_id)
            .presigned(config)
            .await
            .map_err(|err| presign_error(describe_sdk_error(&err)))?;
        let headers = request
            .headers()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        Ok(PresignedUpload {
            url: request.uri().to_owned(),
            headers,
        })
    }

    /// Stores an uploaded original in `bucket` with metadata `image-id`, which is how the
    /// pipeline's resizer finds the row.
    pub async fn put_upload(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        image_id: &str,
    ) -> Result<(), StorageError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .metadata(IMAGE_ID_METADATA, image_id)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| StorageError::PutObject {
                key: key.to_owned(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(())
    }

    /// Writes the row of a new image, refusing to replace one with the same id.
    pub async fn create_record(&self, record: &ImageRecord) -> Result<(), StorageError> {
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(records::to_item(record)))
            .condition_expression("attribute_not_exists(image_id)")
            .send()
            .await
            .map_err(|err| StorageError::PutItem {
                image_id: record.image_id.clone(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(())
    }

    /// Marks an upload's row `FAILED` with `reason` and drops its keys (the object was not
    /// stored), only while it is still `PENDING`: a resizer that got further wins.
    pub async fn mark_upload_failed(
        &self,
        image_id: &str,
        reason: &str,
        at: &str,
    ) -> Result<(), StorageError> {
        let change = StatusChange {
            status: ImageStatus::Failed,
            at: at.to_owned(),
        };
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .key("image_id", AttributeValue::S(image_id.to_owned()))
            .update_expression(
                "SET #status = :failed, #error = :reason, updated_at = :at, \
                 history = list_append(if_not_exists(history, :empty), :change) REMOVE #keys",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#keys", "keys")
            .expression_attribute_values(":failed", AttributeValue::S("FAILED".into()))
            .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .expression_attribute_values(":at", AttributeValue::S(at.to_owned()))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(
                ":change",
                AttributeValue::L(vec![records::status_change(&change)]),
            )
            .send()
            .await
            .map_err(|err| StorageError::UpdateItem {
                image_id: image_id.to_owned(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(())
    }

    /// The ids of up to `max_rows` rows that are `PENDING` or `PROCESSING`, read with filtered
    /// Scans of [`SCAN_PAGE_ROWS`] rows: the candidates of the stale-row sweep, which then
    /// changes each only under a condition.
    pub async fn unfinished_ids(&self, max_rows: usize) -> Result<Vec<String>, StorageError> {
        let mut ids = Vec::new();
        let mut scanned = 0;
        let mut start_key = None;
        loop {
            let output = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .limit(SCAN_PAGE_ROWS)
                .projection_expression("image_id")
                .filter_expression("#status = :pending OR #status = :processing")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", AttributeValue::S("PENDING".into()))
                .expression_attribute_values(":processing", AttributeValue::S("PROCESSING".into()))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|err| StorageError::Scan {
                    detail: describe_sdk_error(&err),
                })?;
            scanned += usize::try_from(output.scanned_count()).unwrap_or(0);
            ids.extend(
                output
                    .items()
                    .iter()
                    .filter_map(|item| item.get("image_id"))
                    .filter_map(|id| id.as_s().ok())
                    .cloned(),
            );
            start_key = output.last_evaluated_key().cloned();
            if start_key.is_none() || scanned >= max_rows {
                break;
            }
        }
        Ok(ids)
    }

    /// Applies a conditional status change to the row of `image_id`. `Ok(false)` when its
    /// condition did not hold (the row moved on meanwhile): that is not an error.
    pub async fn transition(
        &self,
        image_id: &str,
        update: hybridlab_wire::transition::ConditionalUpdate,
    ) -> Result<bool, StorageError> {
        let request = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("image_id", AttributeValue::S(image_id.to_owned()));
        match update.apply(request).send().await {
            Ok(_) => Ok(true),
            Err(err) => {
                let detail = describe_sdk_error(&err);
                if err
                    .into_service_error()
                    .is_conditional_check_failed_exception()
                {
                    Ok(false)
                } else {
                    Err(StorageError::UpdateItem {
                        image_id: image_id.to_owned(),
                        detail,
                    })
                }
            }
        }
    }

    /// The row of `image_id`, if there is one.
    pub async fn get_record(&self, image_id: &str) -> Result<Option<ImageRecord>, StorageError> {
        let output = hybridlab_wire::item::get_row(&self.dynamodb, &self.table, image_id)
            .send()
            .await
            .map_err(|err| StorageError::GetItem {
                image_id: image_id.to_owned(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(output.item().map(records::from_item).transpose()?)
    }
}

/// The user metadata every stored original carries: `x-amz-meta-image-id` on the wire.
pub const IMAGE_ID_METADATA: &str = "image-id";

/// A presigned PUT and the headers (lower-case names) that must be sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUpload {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

fn decode_cursor(
    cursor: &str,
) -> Result<std::collections::HashMap<String, AttributeValue>, StorageError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StorageError::BadCursor)?;
    let image_id = String::from_utf8(bytes).map_err(|_| StorageError::BadCursor)?;
    if image_id.is_empty() {
        return Err(StorageError::BadCursor);
    }
    Ok(std::collections::HashMap::from([(
        "image_id".to_owned(),
        AttributeValue::S(image_id),
    )]))
}
