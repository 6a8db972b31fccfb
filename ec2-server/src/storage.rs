//! The server's only contact with AWS: S3 objects and DynamoDB rows, in a few named functions.
//! Uploads are all-or-nothing: if one object fails, the others are removed again.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hybridlab_wire::ImageRecord;

use hybridlab_wire::item::{self as records, RecordError};

/// The most rows `recent_records` reads to find the newest; a lab table stays far below it.
pub const RECENT_SCAN_LIMIT: usize = 1_000;

/// Why S3 or DynamoDB refused; the text carries the service's error code for the log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("S3 PutObject {key}: {detail}")]
    PutObject { key: String, detail: String },
    #[error("S3 DeleteObject {key}: {detail}")]
    DeleteObject { key: String, detail: String },
    #[error("S3 presign {key}: {detail}")]
    Presign { key: String, detail: String },
    #[error("DynamoDB PutItem {image_id}: {detail}")]
    PutItem { image_id: String, detail: String },
    #[error("DynamoDB Scan: {detail}")]
    Scan { detail: String },
    #[error("the listing cursor is not one this server issued")]
    BadCursor,
    #[error(transparent)]
    BadRow(#[from] RecordError),
}

/// `Code: message` for a service error, the full cause chain for anything else (timeouts,
/// connection failures), never the bare "service error" of `SdkError`'s Display.
pub fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("UnknownError"),
            service.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(err).to_string(),
    }
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
                .metadata("image-id", image_id)
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
                self.delete_objects(&stored).await;
                Err(err)
            }
        }
    }

    /// Deletes `keys`, logging (not returning) failures: this runs while another error is
    /// already being reported, and a failure here is what the log is for.
    pub async fn delete_objects(&self, keys: &[String]) {
        let deletes = keys.iter().map(|key| async move {
            let result = self
                .s3
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await;
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

    /// A presigned GET URL for `key`, valid for `expires`. Computed locally: no request.
    pub async fn presign_get(&self, key: &str, expires: Duration) -> Result<String, StorageError> {
        let presign_error = |detail: String| StorageError::Presign {
            key: key.to_owned(),
            detail,
        };
        let config =
            PresigningConfig::expires_in(expires).map_err(|err| presign_error(err.to_string()))?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|err| presign_error(describe_sdk_error(&err)))?;
        Ok(request.uri().to_owned())
    }
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
