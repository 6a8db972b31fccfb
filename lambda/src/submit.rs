//! The submit function of the job-worker variant, behind the stack's HTTP API (payload
//! format 2.0): `POST /jobs` writes a SUBMITTED job and answers its id with a presigned PUT
//! for its input (the client sends the input straight to S3; the worker waits for it);
//! `GET /jobs/{id}` and `GET /jobs` read jobs. Every call needs the stack's token as a
//! bearer token: a public API that launches instances would be anyone's to bill.
//!
//! [`route`] reads a request into what to do and is plain; [`Submit::handle`] does it.

use std::time::Duration;

use hybridlab_wire::job::{self, Job, JobEvent, JobKind, JobStatus};
use hybridlab_wire::job_item;
use hybridlab_wire::launch::submit_env;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

/// The most text an `append-text` job takes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// How long a job's upload URL is valid.
pub const UPLOAD_URL_SECONDS: u64 = 900;
/// How many jobs `GET /jobs` lists, newest first.
pub const LIST_LIMIT: usize = 50;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A new job of this kind, whose input will be `size` bytes.
    Submit {
        kind: JobKind,
        size: u64,
    },
    Get(String),
    List,
}

/// An HTTP answer, as the API makes it of the function's `{"statusCode": ...}`.
pub fn answer(status: u16, body: Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}

fn refuse(status: u16, message: &str) -> Value {
    answer(status, json!({"message": message}))
}

/// Reads the request: the token first, then the route and its input. `Err` is the answer.
pub fn route(event: &Value, token: &str) -> Result<Call, Value> {
    let presented = event["headers"]["authorization"]
        .as_str()
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    // The same time whatever the token: no byte-by-byte guessing.
    let matches = presented.len() == token.len()
        && presented
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if token.is_empty() || !matches {
        return Err(refuse(
            401,
            "a bearer token is required: the stack's token (`hybridlab gallery` or `hybridlab status` names it)",
        ));
    }
    let route = event["routeKey"].as_str().unwrap_or_default();
    match route {
        "POST /jobs" => {
            let body: Value = event["body"]
                .as_str()
                .and_then(|body| serde_json::from_str(body).ok())
                .ok_or_else(|| refuse(400, "the body must be a JSON object"))?;
            let kind = match body["kind"].as_str() {
                Some("append-text") => {
                    let text = body["text"]
                        .as_str()
                        .ok_or_else(|| refuse(400, "an append-text job needs a \"text\" string"))?;
                    if text.len() > MAX_TEXT_BYTES {
                        return Err(refuse(
                            413,
                            &format!("\"text\" is longer than {MAX_TEXT_BYTES} bytes"),
                        ));
                    }
                    JobKind::AppendText {
                        text: text.to_owned(),
                    }
                }
                Some("image-batch") => JobKind::ImageBatch,
                _ => {
                    return Err(refuse(
                        400,
                        "\"kind\" must be \"append-text\" or \"image-batch\"",
                    ));
                }
            };
            // The upload URL is signed for this size: S3 refuses any other, so a client
            // cannot store more than it declared (nor more than a worker reads).
            let size = body["size"]
                .as_u64()
                .filter(|size| *size > 0)
                .ok_or_else(|| {
                    refuse(
                        400,
                        "\"size\" must be the input's size in bytes, a whole number above 0",
                    )
                })?;
            if size > job::MAX_INPUT_BYTES {
                return Err(refuse(
                    413,
                    &format!(
                        "the input is {size} bytes; a job takes at most {}",
                        job::MAX_INPUT_BYTES
                    ),
                ));
            }
            Ok(Call::Submit { kind, size })
        }
        "GET /jobs/{id}" => {
            let id = event["pathParameters"]["id"].as_str().unwrap_or_default();
            if !job::is_job_id(id) {
                return Err(refuse(400, "not a job id"));
            }
            Ok(Call::Get(id.to_owned()))
        }
        "GET /jobs" => Ok(Call::List),
        _ => Err(refuse(404, "Not Found")),
    }
}

