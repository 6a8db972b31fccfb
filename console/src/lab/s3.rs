//! The stack's buckets as data: which bucket a choice means, listings, an object's detail,
//! its versions, a presigned URL, a preview decoded from an image, and the reads the console's
//! S3 view asks for ([`serve`]). Every S3 call of the console is here or in `hybridlab s3`'s
//! downloads; what comes back is plain types, never the SDK's.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use hybridlab_provision::stack::{StackClients, StackNames};
use serde::Serialize;

use super::Lab;
use super::units::human_bytes;
use super::upload::{Accepted, LocalFile, UploadPath, Uploader};

/// SigV4 presigned URLs are valid for at most seven days.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The stack's buckets; no other bucket can be named, so the command cannot wander off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketChoice {
    /// The images and their variants (versioned).
    Images,
    /// The server binary and its environment file.
    Artifacts,
    /// The pipeline's uploads (`up --with pipeline`).
    Uploads,
    /// The variants the pipeline's resizer made.
    Processed,
}

impl BucketChoice {
    /// The bucket's name in the stack `names` belong to.
    pub fn name(self, names: &StackNames) -> &str {
        match self {
            Self::Images => &names.images_bucket,
            Self::Artifacts => &names.artifacts_bucket,
            Self::Uploads => &names.uploads_bucket,
            Self::Processed => &names.processed_bucket,
        }
    }

    /// The short name people use for it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Images => "images",
            Self::Artifacts => "artifacts",
            Self::Uploads => "uploads",
            Self::Processed => "processed",
        }
    }

    /// The next of the stack's buckets, in the order above, round again after the last.
    pub fn next(self) -> Self {
        match self {
            Self::Images => Self::Artifacts,
            Self::Artifacts => Self::Uploads,
            Self::Uploads => Self::Processed,
            Self::Processed => Self::Images,
        }
    }

    /// Which of its stack's buckets `bucket` is (a row's `bucket` attribute, say).
    pub fn of_bucket(bucket: &str) -> Option<Self> {
        let names = StackNames::new(&StackNames::stack_of(bucket)?);
        [
            Self::Images,
            Self::Artifacts,
            Self::Uploads,
            Self::Processed,
        ]
        .into_iter()
        .find(|choice| choice.name(&names) == bucket)
    }
}

/// What a "missing key" S3 error code means here: the object (or the version) is not there.
pub fn is_missing_object(code: Option<&str>) -> bool {
    matches!(code, Some("NoSuchKey" | "NoSuchVersion"))
}

/// RFC 3339, or empty when S3 sent no time.
pub fn timestamp(time: Option<&DateTime>) -> String {
    time.and_then(|time| time.fmt(DateTimeFormat::DateTime).ok())
        .unwrap_or_default()
}

pub fn the_bucket(bucket: &str) -> String {
    format!("the bucket {bucket}")
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedObject {
    pub key: String,
    pub size: i64,
    pub last_modified: String,
    pub etag: String,
    pub storage_class: String,
}

impl ListedObject {
    /// An object as ListObjectsV2 describes it.
    pub fn from_listing(object: &aws_sdk_s3::types::Object) -> Self {
        Self {
            key: object.key().unwrap_or_default().to_owned(),
            size: object.size().unwrap_or(0),
            last_modified: timestamp(object.last_modified()),
            etag: object.e_tag().unwrap_or_default().to_owned(),
            storage_class: object
                .storage_class()
                .map(|class| class.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}

pub fn missing_key(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    match version_id {
        Some(version) => format!(
            "no version `{version}` of `{key}` in s3://{bucket}; `hybridlab s3 versions {key}` lists them"
        ),
        None => format!(
            "no object `{key}` in s3://{bucket}; `hybridlab s3 ls {}` lists the keys there, `hybridlab s3 versions {key}` shows deleted ones",
            parent_prefix(key)
        ),
    }
}

/// The key up to and including its last `/`: where to look for a key that is not there.
pub fn parent_prefix(key: &str) -> &str {
    key.rfind('/').map_or("", |slash| &key[..=slash])
}

/// A GET URL of `key` that works for `expires` without credentials. Local arithmetic on the
/// credentials: it does not check that the object exists ([`look_for`] does).
pub async fn presigned_get(
    lab: &Lab,
    bucket: &str,
    key: &str,
    expires: Duration,
) -> anyhow::Result<String> {
    let config = PresigningConfig::expires_in(expires)
        .map_err(|err| anyhow::anyhow!("expiry {expires:?}: {err}"))?;
    let request = lab
        .clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await
        .map_err(|err| lab.explain("s3:GetObject (presign)", &the_bucket(bucket), err))?;
    Ok(request.uri().to_owned())
}

/// `None` if `key` is in `bucket`, else the line that says it is not. HeadObject answers a
/// bare 404 both for a missing key and a missing bucket, so a 404 asks about the bucket too.
pub async fn look_for(lab: &Lab, bucket: &str, key: &str) -> anyhow::Result<Option<String>> {
    let err = match lab
        .clients
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(_) => return Ok(None),
        Err(err) => err,
    };
    let not_found = matches!(&err, SdkError::ServiceError(service) if service.err().is_not_found());
    if !not_found {
        return Err(lab.explain("s3:GetObject", &the_bucket(bucket), err));
    }
    lab.clients
        .s3
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|err| lab.explain("s3:ListBucket", &the_bucket(bucket), err))?;
    Ok(Some(missing_key(bucket, key, None)))
}

/// One version or delete marker of a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyVersion {
    pub version_id: String,
    pub kind: VersionKind,
    pub is_latest: bool,
    /// `None` for a delete marker, which has no content.
    pub size: Option<i64>,
    pub last_modified: String,
    pub etag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    Object,
    DeleteMarker,
}

impl VersionKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::DeleteMarker => "delete marker",
        }
    }
}

