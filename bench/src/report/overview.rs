//! What every run has whatever its kind (proxy or upload): where it ran, what it cost in
//! full, and how repeats of one configuration spread. Plain functions of the runs, for the
//! environment, cost and repeats sections and `summary.csv`.

use std::path::Path;

use hybridlab_wire::report::Report;

use super::input::ReportRuns;
use crate::memory;
use crate::model::{MeasureSummary, RunEnvironment};

/// Which benchmark made a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunKind {
    /// `bench`: invocations of the Lambda proxy.
    Invoke,
    /// `bench --upload`: images through the event-driven pipeline.
    Upload,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::Upload => "upload",
        }
    }

    /// The measure a run of this kind is summed up by.
    pub fn headline(self) -> &'static str {
        match self {
            Self::Invoke => "client",
            Self::Upload => "to_final",
        }
    }
}

/// Where a run's memory size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// The bench set or read it (`config.memory_mb`, `memory_mb`).
    Configured,
    /// The run file did not say, but the function's REPORT lines did.
    ReportLines,
}

/// The facts of one run that every section needs.
#[derive(Debug, Clone)]
pub struct RunFacts<'a> {
    pub label: &'a str,
    pub file: &'a Path,
    pub file_index: usize,
    pub kind: RunKind,
    /// The label as the file has it, before the report made it unique: repeats share it.
    pub label_in_file: String,
    pub interrupted: bool,
    pub target: &'a str,
    pub memory: Option<(u32, MemorySource)>,
    pub environment: Option<&'a RunEnvironment>,
    /// The image sent or uploaded, and its size, when recorded.
    pub input: Option<&'a str>,
    pub input_bytes: Option<u64>,
    pub elapsed_s: f64,
    /// Invocations (proxy) or images (upload).
    pub invocations: u64,
    pub errors: u64,
    /// Invocations or finished images per second.
    pub throughput_per_s: f64,
    pub measures: &'a [MeasureSummary],
    /// The Lambda cost at list prices: the proxy's invocations, or the resizer's from its
    /// REPORT lines; `None` when the file has nothing to price.
    pub lambda_usd: Option<f64>,
}

impl RunFacts<'_> {
    pub fn measure(&self, name: &str) -> Option<&MeasureSummary> {
        self.measures.iter().find(|m| m.name == name)
    }

    /// Whether the run was made on the local sandbox rather than AWS.
    pub fn on_sandbox(&self) -> bool {
        match self.environment {
            Some(environment) => environment.target_kind == "sandbox",
            None => self.target.starts_with("local sandbox"),
        }
    }
}

/// The resizer's cost at list prices from its REPORT lines: each invocation's billed
/// GB-seconds and its request; `None` without any line.
pub fn resizer_cost_usd(reports: &[Report]) -> Option<f64> {
    (!reports.is_empty()).then(|| {
        reports
            .iter()
            .map(|r| memory::cost_per_invocation(r.memory_size_mb, r.billed_duration_ms))
            .sum()
    })
}

/// The facts of every run of `runs`, proxy runs first, each kind in the order of the files.
pub fn facts(runs: &ReportRuns) -> Vec<RunFacts<'_>> {
    let proxy = runs.runs.iter().map(|labeled| {
        let run = &labeled.run;
        let reported = run
            .samples
            .iter()
            .find_map(|s| s.lambda.as_ref())
            .map(|r| (r.memory_size_mb, MemorySource::ReportLines));
        let environment = run.config.environment.as_ref();
        RunFacts {
            label: &labeled.label,
            file: &labeled.file,
            file_index: labeled.file_index,
            kind: RunKind::Invoke,
            label_in_file: run.config.label.clone(),
            interrupted: run.config.interrupted,
            target: &run.config.target,
            memory: run
                .config
                .memory_mb
                .map(|mb| (mb, MemorySource::Configured))
                .or(reported),
            environment,
            input: environment.and_then(|e| e.input.as_deref()),
            input_bytes: environment.and_then(|e| e.input_bytes),
            elapsed_s: run.summary.elapsed_s,
            invocations: run.summary.invocations,
            errors: run.summary.invocations.saturating_sub(run.summary.ok),
            throughput_per_s: run.summary.throughput_per_s,
            measures: &run.summary.measures,
            lambda_usd: Some(run.summary.cost.total_usd),
        }
    });
    let uploads = runs.uploads.iter().map(|labeled| {
        let run = &labeled.run;
        let reported = run
            .resizer_reports
            .first()
            .map(|r| (r.memory_size_mb, MemorySource::ReportLines));
        RunFacts {
            label: &labeled.label,
            file: &labeled.file,
            file_index: labeled.file_index,
            kind: RunKind::Upload,
            label_in_file: super::input::upload_label(run),
            interrupted: run.interrupted,
            target: &run.target,
            memory: run
                .memory_mb
                .map(|mb| (mb, MemorySource::Configured))
                .or(reported),
            environment: run.environment.as_ref(),
            input: Some(run.file.as_str()),
            input_bytes: Some(run.file_bytes),
            elapsed_s: run.elapsed_s,
            invocations: run.uploads,
            errors: run.failed + run.errors,
            throughput_per_s: run.images_per_s,
            measures: &run.measures,
            lambda_usd: resizer_cost_usd(&run.resizer_reports),
        }
    });
    proxy.chain(uploads).collect()
}

