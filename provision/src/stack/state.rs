//! The local record of a stack: its settings, token, the outcome of every step and what the
//! steps produced (ids, endpoint). Written after every step, atomically. `down` reads it when
//! it is there but never needs it: resources are found by name and tag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StackError;
use super::names::StackId;
use super::plan::StackSettings;
use super::progress::StepStatus;
use hybridlab_tools::state_dir;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub status: StepStatus,
    pub detail: String,
    /// RFC 3339.
    pub at: String,
}

/// Values the steps produce that later steps, `status` and other commands need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackOutputs {
    pub token: Option<String>,
    pub server_endpoint: Option<String>,
    /// The SHA-256 fingerprint of the server's TLS certificate (`AB:CD:...`).
    pub cert_sha256: Option<String>,
    pub instance_id: Option<String>,
    pub security_group_id: Option<String>,
    pub image_id: Option<String>,
    pub function_arn: Option<String>,
    /// The jobs API's endpoint (`https://{api}.execute-api.{region}.amazonaws.com`, or the
    /// sandbox's loopback path), for a stack with the jobs.
    #[serde(default)]
    pub jobs_api_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackState {
    pub stack_id: StackId,
    /// `local sandbox (...)` or `AWS <region>`.
    pub target: String,
    pub settings: StackSettings,
    pub created_at: String,
    pub steps: BTreeMap<String, StepRecord>,
    pub outputs: StackOutputs,
}

/// The directory of every target's stack records, under the state directory (a cache
/// cleaner must not delete the only record of live, billed resources).
pub const STACKS_DIR: &str = "stacks";

/// Where the state files of one target live.
pub fn stacks_dir(state_key: &str) -> PathBuf {
    state_dir().join(STACKS_DIR).join(state_key)
}

/// Forgets the stacks of sandboxes that are gone. A sandbox holds everything in memory
/// (moto's state; its instances and functions are its own processes), so when it stops its
/// stacks are gone too, and their state files would only make `status` and the console list
/// stacks that no longer exist. A sandbox starting on `own_port` calls this: the files of its
/// own port are an earlier sandbox's, and those of a port nobody listens on are a stopped one's.
pub fn forget_gone_sandbox_stacks(own_port: u16) {
    forget_gone_sandbox_stacks_in(&state_dir().join(STACKS_DIR), own_port, |port| {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(200))
            .is_ok()
    });
}

/// [`forget_gone_sandbox_stacks`] in `stacks` (the directory of every target's state
/// directory), with `listening` telling whether a sandbox answers on a port.
fn forget_gone_sandbox_stacks_in(stacks: &Path, own_port: u16, listening: impl Fn(u16) -> bool) {
    let Ok(entries) = std::fs::read_dir(stacks) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(port) = name
            .to_str()
            .and_then(super::target::sandbox_port_of_state_key)
        else {
            continue;
        };
        if port == own_port || !listening(port) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl StackState {
    pub fn new(stack_id: StackId, target: String, settings: StackSettings) -> Self {
        Self {
            stack_id,
            target,
            settings,
            created_at: hybridlab_wire::now_rfc3339(),
            steps: BTreeMap::new(),
            outputs: StackOutputs::default(),
        }
    }

    pub fn path(state_key: &str, id: &StackId) -> PathBuf {
        stacks_dir(state_key).join(format!("{id}.json"))
    }

    /// Writes the file atomically (a crash leaves the old or the new one), readable by the
    /// owner only: it holds the stack's token.
    pub fn save(&self, state_key: &str) -> Result<(), StackError> {
        let path = Self::path(state_key, &self.stack_id);
        let error = |source| StackError::State {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let temporary = path.with_extension("json.partial");
        let bytes = serde_json::to_vec_pretty(self).map_err(|err| error(err.into()))?;
        write_private(&temporary, &bytes).map_err(error)?;
        std::fs::rename(&temporary, &path).map_err(error)
    }

    pub fn load(state_key: &str, id: &StackId) -> Option<Self> {
        let bytes = std::fs::read(Self::path(state_key, id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every stack with a state file for this target, oldest first.
    pub fn list(state_key: &str) -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(stacks_dir(state_key)) else {
            return Vec::new();
        };
        let mut states: Vec<Self> = entries
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .filter_map(|entry| std::fs::read(entry.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        states.sort_by(|a: &Self, b: &Self| a.created_at.cmp(&b.created_at));
        states
    }

    pub fn remove(state_key: &str, id: &StackId) {
        let _ = std::fs::remove_file(Self::path(state_key, id));
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stacks_of_stopped_sandboxes_and_of_this_port_are_forgotten() {
        let stacks =
            std::env::temp_dir().join(format!("hybridlab-stacks-{}", uuid::Uuid::new_v4()));
        for key in [
            "sandbox",
            "sandbox-40001",
            "sandbox-40002",
            "sandbox-40003",
            "aws-default-eu-west-1",
        ] {
            std::fs::create_dir_all(stacks.join(key)).expect("a state directory");
            std::fs::write(stacks.join(key).join("k3x9q2ma.json"), "{}").expect("a state file");
        }
        // 4566 (`sandbox`) and 40002 answer; this sandbox starts on 40003.
        forget_gone_sandbox_stacks_in(&stacks, 40003, |port| matches!(port, 4566 | 40002));
        let mut left: Vec<String> = std::fs::read_dir(&stacks)
            .expect("the directory")
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(left, ["aws-default-eu-west-1", "sandbox", "sandbox-40002"]);
        let _ = std::fs::remove_dir_all(&stacks);
    }

    #[test]
    fn sandbox_state_keys_round_trip_and_aws_ones_are_not_sandboxes() {
        use crate::stack::target::{sandbox_port_of_state_key, sandbox_state_key};
        for port in [4566, 40123] {
            assert_eq!(
                sandbox_port_of_state_key(&sandbox_state_key(port)),
                Some(port)
            );
        }
        assert_eq!(sandbox_port_of_state_key("aws-default-eu-west-1"), None);
        assert_eq!(sandbox_port_of_state_key("sandbox-x"), None);
    }
}
