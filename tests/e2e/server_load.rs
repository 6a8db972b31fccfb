//! Many requests at once: every one is answered, and exactly one row and four objects exist
//! per image, nothing extra.

use std::collections::BTreeSet;

use futures::StreamExt;
use hybridlab_tests::fixtures;
use hybridlab_tests::server::{LAB_TOKEN, Lab};
use reqwest::StatusCode;

use crate::common::{http, rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_requests_at_concurrency_32_store_exactly_two_hundred_images() {
    const REQUESTS: usize = 200;
    const CONCURRENCY: usize = 32;
    let lab = Lab::start().await;
    let url = lab
        .images
        .add("photo.jpg", fixtures::jpeg(320, 240), "image/jpeg");
    let endpoint = format!("{}/process-image", lab.server.url);
    let client = http();

    let answers: Vec<(StatusCode, serde_json::Value)> = futures::stream::iter(0..REQUESTS)
        .map(|index| {
            let client = client.clone();
            let endpoint = endpoint.clone();
            let url = url.clone();
            async move {
                let response = client
                    .post(&endpoint)
                    .bearer_auth(LAB_TOKEN)
                    .header("x-request-id", format!("load-{index}"))
                    .json(&serde_json::json!({ "image_url": url }))
                    .send()
                    .await
                    .expect("answers");
                let status = response.status();
                (status, response.json().await.expect("JSON"))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let failures: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let answered_ids: BTreeSet<String> = answers
        .iter()
        .map(|(_, body)| body["image_id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(answered_ids.len(), REQUESTS, "every image has its own id");

    let rows = rows(&lab).await;
    assert_eq!(rows.len(), REQUESTS);
    let row_ids: BTreeSet<String> = rows.iter().map(|row| row.image_id.clone()).collect();
    assert_eq!(row_ids, answered_ids);
    let request_ids: BTreeSet<String> = rows
        .iter()
        .filter_map(|row| row.request_id.clone())
        .collect();
    assert_eq!(
        request_ids.len(),
        REQUESTS,
        "each row carries its caller's request id"
    );

    let expected_keys: BTreeSet<String> = rows
        .iter()
        .flat_map(|row| row.keys.values().cloned())
        .collect();
    assert_eq!(expected_keys.len(), REQUESTS * 4);
    let stored: BTreeSet<String> = lab
        .clients
        .list_keys(&lab.bucket)
        .await
        .into_iter()
        .collect();
    assert_eq!(stored, expected_keys, "exactly the objects the rows name");
}