/// The instance's share of a run: its hourly list price times the run's elapsed hours. The
/// instance bills by the second whether or not a benchmark runs, so this is the part of its
/// bill the run used, not an extra charge.
pub fn instance_share_usd(hourly_usd: f64, elapsed_s: f64) -> f64 {
    hourly_usd * elapsed_s.max(0.0) / 3600.0
}

/// A run's cost in full: Lambda and the image server's share, each when known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullCost {
    pub lambda_usd: Option<f64>,
    pub instance_usd: Option<f64>,
}

impl FullCost {
    /// The sum of the parts that are known.
    pub fn total_usd(&self) -> f64 {
        self.lambda_usd.unwrap_or(0.0) + self.instance_usd.unwrap_or(0.0)
    }

    pub fn is_complete(&self) -> bool {
        self.lambda_usd.is_some() && self.instance_usd.is_some()
    }
}

pub fn full_cost(run: &RunFacts<'_>) -> FullCost {
    FullCost {
        lambda_usd: run.lambda_usd,
        instance_usd: run
            .environment
            .and_then(|e| e.instance_hourly_usd)
            .map(|hourly| instance_share_usd(hourly, run.elapsed_s)),
    }
}

/// A mean and, for two values or more, the sample standard deviation (n − 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanStdev {
    pub mean: f64,
    pub stdev: Option<f64>,
}

pub fn mean_stdev(values: &[f64]) -> Option<MeanStdev> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let stdev = (values.len() >= 2).then(|| {
        let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        (squares / (n - 1.0)).sqrt()
    });
    Some(MeanStdev { mean, stdev })
}

/// Runs of one configuration made more than once: the same kind and label in several files.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    pub kind: RunKind,
    pub label: String,
    /// The report labels of the runs.
    pub runs: Vec<String>,
    pub p50_ms: Option<MeanStdev>,
    pub p99_ms: Option<MeanStdev>,
    pub throughput_per_s: Option<MeanStdev>,
}

