//! moto's server, installed and run by hybridlab itself.
//!
//! [`ensure_installed`] creates a virtualenv under the cache directory and pip-installs
//! `moto[server]` into it on first use, under a file lock so concurrent callers install once.
//! [`MotoServer::start`] runs it on a loopback port chosen by the OS, through a small launcher
//! that exits when its standard input closes: moto never outlives the process that started
//! it, even when that process is killed.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::paths::cache_dir;

/// The moto release line hybridlab is written against (server mode, no Docker).
pub const MOTO_REQUIREMENT: &str = "moto[server]>=5.1,<5.3";

/// How long moto may take to import and bind its port.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The launcher: starts moto's threaded server on the given address, prints the bound port,
/// then waits for standard input to close and exits at once.
const LAUNCHER: &str = r#"
import os, sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address=sys.argv[1], port=int(sys.argv[2]), verbose=False)
server.start()
host, port = server.get_host_and_port()
sys.stdout.write("PORT %d\n" % port)
sys.stdout.flush()
try:
    sys.stdin.read()
finally:
    os._exit(0)
"#;

/// Why moto could not be installed or started.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
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
    #[error("moto's server did not start: {0}; its log is {1}")]
    Start(String, PathBuf),
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

fn run(command: &mut Command) -> Result<(), MotoError> {
    let rendered = format!("{command:?}");
    let output = command.output().map_err(|source| MotoError::Spawn {
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
    Err(MotoError::Install {
        command: rendered,
        status: output.status.to_string(),
        output: tail,
    })
}

/// Takes the lock that serialises changes to the virtualenv across processes; held until the
/// returned file is dropped.
fn lock_venv() -> Result<File, MotoError> {
    let lock_path = cache_dir().join("moto-venv.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| MotoError::CacheDir {
            path: lock_path.clone(),
            source,
        })?;
    lock.lock().map_err(|source| MotoError::CacheDir {
        path: lock_path,
        source,
    })?;
    Ok(lock)
}

/// Installs moto into hybridlab's virtualenv unless it is there already, telling `progress`
/// what it does. Blocks: a first install takes about a minute.
pub fn ensure_installed(progress: &mut dyn FnMut(&str)) -> Result<MotoInstall, MotoError> {
    let venv = venv_dir();
    let cache = cache_dir();
    fs::create_dir_all(&cache).map_err(|source| MotoError::CacheDir {
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
    fs::write(&marker, wanted).map_err(|source| MotoError::CacheDir {
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
fn ensure_pip_tool(tool: &PipTool, progress: &mut dyn FnMut(&str)) -> Result<PathBuf, MotoError> {
    let install = ensure_installed(progress)?;
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
    fs::write(&marker, tool.requirement).map_err(|source| MotoError::CacheDir {
        path: marker.clone(),
        source,
    })?;
    progress(&format!("hybridlab: {} is installed.", tool.name));
    Ok(executable)
}

/// The AWS CLI (v1, from PyPI) in hybridlab's virtualenv, installed on first use; the tests
/// use it to show that the sandbox answers the real CLI.
pub fn ensure_aws_cli(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, MotoError> {
    let tool = PipTool {
        name: "the AWS CLI (awscli)",
        requirement: "awscli",
        executable: "aws",
    };
    ensure_pip_tool(&tool, progress)
}

/// cfn-lint (from PyPI) in hybridlab's virtualenv, installed on first use: it checks the
/// exported CloudFormation template against the resource specifications. Returns its path.
pub fn ensure_cfn_lint(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, MotoError> {
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
pub fn ensure_cargo_lambda(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, MotoError> {
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

/// A running moto server on loopback. Dropping it stops the server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// Held open: moto's launcher exits when it closes.
    stdin: Option<ChildStdin>,
    port: u16,
    log: PathBuf,
}

impl MotoServer {
    /// Starts moto on `127.0.0.1:port` (0 lets the OS choose), logging to `log`.
    pub fn start(install: &MotoInstall, port: u16, log: &Path) -> Result<Self, MotoError> {
        Self::start_with_env(install, port, log, &[])
    }

    /// [`Self::start`] with extra environment for moto, such as its own settings
    /// (`INITIAL_NO_AUTH_ACTION_COUNT=0` makes it check every request's credentials).
    pub fn start_with_env(
        install: &MotoInstall,
        port: u16,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self, MotoError> {
        let log_file = File::create(log).map_err(|source| MotoError::CacheDir {
            path: log.to_path_buf(),
            source,
        })?;
        let mut child = Command::new(&install.python)
            .args(["-c", LAUNCHER, "127.0.0.1", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|source| MotoError::Spawn {
                command: format!("{} -c <launcher>", install.python.display()),
                source,
            })?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            return Err(MotoError::Start("no stdout pipe".into(), log.to_path_buf()));
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = sender.send(result);
        });
        let port = match receiver.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line
                .trim()
                .strip_prefix("PORT ")
                .and_then(|port| port.parse::<u16>().ok()),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(MotoError::Start(
                "it printed no port".into(),
                log.to_path_buf(),
            ));
        };
        Ok(Self {
            child,
            stdin,
            port,
            log: log.to_path_buf(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, the endpoint URL for every AWS client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
