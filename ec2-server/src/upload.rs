//! Uploads into the event-driven pipeline: `POST /upload` takes the file itself, `POST
//! /api/uploads` hands out a presigned PUT so the browser sends it to S3 directly. Either way
//! the `PENDING` row is written first and the original then lands in the uploads bucket with
//! metadata `image-id`, which is how the pipeline's resizer finds the row. The server does not
//! judge the bytes (the resizer does); it enforces the size cap and refuses empty files.
//!
//! The file of a `POST /upload` is held in memory reserved from the download budget
//! (`budget.rs`), its declared length up front or a chunk at a time, until its S3 put is done.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use hybridlab_wire::{
    ErrorCode, ImageRecord, ImageStatus, ORIGINAL, PresignUploadRequest, PresignUploadResponse,
    StatusChange, UploadResponse,
};

use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;

use crate::AppState;
use crate::budget::DownloadMemory;
use crate::config::PipelineBuckets;
use crate::error::AppError;
use crate::process::new_image_id;
use crate::storage::StorageError;
use hybridlab_wire::keys::upload_key;
use hybridlab_wire::now_rfc3339;

/// The multipart field that carries the file.
pub const FILE_FIELD: &str = "file";

/// Longest original filename kept in the row, in characters (common file systems' limit).
pub const MAX_FILENAME_CHARS: usize = 255;

/// Longest name part of an object key's file name, before its extension.
const MAX_SAFE_STEM: usize = 80;

/// Longest extension kept in an object key's file name.
const MAX_EXTENSION: usize = 10;

/// The Content-Type of uploads that do not say, or say something unusable.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A file name that is safe as the last part of an S3 key and still recognisable: only ASCII
/// letters, digits, `-`, `_` and one `.` before a short extension, at most 80 + 11 characters,
/// never a `/` or `..`. Anything else becomes `_`; a name with nothing left becomes `original`
/// with the extension.
pub fn safe_filename(name: &str) -> String {
    // Browsers and curl send a bare name, but some clients send a whole path.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, extension) = match base.rsplit_once('.') {
        Some((stem, extension))
            if (1..=MAX_EXTENSION).contains(&extension.len())
                && extension.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (stem, Some(extension.to_ascii_lowercase()))
        }
        _ => (base, None),
    };
    let mut safe = String::with_capacity(stem.len().min(MAX_SAFE_STEM));
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        // Runs of replaced characters read as one gap.
        if !(c == '_' && safe.ends_with('_')) {
            safe.push(c);
        }
    }
    let mut safe = safe.trim_matches(['_', '-']).to_owned();
    safe.truncate(MAX_SAFE_STEM);
    let safe = safe.trim_end_matches(['_', '-']);
    let stem = if safe.is_empty() { ORIGINAL } else { safe };
    match extension {
        Some(extension) => format!("{stem}.{extension}"),
        None => stem.to_owned(),
    }
}

/// The original filename as the row keeps it: as given, without control characters, at most
/// [`MAX_FILENAME_CHARS`] characters.
pub fn bounded_filename(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect()
}

/// Where a row can be followed.
pub fn status_url(image_id: &str) -> String {
    format!("/api/images/{image_id}")
}

/// `value` if it is a plain MIME type (`type/subtype`, optional parameters, printable ASCII),
/// which is what S3 stores and a signed header can carry.
pub fn valid_content_type(value: &str) -> Option<&str> {
    let value = value.trim();
    let essence = value.split(';').next().unwrap_or("").trim();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    let printable = value.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    (value.len() <= 127 && printable && token(kind) && token(subtype)).then_some(value)
}

