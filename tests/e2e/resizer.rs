//! The resizer Lambda's handler, called in-process against moto with real buckets and a real
//! table: an upload's row moves PENDING, PROCESSING, then COMPLETED or FAILED; duplicate
//! events write nothing more; an event for the processed bucket writes nothing at all.

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::assert_variants;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use hybridlab_imaging::fit_within;
use hybridlab_lambda::resizer::{Outcome, RecordSummary, Resizer, ResizerConfig, S3Event};
use hybridlab_sandbox::s3_events::{ObjectCreated, event_document};
use hybridlab_tests::aws::{Clients, REGION, clients, unique_name};
use hybridlab_tests::fixtures;
use hybridlab_wire::item::{from_item, to_item};
use hybridlab_wire::{ImageRecord, ImageStatus, StatusChange};
use lambda_runtime::{Context, LambdaEvent};

/// An uploads bucket, a processed bucket, a table and a resizer configured for them.
struct Pipeline {
    clients: Clients,
    uploads: String,
    processed: String,
    table: String,
    resizer: Arc<Resizer>,
}

/// When the test's upload happened: before anything the resizer writes.
const UPLOADED_AT: &str = "2026-01-01T00:00:00.000Z";

impl Pipeline {
    async fn start(extra_formats: &str, max_pixels: Option<&str>) -> Self {
        let clients = clients().await;
        let uploads = unique_name("uploads");
        let processed = unique_name("processed");
        let table = unique_name("images");
        clients.create_bucket(&uploads).await;
        clients.create_bucket(&processed).await;
        clients.create_table(&table).await;
        let env = HashMap::from([
            ("HYBRIDLAB_TABLE", table.clone()),
            ("HYBRIDLAB_PROCESSED_BUCKET", processed.clone()),
            ("HYBRIDLAB_EXTRA_FORMATS", extra_formats.to_owned()),
            (
                "HYBRIDLAB_MAX_PIXELS",
                max_pixels.unwrap_or("64000000").to_owned(),
            ),
        ]);
        let config = ResizerConfig::from_lookup(|name| env.get(name).cloned())
            .expect("a complete configuration");
        let resizer = Resizer::new(config, clients.s3.clone(), clients.dynamodb.clone());
        Self {
            clients,
            uploads,
            processed,
            table,
            resizer: Arc::new(resizer),
        }
    }

