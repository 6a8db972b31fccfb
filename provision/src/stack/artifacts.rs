//! The programs a stack deploys: the image server, the proxy function's `bootstrap`, with the
//! pipeline the resizer function's, and with the jobs the worker and the submit and launcher
//! functions'.
//! For the sandbox a plain host build does; for AWS, cargo-lambda builds them against an old
//! glibc so they run on Amazon Linux 2023. Both are built from this workspace's sources with
//! cargo, so a deployed stack always runs the code of the checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use hybridlab_tools::{ToolError, ensure_cargo_lambda};

/// How to get the binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactSource {
    /// Build for this machine (the sandbox runs them here).
    Host,
    /// Build for Amazon Linux 2023 x86_64 with cargo-lambda.
    AmazonLinux,
    /// Use binaries that already exist.
    Prebuilt {
        server: PathBuf,
        proxy: PathBuf,
        /// Needed only by a stack with the pipeline.
        resizer: Option<PathBuf>,
        /// Needed only by a stack with the job-worker variant.
        jobs: Option<JobPrograms>,
    },
}

/// Which of the optional programs a stack needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variants {
    /// The resizer (`--with pipeline`).
    pub resizer: bool,
    /// The submit and launcher functions and the worker (`--with jobs`).
    pub jobs: bool,
}

impl Variants {
    /// The programs a stack with `settings` runs.
    pub fn of(settings: &crate::stack::plan::StackSettings) -> Self {
        Self {
            resizer: settings.pipeline,
            jobs: settings.jobs,
        }
    }
}

/// The job-worker variant's programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPrograms {
    /// `hybridlab-worker`, run on each job's instance.
    pub worker: PathBuf,
    /// The submit function's `bootstrap`.
    pub submit: PathBuf,
    /// The launcher function's `bootstrap`.
    pub launcher: PathBuf,
}

/// Paths of the built programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    pub server_binary: PathBuf,
    pub proxy_binary: PathBuf,
    /// Built only when the stack has the pipeline.
    pub resizer_binary: Option<PathBuf>,
    /// Built only when the stack has the job-worker variant.
    pub jobs: Option<JobPrograms>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "cannot find the hybridlab sources to build from (looked at and above {0}); run from the checkout, set HYBRIDLAB_SOURCE_DIR to it, or set HYBRIDLAB_SERVER_BIN and HYBRIDLAB_PROXY_BIN to prebuilt binaries"
    )]
    NoWorkspace(PathBuf),
    #[error("`{command}` failed ({status}):\n{output}")]
    Build {
        command: String,
        status: String,
        output: String,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("the build did not produce {0}")]
    Missing(PathBuf),
    #[error(
        "the pipeline needs the resizer function: set HYBRIDLAB_RESIZER_BIN beside HYBRIDLAB_SERVER_BIN and HYBRIDLAB_PROXY_BIN, or unset them to build from the sources"
    )]
    NoResizer,
    #[error(
        "the jobs variant needs the worker and the submit and launcher functions: set HYBRIDLAB_WORKER_BIN, HYBRIDLAB_SUBMIT_BIN and HYBRIDLAB_LAUNCHER_BIN beside HYBRIDLAB_SERVER_BIN and HYBRIDLAB_PROXY_BIN, or unset them to build from the sources"
    )]
    NoJobPrograms,
    #[error(transparent)]
    Tools(#[from] ToolError),
}

const SERVER: (&str, &str) = ("hybridlab-ec2-server", "hybridlab-ec2-server");
const PROXY: (&str, &str) = ("hybridlab-lambda", "proxy");
const RESIZER: (&str, &str) = ("hybridlab-lambda", "resizer");
const WORKER: (&str, &str) = ("hybridlab-worker", "hybridlab-worker");
const SUBMIT: (&str, &str) = ("hybridlab-lambda", "submit");
const LAUNCHER: (&str, &str) = ("hybridlab-lambda", "launcher");
/// The resizer's dependencies (the SDK, the image code) sit behind this feature, so the proxy
/// is built without them; the jobs functions' (the SDK for EC2) behind the other.
const RESIZER_FEATURE: &str = "hybridlab-lambda/resizer";
const JOBS_FEATURE: &str = "hybridlab-lambda/jobs";

/// Where the sources to build from are. Places known at run time come first: the compiled-in
/// manifest directory is only a last resort, because a target directory shared between two
/// checkouts (CI keeps one under the home cache) hands out binaries that name whichever
/// checkout compiled them last, and building from that one would deploy someone else's code.
fn workspace_root() -> Result<PathBuf, ArtifactError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("HYBRIDLAB_SOURCE_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    // Cargo sets it for `cargo run` and `cargo test`, and what they start inherits it.
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::current_dir() {
        candidates.push(dir);
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    find_workspace(&candidates).ok_or_else(|| {
        ArtifactError::NoWorkspace(
            candidates
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
                .into(),
        )
    })
}

/// The first hybridlab workspace found at or above one of `candidates`, in their order.
fn find_workspace(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find_map(|start| {
        start
            .ancestors()
            .find(|dir| is_workspace(dir))
            .map(Path::to_path_buf)
    })
}

fn is_workspace(dir: &Path) -> bool {
    dir.join("ec2-server").join("Cargo.toml").is_file()
        && dir.join("lambda").join("Cargo.toml").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|manifest| manifest.contains("[workspace]"))
}

