//! Where hybridlab keeps what it installs and remembers, and the Python tools it installs
//! there on first use (a virtualenv under the cache directory holding `moto[server]`, the AWS
//! CLI, cfn-lint and cargo-lambda), so no set-up step is ever done by hand.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The moto release line hybridlab is written against (server mode, no Docker).
pub const MOTO_REQUIREMENT: &str = "moto[server]>=5.1,<5.3";

/// `$HYBRIDLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/hybridlab`, else `~/.cache/hybridlab`, else a
/// directory under the system's temporary directory (a user with no home still gets one).
/// `imaging/turbojpeg/build.rs` repeats this rule (a build script cannot depend on this
/// crate); change both together.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("HYBRIDLAB_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty_env("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("hybridlab");
    }
    if let Some(home) = non_empty_env("HOME") {
        return PathBuf::from(home).join(".cache").join("hybridlab");
    }
    std::env::temp_dir().join("hybridlab-cache")
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Why a tool could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot use the cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot run `{command}`: {source}; hybridlab needs Python 3 (set HYBRIDLAB_PYTHON to its path)"
    )]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Install {
        command: String,
        status: String,
        output: String,
    },
}

/// A Python with moto installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MotoInstall {
    pub python: PathBuf,
    pub venv: PathBuf,
}

/// The virtualenv hybridlab installs moto into.
pub fn venv_dir() -> PathBuf {
    cache_dir().join("moto-venv")
}

fn base_python() -> String {
    std::env::var("HYBRIDLAB_PYTHON")
        .ok()
        .filter(|python| !python.is_empty())
        .unwrap_or_else(|| "python3".to_owned())
}

fn run(command: &mut Command) -> Result<(), ToolError> {
    let rendered = format!("{command:?}");
    let output = command.output().map_err(|source| ToolError::Spawn {
        command: rendered.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    // The end of pip's output is where the reason is.
    let tail: String = text
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Err(ToolError::Install {
        command: rendered,
        status: output.status.to_string(),
        output: tail,
    })
}

/// Takes the lock that serialises changes to the virtualenv across processes; held until the
/// returned file is dropped.
fn lock_venv() -> Result<File, ToolError> {
    let lock_path = cache_dir().join("moto-venv.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| ToolError::CacheDir {
            path: lock_path.clone(),
            source,
        })?;
    lock.lock().map_err(|source| ToolError::CacheDir {
        path: lock_path,
        source,
    })?;
    Ok(lock)
}

/// Installs moto into hybridlab's virtualenv unless it is there already, telling `progress`
/// what it does. Blocks: a first install takes about a minute.
pub fn ensure_moto(progress: &mut dyn FnMut(&str)) -> Result<MotoInstall, ToolError> {
    let venv = venv_dir();
    let cache = cache_dir();
    fs::create_dir_all(&cache).map_err(|source| ToolError::CacheDir {
        path: cache.clone(),
        source,
    })?;
    let python = venv.join("bin").join("python");
    let marker = venv.join(".hybridlab-installed");
    let install = MotoInstall {
        python: python.clone(),
        venv: venv.clone(),
    };
    let wanted = MOTO_REQUIREMENT.as_bytes();
    if fs::read(&marker).is_ok_and(|found| found == wanted) && python.exists() {
        return Ok(install);
    }

    let _lock = lock_venv()?;
    // Another process may have finished the install while this one waited for the lock.
    if fs::read(&marker).is_ok_and(|found| found == wanted) && python.exists() {
        return Ok(install);
    }

    progress(&format!(
        "hybridlab: first use: installing {MOTO_REQUIREMENT} into {} (about a minute)...",
        venv.display()
    ));
    if !python.exists() {
        run(Command::new(base_python()).args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        MOTO_REQUIREMENT,
    ]))?;
    fs::write(&marker, wanted).map_err(|source| ToolError::CacheDir {
        path: marker.clone(),
        source,
    })?;
    progress("hybridlab: moto is installed.");
    Ok(install)
}

/// A command-line tool from PyPI that hybridlab installs into its virtualenv on first use.
struct PipTool {
    /// What the progress message calls it.
    name: &'static str,
    /// The pip requirement.
    requirement: &'static str,
    /// The executable it puts in the venv's `bin`.
    executable: &'static str,
}

/// Installs `tool` into hybridlab's virtualenv unless it is there (moto first, and moto's
/// pinned version kept: the tools share the venv); returns the path of its executable. A
/// marker file written after pip succeeds tells a finished install from an interrupted one.
fn ensure_pip_tool(tool: &PipTool, progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ToolError> {
    let install = ensure_moto(progress)?;
    let executable = install.venv.join("bin").join(tool.executable);
    let marker = install.venv.join(format!(".hybridlab-{}", tool.executable));
    if executable.exists() && marker.exists() {
        return Ok(executable);
    }
    let _lock = lock_venv()?;
    if executable.exists() && marker.exists() {
        return Ok(executable);
    }
    progress(&format!(
        "hybridlab: first use: installing {} into hybridlab's virtualenv...",
        tool.name
    ));
    run(Command::new(&install.python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        tool.requirement,
        MOTO_REQUIREMENT,
    ]))?;
    fs::write(&marker, tool.requirement).map_err(|source| ToolError::CacheDir {
        path: marker.clone(),
        source,
    })?;
    progress(&format!("hybridlab: {} is installed.", tool.name));
    Ok(executable)
}

/// The AWS CLI (v1, from PyPI) in hybridlab's virtualenv, installed on first use; the tests
/// use it to show that the sandbox answers the real CLI.
pub fn ensure_aws_cli(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ToolError> {
    let tool = PipTool {
        name: "the AWS CLI (awscli)",
        requirement: "awscli",
        executable: "aws",
    };
    ensure_pip_tool(&tool, progress)
}

/// cfn-lint (from PyPI) in hybridlab's virtualenv, installed on first use: it checks the
/// exported CloudFormation template against the resource specifications. Returns its path.
pub fn ensure_cfn_lint(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ToolError> {
    let tool = PipTool {
        name: "cfn-lint",
        requirement: "cfn-lint>=1,<2",
        executable: "cfn-lint",
    };
    ensure_pip_tool(&tool, progress)
}

/// cargo-lambda (from PyPI, with the Zig toolchain it brings) in hybridlab's virtualenv,
/// installed on first use: it builds binaries that run on Amazon Linux. Returns the venv's
/// `bin` directory, to put first on `PATH` so that `cargo lambda` finds it.
pub fn ensure_cargo_lambda(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ToolError> {
    let tool = PipTool {
        name: "cargo-lambda",
        requirement: "cargo-lambda",
        executable: "cargo-lambda",
    };
    let executable = ensure_pip_tool(&tool, progress)?;
    Ok(executable
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(executable))
}
