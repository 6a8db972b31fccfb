//! Uploads into the event-driven pipeline: `POST /upload`, the presigned `POST /api/uploads`,
//! `GET /api/images/{id}` and the gallery's view of pipeline rows. The resizer Lambda is not
//! part of these tests; where a test needs a processed row it writes what the resizer would.

use hybridlab_tests::aws::unique_name;
use hybridlab_tests::fixtures;
use hybridlab_tests::server::{LAB_TOKEN, Lab};
use hybridlab_wire::item::to_item;
use hybridlab_wire::{
    Health, ImageListItem, ImageListPage, ImageStatus, PresignUploadResponse, StatusChange,
    UploadResponse,
};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::common::{Answer, fetch_object_link, http, rows};

fn file_part(bytes: Vec<u8>, filename: &str, content_type: &str) -> Part {
    Part::bytes(bytes)
        .file_name(filename.to_owned())
        .mime_str(content_type)
        .expect("a valid MIME type")
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("the answer is JSON ({err}): {text}"));
    Answer {
        status,
        headers,
        body,
    }
}

async fn upload(lab: &Lab, form: Form, token: Option<&str>) -> Answer {
    let mut request = http()
        .post(format!("{}/upload", lab.server.url))
        .multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn presign(lab: &Lab, body: Value, token: Option<&str>) -> Answer {
    let mut request = http()
        .post(format!("{}/api/uploads", lab.server.url))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn get_image(lab: &Lab, image_id: &str) -> Answer {
    let response = http()
        .get(format!("{}/api/images/{image_id}", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .send()
        .await
        .expect("the server answers");
    answer(response).await
}

/// Asserts that no upload left anything: no row, no object in any of the lab's buckets.
async fn assert_no_upload_stored(lab: &Lab, case: &str) {
    assert!(rows(lab).await.is_empty(), "{case}: rows");
    let mut buckets = vec![lab.bucket.clone()];
    if let Some(pipeline) = &lab.pipeline {
        buckets.push(pipeline.uploads.clone());
        buckets.push(pipeline.processed.clone());
    }
    for bucket in buckets {
        assert_eq!(
            lab.clients.list_keys(&bucket).await,
            Vec::<String>::new(),
            "{case}: objects in {bucket}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_stores_the_original_and_a_pending_row() {
    let lab = Lab::start_with_pipeline(|_| {}).await;
    let pipeline = lab.pipeline().clone();
    let jpeg = fixtures::jpeg(320, 200);
    let form = Form::new().text("note", "ignored").part(
        "file",
        file_part(jpeg.clone(), "../My Photo.JPG", "image/jpeg"),
    );
    let answer = upload(&lab, form, Some(LAB_TOKEN)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let uploaded: UploadResponse =
        serde_json::from_value(answer.body.clone()).expect("the documented shape");
    let id = uploaded.image_id.clone();
    assert_eq!(uploaded.status, ImageStatus::Pending);
    assert_eq!(uploaded.bucket, pipeline.uploads);
    assert_eq!(uploaded.key, format!("uploads/{id}/My_Photo.jpg"));
    assert_eq!(uploaded.size_bytes, jpeg.len() as u64);
    assert_eq!(uploaded.status_url, format!("/api/images/{id}"));
    assert!(answer.headers.contains_key("x-request-id"));

    let object = lab
        .clients
        .get_object(&pipeline.uploads, &uploaded.key)
        .await;
    assert_eq!(object.content_type(), Some("image/jpeg"));
    assert_eq!(
        object.metadata().and_then(|m| m.get("image-id")),
        Some(&id),
        "the resizer finds the row by this metadata"
    );
    assert_eq!(
        lab.clients
            .object_bytes(&pipeline.uploads, &uploaded.key)
            .await,
        jpeg
    );
    assert!(lab.clients.list_keys(&pipeline.processed).await.is_empty());
    assert!(lab.clients.list_keys(&lab.bucket).await.is_empty());

    let stored = rows(&lab).await;
    assert_eq!(stored.len(), 1);
    let row = &stored[0];
    assert_eq!(row.image_id, id);
    assert_eq!(row.status, ImageStatus::Pending);
    assert_eq!(row.bucket, pipeline.processed, "where the variants will go");
    assert_eq!(
        row.original_bucket.as_deref(),
        Some(pipeline.uploads.as_str())
    );
    assert_eq!(row.keys.get("original"), Some(&uploaded.key));
    assert_eq!(row.keys.len(), 1);
    assert_eq!(row.original_filename.as_deref(), Some("../My Photo.JPG"));
    assert_eq!(row.size_bytes, Some(jpeg.len() as u64));
    let uploaded_at = row.uploaded_at.clone().expect("uploaded_at");
    assert_eq!(row.created_at, uploaded_at);
    assert_eq!(
        row.history,
        vec![StatusChange {
            status: ImageStatus::Pending,
            at: uploaded_at
        }]
    );
    assert!(row.request_id.is_some());

    // The status URL answers the row with a working link to the original in the uploads
    // bucket, and none for variants that do not exist yet.
    let one = get_image(&lab, &id).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let item: ImageListItem = serde_json::from_value(one.body).expect("a listing row");
    assert_eq!(item.record, *row);
    assert_eq!(item.urls.keys().collect::<Vec<_>>(), vec!["original"]);
    let fetched = fetch_object_link(&lab, &item.urls["original"], |request| {
        request.bearer_auth(LAB_TOKEN)
    })
    .await;
    assert_eq!(fetched, jpeg);

    let page: ImageListPage = http()
        .get(format!("{}/api/images", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("a page");
    assert_eq!(page.items, vec![item]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_upload_arrives_with_its_metadata() {
    let lab = Lab::start_with_pipeline(|_| {}).await;
    let pipeline = lab.pipeline().clone();
    let png = fixtures::png(64, 48);
    let answer = presign(
        &lab,
        json!({"filename": "cat pics/ü.png", "content_type": "image/png", "size_bytes": png.len()}),
        Some(LAB_TOKEN),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let presigned: PresignUploadResponse =
        serde_json::from_value(answer.body).expect("the documented shape");
    let id = presigned.image_id.clone();
    assert_eq!(presigned.method, "PUT");
    assert_eq!(presigned.bucket, pipeline.uploads);
    assert_eq!(presigned.key, format!("uploads/{id}/original.png"));
    assert_eq!(presigned.expires_in_s, 900);
    assert_eq!(presigned.status_url, format!("/api/images/{id}"));
    assert_eq!(
        presigned.headers.get("content-type").map(String::as_str),
        Some("image/png")
    );
    assert_eq!(presigned.headers.get("x-amz-meta-image-id"), Some(&id));
    // moto does not check signatures, so check that the headers are signed ones.
    let url = url_query(&presigned.upload_url, "X-Amz-SignedHeaders");
    for header in ["content-type", "x-amz-meta-image-id"] {
        assert!(
            url.split(';').any(|h| h == header),
            "{header} signed: {url}"
        );
    }

    // The row waits for the object; nothing is in the bucket yet.
    let stored = rows(&lab).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, ImageStatus::Pending);
    assert_eq!(stored[0].size_bytes, Some(png.len() as u64), "as declared");
    assert_eq!(
        stored[0].original_filename.as_deref(),
        Some("cat pics/ü.png")
    );
    assert_eq!(stored[0].keys.get("original"), Some(&presigned.key));
    assert!(lab.clients.list_keys(&pipeline.uploads).await.is_empty());

    let mut put = http().put(&presigned.upload_url).body(png.clone());
    for (name, value) in &presigned.headers {
        put = put.header(name, value);
    }
    let response = put.send().await.expect("S3 answers");
    assert!(response.status().is_success(), "{}", response.status());

    let object = lab
        .clients
        .get_object(&pipeline.uploads, &presigned.key)
        .await;
    assert_eq!(object.content_type(), Some("image/png"));
    assert_eq!(object.metadata().and_then(|m| m.get("image-id")), Some(&id));
    assert_eq!(
        lab.clients
            .object_bytes(&pipeline.uploads, &presigned.key)
            .await,
        png
    );
}

/// The value of query parameter `name` of `url`, percent-decoded.
fn url_query(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_is_refused_before_anything_is_written() {
    let lab = Lab::start_with_pipeline(|config| config.max_upload_bytes = 1_000).await;

    let just_over = Form::new().part("file", file_part(vec![7; 1_001], "big.jpg", "image/jpeg"));
    let answer = upload(&lab, just_over, Some(LAB_TOKEN)).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    assert_eq!(answer.error_code(), "too_large");
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("1000 bytes")),
        "{}",
        answer.body
    );

    // A body far beyond the cap is cut off by the route's limit, even outside the file.
    let padded = Form::new()
        .text("padding", "x".repeat(200 * 1024))
        .part("file", file_part(vec![7; 10], "small.jpg", "image/jpeg"));
    let answer = upload(&lab, padded, Some(LAB_TOKEN)).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    assert_eq!(answer.error_code(), "too_large");

    let declared = presign(
        &lab,
        json!({"filename": "big.jpg", "size_bytes": 1_001}),
        Some(LAB_TOKEN),
    )
    .await;
    assert_eq!(
        declared.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        declared.body
    );
    assert_eq!(declared.error_code(), "too_large");

    let exactly = Form::new().part("file", file_part(vec![7; 1_000], "ok.jpg", "image/jpeg"));
    assert_eq!(
        upload(&lab, exactly, Some(LAB_TOKEN)).await.status,
        StatusCode::ACCEPTED,
        "the cap itself is allowed"
    );
    let stored = rows(&lab).await;
    assert_eq!(stored.len(), 1, "only the upload within the cap");
    assert_eq!(stored[0].original_filename.as_deref(), Some("ok.jpg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_a_file_is_refused_and_nothing_is_written() {
    let lab = Lab::start_with_pipeline(|_| {}).await;
    let cases = [
        ("no file field", Form::new().text("name", "cat.jpg")),
        (
            "an empty file",
            Form::new().part("file", file_part(Vec::new(), "empty.jpg", "image/jpeg")),
        ),
        (
            "a text field named file",
            Form::new().text("file", "not a file"),
        ),
        (
            "two files",
            Form::new()
                .part("file", file_part(vec![1; 10], "a.jpg", "image/jpeg"))
                .part("file", file_part(vec![2; 10], "b.jpg", "image/jpeg")),
        ),
    ];
    for (case, form) in cases {
        let answer = upload(&lab, form, Some(LAB_TOKEN)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            answer.body
        );
        assert_eq!(answer.error_code(), "invalid_request", "{case}");
    }
    let not_multipart = http()
        .post(format!("{}/upload", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .json(&json!({"file": "cat.jpg"}))
        .send()
        .await
        .expect("answers");
    let not_multipart = answer(not_multipart).await;
    assert_eq!(not_multipart.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_multipart.error_code(), "invalid_request");

    for (case, body) in [
        ("empty filename", json!({"filename": ""})),
        (
            "declared empty",
            json!({"filename": "a.jpg", "size_bytes": 0}),
        ),
        (
            "bad content type",
            json!({"filename": "a.jpg", "content_type": "image/jpeg\r\nx-amz-acl: public-read"}),
        ),
        ("no filename", json!({"content_type": "image/jpeg"})),
        ("no size", json!({"filename": "a.jpg"})),
    ] {
        let answer = presign(&lab, body, Some(LAB_TOKEN)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            answer.body
        );
        assert_eq!(answer.error_code(), "invalid_request", "{case}");
    }
    assert_no_upload_stored(&lab, "refused uploads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_pipeline_uploads_say_how_to_deploy_it() {
    let lab = Lab::start().await;
    let health: Health = http()
        .get(format!("{}/health", lab.server.url))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("health");
    assert_eq!(health.uploads_bucket, None);
    assert_eq!(health.processed_bucket, None);

    let form = Form::new().part("file", file_part(vec![1; 10], "a.jpg", "image/jpeg"));
    let uploaded = upload(&lab, form, Some(LAB_TOKEN)).await;
    let presigned = presign(&lab, json!({"filename": "a.jpg"}), Some(LAB_TOKEN)).await;
    for answer in [uploaded, presigned] {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
        assert_eq!(answer.error_code(), "pipeline_not_deployed");
        assert!(
            answer.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("hybridlab up --with pipeline")),
            "{}",
            answer.body
        );
    }
    assert_no_upload_stored(&lab, "no pipeline").await;

    let with = Lab::start_with_pipeline(|_| {}).await;
    let health: Health = http()
        .get(format!("{}/health", with.server.url))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("health");
    assert_eq!(health.uploads_bucket, Some(with.pipeline().uploads.clone()));
    assert_eq!(
        health.processed_bucket,
        Some(with.pipeline().processed.clone())
    );
}

/// A token of the server's minimum length that is not the lab's default.
const S3CRET: &str = "s3cret-s3cret-s3cret-s3cret-s3cret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_need_the_token() {
    let lab = Lab::start_with_pipeline(|config| config.token = Some(S3CRET.into())).await;
    let form = || Form::new().part("file", file_part(vec![1; 10], "a.jpg", "image/jpeg"));
    for token in [None, Some("wrong"), Some(&S3CRET[1..])] {
        let answer = upload(&lab, form(), token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer.error_code(), "unauthorized");
        let answer = presign(&lab, json!({"filename": "a.jpg"}), token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    assert_no_upload_stored(&lab, "unauthorized").await;

    assert_eq!(
        upload(&lab, form(), Some(S3CRET)).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        presign(
            &lab,
            json!({"filename": "a.jpg", "size_bytes": 10}),
            Some(S3CRET)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(rows(&lab).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_cannot_be_stored_leaves_a_failed_row_not_a_pending_one() {
    let missing = unique_name("missing");
    let lab =
        Lab::start_with_pipeline(|config| config.uploads_bucket = Some(missing.clone())).await;
    let form = Form::new().part("file", file_part(vec![1; 10], "a.jpg", "image/jpeg"));
    let answer = upload(&lab, form, Some(LAB_TOKEN)).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert_eq!(answer.error_code(), "storage_failed");

    let stored = rows(&lab).await;
    assert_eq!(stored.len(), 1);
    let row = &stored[0];
    assert_eq!(row.status, ImageStatus::Failed);
    let error = row.error.clone().unwrap_or_default();
    assert!(error.contains("NoSuchBucket"), "{error}");
    assert!(
        row.keys.is_empty(),
        "no key for an object that was not stored"
    );
    assert_eq!(
        row.history.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![ImageStatus::Pending, ImageStatus::Failed]
    );
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| m.contains(&row.image_id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processed_upload_links_variants_in_the_processed_bucket() {
    let lab = Lab::start_with_pipeline(|_| {}).await;
    let pipeline = lab.pipeline().clone();
    let missing = get_image(&lab, "no-such-image").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");

    let form = Form::new().part(
        "file",
        file_part(
            fixtures::jpeg(200, 100),
            "<script>alert(1)</script>.jpg",
            "image/jpeg",
        ),
    );
    let uploaded: UploadResponse =
        serde_json::from_value(upload(&lab, form, Some(LAB_TOKEN)).await.body).expect("uploaded");
    let id = uploaded.image_id;

    let page = index_page(&lab).await;
    assert!(page.contains(&format!("data-image-id=\"{id}\" data-status=\"PENDING\"")));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;.jpg"));
    assert!(!page.contains("<script>alert(1)"));
    assert!(page.contains("<form id=\"upload-form\">"));

    // What the resizer would write: a thumbnail in the processed bucket, the row COMPLETED.
    let thumbnail = fixtures::jpeg(150, 75);
    let thumbnail_key = format!("images/{id}/thumbnail.jpg");
    lab.clients
        .s3
        .put_object()
        .bucket(&pipeline.processed)
        .key(&thumbnail_key)
        .body(thumbnail.into())
        .send()
        .await
        .expect("moto stores it");
    let mut record = rows(&lab).await.remove(0);
    record.status = ImageStatus::Completed;
    record.keys.insert("thumbnail".into(), thumbnail_key);
    lab.clients
        .dynamodb
        .put_item()
        .table_name(&lab.table)
        .set_item(Some(to_item(&record)))
        .send()
        .await
        .expect("moto writes it");

    let item: ImageListItem =
        serde_json::from_value(get_image(&lab, &id).await.body).expect("a listing row");
    assert_eq!(
        item.urls.keys().collect::<Vec<_>>(),
        vec!["original", "thumbnail"]
    );
    for (name, bucket) in [
        ("original", &pipeline.uploads),
        ("thumbnail", &pipeline.processed),
    ] {
        let fetched = fetch_object_link(&lab, &item.urls[name], |request| {
            request.bearer_auth(LAB_TOKEN)
        })
        .await;
        let stored = lab
            .clients
            .object_bytes(bucket, &item.record.keys[name])
            .await;
        assert_eq!(fetched, stored, "{name} read from {bucket}");
    }

    let page = index_page(&lab).await;
    assert!(page.contains(&format!("data-image-id=\"{id}\" data-status=\"COMPLETED\"")));
    assert!(page.contains("<img class=\"thumbnail\" src=\""));
    assert!(page.contains("data-variant=\"thumbnail\""));
    assert!(page.contains("data-variant=\"original\""));
}

async fn index_page(lab: &Lab) -> String {
    http()
        .get(format!("{}/", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("HTML")
}
