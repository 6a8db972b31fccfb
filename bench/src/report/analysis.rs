//! The numbers the report shows beyond each run's stored summary: the client latency
//! percentile distribution, cold against warm invocations, sweeps over concurrency and the
//! comparison of runs. Plain functions of the runs, built on `bench::stats`, so the plots and
//! the tables agree with `hybridlab bench`.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;

use super::input::LabeledRun;
use crate::model::{Run, Sample};
use crate::stats;

/// How far right the percentile distribution goes, in nines: 4 is 99.99 %.
pub const NINES_SHOWN: f64 = 4.0;
/// Points of a percentile distribution curve: enough that its steps look like steps.
const DISTRIBUTION_POINTS: u32 = 200;

/// How many nines `quantile` has: 0.9 is 1, 0.99 is 2, 0.999 is 3. HdrHistogram plots
/// percentiles on this scale so the tail gets as much room as the middle.
pub fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).log10()
}

/// The quantile with `nines` nines: the inverse of [`nines`].
pub fn quantile_of_nines(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// The client latency histogram of `run`: from its samples, or, for a run file trimmed of
/// them, from the buckets its summary keeps.
pub fn client_histogram(run: &Run) -> Histogram<u64> {
    if !run.samples.is_empty() {
        return stats::histogram_of(&run.samples, "client");
    }
    run.summary
        .measure("client")
        .map_or_else(stats::new_histogram, histogram_of_measure)
}

/// The histogram a stored measure keeps as `[value_us, count]` buckets.
pub fn histogram_of_measure(measure: &crate::model::MeasureSummary) -> Histogram<u64> {
    let mut histogram = stats::new_histogram();
    for &[value_us, count] in &measure.histogram.buckets {
        // The histogram resizes itself, so no value is out of range.
        let _ = histogram.record_n(value_us, count);
    }
    histogram
}

/// HdrHistogram's percentile distribution of `histogram` as `(nines, ms)` points, from the
/// minimum (0 nines) to 99.99 %; empty for an empty histogram.
pub fn percentile_distribution(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    (0..=DISTRIBUTION_POINTS)
        .map(|step| {
            let nines = NINES_SHOWN * f64::from(step) / f64::from(DISTRIBUTION_POINTS);
            let value_us = histogram.value_at_quantile(quantile_of_nines(nines));
            (nines, value_us as f64 / 1000.0)
        })
        .collect()
}

/// How one set of values spreads, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub count: u64,
    pub min_ms: f64,
    pub p25_ms: f64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The spread of measure `name` over `samples`; `None` if no sample has it.
pub fn spread_of(samples: &[Sample], name: &str) -> Option<Spread> {
    let histogram = stats::histogram_of(samples, name);
    if histogram.is_empty() {
        return None;
    }
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    Some(Spread {
        count: histogram.len(),
        min_ms: histogram.min() as f64 / 1000.0,
        p25_ms: ms(0.25),
        p50_ms: ms(0.50),
        p75_ms: ms(0.75),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
    })
}

/// Cold-start invocations against warm ones. Only invocations with a Lambda REPORT count:
/// without one (a throttled call) there is no telling whether it would have been cold.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdWarm {
    pub cold_client: Option<Spread>,
    pub warm_client: Option<Spread>,
    pub cold_duration: Option<Spread>,
    pub warm_duration: Option<Spread>,
    pub init_duration: Option<Spread>,
}

impl ColdWarm {
    pub fn has_cold_starts(&self) -> bool {
        self.cold_client.is_some()
    }
}

pub fn cold_warm(run: &Run) -> ColdWarm {
    let (cold, warm): (Vec<Sample>, Vec<Sample>) = run
        .samples
        .iter()
        .filter(|sample| sample.lambda.is_some())
        .cloned()
        .partition(Sample::cold_start);
    ColdWarm {
        cold_client: spread_of(&cold, "client"),
        warm_client: spread_of(&warm, "client"),
        cold_duration: spread_of(&cold, "lambda_duration"),
        warm_duration: spread_of(&warm, "lambda_duration"),
        init_duration: spread_of(&cold, "init_duration"),
    }
}

/// One run's place in a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    pub label: String,
    pub concurrency: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub throughput_per_s: f64,
    pub invocations: u64,
    /// Count per outcome other than `ok`.
    pub errors: BTreeMap<crate::model::Outcome, u64>,
}

