//! The job-worker variant (`up --with jobs`) as a client sees it: submit a job through the
//! stack's HTTP API (its input goes straight to S3 with the presigned PUT the API answers),
//! follow it, list and read jobs, gather a job's log lines (the launcher's, and its worker's
//! console), and cancel one. The API and its token are found from the stack's own
//! resources, so nothing depends on this machine's state file.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use hybridlab_wire::job::{Job, JobKind, JobStatus, is_job_id};
use hybridlab_wire::job_item::{self, Change};
use hybridlab_wire::token::TOKEN_ENV;
use serde::{Deserialize, Serialize};

use super::Lab;

/// What `POST /jobs` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub job_id: String,
    pub status: JobStatus,
    pub input_key: String,
    pub upload_url: String,
    /// Headers the upload must carry, as signed (`if-none-match: *`).
    #[serde(default)]
    pub upload_headers: std::collections::BTreeMap<String, String>,
}

/// The stack's jobs API with its token.
#[derive(Debug, Clone)]
pub struct JobsApi {
    pub endpoint: String,
    token: String,
    http: reqwest::Client,
}

/// A job's status as it changes while it is followed.
pub type Progress<'a> = &'a mut (dyn FnMut(&Job) + Send);

impl JobsApi {
    /// The API of `lab`'s stack (found by name) and the token its submit function checks.
    pub async fn for_lab(lab: &Lab) -> anyhow::Result<Self> {
        let names = &lab.names;
        let config = lab
            .clients
            .lambda
            .get_function_configuration()
            .function_name(&names.submit)
            .send()
            .await
            .map_err(|err| {
                lab.explain(
                    "lambda:GetFunctionConfiguration",
                    &format!(
                        "the submit function {} (the stack needs `hybridlab up --with jobs`)",
                        names.submit
                    ),
                    err,
                )
            })?;
        let token = config
            .environment()
            .and_then(|e| e.variables())
            .and_then(|variables| variables.get(TOKEN_ENV))
            .cloned()
            .ok_or_else(|| anyhow!("the function {} has no {TOKEN_ENV}", names.submit))?;
        let endpoint = find_api_endpoint(lab).await?.ok_or_else(|| {
            anyhow!(
                "stack `{}` has no jobs API {}; run `hybridlab up --stack {} --with jobs`",
                lab.stack,
                names.jobs_api,
                lab.stack
            )
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<T> {
        let answer = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("the jobs API at {} does not answer", self.endpoint))?;
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            bail!("{what}: the jobs API answered {status}: {message}");
        }
        serde_json::from_str(&body)
            .with_context(|| format!("{what}: the jobs API answered what is not a job: {body}"))
    }

    /// Submits a job of `kind` and uploads `input` as its input.
    pub async fn submit(&self, kind: &JobKind, input: Vec<u8>) -> anyhow::Result<Submitted> {
        let mut request = serde_json::to_value(kind).context("the job's kind")?;
        request["size"] = input.len().into();
        let submitted: Submitted = self
            .call(
                self.http
                    .post(format!("{}/jobs", self.endpoint))
                    .json(&request),
                "POST /jobs",
            )
            .await?;
        let mut upload = self.http.put(&submitted.upload_url).body(input);
        for (name, value) in &submitted.upload_headers {
            upload = upload.header(name, value);
        }
        let uploaded = upload.send().await.context("uploading the input")?;
        if !uploaded.status().is_success() {
            let status = uploaded.status();
            let body = uploaded.text().await.unwrap_or_default();
            bail!(
                "uploading the input of {}: S3 answered {status}: {body}",
                submitted.job_id
            );
        }
        Ok(submitted)
    }

    pub async fn get(&self, job_id: &str) -> anyhow::Result<Job> {
        if !is_job_id(job_id) {
            bail!(
                "`{job_id}` is not a job id (`j-` and 16 hex digits, as `hybridlab job ls` lists them)"
            );
        }
        self.call(
            self.http.get(format!("{}/jobs/{job_id}", self.endpoint)),
            &format!("GET /jobs/{job_id}"),
        )
        .await
    }

    /// The newest jobs, newest first.
    pub async fn list(&self) -> anyhow::Result<Vec<Job>> {
        #[derive(Deserialize)]
        struct Listing {
            jobs: Vec<Job>,
        }
        let listing: Listing = self
            .call(
                self.http.get(format!("{}/jobs", self.endpoint)),
                "GET /jobs",
            )
            .await?;
        Ok(listing.jobs)
    }

    /// Reads job `job_id` every `pause` until it ends or `patience` runs out, telling
    /// `progress` of every change of status: the job, and when it was read ended.
    pub async fn follow(
        &self,
        job_id: &str,
        patience: Duration,
        pause: Duration,
        progress: Progress<'_>,
    ) -> anyhow::Result<(Job, std::time::Instant)> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut seen = None;
        loop {
            let job = self.get(job_id).await?;
            if seen != Some(job.status) {
                progress(&job);
                seen = Some(job.status);
            }
            if job.status.is_final() {
                return Ok((job, std::time::Instant::now()));
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "job {job_id} is still {} after {}s; follow it with `hybridlab job get {job_id}`",
                    job.status,
                    patience.as_secs()
                );
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// The state of instance `instance_id` (`pending`, `running`, ...); `None` when EC2 no
/// longer lists it.
pub async fn instance_state(lab: &Lab, instance_id: &str) -> anyhow::Result<Option<String>> {
    let described = lab
        .clients
        .ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|err| {
            lab.explain(
                "ec2:DescribeInstances",
                &format!("the worker {instance_id}"),
                err,
            )
        })?;
    Ok(described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| {
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
        }))
}

/// Waits until `instance_id` is no longer billed (EC2 stops charging at `shutting-down`),
/// polling every `pause`; when it was seen so.
pub async fn wait_stopped_billing(
    lab: &Lab,
    instance_id: &str,
    patience: Duration,
    pause: Duration,
) -> anyhow::Result<std::time::Instant> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let state = instance_state(lab, instance_id).await?;
        if matches!(
            state.as_deref(),
            None | Some("shutting-down" | "terminated")
        ) {
            return Ok(std::time::Instant::now());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the worker {instance_id} is still {} after {}s",
                state.as_deref().unwrap_or("unknown"),
                patience.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
    }
}

