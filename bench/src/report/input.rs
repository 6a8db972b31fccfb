//! The report's input: run files of every kind `hybridlab bench` writes (`--out`,
//! `--upload --out`, old bare upload runs), recognised and checked (each failure one line
//! naming the file and what to do), and every run given the label it is shown under.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::jobs::JOB_RUN_FORMAT;
use crate::model::{RUN_FILE_FORMAT, Run, RunFile};
use crate::uploads::{UPLOAD_RUN_FILE_FORMAT, UploadRun, UploadRunFile};

/// One run of the Lambda proxy (`bench --out`) as the report shows it.
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

/// One run of the event-driven pipeline (`bench --upload --out`) as the report shows it.
#[derive(Debug, Clone)]
pub struct LabeledUpload {
    /// Unique among the report's runs, proxy runs included.
    pub label: String,
    pub file: PathBuf,
    pub file_index: usize,
    pub run: UploadRun,
}

impl LabeledUpload {
    pub fn file_stem(&self) -> String {
        stem_of(&self.file)
    }
}

/// The label an upload run has in its file: its own, or, for files written before runs had
/// one, its concurrency (as a proxy run's `c=8`).
pub fn upload_label(run: &UploadRun) -> String {
    run.label
        .clone()
        .unwrap_or_else(|| format!("upload c={}", run.concurrency))
}

/// Every run of the report's files, by kind, in the order of the files.
#[derive(Debug, Clone, Default)]
pub struct ReportRuns {
    pub runs: Vec<LabeledRun>,
    pub uploads: Vec<LabeledUpload>,
}

impl ReportRuns {
    pub fn len(&self) -> usize {
        self.runs.len() + self.uploads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a file holds, told by its `format` or, for a file without one, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `hybridlab-bench/1`: runs of the Lambda proxy, a sweep's levels or a memory sweep's.
    Bench,
    /// `hybridlab-upload-bench/1`: runs of the event-driven pipeline.
    Upload,
    /// One bare upload run, as `bench --upload --out` wrote it before the format existed.
    BareUpload,
    /// `bench --jobs`: the job-worker variant, which the report does not read.
    Jobs,
}

/// A file's runs, read.
#[derive(Debug, Clone)]
pub enum ReportFile {
    Bench(RunFile),
    Upload(UploadRunFile),
}

fn stem_of(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

const WRITTEN_BY: &str = "written by `hybridlab bench --out` or `hybridlab bench --upload --out`";

/// Which kind of run file `value` is; the error completes a sentence that starts with the
/// file's name.
pub fn detect_kind(value: &serde_json::Value) -> Result<FileKind, String> {
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(RUN_FILE_FORMAT) => Ok(FileKind::Bench),
        Some(UPLOAD_RUN_FILE_FORMAT) => Ok(FileKind::Upload),
        Some(JOB_RUN_FORMAT) => Ok(FileKind::Jobs),
        Some(other) if other.starts_with("hybridlab-bench-jobs/") => Ok(FileKind::Jobs),
        Some(other) => Err(format!(
            "is a `{other}` file, but this hybridlab reads `{RUN_FILE_FORMAT}` and `{UPLOAD_RUN_FILE_FORMAT}`; re-run the benchmark with this version's `hybridlab bench --out`"
        )),
        // Upload runs were saved bare before they had a format: these fields are theirs alone.
        None if ["uploads", "images_per_s", "via"]
            .iter()
            .all(|field| value.get(field).is_some()) =>
        {
            Ok(FileKind::BareUpload)
        }
        None => Err(format!(
            "has no `format` field, so it is not a run file; give a run file {WRITTEN_BY}"
        )),
    }
}

/// Reads and checks the run file at `path`, of any kind the report reads.
pub fn read_report_file(path: &Path) -> anyhow::Result<ReportFile> {
    let text = read_text(path)?;
    parse_report_file(&text).map_err(|problem| anyhow!("`{}` {problem}", path.display()))
}

/// Reads and checks the `bench --out` run file at `path`.
pub fn read_run_file(path: &Path) -> anyhow::Result<RunFile> {
    let text = read_text(path)?;
    parse_run_file(&text).map_err(|problem| anyhow!("`{}` {problem}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let shown = path.display();
    std::fs::read_to_string(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow!("`{shown}`: no such file; give the path of a run file {WRITTEN_BY}")
        }
        _ => anyhow!("cannot read `{shown}`: {err}"),
    })
}

/// Parses a run file's text of any kind the report reads; the error completes a sentence
/// that starts with the file's name.
pub fn parse_report_file(text: &str) -> Result<ReportFile, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| format!("is not JSON ({err}); give a run file {WRITTEN_BY}"))?;
    // The kind is told before the shape is checked, so a file of another version says so
    // rather than failing on whichever field changed.
    match detect_kind(&value)? {
        FileKind::Bench => bench_file(value).map(ReportFile::Bench),
        FileKind::Upload => {
            let file: UploadRunFile = serde_json::from_value(value).map_err(|err| {
                format!("is not a valid `{UPLOAD_RUN_FILE_FORMAT}` run file ({err}); re-run `hybridlab bench --upload --out` rather than editing it")
            })?;
            if file.runs.is_empty() {
                return Err(format!("holds no runs; give a run file {WRITTEN_BY}"));
            }
            Ok(ReportFile::Upload(file))
        }
        FileKind::BareUpload => {
            let run: UploadRun = serde_json::from_value(value).map_err(|err| {
                format!("looks like an upload run but is not a valid one ({err}); re-run `hybridlab bench --upload --out` rather than editing it")
            })?;
            Ok(ReportFile::Upload(UploadRunFile::new(vec![run])))
        }
        FileKind::Jobs => Err(format!(
            "is a run of `hybridlab bench --jobs` (`{JOB_RUN_FORMAT}`), which `hybridlab report` does not read: its summary is what `bench --jobs` prints; give run files {WRITTEN_BY}"
        )),
    }
}

