//! `hybridlab export terraform|cloudformation`: the stack `up` would create, written as a
//! Terraform module or a CloudFormation template. Files are written atomically (a temporary
//! file renamed into place) and never over existing ones unless `--force`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use hybridlab_provision::iac::{ExportFile, cloudformation, stage_programs, terraform};
use hybridlab_provision::stack::artifacts::{ArtifactSource, Variants, build};
use hybridlab_provision::stack::up::{ServerCertificate, new_token};
use hybridlab_provision::stack::{StackId, StackSettings};
use serde_json::json;

use super::StackShape;
use crate::lab::target::TargetChoice;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub format: ExportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// A Terraform module: main.tf, variables.tf, outputs.tf and a README.md in --out, and
    /// terraform.tfvars (private) with the server's new TLS certificate, its key and its
    /// fingerprint. The region is `--aws --region R`'s (default us-east-1).
    Terraform {
        /// The module's directory (made if missing).
        #[arg(long)]
        out: PathBuf,
        /// Build the programs for Amazon Linux 2023 (cargo-lambda) into DIR/build and write
        /// terraform.tfvars naming them.
        #[arg(long)]
        build: bool,
        /// Without the hashicorp/random provider (a plugin mirror that only has
        /// hashicorp/aws): the stack id and the token are variables, chosen now and written
        /// to terraform.tfvars.
        #[arg(long)]
        no_random: bool,
        #[command(flatten)]
        stack: ExportStack,
    },
    /// One CloudFormation template (JSON) with the same resources and outputs, and beside it
    /// (NAME.parameters.json, private) the parameters `aws cloudformation deploy` needs: the
    /// code bucket, a new token, the server's new TLS certificate, its key and fingerprint.
    Cloudformation {
        /// The template's file.
        #[arg(long)]
        out: PathBuf,
        /// The bucket you copy the programs to, written into the parameters file.
        #[arg(long, value_name = "BUCKET")]
        code_bucket: Option<String>,
        #[command(flatten)]
        stack: ExportStack,
    },
}

/// What the exported stack is made with, as for `up`.
#[derive(Debug, Args)]
pub struct ExportStack {
    #[command(flatten)]
    pub shape: StackShape,

    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ExportStack {
    fn settings(&self, target: &TargetChoice) -> anyhow::Result<StackSettings> {
        let region = target
            .region()
            .map(str::to_owned)
            .unwrap_or_else(|| hybridlab_wire::sandbox::DEFAULT_REGION.to_owned());
        Ok(self.shape.settings(region))
    }
}

/// Writes `text` to `path` through a temporary file beside it, so a reader never sees half
/// a file.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    write_file(path, text, false)
}

/// Writes `text` atomically and readable by its owner only, from the first byte:
/// terraform.tfvars and the template's parameters hold the server's TLS key and may hold the
/// stack's bearer token.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    write_file(path, text, true)
}

fn write_file(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let written = options.open(&temporary).and_then(|mut file| {
        // A temporary left by an earlier run keeps its old mode: set it again.
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(err).with_context(|| format!("cannot write {}", temporary.display()));
    }
    std::fs::rename(&temporary, path).with_context(|| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot move the new file to {}", path.display())
    })
}

/// Writes the module's files into `dir`, refusing to replace any unless `force`.
pub fn write_module(dir: &Path, files: &[ExportFile], force: bool) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let paths: Vec<PathBuf> = files.iter().map(|file| dir.join(file.name)).collect();
    if !force {
        let existing: Vec<String> = paths
            .iter()
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already exist{}; pass --force to replace {}",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" },
                if existing.len() == 1 { "it" } else { "them" }
            );
        }
    }
    for (file, path) in files.iter().zip(&paths) {
        write_atomically(path, &file.text)?;
    }
    Ok(paths)
}

pub async fn run(target: &TargetChoice, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (written, json, fingerprint) = match args.format {
        ExportFormat::Terraform {
            out,
            build,
            no_random,
            stack,
        } => {
            let settings = stack.settings(target)?;
            let identity = if no_random {
                terraform::Identity::Given
            } else {
                terraform::Identity::Random
            };
            let tfvars = out.join("terraform.tfvars");
            if tfvars.exists() && !stack.force {
                bail!(
                    "{} already exists; pass --force to replace it",
                    tfvars.display()
                );
            }
            let mut written =
                write_module(&out, &terraform::module(&settings, identity), stack.force)?;
            let token = new_token();
            let secrets = ServerCertificate::generate()?.values(&token);
            // Blank lines between the groups: `terraform fmt` aligns each group alone.
            let mut values = terraform::tls_tfvars(&secrets);
            if no_random {
                values.push('\n');
                values.push_str(&terraform::identity_tfvars(
                    StackId::generate().as_str(),
                    &token,
                ));
            }
            if build {
                values.push('\n');
                values.push_str(&build_programs(&out, Variants::of(&settings)).await?);
            }
            write_private(&tfvars, &values)?;
            written.push(tfvars);
            (written, stack.json, secrets.cert_sha256)
        }
        ExportFormat::Cloudformation {
            out,
            code_bucket,
            stack,
        } => {
            let settings = stack.settings(target)?;
            let parameters = parameters_path(&out)?;
            for path in [&out, &parameters] {
                if path.exists() && !stack.force {
                    bail!(
                        "{} already exists; pass --force to replace it",
                        path.display()
                    );
                }
            }
            if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let text = cloudformation::template_text(&settings, &StackId::generate());
            let secrets = ServerCertificate::generate()?.values(&new_token());
            write_private(
                &parameters,
                &cloudformation::parameters_text(code_bucket.as_deref(), &secrets),
            )?;
            write_atomically(&out, &text)?;
            (vec![out, parameters], stack.json, secrets.cert_sha256)
        }
    };
    if json {
        println!(
            "{}",
            json!({
                "type": "result",
                "ok": true,
                "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "server_certificate_sha256": fingerprint,
            })
        );
    } else {
        for path in &written {
            println!("wrote {}", path.display());
        }
        println!("the server's certificate: SHA-256 {fingerprint}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the parameters file of the template at `template` goes: `NAME.parameters.json`
/// beside `NAME.json` (or beside `NAME`, whatever its extension).
fn parameters_path(template: &Path) -> anyhow::Result<PathBuf> {
    let stem = template
        .file_stem()
        .with_context(|| format!("{} names no file", template.display()))?;
    Ok(template.with_file_name(format!("{}.parameters.json", stem.to_string_lossy())))
}

/// Builds the programs for Amazon Linux, stages them under `dir/build` and returns the
/// `terraform.tfvars` lines naming them.
async fn build_programs(dir: &Path, variants: Variants) -> anyhow::Result<String> {
    let dir_owned = dir.to_path_buf();
    let staged = tokio::task::spawn_blocking(move || {
        let artifacts = build(&ArtifactSource::AmazonLinux, variants, &mut |message| {
            eprintln!("{message}")
        })?;
        anyhow::Ok(stage_programs(&artifacts, &dir_owned)?)
    })
    .await
    .context("the build task failed")??;
    Ok(terraform::tfvars(&staged.absolute(), None))
}