/// Newest first; the latest leads among equal times (S3's times have one-second resolution
/// on some targets, so an overwrite and a delete can share a timestamp).
pub fn newest_first(mut versions: Vec<KeyVersion>) -> Vec<KeyVersion> {
    versions.sort_by(|a, b| {
        b.last_modified
            .cmp(&a.last_modified)
            .then(b.is_latest.cmp(&a.is_latest))
    });
    versions
}

/// Every version and delete marker of `key` (of that key only), newest first.
pub async fn key_versions(lab: &Lab, bucket: &str, key: &str) -> anyhow::Result<Vec<KeyVersion>> {
    let mut found = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    // ListObjectVersions has no paginator in the SDK: it pages on two markers.
    loop {
        let page = lab
            .clients
            .s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|err| lab.explain("s3:ListBucketVersions", &the_bucket(bucket), err))?;
        // The prefix also matches longer keys (`a.jpg` matches `a.jpg.bak`): keep this key only.
        found.extend(
            page.versions()
                .iter()
                .filter(|version| version.key() == Some(key))
                .map(|version| KeyVersion {
                    version_id: version.version_id().unwrap_or("null").to_owned(),
                    kind: VersionKind::Object,
                    is_latest: version.is_latest().unwrap_or(false),
                    size: version.size(),
                    last_modified: timestamp(version.last_modified()),
                    etag: version.e_tag().map(str::to_owned),
                }),
        );
        found.extend(
            page.delete_markers()
                .iter()
                .filter(|marker| marker.key() == Some(key))
                .map(|marker| KeyVersion {
                    version_id: marker.version_id().unwrap_or("null").to_owned(),
                    kind: VersionKind::DeleteMarker,
                    is_latest: marker.is_latest().unwrap_or(false),
                    size: None,
                    last_modified: timestamp(marker.last_modified()),
                    etag: None,
                }),
        );
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
        if key_marker.is_none() && version_marker.is_none() {
            break;
        }
    }
    Ok(newest_first(found))
}

/// Keys asked for per ListObjectsV2 call; the next ones load when the selection reaches the end.
const LIST_PAGE: i32 = 200;

/// The largest object the preview downloads.
pub const PREVIEW_MAX_BYTES: i64 = 8 * 1024 * 1024;

/// The decoder refuses images wider or taller than this (a small file can claim a huge size).
const PREVIEW_MAX_SIDE: u32 = 16_384;

/// Memory the decoder may take for one image.
const PREVIEW_MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// The decoded image is kept this small (pixels; a cell shows two, one above the other).
pub const PREVIEW_WIDTH: u32 = 160;

pub const PREVIEW_HEIGHT: u32 = 96;

/// How long a copied URL works.
const URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// One line of a listing: a common prefix (a folder) or an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The whole prefix, ending in `/`.
    Folder(String),
    Object(ListedObject),
}

impl Entry {
    pub fn key(&self) -> &str {
        match self {
            Self::Folder(prefix) => prefix,
            Self::Object(object) => &object.key,
        }
    }
}

/// One ListObjectsV2 page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListingPage {
    pub entries: Vec<Entry>,
    /// The continuation token of the next page, if the listing goes on.
    pub next: Option<String>,
}

/// What HeadObject says of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectDetail {
    pub size: Option<i64>,
    pub content_type: Option<String>,
    /// RFC 3339.
    pub last_modified: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// User metadata (`image-id` on the server's objects).
    pub metadata: BTreeMap<String, String>,
}

