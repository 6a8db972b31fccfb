//! `hybridlab report`: the report on run files of `hybridlab bench --out` (built by
//! `hybridlab_bench::report`) written to a folder, and what was written, printed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hybridlab_bench::report::{DEFAULT_TITLE, build, input, write_report};
use serde_json::json;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run files written by `hybridlab bench --out`; several are compared side by side.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Directory for report.md and its SVG plots (created if missing).
    #[arg(long)]
    pub out: PathBuf,
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
        .map(|path| Ok((path.clone(), input::read_run_file(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runs = input::label_runs(files);
    let report = build(args.title.as_deref().unwrap_or(DEFAULT_TITLE), &runs);
    let written = write_report(&args.out, &report)?;

    if args.json {
        let summary = json!({
            "report": written.report,
            "figures": written.figures,
            "runs": runs
                .iter()
                .map(|run| json!({ "label": run.label, "file": run.file }))
                .collect::<Vec<_>>(),
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
        for figure in &written.figures {
            println!("  {}", figure.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