/// The endpoint of the stack's HTTP API, found by its name.
async fn find_api_endpoint(lab: &Lab) -> anyhow::Result<Option<String>> {
    Ok(hybridlab_provision::stack::down::list_apis(&lab.clients)
        .await?
        .iter()
        .find(|api| api.name() == Some(lab.names.jobs_api.as_str()))
        .and_then(|api| api.api_endpoint().map(str::to_owned)))
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cancelled {
    pub job_id: String,
    /// The status it was cancelled from; `None` when it had already ended.
    pub from: Option<JobStatus>,
    pub status: JobStatus,
    /// The worker terminated, if it had one.
    pub terminated: Option<String>,
}

/// Cancels job `job_id`: a conditional move to CANCELLED (refused once it has ended), then
/// its worker's instance terminated. The row first, so the worker, whose own updates are
/// conditional on RUNNING, cannot end it SUCCEEDED meanwhile.
pub async fn cancel(lab: &Lab, job_id: &str) -> anyhow::Result<Cancelled> {
    if !is_job_id(job_id) {
        bail!(
            "`{job_id}` is not a job id (`j-` and 16 hex digits, as `hybridlab job ls` lists them)"
        );
    }
    let table = &lab.names.jobs_table;
    let before = read_job(lab, job_id).await?;
    if before.status.is_final() {
        return Ok(Cancelled {
            job_id: job_id.to_owned(),
            from: None,
            status: before.status,
            terminated: None,
        });
    }
    let moved = job_item::apply(
        &lab.clients.dynamodb,
        table,
        job_id,
        job_item::transition(
            &Change::Cancelled,
            &hybridlab_wire::now_rfc3339(),
            "cancelled by the operator",
        ),
    )
    .await
    .map_err(|err| anyhow!("dynamodb:UpdateItem on {table}: {err}"))?;
    let after = read_job(lab, job_id).await?;
    let mut terminated = None;
    if moved && let Some(instance) = &after.instance_id {
        lab.clients
            .ec2
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .map_err(|err| {
                lab.explain(
                    "ec2:TerminateInstances",
                    &format!("the worker {instance}"),
                    err,
                )
            })?;
        terminated = Some(instance.clone());
    }
    Ok(Cancelled {
        job_id: job_id.to_owned(),
        from: moved.then_some(before.status),
        status: after.status,
        terminated,
    })
}

/// Job `job_id`'s row, read from the table with the operator's credentials.
pub async fn read_job(lab: &Lab, job_id: &str) -> anyhow::Result<Job> {
    let table = &lab.names.jobs_table;
    let item = job_item::get_job(&lab.clients.dynamodb, table, job_id)
        .send()
        .await
        .map_err(|err| lab.explain("dynamodb:GetItem", &format!("the jobs table {table}"), err))?
        .item
        .ok_or_else(|| anyhow!("no job {job_id} in stack `{}`", lab.stack))?;
    job_item::from_item(&item).map_err(anyhow::Error::new)
}

/// One line of a job's logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobLogLine {
    /// `launcher` or `worker`.
    pub source: &'static str,
    /// Milliseconds since the epoch, where the source tells it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    pub message: String,
}

