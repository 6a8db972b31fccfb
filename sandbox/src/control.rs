//! The sandbox as a long-running background service: its state file (pid and endpoint), how
//! to tell whether it runs, and how to stop it so no process is left behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use hybridlab_tools::cache_dir;

/// What a running sandbox records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub pid: u32,
    pub endpoint: String,
    pub moto_endpoint: String,
    /// RFC 3339.
    pub started_at: String,
}

/// Where the sandbox keeps its state, code and logs: `$HYBRIDLAB_SANDBOX_DIR`, else
/// `sandbox/` in the cache directory.
pub fn state_dir() -> PathBuf {
    std::env::var_os("HYBRIDLAB_SANDBOX_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| cache_dir().join("sandbox"), PathBuf::from)
}

pub fn record_path() -> PathBuf {
    state_dir().join("sandbox.json")
}

/// The log of a detached sandbox.
pub fn log_path() -> PathBuf {
    state_dir().join("sandbox.log")
}

pub fn write_record(record: &SandboxRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir())?;
    let temporary = record_path().with_extension("json.partial");
    std::fs::write(
        &temporary,
        serde_json::to_vec_pretty(record).unwrap_or_default(),
    )?;
    std::fs::rename(temporary, record_path())
}

pub fn remove_record() {
    let _ = std::fs::remove_file(record_path());
}

pub fn read_record() -> Option<SandboxRecord> {
    let bytes = std::fs::read(record_path()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether process `pid` runs (a zombie does not).
#[cfg(target_os = "linux")]
pub(crate) fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                // A zombie is not running.
                stat.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
}

/// Whether process `pid` exists, by signal 0, where there is no procfs to tell a zombie apart;
/// the edge's health answer, asked next, tells a dead sandbox anyway.
#[cfg(not(target_os = "linux"))]
pub(crate) fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// The running sandbox, if its process is alive and its edge answers.
pub async fn running() -> Option<SandboxRecord> {
    let record = read_record()?;
    if !alive(record.pid) {
        return None;
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let health = client
        .get(format!("{}{STATUS_PATH}", record.endpoint))
        .send()
        .await
        .ok()?;
    health.status().is_success().then_some(record)
}

/// The agent's path for its status (which also tells it is healthy).
pub const STATUS_PATH: &str = "/_hybridlab/health";

/// Why the sandbox's status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("the sandbox at {endpoint} did not answer its status: {source}")]
    Unreachable {
        endpoint: String,
        source: reqwest::Error,
    },
    #[error("the sandbox at {endpoint} answered its status with HTTP {status}")]
    Refused { endpoint: String, status: u16 },
    #[error("the sandbox at {endpoint} answered a status that is not JSON: {source}")]
    NotJson {
        endpoint: String,
        source: serde_json::Error,
    },
}

/// The status the agent at `endpoint` serves: its functions, instances, timing, and how it
/// shares CPU among function environments.
pub async fn status(endpoint: &str) -> Result<serde_json::Value, StatusError> {
    let unreachable = |source| StatusError::Unreachable {
        endpoint: endpoint.to_owned(),
        source,
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(unreachable)?;
    let answer = client
        .get(format!("{endpoint}{STATUS_PATH}"))
        .send()
        .await
        .map_err(unreachable)?;
    if !answer.status().is_success() {
        return Err(StatusError::Refused {
            endpoint: endpoint.to_owned(),
            status: answer.status().as_u16(),
        });
    }
    let body = answer.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|source| StatusError::NotJson {
        endpoint: endpoint.to_owned(),
        source,
    })
}

/// Why `stop` did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("no sandbox is running")]
    NotRunning,
    #[error("the sandbox (pid {0}) did not stop within 15 s, even after SIGKILL")]
    Stuck(u32),
}

/// Stops the recorded sandbox: SIGTERM, then SIGKILL if it has not exited after ten seconds.
pub async fn stop() -> Result<SandboxRecord, StopError> {
    let record = read_record().ok_or(StopError::NotRunning)?;
    if !alive(record.pid) {
        remove_record();
        return Err(StopError::NotRunning);
    }
    let signal = |name: &str| {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(record.pid.to_string())
            .status();
    };
    signal("TERM");
    let started = Instant::now();
    while alive(record.pid) {
        if started.elapsed() > Duration::from_secs(10) {
            signal("KILL");
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(StopError::Stuck(record.pid));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A detached sandbox leads its own process group: anything of it still alive goes too.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", record.pid)])
        .stderr(std::process::Stdio::null())
        .status();
    remove_record();
    Ok(record)
}
