//! A Lambda deployment package for the `provided.al2023` runtime: a zip holding the function's
//! executable as `bootstrap` (mode 755) at its root. `up`, the exports and the tests pack
//! functions this way; the sandbox unpacks what Lambda would run.

use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Why a package could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot zip {path}: {detail}")]
    Zip { path: PathBuf, detail: String },
}

/// Builds a deployment package holding `bootstrap` (mode 755) from the executable at `binary`.
pub fn package_bootstrap(binary: &Path) -> Result<Vec<u8>, PackageError> {
    let bytes = std::fs::read(binary).map_err(|source| PackageError::Read {
        path: binary.to_path_buf(),
        source,
    })?;
    let zip_error = |detail: String| PackageError::Zip {
        path: binary.to_path_buf(),
        detail,
    };
    let mut out = Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        writer
            .start_file("bootstrap", options)
            .map_err(|err| zip_error(err.to_string()))?;
        std::io::Write::write_all(&mut writer, &bytes).map_err(|err| zip_error(err.to_string()))?;
        writer.finish().map_err(|err| zip_error(err.to_string()))?;
    }
    Ok(out.into_inner())
}
