//! `hybridlab s3`: the stack's buckets seen from the terminal: list keys, download an object,
//! presign a GET URL, list every version and delete marker of a key. The images bucket is the
//! default; `--bucket artifacts` picks the other one, and no other bucket can be named.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::DateTime;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use super::output::stdout_colour;
use super::table::{Align, Cell, Table, emit, emit_json};
use crate::lab::Lab;
use crate::lab::s3::{
    BucketChoice, KeyVersion, ListedObject, MAX_PRESIGN_EXPIRY, VersionKind, is_missing_object,
    key_versions, look_for, missing_key, parent_prefix, presigned_get, the_bucket, timestamp,
};
use crate::lab::target::TargetChoice;
use crate::lab::tone::Tone;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  failed: unknown stack, stack not deployed, endpoint unreachable, credentials, local I/O
  2  bad command line (an unknown flag, a malformed --expires)
  3  no such key (or version) in the bucket";

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct S3Args {
    #[command(subcommand)]
    pub action: S3Action,

    /// The stack whose bucket to use (default: the target's only stack).
    #[arg(long, global = true, value_name = "ID")]
    pub stack: Option<String>,

    /// Which of the stack's buckets.
    #[arg(long, global = true, value_enum, default_value_t = BucketArg::Images)]
    pub bucket: BucketArg,

    /// Print one JSON document on standard output instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--bucket`: one of the stack's buckets; no other bucket can be named, so the command cannot
/// wander off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BucketArg {
    /// The images and their variants (versioned).
    Images,
    /// The server binary and its environment file.
    Artifacts,
    /// The pipeline's uploads (`up --with pipeline`).
    Uploads,
    /// The variants the pipeline's resizer made.
    Processed,
}

impl From<BucketArg> for BucketChoice {
    fn from(bucket: BucketArg) -> Self {
        match bucket {
            BucketArg::Images => Self::Images,
            BucketArg::Artifacts => Self::Artifacts,
            BucketArg::Uploads => Self::Uploads,
            BucketArg::Processed => Self::Processed,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum S3Action {
    /// List every key under PREFIX (all of them, not one level): key, size, last modified.
    #[command(after_help = EXIT_CODES)]
    Ls {
        /// Only keys that start with this, e.g. `images/<image_id>/`.
        prefix: Option<String>,
    },
    /// Download an object: to a file named after the key's last segment in the current
    /// directory (an existing file is not replaced), to FILE with -o, or to stdout with `-o -`.
    #[command(after_help = EXIT_CODES)]
    Get {
        /// The object's key, e.g. `images/<image_id>/thumbnail.jpg`.
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        key: String,

        /// Where to write: a file (replaced if it exists) or `-` for standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,

        /// A version other than the latest (see `hybridlab s3 versions KEY`).
        #[arg(long, value_name = "ID")]
        version_id: Option<String>,
    },
    /// Print a presigned GET URL of an object that anyone holding it can fetch until it
    /// expires. With temporary credentials (SSO, a role) the URL dies with the session.
    #[command(after_help = EXIT_CODES)]
    Presign {
        /// The object's key.
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        key: String,

        /// How long the URL works: e.g. 90s, 15m, 12h, 7d (at most 7 days, SigV4's limit).
        #[arg(long, default_value = "15m", value_parser = parse_expiry)]
        expires: Duration,
    },
    /// Every version and delete marker of one key, newest first.
    #[command(after_help = EXIT_CODES)]
    Versions {
        /// The object's key.
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        key: String,
    },
}

pub async fn run(target: &TargetChoice, args: S3Args) -> anyhow::Result<ExitCode> {
    if let S3Action::Get {
        output: Some(path), ..
    } = &args.action
        && path.as_os_str() == "-"
        && args.json
    {
        bail!(
            "--json and `-o -` both write to standard output; write the object to a file with -o FILE"
        );
    }
    let lab = Lab::open(target, args.stack.as_deref()).await?;
    let bucket = BucketChoice::from(args.bucket).name(&lab.names).to_owned();
    let outcome = match args.action {
        S3Action::Ls { prefix } => {
            list(&lab, &bucket, prefix.as_deref().unwrap_or(""), args.json).await?
        }
        S3Action::Get {
            key,
            output,
            version_id,
        } => {
            get(
                &lab,
                &bucket,
                &key,
                version_id.as_deref(),
                output,
                args.json,
            )
            .await?
        }
        S3Action::Presign { key, expires } => {
            presign(&lab, &bucket, &key, expires, args.json).await?
        }
        S3Action::Versions { key } => versions(&lab, &bucket, &key, args.json).await?,
    };
    Ok(match outcome {
        Found::Yes => ExitCode::SUCCESS,
        Found::No(message) => {
            eprintln!("hybridlab: {message}");
            ExitCode::from(super::exit::NOT_FOUND)
        }
    })
}

/// Whether the object a command named was there; if not, the line that says so.
enum Found {
    Yes,
    No(String),
}

/// Parses `--expires`: a duration from one second to seven days.
pub fn parse_expiry(text: &str) -> Result<Duration, String> {
    let expiry = crate::lab::units::parse_duration(text)?;
    if expiry < Duration::from_secs(1) {
        return Err(format!("`{text}`: a URL must live at least one second"));
    }
    if expiry > MAX_PRESIGN_EXPIRY {
        return Err(format!(
            "`{text}` is longer than 7 days, the most a SigV4 presigned URL can live"
        ));
    }
    Ok(expiry)
}

/// The file `s3 get` writes when no -o is given: the key's last segment, which must be a
/// plain file name (not empty, `.` or `..`), so a key can never write outside the directory.
pub fn default_file_name(key: &str) -> Result<&str, String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
        return Err(format!(
            "`{key}` does not end in a usable file name; choose one with -o FILE"
        ));
    }
    Ok(name)
}

/// Whether bytes of this content type may go to a terminal. Binary output garbles the
/// terminal, which is why `s3 get` writes to a file unless told `-o -`.
fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|kind| {
        let kind = kind.trim().to_ascii_lowercase();
        kind.starts_with("text/") || kind.starts_with("application/json")
    })
}

