//! `/health`, `/api/images`, `/` and the concurrency limit.

use std::time::Duration;

use hybridlab_tests::fixtures;
use hybridlab_tests::server::{LAB_TOKEN, Lab};
use hybridlab_wire::{Health, ImageListPage};
use reqwest::StatusCode;

use crate::common::{fetch_object_link, http, process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_configuration() {
    let lab = Lab::start().await;
    let health: Health = http()
        .get(format!("{}/health", lab.server.url))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("the documented shape");
    assert_eq!(health.status, "ok");
    assert_eq!(health.bucket, lab.bucket);
    assert_eq!(health.table, lab.table);
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(health.in_flight, 0);
    assert_eq!(
        health.jpeg_codec.as_deref(),
        Some(hybridlab_imaging::JpegCodec::preferred().name())
    );
    let missing = http()
        .get(format!("{}/nowhere", lab.server.url))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.expect("JSON");
    assert_eq!(body["error"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_pages_through_rows_with_working_object_links() {
    let lab = Lab::start().await;
    let mut ids = Vec::new();
    for index in 0..3 {
        let url = lab.images.add(
            &format!("p{index}.jpg"),
            fixtures::jpeg(200 + index * 10, 100),
            "image/jpeg",
        );
        let answer = process(&lab, &url).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        ids.push(answer.body["image_id"].as_str().expect("an id").to_owned());
    }

    let list = |query: String| {
        let url = format!("{}/api/images{query}", lab.server.url);
        async move {
            http()
                .get(url)
                .bearer_auth(LAB_TOKEN)
                .send()
                .await
                .expect("answers")
        }
    };
    let first: ImageListPage = list("?limit=2".into()).await.json().await.expect("a page");
    assert_eq!(first.items.len(), 2);
    let cursor = first.next_cursor.clone().expect("a second page");
    let second: ImageListPage = list(format!("?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("a page");
    let mut seen: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|item| item.record.image_id.clone())
        .collect();
    seen.sort();
    seen.dedup();
    ids.sort();
    assert_eq!(seen, ids, "every row exactly once");

    let item = &first.items[0];
    for name in ["original", "thumbnail", "medium", "large"] {
        let link = item
            .urls
            .get(name)
            .unwrap_or_else(|| panic!("a link for {name}"));
        // The listing presigns nothing; the server streams the object when the link is read.
        let bytes = fetch_object_link(&lab, link, |request| request.bearer_auth(LAB_TOKEN)).await;
        let stored = lab
            .clients
            .object_bytes(&lab.bucket, &item.record.keys[name])
            .await;
        assert_eq!(bytes, stored, "{name}");
    }

    for bad in ["?limit=0", "?limit=101", "?limit=abc", "?cursor=%25%25"] {
        let response = list(bad.into()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_page_shows_health_and_recent_thumbnails() {
    let lab = Lab::start().await;
    let index_page = || async {
        http()
            .get(format!("{}/", lab.server.url))
            .bearer_auth(LAB_TOKEN)
            .send()
            .await
            .expect("answers")
            .text()
            .await
            .expect("HTML")
    };
    let empty = index_page().await;
    assert!(empty.contains("No images yet"));
    let url = lab
        .images
        .add("p.jpg", fixtures::jpeg(300, 300), "image/jpeg");
    let answer = process(&lab, &url).await;
    let id = answer.body["image_id"].as_str().expect("an id").to_owned();
    let page = index_page().await;
    assert!(page.contains(&lab.bucket));
    assert!(page.contains(&format!("data-image-id=\"{id}\"")));
    assert!(page.contains("<img class=\"thumbnail\" src=\""));
    // The thumbnail is the server's link, presigned only when the browser follows it.
    assert!(page.contains(&format!("src=\"/api/images/{id}/objects/thumbnail\"")));
    assert!(!page.contains("X-Amz-Signature"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_concurrency_limit_requests_are_refused_with_retry_after() {
    let lab = Lab::start_with(|config| config.max_in_flight = 1).await;
    lab.images
        .add("photo.jpg", fixtures::jpeg(200, 100), "image/jpeg");
    let slow_url = format!("{}/slow/1500/photo.jpg", lab.images.base());
    let server_url = lab.server.url.clone();
    let slow = tokio::spawn(async move {
        http()
            .post(format!("{server_url}/process-image"))
            .bearer_auth(LAB_TOKEN)
            .json(&serde_json::json!({ "image_url": slow_url }))
            .send()
            .await
            .expect("answers")
            .status()
    });
    // Wait until the slow request holds the only slot.
    let mut admitted = false;
    for _ in 0..100 {
        let health: Health = http()
            .get(format!("{}/health", lab.server.url))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("health");
        if health.in_flight == 1 {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted, "the slow request was admitted");

    let url = lab
        .images
        .add("other.jpg", fixtures::jpeg(200, 100), "image/jpeg");
    let answer = process(&lab, &url).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        "{}",
        answer.body
    );
    assert_eq!(
        answer
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(slow.await.expect("joins"), StatusCode::OK);
    // Once the slot is free the next request is served.
    let answer = process(&lab, &url).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}
