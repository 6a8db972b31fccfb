//! The report on run files of `hybridlab bench`: a folder a student can hand in, `report.md`
//! with the SVG figures it shows (and PNG copies with `--png`) and `summary.csv`. Reading
//! ([`input`]) and writing ([`write_report`]) happen here; the numbers ([`analysis`],
//! [`breakdown`], [`memory_sweep`], [`overview`]), the figures ([`plots`] on [`svg`], [`png`])
//! and the text ([`markdown`], [`summary_csv`]) are plain functions of the runs.

pub mod analysis;
pub mod breakdown;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod input;
pub mod markdown;
pub mod memory_sweep;
pub mod overview;
pub mod plots;
pub mod png;
pub mod summary_csv;
pub mod svg;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use input::{LabeledRun, ReportRuns};
use memory_sweep::SweptFunction;
use plots::Figure;

/// The report's heading when `--title` is not given.
pub const DEFAULT_TITLE: &str = "Benchmark report";
/// The report's file name inside `--out`.
pub const REPORT_FILE: &str = "report.md";

/// A report ready to be written: the Markdown, the figures it links to and the CSV summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub markdown: String,
    pub figures: Vec<Figure>,
    pub summary_csv: String,
}

/// The report on `runs` under `title`.
pub fn build(title: &str, runs: &ReportRuns) -> Report {
    let memory_sweeps = memory_sweep::memory_sweeps(&runs.runs, &runs.uploads);
    // The levels of a memory sweep share one concurrency: they are not a concurrency sweep.
    let memory_files: BTreeSet<usize> = memory_sweeps
        .iter()
        .filter(|sweep| sweep.function == SweptFunction::Proxy)
        .map(|sweep| sweep.file_index)
        .collect();
    let concurrency_runs: Vec<LabeledRun> = runs
        .runs
        .iter()
        .filter(|run| !memory_files.contains(&run.file_index))
        .cloned()
        .collect();
    let sweeps = analysis::sweeps(&concurrency_runs);
    let cold_warm: Vec<analysis::ColdWarm> = runs
        .runs
        .iter()
        .map(|labeled| analysis::cold_warm(&labeled.run))
        .collect();
    let breakdowns = plots::breakdowns(&runs.runs);
    let mut figures = plots::figures(&runs.runs, &sweeps, &cold_warm);
    figures.upload_distribution = plots::upload_distribution(&runs.uploads);
    figures.memory_sweeps = memory_sweeps
        .iter()
        .enumerate()
        .map(|(index, sweep)| plots::memory_sweep_figure(index, sweep))
        .collect();
    let facts = overview::facts(runs);
    let markdown = markdown::render(&markdown::ReportContent {
        title,
        runs: &runs.runs,
        uploads: &runs.uploads,
        facts: &facts,
        sweeps: &sweeps,
        cold_warm: &cold_warm,
        breakdowns: &breakdowns,
        memory_sweeps: &memory_sweeps,
        figures: &figures,
    });
    Report {
        markdown,
        figures: figures.all().cloned().collect(),
        summary_csv: summary_csv::summary_csv(&facts),
    }
}

/// What to write besides `report.md`, its SVG figures and `summary.csv`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// A PNG beside each SVG, of the same name.
    pub png: bool,
}

/// The paths `write_report` wrote.
#[derive(Debug)]
pub struct Written {
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
    /// Empty without `--png`.
    pub pngs: Vec<PathBuf>,
    pub summary_csv: PathBuf,
}

