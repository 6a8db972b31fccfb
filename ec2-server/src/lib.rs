//! The lab's image server, the program that runs on the EC2 instance: `POST /process-image`
//! downloads an image, makes its variants, stores them in S3 and a row in DynamoDB.
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it until shut down.

pub mod config;
pub mod download;
pub mod error;
pub mod page;
mod process;
pub mod storage;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, Request, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hybridlab_wire::{
    ErrorCode, Health, ImageListItem, ImageListPage, ImageRecord, ProcessImageRequest,
};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Instrument;

pub use config::ServerConfig;
use download::{AddressPolicy, Downloader};
use error::AppError;
pub use process::{now_rfc3339, object_key};
use storage::ImageStore;

/// The header that carries the caller's request id, echoed on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Largest request body accepted: a JSON object naming a URL needs far less.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Rows per page of `GET /api/images` when the caller does not say, and the most it may ask.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// How many images `GET /` shows.
pub const INDEX_IMAGES: usize = 24;

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the HTTP client for downloads could not be built: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("the configuration is invalid: {0}")]
    Config(String),
}

/// Shared by every request: configuration, clients and the concurrency limits.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    store: ImageStore,
    downloader: Downloader,
    started: Instant,
    /// Requests admitted at once; a request that finds none free is answered 503.
    admission: Arc<Semaphore>,
    /// Images decoded at once; admitted requests wait for one.
    workers: Semaphore,
}

impl AppState {
    /// Builds the state from a configuration and SDK clients made elsewhere (the binary makes
    /// them from the configuration; tests point them at moto).
    pub fn new(
        config: ServerConfig,
        s3: aws_sdk_s3::Client,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, BuildError> {
        if config.max_in_flight == 0 {
            return Err(BuildError::Config(
                "max-in-flight must be at least 1".into(),
            ));
        }
        if config.max_download_bytes == 0 {
            return Err(BuildError::Config(
                "max-download-bytes must be at least 1".into(),
            ));
        }
        let downloader = Downloader::new(
            AddressPolicy {
                allow_private: config.allow_private_addresses,
            },
            config.max_download_bytes,
            config.connect_timeout(),
            config.download_timeout(),
        )?;
        let store = ImageStore::new(s3, dynamodb, &config.bucket, &config.table);
        Ok(Self {
            inner: Arc::new(Inner {
                admission: Arc::new(Semaphore::new(config.max_in_flight)),
                workers: Semaphore::new(config.worker_count()),
                config,
                store,
                downloader,
                started: Instant::now(),
            }),
        })
    }

    /// Builds the SDK clients from the configuration and the standard AWS chain (environment,
    /// profile, instance role), then the state.
    pub async fn from_config(config: ServerConfig) -> Result<Self, BuildError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            // AWS-compatible endpoints on loopback have no per-bucket host names.
            .force_path_style(config.endpoint_url.is_some())
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
        Self::new(config, s3, dynamodb)
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &ImageStore {
        &self.inner.store
    }

    pub(crate) fn downloader(&self) -> &Downloader {
        &self.inner.downloader
    }

    fn admit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.inner
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                let mut err = AppError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "the server is processing its limit of {} images; retry shortly",
                        self.inner.config.max_in_flight
                    ),
                );
                err.retry_after = Some(1);
                err
            })
    }

    pub(crate) async fn acquire_worker(&self) -> Result<SemaphorePermit<'_>, AppError> {
        self.inner
            .workers
            .acquire()
            .await
            .map_err(AppError::internal)
    }

    /// What `GET /health` answers.
    pub fn health(&self) -> Health {
        let max = self.inner.config.max_in_flight;
        Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_s: self.inner.started.elapsed().as_secs_f64(),
            bucket: self.inner.config.bucket.clone(),
            table: self.inner.config.table.clone(),
            region: self.inner.config.region.clone(),
            in_flight: max.saturating_sub(self.inner.admission.available_permits()),
            max_in_flight: max,
        }
    }

    fn presign_expiry(&self) -> Duration {
        Duration::from_secs(self.inner.config.presign_seconds.max(1))
    }

    /// A listing row with a presigned URL for each of its objects.
    async fn with_urls(&self, record: ImageRecord) -> Result<ImageListItem, AppError> {
        let mut urls = std::collections::BTreeMap::new();
        for (name, key) in &record.keys {
            let url = self.store().presign_get(key, self.presign_expiry()).await?;
            urls.insert(name.clone(), url);
        }
        Ok(ImageListItem { record, urls })
    }
}

