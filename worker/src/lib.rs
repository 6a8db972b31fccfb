//! The job worker: the program a job's instance runs once (its user-data fetches and starts
//! it), which moves its job to RUNNING, beats while it works, and ends it SUCCEEDED or FAILED.
//! This library is the plain part (the settings and the jobs themselves, `append-text` here and
//! `image-batch` in [`batch`]); `main.rs` talks to AWS.

pub mod batch;

use hybridlab_wire::job::JobKind;
use hybridlab_wire::launch::worker_env;

/// Why the worker cannot start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{0} is not set: the user-data sets it")]
    Missing(&'static str),
    #[error("{name} is not {what}: {value:?}")]
    Invalid {
        name: &'static str,
        what: &'static str,
        value: String,
    },
}

/// What the user-data tells the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub job_id: String,
    pub table: String,
    pub bucket: String,
    pub heartbeat_seconds: u64,
}

impl Settings {
    /// From the environment, as `lookup` reads it.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.is_empty())
                .ok_or(SettingsError::Missing(name))
        };
        let job_id = required(worker_env::JOB_ID)?;
        if !hybridlab_wire::job::is_job_id(&job_id) {
            return Err(SettingsError::Invalid {
                name: worker_env::JOB_ID,
                what: "a job id",
                value: job_id,
            });
        }
        let heartbeat = lookup(worker_env::HEARTBEAT_SECONDS).unwrap_or_else(|| "15".into());
        let heartbeat_seconds = heartbeat
            .parse::<u64>()
            .ok()
            .filter(|seconds| (1..=3600).contains(seconds))
            .ok_or(SettingsError::Invalid {
                name: worker_env::HEARTBEAT_SECONDS,
                what: "a number of seconds from 1 to 3600",
                value: heartbeat,
            })?;
        Ok(Self {
            job_id,
            table: required(worker_env::JOBS_TABLE)?,
            bucket: required(worker_env::JOBS_BUCKET)?,
            heartbeat_seconds,
        })
    }
}

pub use hybridlab_wire::job::MAX_INPUT_BYTES;

/// Why a job failed, as its row's `error` says.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JobError {
    #[error("the input is {0} bytes; a job reads at most {MAX_INPUT_BYTES}")]
    InputTooLarge(u64),
    #[error("the archive cannot be read: {0}")]
    BadArchive(String),
    #[error("the input is {size} bytes, not the {declared} its submit declared")]
    NotTheDeclaredSize { size: u64, declared: u64 },
}

/// One output of a job: its name under the job's output prefix, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// Named in the job's row. A batch's variants are named in its manifest instead: a row
    /// naming thousands would pass DynamoDB's 400 KB item limit.
    pub listed: bool,
}

/// Runs `kind` on `input`.
pub fn run(kind: &JobKind, input: &[u8]) -> Result<Vec<Output>, JobError> {
    match kind {
        JobKind::AppendText { text } => Ok(vec![Output {
            name: "output.txt".into(),
            content_type: "text/plain; charset=utf-8",
            bytes: append_text(input, text),
            listed: true,
        }]),
        JobKind::ImageBatch => batch::image_batch(input),
    }
}

/// The input with `text` appended on a line of its own.
pub fn append_text(input: &[u8], text: &str) -> Vec<u8> {
    let mut output = input.to_vec();
    if !output.is_empty() && !output.ends_with(b"\n") {
        output.push(b'\n');
    }
    output.extend_from_slice(text.as_bytes());
    output.push(b'\n');
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_appended_on_a_line_of_its_own() {
        assert_eq!(append_text(b"one\n", "two"), b"one\ntwo\n");
        assert_eq!(append_text(b"one", "two"), b"one\ntwo\n");
        assert_eq!(append_text(b"", "two"), b"two\n");
        let outputs = run(&JobKind::AppendText { text: "x".into() }, b"a").expect("runs");
        assert_eq!(outputs[0].name, "output.txt");
        assert!(matches!(
            run(&JobKind::ImageBatch, b""),
            Err(JobError::BadArchive(_))
        ));
    }

    #[test]
    fn settings_come_from_the_user_data_and_are_checked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let settings = Settings::from_env(env(&[
            (worker_env::JOB_ID, "j-0123456789abcdef"),
            (worker_env::JOBS_TABLE, "t"),
            (worker_env::JOBS_BUCKET, "b"),
        ]))
        .expect("valid");
        assert_eq!(settings.heartbeat_seconds, 15);
        assert_eq!(
            Settings::from_env(env(&[(worker_env::JOB_ID, "../x")])),
            Err(SettingsError::Invalid {
                name: worker_env::JOB_ID,
                what: "a job id",
                value: "../x".into()
            })
        );
        assert_eq!(
            Settings::from_env(env(&[])),
            Err(SettingsError::Missing(worker_env::JOB_ID))
        );
        assert!(
            Settings::from_env(env(&[
                (worker_env::JOB_ID, "j-0123456789abcdef"),
                (worker_env::JOBS_TABLE, "t"),
                (worker_env::JOBS_BUCKET, "b"),
                (worker_env::HEARTBEAT_SECONDS, "0"),
            ]))
            .is_err()
        );
    }
}
