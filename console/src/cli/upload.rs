//! `hybridlab upload`: each file uploaded into the event-driven pipeline (`up --with
//! pipeline`) and its row followed through PENDING and PROCESSING to COMPLETED or FAILED,
//! printed per file. Exits 5 if any ends FAILED.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use hybridlab_wire::{ImageRecord, ImageStatus};
use serde::Serialize;

use crate::lab::Lab;
use crate::lab::target::TargetChoice;
use crate::lab::upload::{Accepted, LocalFile, UploadPath, Uploader};

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Image files to upload (anything else is uploaded too, and the resizer marks it FAILED).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// The stack (default: the target's only stack).
    #[arg(long)]
    pub stack: Option<String>,

    /// `presigned`: a PUT straight to S3 with the URL `POST /api/uploads` issues, as a browser
    /// does; `server`: a multipart `POST /upload` through the image server.
    #[arg(long, value_enum, default_value_t = UploadVia::Presigned)]
    pub via: UploadVia,

    /// Return once uploaded, without waiting for the resizer.
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for each image to be COMPLETED or FAILED (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = crate::lab::units::parse_duration)]
    pub timeout: Duration,

    /// One JSON object per file.
    #[arg(long)]
    pub json: bool,
}

/// `--via`: how an image reaches the uploads bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UploadVia {
    Presigned,
    Server,
}

impl From<UploadVia> for UploadPath {
    fn from(via: UploadVia) -> Self {
        match via {
            UploadVia::Presigned => Self::Presigned,
            UploadVia::Server => Self::Server,
        }
    }
}

/// What `hybridlab upload` reports per file.
#[derive(Debug, Serialize)]
struct FileOutcome {
    file: String,
    via: UploadPath,
    #[serde(flatten)]
    accepted: Accepted,
    /// Absent with --no-wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<ImageRecord>,
    /// From the start of the upload until the final status was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    to_final_ms: Option<f64>,
}

pub async fn run(target: &TargetChoice, args: UploadArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(target, args.stack.as_deref()).await?;
    let uploader = Uploader::for_lab(&lab).await?;
    let mut failed = 0;
    for path in &args.files {
        let file = LocalFile::read(path).await?;
        let started = Instant::now();
        let accepted = uploader
            .upload(
                args.via.into(),
                &file.filename,
                file.content_type,
                file.bytes,
            )
            .await
            .with_context(|| format!("uploading {}", path.display()))?;
        let (row, to_final_ms) = if args.no_wait {
            (None, None)
        } else {
            let (row, seen) = uploader
                .wait_final(&accepted.image_id, args.timeout, Duration::from_millis(100))
                .await?;
            (Some(row), Some((seen - started).as_secs_f64() * 1000.0))
        };
        if row
            .as_ref()
            .is_some_and(|r| r.status == ImageStatus::Failed)
        {
            failed += 1;
        }
        let outcome = FileOutcome {
            file: path.display().to_string(),
            via: args.via.into(),
            accepted,
            row,
            to_final_ms,
        };
        if args.json {
            println!("{}", serde_json::to_string(&outcome)?);
        } else {
            print_outcome(&outcome);
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::FAILED)
    })
}

fn print_outcome(outcome: &FileOutcome) {
    let accepted = &outcome.accepted;
    println!(
        "{}: image {} in s3://{}/{}",
        outcome.file, accepted.image_id, accepted.bucket, accepted.key
    );
    let Some(row) = &outcome.row else {
        println!(
            "  PENDING (not waited for; `hybridlab db get {}` follows it)",
            accepted.image_id
        );
        return;
    };
    let history: Vec<String> = row
        .history
        .iter()
        .map(|change| format!("{} {}", change.status, change.at))
        .collect();
    println!(
        "  {} after {:.0} ms: {}",
        row.status,
        outcome.to_final_ms.unwrap_or_default(),
        history.join(" -> ")
    );
    match row.status {
        ImageStatus::Failed => {
            println!("  reason: {}", row.error.as_deref().unwrap_or("none given"));
        }
        _ => {
            for (name, key) in &row.keys {
                println!("  {name:<14} s3://{}/{key}", row.bucket_of(name));
            }
        }
    }
}