/// The router of the image server.
pub fn app(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            tracing::info_span!(
                "http",
                method = %request.method(),
                path = %request.uri().path(),
                request_id,
            )
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/process-image", post(process_image))
        .route("/api/images", get(list_images))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(trace)
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then lets the requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM (systemd, the sandbox's agent) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(state.health())
}

async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such route")
}

/// Checks `Authorization: Bearer <token>` in constant time when a token is configured.
fn authorize(expected: Option<&str>, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::Unauthorized,
            "this endpoint needs `Authorization: Bearer <token>` with the stack's token",
        ))
    }
}

/// The request id: the caller's header, else the body's field, else a new one.
fn request_id(headers: &HeaderMap, body_request_id: Option<&str>) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .or(body_request_id)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

async fn process_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ProcessImageRequest>, JsonRejection>,
) -> Response {
    let body_request_id = body.as_ref().ok().and_then(|Json(b)| b.request_id.clone());
    let request_id = request_id(&headers, body_request_id.as_deref());
    let span = tracing::info_span!("process_image", request_id = %request_id);
    let outcome = async {
        authorize(state.config().token.as_deref(), &headers)?;
        let Json(request) = body.map_err(|rejection| {
            let code = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ErrorCode::TooLarge
            } else {
                ErrorCode::InvalidRequest
            };
            AppError::new(
                code,
                format!(
                    "the body must be JSON like {{\"image_url\": \"https://...\"}}: {rejection}"
                ),
            )
        })?;
        let _admitted = state.admit()?;
        process::process_image(&state, request, &request_id).await
    }
    .instrument(span.clone())
    .await;

    let mut response = match outcome {
        Ok(answer) => Json(answer).into_response(),
        Err(err) => {
            span.in_scope(|| {
                tracing::warn!(error = err.code.as_str(), message = %err.message, "request failed");
            });
            err.with_request_id(&request_id).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Query of `GET /api/images`.
#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    limit: Option<i32>,
    cursor: Option<String>,
}

async fn list_images(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ImageListPage>, AppError> {
    let Query(query) = query
        .map_err(|rejection| AppError::new(ErrorCode::InvalidRequest, rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::new(
            ErrorCode::InvalidRequest,
            format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let (records, next_cursor) = state
        .store()
        .list_records(limit, query.cursor.as_deref())
        .await?;
    let mut items = Vec::with_capacity(records.len());
    for record in records {
        items.push(state.with_urls(record).await?);
    }
    Ok(Json(ImageListPage { items, next_cursor }))
}

async fn index(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let records = state.store().recent_records(INDEX_IMAGES).await?;
    let mut items = Vec::with_capacity(records.len());
    for record in records {
        items.push(state.with_urls(record).await?);
    }
    Ok(Html(page::render_index(&state.health(), &items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn without_a_configured_token_anyone_may_call() {
        assert!(authorize(None, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn a_configured_token_must_be_presented_exactly() {
        let token = Some("s3cret");
        assert!(authorize(token, &headers(&[("authorization", "Bearer s3cret")])).is_ok());
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "s3cret",
            "Basic s3cret",
            "",
        ] {
            let err = authorize(token, &headers(&[("authorization", wrong)]))
                .expect_err("wrong token refused");
            assert_eq!(err.code, ErrorCode::Unauthorized, "{wrong}");
        }
        assert!(authorize(token, &HeaderMap::new()).is_err());
    }

    #[test]
    fn the_request_id_prefers_the_header_then_the_body() {
        assert_eq!(
            request_id(&headers(&[(REQUEST_ID_HEADER, "h")]), Some("b")),
            "h"
        );
        assert_eq!(request_id(&HeaderMap::new(), Some("b")), "b");
        let made = request_id(&HeaderMap::new(), None);
        assert_eq!(made.len(), 36, "a new UUID: {made}");
    }
}
