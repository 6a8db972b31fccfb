//! Where hybridlab keeps what it installs and remembers, and the Python tools it installs
//! there on first use (a virtualenv under the cache directory holding `moto[server]`, the AWS
//! CLI, cfn-lint and cargo-lambda), so no set-up step is ever done by hand.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod state_move;

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

/// Where hybridlab keeps what must outlive a cache cleaner (the record of every stack, the
/// Terraform modules with their state and variables, the console's log):
/// `$HYBRIDLAB_STATE_DIR`, else `$XDG_STATE_HOME/hybridlab`, else `~/.local/state/hybridlab`,
/// else a directory under the system's temporary directory.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("HYBRIDLAB_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty_env("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("hybridlab");
    }
    if let Some(home) = non_empty_env("HOME") {
        return PathBuf::from(home)
            .join(".local")
            .join("state")
            .join("hybridlab");
    }
    std::env::temp_dir().join("hybridlab-state")
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
    // The marker holds the requirement installed: a changed pin installs again.
    let installed = || {
        executable.exists()
            && fs::read_to_string(&marker).is_ok_and(|recorded| recorded == tool.requirement)
    };
    if installed() {
        return Ok(executable);
    }
    let _lock = lock_venv()?;
    if installed() {
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

/// The cargo-lambda version hybridlab installs when none that fits is on `PATH`.
macro_rules! cargo_lambda_pin {
    () => {
        "1.9.2"
    };
}
pub const CARGO_LAMBDA_PIN: &str = cargo_lambda_pin!();
/// The cargo-lambda major version whose `build --release --target ... --bin` hybridlab uses.
const CARGO_LAMBDA_MAJOR: u32 = 1;

/// The version `cargo-lambda lambda --version` printed (`cargo-lambda 1.9.2 (67129fc
/// 2026-08-21Z)`).
pub fn cargo_lambda_version(output: &str) -> Option<(u32, u32, u32)> {
    let version = output.split_whitespace().nth(1)?;
    let mut numbers = version
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

/// Whether a cargo-lambda of `version` builds the lab's programs as hybridlab asks: a 1.x (a
/// later 1.x than the pin is trusted to keep the flags, as semantic versioning says).
fn cargo_lambda_fits(version: (u32, u32, u32)) -> bool {
    version.0 == CARGO_LAMBDA_MAJOR
}

/// The directory of the `cargo-lambda` on `PATH` and its version, if there is one.
fn cargo_lambda_on_path() -> Option<(PathBuf, (u32, u32, u32))> {
    let path = std::env::var_os("PATH")?;
    let executable = std::env::split_paths(&path)
        .map(|dir| dir.join("cargo-lambda"))
        .find(|candidate| candidate.is_file())?;
    // cargo runs it as `cargo-lambda lambda ...`; a bare `--version` is refused.
    let output = Command::new(&executable)
        .args(["lambda", "--version"])
        .output()
        .ok()?;
    let version = cargo_lambda_version(&String::from_utf8_lossy(&output.stdout))?;
    Some((executable.parent()?.to_path_buf(), version))
}

/// cargo-lambda, which builds binaries that run on Amazon Linux: the one on `PATH` when its
/// version fits, else version [`CARGO_LAMBDA_PIN`] from PyPI (with the Zig toolchain it
/// brings) in hybridlab's virtualenv, installed on first use. Returns the directory to put
/// first on `PATH` so that `cargo lambda` finds it.
pub fn ensure_cargo_lambda(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, ToolError> {
    if let Some((dir, (major, minor, patch))) = cargo_lambda_on_path() {
        if cargo_lambda_fits((major, minor, patch)) {
            progress(&format!(
                "hybridlab: using cargo-lambda {major}.{minor}.{patch} from {}",
                dir.display()
            ));
            return Ok(dir);
        }
        progress(&format!(
            "hybridlab: the cargo-lambda on PATH is {major}.{minor}.{patch}; hybridlab needs {CARGO_LAMBDA_MAJOR}.x, so it installs {CARGO_LAMBDA_PIN} for itself"
        ));
    }
    let tool = PipTool {
        name: concat!("cargo-lambda ", cargo_lambda_pin!()),
        requirement: concat!("cargo-lambda==", cargo_lambda_pin!()),
        executable: "cargo-lambda",
    };
    let executable = ensure_pip_tool(&tool, progress)?;
    Ok(executable
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(executable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lambdas_version_is_read_and_only_a_1_x_fits() {
        assert_eq!(
            cargo_lambda_version("cargo-lambda 1.9.2 (67129fc 2026-08-21Z)\n"),
            Some((1, 9, 2))
        );
        assert_eq!(
            cargo_lambda_version("cargo-lambda 1.0.0-rc.1"),
            Some((1, 0, 0))
        );
        assert_eq!(cargo_lambda_version("cargo-lambda"), None);
        assert_eq!(cargo_lambda_version("cargo-lambda 1.x"), None);
        assert!(cargo_lambda_fits((1, 9, 2)) && cargo_lambda_fits((1, 0, 0)));
        assert!(!cargo_lambda_fits((0, 22, 0)) && !cargo_lambda_fits((2, 0, 0)));
        assert_eq!(
            cargo_lambda_version(&format!("cargo-lambda {CARGO_LAMBDA_PIN}"))
                .map(cargo_lambda_fits),
            Some(true),
            "the pin fits"
        );
    }
}