/// The row an upload starts with.
fn pending_record(
    image_id: &str,
    pipeline: &PipelineBuckets,
    key: &str,
    filename: &str,
    size_bytes: Option<u64>,
    request_id: &str,
) -> ImageRecord {
    let now = now_rfc3339();
    ImageRecord {
        image_id: image_id.to_owned(),
        status: ImageStatus::Pending,
        source_url: None,
        bucket: pipeline.processed.clone(),
        keys: [(ORIGINAL.to_owned(), key.to_owned())].into(),
        size_bytes,
        width: None,
        height: None,
        format: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        timings_ms: None,
        error: None,
        request_id: Some(request_id.to_owned()),
        original_bucket: Some(pipeline.uploads.clone()),
        original_filename: Some(bounded_filename(filename)),
        uploaded_at: Some(now.clone()),
        history: vec![StatusChange {
            status: ImageStatus::Pending,
            at: now,
        }],
    }
}

fn too_large(cap: u64) -> AppError {
    AppError::new(
        ErrorCode::TooLarge,
        format!("the file is larger than the upload limit of {cap} bytes"),
    )
}

fn multipart_error(err: MultipartError) -> AppError {
    let code = if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::TooLarge
    } else {
        ErrorCode::InvalidRequest
    };
    AppError::new(
        code,
        format!("the multipart body could not be read: {}", err.body_text()),
    )
}

/// What a `POST /upload` reserves before its body is read, from the request's declared
/// length: the file is at most that and at most `cap` (the multipart framing around it is not
/// kept), and a body of unknown length reserves as it grows. A declared length the route could
/// never accept (`cap` and the framing allowance) is refused at once, with nothing read.
pub(crate) fn declared_reservation(declared: Option<u64>, cap: u64) -> Result<u64, AppError> {
    let body_limit = cap.saturating_add(crate::MULTIPART_OVERHEAD_BYTES as u64);
    match declared {
        Some(length) if length > body_limit => Err(too_large(cap)),
        Some(length) => Ok(length.min(cap)),
        None => Ok(0),
    }
}

/// The memory a `POST /upload` starts with, reserved from the download budget before its body
/// is read: its declared length (see [`declared_reservation`]), waited for at most
/// `--decode-wait-ms`, else `overloaded`.
pub(crate) async fn reserve_memory(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<DownloadMemory, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let up_front = declared_reservation(declared, state.config().max_upload_bytes)?;
    let mut memory = state.input_memory().reserve();
    memory.grow_to(up_front).await?;
    Ok(memory)
}

/// The file of a `POST /upload`, read into memory. Its bytes own their reservation.
#[derive(Debug)]
pub(crate) struct ReceivedFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: Bytes,
}

/// Reads the one `file` field, counting bytes as they arrive: a body that lies about its
/// length, or has none, is cut off at `cap` all the same. Other fields are skipped. The file's
/// bytes live in `memory` (grown as they arrive, beyond what was reserved up front), and keep
/// it until they are dropped; an upload that cannot get its memory in time is `overloaded`.
pub(crate) async fn read_file_field(
    mut multipart: Multipart,
    cap: u64,
    mut memory: DownloadMemory,
) -> Result<ReceivedFile, AppError> {
    let mut received = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some(FILE_FIELD) {
            continue;
        }
        if received.is_some() {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "send one `file` field per upload",
            ));
        }
        let Some(filename) = field.file_name().map(str::to_owned) else {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "the `file` field must be a file, with a filename",
            ));
        };
        let content_type = field
            .content_type()
            .and_then(valid_content_type)
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_owned();
        // The buffer's capacity is what the reservation covers.
        let mut bytes: Vec<u8> =
            Vec::with_capacity(usize::try_from(memory.bytes().min(cap)).unwrap_or(0));
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if (bytes.len() + chunk.len()) as u64 > cap {
                return Err(too_large(cap));
            }
            memory.make_room(&mut bytes, chunk.len(), cap).await?;
            bytes.extend_from_slice(&chunk);
        }
        received = Some((filename, content_type, bytes));
    }
    let Some((filename, content_type, bytes)) = received else {
        return Err(AppError::new(
            ErrorCode::InvalidRequest,
            "the body must be multipart/form-data with a `file` field holding the image",
        ));
    };
    if bytes.is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidRequest,
            "the file is empty",
        ));
    }
    Ok(ReceivedFile {
        filename,
        content_type,
        bytes: memory.hold(bytes),
    })
}