/// Writes the figures, `summary.csv`, then `report.md`, into `dir` (created if missing), so
/// a report that exists has its figures.
pub fn write_report(dir: &Path, report: &Report, options: WriteOptions) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output folder `{}`", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        anyhow::Ok(path)
    };
    let figures = report
        .figures
        .iter()
        .map(|figure| write(&figure.file_name, figure.svg.as_bytes()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pngs = if options.png {
        report
            .figures
            .iter()
            .map(|figure| {
                let png = png::svg_to_png(&figure.svg)
                    .with_context(|| format!("cannot draw `{}` as PNG", figure.file_name))?;
                write(&png_name(&figure.file_name), &png)
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let summary_csv = write(summary_csv::SUMMARY_CSV_FILE, report.summary_csv.as_bytes())?;
    let report = write(REPORT_FILE, report.markdown.as_bytes())?;
    Ok(Written {
        report,
        figures,
        pngs,
        summary_csv,
    })
}

/// The PNG's name of the figure `svg_name`: `a.svg` is `a.png`.
pub fn png_name(svg_name: &str) -> String {
    format!("{}.png", svg_name.strip_suffix(".svg").unwrap_or(svg_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{environment, memory_run, run_at, upload_run};
    use crate::uploads::UploadRunFile;
    use input::ReportFile;

    #[test]
    fn every_figure_the_markdown_links_is_in_the_report_and_well_formed() {
        let runs = ReportRuns {
            runs: input::label_runs(vec![
                (
                    PathBuf::from("before.json"),
                    RunFile::new(vec![run_at("c=1", 1, 50), run_at("c=4", 4, 50)]),
                ),
                (
                    PathBuf::from("after.json"),
                    RunFile::new(vec![run_at("c=1", 1, 50), run_at("c=4", 4, 50)]),
                ),
            ]),
            uploads: Vec::new(),
        };
        let report = build(DEFAULT_TITLE, &runs);
        let names: Vec<&str> = report
            .figures
            .iter()
            .map(|f| f.file_name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "latency-distribution.svg",
                "stage-breakdown.svg",
                "sweep-latency.svg",
                "sweep-throughput.svg",
                "cold-warm-1-before-c-1.svg",
                "cold-warm-2-before-c-4.svg",
                "cold-warm-3-after-c-1.svg",
                "cold-warm-4-after-c-4.svg",
                "timeline-1-before-c-1.svg",
                "timeline-2-before-c-4.svg",
                "timeline-3-after-c-1.svg",
                "timeline-4-after-c-4.svg",
            ]
        );
        for figure in &report.figures {
            assert!(
                report
                    .markdown
                    .contains(&format!("]({})", figure.file_name)),
                "{} is linked",
                figure.file_name
            );
            roxmltree::Document::parse(&figure.svg).expect("well-formed SVG");
        }
    }

    #[test]
    fn the_report_and_its_plots_are_written_to_a_new_folder() {
        let dir = std::env::temp_dir()
            .join(format!("hybridlab-report-unit-{}", std::process::id()))
            .join("nested");
        let runs = input::label_all(vec![(
            PathBuf::from("run.json"),
            ReportFile::Bench(RunFile::new(vec![run_at("c=2", 2, 20)])),
        )]);
        let report = build("t", &runs);
        let written = write_report(&dir, &report, WriteOptions { png: true });
        let on_disk = std::fs::read_to_string(dir.join(REPORT_FILE));
        let csv = std::fs::read_to_string(dir.join(summary_csv::SUMMARY_CSV_FILE));
        let pngs: Vec<bool> = ["latency-distribution.png", "stage-breakdown.png"]
            .iter()
            .map(|name| {
                std::fs::read(dir.join(name)).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG"))
            })
            .collect();
        let cleanup = dir.parent().map(std::fs::remove_dir_all);
        let written = written.expect("written");
        assert_eq!(written.report, dir.join(REPORT_FILE));
        assert_eq!(on_disk.expect("report.md"), report.markdown);
        assert_eq!(csv.expect("summary.csv"), report.summary_csv);
        // Distribution, breakdown, cold/warm and timeline, each as SVG and PNG.
        assert_eq!(written.figures.len(), 4);
        assert_eq!(written.pngs.len(), 4);
        assert_eq!(pngs, [true, true]);
        assert!(matches!(cleanup, Some(Ok(()))));
    }

    #[test]
    fn a_report_of_every_kind_of_run_has_every_section() {
        let mut on_aws = run_at("c=1", 1, 30);
        on_aws.config.environment = Some(environment(true));
        on_aws.config.target = "AWS eu-west-1".into();
        let mut sweep_levels = vec![
            memory_run(128, 10, 100.0),
            memory_run(512, 10, 100.0),
            memory_run(2048, 10, 100.0),
        ];
        for run in &mut sweep_levels {
            run.config.environment = Some(environment(false));
        }
        let runs = input::label_all(vec![
            (
                PathBuf::from("aws.json"),
                ReportFile::Bench(RunFile::new(vec![on_aws])),
            ),
            (
                PathBuf::from("memory.json"),
                ReportFile::Bench(RunFile::new(sweep_levels)),
            ),
            (
                PathBuf::from("uploads.json"),
                ReportFile::Upload(UploadRunFile::new(vec![upload_run(
                    Some("pipeline"),
                    Some(1024),
                    6,
                )])),
            ),
        ]);
        let report = build("Lab 5", &runs);
        let markdown = &report.markdown;
        for section in [
            "## Environment",
            "## Summary",
            "## Upload runs",
            "## Where the time goes",
            "## Upload pipeline distribution",
            "## Memory sweep of the proxy: memory",
            "## Cost",
            "## Files",
            "### pipeline",
        ] {
            assert!(markdown.contains(section), "{section} in {markdown}");
        }
        // The memory sweep's levels are not a concurrency sweep.
        assert!(!markdown.contains("## Concurrency sweep"));
        // Only the sweep and the upload run were on the sandbox.
        assert!(markdown.contains(
            "> **Sandbox numbers are not AWS numbers.** `m=128`, `m=512`, `m=2048`, `pipeline` ran"
        ));
        let names: Vec<&str> = report
            .figures
            .iter()
            .map(|f| f.file_name.as_str())
            .collect();
        for expected in [
            "upload-distribution.svg",
            "memory-sweep-1-memory.svg",
            "stage-breakdown.svg",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        let sweep_svg = report
            .figures
            .iter()
            .find(|f| f.file_name == "memory-sweep-1-memory.svg")
            .map(|f| f.svg.as_str())
            .unwrap_or_default();
        assert!(sweep_svg.contains("fastest"), "{sweep_svg}");
        assert!(sweep_svg.contains("cheapest"), "{sweep_svg}");
        assert!(
            report
                .summary_csv
                .contains("uploads.json,pipeline,upload,1024,to_final,6,")
        );
    }
}