    /// What the upload side does: the PENDING row first, then the object under
    /// `uploads/<image_id>/<filename>` with the `image-id` metadata (left off when
    /// `with_metadata` is false). Returns the image id and the object's key.
    async fn upload(&self, filename: &str, body: Vec<u8>, with_metadata: bool) -> (String, String) {
        let image_id = uuid::Uuid::new_v4().to_string();
        let key = format!("uploads/{image_id}/{filename}");
        let record = ImageRecord {
            image_id: image_id.clone(),
            status: ImageStatus::Pending,
            source_url: None,
            bucket: self.processed.clone(),
            keys: [("original".to_owned(), key.clone())].into(),
            size_bytes: Some(body.len() as u64),
            width: None,
            height: None,
            format: None,
            created_at: UPLOADED_AT.into(),
            updated_at: UPLOADED_AT.into(),
            timings_ms: None,
            error: None,
            request_id: None,
            original_bucket: Some(self.uploads.clone()),
            original_filename: Some(filename.to_owned()),
            uploaded_at: Some(UPLOADED_AT.into()),
            history: vec![StatusChange {
                status: ImageStatus::Pending,
                at: UPLOADED_AT.into(),
            }],
        };
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)))
            .send()
            .await
            .expect("moto writes the PENDING row");
        let mut put = self
            .clients
            .s3
            .put_object()
            .bucket(&self.uploads)
            .key(&key)
            .body(ByteStream::from(body));
        if with_metadata {
            put = put.metadata("image-id", &image_id);
        }
        put.send().await.expect("moto stores the upload");
        (image_id, key)
    }

    /// The event S3 sends for a new object, built by the sandbox's own code.
    fn event(&self, bucket: &str, key: &str) -> S3Event {
        let created = ObjectCreated {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            event_name: "ObjectCreated:Put",
        };
        serde_json::from_value(event_document(&created, "resizer", REGION, 1, "etag"))
            .expect("the sandbox's event document parses")
    }

    /// Runs the handler on `event` and returns its one record's summary.
    async fn handle(&self, event: S3Event) -> RecordSummary {
        let summary = self
            .resizer
            .handle(LambdaEvent::new(event, Context::default()))
            .await
            .expect("nothing to retry");
        let [record] = <[RecordSummary; 1]>::try_from(summary.records).expect("one record");
        record
    }

    async fn row(&self, image_id: &str) -> ImageRecord {
        let item = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("image_id", AttributeValue::S(image_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("moto reads the row")
            .item
            .expect("the row exists");
        from_item(&item).expect("the row parses")
    }

    async fn processed_keys(&self) -> Vec<String> {
        self.clients.list_keys(&self.processed).await
    }
}

fn statuses(record: &ImageRecord) -> Vec<ImageStatus> {
    record.history.iter().map(|change| change.status).collect()
}

/// The JPEG variants' keys of `image_id` in the processed bucket, sorted.
fn jpeg_keys(image_id: &str) -> Vec<String> {
    let mut keys: Vec<String> = ["large", "medium", "thumbnail"]
        .iter()
        .map(|name| format!("images/{image_id}/{name}.jpg"))
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_upload_goes_pending_processing_completed_with_three_variants() {
    let pipeline = Pipeline::start("", None).await;
    let original = fixtures::jpeg(1600, 1200);
    // A space in the name: the event carries it as `+`.
    let (id, key) = pipeline
        .upload("cat photo.jpg", original.clone(), true)
        .await;

    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, &key))
        .await;
    assert_eq!(summary.outcome, Outcome::Completed, "{summary:?}");
    assert_eq!(summary.key, key);
    assert_eq!(summary.image_id.as_deref(), Some(id.as_str()));

    let row = pipeline.row(&id).await;
    assert_eq!(row.status, ImageStatus::Completed);
    assert_eq!(
        statuses(&row),
        [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Completed
        ]
    );
    let times: Vec<&str> = row
        .history
        .iter()
        .map(|change| change.at.as_str())
        .collect();
    assert!(times.is_sorted(), "history times ascend: {times:?}");
    assert_eq!(row.updated_at, row.history[2].at);
    assert_eq!((row.width, row.height), (Some(1600), Some(1200)));
    assert_eq!(row.format.as_deref(), Some("jpeg"));
    assert_eq!(row.error, None);
    assert_eq!(row.bucket, pipeline.processed);
    assert_eq!(
        row.original_bucket.as_deref(),
        Some(pipeline.uploads.as_str())
    );
    assert_eq!(row.original_filename.as_deref(), Some("cat photo.jpg"));
    assert_eq!(row.size_bytes, Some(original.len() as u64));
    assert_eq!(row.keys["original"], key, "the original's key is kept");
    assert_eq!(row.bucket_of("original"), pipeline.uploads);
    assert_eq!(row.keys, summary.keys);
    let timings = row.timings_ms.expect("timings are stored");
    for (stage, ms) in timings.stages() {
        assert!(ms > 0.0, "stage {stage} was timed");
        assert!(ms <= timings.total, "stage {stage} fits in the total");
    }

    assert_eq!(pipeline.processed_keys().await, jpeg_keys(&id));
    for name in ["thumbnail", "medium", "large"] {
        assert_eq!(row.keys[name], format!("images/{id}/{name}.jpg"));
    }
    assert_variants(
        &pipeline.clients.s3,
        &pipeline.processed,
        &row.keys,
        &id,
        (1600, 1200),
    )
    .await;
    assert_eq!(
        pipeline.clients.list_keys(&pipeline.uploads).await,
        [key],
        "the upload is left where it is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_formats_add_a_webp_and_a_png_of_each_variant() {
    let pipeline = Pipeline::start("webp,png", None).await;
    let (id, key) = pipeline
        .upload("wide.png", fixtures::png(900, 300), true)
        .await;

    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, &key))
        .await;
    assert_eq!(summary.outcome, Outcome::Completed, "{summary:?}");

    let row = pipeline.row(&id).await;
    assert_eq!(row.format.as_deref(), Some("png"));
    let mut expected = Vec::new();
    for (name, side) in [("thumbnail", 150), ("medium", 600), ("large", 1200)] {
        for (extension, content_type) in [
            ("jpg", "image/jpeg"),
            ("webp", "image/webp"),
            ("png", "image/png"),
        ] {
            let key_name = match extension {
                "jpg" => name.to_owned(),
                other => format!("{name}.{other}"),
            };
            let object_key = format!("images/{id}/{name}.{extension}");
            assert_eq!(row.keys[&key_name], object_key);
            let object = pipeline
                .clients
                .get_object(&pipeline.processed, &object_key)
                .await;
            assert_eq!(object.content_type(), Some(content_type), "{object_key}");
            let bytes = object.body.collect().await.expect("readable").into_bytes();
            let image = fixtures::decode(&bytes);
            assert_eq!(
                (image.width(), image.height()),
                fit_within(900, 300, side),
                "{object_key}"
            );
            expected.push(object_key);
        }
    }
    expected.sort();
    assert_eq!(pipeline.processed_keys().await, expected);
    assert_eq!(row.keys.len(), 1 + 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_image_upload_ends_failed_with_a_reason_and_no_variants() {
    let pipeline = Pipeline::start("webp", None).await;
    let (id, key) = pipeline
        .upload(
            "notes.jpg",
            b"these are notes, not a picture".to_vec(),
            true,
        )
        .await;

    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, &key))
        .await;
    assert_eq!(summary.outcome, Outcome::Failed, "{summary:?}");

    let row = pipeline.row(&id).await;
    assert_eq!(row.status, ImageStatus::Failed);
    assert_eq!(
        statuses(&row),
        [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Failed
        ]
    );
    let reason = row.error.expect("the row says why");
    assert!(reason.contains("not a JPEG, PNG, GIF or WebP"), "{reason}");
    assert_eq!(summary.reason.as_deref(), Some(reason.as_str()));
    assert_eq!(row.keys["original"], key);
    assert_eq!(row.keys.len(), 1, "no variant keys");
    assert_eq!(pipeline.processed_keys().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_over_the_pixel_limit_ends_failed_without_variants() {
    let pipeline = Pipeline::start("", Some("100000")).await;
    let (id, key) = pipeline
        .upload("big.jpg", fixtures::jpeg(400, 300), true)
        .await;

    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, &key))
        .await;
    assert_eq!(summary.outcome, Outcome::Failed, "{summary:?}");
    let row = pipeline.row(&id).await;
    assert_eq!(row.status, ImageStatus::Failed);
    let reason = row.error.expect("the row says why");
    assert!(
        reason.contains("over the limit of 100000 pixels"),
        "{reason}"
    );
    assert_eq!(pipeline.processed_keys().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_twice_makes_one_set_of_variants() {
    let pipeline = Pipeline::start("", None).await;
    let (id, key) = pipeline
        .upload("twice.jpg", fixtures::jpeg(800, 600), true)
        .await;
    let event = pipeline.event(&pipeline.uploads, &key);

    let first = pipeline.handle(event.clone()).await;
    let first_row = pipeline.row(&id).await;
    let second = pipeline.handle(event).await;
    assert_eq!(first.outcome, Outcome::Completed, "{first:?}");
    assert_eq!(second.outcome, Outcome::Duplicate, "{second:?}");

    let row = pipeline.row(&id).await;
    assert_eq!(row, first_row, "the duplicate changed nothing");
    assert_eq!(
        statuses(&row),
        [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Completed
        ]
    );
    assert_eq!(pipeline.processed_keys().await, jpeg_keys(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_delivered_concurrently_makes_one_set_of_variants() {
    let pipeline = Pipeline::start("", None).await;
    let (id, key) = pipeline
        .upload("race.jpg", fixtures::jpeg(1600, 1200), true)
        .await;
    let event = pipeline.event(&pipeline.uploads, &key);

    let deliveries: Vec<_> = (0..2)
        .map(|_| {
            let resizer = Arc::clone(&pipeline.resizer);
            let event = event.clone();
            tokio::spawn(async move {
                resizer
                    .handle(LambdaEvent::new(event, Context::default()))
                    .await
                    .expect("nothing to retry")
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        let summary = delivery.await.expect("the handler does not panic");
        outcomes.push(summary.records[0].outcome);
    }
    outcomes.sort_by_key(|outcome| *outcome == Outcome::Duplicate);
    assert_eq!(outcomes, [Outcome::Completed, Outcome::Duplicate]);

    let row = pipeline.row(&id).await;
    assert_eq!(
        statuses(&row),
        [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Completed
        ],
        "one PROCESSING"
    );
    assert_eq!(pipeline.processed_keys().await, jpeg_keys(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_the_processed_bucket_writes_nothing() {
    let pipeline = Pipeline::start("", None).await;
    // The worst case for recursion: a variant-looking object in the processed bucket, with an
    // image id whose row is still PENDING.
    let (id, _) = pipeline
        .upload("loop.jpg", fixtures::jpeg(640, 480), true)
        .await;
    let variant_key = format!("images/{id}/large.jpg");
    pipeline
        .clients
        .s3
        .put_object()
        .bucket(&pipeline.processed)
        .key(&variant_key)
        .metadata("image-id", &id)
        .body(ByteStream::from(fixtures::jpeg(640, 480)))
        .send()
        .await
        .expect("moto stores the object");
    let before = pipeline.row(&id).await;

    let summary = pipeline
        .handle(pipeline.event(&pipeline.processed, &variant_key))
        .await;
    assert_eq!(summary.outcome, Outcome::Refused, "{summary:?}");
    assert!(
        summary
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("processed bucket")),
        "{summary:?}"
    );
    assert_eq!(pipeline.row(&id).await, before, "the row is untouched");
    assert_eq!(pipeline.processed_keys().await, [variant_key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_without_image_id_metadata_fails_its_pending_row() {
    let pipeline = Pipeline::start("", None).await;
    let (id, key) = pipeline
        .upload("bare.jpg", fixtures::jpeg(320, 240), false)
        .await;

    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, &key))
        .await;
    assert_eq!(summary.outcome, Outcome::Failed, "{summary:?}");
    let row = pipeline.row(&id).await;
    assert_eq!(row.status, ImageStatus::Failed);
    assert_eq!(
        row.error.as_deref(),
        Some("the object has no image-id metadata")
    );
    assert_eq!(statuses(&row), [ImageStatus::Pending, ImageStatus::Failed]);
    assert_eq!(pipeline.processed_keys().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_are_not_the_resizers_are_skipped() {
    let pipeline = Pipeline::start("", None).await;
    // No metadata, and a key that names no upload.
    let stray = "elsewhere/stray.jpg";
    pipeline
        .clients
        .s3
        .put_object()
        .bucket(&pipeline.uploads)
        .key(stray)
        .body(ByteStream::from(fixtures::jpeg(64, 48)))
        .send()
        .await
        .expect("moto stores the object");
    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, stray))
        .await;
    assert_eq!(summary.outcome, Outcome::Skipped, "{summary:?}");

    // A removal event for a real upload.
    let (id, key) = pipeline
        .upload("gone.jpg", fixtures::jpeg(64, 48), true)
        .await;
    let mut removed = pipeline.event(&pipeline.uploads, &key);
    removed.records[0].event_name = "ObjectRemoved:Delete".into();
    let summary = pipeline.handle(removed).await;
    assert_eq!(summary.outcome, Outcome::Skipped, "{summary:?}");

    assert_eq!(pipeline.row(&id).await.status, ImageStatus::Pending);
    assert!(pipeline.clients.scan_all(&pipeline.table).await.len() == 1);
    assert_eq!(pipeline.processed_keys().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_of_an_event_is_processed_on_its_own() {
    let pipeline = Pipeline::start("", None).await;
    let (bad, bad_key) = pipeline
        .upload("bad.jpg", b"not an image".to_vec(), true)
        .await;
    let (good, good_key) = pipeline
        .upload("good.jpg", fixtures::jpeg(300, 200), true)
        .await;
    let mut event = pipeline.event(&pipeline.uploads, &bad_key);
    event
        .records
        .extend(pipeline.event(&pipeline.uploads, &good_key).records);

    let summary = pipeline
        .resizer
        .handle(LambdaEvent::new(event, Context::default()))
        .await
        .expect("nothing to retry");
    let outcomes: Vec<Outcome> = summary.records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Failed, Outcome::Completed]);
    assert_eq!(pipeline.row(&bad).await.status, ImageStatus::Failed);
    assert_eq!(pipeline.row(&good).await.status, ImageStatus::Completed);
    assert_eq!(pipeline.processed_keys().await, jpeg_keys(&good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_row_is_taken_over_only_once_its_lease_has_ended() {
    let pipeline = Pipeline::start("", None).await;
    let (id, key) = pipeline
        .upload("crashed.jpg", fixtures::jpeg(320, 240), true)
        .await;
    // An earlier attempt took the row and crashed; `until` is its lease in Unix seconds.
    let crashed_attempt = |until: &str| {
        pipeline
            .clients
            .dynamodb
            .update_item()
            .table_name(&pipeline.table)
            .key("image_id", AttributeValue::S(id.clone()))
            .update_expression(
                "SET #status = :processing, processing_until = :until, \
                 #history = list_append(#history, :change)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":processing", AttributeValue::S("PROCESSING".into()))
            .expression_attribute_values(":until", AttributeValue::N(until.into()))
            .expression_attribute_values(
                ":change",
                AttributeValue::L(vec![hybridlab_wire::item::status_change(&StatusChange {
                    status: ImageStatus::Processing,
                    at: UPLOADED_AT.into(),
                })]),
            )
            .send()
    };

    // Far in the future: still held, so the event is a duplicate and writes nothing.
    crashed_attempt("99999999999")
        .await
        .expect("moto updates the row");
    let event = pipeline.event(&pipeline.uploads, &key);
    let summary = pipeline.handle(event.clone()).await;
    assert_eq!(summary.outcome, Outcome::Duplicate, "{summary:?}");
    assert_eq!(pipeline.processed_keys().await, Vec::<String>::new());

    // Ended: Lambda's retry takes the row over and finishes it.
    pipeline
        .clients
        .dynamodb
        .update_item()
        .table_name(&pipeline.table)
        .key("image_id", AttributeValue::S(id.clone()))
        .update_expression("SET processing_until = :past")
        .expression_attribute_values(":past", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("moto updates the row");
    let summary = pipeline.handle(event).await;
    assert_eq!(summary.outcome, Outcome::Completed, "{summary:?}");
    let row = pipeline.row(&id).await;
    assert_eq!(
        statuses(&row),
        [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Processing,
            ImageStatus::Completed
        ]
    );
    let item = pipeline
        .clients
        .dynamodb
        .get_item()
        .table_name(&pipeline.table)
        .key("image_id", AttributeValue::S(id.clone()))
        .send()
        .await
        .expect("moto reads the row")
        .item
        .expect("the row exists");
    assert!(
        !item.contains_key("processing_until"),
        "the lease ends with the row"
    );
    assert_eq!(pipeline.processed_keys().await, jpeg_keys(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_naming_another_images_id_cannot_take_its_row() {
    let pipeline = Pipeline::start("", None).await;
    let (victim, _) = pipeline
        .upload("victim.jpg", fixtures::jpeg(640, 480), false)
        .await;
    let before = pipeline.row(&victim).await;
    // Another object in the uploads bucket whose metadata claims the victim's id.
    let forged_key = format!("uploads/{}/forged.jpg", uuid::Uuid::new_v4());
    pipeline
        .clients
        .s3
        .put_object()
        .bucket(&pipeline.uploads)
        .key(&forged_key)
        .metadata("image-id", &victim)
        .body(ByteStream::from(fixtures::jpeg(320, 240)))
        .send()
        .await
        .expect("moto stores the object");

    let summary = pipeline
        .handle(pipeline.event(&pipeline.uploads, &forged_key))
        .await;
    assert_eq!(summary.outcome, Outcome::Duplicate, "{summary:?}");
    assert_eq!(pipeline.row(&victim).await, before, "the row is untouched");
    assert_eq!(pipeline.processed_keys().await, Vec::<String>::new());
}
