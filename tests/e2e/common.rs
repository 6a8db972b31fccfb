//! Helpers the e2e modules share.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_tests::sandbox::EdgeClients;
pub use hybridlab_tests::server::LAB_TOKEN;
use hybridlab_tests::server::Lab;
use hybridlab_wire::ImageRecord;
use hybridlab_wire::item::from_item;
use reqwest::StatusCode;
use serde_json::Value;

/// An HTTP client for the tests, with no proxy so loopback is reached directly.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
}

/// The answer of one `POST /process-image`.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The stable error code of an error answer.
    pub fn error_code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<no error code>")
    }
}

pub async fn post_json(lab: &Lab, body: Value, token: Option<&str>) -> Answer {
    let mut request = http()
        .post(format!("{}/process-image", lab.server.url))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
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

pub async fn process(lab: &Lab, image_url: &str) -> Answer {
    post_json(
        lab,
        serde_json::json!({ "image_url": image_url }),
        Some(LAB_TOKEN),
    )
    .await
}

/// Every row of the lab's table, parsed.
pub async fn rows(lab: &Lab) -> Vec<ImageRecord> {
    lab.clients
        .scan_all(&lab.table)
        .await
        .iter()
        .map(|item| from_item(item).expect("rows parse"))
        .collect()
}

/// Asserts that nothing at all was stored: no object, no row.
pub async fn assert_nothing_stored(lab: &Lab, case: &str) {
    assert_eq!(
        lab.clients.list_keys(&lab.bucket).await,
        Vec::<String>::new(),
        "{case}: objects"
    );
    assert!(rows(lab).await.is_empty(), "{case}: rows");
}

/// Polls `check` every 100 ms for up to `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the lab's three variants among `keys`, in `bucket`: each a JPEG with the image's id
/// as metadata, scaled from a `source` (width, height) image to fit its longest side. The
/// server's and the resizer's outputs must agree, so both are checked by this one function.
pub async fn assert_variants(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &BTreeMap<String, String>,
    image_id: &str,
    source: (u32, u32),
) {
    for (name, side) in [("thumbnail", 150), ("medium", 600), ("large", 1200)] {
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(&keys[name])
            .send()
            .await
            .unwrap_or_else(|err| panic!("the {name} variant exists: {err}"));
        assert_eq!(object.content_type(), Some("image/jpeg"), "{name}");
        assert_eq!(
            object
                .metadata()
                .and_then(|m| m.get("image-id"))
                .map(String::as_str),
            Some(image_id),
            "{name}"
        );
        let bytes = object.body.collect().await.expect("readable").into_bytes();
        let variant = hybridlab_tests::fixtures::decode(&bytes);
        assert_eq!(
            (variant.width(), variant.height()),
            hybridlab_imaging::fit_within(source.0, source.1, side),
            "{name}"
        );
    }
}

/// An HTTP client that does not follow redirects, to read a `Location`.
pub fn http_no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// Reads the server's object link `link` (a path such as `/api/images/<id>/objects/thumbnail`)
/// as the caller `auth` adds itself to the request: the object's bytes, streamed by the server
/// itself (no presigned URL is handed out).
pub async fn fetch_object_link(
    lab: &Lab,
    link: &str,
    auth: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Vec<u8> {
    assert!(link.starts_with("/api/images/"), "a server link: {link}");
    let object = auth(http_no_redirect().get(format!("{}{link}", lab.server.url)))
        .send()
        .await
        .expect("the link answers");
    assert_eq!(object.status(), StatusCode::OK, "{link}");
    assert!(object.headers().get("location").is_none(), "{link}");
    assert_eq!(
        object
            .headers()
            .get("cache-control")
            .and_then(|value| value.to_str().ok()),
        Some("private, max-age=60"),
        "{link}"
    );
    object.bytes().await.expect("a body").to_vec()
}

/// What every hostile case ends with: `/health` answers with nothing in flight (waiting up to
/// 30 s for writes a cancelled request left running) and a normal photo is processed.
pub async fn assert_recovered(lab: &Lab, token: Option<&str>) {
    let idle = eventually(Duration::from_secs(30), || async {
        let health: hybridlab_wire::Health = http()
            .get(format!("{}/health", lab.server.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (health.status == "ok" && health.in_flight == 0).then_some(())
    })
    .await;
    assert!(idle.is_some(), "/health answers with nothing in flight");
    let url = lab.images.add(
        "recovery.jpg",
        hybridlab_tests::fixtures::jpeg(640, 480),
        "image/jpeg",
    );
    let answer = post_json(lab, serde_json::json!({ "image_url": url }), token).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "a normal photo: {}",
        answer.body
    );
}

/// The outcome of one invocation through the SDK.
pub struct Invoked {
    pub status: i32,
    pub function_error: Option<String>,
    pub payload: Value,
    pub log: String,
}

/// Invokes `function` through the SDK with its log tail, as the console does.
pub async fn invoke(clients: &EdgeClients, function: &str, event: Value) -> Invoked {
    let output = clients
        .lambda
        .invoke()
        .function_name(function)
        .log_type(LogType::Tail)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "invoke {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&err)
            )
        });
    let log = output
        .log_result()
        .map(|encoded| String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("UTF-8"))
        .unwrap_or_default();
    Invoked {
        status: output.status_code(),
        function_error: output.function_error().map(str::to_owned),
        payload: output
            .payload()
            .map(|blob| serde_json::from_slice(blob.as_ref()).expect("JSON payload"))
            .unwrap_or(Value::Null),
        log,
    }
}