/// A job's log lines: the launcher's lines that name it, then its worker's console output
/// (which EC2 keeps for a while after the instance has terminated).
pub async fn job_logs(lab: &Lab, job: &Job) -> anyhow::Result<Vec<JobLogLine>> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = match lab
            .clients
            .logs
            .filter_log_events()
            .log_group_name(&lab.names.launcher_log_group)
            .filter_pattern(format!("\"{}\"", job.job_id))
            .set_next_token(token.clone())
            .send()
            .await
        {
            Ok(page) => page,
            Err(err) => {
                return Err(lab.explain(
                    "logs:FilterLogEvents",
                    &format!("the log group {}", lab.names.launcher_log_group),
                    err,
                ));
            }
        };
        lines.extend(
            page.events()
                .iter()
                .map(|event: &FilteredLogEvent| JobLogLine {
                    source: "launcher",
                    timestamp_ms: event.timestamp(),
                    message: event.message().unwrap_or_default().trim_end().to_owned(),
                }),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() || lines.len() > 10_000 {
            break;
        }
    }
    if let Some(instance) = &job.instance_id {
        let console = lab
            .clients
            .ec2
            .get_console_output()
            .instance_id(instance)
            .latest(true)
            .send()
            .await
            .map_err(|err| {
                lab.explain(
                    "ec2:GetConsoleOutput",
                    &format!("the worker {instance}"),
                    err,
                )
            })?;
        let text = console
            .output()
            .and_then(|encoded| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        lines.extend(
            text.lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| JobLogLine {
                    source: "worker",
                    timestamp_ms: None,
                    message: line.to_owned(),
                }),
        );
    }
    Ok(lines)
}

/// A job as the console's Jobs view lists it: the row, and its worker's state.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job: Job,
    /// `running`, `terminated`, ...; `None` without an instance, or when EC2 no longer
    /// lists it.
    pub instance_state: Option<String>,
}

/// What the Jobs view asks of the network; each request carries the view's sequence number.
#[derive(Debug, Clone, PartialEq)]
pub enum JobsRequest {
    List {
        seq: u64,
        stack: Option<String>,
    },
    /// A job's row and log lines.
    Detail {
        seq: u64,
        stack: Option<String>,
        job_id: String,
    },
    /// Submit `path` as a job's input (a `.zip` or `.tar` is an image batch; anything else
    /// an append-text job with `text`).
    Submit {
        stack: Option<String>,
        path: String,
        text: String,
    },
    Cancel {
        stack: Option<String>,
        job_id: String,
    },
}