/// The target directory and profile of the running executable (`<target>/<profile>/name` or
/// `<target>/<profile>/deps/name` for a test), so the build reuses what is already compiled.
fn own_target() -> Option<(PathBuf, String)> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.file_name()? == "deps" {
        dir = dir.parent()?;
    }
    let profile = dir.file_name()?.to_str()?.to_owned();
    let target = dir.parent()?;
    target
        .join("CACHEDIR.TAG")
        .exists()
        .then(|| (target.to_path_buf(), profile))
}

fn run(command: &mut Command) -> Result<(), ArtifactError> {
    let rendered = format!("{command:?}");
    let output = command.output().map_err(|source| ArtifactError::Spawn {
        command: rendered.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    Err(ArtifactError::Build {
        command: rendered,
        status: output.status.to_string(),
        output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

fn existing(path: PathBuf) -> Result<PathBuf, ArtifactError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(ArtifactError::Missing(path))
    }
}

/// Builds (or finds) the server and the functions, with the optional programs `variants`
/// asks for, telling `progress` what it does. Blocks.
pub fn build(
    source: &ArtifactSource,
    variants: Variants,
    progress: &mut dyn FnMut(&str),
) -> Result<Artifacts, ArtifactError> {
    match source {
        ArtifactSource::Prebuilt {
            server,
            proxy,
            resizer,
            jobs,
        } => Ok(Artifacts {
            server_binary: existing(server.clone())?,
            proxy_binary: existing(proxy.clone())?,
            resizer_binary: match (variants.resizer, resizer) {
                (false, _) => None,
                (true, Some(resizer)) => Some(existing(resizer.clone())?),
                (true, None) => return Err(ArtifactError::NoResizer),
            },
            jobs: match (variants.jobs, jobs) {
                (false, _) => None,
                (true, Some(jobs)) => Some(JobPrograms {
                    worker: existing(jobs.worker.clone())?,
                    submit: existing(jobs.submit.clone())?,
                    launcher: existing(jobs.launcher.clone())?,
                }),
                (true, None) => return Err(ArtifactError::NoJobPrograms),
            },
        }),
        ArtifactSource::Host => {
            if let (Some(server), Some(proxy)) = (
                std::env::var_os("HYBRIDLAB_SERVER_BIN"),
                std::env::var_os("HYBRIDLAB_PROXY_BIN"),
            ) {
                let var = |name| std::env::var_os(name).map(PathBuf::from);
                let jobs = match (
                    var("HYBRIDLAB_WORKER_BIN"),
                    var("HYBRIDLAB_SUBMIT_BIN"),
                    var("HYBRIDLAB_LAUNCHER_BIN"),
                ) {
                    (Some(worker), Some(submit), Some(launcher)) => Some(JobPrograms {
                        worker,
                        submit,
                        launcher,
                    }),
                    _ => None,
                };
                let prebuilt = ArtifactSource::Prebuilt {
                    server: server.into(),
                    proxy: proxy.into(),
                    resizer: var("HYBRIDLAB_RESIZER_BIN"),
                    jobs,
                };
                return build(&prebuilt, variants, progress);
            }
            let root = workspace_root()?;
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command.current_dir(&root).args([
                "build", "--quiet", "-p", SERVER.0, "--bin", SERVER.1, "-p", PROXY.0, "--bin",
                PROXY.1,
            ]);
            let mut features = Vec::new();
            if variants.resizer {
                command.args(["--bin", RESIZER.1]);
                features.push(RESIZER_FEATURE);
            }
            if variants.jobs {
                command.args([
                    "--bin", SUBMIT.1, "--bin", LAUNCHER.1, "-p", WORKER.0, "--bin", WORKER.1,
                ]);
                features.push(JOBS_FEATURE);
            }
            if !features.is_empty() {
                command.args(["--features", &features.join(",")]);
            }
            let (target, profile) = match own_target() {
                Some((target, profile)) => {
                    command.env("CARGO_TARGET_DIR", &target);
                    (target, profile)
                }
                None => (root.join("target"), "debug".to_owned()),
            };
            if profile == "release" {
                command.arg("--release");
            }
            progress(&format!(
                "building the image server and the {} for this machine (cargo build)...",
                function_list(variants)
            ));
            run(&mut command)?;
            let dir = target.join(&profile);
            Ok(Artifacts {
                server_binary: existing(dir.join(SERVER.1))?,
                proxy_binary: existing(dir.join(PROXY.1))?,
                resizer_binary: variants
                    .resizer
                    .then(|| existing(dir.join(RESIZER.1)))
                    .transpose()?,
                jobs: variants
                    .jobs
                    .then(|| {
                        Ok::<_, ArtifactError>(JobPrograms {
                            worker: existing(dir.join(WORKER.1))?,
                            submit: existing(dir.join(SUBMIT.1))?,
                            launcher: existing(dir.join(LAUNCHER.1))?,
                        })
                    })
                    .transpose()?,
            })
        }
        ArtifactSource::AmazonLinux => {
            let root = workspace_root()?;
            let tools = ensure_cargo_lambda(progress)?;
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![tools];
            paths.extend(std::env::split_paths(&path));
            let path = std::env::join_paths(paths).unwrap_or(path);
            let target = root.join("target");
            let mut programs = vec![(SERVER, None), (PROXY, None)];
            if variants.resizer {
                programs.push((RESIZER, Some(RESIZER_FEATURE)));
            }
            if variants.jobs {
                programs.extend([
                    (WORKER, None),
                    (SUBMIT, Some(JOBS_FEATURE)),
                    (LAUNCHER, Some(JOBS_FEATURE)),
                ]);
            }
            for ((package, bin), feature) in programs {
                progress(&format!(
                    "building {bin} for Amazon Linux 2023 x86_64 (cargo lambda build --release; minutes on a first build)..."
                ));
                let mut command = Command::new("cargo");
                command
                    .current_dir(&root)
                    .env("PATH", &path)
                    .env("CARGO_TARGET_DIR", &target)
                    // Without symbols the proxy's package is 2.5 MB instead of 13 (measured):
                    // less to upload and to load at each cold start.
                    .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
                    .args([
                        "lambda",
                        "build",
                        "--release",
                        "--quiet",
                        "--target",
                        "x86_64-unknown-linux-gnu",
                        "-p",
                        package,
                        "--bin",
                        bin,
                    ]);
                if let Some(feature) = feature {
                    command.args(["--features", feature]);
                }
                run(&mut command)?;
            }
            let built = |bin: &str| existing(target.join("lambda").join(bin).join("bootstrap"));
            Ok(Artifacts {
                server_binary: built(SERVER.1)?,
                proxy_binary: built(PROXY.1)?,
                resizer_binary: variants.resizer.then(|| built(RESIZER.1)).transpose()?,
                jobs: variants
                    .jobs
                    .then(|| {
                        Ok::<_, ArtifactError>(JobPrograms {
                            worker: built(WORKER.1)?,
                            submit: built(SUBMIT.1)?,
                            launcher: built(LAUNCHER.1)?,
                        })
                    })
                    .transpose()?,
            })
        }
    }
}

/// The functions a build makes, for its progress message.
fn function_list(variants: Variants) -> String {
    let mut functions = vec!["proxy"];
    if variants.resizer {
        functions.push("resizer");
    }
    if variants.jobs {
        functions.extend(["submit", "launcher"]);
    }
    let list = match functions.split_last() {
        Some((last, [])) => format!("{last} function"),
        Some((last, rest)) => format!("{} and {last} functions", rest.join(", ")),
        None => String::new(),
    };
    if variants.jobs {
        format!("{list} and the job worker")
    } else {
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_candidate_inside_a_workspace_wins() {
        let base = std::env::temp_dir().join(format!("hybridlab-ws-{}", uuid::Uuid::new_v4()));
        let make = |name: &str| {
            let root = base.join(name);
            for member in ["ec2-server", "lambda"] {
                std::fs::create_dir_all(root.join(member)).expect("dir");
                std::fs::write(root.join(member).join("Cargo.toml"), "[package]").expect("write");
            }
            std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").expect("write");
            root
        };
        let (current, stale) = (make("current"), make("stale"));
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("dir");
        let nested = current.join("tests").join("src");
        std::fs::create_dir_all(&nested).expect("dir");

        assert_eq!(
            find_workspace(&[elsewhere.clone(), nested, stale.clone()]),
            Some(current.clone()),
            "a directory inside a checkout finds its root, before a later candidate"
        );
        assert_eq!(find_workspace(&[stale.clone(), current]), Some(stale));
        assert_eq!(find_workspace(&[elsewhere]), None);

        // A member's manifest alone is not a workspace.
        let member_only = base.join("member");
        std::fs::create_dir_all(member_only.join("ec2-server")).expect("dir");
        std::fs::write(member_only.join("Cargo.toml"), "[package]").expect("write");
        assert!(!is_workspace(&member_only));
        let _ = std::fs::remove_dir_all(&base);
    }
}
