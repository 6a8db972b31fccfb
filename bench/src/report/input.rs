//! The report's input: run files read and checked (each failure one line naming the file and
//! what to do), and every run given the label it is shown under.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::model::{RUN_FILE_FORMAT, Run, RunFile};

/// One run as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledRun {
    /// Unique among the report's runs.
    pub label: String,
    /// The file it came from, as given on the command line.
    pub file: PathBuf,
    /// Which of the given files (from 0): runs of one file form one sweep.
    pub file_index: usize,
    pub run: Run,
}

impl LabeledRun {
    /// The name of the file the run came from, without folder and extension.
    pub fn file_stem(&self) -> String {
        stem_of(&self.file)
    }
}

fn stem_of(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

/// Reads and checks the run file at `path`.
pub fn read_run_file(path: &Path) -> anyhow::Result<RunFile> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => anyhow!(
            "`{shown}`: no such file; give the path of a run file written by `hybridlab bench --out`"
        ),
        _ => anyhow!("cannot read `{shown}`: {err}"),
    })?;
    parse_run_file(&text).map_err(|problem| anyhow!("`{shown}` {problem}"))
}

/// Parses a run file's text; the error completes a sentence that starts with the file's name.
pub fn parse_run_file(text: &str) -> Result<RunFile, String> {
    const WRITTEN_BY: &str = "written by `hybridlab bench --out`";
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| format!("is not JSON ({err}); give a run file {WRITTEN_BY}"))?;
    // The format is checked before the shape, so a file of another version says so rather than
    // failing on whichever field changed.
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(RUN_FILE_FORMAT) => {}
        Some(other) => {
            return Err(format!(
                "is a `{other}` file, but this hybridlab reads `{RUN_FILE_FORMAT}`; re-run the benchmark with this version's `hybridlab bench --out`"
            ));
        }
        None => {
            return Err(format!(
                "has no `format` field, so it is not a run file; give a run file {WRITTEN_BY}"
            ));
        }
    }
    let file: RunFile = serde_json::from_value(value).map_err(|err| {
        format!("is not a valid `{RUN_FILE_FORMAT}` run file ({err}); re-run `hybridlab bench --out` rather than editing it")
    })?;
    if file.runs.is_empty() {
        return Err(format!("holds no runs; give a run file {WRITTEN_BY}"));
    }
    Ok(file)
}

/// Every run of `files` with its label: the run's own `config.label`, unless a label occurs
/// in two files (two benchmarks both labelled `c=8`); then every run is shown as
/// `<file stem>: <label>`. Whatever is still the same (a file given twice) gets ` (2)`,
/// ` (3)`, so each label names one run.
pub fn label_runs(files: Vec<(PathBuf, RunFile)>) -> Vec<LabeledRun> {
    let mut files_by_label: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (index, (_, file)) in files.iter().enumerate() {
        for run in &file.runs {
            files_by_label
                .entry(run.config.label.as_str())
                .or_default()
                .insert(index);
        }
    }
    let prefix_with_stem = files_by_label.values().any(|indexes| indexes.len() > 1);

    let mut labeled = Vec::new();
    for (file_index, (path, file)) in files.into_iter().enumerate() {
        let stem = stem_of(&path);
        for run in file.runs {
            let mut label = if prefix_with_stem {
                format!("{stem}: {}", run.config.label)
            } else {
                run.config.label.clone()
            };
            if run.config.interrupted {
                label.push_str(" (partial)");
            }
            labeled.push(LabeledRun {
                label,
                file: path.clone(),
                file_index,
                run,
            });
        }
    }

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for run in &mut labeled {
        let count = seen.entry(run.label.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            run.label = format!("{} ({count})", run.label);
        }
    }
    labeled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{run_at, run_file_json};

    #[test]
    fn a_valid_run_file_parses() {
        let file = parse_run_file(&run_file_json(&[run_at("c=1", 1, 20)])).expect("parses");
        assert_eq!(file.runs.len(), 1);
        assert_eq!(file.runs[0].config.label, "c=1");
    }

    #[test]
    fn bad_files_are_refused_with_one_line_saying_what_to_do() {
        let other_format =
            run_file_json(&[run_at("c=1", 1, 5)]).replace(RUN_FILE_FORMAT, "hybridlab-bench/0");
        let cases = [
            ("not json at all", "is not JSON"),
            (r#"{"runs": []}"#, "has no `format` field"),
            (other_format.as_str(), "is a `hybridlab-bench/0` file"),
            (
                r#"{"format": "hybridlab-bench/1", "runs": [{}]}"#,
                "is not a valid",
            ),
            (
                r#"{"format": "hybridlab-bench/1", "runs": []}"#,
                "holds no runs",
            ),
        ];
        for (text, expected) in cases {
            let problem = parse_run_file(text).expect_err(text);
            assert!(problem.starts_with(expected), "{problem}");
            assert!(!problem.contains('\n'), "{problem}");
            assert!(problem.contains("hybridlab bench --out"), "{problem}");
        }
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let path = std::env::temp_dir().join("hybridlab-report-no-such-run-file.json");
        let message = format!("{:#}", read_run_file(&path).expect_err("missing"));
        assert!(message.contains("no such file"), "{message}");
        assert!(
            message.contains("hybridlab-report-no-such-run-file.json"),
            "{message}"
        );
    }

    #[test]
    fn labels_are_kept_unless_two_files_share_one() {
        let distinct = label_runs(vec![
            (
                PathBuf::from("a/before.json"),
                RunFile::new(vec![run_at("c=1", 1, 5)]),
            ),
            (
                PathBuf::from("b/after.json"),
                RunFile::new(vec![run_at("c=2", 2, 5)]),
            ),
        ]);
        let labels: Vec<&str> = distinct.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["c=1", "c=2"]);

        let shared = label_runs(vec![
            (
                PathBuf::from("a/before.json"),
                RunFile::new(vec![run_at("c=1", 1, 5), run_at("c=4", 4, 5)]),
            ),
            (
                PathBuf::from("b/after.json"),
                RunFile::new(vec![run_at("c=1", 1, 5)]),
            ),
        ]);
        let labels: Vec<(&str, usize)> = shared
            .iter()
            .map(|r| (r.label.as_str(), r.file_index))
            .collect();
        assert_eq!(
            labels,
            [("before: c=1", 0), ("before: c=4", 0), ("after: c=1", 1)]
        );
    }

    #[test]
    fn the_same_file_twice_still_gives_distinct_labels() {
        let file = RunFile::new(vec![run_at("c=1", 1, 5)]);
        let labeled = label_runs(vec![
            (PathBuf::from("run.json"), file.clone()),
            (PathBuf::from("run.json"), file),
        ]);
        let labels: Vec<&str> = labeled.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["run: c=1", "run: c=1 (2)"]);
    }
}
