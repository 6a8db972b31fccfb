//! Where hybridlab keeps what it installs and remembers: one cache directory per user.

use std::path::PathBuf;

/// `$HYBRIDLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/hybridlab`, else `~/.cache/hybridlab`, else a
/// directory under the system's temporary directory (a user with no home still gets one).
/// `imaging/turbojpeg/build.rs` repeats this rule; change both together.
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
