//! Uploads into the event-driven pipeline the way a browser would, through the server's
//! `POST /upload` or a presigned PUT from `POST /api/uploads`, and each row followed until the
//! resizer has COMPLETED or FAILED it: [`Uploader`], which `hybridlab upload`, `bench --upload`
//! and the console's S3 view drive.

use hybridlab_wire::tls::{CERT_PIN_ENV, CertFingerprint};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hybridlab_wire::item::from_item;
use hybridlab_wire::{
    ErrorBody, Health, ImageRecord, ImageStatus, PresignUploadRequest, PresignUploadResponse,
    UploadResponse,
};
use serde::Serialize;

use super::Lab;

/// How an image reaches the uploads bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadPath {
    Presigned,
    Server,
}

/// Content types by file extension, for the object's Content-Type. The resizer decides from
/// the bytes, so this is only what S3 will serve the original as.
pub fn content_type_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("tif" | "tiff") => "image/tiff",
        Some("bmp") => "image/bmp",
        _ => "application/octet-stream",
    }
}

/// A local file to upload: its name as the row keeps it, its Content-Type and its bytes.
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub filename: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl LocalFile {
    pub async fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Self {
            filename: path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("upload")
                .to_owned(),
            content_type: content_type_of(path),
            bytes,
        })
    }
}

/// An upload accepted: the row is PENDING from here on.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub image_id: String,
    pub bucket: String,
    pub key: String,
}

