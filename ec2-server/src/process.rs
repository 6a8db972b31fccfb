//! `POST /process-image` from start to end: download, decode and resize on a blocking thread
//! under the decode budget, upload the original and the variants, write the row. Each stage is
//! timed. If storing fails
//! part-way, what was uploaded is removed and a `FAILED` row says why, so the bucket never
//! holds objects without a row. Storing runs in its own task, so a client that disconnects
//! (hyper then drops the handler) cannot stop it half-way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument as _;

use bytes::Bytes;
use hybridlab_imaging::{DecodeLimits, LAB_VARIANTS, ProcessedImage, decode_cost, make_variants};
use hybridlab_wire::keys::variant_key;
use hybridlab_wire::{
    ErrorCode, ImageRecord, ImageStatus, ORIGINAL, ProcessImageRequest, ProcessImageResponse,
    StageTimings, now_rfc3339,
};
use tokio::sync::OwnedSemaphorePermit;

use crate::AppState;
use crate::download::parse_image_url;
use crate::error::AppError;
use crate::storage::NewObject;

/// Milliseconds, with microsecond precision.
fn ms(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

/// A new image id: a UUIDv7, so ids sort by creation time. Every path that makes a row uses it.
pub fn new_image_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) async fn process_image(
    state: &AppState,
    request: ProcessImageRequest,
    request_id: &str,
    admitted: OwnedSemaphorePermit,
) -> Result<ProcessImageResponse, AppError> {
    // Shared with the decode, so the request counts as in flight until both it and its
    // decode have ended.
    let admitted = Arc::new(admitted);
    let started = Instant::now();
    let url = parse_image_url(&request.image_url)?;

    let download_started = Instant::now();
    let original = state.downloader().fetch(&url).await?;
    let download = download_started.elapsed();
    tracing::info!(
        bytes = original.len(),
        download_ms = ms(download),
        "downloaded"
    );

    let processed = decode(state, original.clone(), admitted.clone()).await?;

    let image_id = new_image_id();
    let mut keys = BTreeMap::new();
    let mut objects = Vec::with_capacity(processed.variants.len() + 1);
    let original_key = variant_key(&image_id, ORIGINAL, processed.format.extension());
    keys.insert(ORIGINAL.to_owned(), original_key.clone());
    objects.push(NewObject {
        key: original_key,
        body: original.clone(),
        content_type: processed.format.mime_type(),
    });
    for variant in processed.variants {
        let key = variant_key(&image_id, variant.name, "jpg");
        keys.insert(variant.name.to_owned(), key.clone());
        objects.push(NewObject {
            key,
            body: Bytes::from(variant.jpeg),
            content_type: "image/jpeg",
        });
    }

    let timings = StageTimings {
        download: ms(download),
        decode: ms(processed.timings.decode),
        resize: ms(processed.timings.resize),
        encode: ms(processed.timings.encode),
        ..StageTimings::default()
    };
    let created_at = now_rfc3339();
    let record = ImageRecord {
        image_id: image_id.clone(),
        status: ImageStatus::Completed,
        source_url: Some(url.to_string()),
        bucket: state.store().bucket().to_owned(),
        keys,
        size_bytes: Some(original.len() as u64),
        width: Some(processed.width),
        height: Some(processed.height),
        format: Some(processed.format.name().to_owned()),
        created_at: created_at.clone(),
        updated_at: created_at,
        timings_ms: None,
        error: None,
        request_id: Some(request_id.to_owned()),
        original_bucket: None,
        original_filename: None,
        uploaded_at: None,
        history: Vec::new(),
    };

    // From here on objects get written. Until now a client that hung up left nothing behind;
    // from here it would leave objects without their row if this future were dropped, so the
    // writes (and their undo) run in a task of their own that the handler only awaits. The task
    // holds the request's admission slot, so `/health` counts it in flight until it is done.
    let task = tokio::spawn(
        store_and_record(
            state.clone(),
            StoreJob {
                record,
                objects,
                timings,
                started,
                width: processed.width,
                height: processed.height,
                format: processed.format.name().to_owned(),
                request_id: request_id.to_owned(),
            },
            admitted,
        )
        .in_current_span(),
    );
    task.await.map_err(AppError::internal)?
}

/// What is left to do once the variants exist.
struct StoreJob {
    record: ImageRecord,
    objects: Vec<NewObject>,
    timings: StageTimings,
    started: Instant,
    width: u32,
    height: u32,
    format: String,
    request_id: String,
}

