//! The lab's image server, the program on the EC2 instance: `POST /process-image` downloads an
//! image, makes its variants, stores them in S3 and a row in DynamoDB; the upload routes feed
//! the event-driven pipeline; `/` is the gallery.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it until shut down.

mod budget;
pub mod config;
pub mod connections;
pub mod download;
pub mod error;
pub mod page;
mod process;
pub mod session;
pub mod sign_in_code;
pub mod storage;
pub mod sweep;
pub mod tls;
pub mod upload;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hybridlab_wire::{
    ErrorCode, Health, ImageListItem, ImageListPage, ImageRecord, ImageStatus, ORIGINAL,
    PresignUploadRequest, ProcessImageRequest,
};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Instrument;

pub use config::{PipelineBuckets, ServerConfig};
use download::{AddressPolicy, Downloader};
use error::AppError;
pub use process::new_image_id;
use storage::ImageStore;

/// The header that carries the caller's request id, echoed on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Largest request body accepted: a JSON object naming a URL needs far less.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What `POST /upload` accepts beyond the file's own cap: the multipart boundaries and headers.
pub const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;

/// Rows per page of `GET /api/images` when the caller does not say, and the most it may ask.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// How many images `GET /` shows.
pub const INDEX_IMAGES: usize = 24;

/// Gallery and `/api/images*` requests served at once; more are answered 503 with
/// Retry-After. Each reads at most [`storage::RECENT_SCAN_LIMIT`] rows, so this bounds the
/// DynamoDB reads a crowd of open tabs (or a script) can cause, apart from image processing's
/// own limit.
pub const MAX_GALLERY_IN_FLIGHT: usize = 8;