async fn list(lab: &Lab, bucket: &str, prefix: &str, json: bool) -> anyhow::Result<Found> {
    let mut objects = Vec::new();
    let mut pages = lab
        .clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| lab.explain("s3:ListBucket", &the_bucket(bucket), err))?;
        objects.extend(page.contents().iter().map(ListedObject::from_listing));
    }
    let total_bytes: i64 = objects.iter().map(|object| object.size).sum();
    if json {
        emit_json(&json!({
            "stack": lab.stack,
            "bucket": bucket,
            "prefix": prefix,
            "count": objects.len(),
            "total_bytes": total_bytes,
            "objects": objects,
        }))?;
    } else {
        emit(&render_listing(bucket, prefix, &objects, stdout_colour()))?;
    }
    Ok(Found::Yes)
}

/// The human listing: a table and a total line.
pub fn render_listing(
    bucket: &str,
    prefix: &str,
    objects: &[ListedObject],
    colour: bool,
) -> String {
    if objects.is_empty() {
        return format!("No objects under s3://{bucket}/{prefix}\n");
    }
    let mut table = Table::new(&[
        ("KEY", Align::Left),
        ("SIZE", Align::Right),
        ("LAST MODIFIED", Align::Left),
    ]);
    for object in objects {
        table.push(vec![
            Cell::plain(&object.key),
            Cell::plain(object.size.to_string()),
            Cell::plain(&object.last_modified),
        ]);
    }
    let total: i64 = objects.iter().map(|object| object.size).sum();
    let mut text = table.render(colour).join("\n");
    text.push_str(&format!(
        "\n{} object{}, {total} bytes under s3://{bucket}/{prefix}\n",
        objects.len(),
        if objects.len() == 1 { "" } else { "s" },
    ));
    text
}

