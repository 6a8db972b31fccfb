//! Saving a run file, the one way every face of hybridlab writes one (`hybridlab bench --out`,
//! `bench --upload --out` and the console's `s`): pretty JSON written to a temporary file
//! beside the target and renamed over it, so a reader never sees half a file and an
//! interrupted save leaves none.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why a run file could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("encoding the run: {0}")]
    Encode(serde_json::Error),
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Writes `file` (a [`RunFile`](crate::model::RunFile), or `bench --upload`'s run) to `path` as pretty JSON, replacing
/// what was there only once the whole new file is on disk.
pub fn save(path: &Path, file: &impl Serialize) -> Result<(), SaveError> {
    let write_error = |cause| SaveError::Write {
        path: path.to_owned(),
        cause,
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut staged = tempfile::NamedTempFile::new_in(folder).map_err(write_error)?;
    {
        let mut out = std::io::BufWriter::new(staged.as_file_mut());
        serde_json::to_writer_pretty(&mut out, file).map_err(|err| {
            if err.is_io() {
                write_error(std::io::Error::other(err))
            } else {
                SaveError::Encode(err)
            }
        })?;
        out.flush().map_err(write_error)?;
    }
    staged.persist(path).map_err(|err| write_error(err.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::run_at;
    use crate::report::input::read_run_file;

    #[test]
    fn a_saved_run_reads_back_and_a_second_save_replaces_it() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("run.json");
        save(&path, &RunFile::new(vec![run_at("c=1", 1, 5)])).expect("saved");
        save(&path, &RunFile::new(vec![run_at("c=2", 2, 7)])).expect("saved again");
        let file = read_run_file(&path).expect("a run file");
        assert_eq!(file.runs.len(), 1);
        assert_eq!(file.runs[0].config.label, "c=2");
        assert_eq!(file.runs[0].samples.len(), 7);
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(text.starts_with("{\n"), "pretty JSON");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("the folder").collect();
        assert_eq!(left.len(), 1, "no temporary file is left beside it");
    }

    #[test]
    fn a_save_into_a_missing_folder_names_the_file() {
        let path = Path::new("/nonexistent-hybridlab-folder/run.json");
        let err = save(path, &RunFile::new(vec![])).expect_err("no such folder");
        assert!(
            err.to_string()
                .starts_with("cannot write /nonexistent-hybridlab-folder/run.json: "),
            "{err}"
        );
    }
}
