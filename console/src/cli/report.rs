//! `hybridlab report`: the report on run files of `hybridlab bench --out` and
//! `hybridlab bench --upload --out` (built by `hybridlab_bench::report`) written to a folder,
//! and what was written, printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hybridlab_bench::report::{DEFAULT_TITLE, WriteOptions, build, input, write_report};
use serde_json::json;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run files written by `hybridlab bench --out` or `hybridlab bench --upload --out`
    /// (sweeps, memory sweeps and partial runs too); several are compared side by side.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Directory for report.md, its SVG figures and summary.csv (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write each figure as PNG, for documents that do not take SVG.
    #[arg(long)]
    pub png: bool,
    /// The report's heading.
    #[arg(long)]
    pub title: Option<String>,
    /// Print what was written as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let files = args
        .runs
        .iter()
        .map(|path| Ok((path.clone(), input::read_report_file(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runs = input::label_all(files);
    let report = build(args.title.as_deref().unwrap_or(DEFAULT_TITLE), &runs);
    let written = write_report(&args.out, &report, WriteOptions { png: args.png })?;

    if args.json {
        let labeled = runs
            .runs
            .iter()
            .map(|run| json!({ "label": run.label, "file": run.file, "kind": "invoke" }))
            .chain(
                runs.uploads
                    .iter()
                    .map(|run| json!({ "label": run.label, "file": run.file, "kind": "upload" })),
            )
            .collect::<Vec<_>>();
        let summary = json!({
            "report": written.report,
            "figures": written.figures,
            "pngs": written.pngs,
            "summary_csv": written.summary_csv,
            "runs": labeled,
        });
        println!("{summary}");
    } else {
        println!(
            "wrote {} ({} run{}, {} plot{})",
            written.report.display(),
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            written.figures.len(),
            if written.figures.len() == 1 { "" } else { "s" },
        );
        for path in written
            .figures
            .iter()
            .chain(&written.pngs)
            .chain([&written.summary_csv])
        {
            println!("  {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
