//! The stack as infrastructure as code: a Terraform module ([`terraform`]) and a
//! CloudFormation template ([`cloudformation`]), both rendered from the stack description
//! `up` follows, and `terraform` itself run with its progress as `up`'s events ([`runner`]).

pub mod cloudformation;
pub mod hcl;
pub mod runner;
pub mod terraform;

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

/// Where the built programs are put for the Terraform module: the server binary as is, each
/// function's `bootstrap` zipped as Lambda takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPrograms {
    pub server_binary: std::path::PathBuf,
    pub proxy_package: std::path::PathBuf,
    pub resizer_package: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot stage the programs in {path}: {reason}")]
pub struct StageError {
    pub path: std::path::PathBuf,
    pub reason: String,
}

/// Copies the server binary and zips the functions' bootstraps into `dir/build`.
pub fn stage_programs(
    artifacts: &crate::stack::artifacts::Artifacts,
    dir: &std::path::Path,
) -> Result<StagedPrograms, StageError> {
    let build = dir.join("build");
    let fail = |path: &std::path::Path, reason: String| StageError {
        path: path.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(&build).map_err(|err| fail(&build, err.to_string()))?;
    let server_binary = build.join("hybridlab-ec2-server");
    std::fs::copy(&artifacts.server_binary, &server_binary)
        .map_err(|err| fail(&server_binary, err.to_string()))?;
    let package = |binary: &std::path::Path, name: &str| {
        let path = build.join(name);
        let zip = hybridlab_wire::package::package_bootstrap(binary)
            .map_err(|err| fail(&path, err.to_string()))?;
        std::fs::write(&path, zip).map_err(|err| fail(&path, err.to_string()))?;
        Ok::<_, StageError>(path)
    };
    Ok(StagedPrograms {
        proxy_package: package(&artifacts.proxy_binary, "proxy.zip")?,
        resizer_package: artifacts
            .resizer_binary
            .as_deref()
            .map(|binary| package(binary, "resizer.zip"))
            .transpose()?,
        server_binary,
    })
}