/// Parses the text of a `bench --out` run file; the error completes a sentence that starts
/// with the file's name.
pub fn parse_run_file(text: &str) -> Result<RunFile, String> {
    const WRITTEN_BY: &str = "written by `hybridlab bench --out`";
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| format!("is not JSON ({err}); give a run file {WRITTEN_BY}"))?;
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(RUN_FILE_FORMAT) => bench_file(value),
        Some(other) => Err(format!(
            "is a `{other}` file, but this hybridlab reads `{RUN_FILE_FORMAT}`; re-run the benchmark with this version's `hybridlab bench --out`"
        )),
        None => Err(format!(
            "has no `format` field, so it is not a run file; give a run file {WRITTEN_BY}"
        )),
    }
}

fn bench_file(value: serde_json::Value) -> Result<RunFile, String> {
    let file: RunFile = serde_json::from_value(value).map_err(|err| {
        format!("is not a valid `{RUN_FILE_FORMAT}` run file ({err}); re-run `hybridlab bench --out` rather than editing it")
    })?;
    if file.runs.is_empty() {
        return Err("holds no runs; give a run file written by `hybridlab bench --out`".into());
    }
    Ok(file)
}

/// Every run of `files` with its label: the run's own label, unless a label occurs in two
/// files (two benchmarks both labelled `c=8`); then every run is shown as
/// `<file stem>: <label>`. Whatever is still the same (a file given twice) gets ` (2)`,
/// ` (3)`, so each label names one run.
pub fn label_runs(files: Vec<(PathBuf, RunFile)>) -> Vec<LabeledRun> {
    label_all(
        files
            .into_iter()
            .map(|(path, file)| (path, ReportFile::Bench(file)))
            .collect(),
    )
    .runs
}

