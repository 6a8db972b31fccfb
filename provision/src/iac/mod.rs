//! The stack as infrastructure as code: a Terraform module ([`terraform`]) and a
//! CloudFormation template ([`cloudformation`]), both rendered from the stack description
//! `up` follows, and `terraform` itself run with its progress as `up`'s events ([`runner`]).

pub mod cloudformation;
pub mod hcl;
pub mod runner;
pub mod terraform;

use std::path::{Path, PathBuf};

/// One file of an export: its name (relative to the export's directory) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub name: &'static str,
    pub text: String,
}

impl ExportFile {
    pub fn new(name: &'static str, text: String) -> Self {
        Self { name, text }
    }
}

/// What every export says about where it comes from.
fn resources_note() -> &'static str {
    "the Terraform module, the CloudFormation template and `hybridlab up`\n# declare the same resources (one stack description in hybridlab's provision crate)."
}

#[cfg(test)]
mod tests;

/// Where the built programs are put for the Terraform module: the binaries as they are,
/// each function's `bootstrap` zipped as Lambda takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPrograms {
    pub server_binary: PathBuf,
    pub proxy_package: PathBuf,
    pub resizer_package: Option<PathBuf>,
    pub jobs: Option<StagedJobPrograms>,
}

/// The job-worker variant's staged programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedJobPrograms {
    pub worker_binary: PathBuf,
    pub submit_package: PathBuf,
    pub launcher_package: PathBuf,
}

impl StagedPrograms {
    /// The same paths made absolute, for a `terraform.tfvars` read from another directory.
    pub fn absolute(self) -> Self {
        let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
        Self {
            server_binary: absolute(self.server_binary),
            proxy_package: absolute(self.proxy_package),
            resizer_package: self.resizer_package.map(absolute),
            jobs: self.jobs.map(|jobs| StagedJobPrograms {
                worker_binary: absolute(jobs.worker_binary),
                submit_package: absolute(jobs.submit_package),
                launcher_package: absolute(jobs.launcher_package),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot stage the programs in {path}: {reason}")]
pub struct StageError {
    pub path: PathBuf,
    pub reason: String,
}

/// Copies the binaries and zips the functions' bootstraps into `dir/build`.
pub fn stage_programs(
    artifacts: &crate::stack::artifacts::Artifacts,
    dir: &Path,
) -> Result<StagedPrograms, StageError> {
    let build = dir.join("build");
    let fail = |path: &Path, reason: String| StageError {
        path: path.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(&build).map_err(|err| fail(&build, err.to_string()))?;
    let copy = |binary: &Path, name: &str| {
        let path = build.join(name);
        std::fs::copy(binary, &path).map_err(|err| fail(&path, err.to_string()))?;
        Ok::<_, StageError>(path)
    };
    let package = |binary: &Path, name: &str| {
        let path = build.join(name);
        let zip = hybridlab_wire::package::package_bootstrap(binary)
            .map_err(|err| fail(&path, err.to_string()))?;
        std::fs::write(&path, zip).map_err(|err| fail(&path, err.to_string()))?;
        Ok::<_, StageError>(path)
    };
    Ok(StagedPrograms {
        server_binary: copy(&artifacts.server_binary, "hybridlab-ec2-server")?,
        proxy_package: package(&artifacts.proxy_binary, "proxy.zip")?,
        resizer_package: artifacts
            .resizer_binary
            .as_deref()
            .map(|binary| package(binary, "resizer.zip"))
            .transpose()?,
        jobs: artifacts
            .jobs
            .as_ref()
            .map(|jobs| {
                Ok::<_, StageError>(StagedJobPrograms {
                    worker_binary: copy(&jobs.worker, "hybridlab-worker")?,
                    submit_package: package(&jobs.submit, "submit.zip")?,
                    launcher_package: package(&jobs.launcher, "launcher.zip")?,
                })
            })
            .transpose()?,
    })
}