async fn get(
    lab: &Lab,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    output: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<Found> {
    let to_stdout = output
        .as_deref()
        .is_some_and(|path| path.as_os_str() == "-");
    // Decide the file before downloading, so a refusal costs no transfer.
    let path = match output {
        Some(path) => path,
        None => {
            let path = PathBuf::from(default_file_name(key).map_err(anyhow::Error::msg)?);
            if path.exists() {
                bail!(
                    "{} already exists; name another file with -o FILE (an existing FILE given with -o is replaced)",
                    path.display()
                );
            }
            path
        }
    };
    let answer = lab
        .clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await;
    let object = match answer {
        Ok(object) => object,
        Err(err) if is_missing_object(err.code()) => {
            return Ok(Found::No(missing_key(bucket, key, version_id)));
        }
        Err(err) => return Err(lab.explain("s3:GetObject", &the_bucket(bucket), err)),
    };
    let details = json!({
        "stack": lab.stack,
        "bucket": bucket,
        "key": key,
        "version_id": object.version_id(),
        "size": object.content_length(),
        "content_type": object.content_type(),
        "etag": object.e_tag(),
        "last_modified": timestamp(object.last_modified()),
        "path": if to_stdout { "-".to_owned() } else { path.display().to_string() },
    });
    if to_stdout {
        use std::io::IsTerminal as _;
        if std::io::stdout().is_terminal() && !is_text(object.content_type()) {
            bail!(
                "s3://{bucket}/{key} is {} and standard output is a terminal; pipe it or write a file with -o FILE",
                object.content_type().unwrap_or("binary")
            );
        }
        match copy_to_stdout(object.body).await {
            Err(err) if is_broken_pipe(&err) => {}
            other => {
                other.with_context(|| format!("downloading s3://{bucket}/{key}"))?;
            }
        }
        return Ok(Found::Yes);
    }
    let size = download_to(object.body, &path)
        .await
        .with_context(|| format!("downloading s3://{bucket}/{key} to {}", path.display()))?;
    if json {
        emit_json(&details)?;
    } else {
        emit(&format!(
            "Wrote s3://{bucket}/{key} ({size} bytes) to {}\n",
            path.display()
        ))?;
    }
    Ok(Found::Yes)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|err| err.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Streams `body` into `writer`, returning the bytes written.
async fn copy_body(
    mut body: aws_sdk_s3::primitives::ByteStream,
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> anyhow::Result<u64> {
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the download broke off")?;
        writer.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    writer.flush().await?;
    Ok(written)
}

/// Streams `body` to standard output (std's: the workspace's tokio has no `io-std`).
async fn copy_to_stdout(mut body: aws_sdk_s3::primitives::ByteStream) -> anyhow::Result<()> {
    use std::io::Write as _;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the download broke off")?;
        std::io::stdout().write_all(&chunk)?;
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// Writes `body` to a `.part` file beside `path` and renames it into place once complete, so
/// a broken download never leaves a truncated file under the real name.
async fn download_to(body: aws_sdk_s3::primitives::ByteStream, path: &Path) -> anyhow::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("creating {}", partial.display()))?;
    let written = match copy_body(body, &mut file).await {
        Ok(written) => written,
        Err(err) => {
            drop(file);
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(err);
        }
    };
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, path)
        .await
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(written)
}

async fn presign(
    lab: &Lab,
    bucket: &str,
    key: &str,
    expires: Duration,
    json: bool,
) -> anyhow::Result<Found> {
    // Presigning is local arithmetic; look first so a URL is never handed out for nothing.
    if let Some(missing) = look_for(lab, bucket, key).await? {
        return Ok(Found::No(missing));
    }
    let url = presigned_get(lab, bucket, key, expires).await?;
    let expires_at = DateTime::from(SystemTime::now() + expires);
    if json {
        emit_json(&json!({
            "stack": lab.stack,
            "bucket": bucket,
            "key": key,
            "url": url,
            "expires_in_s": expires.as_secs(),
            "expires_at": timestamp(Some(&expires_at)),
        }))?;
    } else {
        // The URL alone on stdout, so `curl "$(hybridlab s3 presign KEY)"` works.
        emit(&format!("{url}\n"))?;
        eprintln!(
            "valid until {} ({}s)",
            timestamp(Some(&expires_at)),
            expires.as_secs()
        );
    }
    Ok(Found::Yes)
}

async fn versions(lab: &Lab, bucket: &str, key: &str, json: bool) -> anyhow::Result<Found> {
    let found = key_versions(lab, bucket, key).await?;
    if found.is_empty() {
        return Ok(Found::No(format!(
            "no version or delete marker of `{key}` in s3://{bucket}; `hybridlab s3 ls {}` lists the keys there",
            parent_prefix(key)
        )));
    }
    if json {
        emit_json(&json!({
            "stack": lab.stack,
            "bucket": bucket,
            "key": key,
            "versions": found,
        }))?;
    } else {
        emit(&render_versions(bucket, key, &found, stdout_colour()))?;
    }
    Ok(Found::Yes)
}

/// The human table of a key's versions.
pub fn render_versions(bucket: &str, key: &str, versions: &[KeyVersion], colour: bool) -> String {
    let mut table = Table::new(&[
        ("VERSION ID", Align::Left),
        ("LATEST", Align::Left),
        ("KIND", Align::Left),
        ("SIZE", Align::Right),
        ("LAST MODIFIED", Align::Left),
    ]);
    for version in versions {
        let kind = match version.kind {
            VersionKind::Object => Cell::plain(version.kind.label()),
            VersionKind::DeleteMarker => Cell::toned(version.kind.label(), Tone::Warn),
        };
        table.push(vec![
            Cell::plain(&version.version_id),
            Cell::plain(if version.is_latest { "*" } else { "" }),
            kind,
            Cell::plain(version.size.map_or("-".to_owned(), |size| size.to_string())),
            Cell::plain(&version.last_modified),
        ]);
    }
    let markers = versions
        .iter()
        .filter(|version| version.kind == VersionKind::DeleteMarker)
        .count();
    format!(
        "s3://{bucket}/{key}\n{}\n{} version{}, {markers} delete marker{}\n",
        table.render(colour).join("\n"),
        versions.len() - markers,
        if versions.len() - markers == 1 {
            ""
        } else {
            "s"
        },
        if markers == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::s3::newest_first;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::error::SdkError;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use hybridlab_provision::stack::error::Response;
    use hybridlab_provision::stack::{StackClients, StackId, StackNames, Target};

    #[test]
    fn a_bucket_name_tells_which_of_its_stacks_buckets_it_is() {
        let names = StackNames::new(&StackId::parse("k3x9q2ma").expect("an id"));
        for choice in [
            BucketChoice::Images,
            BucketChoice::Artifacts,
            BucketChoice::Uploads,
            BucketChoice::Processed,
        ] {
            assert_eq!(BucketChoice::of_bucket(choice.name(&names)), Some(choice));
        }
        assert_eq!(BucketChoice::of_bucket("someone-elses-bucket"), None);
    }

    #[test]
    fn expiry_is_between_one_second_and_seven_days() {
        assert_eq!(parse_expiry("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_expiry("7d"), Ok(MAX_PRESIGN_EXPIRY));
        assert_eq!(parse_expiry("1s"), Ok(Duration::from_secs(1)));
        let too_long = parse_expiry("8d").expect_err("8 days");
        assert!(too_long.contains("7 days"), "{too_long}");
        assert!(parse_expiry("169h").is_err());
        assert!(parse_expiry("0s").is_err());
        assert!(parse_expiry("soon").is_err());
    }

    #[test]
    fn the_default_file_is_the_keys_last_segment_and_never_a_path() {
        assert_eq!(
            default_file_name("images/abc/thumbnail.jpg"),
            Ok("thumbnail.jpg")
        );
        assert_eq!(default_file_name("server.env"), Ok("server.env"));
        for bad in ["images/abc/", "images/..", "a/.", "a\\b"] {
            assert!(default_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_text_goes_to_a_terminal() {
        assert!(is_text(Some("text/plain; charset=utf-8")));
        assert!(is_text(Some("application/json")));
        assert!(!is_text(Some("image/jpeg")));
        assert!(!is_text(Some("binary/octet-stream")));
        assert!(!is_text(None));
    }

    #[test]
    fn a_missing_key_points_at_its_neighbours() {
        let line = missing_key("b", "images/x/large.jpg", None);
        assert!(line.contains("hybridlab s3 ls images/x/"), "{line}");
        assert!(!line.contains('\n'));
        let line = missing_key("b", "k", Some("v1"));
        assert!(line.contains("no version `v1`"), "{line}");
        assert_eq!(parent_prefix("top.jpg"), "");
    }

    fn version(id: &str, kind: VersionKind, latest: bool, when: &str) -> KeyVersion {
        KeyVersion {
            version_id: id.into(),
            kind,
            is_latest: latest,
            size: (kind == VersionKind::Object).then_some(3),
            last_modified: when.into(),
            etag: None,
        }
    }

    #[test]
    fn versions_read_newest_first_with_the_latest_leading_a_tie() {
        let sorted = newest_first(vec![
            version("v1", VersionKind::Object, false, "2026-01-01T00:00:00Z"),
            version("v2", VersionKind::Object, false, "2026-01-01T00:00:05Z"),
            version(
                "dm",
                VersionKind::DeleteMarker,
                true,
                "2026-01-01T00:00:05Z",
            ),
        ]);
        let ids: Vec<&str> = sorted.iter().map(|v| v.version_id.as_str()).collect();
        assert_eq!(ids, ["dm", "v2", "v1"]);
        let text = render_versions("b", "k", &sorted, false);
        assert!(text.contains("2 versions, 1 delete marker"), "{text}");
        assert!(
            text.contains("dm          *       delete marker     -"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_listing_says_so_and_a_full_one_totals() {
        assert_eq!(
            render_listing("b", "images/", &[], false),
            "No objects under s3://b/images/\n"
        );
        let object = ListedObject {
            key: "images/a.jpg".into(),
            size: 10,
            last_modified: "2026-01-01T00:00:00Z".into(),
            etag: String::new(),
            storage_class: String::new(),
        };
        let text = render_listing("b", "images/", &[object.clone(), object], false);
        assert!(
            text.ends_with("2 objects, 20 bytes under s3://b/images/\n"),
            "{text}"
        );
    }

    fn service_error(status: u16, code: &str) -> SdkError<GetObjectError, Response> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        let raw = Response::new(
            status.try_into().expect("a status code"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(GetObjectError::generic(meta), raw)
    }

    async fn offline_lab() -> Lab {
        let clients = StackClients::connect(&Target::Sandbox {
            endpoint: "http://127.0.0.1:9".into(),
        })
        .await
        .expect("sandbox clients need no network");
        let stack = StackId::parse("abcd1234").expect("a valid id");
        Lab {
            clients,
            names: StackNames::new(&stack),
            stack,
        }
    }

    #[tokio::test]
    async fn get_errors_split_into_a_missing_key_and_advice() {
        assert!(is_missing_object(service_error(404, "NoSuchKey").code()));
        assert!(is_missing_object(
            service_error(404, "NoSuchVersion").code()
        ));
        assert!(!is_missing_object(
            service_error(404, "NoSuchBucket").code()
        ));
        let lab = offline_lab().await;
        let gone = lab
            .explain(
                "s3:GetObject",
                "the bucket b",
                service_error(404, "NoSuchBucket"),
            )
            .to_string();
        assert!(gone.contains("hybridlab up --stack abcd1234"), "{gone}");
        let expired = lab
            .explain(
                "s3:GetObject",
                "the bucket b",
                service_error(400, "ExpiredToken"),
            )
            .to_string();
        assert!(expired.contains("aws sso login"), "{expired}");
        assert!(!expired.contains('\n'));
    }
}