/// Writes the `PENDING` row, then the original. If the original cannot be stored the row is
/// marked `FAILED` with the reason, so no row waits for an object that will never come. The
/// writes run in their own task, so a client that disconnects cannot stop them between the row
/// and the object (the sweep would fail such a row, but only after its timeout).
pub(crate) async fn store_upload(
    state: &AppState,
    pipeline: &PipelineBuckets,
    file: ReceivedFile,
    request_id: &str,
    admitted: OwnedSemaphorePermit,
) -> Result<UploadResponse, AppError> {
    let (state, pipeline, request_id) = (state.clone(), pipeline.clone(), request_id.to_owned());
    let task = tokio::spawn(
        async move {
            // The admission slot is held until the writes are done, hang-up or not.
            let _admitted = admitted;
            write_upload(state, pipeline, file, request_id).await
        }
        .in_current_span(),
    );
    task.await.map_err(AppError::internal)?
}

async fn write_upload(
    state: AppState,
    pipeline: PipelineBuckets,
    file: ReceivedFile,
    request_id: String,
) -> Result<UploadResponse, AppError> {
    let (state, pipeline, request_id) = (&state, &pipeline, request_id.as_str());
    let image_id = new_image_id();
    let key = upload_key(&image_id, &safe_filename(&file.filename));
    let size_bytes = file.bytes.len() as u64;
    let record = pending_record(
        &image_id,
        pipeline,
        &key,
        &file.filename,
        Some(size_bytes),
        request_id,
    );
    state.store().create_record(&record).await?;
    let stored = state
        .store()
        .put_upload(
            &pipeline.uploads,
            &key,
            file.bytes,
            &file.content_type,
            &image_id,
        )
        .await;
    if let Err(err) = stored {
        return Err(record_upload_failure(state, pipeline, &image_id, &key, err).await);
    }
    tracing::info!(image_id = %image_id, key = %key, size_bytes, "upload stored");
    Ok(UploadResponse {
        status_url: status_url(&image_id),
        image_id,
        status: ImageStatus::Pending,
        bucket: pipeline.uploads.clone(),
        key,
        size_bytes,
    })
}

/// Marks the row of an upload whose original could not be stored `FAILED`, and builds the
/// answer. The object is deleted too: a timed-out PUT may still have landed.
async fn record_upload_failure(
    state: &AppState,
    pipeline: &PipelineBuckets,
    image_id: &str,
    key: &str,
    err: StorageError,
) -> AppError {
    tracing::error!(image_id = %image_id, error = %err, "storing the upload failed");
    state
        .store()
        .delete_objects(&pipeline.uploads, &[key.to_owned()])
        .await;
    let reason = format!("storage failed: {err}");
    if let Err(row_err) = state
        .store()
        .mark_upload_failed(image_id, &reason, &now_rfc3339())
        .await
    {
        tracing::error!(
            image_id = %image_id,
            error = %row_err,
            "the row could not be marked FAILED"
        );
    }
    AppError::new(
        ErrorCode::StorageFailed,
        format!("upload {image_id} could not be stored; its row is marked FAILED"),
    )
}

