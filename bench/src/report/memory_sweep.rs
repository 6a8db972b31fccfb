//! Memory sweeps among the report's runs: a file whose runs were made at two or more memory
//! sizes (`bench --memory 128,256,...`), of the proxy (each run's `config.memory_mb` and the
//! REPORT lines of its samples) or of the resizer (each upload run's `memory_mb` and
//! `resizer_reports`). The arithmetic is `bench::memory`'s, the same `bench` prints.

use std::collections::{BTreeMap, BTreeSet};

use hybridlab_wire::report::Report;

use super::input::{LabeledRun, LabeledUpload};
use crate::memory::{self, MemoryPoint, Picks};

/// Which function a sweep measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweptFunction {
    /// The proxy, invoked by `bench --memory`.
    Proxy,
    /// The resizer, run by the uploads of `bench --upload --memory`.
    Resizer,
}

impl SweptFunction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Resizer => "resizer",
        }
    }
}

/// One memory size of a sweep: the run's label and its point.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepLevel {
    pub label: String,
    pub point: MemoryPoint,
}

/// The runs of one file at several memory sizes, in order of memory.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySweep {
    /// The file's stem.
    pub name: String,
    pub file_index: usize,
    pub function: SweptFunction,
    pub levels: Vec<SweepLevel>,
    /// `None` when every level had errors.
    pub picks: Option<Picks>,
}

impl MemorySweep {
    /// The pick names of `memory_mb`: `cheapest`, `fastest`, `balanced`, in that order.
    pub fn picks_of(&self, memory_mb: u32) -> Vec<&'static str> {
        let Some(picks) = self.picks else {
            return Vec::new();
        };
        [
            ("cheapest", picks.cheapest_mb),
            ("fastest", picks.fastest_mb),
            ("balanced", picks.balanced_mb),
        ]
        .into_iter()
        .filter(|&(_, mb)| mb == memory_mb)
        .map(|(name, _)| name)
        .collect()
    }
}

/// What a sweep needs of one run, whatever its kind.
struct PricedRun {
    file_index: usize,
    file_stem: String,
    label: String,
    memory_mb: Option<u32>,
    reports: Vec<Report>,
    errors: u64,
}

/// The sweeps among `runs`, grouped by file: a file is kept when its runs have two or more
/// memory sizes with REPORT lines to price.
fn sweeps_of(function: SweptFunction, runs: Vec<PricedRun>) -> Vec<MemorySweep> {
    let mut by_file: BTreeMap<usize, Vec<PricedRun>> = BTreeMap::new();
    for run in runs {
        by_file.entry(run.file_index).or_default().push(run);
    }
    by_file
        .into_iter()
        .filter_map(|(file_index, runs)| {
            let sizes: BTreeSet<u32> = runs.iter().filter_map(|run| run.memory_mb).collect();
            if sizes.len() < 2 {
                return None;
            }
            let name = runs
                .first()
                .map(|run| run.file_stem.clone())
                .unwrap_or_default();
            let mut levels: Vec<SweepLevel> = runs
                .into_iter()
                .filter_map(|run| {
                    let point = memory::point(run.memory_mb?, &run.reports, run.errors)?;
                    Some(SweepLevel {
                        label: run.label,
                        point,
                    })
                })
                .collect();
            levels.sort_by_key(|level| level.point.memory_mb);
            if levels.len() < 2 {
                return None;
            }
            let points: Vec<MemoryPoint> = levels.iter().map(|l| l.point.clone()).collect();
            Some(MemorySweep {
                name,
                file_index,
                function,
                picks: memory::picks(&points),
                levels,
            })
        })
        .collect()
}

