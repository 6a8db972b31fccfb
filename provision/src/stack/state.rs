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
use crate::paths::cache_dir;

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
    pub instance_id: Option<String>,
    pub security_group_id: Option<String>,
    pub image_id: Option<String>,
    pub function_arn: Option<String>,
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

/// The time now in RFC 3339, as every timestamp the lab writes is.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Where the state files of one target live.
pub fn stacks_dir(state_key: &str) -> PathBuf {
    cache_dir().join("stacks").join(state_key)
}

impl StackState {
    pub fn new(stack_id: StackId, target: String, settings: StackSettings) -> Self {
        Self {
            stack_id,
            target,
            settings,
            created_at: now_rfc3339(),
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