/// Runs of one benchmark at several concurrency levels, in order of concurrency.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The file the sweep came from when several files each hold one; `None` for the only
    /// sweep.
    pub name: Option<String>,
    pub points: Vec<SweepPoint>,
}

/// The sweeps among `runs`: each file of runs at several concurrency levels is one (so a
/// `--sweep` before a change and one after are two lines); if no file has several levels, all
/// runs together are one (single runs at `-c 1`, `-c 4`, ... given as separate files).
/// Empty unless some sweep has at least two concurrency levels.
pub fn sweeps(runs: &[LabeledRun]) -> Vec<Sweep> {
    let mut by_file: BTreeMap<usize, Vec<&LabeledRun>> = BTreeMap::new();
    for run in runs {
        by_file.entry(run.file_index).or_default().push(run);
    }
    let levels = |group: &[&LabeledRun]| {
        group
            .iter()
            .map(|run| run.run.config.shape.concurrency())
            .collect::<BTreeSet<_>>()
            .len()
    };
    let per_file = by_file.values().any(|group| levels(group) >= 2);
    let groups: Vec<(Option<String>, Vec<&LabeledRun>)> = if per_file && by_file.len() > 1 {
        by_file
            .into_values()
            .map(|group| (group.first().map(|run| run.file_stem()), group))
            .collect()
    } else {
        vec![(None, runs.iter().collect())]
    };
    if !groups.iter().any(|(_, group)| levels(group) >= 2) {
        return Vec::new();
    }
    groups
        .into_iter()
        .map(|(name, group)| {
            let mut points: Vec<SweepPoint> = group
                .iter()
                .filter_map(|labeled| {
                    let summary = &labeled.run.summary;
                    let client = summary.measure("client")?;
                    Some(SweepPoint {
                        label: labeled.label.clone(),
                        concurrency: labeled.run.config.shape.concurrency(),
                        p50_ms: client.p50_ms,
                        p90_ms: client.p90_ms,
                        p99_ms: client.p99_ms,
                        throughput_per_s: summary.throughput_per_s,
                        invocations: summary.invocations,
                        errors: summary.errors.clone(),
                    })
                })
                .collect();
            points.sort_by_key(|point| point.concurrency);
            Sweep { name, points }
        })
        .filter(|sweep| !sweep.points.is_empty())
        .collect()
}

/// One line of the side-by-side table: a metric and its value in each run.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub metric: &'static str,
    /// Decimals the values are shown with.
    pub decimals: usize,
    /// One per run, in the report's order; `None` where the run does not have it.
    pub values: Vec<Option<f64>>,
}

