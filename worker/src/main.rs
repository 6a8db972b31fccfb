//! `hybridlab-worker`: runs the job its user-data names on the instance started for it, then
//! exits; the user-data then powers the instance off, which terminates it. Its credentials
//! and region come from the instance (IMDS), as every program's on EC2.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hybridlab_wire::job::{self, Job, JobStatus};
use hybridlab_wire::job_item::{self, Change};
use hybridlab_wire::transition::ConditionalUpdate;
use hybridlab_worker::{MAX_INPUT_BYTES, Settings};

/// How long the worker waits for the launcher to attach its instance to the job: the
/// launcher does so right after `RunInstances` answers, which can be after this starts.
const ATTACH_PATIENCE: Duration = Duration::from_secs(120);

/// How long the worker waits for its job's input: the client uploads it after submitting.
const INPUT_PATIENCE: Duration = Duration::from_secs(300);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hybridlab-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

struct Aws {
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    settings: Settings,
}

impl Aws {
    async fn job(&self) -> Result<Job> {
        let item = job_item::get_job(&self.dynamodb, &self.settings.table, &self.settings.job_id)
            .send()
            .await
            .context("reading the job's row")?
            .item
            .with_context(|| format!("job {} has no row", self.settings.job_id))?;
        job_item::from_item(&item).context("reading the job's row")
    }

    /// Applies `update` to the job's row; `Ok(false)` when its condition failed.
    async fn update(&self, update: ConditionalUpdate) -> Result<bool> {
        job_item::apply(
            &self.dynamodb,
            &self.settings.table,
            &self.settings.job_id,
            update,
        )
        .await
        .context("updating the job's row")
    }
}

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn run() -> Result<()> {
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let instance_id = aws_config::imds::Client::builder()
        .build()
        .get("/latest/meta-data/instance-id")
        .await
        .context("asking the instance's metadata service for its id")?
        .as_ref()
        .to_owned();
    let aws = Aws {
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        // A custom endpoint (the sandbox's edge) serves buckets by path, not by host.
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(config.endpoint_url().is_some())
                .build(),
        ),
        settings,
    };
    println!(
        "hybridlab-worker: job {} on {instance_id}",
        aws.settings.job_id
    );

    // LAUNCHING to RUNNING, once the launcher has attached this instance.
    let deadline = tokio::time::Instant::now() + ATTACH_PATIENCE;
    let job = loop {
        let job = aws.job().await?;
        match job.status {
            JobStatus::Launching => {
                let running = Change::Running {
                    instance_id: &instance_id,
                    now: now_epoch(),
                };
                let at = hybridlab_wire::now_rfc3339();
                if aws
                    .update(job_item::transition(
                        &running,
                        &at,
                        &format!("worker {instance_id} started"),
                    ))
                    .await?
                {
                    break job;
                }
            }
            status if status.is_final() => {
                println!(
                    "hybridlab-worker: job {} is {status}: nothing to do",
                    job.job_id
                );
                return Ok(());
            }
            status => bail!("job {} is {status}, not LAUNCHING", job.job_id),
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the launcher never attached {instance_id} to job {}",
                job.job_id
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // The job, with a heartbeat beside it; a failed beat (the job was cancelled or failed
    // meanwhile) stops the work.
    let beat = Duration::from_secs(aws.settings.heartbeat_seconds);
    let work = work(&aws, &job);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = tokio::time::sleep(beat) => {
                if !aws.update(job_item::heartbeat(&instance_id, now_epoch())).await? {
                    bail!("job {} is no longer RUNNING on {instance_id}: stopping", job.job_id);
                }
            }
        }
    };
    let at = hybridlab_wire::now_rfc3339();
    match outcome {
        Ok(outputs) => {
            let done = Change::Succeeded { outputs: &outputs };
            if !aws
                .update(job_item::transition(&done, &at, "outputs written"))
                .await?
            {
                bail!(
                    "job {} could not be marked SUCCEEDED: it was no longer RUNNING",
                    job.job_id
                );
            }
            println!(
                "hybridlab-worker: job {} SUCCEEDED: {}",
                job.job_id,
                outputs.join(", ")
            );
            Ok(())
        }
        Err(err) => {
            let error = format!("{err:#}");
            aws.update(job_item::transition(
                &Change::Failed { error: &error },
                &at,
                "the worker failed",
            ))
            .await?;
            bail!("job {} FAILED: {error}", job.job_id)
        }
    }
}

/// Reads the input, runs the job, writes its outputs; returns their keys.
async fn work(aws: &Aws, job: &Job) -> Result<Vec<String>> {
    let input_key = job::input_key(&job.job_id);
    // The job is written before its client uploads the input: wait for it. A missing key
    // reads as 403 to a role without s3:ListBucket, as S3 answers it, so both are waited on.
    let deadline = tokio::time::Instant::now() + INPUT_PATIENCE;
    let input = loop {
        match aws
            .s3
            .get_object()
            .bucket(&aws.settings.bucket)
            .key(&input_key)
            .send()
            .await
        {
            Ok(input) => break input,
            Err(err) => {
                let missing = err
                    .raw_response()
                    .is_some_and(|response| matches!(response.status().as_u16(), 403 | 404));
                if !missing || tokio::time::Instant::now() > deadline {
                    return Err(anyhow::Error::new(err).context(format!(
                        "the input s3://{}/{input_key} never arrived, or this worker may not read it",
                        aws.settings.bucket
                    )));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let size = input.content_length().unwrap_or(0).max(0) as u64;
    if size > MAX_INPUT_BYTES {
        return Err(hybridlab_worker::JobError::InputTooLarge(size).into());
    }
    // S3 refuses an upload of another size through the signed URL; the size is checked here
    // too, before a byte is read, whatever put the object there.
    if let Some(declared) = job.input_bytes
        && declared != size
    {
        return Err(hybridlab_worker::JobError::NotTheDeclaredSize { size, declared }.into());
    }
    let input = input
        .body
        .collect()
        .await
        .context("reading the input's bytes")?
        .into_bytes();
    let outputs = hybridlab_worker::run(&job.kind, &input)?;
    let mut keys = Vec::new();
    for output in outputs {
        let key = job::output_key(&job.job_id, &output.name);
        aws.s3
            .put_object()
            .bucket(&aws.settings.bucket)
            .key(&key)
            .content_type(output.content_type)
            .body(output.bytes.into())
            .send()
            .await
            .with_context(|| format!("writing the output s3://{}/{key}", aws.settings.bucket))?;
        if output.listed {
            keys.push(key);
        }
    }
    Ok(keys)
}