/// Checks the declared upload, writes its `PENDING` row and presigns the PUT. The row stays
/// `PENDING` until the object arrives and the resizer takes it.
pub(crate) async fn presign_upload(
    state: &AppState,
    pipeline: &PipelineBuckets,
    request: PresignUploadRequest,
    request_id: &str,
) -> Result<PresignUploadResponse, AppError> {
    if request.filename.trim().is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidRequest,
            "`filename` must name the file to upload",
        ));
    }
    let content_type = match request.content_type.as_deref() {
        None => DEFAULT_CONTENT_TYPE,
        Some(given) => valid_content_type(given).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidRequest,
                "`content_type` must be a MIME type like `image/jpeg`",
            )
        })?,
    };
    let cap = state.config().max_upload_bytes;
    // The size is signed into the URL as its Content-Length, so it must be known up front.
    let size_bytes = match request.size_bytes {
        None => {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "`size_bytes` must give the file's size: the upload URL is signed for exactly \
                 that many bytes",
            ));
        }
        Some(0) => {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "the file is empty",
            ));
        }
        Some(size) if size > cap => return Err(too_large(cap)),
        Some(size) => size,
    };

    let image_id = new_image_id();
    let key = upload_key(&image_id, &safe_filename(&request.filename));
    let expires = state.presign_expiry();
    // Presigning is a local computation; done before the row so a failure leaves nothing.
    let presigned = state
        .store()
        .presign_upload(
            &pipeline.uploads,
            &key,
            content_type,
            size_bytes,
            &image_id,
            expires,
        )
        .await?;
    let record = pending_record(
        &image_id,
        pipeline,
        &key,
        &request.filename,
        Some(size_bytes),
        request_id,
    );
    state.store().create_record(&record).await?;
    tracing::info!(image_id = %image_id, key = %key, "upload presigned");
    Ok(PresignUploadResponse {
        status_url: status_url(&image_id),
        image_id,
        upload_url: presigned.url,
        method: "PUT".into(),
        headers: presigned.headers,
        key,
        bucket: pipeline.uploads.clone(),
        expires_in_s: expires.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_kept() {
        assert_eq!(safe_filename("cat.jpg"), "cat.jpg");
        assert_eq!(safe_filename("My-Photo_2.PNG"), "My-Photo_2.png");
    }

    #[test]
    fn paths_and_dot_dots_are_cut_away() {
        assert_eq!(safe_filename("../../x"), "x");
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("..\\..\\windows\\cat.gif"), "cat.gif");
        assert_eq!(safe_filename(".."), ORIGINAL);
        assert_eq!(safe_filename("../.."), ORIGINAL);
        assert_eq!(safe_filename("a..b.jpg"), "a_b.jpg");
        assert_eq!(safe_filename("dir/"), ORIGINAL);
        for name in ["../../x", "..", "a/../b.png", "....jpg", "x/..\\.."] {
            let safe = safe_filename(name);
            assert!(
                !safe.contains('/') && !safe.contains(".."),
                "{name} -> {safe}"
            );
        }
    }

    #[test]
    fn unsafe_characters_become_one_underscore() {
        assert_eq!(
            safe_filename("holiday photo (1).jpeg"),
            "holiday_photo_1.jpeg"
        );
        assert_eq!(safe_filename("café au lait.png"), "caf_au_lait.png");
        assert_eq!(safe_filename("a%2Fb?c=d.jpg"), "a_2Fb_c_d.jpg");
        assert_eq!(safe_filename("<script>.webp"), "script.webp");
    }

    #[test]
    fn a_name_with_nothing_safe_left_falls_back_to_original() {
        assert_eq!(safe_filename("фото.JPG"), "original.jpg");
        assert_eq!(safe_filename("写真"), "original");
        assert_eq!(safe_filename(""), "original");
        assert_eq!(safe_filename(".jpg"), "original.jpg");
        assert_eq!(safe_filename("🐈.gif"), "original.gif");
    }

    #[test]
    fn an_odd_extension_is_part_of_the_name() {
        assert_eq!(safe_filename("notes.tar gz"), "notes_tar_gz");
        assert_eq!(safe_filename("x.verylongextension"), "x_verylongextension");
    }

    #[test]
    fn very_long_names_are_bounded_and_keep_their_extension() {
        let long = format!("{}.jpg", "a".repeat(5_000));
        let safe = safe_filename(&long);
        assert_eq!(safe, format!("{}.jpg", "a".repeat(MAX_SAFE_STEM)));
        let unicode = "é".repeat(10_000);
        assert_eq!(safe_filename(&unicode), ORIGINAL);
        let mixed = format!("{}{}", "b".repeat(MAX_SAFE_STEM - 1), "_______c");
        assert_eq!(safe_filename(&mixed), "b".repeat(MAX_SAFE_STEM - 1));
    }

    #[test]
    fn the_original_filename_is_kept_as_given_but_bounded() {
        assert_eq!(bounded_filename("../../x y.jpg"), "../../x y.jpg");
        assert_eq!(bounded_filename("фото.jpg"), "фото.jpg");
        assert_eq!(bounded_filename("a\nb\u{0}c"), "abc");
        let long = "ж".repeat(1_000);
        assert_eq!(bounded_filename(&long).chars().count(), MAX_FILENAME_CHARS);
    }

    #[test]
    fn keys_live_under_the_uploads_prefix() {
        assert_eq!(upload_key("id1", "cat.jpg"), "uploads/id1/cat.jpg");
        assert_eq!(status_url("id1"), "/api/images/id1");
    }

    #[test]
    fn only_plain_mime_types_pass() {
        assert_eq!(valid_content_type("image/jpeg"), Some("image/jpeg"));
        assert_eq!(
            valid_content_type("image/svg+xml; charset=utf-8"),
            Some("image/svg+xml; charset=utf-8")
        );
        for bad in [
            "",
            "jpeg",
            "image/",
            "/jpeg",
            "image/jpeg\r\nx: y",
            "imäge/jpeg",
        ] {
            assert_eq!(valid_content_type(bad), None, "{bad:?}");
        }
        assert_eq!(
            valid_content_type(&format!("image/{}", "x".repeat(200))),
            None
        );
    }

    #[test]
    fn an_upload_reserves_its_declared_length_up_to_the_cap_and_refuses_one_beyond_the_body_limit()
    {
        let cap = 1000;
        let reserved = |declared| declared_reservation(declared, cap).ok();
        assert_eq!(reserved(None), Some(0), "unknown: reserved as it grows");
        assert_eq!(reserved(Some(600)), Some(600));
        // The framing around a file of the largest size is not kept.
        let body_limit = cap + crate::MULTIPART_OVERHEAD_BYTES as u64;
        assert_eq!(reserved(Some(cap + 300)), Some(cap));
        assert_eq!(reserved(Some(body_limit)), Some(cap));
        for never in [body_limit + 1, u64::MAX] {
            let err = declared_reservation(Some(never), cap).expect_err("never accepted");
            assert_eq!(err.code, ErrorCode::TooLarge, "{never}");
        }
    }

    const MIB: u64 = 1024 * 1024;
    const TOKEN: &str = "upload-test-token-0123456789abcdef";
    const BOUNDARY: &str = "upload-test-boundary";

    /// An in-process server on loopback with the pipeline, a 3 MiB download budget (which
    /// uploads share), uploads of at most 2 MiB and a 300 ms wait for memory. Its S3 and
    /// DynamoDB clients point at a closed loopback port: the uploads here never get that far.
    async fn upload_server() -> (
        std::net::SocketAddr,
        AppState,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let mut config = crate::ServerConfig::new("images", "images-table");
        config.token = Some(TOKEN.to_owned());
        config.uploads_bucket = Some("uploads".into());
        config.processed_bucket = Some("processed".into());
        config.max_download_bytes = MIB;
        config.max_upload_bytes = 2 * MIB;
        config.download_memory_mib = Some(3);
        config.decode_wait_ms = 300;
        let state = crate::state_without_aws(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let limits = state.config().connection_limits(None);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::connections::serve(
            listener,
            crate::app(state.clone()),
            limits,
            None,
            async {
                let _ = stopped.await;
            },
        ));
        (address, state, stop)
    }

    /// The multipart framing before the file.
    fn file_part_head() -> String {
        format!(
            "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; \
             filename=\"photo.jpg\"\r\ncontent-type: image/jpeg\r\n\r\n"
        )
    }

    /// A `POST /upload` declaring a body of `body_bytes` when `sized` (else chunked): its head
    /// and the first `sent` bytes of its file go out, then it stalls, holding the connection
    /// (and whatever the server reserved for it).
    async fn stalled_upload(
        address: std::net::SocketAddr,
        body_bytes: usize,
        sent: usize,
        sized: bool,
    ) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt as _;
        let length = if sized {
            format!("content-length: {body_bytes}")
        } else {
            "transfer-encoding: chunked".to_owned()
        };
        let head = format!(
            "POST /upload HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: multipart/form-data; boundary={BOUNDARY}\r\n{length}\r\n\r\n"
        );
        let mut part = file_part_head().into_bytes();
        part.resize(part.len() + sent, 0xAB);
        let mut request = head.into_bytes();
        if sized {
            request.extend_from_slice(&part);
        } else {
            request.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            request.extend_from_slice(&part);
            request.extend_from_slice(b"\r\n");
        }
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connected");
        stream.write_all(&request).await.expect("sent");
        stream
    }

    /// What the server answered on `stream`: its status and JSON body. A refusal may come
    /// before the body was read; the connection is then reset after the answer, which is
    /// read all the same.
    async fn answer(mut stream: tokio::net::TcpStream) -> (u16, Option<u64>, serde_json::Value) {
        use tokio::io::AsyncReadExt as _;
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received).await;
        let text = String::from_utf8_lossy(&received);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let retry_after = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("retry-after:")
                    .map(str::to_owned)
            })
            .and_then(|value| value.trim().parse().ok());
        let body = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        (status, retry_after, body)
    }

    /// Waits, at most 30 s (a bound for a broken server, not a speed), until `done`.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn assert_overloaded((status, retry_after, body): &(u16, Option<u64>, serde_json::Value)) {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"], "overloaded", "{body}");
        assert_eq!(*retry_after, Some(1), "{body}");
    }

    /// Many large uploads at once: those the download budget holds stay held while their
    /// bodies are in memory (here stalled mid-body, before any S3 call); the others wait for a
    /// bounded time, then are refused as a busy server. A body of unknown length reserves a
    /// chunk at a time, and a declared length no upload could have is refused at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_large_uploads_at_once_hold_no_more_than_the_download_budget() {
        const CONCURRENT: usize = 8;
        let (address, state, _stop) = upload_server().await;
        let budget = state.input_memory().clone();

        // Room for three of the eight 1 MiB bodies, each stalled 64 KiB into its file.
        let one_mib = MIB as usize;
        let clients: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                tokio::spawn(async move {
                    answer(stalled_upload(address, one_mib, 64 * 1024, true).await).await
                })
            })
            .collect();
        let finished = || clients.iter().filter(|client| client.is_finished()).count();
        eventually("five uploads are refused", || finished() >= CONCURRENT - 3).await;
        // The three held are not merely slow: they are still held after many waits.
        tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
        assert_eq!(finished(), CONCURRENT - 3, "three held, five refused");
        assert_eq!(budget.held_bytes(), 3 * MIB);
        let mut held = Vec::new();
        for client in clients {
            if client.is_finished() {
                assert_overloaded(&client.await.expect("joined"));
            } else {
                held.push(client);
            }
        }
        // A client that goes away gives its memory back.
        for client in &held {
            client.abort();
        }
        eventually("the held memory is given back", || budget.held_bytes() == 0).await;

        // A body of unknown length reserves 1 MiB at a time: 1.5 MiB of file holds 2 MiB.
        let _unsized = stalled_upload(address, 0, 3 * MIB as usize / 2, false).await;
        eventually("the unsized body holds 2 MiB", || {
            budget.held_bytes() == 2 * MIB
        })
        .await;
        let _sized = stalled_upload(address, one_mib, 0, true).await;
        eventually("one more fits", || budget.held_bytes() == 3 * MIB).await;
        assert_overloaded(&answer(stalled_upload(address, one_mib, 0, true).await).await);
        // A declared length beyond the cap and its framing is refused at once, full or not.
        let beyond = 2 * MIB as usize + crate::MULTIPART_OVERHEAD_BYTES + 1;
        let (status, _, body) = answer(stalled_upload(address, beyond, 0, true).await).await;
        assert_eq!(
            (status, &body["error"]),
            (413, &"too_large".into()),
            "{body}"
        );
        assert_eq!(budget.held_bytes(), 3 * MIB);
    }
}
