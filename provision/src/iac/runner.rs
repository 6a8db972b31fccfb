//! `terraform` run on an exported module: found on `PATH`, `init`, then `apply` or `destroy`
//! with `-json`, each line of Terraform's machine-readable progress turned into a
//! [`StepEvent`] so the command line shows it as it shows `up`'s own steps.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

use crate::stack::progress::{Reporter, StepEvent, StepStatus};

/// Where Terraform is described for someone who does not have it.
pub const INSTALL_URL: &str = "https://developer.hashicorp.com/terraform/install";

#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error(
        "terraform is not installed (not found on PATH); get it from {INSTALL_URL} or a package manager (e.g. `brew install hashicorp/tap/terraform`, HashiCorp's apt repository)"
    )]
    NotInstalled,
    #[error(
        "the AWS provider could not be installed: {0}; set up a plugin mirror (`provider_installation {{ filesystem_mirror {{ path = \"...\" }} }}` in ~/.terraformrc) or allow access to registry.terraform.io"
    )]
    Providers(String),
    #[error("`terraform {command}` failed: {detail}")]
    Failed { command: String, detail: String },
    #[error("cannot run terraform in {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// `terraform` on `PATH`, if there is one.
pub fn find_terraform() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("terraform"))
        .find(|candidate| candidate.is_file())
}