/// Objects never change under their key; a browser keeps them for a minute, and only for the
/// signed-in user.
const OBJECT_CACHE_CONTROL: &str = "private, max-age=60";

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the HTTP client for downloads could not be built: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("the configuration is invalid: {0}")]
    Config(String),
    #[error(transparent)]
    Token(#[from] hybridlab_wire::token::TokenError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Shared by every request: configuration, clients and the concurrency limits.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    /// The event-driven pipeline's buckets, when the stack has one.
    pipeline: Option<PipelineBuckets>,
    store: ImageStore,
    downloader: Downloader,
    /// The memory the downloader's bodies and `POST /upload`'s files hold together.
    input_memory: Arc<budget::DownloadBudget>,
    started: Instant,
    /// Requests admitted at once; a request that finds none free is answered 503.
    admission: Arc<Semaphore>,
    /// Images decoded at once and the memory their decodes hold; admitted requests wait for
    /// both, for a bounded time.
    decodes: budget::DecodeBudget,
    /// Gallery and listing requests served at once; see [`MAX_GALLERY_IN_FLIGHT`].
    gallery: Arc<Semaphore>,
    /// The TLS acceptor when the server has a certificate (always on AWS: `up` makes one).
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The one-time codes that sign a browser in for `hybridlab gallery`.
    sign_in_codes: sign_in_code::SignInCodes,
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
        if config.decode_memory_mib == Some(0) {
            return Err(BuildError::Config(
                "decode-memory-mib must be at least 1".into(),
            ));
        }
        config.check_download_memory().map_err(BuildError::Config)?;
        if config.max_upload_bytes == 0 {
            return Err(BuildError::Config(
                "max-upload-bytes must be at least 1".into(),
            ));
        }
        if config.stale_after_seconds <= config.presign_seconds {
            return Err(BuildError::Config(format!(
                "stale-after-seconds ({}) must exceed presign-seconds ({}): an upload URL still \
                 valid could otherwise fill a row already marked FAILED",
                config.stale_after_seconds, config.presign_seconds
            )));
        }
        // Refused here rather than checked per request: an empty or missing token used to
        // mean "no check", which fails open.
        hybridlab_wire::token::check_token(config.token.as_deref())?;
        let pipeline = config.pipeline().map_err(BuildError::Config)?;
        let sign_in_code_ttl = config.sign_in_code_ttl().map_err(BuildError::Config)?;
        let tls = tls::server_config(config.tls_cert.as_deref(), config.tls_key.as_deref())?;
        // Downloads and uploads share it: see budget.rs.
        let download_memory = Arc::new(budget::DownloadBudget::new(
            budget::download_memory_bytes(
                config.download_memory_mib,
                config.max_download_bytes.max(config.max_upload_bytes),
            ),
            config.decode_wait(),
        ));
        let downloader = Downloader::new(
            AddressPolicy {
                allow_private: config.allow_private_addresses,
            },
            config.max_download_bytes,
            config.connect_timeout(),
            config.download_timeout(),
            download_memory.clone(),
        )?;
        let store = ImageStore::new(s3, dynamodb, &config.bucket, &config.table);
        let decodes = budget::DecodeBudget::new(
            config.worker_count(),
            budget::decode_memory_bytes(config.decode_memory_mib),
            config.decode_wait(),
        );
        tracing::info!(
            workers = config.worker_count(),
            decode_memory_mib = decodes.memory_bytes() / (1024 * 1024),
            download_memory_mib = download_memory.memory_bytes() / (1024 * 1024),
            "decode budget"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                admission: Arc::new(Semaphore::new(config.max_in_flight)),
                decodes,
                gallery: Arc::new(Semaphore::new(MAX_GALLERY_IN_FLIGHT)),
                config,
                pipeline,
                store,
                downloader,
                input_memory: download_memory,
                started: Instant::now(),
                tls,
                sign_in_codes: sign_in_code::SignInCodes::new(
                    sign_in_code_ttl,
                    sign_in_code::MAX_OUTSTANDING,
                ),
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

    /// The bearer token, checked by [`AppState::new`] (so never empty).
    fn token(&self) -> &str {
        self.inner.config.token.as_deref().unwrap_or_default()
    }

    pub fn store(&self) -> &ImageStore {
        &self.inner.store
    }

    pub(crate) fn downloader(&self) -> &Downloader {
        &self.inner.downloader
    }

    /// The download budget, which `POST /upload` draws on too.
    pub(crate) fn input_memory(&self) -> &Arc<budget::DownloadBudget> {
        &self.inner.input_memory
    }

    /// The pipeline's buckets, or the error that says how to deploy it.
    fn pipeline(&self) -> Result<&PipelineBuckets, AppError> {
        self.inner.pipeline.as_ref().ok_or_else(|| {
            AppError::new(
                ErrorCode::PipelineNotDeployed,
                "this stack has no upload pipeline; deploy it with `hybridlab up --with pipeline`",
            )
        })
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

    /// Waits, at most `limit`, until no admitted request holds a slot: the writes of a request
    /// whose client hung up keep theirs until done.
    pub async fn drain(&self, limit: Duration) {
        let all = u32::try_from(self.inner.config.max_in_flight).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(limit, self.inner.admission.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!("shutting down with writes still running after {limit:?}");
        }
    }

    /// A slot for a gallery or listing request, or the 503 that says to retry.
    fn admit_gallery(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.inner.gallery.clone().try_acquire_owned().map_err(|_| {
            let mut err = AppError::new(
                ErrorCode::Overloaded,
                format!(
                    "the server is serving its limit of {MAX_GALLERY_IN_FLIGHT} gallery \
                         requests; retry shortly"
                ),
            );
            err.retry_after = Some(1);
            err
        })
    }

    /// A decode worker and the memory `cost` says the decode needs. The slot is owned so it
    /// can move into the blocking decode and be given back when that ends, not when the
    /// request's future is dropped (a client that goes away drops it; the decode goes on).
    pub(crate) async fn acquire_worker(
        &self,
        cost: &hybridlab_imaging::DecodeCost,
    ) -> Result<budget::DecodeSlot, AppError> {
        self.inner.decodes.acquire(cost).await
    }

    /// The memory all decodes may hold together, and so the most one may need.
    pub(crate) fn decode_memory_bytes(&self) -> u64 {
        self.inner.decodes.memory_bytes()
    }

    /// Decodes running now, including those whose client has gone.
    pub(crate) fn decoding(&self) -> usize {
        self.inner.decodes.decoding()
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
            uploads_bucket: self.inner.pipeline.as_ref().map(|p| p.uploads.clone()),
            processed_bucket: self.inner.pipeline.as_ref().map(|p| p.processed.clone()),
            jpeg_codec: Some(hybridlab_imaging::JpegCodec::preferred().name().into()),
        }
    }

    /// The pipeline's buckets, when the stack has them.
    pub fn pipeline_buckets(&self) -> Option<&PipelineBuckets> {
        self.inner.pipeline.as_ref()
    }

    pub(crate) fn presign_expiry(&self) -> Duration {
        Duration::from_secs(self.inner.config.presign_seconds.max(1))
    }

    /// A listing row with the server's link to each of its objects. Nothing is presigned here:
    /// a link is presigned when it is followed, so a page of rows costs no signatures and hands
    /// out no URL that works without the token. While the pipeline has not finished a row,
    /// only the original can exist.
    fn with_links(record: ImageRecord) -> ImageListItem {
        let urls = record
            .keys
            .keys()
            .filter(|name| linkable(&record, name))
            .map(|name| (name.clone(), object_link(&record.image_id, name)))
            .collect();
        ImageListItem {
            record: hide_source_query(record),
            urls,
        }
    }
}

/// Whether the object `name` of `record` can be linked: it exists (an unfinished row has only
/// its original) and its name is plain enough for a path segment (the server names them).
fn linkable(record: &ImageRecord, name: &str) -> bool {
    let unfinished = matches!(
        record.status,
        ImageStatus::Pending | ImageStatus::Processing
    );
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    plain && !(unfinished && name != ORIGINAL)
}

/// The server's link to object `name` of image `image_id`.
pub fn object_link(image_id: &str, name: &str) -> String {
    format!("/api/images/{image_id}/objects/{name}")
}

/// The row as the gallery and the API show it: a source URL without its query string and
/// fragment, which may carry someone's credentials (a presigned URL, an API key) that the
/// listing must not pass on. The stored row keeps it whole.
fn hide_source_query(mut record: ImageRecord) -> ImageRecord {
    if let Some(source) = &record.source_url {
        let shown = match url::Url::parse(source) {
            Ok(mut url) => {
                // The part after the path is the query and the fragment, with their `?`/`#`.
                let had_query = !url[url::Position::AfterPath..].is_empty();
                url.set_query(None);
                url.set_fragment(None);
                let _ = url.set_username("");
                let _ = url.set_password(None);
                let mut shown = url.to_string();
                if had_query {
                    shown.push_str("?…");
                }
                shown
            }
            Err(_) => "(not a URL)".to_owned(),
        };
        record.source_url = Some(shown);
    }
    record
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
    // The file's own cap is enforced while it streams; this only stops a body far beyond it.
    let upload_limit = usize::try_from(state.config().max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD_BYTES);
    Router::new()
        .route("/", get(index))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route(
            hybridlab_wire::sign_in::SIGN_IN_CODES_PATH,
            post(mint_sign_in_code),
        )
        .route("/health", get(health))
        .route("/process-image", post(process_image))
        .route(
            "/upload",
            post(upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/uploads", post(presign_upload))
        .route("/api/images", get(list_images))
        .route("/api/images/{image_id}", get(get_image))
        .route(
            "/api/images/{image_id}/objects/{name}",
            get(object_download),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(trace)
        .with_state(state)
}

/// Serves `app(state)` on `listener` (over TLS when configured, with the connection limits of
/// [`connections`]) until `shutdown` completes, then lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The stale-row sweep runs beside the server and stops with it.
    let sweeper = tokio::spawn(sweep::run(state.clone()));
    let state_for_drain = state.clone();
    // The soft descriptor limit (1024 by default) would be reached by connections long before
    // the cap; systemd's LimitNOFILE sets the hard limit this raises it to.
    let descriptors = connections::raise_descriptor_limit();
    let limits = state.config().connection_limits(descriptors);
    tracing::info!(
        max_connections = limits.max_connections,
        max_per_client = limits.max_per_client,
        response_write_timeout_ms = limits.response_write_timeout.as_millis(),
        descriptors,
        tls = state.inner.tls.is_some(),
        "connection limits"
    );
    let tls = state.inner.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let served = connections::serve(listener, app(state), limits, tls, shutdown).await;
    sweeper.abort();
    // A request whose client hung up is no longer one the server waits for, but its writes
    // may still run in their own task, holding its admission slot: wait for those too.
    state_for_drain.drain(DRAIN_LIMIT).await;
    served
}

/// How long shutdown waits for writes that outlived their request.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

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

/// Checks `Authorization: Bearer <token>` in constant time. An empty expected token refuses
/// everyone (the state never holds one; this keeps the check fail-closed on its own).
fn authorize(expected: &str, headers: &HeaderMap) -> Result<(), AppError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
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
        authorize(state.token(), &headers)?;
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
        let admitted = state.admit()?;
        process::process_image(&state, request, &request_id, admitted).await
    }
    .instrument(span.clone())
    .await;
    respond(StatusCode::OK, outcome, &request_id, &span)
}

/// The answer of a request that writes: the JSON with `status`, or the error (logged in
/// `span`), and the request id header either way.
fn respond<T: Serialize>(
    status: StatusCode,
    outcome: Result<T, AppError>,
    request_id: &str,
    span: &tracing::Span,
) -> Response {
    let mut response = match outcome {
        Ok(answer) => (status, Json(answer)).into_response(),
        Err(err) => {
            span.in_scope(|| {
                tracing::warn!(error = err.code.as_str(), message = %err.message, "request failed");
            });
            err.with_request_id(request_id).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// `POST /upload`: a multipart form with the file in field `file`.
async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let request_id = request_id(&headers, None);
    let span = tracing::info_span!("upload", request_id = %request_id);
    let outcome = async {
        session::authenticate_change(state.config().token.as_deref(), &headers)?;
        let pipeline = state.pipeline()?;
        let admitted = state.admit()?;
        let multipart = multipart.map_err(|rejection| {
            AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "the body must be multipart/form-data with the image in a `file` field: \
                     {rejection}"
                ),
            )
        })?;
        let memory = upload::reserve_memory(&state, &headers).await?;
        let file =
            upload::read_file_field(multipart, state.config().max_upload_bytes, memory).await?;
        upload::store_upload(&state, pipeline, file, &request_id, admitted).await
    }
    .instrument(span.clone())
    .await;
    respond(StatusCode::ACCEPTED, outcome, &request_id, &span)
}

/// `POST /api/uploads`: a presigned PUT for the browser to send the file to S3 itself.
async fn presign_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PresignUploadRequest>, JsonRejection>,
) -> Response {
    let request_id = request_id(&headers, None);
    let span = tracing::info_span!("presign_upload", request_id = %request_id);
    let outcome = async {
        session::authenticate_change(state.config().token.as_deref(), &headers)?;
        let pipeline = state.pipeline()?;
        let Json(request) = body.map_err(|rejection| {
            AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "the body must be JSON like {{\"filename\": \"cat.jpg\", \
                     \"content_type\": \"image/jpeg\", \"size_bytes\": 1234}}: {rejection}"
                ),
            )
        })?;
        let _admitted = state.admit()?;
        upload::presign_upload(&state, pipeline, request, &request_id).await
    }
    .instrument(span.clone())
    .await;
    respond(StatusCode::CREATED, outcome, &request_id, &span)
}