/// The memory sweeps among the proxy runs and the upload runs.
pub fn memory_sweeps(runs: &[LabeledRun], uploads: &[LabeledUpload]) -> Vec<MemorySweep> {
    let proxy = runs
        .iter()
        .map(|labeled| {
            let run = &labeled.run;
            let reports: Vec<Report> = run
                .samples
                .iter()
                .filter_map(|sample| sample.lambda.clone())
                .collect();
            PricedRun {
                file_index: labeled.file_index,
                file_stem: labeled.file_stem(),
                label: labeled.label.clone(),
                memory_mb: run.config.memory_mb,
                reports,
                errors: run.summary.invocations.saturating_sub(run.summary.ok),
            }
        })
        .collect();
    let resizer = uploads
        .iter()
        .map(|labeled| {
            let run = &labeled.run;
            PricedRun {
                file_index: labeled.file_index,
                file_stem: labeled.file_stem(),
                label: labeled.label.clone(),
                memory_mb: run.memory_mb,
                reports: run.resizer_reports.clone(),
                errors: run.failed + run.errors,
            }
        })
        .collect();
    let mut sweeps = sweeps_of(SweptFunction::Proxy, proxy);
    sweeps.extend(sweeps_of(SweptFunction::Resizer, resizer));
    sweeps
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{memory_run, run_at, upload_run};
    use crate::report::input::{ReportFile, label_all};
    use crate::uploads::UploadRunFile;

    #[test]
    fn a_file_of_runs_at_several_memory_sizes_is_a_sweep_with_picks() {
        let labeled = label_all(vec![
            (
                PathBuf::from("memory.json"),
                ReportFile::Bench(RunFile::new(vec![
                    memory_run(1024, 10, 100.0),
                    memory_run(128, 10, 100.0),
                    memory_run(512, 10, 100.0),
                ])),
            ),
            (
                PathBuf::from("plain.json"),
                ReportFile::Bench(RunFile::new(vec![run_at("c=1", 1, 10)])),
            ),
        ]);
        let sweeps = memory_sweeps(&labeled.runs, &labeled.uploads);
        assert_eq!(sweeps.len(), 1);
        let sweep = &sweeps[0];
        assert_eq!(sweep.name, "memory");
        assert_eq!(sweep.function, SweptFunction::Proxy);
        let sizes: Vec<u32> = sweep.levels.iter().map(|l| l.point.memory_mb).collect();
        assert_eq!(sizes, [128, 512, 1024]);
        assert_eq!(sweep.levels[0].label, "m=128");
        // 800 ms at 128 MB, 200 ms at 512 MB, 100 ms at 1,024 MB: the duration halves as
        // memory doubles, so the cost is flat but for rounding, and 1,024 MB is fastest.
        let expected: Vec<MemoryPoint> = [128, 512, 1024]
            .into_iter()
            .map(|mb| {
                let reports: Vec<Report> = memory_run(mb, 10, 100.0)
                    .samples
                    .into_iter()
                    .filter_map(|s| s.lambda)
                    .collect();
                memory::point(mb, &reports, 0).expect("a point")
            })
            .collect();
        assert_eq!(sweep.picks, memory::picks(&expected));
        assert_eq!(sweep.picks.map(|p| p.fastest_mb), Some(1024));
        assert!(sweep.picks_of(1024).contains(&"fastest"));
    }

    #[test]
    fn an_upload_file_with_the_resizers_reports_is_a_resizer_sweep() {
        let labeled = label_all(vec![(
            PathBuf::from("resizer.json"),
            ReportFile::Upload(UploadRunFile::new(vec![
                upload_run(Some("m=256"), Some(256), 5),
                upload_run(Some("m=1024"), Some(1024), 5),
            ])),
        )]);
        let sweeps = memory_sweeps(&labeled.runs, &labeled.uploads);
        assert_eq!(sweeps.len(), 1);
        assert_eq!(sweeps[0].function, SweptFunction::Resizer);
        assert_eq!(sweeps[0].levels[1].point.invocations, 5);
        assert_eq!(sweeps[0].levels[1].label, "m=1024");
    }

    #[test]
    fn one_memory_size_or_no_reports_is_no_sweep() {
        let one_size = label_all(vec![(
            PathBuf::from("a.json"),
            ReportFile::Bench(RunFile::new(vec![
                memory_run(512, 5, 10.0),
                memory_run(512, 5, 10.0),
            ])),
        )]);
        assert!(memory_sweeps(&one_size.runs, &one_size.uploads).is_empty());
        let unpriced = label_all(vec![(
            PathBuf::from("b.json"),
            ReportFile::Upload(UploadRunFile::new(vec![
                upload_run(Some("m=256"), Some(256), 0),
                upload_run(Some("m=512"), Some(512), 0),
            ])),
        )]);
        assert!(memory_sweeps(&unpriced.runs, &unpriced.uploads).is_empty());
    }
}
