//! A loopback proxy in front of the sandbox's edge that records every request and answer
//! passing through it (what `up` and `down` send, in order, as AWS would receive it), and
//! answers S3's ListMultipartUploads in pages as S3 does: moto answers every upload in one
//! page, so a client that reads only the first page cannot be told from one that follows
//! them. The pages follow S3's rules: ordered by key then upload id, resumed after
//! `key-marker`/`upload-id-marker`, `IsTruncated` with `NextKeyMarker`/`NextUploadIdMarker`
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html>).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;

/// One request that passed, with its answer (bodies as text, lossily).
#[derive(Debug, Clone)]
pub struct Tapped {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub body: String,
    pub status: u16,
    pub answer: String,
}

impl Tapped {
    /// The EC2-style `Action=` of a form body, if it has one.
    pub fn action(&self) -> Option<&str> {
        self.body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
    }

    /// Whether the query has parameter `name` (with or without a value).
    pub fn has_query(&self, name: &str) -> bool {
        self.uri.split_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|pair| pair == name || pair.starts_with(&format!("{name}=")))
        })
    }
}

#[derive(Clone)]
struct Tap {
    edge: String,
    client: reqwest::Client,
    multipart_page: usize,
    tapped: Arc<Mutex<Vec<Tapped>>>,
}

/// The running proxy; stops when dropped.
#[derive(Debug)]
pub struct EdgeTap {
    address: SocketAddr,
    tapped: Arc<Mutex<Vec<Tapped>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EdgeTap {
    /// A proxy to `edge` whose ListMultipartUploads pages hold at most `multipart_page`
    /// uploads (S3's is 1,000; a small one keeps a test's uploads few).
    pub async fn start(edge: &str, multipart_page: usize) -> Self {
        let tapped: Arc<Mutex<Vec<Tapped>>> = Arc::default();
        let tap = Tap {
            edge: edge.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            multipart_page,
            tapped: tapped.clone(),
        };
        let app = Router::new()
            .fallback(forward)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(tap);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            tapped,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`: give it to the SDK as the endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Everything that passed so far, in order.
    pub fn tapped(&self) -> Vec<Tapped> {
        self.tapped.lock().expect("not poisoned").clone()
    }
}

impl Drop for EdgeTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

async fn forward(State(tap): State<Tap>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let uri = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut outgoing = tap
        .client
        .request(parts.method.clone(), format!("{}{uri}", tap.edge))
        .body(body.clone());
    // The Host header too: it is signed.
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(answer) = outgoing.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let code = answer.status();
    let headers = answer.headers().clone();
    let Ok(mut answer_body) = answer.bytes().await.map(|b| b.to_vec()) else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut record = Tapped {
        method: parts.method.to_string(),
        uri,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: code.as_u16(),
        answer: String::new(),
    };
    if parts.method == axum::http::Method::GET && record.has_query("uploads") && code.is_success() {
        answer_body = page_of_uploads(
            &String::from_utf8_lossy(&answer_body),
            &record.uri,
            tap.multipart_page,
        )
        .into_bytes();
    }
    record.answer = String::from_utf8_lossy(&answer_body).into_owned();
    tap.tapped.lock().expect("not poisoned").push(record);
    let mut response = Response::builder().status(code);
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer_body))
        .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}

/// The text of the first `<tag>` element of `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// moto's one-page ListMultipartUploadsResult as the page S3 would answer `uri` with.
fn page_of_uploads(xml: &str, uri: &str, page: usize) -> String {
    let query = reqwest::Url::parse(&format!("http://tap{uri}")).expect("a URI");
    let marker = |name: &str| {
        query
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .filter(|value| !value.is_empty())
    };
    let (key_marker, id_marker) = (marker("key-marker"), marker("upload-id-marker"));
    let Some(first) = xml.find("<Upload>") else {
        return xml.to_owned();
    };
    let end = xml
        .rfind("</Upload>")
        .map_or(first, |i| i + "</Upload>".len());
    let mut uploads: Vec<(String, String, &str)> = xml[first..end]
        .split_inclusive("</Upload>")
        .map(str::trim)
        .filter(|chunk| chunk.starts_with("<Upload>"))
        .map(|chunk| {
            (
                element(chunk, "Key").unwrap_or_default().to_owned(),
                element(chunk, "UploadId").unwrap_or_default().to_owned(),
                chunk,
            )
        })
        .collect();
    uploads.sort();
    let after: Vec<&(String, String, &str)> = uploads
        .iter()
        .filter(|(key, id, _)| match (&key_marker, &id_marker) {
            (None, _) => true,
            (Some(km), None) => key > km,
            (Some(km), Some(im)) => key > km || (key == km && id > im),
        })
        .collect();
    let shown = &after[..after.len().min(page)];
    let truncated = after.len() > shown.len();
    let mut body = xml[..first]
        .replace("<IsTruncated>false</IsTruncated>", "")
        .replace("<IsTruncated>true</IsTruncated>", "");
    body.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if let (true, Some((key, id, _))) = (truncated, shown.last()) {
        body.push_str(&format!(
            "<NextKeyMarker>{key}</NextKeyMarker><NextUploadIdMarker>{id}</NextUploadIdMarker>"
        ));
    }
    for (_, _, chunk) in shown {
        body.push_str(chunk);
    }
    body.push_str(
        &xml[end..]
            .replace("<IsTruncated>false</IsTruncated>", "")
            .replace("<IsTruncated>true</IsTruncated>", ""),
    );
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_come_in_pages_resumed_after_the_markers() {
        let upload = |key: &str, id: &str| {
            format!("<Upload><Key>{key}</Key><UploadId>{id}</UploadId></Upload>")
        };
        let xml = format!(
            "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated>{}{}{}</ListMultipartUploadsResult>",
            upload("b", "2"),
            upload("a", "1"),
            upload("b", "1"),
        );
        let first = page_of_uploads(&xml, "/b?uploads", 2);
        assert!(first.contains("<IsTruncated>true</IsTruncated>"), "{first}");
        assert!(first.contains(
            "<NextKeyMarker>b</NextKeyMarker><NextUploadIdMarker>1</NextUploadIdMarker>"
        ));
        assert!(first.contains(&upload("a", "1")) && !first.contains(&upload("b", "2")));
        let second = page_of_uploads(&xml, "/b?uploads&key-marker=b&upload-id-marker=1", 2);
        assert!(
            second.contains("<IsTruncated>false</IsTruncated>"),
            "{second}"
        );
        assert!(second.contains(&upload("b", "2")) && !second.contains(&upload("a", "1")));
        assert!(second.ends_with("</ListMultipartUploadsResult>"));
    }
}