/// A decoded image, scaled down to at most [`PREVIEW_WIDTH`] x [`PREVIEW_HEIGHT`].
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The image's own size.
    pub source_width: u32,
    pub source_height: u32,
    pub width: u32,
    pub height: u32,
    /// Row by row, `width * height` RGB pixels.
    pub pixels: Vec<[u8; 3]>,
}

impl Preview {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = (y as usize) * (self.width as usize) + x as usize;
        self.pixels.get(at).copied().unwrap_or([0, 0, 0])
    }
}

/// A read the S3 view needs from the network. `seq` comes back with the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Request {
    pub seq: u64,
    pub stack: Option<String>,
    pub bucket: BucketChoice,
    pub read: S3Read,
}

/// What an [`S3Request`] reads.
#[derive(Debug, Clone, PartialEq)]
pub enum S3Read {
    /// One page of the keys and common prefixes under `prefix`.
    List {
        prefix: String,
        continuation: Option<String>,
    },
    Head {
        key: String,
    },
    Versions {
        key: String,
    },
    Presign {
        key: String,
    },
    Preview {
        key: String,
    },
    /// Upload the local file `path` into the stack's pipeline (a presigned PUT, as the
    /// gallery's browser does).
    Upload {
        path: String,
    },
}

/// The answer to an [`S3Request`]: its `seq` and what came back (or the line saying why not).
#[derive(Debug)]
pub struct S3Update {
    pub seq: u64,
    pub answer: S3Answer,
}

#[derive(Debug)]
pub enum S3Answer {
    Listed {
        /// A further page of a listing, appended; otherwise the listing's first.
        more: bool,
        page: Result<ListingPage, String>,
    },
    Head(Result<ObjectDetail, String>),
    Versions(Result<Vec<KeyVersion>, String>),
    Presigned(Result<String, String>),
    Preview(Result<Preview, String>),
    Uploaded(Result<Accepted, String>),
}

pub fn too_big(key: &str, size: i64) -> String {
    format!(
        "{key} is {}, more than the preview reads ({}); `hybridlab s3 get {key}` downloads it",
        human_bytes(size),
        human_bytes(PREVIEW_MAX_BYTES)
    )
}

/// Does the network half of `request`.
pub async fn serve(clients: StackClients, request: S3Request) -> S3Update {
    let S3Request {
        seq,
        stack,
        bucket,
        read,
    } = request;
    let lab = Lab::for_listed(clients, stack.as_deref()).await;
    let answer = match read {
        S3Read::List {
            prefix,
            continuation,
        } => {
            let more = continuation.is_some();
            let page = match &lab {
                Ok(lab) => list_page(lab, bucket, &prefix, continuation).await,
                Err(err) => Err(anyhow!("{err:#}")),
            };
            S3Answer::Listed {
                more,
                page: page.map_err(|err| format!("{err:#}")),
            }
        }
        S3Read::Head { key } => S3Answer::Head(on(&lab, |lab| head(lab, bucket, key)).await),
        S3Read::Versions { key } => S3Answer::Versions(
            on(&lab, |lab| async move {
                let bucket = bucket.name(&lab.names);
                key_versions(lab, bucket, &key).await
            })
            .await,
        ),
        S3Read::Presign { key } => {
            S3Answer::Presigned(on(&lab, |lab| presign(lab, bucket, key)).await)
        }
        S3Read::Preview { key } => {
            S3Answer::Preview(on(&lab, |lab| preview(lab, bucket, key)).await)
        }
        S3Read::Upload { path } => S3Answer::Uploaded(on(&lab, |lab| upload(lab, path)).await),
    };
    S3Update { seq, answer }
}

/// Uploads the local file at `path` into `lab`'s pipeline.
async fn upload(lab: &Lab, path: String) -> anyhow::Result<Accepted> {
    let file = LocalFile::read(std::path::Path::new(&path)).await?;
    let uploader = Uploader::for_lab(lab).await?;
    uploader
        .upload(
            UploadPath::Presigned,
            &file.filename,
            file.content_type,
            file.bytes,
        )
        .await
}

/// `read` on the lab, or the lab's own failure; the error as the status line shows it.
async fn on<'a, T, F, Fut>(lab: &'a anyhow::Result<Lab>, read: F) -> Result<T, String>
where
    F: FnOnce(&'a Lab) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    match lab {
        Ok(lab) => read(lab).await.map_err(|err| format!("{err:#}")),
        Err(err) => Err(format!("{err:#}")),
    }
}

