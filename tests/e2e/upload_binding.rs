//! What a presigned upload URL allows: one object of the declared size, once. The URL signs the
//! Content-Length and `If-None-Match: *`, so a second PUT through it is refused (412); the
//! resizer reads exactly the version its event names, refuses an object whose size is not the
//! declared one, and ignores an event for a row that is no longer PENDING.

use std::collections::HashMap;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use hybridlab_lambda::resizer::{Outcome, RecordSummary, Resizer, ResizerConfig, S3Event};
use hybridlab_sandbox::s3_events::{ObjectCreated, event_document};
use hybridlab_tests::aws::REGION;
use hybridlab_tests::fixtures;
use hybridlab_tests::server::Lab;
use hybridlab_wire::{ImageRecord, ImageStatus, PresignUploadResponse};
use lambda_runtime::{Context, LambdaEvent};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{LAB_TOKEN, assert_recovered, http, rows};

/// A pipeline lab whose uploads bucket is versioned, as `up` makes it.
async fn versioned_lab() -> Lab {
    let lab = Lab::start_with_pipeline(|config| config.token = Some(LAB_TOKEN.into())).await;
    lab.clients
        .s3
        .put_bucket_versioning()
        .bucket(&lab.pipeline().uploads)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("moto enables versioning");
    lab
}

async fn ticket(lab: &Lab, filename: &str, size: usize) -> PresignUploadResponse {
    let answer = http()
        .post(format!("{}/api/uploads", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .json(&json!({"filename": filename, "content_type": "image/jpeg", "size_bytes": size}))
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), StatusCode::CREATED);
    answer.json().await.expect("the documented shape")
}

/// PUTs `body` through the ticket's URL with the headers it lists, except those in `skip`.
async fn put(ticket: &PresignUploadResponse, body: Vec<u8>, skip: &[&str]) -> reqwest::Response {
    let mut request = http().put(&ticket.upload_url).body(body);
    for (name, value) in &ticket.headers {
        if !skip.contains(&name.as_str()) {
            request = request.header(name, value);
        }
    }
    request.send().await.expect("S3 answers")
}

fn version_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-amz-version-id")
        .and_then(|value| value.to_str().ok())
        .expect("a versioned bucket names the version")
        .to_owned()
}

fn resizer(lab: &Lab) -> Resizer {
    let env = HashMap::from([
        ("HYBRIDLAB_TABLE", lab.table.clone()),
        (
            "HYBRIDLAB_PROCESSED_BUCKET",
            lab.pipeline().processed.clone(),
        ),
    ]);
    Resizer::new(
        ResizerConfig::from_lookup(|name| env.get(name).cloned()).expect("a configuration"),
        lab.clients.s3.clone(),
        lab.clients.dynamodb.clone(),
    )
}

/// The event S3 sends for the upload of `key`, naming `version` as S3 does in a versioned
/// bucket; the sandbox's own document, with the version its edge adds.
async fn resize(lab: &Lab, key: &str, version: &str) -> RecordSummary {
    let created = ObjectCreated {
        bucket: lab.pipeline().uploads.clone(),
        key: key.to_owned(),
        event_name: "ObjectCreated:Put",
    };
    let mut document = event_document(&created, "resizer", REGION, 1, "etag");
    document["Records"][0]["s3"]["object"]["versionId"] = json!(version);
    let event: S3Event = serde_json::from_value(document).expect("an event");
    let summary = resizer(lab)
        .handle(LambdaEvent::new(event, Context::default()))
        .await
        .expect("nothing to retry");
    summary.records.into_iter().next().expect("one record")
}