/// What Terraform's output says about why it failed: each `Error:` with the paragraph that
/// explains it, on one line (the boxes of a coloured terminal's output are dropped).
pub fn error_summary(output: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in output.lines() {
        let line = line.trim_start_matches(['│', '╷', '╵', ' ']).trim();
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    let errors: Vec<String> = paragraphs
        .iter()
        .enumerate()
        .filter_map(|(i, paragraph)| {
            let summary = paragraph.strip_prefix("Error: ")?;
            Some(match paragraphs.get(i + 1) {
                Some(detail) if !detail.starts_with("Error: ") => format!("{summary}: {detail}"),
                _ => summary.to_owned(),
            })
        })
        .collect();
    if errors.is_empty() {
        paragraphs
            .last()
            .cloned()
            .unwrap_or_else(|| "no output".to_owned())
    } else {
        errors.join("; ")
    }
}

/// True if `terraform init` failed because it could not get a provider.
pub fn is_provider_failure(output: &str) -> bool {
    [
        "Failed to query available provider packages",
        "Failed to install provider",
        "Failed to resolve provider packages",
        "could not connect to registry",
        "Incompatible provider version",
    ]
    .iter()
    .any(|marker| output.contains(marker))
}

/// The event one line of `terraform apply -json` (or `destroy -json`) stands for, if any.
/// Resources become steps named by their address; errors a failed `terraform` step.
pub fn event_of(line: &Value, stack: &str) -> Option<StepEvent> {
    let kind = line["type"].as_str()?;
    let hook = &line["hook"];
    let address = hook["resource"]["addr"].as_str().unwrap_or_default();
    let action = hook["action"].as_str().unwrap_or_default();
    let elapsed_ms = (hook["elapsed_seconds"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
    let event = |status, resource: &str, elapsed_ms, detail: String| StepEvent {
        stack: stack.to_owned(),
        step: address.to_owned(),
        resource: resource.to_owned(),
        status,
        elapsed_ms,
        detail,
    };
    match kind {
        "apply_start" => Some(event(StepStatus::Started, "", 0, action.to_owned())),
        "apply_complete" => {
            let id = hook["id_value"].as_str().unwrap_or_default();
            Some(event(
                StepStatus::Done,
                id,
                elapsed_ms,
                format!("{action}d"),
            ))
        }
        "apply_errored" => Some(event(
            StepStatus::Failed,
            "",
            elapsed_ms,
            format!("{action} failed"),
        )),
        "diagnostic" if line["@level"] == "error" => {
            let diagnostic = &line["diagnostic"];
            let address = diagnostic["address"].as_str().unwrap_or("terraform");
            Some(StepEvent {
                stack: stack.to_owned(),
                step: address.to_owned(),
                resource: String::new(),
                status: StepStatus::Failed,
                elapsed_ms: 0,
                detail: format!(
                    "{}: {}",
                    diagnostic["summary"].as_str().unwrap_or("error"),
                    diagnostic["detail"].as_str().unwrap_or_default()
                )
                .trim_end_matches([':', ' '])
                .to_owned(),
            })
        }
        _ => None,
    }
}

/// Terraform in one module directory, with extra environment (credentials for the sandbox).
#[derive(Debug, Clone)]
pub struct Terraform {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Terraform {
    /// Terraform in `dir`, or [`TerraformError::NotInstalled`].
    pub fn new(dir: &Path) -> Result<Self, TerraformError> {
        Ok(Self {
            binary: find_terraform().ok_or(TerraformError::NotInstalled)?,
            dir: dir.to_path_buf(),
            env: Vec::new(),
        })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn output(&self, args: &[&str]) -> Result<std::process::Output, TerraformError> {
        self.command(args)
            .output()
            .await
            .map_err(|source| TerraformError::Io {
                dir: self.dir.clone(),
                source,
            })
    }

    /// `terraform init`; a provider that cannot be installed is its own error.
    pub async fn init(&self) -> Result<(), TerraformError> {
        let output = self.output(&["init", "-input=false", "-no-color"]).await?;
        if output.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        if is_provider_failure(&text) {
            Err(TerraformError::Providers(error_summary(&text)))
        } else {
            Err(TerraformError::Failed {
                command: "init".into(),
                detail: error_summary(&text),
            })
        }
    }

    /// `terraform apply -auto-approve -json` with `vars`, its progress reported as events.
    pub async fn apply(
        &self,
        vars: &[(&str, &str)],
        stack: &str,
        reporter: &Reporter,
    ) -> Result<(), TerraformError> {
        self.stream("apply", vars, stack, reporter).await
    }

    /// `terraform destroy -auto-approve -json` with `vars`, its progress reported as events.
    pub async fn destroy(
        &self,
        vars: &[(&str, &str)],
        stack: &str,
        reporter: &Reporter,
    ) -> Result<(), TerraformError> {
        self.stream("destroy", vars, stack, reporter).await
    }

    async fn stream(
        &self,
        command: &str,
        vars: &[(&str, &str)],
        stack: &str,
        reporter: &Reporter,
    ) -> Result<(), TerraformError> {
        let mut args = vec![
            command.to_owned(),
            "-auto-approve".into(),
            "-input=false".into(),
            "-json".into(),
        ];
        args.extend(
            vars.iter()
                .map(|(key, value)| format!("-var={key}={value}")),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let io = |source| TerraformError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io)?;
        let mut errors = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await.map_err(io)? {
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(event) = event_of(&value, stack) {
                    if event.status == StepStatus::Failed && !event.detail.is_empty() {
                        errors.push(event.detail.clone());
                    }
                    reporter(event);
                }
            }
        }
        let output = child.wait_with_output().await.map_err(io)?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            errors.push(error_summary(&stderr));
        }
        Err(TerraformError::Failed {
            command: command.to_owned(),
            detail: if errors.is_empty() {
                output.status.to_string()
            } else {
                errors.join("; ")
            },
        })
    }

    /// `terraform output -json`: each output's value.
    pub async fn outputs(&self) -> Result<serde_json::Map<String, Value>, TerraformError> {
        let output = self.output(&["output", "-json"]).await?;
        let detail = |text: String| TerraformError::Failed {
            command: "output".into(),
            detail: text,
        };
        if !output.status.success() {
            return Err(detail(error_summary(&String::from_utf8_lossy(
                &output.stderr,
            ))));
        }
        let all: serde_json::Map<String, Value> = serde_json::from_slice(&output.stdout)
            .map_err(|err| detail(format!("unreadable JSON: {err}")))?;
        Ok(all
            .into_iter()
            .map(|(name, output)| (name, output["value"].clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_lines_become_step_events() {
        let start = json!({"@level": "info", "type": "apply_start", "hook": {
            "resource": {"addr": "aws_s3_bucket.images"}, "action": "create"}});
        let event = event_of(&start, "ab12cd34").expect("an event");
        assert_eq!(event.step, "aws_s3_bucket.images");
        assert_eq!(event.status, StepStatus::Started);
        let done = json!({"type": "apply_complete", "hook": {
            "resource": {"addr": "aws_s3_bucket.images"}, "action": "create",
            "id_key": "id", "id_value": "hybridlab-images-ab12cd34", "elapsed_seconds": 2}});
        let event = event_of(&done, "ab12cd34").expect("an event");
        assert_eq!(
            (
                event.status,
                event.resource.as_str(),
                event.elapsed_ms,
                event.detail.as_str()
            ),
            (
                StepStatus::Done,
                "hybridlab-images-ab12cd34",
                2000,
                "created"
            )
        );
        let errored = json!({"type": "apply_errored", "hook": {
            "resource": {"addr": "aws_instance.server"}, "action": "create", "elapsed_seconds": 1}});
        assert_eq!(
            event_of(&errored, "s").map(|e| e.status),
            Some(StepStatus::Failed)
        );
        let diagnostic = json!({"@level": "error", "type": "diagnostic", "diagnostic": {
            "severity": "error", "summary": "creating S3 Bucket", "detail": "AccessDenied",
            "address": "aws_s3_bucket.images"}});
        let event = event_of(&diagnostic, "s").expect("an event");
        assert_eq!(event.detail, "creating S3 Bucket: AccessDenied");
        assert_eq!(event_of(&json!({"type": "version"}), "s"), None);
        assert_eq!(event_of(&json!({"type": "change_summary"}), "s"), None);
    }

    #[test]
    fn init_errors_are_summarised_and_provider_failures_recognised() {
        // As `terraform init -no-color` prints it, and as a terminal shows it (boxed).
        let plain = "- Finding hashicorp/aws versions matching \">= 5.0.0\"...\n\n\
            Error: Failed to query available provider packages\n\n\
            Could not retrieve the list of available versions for provider hashicorp/aws:\n\
            could not connect to registry.terraform.io: no such host\n\n\
            To see which modules are currently depending on hashicorp/aws, run:\n    terraform providers\n";
        let boxed = "- Finding hashicorp/aws versions matching \">= 5.0.0\"...\n\n\
            ╷\n│ Error: Failed to query available provider packages\n│ \n\
            │ Could not retrieve the list of available versions for provider hashicorp/aws:\n\
            │ could not connect to registry.terraform.io: no such host\n╵\n";
        for output in [plain, boxed] {
            assert!(is_provider_failure(output));
            assert_eq!(
                error_summary(output),
                "Failed to query available provider packages: Could not retrieve the list of \
                 available versions for provider hashicorp/aws: could not connect to \
                 registry.terraform.io: no such host"
            );
        }
        assert!(!is_provider_failure("Error: Invalid reference"));
    }
}
