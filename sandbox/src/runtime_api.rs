//! The Lambda Runtime API (`/2018-06-01/runtime/...`) for one execution environment: the
//! `bootstrap` polls `invocation/next` for its event and posts `response` or `error`, exactly
//! as it does on AWS, so a function built with `lambda_runtime` runs unmodified.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc, oneshot};

/// An event on its way to the function.
#[derive(Debug)]
pub struct PendingInvocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Milliseconds since the Unix epoch by which the function must answer.
    pub deadline_ms: u64,
    pub function_arn: Arc<str>,
    /// Told the instant the runtime takes the event, which is when its Duration starts.
    pub dispatched: oneshot::Sender<Instant>,
    pub result: oneshot::Sender<RuntimeResult>,
}

/// What the runtime posted for an invocation.
#[derive(Debug)]
pub enum RuntimeResult {
    Response(Bytes),
    Error {
        body: Bytes,
        error_type: Option<String>,
    },
}

/// The state one environment's Runtime API shares with the host.
#[derive(Debug)]
pub struct RuntimeChannel {
    events: tokio::sync::Mutex<mpsc::Receiver<PendingInvocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<RuntimeResult>>>,
    /// Notified on the first `next` call: init is over.
    pub ready: Notify,
    pub ready_at: Mutex<Option<Instant>>,
    /// Set by `init/error`.
    pub init_error: Mutex<Option<Bytes>>,
    pub init_failed: Notify,
}

impl RuntimeChannel {
    pub fn new() -> (Arc<Self>, mpsc::Sender<PendingInvocation>) {
        let (sender, receiver) = mpsc::channel(1);
        let channel = Arc::new(Self {
            events: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            ready: Notify::new(),
            ready_at: Mutex::new(None),
            init_error: Mutex::new(None),
            init_failed: Notify::new(),
        });
        (channel, sender)
    }

    fn finish(&self, request_id: &str, result: RuntimeResult) -> StatusCode {
        let waiter = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut waiting| waiting.remove(request_id));
        match waiter {
            Some(sender) => {
                let _ = sender.send(result);
                StatusCode::ACCEPTED
            }
            // AWS answers 400 for an unknown or already-answered request id.
            None => StatusCode::BAD_REQUEST,
        }
    }
}

/// Serves the Runtime API on a fresh loopback port; returns the address for
/// `AWS_LAMBDA_RUNTIME_API` and the server task.
pub async fn serve(
    channel: Arc<RuntimeChannel>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // A page that found the port could otherwise answer an invocation in the function's
        // place.
        .layer(axum::middleware::from_fn(
            super::web_guard::refuse_web_pages,
        ))
        .with_state(channel);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, task))
}

async fn next(State(channel): State<Arc<RuntimeChannel>>) -> Response {
    {
        let mut ready_at = channel.ready_at.lock().unwrap_or_else(|p| p.into_inner());
        if ready_at.is_none() {
            *ready_at = Some(Instant::now());
            channel.ready.notify_waiters();
            channel.ready.notify_one();
        }
    }
    let event = channel.events.lock().await.recv().await;
    let Some(event) = event else {
        return StatusCode::GONE.into_response();
    };
    if let Ok(mut waiting) = channel.waiting.lock() {
        waiting.insert(event.request_id.clone(), event.result);
    }
    let _ = event.dispatched.send(Instant::now());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &event.request_id);
    set("lambda-runtime-deadline-ms", &event.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &event.function_arn);
    set(
        "lambda-runtime-trace-id",
        &format!(
            "Root=1-{}-{};Sampled=0",
            &event.request_id[..8.min(event.request_id.len())],
            event.request_id.replace('-', "")
        ),
    );
    set("content-type", "application/json");
    (StatusCode::OK, headers, event.payload).into_response()
}

async fn response(
    State(channel): State<Arc<RuntimeChannel>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    channel.finish(&request_id, RuntimeResult::Response(body))
}

async fn error(
    State(channel): State<Arc<RuntimeChannel>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    channel.finish(&request_id, RuntimeResult::Error { body, error_type })
}

async fn init_error(State(channel): State<Arc<RuntimeChannel>>, body: Bytes) -> StatusCode {
    if let Ok(mut slot) = channel.init_error.lock() {
        *slot = Some(body);
    }
    channel.init_failed.notify_waiters();
    channel.init_failed.notify_one();
    StatusCode::ACCEPTED
}
