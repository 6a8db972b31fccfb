//! The deployed code of every function, as the sandbox saw it pass through the edge port:
//! moto keeps the zip but hands out a `Code.Location` on an AWS host nobody can reach, so the
//! agent keeps its own copy, keyed like Lambda's `CodeSha256` (base64 of the zip's SHA-256),
//! and unpacks each version once.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// Why code could not be kept or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the deployment package is not a valid zip: {0}")]
    BadZip(String),
    #[error(
        "the deployment package has no `bootstrap` at its root (provided.al2023 runs ./bootstrap)"
    )]
    NoBootstrap,
    #[error("the sandbox has no code for {0}: deploy it through the sandbox's endpoint")]
    Unknown(String),
}

/// `CodeSha256` as Lambda computes it.
pub fn code_sha256(zip: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(zip))
}

/// Where zips and their unpacked trees live.
#[derive(Debug)]
pub struct CodeStore {
    dir: PathBuf,
    /// Function name → the newest CodeSha256 seen for it.
    latest: Mutex<HashMap<String, String>>,
}

fn file_name(sha: &str) -> String {
    // Base64 has '/' and '+': fine in a map key, not in a file name.
    sha.replace('/', "_").replace('+', "-")
}

impl CodeStore {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            latest: Mutex::new(HashMap::new()),
        }
    }

    fn zip_path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{}.zip", file_name(sha)))
    }

    /// Keeps `zip` as the newest code of `function`; returns its CodeSha256.
    pub fn save(&self, function: &str, zip: &[u8]) -> Result<String, CodeError> {
        let sha = code_sha256(zip);
        let path = self.zip_path(&sha);
        let io = |source| CodeError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        if !path.exists() {
            let temporary = path.with_extension("zip.partial");
            std::fs::write(&temporary, zip).map_err(io)?;
            std::fs::rename(&temporary, &path).map_err(io)?;
        }
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(function.to_owned(), sha.clone());
        }
        Ok(sha)
    }

    /// The unpacked tree of the code with `sha` (or, if the sandbox never saw that exact
    /// package, the newest one it saw for `function`), unpacking it on first use.
    pub fn unpacked(&self, function: &str, sha: Option<&str>) -> Result<PathBuf, CodeError> {
        let sha = match sha.filter(|sha| self.zip_path(sha).exists()) {
            Some(sha) => sha.to_owned(),
            None => self
                .latest
                .lock()
                .ok()
                .and_then(|latest| latest.get(function).cloned())
                .ok_or_else(|| CodeError::Unknown(function.to_owned()))?,
        };
        let tree = self.dir.join(file_name(&sha));
        if tree.join("bootstrap").exists() {
            return Ok(tree);
        }
        let zip = std::fs::read(self.zip_path(&sha)).map_err(|source| CodeError::Io {
            path: self.zip_path(&sha),
            source,
        })?;
        unpack(&zip, &tree)?;
        Ok(tree)
    }
}

/// Unpacks `zip` into `tree` (through a temporary directory, so a half-unpacked tree is never
/// used) and makes `bootstrap` executable.
pub fn unpack(zip: &[u8], tree: &Path) -> Result<(), CodeError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(zip)).map_err(|err| CodeError::BadZip(err.to_string()))?;
    if archive.index_for_name("bootstrap").is_none() {
        return Err(CodeError::NoBootstrap);
    }
    // Unique per call: concurrent first invocations of a new function unpack at once, and a
    // staging directory they shared would be emptied under one by the other.
    static UNPACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let staging = tree.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        UNPACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let io = |source| CodeError::Io {
        path: staging.clone(),
        source,
    };
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io)?;
    // `extract` refuses entries that would escape the directory.
    archive
        .extract(&staging)
        .map_err(|err| CodeError::BadZip(err.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            staging.join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .map_err(io)?;
    }
    match std::fs::rename(&staging, tree) {
        Ok(()) => Ok(()),
        // Another environment unpacked the same code first.
        Err(_) if tree.join("bootstrap").exists() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(source) => Err(CodeError::Io {
            path: tree.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::package::package_bootstrap;

    #[test]
    fn a_packaged_bootstrap_unpacks_executable() {
        let dir = std::env::temp_dir().join(format!("hybridlab-code-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let binary = dir.join("fake-binary");
        std::fs::write(&binary, b"#!/bin/sh\necho hi\n").expect("written");
        let zip = package_bootstrap(&binary).expect("packs");
        let store = CodeStore::new(dir.join("store"));
        let sha = store.save("fn", &zip).expect("saved");
        assert_eq!(sha, code_sha256(&zip));
        let tree = store.unpacked("fn", Some(&sha)).expect("unpacks");
        let bootstrap = tree.join("bootstrap");
        assert_eq!(
            std::fs::read(&bootstrap).expect("there"),
            b"#!/bin/sh\necho hi\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&bootstrap)
                .expect("there")
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111, "executable");
        }
        assert!(matches!(
            store.unpacked("other", None),
            Err(CodeError::Unknown(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn first_invocations_at_once_unpack_the_same_code_without_tripping_on_each_other() {
        let dir = std::env::temp_dir().join(format!("hybridlab-code-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let binary = dir.join("fake-binary");
        std::fs::write(&binary, vec![b'x'; 4 * 1024 * 1024]).expect("written");
        let zip = package_bootstrap(&binary).expect("packs");
        let store = CodeStore::new(dir.join("store"));
        let sha = store.save("fn", &zip).expect("saved");
        std::thread::scope(|scope| {
            let unpacks: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| store.unpacked("fn", Some(&sha))))
                .collect();
            for unpack in unpacks {
                let tree = unpack.join().expect("no panic").expect("unpacks");
                assert!(tree.join("bootstrap").exists());
            }
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_zip_without_bootstrap_is_refused() {
        let mut out = Cursor::new(Vec::new());
        {
            let mut writer = zip::ZipWriter::new(&mut out);
            writer
                .start_file("handler.py", zip::write::SimpleFileOptions::default())
                .expect("entry");
            std::io::Write::write_all(&mut writer, b"print(1)").expect("written");
            writer.finish().expect("finished");
        }
        let dir = std::env::temp_dir().join(format!("hybridlab-code-{}", uuid::Uuid::new_v4()));
        assert!(matches!(
            unpack(&out.into_inner(), &dir),
            Err(CodeError::NoBootstrap)
        ));
        assert!(matches!(
            unpack(b"not a zip", &dir),
            Err(CodeError::BadZip(_))
        ));
    }
}
