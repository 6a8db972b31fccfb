//! A loopback HTTP server that plays the part of the internet for the image server: it serves
//! the generated images and the misbehaving hosts a downloader must survive (redirect chains,
//! slow answers, bodies with no length, error statuses).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bytes::Bytes;

type Files = Arc<Mutex<HashMap<String, (Bytes, &'static str)>>>;

/// The running host; stops when dropped.
#[derive(Debug)]
pub struct ImageHost {
    address: SocketAddr,
    files: Files,
    task: tokio::task::JoinHandle<()>,
}

impl ImageHost {
    pub async fn start() -> Self {
        let files: Files = Arc::default();
        let app = Router::new()
            .route("/images/{name}", get(serve_file))
            .route("/redirect/{hops}/{name}", get(redirect_chain))
            .route("/redirect-to", get(redirect_to))
            .route("/slow/{ms}/{name}", get(slow_file))
            .route("/stream/{bytes}", get(unsized_stream))
            .route("/status/{code}", get(status))
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            files,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves `bytes` at `/images/<name>` and returns its URL.
    pub fn add(&self, name: &str, bytes: impl Into<Bytes>, content_type: &'static str) -> String {
        self.files
            .lock()
            .expect("not poisoned")
            .insert(name.to_owned(), (bytes.into(), content_type));
        format!("{}/images/{name}", self.base())
    }
}

impl Drop for ImageHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_file(State(files): State<Files>, Path(name): Path<String>) -> Response {
    let file = files.lock().expect("not poisoned").get(&name).cloned();
    match file {
        Some((bytes, content_type)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/redirect/3/x` → `/redirect/2/x` → … → `/images/x`: `hops` redirects in all.
async fn redirect_chain(Path((hops, name)): Path<(u32, String)>) -> Redirect {
    if hops <= 1 {
        Redirect::temporary(&format!("/images/{name}"))
    } else {
        Redirect::temporary(&format!("/redirect/{}/{name}", hops - 1))
    }
}

#[derive(serde::Deserialize)]
struct Target {
    url: String,
}

async fn redirect_to(Query(target): Query<Target>) -> Redirect {
    Redirect::temporary(&target.url)
}

async fn slow_file(State(files): State<Files>, Path((ms, name)): Path<(u64, String)>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    serve_file(State(files), Path(name)).await
}

/// `bytes` of data sent in 64 KiB chunks with no Content-Length.
async fn unsized_stream(Path(bytes): Path<usize>) -> Response {
    const CHUNK: usize = 64 * 1024;
    let chunks = (0..bytes.div_ceil(CHUNK)).map(move |index| {
        let size = CHUNK.min(bytes - index * CHUNK);
        Ok::<_, std::io::Error>(Bytes::from(vec![0xAB; size]))
    });
    Response::new(Body::from_stream(futures::stream::iter(chunks)))
}

async fn status(Path(code): Path<u16>) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
}