type Metric = (&'static str, usize, fn(&Run) -> Option<f64>);

fn measure(run: &Run, name: &str, pick: fn(&crate::model::MeasureSummary) -> f64) -> Option<f64> {
    run.summary.measure(name).map(pick)
}

/// The metrics compared, with their decimals.
const METRICS: [Metric; 20] = [
    ("invocations", 0, |r| Some(r.summary.invocations as f64)),
    ("ok", 0, |r| Some(r.summary.ok as f64)),
    ("errors", 0, |r| {
        Some(r.summary.invocations.saturating_sub(r.summary.ok) as f64)
    }),
    ("error rate (%)", 2, |r| {
        let invocations = r.summary.invocations;
        (invocations > 0)
            .then(|| invocations.saturating_sub(r.summary.ok) as f64 * 100.0 / invocations as f64)
    }),
    ("throughput (/s)", 1, |r| Some(r.summary.throughput_per_s)),
    ("cold starts", 0, |r| Some(r.summary.cold_starts as f64)),
    ("client p50 (ms)", 2, |r| measure(r, "client", |m| m.p50_ms)),
    ("client p90 (ms)", 2, |r| measure(r, "client", |m| m.p90_ms)),
    ("client p99 (ms)", 2, |r| measure(r, "client", |m| m.p99_ms)),
    ("client p99.9 (ms)", 2, |r| {
        measure(r, "client", |m| m.p999_ms)
    }),
    ("client max (ms)", 2, |r| measure(r, "client", |m| m.max_ms)),
    ("client mean (ms)", 2, |r| {
        measure(r, "client", |m| m.mean_ms)
    }),
    ("Lambda duration p50 (ms)", 2, |r| {
        measure(r, "lambda_duration", |m| m.p50_ms)
    }),
    ("Lambda duration p99 (ms)", 2, |r| {
        measure(r, "lambda_duration", |m| m.p99_ms)
    }),
    ("Init Duration p50 (ms)", 2, |r| {
        measure(r, "init_duration", |m| m.p50_ms)
    }),
    ("EC2 total p50 (ms)", 2, |r| {
        measure(r, "ec2_total", |m| m.p50_ms)
    }),
    ("EC2 total p99 (ms)", 2, |r| {
        measure(r, "ec2_total", |m| m.p99_ms)
    }),
    ("GB-seconds", 4, |r| Some(r.summary.cost.gb_seconds)),
    ("cost (USD)", 6, |r| Some(r.summary.cost.total_usd)),
    ("cost per million invocations (USD)", 2, |r| {
        let cost = &r.summary.cost;
        (cost.requests > 0).then(|| cost.total_usd / cost.requests as f64 * 1e6)
    }),
];

/// The side-by-side table of `runs`: every metric at least one of them has.
pub fn comparison(runs: &[LabeledRun]) -> Vec<ComparisonRow> {
    METRICS
        .iter()
        .map(|&(metric, decimals, value)| ComparisonRow {
            metric,
            decimals,
            values: runs.iter().map(|labeled| value(&labeled.run)).collect(),
        })
        .filter(|row| row.values.iter().any(Option::is_some))
        .collect()
}

/// How much `other` differs from `base`, in percent of `base`; `None` when either is missing
/// or `base` is zero and `other` is not (no finite percentage).
pub fn delta_percent(base: Option<f64>, other: Option<f64>) -> Option<f64> {
    let (base, other) = (base?, other?);
    if base == 0.0 {
        return (other == 0.0).then_some(0.0);
    }
    let delta = (other - base) / base * 100.0;
    delta.is_finite().then_some(delta)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{run_at, run_of, sample};
    use crate::report::input::label_runs;

    fn labeled(files: Vec<(&str, Vec<Run>)>) -> Vec<LabeledRun> {
        label_runs(
            files
                .into_iter()
                .map(|(name, runs)| (PathBuf::from(name), RunFile::new(runs)))
                .collect(),
        )
    }

    #[test]
    fn nines_put_90_99_and_99_9_percent_at_1_2_and_3() {
        for (quantile, expected) in [(0.0, 0.0), (0.9, 1.0), (0.99, 2.0), (0.999, 3.0)] {
            assert!((nines(quantile) - expected).abs() < 1e-9, "{quantile}");
            assert!((quantile_of_nines(expected) - quantile).abs() < 1e-12);
        }
    }

    #[test]
    fn the_distribution_runs_from_the_minimum_to_the_tail() {
        // 990 invocations of 1 ms and 10 of 1.5 ms: p99 is 1 ms, p99.9 is 1.5 ms.
        let samples = (0..1000)
            .map(|i| sample(i, if i % 100 == 0 { 1_500 } else { 1_000 }, 1.0, false))
            .collect();
        let run = run_of("r", 1, samples);
        let points = percentile_distribution(&client_histogram(&run));
        assert_eq!(points.first(), Some(&(0.0, 1.0)));
        assert_eq!(points.last(), Some(&(NINES_SHOWN, 1.5)));
        let at = |nines: f64| {
            points
                .iter()
                .find(|(x, _)| (x - nines).abs() < 1e-9)
                .map(|&(_, ms)| ms)
        };
        assert_eq!(at(2.0), Some(1.0));
        assert_eq!(at(3.0), Some(1.5));
        assert!(points.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    }

    #[test]
    fn a_run_without_samples_is_plotted_from_its_stored_buckets() {
        let mut run = run_at("c=1", 1, 200);
        let from_samples = percentile_distribution(&client_histogram(&run));
        run.samples.clear();
        assert_eq!(
            percentile_distribution(&client_histogram(&run)),
            from_samples
        );
    }

    #[test]
    fn cold_and_warm_invocations_are_told_apart() {
        let run = run_at("c=4", 4, 100);
        let split = cold_warm(&run);
        assert!(split.has_cold_starts());
        assert_eq!(split.cold_client.map(|s| s.count), Some(4));
        assert_eq!(split.warm_client.map(|s| s.count), Some(96));
        // 150 ms, within the histogram's 3 significant digits.
        let init = split.init_duration.map_or(0.0, |s| s.p50_ms);
        assert!((init - 150.0).abs() <= 0.15, "{init}");
        let cold_min = split.cold_client.map_or(0.0, |s| s.min_ms);
        let warm_max = split.warm_client.map_or(f64::MAX, |s| s.max_ms);
        assert!(cold_min > warm_max);

        let warm_only = run_of(
            "w",
            1,
            (0..10).map(|i| sample(i, 1_000, 0.8, false)).collect(),
        );
        let split = cold_warm(&warm_only);
        assert!(!split.has_cold_starts());
        assert!(split.init_duration.is_none());
        assert_eq!(split.warm_duration.map(|s| s.count), Some(10));
    }

    #[test]
    fn a_sweep_needs_two_concurrency_levels() {
        assert!(sweeps(&labeled(vec![("one.json", vec![run_at("c=4", 4, 20)])])).is_empty());
        assert!(
            sweeps(&labeled(vec![
                ("a.json", vec![run_at("c=4", 4, 20)]),
                ("b.json", vec![run_at("c=4 again", 4, 20)]),
            ]))
            .is_empty()
        );

        let sweep_file = labeled(vec![(
            "sweep.json",
            vec![
                run_at("c=4", 4, 20),
                run_at("c=1", 1, 20),
                run_at("c=2", 2, 20),
            ],
        )]);
        let found = sweeps(&sweep_file);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, None);
        let levels: Vec<usize> = found[0].points.iter().map(|p| p.concurrency).collect();
        assert_eq!(levels, [1, 2, 4]);
        let p99 = sweep_file[0]
            .run
            .summary
            .measure("client")
            .map(|m| m.p99_ms);
        assert_eq!(found[0].points[2].p99_ms, p99.unwrap_or_default());
    }

    #[test]
    fn single_runs_in_separate_files_form_one_sweep_and_sweep_files_one_each() {
        let singles = labeled(vec![
            ("c1.json", vec![run_at("c=1", 1, 20)]),
            ("c8.json", vec![run_at("c=8", 8, 20)]),
        ]);
        let found = sweeps(&singles);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].points.len(), 2);

        let two_sweeps = labeled(vec![
            (
                "before.json",
                vec![run_at("c=1", 1, 20), run_at("c=2", 2, 20)],
            ),
            (
                "after.json",
                vec![run_at("c=1", 1, 20), run_at("c=2", 2, 20)],
            ),
        ]);
        let names: Vec<Option<String>> = sweeps(&two_sweeps).into_iter().map(|s| s.name).collect();
        assert_eq!(names, [Some("before".to_owned()), Some("after".to_owned())]);
    }

    #[test]
    fn the_comparison_delta_is_relative_to_the_first_run() {
        // Values under 2048 µs are exact in a 3-digit HdrHistogram.
        let fast = run_of(
            "fast",
            1,
            (0..10).map(|i| sample(i, 1_000, 0.5, false)).collect(),
        );
        let slow = run_of(
            "slow",
            1,
            (0..10).map(|i| sample(i, 1_500, 0.5, false)).collect(),
        );
        let runs = labeled(vec![("a.json", vec![fast]), ("b.json", vec![slow])]);
        let rows = comparison(&runs);
        let p50 = rows
            .iter()
            .find(|row| row.metric == "client p50 (ms)")
            .expect("a p50 row");
        assert_eq!(p50.values, [Some(1.0), Some(1.5)]);
        assert_eq!(delta_percent(p50.values[0], p50.values[1]), Some(50.0));
        assert!(rows.iter().all(|row| !row.metric.starts_with("EC2")));
        assert!(rows.iter().all(|row| !row.metric.starts_with("Init")));
    }

    #[test]
    fn deltas_from_zero_or_nothing_are_not_numbers() {
        assert_eq!(delta_percent(Some(4.0), Some(3.0)), Some(-25.0));
        assert_eq!(delta_percent(Some(0.0), Some(0.0)), Some(0.0));
        assert_eq!(delta_percent(Some(0.0), Some(2.0)), None);
        assert_eq!(delta_percent(None, Some(2.0)), None);
        assert_eq!(delta_percent(Some(2.0), None), None);
    }
}