async fn row(lab: &Lab, id: &str) -> ImageRecord {
    rows(lab)
        .await
        .into_iter()
        .find(|row| row.image_id == id)
        .expect("the row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_takes_one_object_of_its_size_and_the_resizer_reads_that_version() {
    let lab = versioned_lab().await;
    let uploads = lab.pipeline().uploads.clone();
    let photo = fixtures::jpeg(800, 600);
    let first = ticket(&lab, "photo.jpg", photo.len()).await;
    let id = first.image_id.clone();

    // The size and the single use are signed: S3 checks every signed header.
    assert_eq!(
        first.headers.get("content-length"),
        Some(&photo.len().to_string())
    );
    assert_eq!(
        first.headers.get("if-none-match").map(String::as_str),
        Some("*")
    );
    let signed = reqwest::Url::parse(&first.upload_url)
        .expect("a URL")
        .query_pairs()
        .find(|(name, _)| name == "X-Amz-SignedHeaders")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    for header in [
        "content-length",
        "if-none-match",
        "content-type",
        "x-amz-meta-image-id",
    ] {
        assert!(
            signed.split(';').any(|h| h == header),
            "{header} in {signed}"
        );
    }
    let without_size = http()
        .post(format!("{}/api/uploads", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .json(&json!({"filename": "x.jpg"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        without_size.status(),
        StatusCode::BAD_REQUEST,
        "a size is required"
    );

    let stored = put(&first, photo.clone(), &[]).await;
    assert!(stored.status().is_success(), "{}", stored.status());
    let version = version_of(&stored);

    // A second PUT through the same URL, within its lifetime, is refused: no new version.
    let again = put(&first, fixtures::jpeg(800, 600), &[]).await;
    assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);
    let body = again.text().await.unwrap_or_default();
    assert!(body.contains("PreconditionFailed"), "{body}");
    let versions = lab
        .clients
        .s3
        .list_object_versions()
        .bucket(&uploads)
        .prefix(&first.key)
        .send()
        .await
        .expect("ListObjectVersions");
    assert_eq!(versions.versions().len(), 1, "one version only");

    // Another version arrives some other way before the resizer runs (here the test's own
    // credentials, which the URL's holder does not have): the event names the first, and that
    // is the one read.
    let replaced = lab
        .clients
        .s3
        .put_object()
        .bucket(&uploads)
        .key(&first.key)
        .metadata("image-id", &id)
        .body(b"not the photo that was declared".to_vec().into())
        .send()
        .await
        .expect("moto stores a second version");
    assert_ne!(replaced.version_id(), Some(version.as_str()));
    let summary = resize(&lab, &first.key, &version).await;
    assert_eq!(summary.outcome, Outcome::Completed, "{summary:?}");
    let done = row(&lab, &id).await;
    assert_eq!(done.status, ImageStatus::Completed);
    assert_eq!(
        (done.width, done.height),
        (Some(800), Some(600)),
        "the declared version"
    );

    // An event for a row that is no longer PENDING writes nothing.
    let variants = lab.clients.list_keys(&lab.pipeline().processed).await;
    let late = resize(&lab, &first.key, replaced.version_id().unwrap_or_default()).await;
    assert_eq!(late.outcome, Outcome::Duplicate, "{late:?}");
    assert_eq!(row(&lab, &id).await.history, done.history);
    assert_eq!(
        lab.clients.list_keys(&lab.pipeline().processed).await,
        variants
    );

    // A body larger than declared: S3 refuses it as a signature mismatch (the Content-Length
    // is signed). moto does not check signatures, so here it is stored, and the resizer
    // refuses it without reading it: the row ends FAILED with no variants.
    let small = ticket(&lab, "small.jpg", 1_000).await;
    let big = fixtures::jpeg(1200, 900);
    assert!(big.len() > 1_000);
    let stored = put(&small, big, &["content-length"]).await;
    assert!(
        stored.status().is_success(),
        "moto took it: {}",
        stored.status()
    );
    let summary = resize(&lab, &small.key, &version_of(&stored)).await;
    assert_eq!(summary.outcome, Outcome::Failed, "{summary:?}");
    let refused = row(&lab, &small.image_id).await;
    assert_eq!(refused.status, ImageStatus::Failed);
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.contains("declared 1000")),
        "{:?}",
        refused.error
    );
    assert!(
        lab.clients
            .list_keys(&lab.pipeline().processed)
            .await
            .iter()
            .all(|key| !key.contains(&small.image_id)),
        "no variants of the refused upload"
    );

    assert_recovered(&lab, Some(LAB_TOKEN)).await;
}
