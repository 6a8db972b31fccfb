//! Records the git commit the binary is built from as `HYBRIDLAB_GIT_COMMIT`, which a bench
//! run writes into its environment. Cheap and never fatal: without git or a repository (a
//! source tarball) the variable is simply not set.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let Some(root) = Path::new(env!("CARGO_MANIFEST_DIR")).parent() else {
        return;
    };
    // Rebuilt when HEAD moves: a checkout changes `.git/HEAD`, a commit the branch's ref.
    // Only files that exist are watched: a missing one would rerun this on every build.
    let git_dir = root.join(".git");
    let mut watched: Vec<PathBuf> = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD"))
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        watched.push(git_dir.join(reference));
    }
    for path in watched.iter().filter(|path| path.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|commit| !commit.is_empty());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=HYBRIDLAB_GIT_COMMIT={commit}");
    }
}