/// Query of `GET /api/images`.
#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    limit: Option<i32>,
    cursor: Option<String>,
}

async fn list_images(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ImageListPage>, AppError> {
    session::authenticate(state.config().token.as_deref(), &headers)?;
    let Query(query) = query
        .map_err(|rejection| AppError::new(ErrorCode::InvalidRequest, rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::new(
            ErrorCode::InvalidRequest,
            format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let _admitted = state.admit_gallery()?;
    let (records, next_cursor) = state
        .store()
        .list_records(limit, query.cursor.as_deref())
        .await?;
    let items = records.into_iter().map(AppState::with_links).collect();
    Ok(Json(ImageListPage { items, next_cursor }))
}

/// Ids are UUIDs; anything much longer cannot be a row, and is not worth a request.
const MAX_IMAGE_ID_CHARS: usize = 128;

/// The row of `image_id`, or `not_found`.
async fn find_record(state: &AppState, image_id: &str) -> Result<ImageRecord, AppError> {
    let missing = || AppError::new(ErrorCode::NotFound, format!("no image {image_id}"));
    if image_id.len() > MAX_IMAGE_ID_CHARS {
        return Err(missing());
    }
    state
        .store()
        .get_record(image_id)
        .await?
        .ok_or_else(missing)
}

async fn get_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(image_id): Path<String>,
) -> Result<Json<ImageListItem>, AppError> {
    session::authenticate(state.config().token.as_deref(), &headers)?;
    let _admitted = state.admit_gallery()?;
    let record = find_record(&state, &image_id).await?;
    Ok(Json(AppState::with_links(record)))
}

/// `GET /api/images/{id}/objects/{name}`: that one object, streamed from S3 by the server. No
/// presigned URL reaches the browser: such a URL is a bearer capability for its lifetime, and
/// on the sandbox it would point a page served over HTTPS at the plain-HTTP edge, which
/// Chromium upgrades and so fails to load. The gallery's admission slot is held until the
/// body has been sent, so the per-request work stays bounded while it streams.
async fn object_download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((image_id, name)): Path<(String, String)>,
) -> Result<Response, AppError> {
    session::authenticate(state.config().token.as_deref(), &headers)?;
    let admitted = state.admit_gallery()?;
    let record = find_record(&state, &image_id).await?;
    let key = record
        .keys
        .get(&name)
        .filter(|_| linkable(&record, &name))
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                format!("image {image_id} has no object {name}"),
            )
        })?;
    let object = state
        .store()
        .open_object(record.bucket_of(&name), key)
        .await?;
    let content_type = object
        .content_type
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let chunks =
        futures::stream::unfold((object.body, admitted), |(mut body, admitted)| async move {
            let chunk = body.next().await?;
            Some((chunk, (body, admitted)))
        });
    let mut response = axum::body::Body::from_stream(chunks).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(length) = object.content_length {
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(OBJECT_CACHE_CONTROL),
    );
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// `GET /`: the gallery for a signed-in browser (or a bearer caller); the sign-in form, with
/// 401, for anyone else.
async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if session::authenticate(state.config().token.as_deref(), &headers).is_err() {
        return sign_in_page(StatusCode::UNAUTHORIZED, None);
    }
    let rendered = async {
        let _admitted = state.admit_gallery()?;
        let records = state.store().recent_records(INDEX_IMAGES).await?;
        let items: Vec<ImageListItem> = records.into_iter().map(AppState::with_links).collect();
        Ok::<_, AppError>(Html(page::render_index(&state.health(), &items)))
    }
    .await;
    match rendered {
        Ok(html) => (no_store(), html).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Pages that depend on who asks are never cached, by the browser or anything between.
fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

fn sign_in_page(status: StatusCode, message: Option<&str>) -> Response {
    (status, no_store(), Html(page::render_sign_in(message))).into_response()
}

/// The sign-in form's body: the token typed by hand, or a one-time code the gallery's page
/// took from its URL's fragment (see [`sign_in_code`]).
#[derive(Debug, serde::Deserialize)]
struct SignIn {
    token: Option<String>,
    code: Option<String>,
}

/// What the sign-in page says when a code is refused, whatever the reason (unknown, used,
/// expired): the same words for each, so they tell a guesser nothing.
const CODE_REFUSED: &str = "this sign-in link has expired or was already used (a link works \
                            once, within a minute); run `hybridlab gallery` again, or sign in \
                            with the stack's token";

/// `POST /sign-in`: the form posts the token once, or the gallery's page posts a one-time code;
/// a right one is answered with the session cookie and a redirect to the gallery, so neither
/// is in the URL or the history.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignIn>, FormRejection>,
) -> Response {
    // A sign-in posted from another site would sign the browser in to this server behind its
    // user's back; a form post from a browser always carries Origin, and a script may omit it.
    if headers.contains_key(header::ORIGIN) && !session::same_origin(&headers) {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            Some("the sign-in form must be sent from this server's own page"),
        );
    }
    let Ok(Form(form)) = form else {
        return sign_in_page(
            StatusCode::BAD_REQUEST,
            Some("send the form with the token in its `token` field"),
        );
    };
    let Some(expected) = state.config().token.as_deref() else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    };
    match (form.token, form.code) {
        (Some(token), None) => {
            if !session::token_matches(expected, token.trim()) {
                tracing::warn!("gallery sign-in with a wrong token");
                return sign_in_page(
                    StatusCode::UNAUTHORIZED,
                    Some("that is not this stack's token"),
                );
            }
        }
        (None, Some(code)) => {
            if let Err(refusal) = state.inner.sign_in_codes.redeem(&code) {
                // The reason, never the code: a log line must not carry a working credential.
                tracing::warn!(reason = %refusal, "gallery sign-in with a refused one-time code");
                return sign_in_page(StatusCode::UNAUTHORIZED, Some(CODE_REFUSED));
            }
            tracing::info!("gallery signed in with a one-time code");
        }
        _ => {
            return sign_in_page(
                StatusCode::BAD_REQUEST,
                Some(
                    "send the form with the token in its `token` field (or a sign-in code in `code`, not both)",
                ),
            );
        }
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::sign_in_cookie(expected, &headers),
    );
    response.headers_mut().extend(no_store());
    response
}