/// Uploads the objects, then writes the `COMPLETED` row; on failure removes what was uploaded
/// and writes a `FAILED` row. Either the row and all its objects exist afterwards, or no object.
async fn store_and_record(
    state: AppState,
    job: StoreJob,
    _admitted: Arc<OwnedSemaphorePermit>,
) -> Result<ProcessImageResponse, AppError> {
    let StoreJob {
        mut record,
        objects,
        mut timings,
        started,
        width,
        height,
        format,
        request_id,
    } = job;
    let state = &state;
    let image_id = record.image_id.clone();
    let keys = record.keys.clone();
    let size_bytes = record.size_bytes.unwrap_or_default();
    let s3_started = Instant::now();
    if let Err(err) = state.store().put_objects(&image_id, objects).await {
        timings.s3 = ms(s3_started.elapsed());
        return Err(record_failure(state, record, timings, started, err).await);
    }
    timings.s3 = ms(s3_started.elapsed());

    let dynamodb_started = Instant::now();
    // The total is fixed before the row is written so the row and the answer agree; the write
    // itself is timed separately and only reported in the answer.
    timings.total = ms(started.elapsed());
    record.timings_ms = Some(timings);
    if let Err(err) = state.store().put_record(&record).await {
        let uploaded: Vec<String> = keys.values().cloned().collect();
        state
            .store()
            .delete_objects(state.store().bucket(), &uploaded)
            .await;
        timings.dynamodb = ms(dynamodb_started.elapsed());
        return Err(record_failure(state, record, timings, started, err).await);
    }
    timings.dynamodb = ms(dynamodb_started.elapsed());
    timings.total = ms(started.elapsed());

    tracing::info!(
        image_id = %image_id,
        width,
        height,
        total_ms = timings.total,
        "processed"
    );
    Ok(ProcessImageResponse {
        image_id,
        request_id,
        bucket: record.bucket,
        keys,
        size_bytes,
        width,
        height,
        format,
        timings_ms: timings,
    })
}

/// Decodes and resizes on a blocking thread under the decode budget.
///
/// The header and structure are read first (on a blocking thread too: the walk reads the whole
/// file), which refuses what the limits forbid and says how much memory the decode needs. Then
/// a worker and that memory are reserved, waiting here, not in the runtime's blocking pool, so
/// at most `workers` images and the memory budget are in use however many requests are
/// admitted. The reservation and the request's admission move into the blocking closure:
/// decoders cannot be interrupted, so they are given back when the decode ends, not when the
/// client goes away (hyper then drops this future) or the time budget is spent. The time
/// budget answers the client; the work itself stays bounded by the pixel, scan and memory
/// limits.
async fn decode(
    state: &AppState,
    bytes: Bytes,
    admitted: Arc<OwnedSemaphorePermit>,
) -> Result<ProcessedImage, AppError> {
    let limits = DecodeLimits {
        max_pixels: state.config().max_pixels,
        max_scans: state.config().max_jpeg_scans,
        max_bytes: state.decode_memory_bytes(),
    };
    let cost = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || decode_cost(&bytes, &LAB_VARIANTS, limits))
            .await
            .map_err(AppError::internal)??
    };
    let slot = state.acquire_worker(&cost).await?;
    let span = tracing::Span::current();
    let started = Instant::now();
    let decoding = tokio::task::spawn_blocking(move || {
        let _held = (slot, admitted);
        let _entered = span.enter();
        let outcome = make_variants(&bytes, &LAB_VARIANTS, limits);
        tracing::info!(
            decode_ms = ms(started.elapsed()),
            peak_estimate_mib = cost.peak_bytes.div_ceil(1024 * 1024),
            ok = outcome.is_ok(),
            "decode ended"
        );
        outcome
    });
    let budget = state.config().decode_timeout();
    match tokio::time::timeout(budget, decoding).await {
        Ok(joined) => Ok(joined.map_err(AppError::internal)??),
        Err(_) => {
            tracing::warn!(
                decoding = state.decoding(),
                "the decode outlived its time budget; it finishes in the background"
            );
            Err(AppError::new(
                ErrorCode::DecodeTimeout,
                format!(
                    "the {}x{} {} image took longer than the server's decode budget of {} ms; \
                     nothing was stored",
                    cost.width,
                    cost.height,
                    cost.format,
                    budget.as_millis()
                ),
            ))
        }
    }
}

/// Writes the `FAILED` row for an image whose objects could not all be stored (they have been
/// removed already), and builds the answer. If even that row cannot be written, the log is
/// the only record left, and says so.
async fn record_failure(
    state: &AppState,
    mut record: ImageRecord,
    mut timings: StageTimings,
    started: Instant,
    err: crate::storage::StorageError,
) -> AppError {
    tracing::error!(image_id = %record.image_id, error = %err, "storing the image failed");
    timings.total = ms(started.elapsed());
    record.status = ImageStatus::Failed;
    record.keys = BTreeMap::new();
    record.error = Some(format!("storage failed: {err}"));
    record.timings_ms = Some(timings);
    record.updated_at = now_rfc3339();
    if let Err(row_err) = state.store().put_record(&record).await {
        tracing::error!(
            image_id = %record.image_id,
            error = %row_err,
            "the FAILED row could not be written either"
        );
    }
    AppError::new(
        ErrorCode::StorageFailed,
        format!(
            "image {} could not be stored; nothing of it was kept",
            record.image_id
        ),
    )
}
