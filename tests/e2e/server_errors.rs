//! Every error code of `POST /process-image`, table-driven: the right status, the stable code,
//! and nothing stored. Then storage failures: nothing half-written.

use hybridlab_tests::fixtures;
use hybridlab_tests::server::{LAB_TOKEN, Lab};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{assert_nothing_stored, http, post_json, process, rows};

struct Case {
    name: &'static str,
    url: String,
    status: StatusCode,
    code: &'static str,
}

async fn check_cases(lab: &Lab, cases: Vec<Case>) {
    for case in cases {
        let answer = process(lab, &case.url).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (case.status, case.code),
            "{}: {}",
            case.name,
            answer.body
        );
        let message = answer.body["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{}: a message says why", case.name);
        assert!(
            answer.body["request_id"].is_string(),
            "{}: request id",
            case.name
        );
        assert_nothing_stored(lab, case.name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_bad_images_get_their_error_code_and_store_nothing() {
    let lab = Lab::start_with(|config| {
        config.max_download_bytes = 2 * 1024 * 1024;
        config.download_timeout_ms = 700;
        config.max_pixels = 4_000_000;
    })
    .await;
    let base = lab.images.base();
    let photo = lab
        .images
        .add("photo.jpg", fixtures::jpeg(300, 200), "image/jpeg");
    let html = lab.images.add(
        "page.html",
        b"<html><body>hello</body></html>".to_vec(),
        "text/html",
    );
    let bomb = lab
        .images
        .add("bomb.png", fixtures::png_bomb(30_000, 30_000), "image/png");
    let too_many_pixels = lab.images.add(
        "huge.jpg",
        fixtures::grayscale_jpeg(2100, 2000),
        "image/jpeg",
    );
    let big_jpeg = fixtures::jpeg(3000, 1300);
    let truncated_big = lab.images.add(
        "cut-big.jpg",
        fixtures::truncated(&big_jpeg, 0.5),
        "image/jpeg",
    );
    let truncated_small = lab.images.add(
        "cut-small.jpg",
        fixtures::truncated(&fixtures::jpeg(400, 300), 0.5),
        "image/jpeg",
    );
    let truncated_png = lab.images.add(
        "cut.png",
        fixtures::truncated(&fixtures::png(400, 300), 0.6),
        "image/png",
    );
    let oversized = lab
        .images
        .add("large-file.bin", vec![0u8; 3 * 1024 * 1024], "image/jpeg");
    let empty = lab.images.add("empty.jpg", Vec::new(), "image/jpeg");

    let case = |name, url: String, status, code| Case {
        name,
        url,
        status,
        code,
    };
    check_cases(
        &lab,
        vec![
            case(
                "not a URL",
                "not a url".into(),
                StatusCode::BAD_REQUEST,
                "invalid_url",
            ),
            case(
                "relative URL",
                "/images/photo.jpg".into(),
                StatusCode::BAD_REQUEST,
                "invalid_url",
            ),
            case(
                "ftp URL",
                "ftp://example.com/a.jpg".into(),
                StatusCode::BAD_REQUEST,
                "invalid_url",
            ),
            case(
                "file URL",
                "file:///etc/passwd".into(),
                StatusCode::BAD_REQUEST,
                "invalid_url",
            ),
            case(
                "credentials in URL",
                format!(
                    "http://user:pw@127.0.0.1:{}/images/photo.jpg",
                    lab.images.port()
                ),
                StatusCode::BAD_REQUEST,
                "invalid_url",
            ),
            case(
                "instance metadata",
                "http://169.254.169.254/latest/meta-data/".into(),
                StatusCode::FORBIDDEN,
                "forbidden_address",
            ),
            case(
                "instance metadata over IPv6",
                "http://[fd00:ec2::254]/latest/meta-data/".into(),
                StatusCode::FORBIDDEN,
                "forbidden_address",
            ),
            case(
                "redirect to instance metadata",
                format!("{base}/redirect-to?url=http://169.254.169.254/latest/meta-data/"),
                StatusCode::FORBIDDEN,
                "forbidden_address",
            ),
            case(
                "four redirects",
                format!("{base}/redirect/4/photo.jpg"),
                StatusCode::BAD_GATEWAY,
                "download_failed",
            ),
            case(
                "HTTP 404",
                format!("{base}/status/404"),
                StatusCode::BAD_GATEWAY,
                "download_failed",
            ),
            case(
                "HTTP 500",
                format!("{base}/status/500"),
                StatusCode::BAD_GATEWAY,
                "download_failed",
            ),
            case(
                "nothing listening",
                "http://127.0.0.1:1/photo.jpg".into(),
                StatusCode::BAD_GATEWAY,
                "download_failed",
            ),
            // No answer within the timeout reads as any other host that gives none (a closed
            // or filtered port): the server is no port scanner.
            case(
                "slow host",
                format!("{base}/slow/5000/photo.jpg"),
                StatusCode::BAD_GATEWAY,
                "download_failed",
            ),
            case(
                "over the size cap, with a length",
                oversized,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            case(
                "over the size cap, no length",
                format!("{base}/stream/{}", 3 * 1024 * 1024),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            case(
                "HTML page",
                html,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_an_image",
            ),
            case(
                "empty body",
                empty,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_an_image",
            ),
            case(
                "decompression bomb",
                bomb,
                StatusCode::UNPROCESSABLE_ENTITY,
                "image_too_large",
            ),
            case(
                "over the pixel limit",
                too_many_pixels,
                StatusCode::UNPROCESSABLE_ENTITY,
                "image_too_large",
            ),
            case(
                "truncated large JPEG",
                truncated_big,
                StatusCode::UNPROCESSABLE_ENTITY,
                "decode_failed",
            ),
            case(
                "truncated small JPEG",
                truncated_small,
                StatusCode::UNPROCESSABLE_ENTITY,
                "decode_failed",
            ),
            case(
                "truncated PNG",
                truncated_png,
                StatusCode::UNPROCESSABLE_ENTITY,
                "decode_failed",
            ),
        ],
    )
    .await;

    // The limits are not off by one: three redirects and the photo itself still work.
    let answer = process(&lab, &format!("{base}/redirect/3/photo.jpg")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = process(&lab, &photo).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(rows(&lab).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_allow_flag_loopback_and_private_hosts_are_forbidden() {
    let lab = Lab::start_with(|config| config.allow_private_addresses = false).await;
    let photo = lab
        .images
        .add("photo.jpg", fixtures::jpeg(300, 200), "image/jpeg");
    let port = lab.images.port();
    let case = |name, url: String| Case {
        name,
        url,
        status: StatusCode::FORBIDDEN,
        code: "forbidden_address",
    };
    check_cases(
        &lab,
        vec![
            case("loopback literal", photo),
            case(
                "loopback by name",
                format!("http://localhost:{port}/images/photo.jpg"),
            ),
            case(
                "IPv6 loopback",
                format!("http://[::1]:{port}/images/photo.jpg"),
            ),
            case(
                "IPv4-mapped loopback",
                format!("http://[::ffff:127.0.0.1]:{port}/images/photo.jpg"),
            ),
            case("private network", "http://10.0.0.1/photo.jpg".into()),
            case(
                "decimal-encoded loopback",
                format!("http://2130706433:{port}/images/photo.jpg"),
            ),
            case("link-local", "http://169.254.10.10/photo.jpg".into()),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_invalid_requests() {
    let lab = Lab::start().await;
    for (name, body) in [
        ("no image_url", json!({"url": "http://x"})),
        ("image_url not a string", json!({"image_url": 5})),
        ("an array", json!([1, 2])),
    ] {
        let answer = post_json(&lab, body, Some(LAB_TOKEN)).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{name}: {}",
            answer.body
        );
    }
    let response = http()
        .post(format!("{}/process-image", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = http()
        .post(format!("{}/process-image", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .header("content-type", "application/json")
        .body(format!("{{\"image_url\": \"{}\"}}", "a".repeat(100 * 1024)))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_nothing_stored(&lab, "malformed bodies").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_is_required() {
    const TOKEN: &str = "stack-token-0123456789abcdef0123456789";
    let lab = Lab::start_with(|config| config.token = Some(TOKEN.into())).await;
    let url = lab
        .images
        .add("photo.jpg", fixtures::jpeg(200, 100), "image/jpeg");
    for token in [
        None,
        Some(""),
        Some("wrong"),
        Some(&TOKEN[..TOKEN.len() - 1]),
        Some(LAB_TOKEN),
    ] {
        let answer = post_json(&lab, json!({ "image_url": url }), token).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{token:?}"
        );
        assert!(answer.headers.contains_key("www-authenticate"));
    }
    assert_nothing_stored(&lab, "unauthorized").await;
    let answer = post_json(&lab, json!({ "image_url": url }), Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_s3_refuses_a_failed_row_says_why_and_no_object_is_left() {
    let lab = Lab::start_with(|config| config.bucket = "no-such-bucket-hybridlab".into()).await;
    let url = lab
        .images
        .add("photo.jpg", fixtures::jpeg(640, 480), "image/jpeg");
    let answer = process(&lab, &url).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::BAD_GATEWAY, "storage_failed"),
        "{}",
        answer.body
    );
    let message = answer.body["message"].as_str().unwrap_or("");
    assert!(
        !message.contains("NoSuchBucket"),
        "5xx answers hide internals: {message}"
    );

    let rows = rows(&lab).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.status, hybridlab_wire::ImageStatus::Failed);
    assert!(row.keys.is_empty());
    let reason = row.error.as_deref().unwrap_or("");
    assert!(
        reason.contains("NoSuchBucket"),
        "the row says why: {reason}"
    );
    assert!(
        message.contains(&row.image_id),
        "the answer names the image: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_dynamodb_refuses_the_uploaded_objects_are_removed() {
    let lab = Lab::start_with(|config| config.table = "no-such-table-hybridlab".into()).await;
    let url = lab
        .images
        .add("photo.jpg", fixtures::jpeg(640, 480), "image/jpeg");
    let answer = process(&lab, &url).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::BAD_GATEWAY, "storage_failed"),
        "{}",
        answer.body
    );
    assert_eq!(
        lab.clients.list_keys(&lab.bucket).await,
        Vec::<String>::new(),
        "no object without its row"
    );
}