/// `POST /api/sign-in-codes`: a one-time code that signs a browser in (see [`sign_in_code`]).
/// Only a bearer caller may mint: the session cookie a signed-in browser sends by itself is
/// not enough, so a page cannot turn its session into codes for elsewhere.
async fn mint_sign_in_code(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(err) = authorize(state.token(), &headers) {
        return err.into_response();
    }
    let codes = &state.inner.sign_in_codes;
    match codes.mint() {
        Ok(code) => {
            let expires_in_seconds =
                u64::try_from(codes.ttl().as_millis().div_ceil(1000)).unwrap_or(u64::MAX);
            (
                StatusCode::CREATED,
                no_store(),
                Json(hybridlab_wire::sign_in::SignInCode {
                    code,
                    expires_in_seconds,
                }),
            )
                .into_response()
        }
        Err(err) => AppError::internal(err).into_response(),
    }
}

/// `POST /sign-out`: forgets the cookie in this browser (the token stays valid elsewhere).
async fn sign_out(headers: HeaderMap) -> Response {
    if !session::same_origin(&headers) {
        return AppError::new(
            ErrorCode::CrossOrigin,
            "signing out must be asked from the gallery's own page",
        )
        .into_response();
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::sign_out_cookie());
    response
}

/// For unit tests: a state of `config` whose S3 and DynamoDB clients point at a closed
/// loopback port, for handlers that answer before they would reach either.
#[cfg(test)]
pub(crate) fn state_without_aws(config: ServerConfig) -> AppState {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let nowhere = "http://127.0.0.1:1";
    let credentials = Credentials::new("test", "test", None, None, "test");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials.clone())
            .endpoint_url(nowhere)
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(nowhere)
            .build(),
    );
    AppState::new(config, s3, dynamodb).expect("a valid configuration")
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
    fn an_empty_expected_token_refuses_everyone() {
        assert!(authorize("", &HeaderMap::new()).is_err());
        assert!(authorize("", &headers(&[("authorization", "Bearer ")])).is_err());
    }

    #[test]
    fn a_configured_token_must_be_presented_exactly() {
        let token = "s3cret-s3cret-s3cret-s3cret-s3cret";
        let bearer = format!("Bearer {token}");
        assert!(authorize(token, &headers(&[("authorization", &bearer)])).is_ok());
        for wrong in [
            &bearer[..bearer.len() - 1],
            &format!("{bearer}2"),
            token,
            &format!("Basic {token}"),
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

#[cfg(test)]
mod sign_in_code_tests {
    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    const TOKEN: &str = "sign-in-code-test-token-0123456789abcdef";
    const HOST: &str = "127.0.0.1:8080";
    const ORIGIN: &str = "http://127.0.0.1:8080";

    /// A state whose S3 and DynamoDB clients point at a closed port: nothing here reaches them.
    fn state(ttl_ms: u64) -> AppState {
        let mut config = ServerConfig::new("images", "images-table");
        config.token = Some(TOKEN.to_owned());
        config.sign_in_code_ttl_ms = ttl_ms;
        state_without_aws(config)
    }

    async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = app(state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("a body").to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn mint_request(credential: Option<(&str, String)>) -> Request<Body> {
        let mut request = Request::post("/api/sign-in-codes").header(header::HOST, HOST);
        if let Some((name, value)) = credential {
            request = request.header(name, value);
        }
        request.body(Body::empty()).expect("a request")
    }

    async fn mint(state: &AppState) -> String {
        let (status, headers, body) = send(
            state,
            mint_request(Some(("authorization", format!("Bearer {TOKEN}")))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        answer["code"].as_str().expect("a code").to_owned()
    }

    fn redeem_request(body: String, origin: Option<&str>) -> Request<Body> {
        let mut request = Request::post("/sign-in")
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request.body(Body::from(body)).expect("a request")
    }

    #[tokio::test]
    async fn only_a_bearer_caller_mints_a_code() {
        let state = state(60_000);
        let cookie = format!(
            "{}={}",
            session::SESSION_COOKIE,
            session::session_value(TOKEN)
        );
        for credential in [
            None,
            Some(("cookie", cookie)),
            Some(("authorization", "Bearer wrong".to_owned())),
        ] {
            let (status, _, body) = send(&state, mint_request(credential.clone())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{credential:?}: {body}");
        }
        assert_eq!(state.inner.sign_in_codes.outstanding(), 0);
        let (status, _, body) = send(
            &state,
            mint_request(Some(("authorization", format!("Bearer {TOKEN}")))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["expires_in_seconds"], 60);
        assert_eq!(answer["code"].as_str().map(str::len), Some(43));
    }

    #[tokio::test]
    async fn a_code_signs_in_once_from_the_servers_own_origin() {
        let state = state(60_000);
        let code = mint(&state).await;
        // Another site's page cannot spend it, nor sign the browser in with it.
        let (status, headers, _) = send(
            &state,
            redeem_request(format!("code={code}"), Some("https://evil.example")),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(headers.get(header::SET_COOKIE).is_none());

        let (status, headers, _) =
            send(&state, redeem_request(format!("code={code}"), Some(ORIGIN))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let cookie = headers[header::SET_COOKIE].to_str().expect("ascii");
        assert_eq!(
            cookie,
            session::sign_in_cookie(TOKEN, &HeaderMap::new())
                .to_str()
                .expect("ascii"),
            "the very cookie a token sign-in gives"
        );

        let (status, headers, page) =
            send(&state, redeem_request(format!("code={code}"), Some(ORIGIN))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "used once");
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert!(page.contains("id=\"sign-in-form\""));
        assert!(page.contains("expired or was already used"), "{page}");
        assert!(!page.contains(&code));
    }

    #[tokio::test]
    async fn an_expired_code_or_a_form_with_both_fields_is_refused() {
        let state = state(1);
        let code = mint(&state).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, headers, page) =
            send(&state, redeem_request(format!("code={code}"), Some(ORIGIN))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert!(page.contains("expired or was already used"), "{page}");

        let state = self::state(60_000);
        let code = mint(&state).await;
        let (status, _, _) = send(
            &state,
            redeem_request(format!("token={TOKEN}&code={code}"), Some(ORIGIN)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // The token typed by hand still signs in.
        let (status, headers, _) = send(
            &state,
            redeem_request(format!("token={TOKEN}"), Some(ORIGIN)),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(headers.get(header::SET_COOKIE).is_some());
    }
}