/// Talks to the stack's image server for uploads, and to its table for the row's status.
#[derive(Debug, Clone)]
pub struct Uploader {
    server: String,
    token: Option<String>,
    /// For presigned S3 URLs: the usual certificate authorities.
    http: reqwest::Client,
    /// For the image server: only its pinned self-signed certificate, as the function trusts it.
    server_http: reqwest::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl Uploader {
    /// The server and token of `lab`, read from its proxy function's environment (where `up`
    /// put them), after checking that the stack has the pipeline.
    pub async fn for_lab(lab: &Lab) -> anyhow::Result<Self> {
        let config = lab
            .clients
            .lambda
            .get_function_configuration()
            .function_name(&lab.names.function)
            .send()
            .await
            .map_err(|err| {
                lab.explain(
                    "lambda:GetFunctionConfiguration",
                    &format!("the function {}", lab.names.function),
                    err,
                )
            })?;
        let variables = config
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        let server = variables.get("EC2_ENDPOINT").cloned().ok_or_else(|| {
            anyhow!(
                "the function {} has no EC2_ENDPOINT; run `hybridlab up --stack {}`",
                lab.names.function,
                lab.stack
            )
        })?;
        let client = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(120))
        };
        let mut server_http = client();
        if let Some(pin) = variables.get(CERT_PIN_ENV) {
            let pin = CertFingerprint::parse(pin).ok_or_else(|| {
                anyhow!("the function's {CERT_PIN_ENV} `{pin}` is not a fingerprint")
            })?;
            let tls = hybridlab_wire::tls::pinned_client_config(pin)
                .context("building the TLS client")?;
            server_http = server_http.tls_backend_preconfigured(tls);
        }
        let uploader = Self {
            server: server.trim_end_matches('/').to_owned(),
            token: variables.get("HYBRIDLAB_TOKEN").cloned(),
            http: client().build().context("building the HTTP client")?,
            server_http: server_http.build().context("building the HTTP client")?,
            dynamodb: lab.clients.dynamodb.clone(),
            table: lab.names.table.clone(),
        };
        let health: Health = uploader
            .server_http
            .get(format!("{}/health", uploader.server))
            .send()
            .await
            .with_context(|| format!("the image server at {} does not answer", uploader.server))?
            .json()
            .await
            .with_context(|| format!("{}/health is not the lab's JSON", uploader.server))?;
        if health.uploads_bucket.is_none() {
            bail!(
                "stack `{}` has no upload pipeline; add it with `hybridlab up --stack {} --with pipeline`",
                lab.stack,
                lab.stack
            );
        }
        Ok(uploader)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Uploads `bytes` as `filename` by the path asked for.
    pub async fn upload(
        &self,
        via: UploadPath,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Accepted> {
        match via {
            UploadPath::Presigned => self.presigned(filename, content_type, bytes).await,
            UploadPath::Server => self.multipart(filename, content_type, bytes).await,
        }
    }

    async fn presigned(
        &self,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Accepted> {
        let request = PresignUploadRequest {
            filename: filename.to_owned(),
            content_type: Some(content_type.to_owned()),
            size_bytes: Some(bytes.len() as u64),
        };
        let response = self
            .authorized(
                self.server_http
                    .post(format!("{}/api/uploads", self.server)),
            )
            .json(&request)
            .send()
            .await
            .with_context(|| format!("POST {}/api/uploads", self.server))?;
        let ticket: PresignUploadResponse = answer(response, "POST /api/uploads").await?;
        let mut put = self.http.put(&ticket.upload_url).body(bytes);
        for (name, value) in &ticket.headers {
            put = put.header(name, value);
        }
        let stored = put.send().await.context("PUT to the presigned URL")?;
        if !stored.status().is_success() {
            let status = stored.status();
            let body = stored.text().await.unwrap_or_default();
            bail!(
                "S3 refused the presigned PUT of {filename} ({status}): {}",
                body.chars().take(300).collect::<String>()
            );
        }
        Ok(Accepted {
            image_id: ticket.image_id,
            bucket: ticket.bucket,
            key: ticket.key,
        })
    }

    async fn multipart(
        &self,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Accepted> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(content_type)
            .context("the content type")?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .authorized(self.server_http.post(format!("{}/upload", self.server)))
            .multipart(form)
            .send()
            .await
            .with_context(|| format!("POST {}/upload", self.server))?;
        let accepted: UploadResponse = answer(response, "POST /upload").await?;
        Ok(Accepted {
            image_id: accepted.image_id,
            bucket: accepted.bucket,
            key: accepted.key,
        })
    }

    /// The row of `image_id` as it is now (a strongly consistent read).
    pub async fn row(&self, image_id: &str) -> anyhow::Result<Option<ImageRecord>> {
        let found = hybridlab_wire::item::get_row(&self.dynamodb, &self.table, image_id)
            .send()
            .await
            .with_context(|| format!("dynamodb:GetItem {image_id} in {}", self.table))?;
        found
            .item()
            .map(from_item)
            .transpose()
            .map_err(anyhow::Error::new)
    }

    /// Polls the row of `image_id` every `pause` until it is COMPLETED or FAILED; returns it
    /// with the moment the final status was seen.
    pub async fn wait_final(
        &self,
        image_id: &str,
        timeout: Duration,
        pause: Duration,
    ) -> anyhow::Result<(ImageRecord, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = match self.row(image_id).await? {
                Some(row) if matches!(row.status, ImageStatus::Completed | ImageStatus::Failed) => {
                    return Ok((row, Instant::now()));
                }
                Some(row) => row.status.to_string(),
                None => "no row".to_owned(),
            };
            if Instant::now() > deadline {
                bail!(
                    "image {image_id} is still {status} after {}s; `hybridlab logs` shows the resizer's log",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// The JSON answer of a successful call, or the server's error as one line.
async fn answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> anyhow::Result<T> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .with_context(|| format!("{what}: the answer is not the lab's JSON"));
    }
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) => bail!("{what}: {} ({}): {}", error.error, status, error.message),
        Err(_) => bail!(
            "{what}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension_in_any_case() {
        assert_eq!(content_type_of(Path::new("a/cat.JPG")), "image/jpeg");
        assert_eq!(content_type_of(Path::new("cat.jpeg")), "image/jpeg");
        assert_eq!(content_type_of(Path::new("x.png")), "image/png");
        assert_eq!(content_type_of(Path::new("x.webp")), "image/webp");
        assert_eq!(
            content_type_of(Path::new("notes.txt")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_of(Path::new("noextension")),
            "application/octet-stream"
        );
    }
}
