//! The metadata row of an image as a DynamoDB item, both ways. Plain functions over
//! `AttributeValue`s so the mapping is tested without a table.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::{ImageRecord, ImageStatus, StageTimings, StatusChange};

/// An item as the SDK takes and returns it.
pub type Item = HashMap<String, AttributeValue>;

/// Why an item does not read as an [`ImageRecord`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("item {image_id}: attribute `{attribute}` {problem}")]
pub struct RecordError {
    pub image_id: String,
    pub attribute: &'static str,
    pub problem: &'static str,
}

/// The table's partition key: every row is keyed by its image id.
pub const KEY_ATTRIBUTE: &str = "image_id";

/// The request that reads the row of `image_id`, strongly consistent (a row the caller or the
/// pipeline just wrote must be seen); callers send it and map the error their own way.
pub fn get_row(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    image_id: &str,
) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
    client
        .get_item()
        .table_name(table)
        .key(KEY_ATTRIBUTE, string(image_id))
        .consistent_read(true)
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The item written for `record`. Absent optional fields are left out, as DynamoDB prefers.
pub fn to_item(record: &ImageRecord) -> Item {
    let mut item = Item::new();
    item.insert("image_id".into(), string(&record.image_id));
    item.insert("status".into(), string(record.status.as_str()));
    item.insert("bucket".into(), string(&record.bucket));
    item.insert("created_at".into(), string(&record.created_at));
    item.insert("updated_at".into(), string(&record.updated_at));
    if !record.keys.is_empty() {
        let keys = record
            .keys
            .iter()
            .map(|(name, key)| (name.clone(), string(key)))
            .collect();
        item.insert("keys".into(), AttributeValue::M(keys));
    }
    if let Some(url) = &record.source_url {
        item.insert("source_url".into(), string(url));
    }
    if let Some(size) = record.size_bytes {
        item.insert("size_bytes".into(), number(size));
    }
    if let Some(width) = record.width {
        item.insert("width".into(), number(width));
    }
    if let Some(height) = record.height {
        item.insert("height".into(), number(height));
    }
    if let Some(format) = &record.format {
        item.insert("format".into(), string(format));
    }
    if let Some(timings) = &record.timings_ms {
        item.insert("timings_ms".into(), stage_timings(timings));
    }
    if let Some(error) = &record.error {
        item.insert("error".into(), string(error));
    }
    if let Some(request_id) = &record.request_id {
        item.insert("request_id".into(), string(request_id));
    }
    if let Some(bucket) = &record.original_bucket {
        item.insert("original_bucket".into(), string(bucket));
    }
    if let Some(filename) = &record.original_filename {
        item.insert("original_filename".into(), string(filename));
    }
    if let Some(at) = &record.uploaded_at {
        item.insert("uploaded_at".into(), string(at));
    }
    if !record.history.is_empty() {
        let history = record.history.iter().map(status_change).collect();
        item.insert("history".into(), AttributeValue::L(history));
    }
    item
}

/// One entry of the `history` list, as [`to_item`] writes it and the pipeline appends it.
pub fn status_change(change: &StatusChange) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("status".to_owned(), string(change.status.as_str())),
        ("at".to_owned(), string(&change.at)),
    ]))
}

/// The `timings_ms` map, as [`to_item`] writes it and the pipeline sets it: milliseconds per
/// stage, to the microsecond.
pub fn stage_timings(timings: &StageTimings) -> AttributeValue {
    AttributeValue::M(
        timings
            .stages()
            .into_iter()
            .map(|(stage, ms)| (stage.to_owned(), number(format!("{ms:.3}"))))
            .collect(),
    )
}