/// The answer to a [`JobsRequest`].
#[derive(Debug)]
pub enum JobsUpdate {
    Listed {
        seq: u64,
        jobs: Result<Vec<JobRow>, String>,
    },
    Detail {
        seq: u64,
        detail: Result<(Job, Vec<JobLogLine>), String>,
    },
    Submitted(Result<Submitted, String>),
    Cancelled(Result<Cancelled, String>),
}

/// The kind of job a file makes: an archive is an image batch.
pub fn kind_for(path: &str, text: &str) -> JobKind {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".zip") || lower.ends_with(".tar") {
        JobKind::ImageBatch
    } else {
        JobKind::AppendText {
            text: text.to_owned(),
        }
    }
}

/// Does the network half of `request`.
pub async fn serve(
    clients: hybridlab_provision::stack::StackClients,
    request: JobsRequest,
) -> JobsUpdate {
    let text = |err: anyhow::Error| format!("{err:#}");
    let stack = match &request {
        JobsRequest::List { stack, .. }
        | JobsRequest::Detail { stack, .. }
        | JobsRequest::Submit { stack, .. }
        | JobsRequest::Cancel { stack, .. } => stack.clone(),
    };
    let lab = Lab::for_listed(clients, stack.as_deref()).await;
    match request {
        JobsRequest::List { seq, .. } => JobsUpdate::Listed {
            seq,
            jobs: async {
                let lab = lab?;
                let jobs = JobsApi::for_lab(&lab).await?.list().await?;
                let states = instance_states(&lab, &jobs).await?;
                Ok(jobs
                    .into_iter()
                    .map(|job| JobRow {
                        instance_state: job
                            .instance_id
                            .as_ref()
                            .and_then(|id| states.get(id).cloned()),
                        job,
                    })
                    .collect())
            }
            .await
            .map_err(text),
        },
        JobsRequest::Detail { seq, job_id, .. } => JobsUpdate::Detail {
            seq,
            detail: async {
                let lab = lab?;
                let job = JobsApi::for_lab(&lab).await?.get(&job_id).await?;
                let lines = job_logs(&lab, &job).await?;
                Ok((job, lines))
            }
            .await
            .map_err(text),
        },
        JobsRequest::Submit {
            path,
            text: appended,
            ..
        } => JobsUpdate::Submitted(
            async {
                let lab = lab?;
                let input = tokio::fs::read(&path)
                    .await
                    .with_context(|| format!("reading {path}"))?;
                JobsApi::for_lab(&lab)
                    .await?
                    .submit(&kind_for(&path, &appended), input)
                    .await
            }
            .await
            .map_err(text),
        ),
        JobsRequest::Cancel { job_id, .. } => {
            JobsUpdate::Cancelled(async { cancel(&lab?, &job_id).await }.await.map_err(text))
        }
    }
}

/// The state of each instance `jobs` name, as EC2 lists them now.
async fn instance_states(
    lab: &Lab,
    jobs: &[Job],
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let ids: Vec<String> = jobs.iter().filter_map(|j| j.instance_id.clone()).collect();
    let mut states = std::collections::HashMap::new();
    for chunk in ids.chunks(100) {
        let described = lab
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await;
        // An instance EC2 has forgotten makes the whole call fail: read them one by one then.
        let described = match described {
            Ok(described) => vec![described],
            Err(_) => {
                let mut each = Vec::new();
                for id in chunk {
                    if let Ok(one) = lab
                        .clients
                        .ec2
                        .describe_instances()
                        .instance_ids(id)
                        .send()
                        .await
                    {
                        each.push(one);
                    }
                }
                each
            }
        };
        for answer in described {
            for instance in answer.reservations().iter().flat_map(|r| r.instances()) {
                if let (Some(id), Some(state)) = (
                    instance.instance_id(),
                    instance.state().and_then(|s| s.name()),
                ) {
                    states.insert(id.to_owned(), state.as_str().to_owned());
                }
            }
        }
    }
    Ok(states)
}