/// [`label_runs`] over files of every kind: labels are unique across proxy and upload runs.
pub fn label_all(files: Vec<(PathBuf, ReportFile)>) -> ReportRuns {
    // (file, label in the file, interrupted) of every run, proxy and upload alike.
    let mut entries: Vec<(usize, String, bool)> = Vec::new();
    for (index, (_, file)) in files.iter().enumerate() {
        match file {
            ReportFile::Bench(file) => entries.extend(
                file.runs
                    .iter()
                    .map(|run| (index, run.config.label.clone(), run.config.interrupted)),
            ),
            ReportFile::Upload(file) => entries.extend(
                file.runs
                    .iter()
                    .map(|run| (index, upload_label(run), run.interrupted)),
            ),
        }
    }
    let mut files_by_label: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (index, label, _) in &entries {
        files_by_label.entry(label).or_default().insert(*index);
    }
    let prefix_with_stem = files_by_label.values().any(|indexes| indexes.len() > 1);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let labels: Vec<String> = entries
        .iter()
        .map(|(index, label, interrupted)| {
            let stem = stem_of(&files[*index].0);
            let mut label = if prefix_with_stem {
                format!("{stem}: {label}")
            } else {
                label.clone()
            };
            if *interrupted {
                label.push_str(" (partial)");
            }
            let count = seen.entry(label.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                label = format!("{label} ({count})");
            }
            label
        })
        .collect();

    let mut labels = labels.into_iter();
    let mut out = ReportRuns::default();
    for (file_index, (path, file)) in files.into_iter().enumerate() {
        match file {
            ReportFile::Bench(file) => {
                for run in file.runs {
                    out.runs.push(LabeledRun {
                        label: labels.next().unwrap_or_default(),
                        file: path.clone(),
                        file_index,
                        run,
                    });
                }
            }
            ReportFile::Upload(file) => {
                for run in file.runs {
                    out.uploads.push(LabeledUpload {
                        label: labels.next().unwrap_or_default(),
                        file: path.clone(),
                        file_index,
                        run,
                    });
                }
            }
        }
    }
    out
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

    #[test]
    fn every_kind_of_run_file_is_recognised() {
        use crate::report::fixtures::upload_run;
        let bench = run_file_json(&[run_at("c=1", 1, 5)]);
        let upload_file = serde_json::to_string(&UploadRunFile::new(vec![upload_run(
            Some("m=512"),
            Some(512),
            3,
        )]))
        .expect("serialises");
        // A file of the old `bench --upload --out`: one bare run, no format, no label.
        let mut bare = upload_run(None, None, 3);
        bare.started_at = None;
        let bare = serde_json::to_string(&bare).expect("serialises");
        let jobs = r#"{"format": "hybridlab-bench-jobs/2", "runs": []}"#;
        let kind = |text: &str| {
            detect_kind(&serde_json::from_str(text).expect("JSON")).expect("a known kind")
        };
        assert_eq!(kind(&bench), FileKind::Bench);
        assert_eq!(kind(&upload_file), FileKind::Upload);
        assert_eq!(kind(&bare), FileKind::BareUpload);
        assert_eq!(kind(jobs), FileKind::Jobs);

        assert!(matches!(
            parse_report_file(&bench),
            Ok(ReportFile::Bench(_))
        ));
        match parse_report_file(&upload_file) {
            Ok(ReportFile::Upload(file)) => {
                assert_eq!(file.runs[0].label.as_deref(), Some("m=512"));
                assert_eq!(file.runs[0].resizer_reports.len(), 3);
            }
            other => panic!("an upload file: {other:?}"),
        }
        match parse_report_file(&bare) {
            Ok(ReportFile::Upload(file)) => {
                assert_eq!(file.runs.len(), 1);
                assert_eq!(upload_label(&file.runs[0]), "upload c=2");
            }
            other => panic!("a bare upload run: {other:?}"),
        }
    }

    #[test]
    fn files_the_report_cannot_read_are_refused_with_one_line() {
        let cases = [
            (
                r#"{"format": "hybridlab-bench-jobs/2", "runs": []}"#,
                "is a run of `hybridlab bench --jobs`",
            ),
            (r#"{"format": "something/9"}"#, "is a `something/9` file"),
            (r#"{"uploads": 3}"#, "has no `format` field"),
            (
                r#"{"format": "hybridlab-upload-bench/1", "runs": [{}]}"#,
                "is not a valid `hybridlab-upload-bench/1` run file",
            ),
            (
                r#"{"format": "hybridlab-upload-bench/1", "runs": []}"#,
                "holds no runs",
            ),
            (
                r#"{"uploads": 3, "images_per_s": 1.0, "via": "server"}"#,
                "looks like an upload run but is not a valid one",
            ),
        ];
        for (text, expected) in cases {
            let problem = parse_report_file(text).expect_err(text);
            assert!(problem.starts_with(expected), "{problem}");
            assert!(!problem.contains('\n'), "{problem}");
            assert!(problem.contains("hybridlab bench"), "{problem}");
        }
    }

    #[test]
    fn labels_are_unique_across_proxy_and_upload_runs() {
        use crate::report::fixtures::upload_run;
        let mut partial = upload_run(Some("m=512"), None, 2);
        partial.interrupted = true;
        let runs = label_all(vec![
            (
                PathBuf::from("a.json"),
                ReportFile::Bench(RunFile::new(vec![run_at("m=512", 1, 5)])),
            ),
            (
                PathBuf::from("b.json"),
                ReportFile::Upload(UploadRunFile::new(vec![
                    upload_run(Some("m=512"), None, 2),
                    partial,
                ])),
            ),
        ]);
        let labels: Vec<&str> = runs
            .runs
            .iter()
            .map(|r| r.label.as_str())
            .chain(runs.uploads.iter().map(|r| r.label.as_str()))
            .collect();
        assert_eq!(labels, ["a: m=512", "b: m=512", "b: m=512 (partial)"]);
        assert_eq!(runs.uploads[1].file_index, 1);
        assert_eq!(runs.len(), 3);
    }
}