/// A new job's id: `j-` and 16 hex digits of a random v4 UUID.
pub fn new_job_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("j-{}", &hex[..16])
}

pub struct SubmitConfig {
    pub table: String,
    pub bucket: String,
    pub token: String,
    pub lease_seconds: u64,
}

impl SubmitConfig {
    pub fn from_env() -> Result<Self, Error> {
        let var = super::required_env;
        let token = var(hybridlab_wire::token::TOKEN_ENV)?;
        hybridlab_wire::token::check_token(Some(&token)).map_err(|err| err.to_string())?;
        Ok(Self {
            table: var(submit_env::JOBS_TABLE)?,
            bucket: var(submit_env::JOBS_BUCKET)?,
            token,
            lease_seconds: std::env::var(submit_env::LEASE_SECONDS)
                .ok()
                .and_then(|text| text.parse().ok())
                .unwrap_or(120),
        })
    }
}

pub struct Submit {
    config: SubmitConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
}

impl Submit {
    pub async fn from_env(config: SubmitConfig) -> Self {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            config,
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            s3: super::s3_client(&aws),
        }
    }

    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let call = match route(&event.payload, &self.config.token) {
            Ok(call) => call,
            Err(answer) => return Ok(answer),
        };
        match call {
            Call::Submit { kind, size } => self.submit(kind, size).await,
            Call::Get(id) => {
                let item = job_item::get_job(&self.dynamodb, &self.config.table, &id)
                    .send()
                    .await?
                    .item;
                Ok(match item {
                    Some(item) => {
                        let job = self.expire_if_silent(job_item::from_item(&item)?).await?;
                        answer(200, serde_json::to_value(job)?)
                    }
                    None => refuse(404, &format!("no job {id}")),
                })
            }
            Call::List => {
                let mut jobs: Vec<Job> = Vec::new();
                for job in job_item::scan_jobs(&self.dynamodb, &self.config.table, false)
                    .await?
                    .into_iter()
                    .filter_map(Result::ok)
                {
                    jobs.push(self.expire_if_silent(job).await?);
                }
                jobs.sort_by(|a, b| b.submitted_at.cmp(&a.submitted_at));
                jobs.truncate(LIST_LIMIT);
                Ok(answer(200, json!({"jobs": jobs})))
            }
        }
    }

    /// `job` as it stands, failed first if its worker has gone silent past its lease: a job
    /// whose instance died ends FAILED when anyone looks, even when no other job comes to
    /// wake the launcher. The change goes through the stream like any other, so the launcher
    /// then starts a queued job in its place.
    async fn expire_if_silent(&self, job: Job) -> Result<Job, Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if !job.lease_expired(now) {
            return Ok(job);
        }
        let at = hybridlab_wire::now_rfc3339();
        job_item::apply(
            &self.dynamodb,
            &self.config.table,
            &job.job_id,
            job_item::transition(
                &job_item::Change::Failed {
                    error: job::LEASE_EXPIRED,
                },
                &at,
                "lease ran out (seen by the API)",
            ),
        )
        .await?;
        // Whoever moved it (this call, the launcher, the worker at the last moment), the row
        // now says what happened.
        let item = job_item::get_job(&self.dynamodb, &self.config.table, &job.job_id)
            .send()
            .await?
            .item;
        Ok(match item {
            Some(item) => job_item::from_item(&item)?,
            None => job,
        })
    }

    async fn submit(&self, kind: JobKind, size: u64) -> Result<Value, Error> {
        let job_id = new_job_id();
        let input_key = job::input_key(&job_id);
        // Signed for the declared size, and for an object that does not exist yet: the input
        // is written once, and cannot be swapped after the worker has read it.
        let upload = self
            .s3
            .put_object()
            .bucket(&self.config.bucket)
            .key(&input_key)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .if_none_match("*")
            .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(
                Duration::from_secs(UPLOAD_URL_SECONDS),
            )?)
            .await?;
        let at = hybridlab_wire::now_rfc3339();
        let job = Job {
            job_id: job_id.clone(),
            kind,
            status: JobStatus::Submitted,
            submitted_at: at.clone(),
            instance_id: None,
            heartbeat_at: None,
            launched_at: None,
            lease_seconds: self.config.lease_seconds,
            input_bytes: Some(size),
            outputs: Vec::new(),
            error: None,
            history: vec![JobEvent {
                status: JobStatus::Submitted,
                at,
                detail: "submitted".into(),
            }],
        };
        self.dynamodb
            .put_item()
            .table_name(&self.config.table)
            .set_item(Some(job_item::to_item(&job)))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", job::JOB_KEY_ATTRIBUTE)
            .send()
            .await?;
        Ok(answer(
            201,
            json!({
                "job_id": job_id,
                "status": JobStatus::Submitted,
                "upload_url": upload.uri(),
                "upload_method": "PUT",
                "upload_headers": upload
                    .headers()
                    .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
                    .map(|(name, value)| (name.to_ascii_lowercase(), Value::from(value)))
                    .collect::<serde_json::Map<_, _>>(),
                "input_bytes": size,
                "upload_expires_in": UPLOAD_URL_SECONDS,
                "input_key": input_key,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn event(route: &str, token: &str, body: Value, id: Option<&str>) -> Value {
        json!({
            "version": "2.0",
            "routeKey": route,
            "headers": {"authorization": format!("Bearer {token}")},
            "body": body.to_string(),
            "pathParameters": id.map(|id| json!({"id": id})).unwrap_or(Value::Null),
        })
    }

    fn status(answer: &Value) -> u64 {
        answer["statusCode"].as_u64().unwrap_or_default()
    }

    #[test]
    fn the_token_is_required_and_each_route_reads_its_input() {
        let submit = json!({"kind": "append-text", "text": "more", "size": 12});
        assert_eq!(
            route(&event("POST /jobs", TOKEN, submit.clone(), None), TOKEN),
            Ok(Call::Submit {
                kind: JobKind::AppendText {
                    text: "more".into()
                },
                size: 12
            })
        );
        for (size, code) in [
            (json!(null), 400),
            (json!(0), 400),
            (json!(-1), 400),
            (json!("12"), 400),
            (json!(job::MAX_INPUT_BYTES + 1), 413),
        ] {
            let body = json!({"kind": "image-batch", "size": size});
            let refused =
                route(&event("POST /jobs", TOKEN, body, None), TOKEN).expect_err("refused");
            assert_eq!(status(&refused), code, "size {size}");
        }
        let wrong =
            route(&event("POST /jobs", "x", submit.clone(), None), TOKEN).expect_err("refused");
        assert_eq!(status(&wrong), 401);
        assert_eq!(
            status(
                &route(
                    &event("POST /jobs", TOKEN, json!({"kind": "rm -rf"}), None),
                    TOKEN
                )
                .expect_err("refused")
            ),
            400
        );
        let long =
            json!({"kind": "append-text", "text": "x".repeat(MAX_TEXT_BYTES + 1), "size": 1});
        assert_eq!(
            status(&route(&event("POST /jobs", TOKEN, long, None), TOKEN).expect_err("refused")),
            413
        );
        assert_eq!(
            route(
                &event(
                    "GET /jobs/{id}",
                    TOKEN,
                    Value::Null,
                    Some("j-0123456789abcdef")
                ),
                TOKEN
            ),
            Ok(Call::Get("j-0123456789abcdef".into()))
        );
        assert_eq!(
            status(
                &route(
                    &event("GET /jobs/{id}", TOKEN, Value::Null, Some("../etc")),
                    TOKEN
                )
                .expect_err("refused")
            ),
            400
        );
        assert_eq!(
            route(&event("GET /jobs", TOKEN, Value::Null, None), TOKEN),
            Ok(Call::List)
        );
        assert!(job::is_job_id(&new_job_id()));
    }
}