/// The repeats among `runs`, in order of first appearance. Partial runs are left out: a run
/// stopped early is not a repeat of a complete one.
pub fn repeats(runs: &[RunFacts<'_>]) -> Vec<Repeat> {
    let mut groups: Vec<((RunKind, &str), Vec<&RunFacts<'_>>)> = Vec::new();
    for run in runs.iter().filter(|run| !run.interrupted) {
        let key = (run.kind, run.label_in_file.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
        .into_iter()
        .filter(|(_, members)| {
            let mut files: Vec<usize> = members.iter().map(|m| m.file_index).collect();
            files.dedup();
            files.len() >= 2
        })
        .map(|((kind, label), members)| {
            let of = |pick: fn(&MeasureSummary) -> f64| {
                let values: Vec<f64> = members
                    .iter()
                    .filter_map(|m| m.measure(kind.headline()).map(pick))
                    .collect();
                mean_stdev(&values)
            };
            let throughputs: Vec<f64> = members.iter().map(|m| m.throughput_per_s).collect();
            Repeat {
                kind,
                label: label.to_owned(),
                runs: members.iter().map(|m| m.label.to_owned()).collect(),
                p50_ms: of(|m| m.p50_ms),
                p99_ms: of(|m| m.p99_ms),
                throughput_per_s: mean_stdev(&throughputs),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{environment, run_at, run_of, sample, upload_run};
    use crate::report::input::{ReportFile, label_all};
    use crate::uploads::UploadRunFile;

    #[test]
    fn the_instance_share_is_its_hourly_price_times_the_hours_of_the_run() {
        assert!((instance_share_usd(0.0104, 3600.0) - 0.0104).abs() < 1e-12);
        assert!((instance_share_usd(0.0416, 90.0) - 0.00104).abs() < 1e-12);
        assert_eq!(instance_share_usd(1.0, -5.0), 0.0);
    }

    #[test]
    fn the_full_cost_adds_the_instance_share_when_the_run_recorded_it() {
        let mut recorded = run_at("c=1", 1, 20);
        recorded.config.environment = Some(environment(true));
        recorded.summary.elapsed_s = 1800.0;
        let old = run_at("c=1", 1, 20);
        let runs = label_all(vec![
            (
                PathBuf::from("new.json"),
                ReportFile::Bench(RunFile::new(vec![recorded.clone()])),
            ),
            (
                PathBuf::from("old.json"),
                ReportFile::Bench(RunFile::new(vec![old.clone()])),
            ),
        ]);
        let facts = facts(&runs);
        let new_cost = full_cost(&facts[0]);
        assert_eq!(new_cost.lambda_usd, Some(recorded.summary.cost.total_usd));
        let share = new_cost.instance_usd.expect("an instance share");
        assert!((share - 0.0052).abs() < 1e-12, "{share}");
        assert!(new_cost.is_complete());
        assert!((new_cost.total_usd() - (share + recorded.summary.cost.total_usd)).abs() < 1e-15);
        let old_cost = full_cost(&facts[1]);
        assert_eq!(old_cost.instance_usd, None);
        assert!(!old_cost.is_complete());
        assert_eq!(old_cost.total_usd(), old.summary.cost.total_usd);
    }

    #[test]
    fn the_resizers_cost_comes_from_its_report_lines() {
        let run = upload_run(None, Some(512), 4);
        let expected: f64 = run
            .resizer_reports
            .iter()
            .map(|r| memory::cost_per_invocation(512, r.billed_duration_ms))
            .sum();
        assert_eq!(resizer_cost_usd(&run.resizer_reports), Some(expected));
        assert_eq!(resizer_cost_usd(&[]), None);
    }

    #[test]
    fn sandbox_runs_are_told_from_aws_runs() {
        let mut aws = run_at("aws", 1, 5);
        aws.config.target = "AWS eu-west-1".into();
        let mut recorded_sandbox = run_at("sb", 1, 5);
        recorded_sandbox.config.environment = Some(environment(false));
        let runs = label_all(vec![(
            PathBuf::from("a.json"),
            ReportFile::Bench(RunFile::new(vec![
                aws,
                run_at("old", 1, 5),
                recorded_sandbox,
            ])),
        )]);
        let on_sandbox: Vec<bool> = facts(&runs).iter().map(RunFacts::on_sandbox).collect();
        assert_eq!(on_sandbox, [false, true, true]);
    }

    #[test]
    fn memory_comes_from_the_configuration_or_else_the_report_lines() {
        let mut configured = run_at("m", 1, 5);
        configured.config.memory_mb = Some(1024);
        let runs = label_all(vec![
            (
                PathBuf::from("a.json"),
                ReportFile::Bench(RunFile::new(vec![configured, run_at("r", 1, 5)])),
            ),
            (
                PathBuf::from("u.json"),
                ReportFile::Upload(UploadRunFile::new(vec![upload_run(None, None, 3)])),
            ),
        ]);
        let memory: Vec<Option<(u32, MemorySource)>> =
            facts(&runs).iter().map(|f| f.memory).collect();
        assert_eq!(
            memory,
            [
                Some((1024, MemorySource::Configured)),
                Some((512, MemorySource::ReportLines)),
                None
            ]
        );
    }

    #[test]
    fn mean_and_sample_deviation() {
        let spread = mean_stdev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).expect("values");
        assert_eq!(spread.mean, 5.0);
        // Sum of squares 32 over n - 1 = 7.
        assert!((spread.stdev.expect("two or more") - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(
            mean_stdev(&[3.0]),
            Some(MeanStdev {
                mean: 3.0,
                stdev: None
            })
        );
        assert_eq!(mean_stdev(&[]), None);
    }

    #[test]
    fn the_same_label_in_several_files_is_a_repeat() {
        let run = |ms: u64| {
            run_of(
                "c=1",
                1,
                (0..10).map(|i| sample(i, ms, 0.5, false)).collect(),
            )
        };
        let mut partial = run(9_000);
        partial.config.interrupted = true;
        let runs = label_all(vec![
            (
                PathBuf::from("r1.json"),
                ReportFile::Bench(RunFile::new(vec![run(1_000), run_at("c=8", 8, 10)])),
            ),
            (
                PathBuf::from("r2.json"),
                ReportFile::Bench(RunFile::new(vec![run(2_000)])),
            ),
            (
                PathBuf::from("r3.json"),
                ReportFile::Bench(RunFile::new(vec![run(3_000), partial])),
            ),
            (
                PathBuf::from("u1.json"),
                ReportFile::Upload(UploadRunFile::new(vec![upload_run(None, None, 4)])),
            ),
            (
                PathBuf::from("u2.json"),
                ReportFile::Upload(UploadRunFile::new(vec![upload_run(None, None, 4)])),
            ),
        ]);
        let found = repeats(&facts(&runs));
        assert_eq!(found.len(), 2, "{found:?}");
        let c1 = &found[0];
        assert_eq!((c1.kind, c1.label.as_str()), (RunKind::Invoke, "c=1"));
        assert_eq!(c1.runs, ["r1: c=1", "r2: c=1", "r3: c=1"]);
        let p50 = c1.p50_ms.expect("p50s");
        // 1, 2 and 3 ms, within the histograms' 3 significant digits.
        assert!((p50.mean - 2.0).abs() < 0.01, "{p50:?}");
        assert!((p50.stdev.expect("three runs") - 1.0).abs() < 0.01);
        assert_eq!(found[1].kind, RunKind::Upload);
        assert_eq!(found[1].label, "upload c=2");
        assert_eq!(found[1].p50_ms.and_then(|s| s.stdev), Some(0.0));
    }
}
