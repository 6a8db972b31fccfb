//! The report on run files of `hybridlab bench --out`: a folder a student can hand in,
//! `report.md` with the SVG plots it shows. Reading ([`input`]) and writing ([`write_report`])
//! happen here; the numbers ([`analysis`]), the plots ([`plots`] on [`svg`]) and the text
//! ([`markdown`]) are plain functions of the runs.

pub mod analysis;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod input;
pub mod markdown;
pub mod plots;
pub mod svg;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use input::LabeledRun;
use plots::Figure;

/// The report's heading when `--title` is not given.
pub const DEFAULT_TITLE: &str = "Benchmark report";
/// The report's file name inside `--out`.
pub const REPORT_FILE: &str = "report.md";

/// A report ready to be written: the Markdown and the figures it links to.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub markdown: String,
    pub figures: Vec<Figure>,
}

/// The report on `runs` under `title`.
pub fn build(title: &str, runs: &[LabeledRun]) -> Report {
    let sweeps = analysis::sweeps(runs);
    let cold_warm: Vec<analysis::ColdWarm> = runs
        .iter()
        .map(|labeled| analysis::cold_warm(&labeled.run))
        .collect();
    let figures = plots::figures(runs, &sweeps, &cold_warm);
    let markdown = markdown::render(&markdown::ReportContent {
        title,
        runs,
        sweeps: &sweeps,
        cold_warm: &cold_warm,
        figures: &figures,
    });
    Report {
        markdown,
        figures: figures.all().cloned().collect(),
    }
}

/// The paths `write_report` wrote.
#[derive(Debug)]
pub struct Written {
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// Writes the figures, then `report.md`, into `dir` (created if missing), so a report that
/// exists has its plots.
pub fn write_report(dir: &Path, report: &Report) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output folder `{}`", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        anyhow::Ok(path)
    };
    let figures = report
        .figures
        .iter()
        .map(|figure| write(&figure.file_name, &figure.svg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = write(REPORT_FILE, &report.markdown)?;
    Ok(Written { report, figures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::run_at;

    #[test]
    fn every_figure_the_markdown_links_is_in_the_report_and_well_formed() {
        let runs = input::label_runs(vec![
            (
                PathBuf::from("before.json"),
                RunFile::new(vec![run_at("c=1", 1, 50), run_at("c=4", 4, 50)]),
            ),
            (
                PathBuf::from("after.json"),
                RunFile::new(vec![run_at("c=1", 1, 50), run_at("c=4", 4, 50)]),
            ),
        ]);
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
                "sweep-latency.svg",
                "sweep-throughput.svg",
                "cold-warm-1-before-c-1.svg",
                "cold-warm-2-before-c-4.svg",
                "cold-warm-3-after-c-1.svg",
                "cold-warm-4-after-c-4.svg",
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
        let runs = input::label_runs(vec![(
            PathBuf::from("run.json"),
            RunFile::new(vec![run_at("c=2", 2, 20)]),
        )]);
        let report = build("t", &runs);
        let written = write_report(&dir, &report);
        let on_disk = std::fs::read_to_string(dir.join(REPORT_FILE));
        let cleanup = dir.parent().map(std::fs::remove_dir_all);
        let written = written.expect("written");
        assert_eq!(written.report, dir.join(REPORT_FILE));
        assert_eq!(on_disk.expect("report.md"), report.markdown);
        assert_eq!(written.figures.len(), 2);
        assert!(matches!(cleanup, Some(Ok(()))));
    }
}