/// Reads an item back. Attributes this version does not know are ignored, so rows written by
/// a newer pipeline still list.
pub fn from_item(item: &Item) -> Result<ImageRecord, RecordError> {
    let image_id = match item.get("image_id") {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => {
            return Err(RecordError {
                image_id: "?".into(),
                attribute: "image_id",
                problem: "is missing or not a string",
            });
        }
    };
    let fail = |attribute, problem| RecordError {
        image_id: image_id.clone(),
        attribute,
        problem,
    };
    let text = |name: &'static str| -> Result<Option<String>, RecordError> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(fail(name, "is not a string")),
        }
    };
    let required = |name: &'static str| -> Result<String, RecordError> {
        text(name)?.ok_or_else(|| fail(name, "is missing"))
    };
    let parsed = |name: &'static str| -> Result<Option<u64>, RecordError> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| fail(name, "is not a whole number")),
            Some(_) => Err(fail(name, "is not a number")),
        }
    };
    let dimension = |name: &'static str| -> Result<Option<u32>, RecordError> {
        parsed(name)?
            .map(|value| u32::try_from(value).map_err(|_| fail(name, "is out of range")))
            .transpose()
    };

    let status_text = required("status")?;
    let status =
        ImageStatus::parse(&status_text).ok_or_else(|| fail("status", "is not a known status"))?;
    let keys = match item.get("keys") {
        None => BTreeMap::new(),
        Some(AttributeValue::M(map)) => map
            .iter()
            .map(|(name, value)| match value {
                AttributeValue::S(key) => Ok((name.clone(), key.clone())),
                _ => Err(fail("keys", "holds a value that is not a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(fail("keys", "is not a map")),
    };
    let timings_ms = match item.get("timings_ms") {
        None => None,
        Some(AttributeValue::M(map)) => {
            let stage = |name: &str| -> f64 {
                match map.get(name) {
                    Some(AttributeValue::N(value)) => value.parse().unwrap_or(0.0),
                    _ => 0.0,
                }
            };
            Some(StageTimings {
                download: stage("download"),
                decode: stage("decode"),
                resize: stage("resize"),
                encode: stage("encode"),
                s3: stage("s3"),
                dynamodb: stage("dynamodb"),
                total: stage("total"),
            })
        }
        Some(_) => return Err(fail("timings_ms", "is not a map")),
    };
    let history = match item.get("history") {
        None => Vec::new(),
        Some(AttributeValue::L(entries)) => entries
            .iter()
            .map(|entry| {
                let AttributeValue::M(map) = entry else {
                    return Err(fail("history", "holds an entry that is not a map"));
                };
                let field = |name| match map.get(name) {
                    Some(AttributeValue::S(value)) => Ok(value.clone()),
                    _ => Err(fail(
                        "history",
                        "holds an entry without its status and time",
                    )),
                };
                Ok(StatusChange {
                    status: ImageStatus::parse(&field("status")?)
                        .ok_or_else(|| fail("history", "holds an unknown status"))?,
                    at: field("at")?,
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(fail("history", "is not a list")),
    };

    Ok(ImageRecord {
        status,
        source_url: text("source_url")?,
        bucket: required("bucket")?,
        keys,
        size_bytes: parsed("size_bytes")?,
        width: dimension("width")?,
        height: dimension("height")?,
        format: text("format")?,
        created_at: required("created_at")?,
        updated_at: required("updated_at")?,
        timings_ms,
        error: text("error")?,
        request_id: text("request_id")?,
        original_bucket: text("original_bucket")?,
        original_filename: text("original_filename")?,
        uploaded_at: text("uploaded_at")?,
        history,
        image_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed() -> ImageRecord {
        ImageRecord {
            image_id: "0190a0b0-0000-7000-8000-000000000001".into(),
            status: ImageStatus::Completed,
            source_url: Some("https://example.com/cat.jpg".into()),
            bucket: "images".into(),
            keys: BTreeMap::from([
                ("original".into(), "images/x/original.jpg".into()),
                ("thumbnail".into(), "images/x/thumbnail.jpg".into()),
            ]),
            size_bytes: Some(123_456),
            width: Some(4000),
            height: Some(3000),
            format: Some("jpeg".into()),
            created_at: "2026-11-22T10:00:00Z".into(),
            updated_at: "2026-11-22T10:00:01Z".into(),
            timings_ms: Some(StageTimings {
                download: 1.5,
                decode: 2.25,
                resize: 3.0,
                encode: 4.0,
                s3: 5.0,
                dynamodb: 6.0,
                total: 21.75,
            }),
            error: None,
            request_id: Some("req-1".into()),
            original_bucket: None,
            original_filename: None,
            uploaded_at: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn a_record_survives_the_round_trip_through_an_item() {
        let record = completed();
        assert_eq!(from_item(&to_item(&record)), Ok(record));
    }

    #[test]
    fn an_uploaded_record_with_its_history_survives_the_round_trip() {
        let record = ImageRecord {
            original_bucket: Some("uploads".into()),
            original_filename: Some("cat photo.jpg".into()),
            uploaded_at: Some("2026-11-22T10:00:00Z".into()),
            history: vec![
                StatusChange {
                    status: ImageStatus::Pending,
                    at: "2026-11-22T10:00:00Z".into(),
                },
                StatusChange {
                    status: ImageStatus::Processing,
                    at: "2026-11-22T10:00:01Z".into(),
                },
            ],
            ..completed()
        };
        assert_eq!(from_item(&to_item(&record)), Ok(record.clone()));
        assert_eq!(record.bucket_of("original"), "uploads");
        assert_eq!(record.bucket_of("thumbnail"), "images");
        assert_eq!(completed().bucket_of("original"), "images");
    }

    #[test]
    fn absent_fields_are_left_out_of_the_item() {
        let record = ImageRecord {
            source_url: None,
            size_bytes: None,
            width: None,
            height: None,
            format: None,
            timings_ms: None,
            request_id: None,
            keys: BTreeMap::new(),
            status: ImageStatus::Failed,
            error: Some("S3 refused the write".into()),
            ..completed()
        };
        let item = to_item(&record);
        for absent in [
            "source_url",
            "size_bytes",
            "width",
            "timings_ms",
            "keys",
            "original_bucket",
            "history",
        ] {
            assert!(!item.contains_key(absent), "{absent} must be left out");
        }
        assert_eq!(from_item(&item), Ok(record));
    }

    #[test]
    fn a_malformed_item_names_the_attribute() {
        let mut item = to_item(&completed());
        item.insert("width".into(), AttributeValue::S("wide".into()));
        let err = from_item(&item).expect_err("width is a string");
        assert_eq!(err.attribute, "width");

        let mut item = to_item(&completed());
        item.insert("status".into(), AttributeValue::S("DONE".into()));
        assert_eq!(
            from_item(&item).expect_err("unknown status").attribute,
            "status"
        );
    }
}