async fn list_page(
    lab: &Lab,
    bucket: BucketChoice,
    prefix: &str,
    continuation: Option<String>,
) -> anyhow::Result<ListingPage> {
    let bucket = bucket.name(&lab.names);
    let page = lab
        .clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .max_keys(LIST_PAGE)
        .set_continuation_token(continuation)
        .send()
        .await
        .map_err(|err| lab.explain("s3:ListBucket", &the_bucket(bucket), err))?;
    let folders = page
        .common_prefixes()
        .iter()
        .filter_map(|common| common.prefix())
        .map(|prefix| Entry::Folder(prefix.to_owned()));
    let objects = page
        .contents()
        .iter()
        .map(ListedObject::from_listing)
        // A console-made "folder" is an empty object named like the prefix: not an entry.
        .filter(|object| object.key != prefix)
        .map(Entry::Object);
    let mut entries: Vec<Entry> = folders.chain(objects).collect();
    // S3's own order, so a later page continues this one.
    entries.sort_by(|a, b| a.key().cmp(b.key()));
    let next = page
        .is_truncated()
        .unwrap_or(false)
        .then(|| page.next_continuation_token().map(str::to_owned))
        .flatten();
    Ok(ListingPage { entries, next })
}

async fn head(lab: &Lab, bucket: BucketChoice, key: String) -> anyhow::Result<ObjectDetail> {
    let bucket = bucket.name(&lab.names);
    let head = match lab
        .clients
        .s3
        .head_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(head) => head,
        // HeadObject has no body to name the error: a 404 is all it says of a missing key.
        Err(err) if matches!(&err, SdkError::ServiceError(service) if service.err().is_not_found()) =>
        {
            bail!("{key} is not in s3://{bucket} any more; press r to read the listing again")
        }
        Err(err) => return Err(lab.explain("s3:GetObject", &the_bucket(bucket), err)),
    };
    Ok(ObjectDetail {
        size: head.content_length(),
        content_type: head.content_type().map(str::to_owned),
        last_modified: timestamp(head.last_modified()),
        etag: head.e_tag().map(str::to_owned),
        version_id: head.version_id().map(str::to_owned),
        metadata: head
            .metadata()
            .map(|metadata| {
                metadata
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

async fn presign(lab: &Lab, bucket: BucketChoice, key: String) -> anyhow::Result<String> {
    let bucket = bucket.name(&lab.names);
    // Presigning is local arithmetic; look first so a URL is never handed out for nothing.
    if let Some(missing) = look_for(lab, bucket, &key).await? {
        bail!("{missing}");
    }
    presigned_get(lab, bucket, &key, URL_LIFETIME).await
}

async fn preview(lab: &Lab, bucket: BucketChoice, key: String) -> anyhow::Result<Preview> {
    let bucket = bucket.name(&lab.names);
    let object = lab
        .clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|err| lab.explain("s3:GetObject", &the_bucket(bucket), err))?;
    if let Some(size) = object.content_length()
        && size > PREVIEW_MAX_BYTES
    {
        bail!("{}", too_big(&key, size));
    }
    let mut bytes = Vec::new();
    let mut body = object.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("downloading {key} broke off; press p again"))?;
        // The object may have been replaced by a larger one since it was listed.
        if (bytes.len() + chunk.len()) as i64 > PREVIEW_MAX_BYTES {
            bail!("{}", too_big(&key, (bytes.len() + chunk.len()) as i64));
        }
        bytes.extend_from_slice(&chunk);
    }
    // Decoding takes a CPU for a while: off the executor's threads.
    tokio::task::spawn_blocking(move || decode_preview(&bytes))
        .await
        .context("the preview's decoder stopped")?
        .map_err(|err| anyhow!("{key}: {err}"))
}

/// Decodes an image (within limits) and scales it down to fit the preview's pixels.
pub fn decode_preview(bytes: &[u8]) -> Result<Preview, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| err.to_string())?;
    if reader.format().is_none() {
        return Err("not an image the preview reads (JPEG, PNG, GIF or WebP)".into());
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(PREVIEW_MAX_SIDE);
    limits.max_image_height = Some(PREVIEW_MAX_SIDE);
    limits.max_alloc = Some(PREVIEW_MAX_ALLOC);
    reader.limits(limits);
    let cannot = |err: image::ImageError| format!("cannot decode it: {err}");
    let mut decoder = reader.into_decoder().map_err(cannot)?;
    // A phone's photo is stored sideways with an EXIF orientation: shown as it is seen.
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(cannot)?;
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(cannot)?;
    image.apply_orientation(orientation);
    let (source_width, source_height) = (image.width(), image.height());
    let small = if source_width > PREVIEW_WIDTH || source_height > PREVIEW_HEIGHT {
        image.thumbnail(PREVIEW_WIDTH, PREVIEW_HEIGHT)
    } else {
        image
    }
    .to_rgb8();
    Ok(Preview {
        source_width,
        source_height,
        width: small.width(),
        height: small.height(),
        pixels: small.pixels().map(|pixel| pixel.0).collect(),
    })
}
