//! The report's text: a summary of every run, the side-by-side comparison, the figures with a
//! word on how to read them, and per run its configuration, outcomes, percentiles, cold
//! starts and cost, as GitHub-flavoured Markdown tables.

use std::fmt::Write as _;

use super::analysis::{self, ColdWarm, ComparisonRow, Spread, Sweep};
use super::input::LabeledRun;
use super::plots::{Figure, Figures};
use crate::model::{LoadShape, MeasureSummary, Outcome, Run};

/// What the report is written from.
#[derive(Debug, Clone, Copy)]
pub struct ReportContent<'a> {
    pub title: &'a str,
    pub runs: &'a [LabeledRun],
    pub sweeps: &'a [Sweep],
    /// One per run.
    pub cold_warm: &'a [ColdWarm],
    pub figures: &'a Figures,
}

/// The whole of `report.md`.
pub fn render(content: &ReportContent<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", one_line(content.title));
    let files: Vec<String> = unique_files(content.runs)
        .into_iter()
        .map(|file| format!("`{file}`"))
        .collect();
    let _ = writeln!(
        out,
        "Made by `hybridlab report` from {} ({} run{}). Times are in milliseconds. *Client \
         latency* runs from when an invocation was meant to be sent to when its answer was \
         complete, so in an open loop the wait behind slow answers counts (no coordinated \
         omission); *Lambda duration* and *Init Duration* are from the function's REPORT log \
         lines.\n",
        files.join(", "),
        content.runs.len(),
        if content.runs.len() == 1 { "" } else { "s" },
    );
    summary_section(&mut out, content.runs);
    if content.runs.len() >= 2 {
        comparison_section(&mut out, content.runs, &analysis::comparison(content.runs));
    }
    distribution_section(&mut out, content.figures.latency_distribution.as_ref());
    if !content.sweeps.is_empty() {
        sweep_section(&mut out, content.sweeps, content.figures);
    }
    out.push_str("## Runs\n\n");
    for (index, labeled) in content.runs.iter().enumerate() {
        let split = content.cold_warm.get(index);
        let figure = content
            .figures
            .cold_warm
            .get(index)
            .and_then(Option::as_ref);
        run_section(&mut out, labeled, split, figure);
    }
    out
}

/// Text safe inside a table cell: `|` would end the cell, a newline the row.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn ms(value: f64) -> String {
    format!("{value:.2}")
}

fn usd(value: f64) -> String {
    format!("{value:.6}")
}

fn unique_files(runs: &[LabeledRun]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for run in runs {
        let file = run.file.display().to_string();
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

fn table_row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// The header row and the alignment row: the first `text_columns` columns left, the others
/// right, as numbers are.
fn table_header(out: &mut String, headers: &[&str], text_columns: usize) {
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let alignments: Vec<&str> = (0..headers.len())
        .map(|i| if i < text_columns { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", alignments.join("|"));
}

fn shape_text(shape: &LoadShape) -> String {
    match *shape {
        LoadShape::Closed { concurrency } => format!(
            "closed loop, {concurrency} worker{}",
            if concurrency == 1 { "" } else { "s" }
        ),
        LoadShape::Open {
            rate,
            max_in_flight,
        } => format!("open loop, {rate} invocations/s, at most {max_in_flight} in flight"),
    }
}

fn errors_of(run: &Run) -> u64 {
    run.summary.invocations.saturating_sub(run.summary.ok)
}

fn client(run: &Run) -> Option<&MeasureSummary> {
    run.summary.measure("client")
}

fn summary_section(out: &mut String, runs: &[LabeledRun]) {
    out.push_str("## Summary\n\n");
    table_header(
        out,
        &[
            "run",
            "load",
            "invocations",
            "errors",
            "throughput (/s)",
            "cold starts",
            "client p50",
            "client p99",
            "cost (USD)",
        ],
        2,
    );
    for labeled in runs {
        let run = &labeled.run;
        let client = client(run);
        table_row(
            out,
            &[
                cell(&labeled.label),
                shape_text(&run.config.shape),
                run.summary.invocations.to_string(),
                errors_of(run).to_string(),
                format!("{:.1}", run.summary.throughput_per_s),
                run.summary.cold_starts.to_string(),
                client.map_or_else(|| "–".to_owned(), |m| ms(m.p50_ms)),
                client.map_or_else(|| "–".to_owned(), |m| ms(m.p99_ms)),
                usd(run.summary.cost.total_usd),
            ],
        );
    }
    out.push('\n');
}

fn delta_text(delta: Option<f64>) -> String {
    delta.map_or_else(|| "n/a".to_owned(), |delta| format!("{delta:+.1}%"))
}

fn comparison_section(out: &mut String, runs: &[LabeledRun], rows: &[ComparisonRow]) {
    out.push_str("## Comparison\n\n");
    let base = runs.first().map_or("", |run| run.label.as_str());
    let _ = writeln!(
        out,
        "Each Δ is the change from the first run, {}, in percent of it. For times and cost \
         lower is better; for throughput higher is.\n",
        cell(base)
    );
    let mut headers = vec!["metric".to_owned()];
    for (index, run) in runs.iter().enumerate() {
        headers.push(cell(&run.label));
        if index > 0 {
            headers.push(format!("Δ {}", cell(&run.label)));
        }
    }
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table_header(out, &headers, 1);
    for row in rows {
        let base_value = row.values.first().copied().flatten();
        let mut cells = vec![row.metric.to_owned()];
        for (index, value) in row.values.iter().enumerate() {
            let decimals = row.decimals;
            cells.push(value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}")));
            if index > 0 {
                cells.push(delta_text(analysis::delta_percent(base_value, *value)));
            }
        }
        table_row(out, &cells);
    }
    out.push('\n');
}

fn image(out: &mut String, figure: &Figure) {
    let _ = writeln!(out, "![{}]({})\n", cell(&figure.caption), figure.file_name);
}

fn distribution_section(out: &mut String, figure: Option<&Figure>) {
    out.push_str("## Client latency distribution\n\n");
    match figure {
        Some(figure) => {
            image(out, figure);
            out.push_str(
                "Each line is a run; a point (p, t) means a share p of its invocations took at \
                 most t ms. The percentile axis gives each nine as much room as the one \
                 before (90 %, 99 %, 99.9 %, 99.99 %), as HdrHistogram's plots do, so the tail \
                 is visible: a line that rises early has a heavy tail. With n invocations, \
                 percentiles above 1 - 1/n are the maximum.\n\n",
            );
        }
        None => out.push_str("No run has client latencies to plot.\n\n"),
    }
}

fn sweep_section(out: &mut String, sweeps: &[Sweep], figures: &Figures) {
    out.push_str("## Concurrency sweep\n\n");
    for figure in [&figures.sweep_latency, &figures.sweep_throughput]
        .into_iter()
        .flatten()
    {
        image(out, figure);
    }
    out.push_str(
        "Where throughput stops growing with concurrency while the percentiles keep rising, \
         invocations are queueing: something (the function's concurrency, the image server, \
         the client) is saturated.\n\n",
    );
    let named = sweeps.iter().any(|sweep| sweep.name.is_some());
    let mut headers = Vec::new();
    if named {
        headers.push("sweep");
    }
    headers.extend(["run", "concurrency", "p50", "p90", "p99", "throughput (/s)"]);
    table_header(out, &headers, headers.len() - 5);
    for sweep in sweeps {
        for point in &sweep.points {
            let mut cells = Vec::new();
            if named {
                cells.push(cell(sweep.name.as_deref().unwrap_or("")));
            }
            cells.extend([
                cell(&point.label),
                point.concurrency.to_string(),
                ms(point.p50_ms),
                ms(point.p90_ms),
                ms(point.p99_ms),
                format!("{:.1}", point.throughput_per_s),
            ]);
            table_row(out, &cells);
        }
    }
    out.push('\n');
}

/// A measure's name as a reader knows it.
fn measure_title(name: &str) -> String {
    match name {
        "client" => "client latency".to_owned(),
        "lambda_duration" => "Lambda duration".to_owned(),
        "init_duration" => "Init Duration (cold starts)".to_owned(),
        "ec2_total" => "EC2 server total".to_owned(),
        other => match other.strip_prefix("ec2_") {
            Some("s3") => "EC2: S3 upload".to_owned(),
            Some("dynamodb") => "EC2: DynamoDB write".to_owned(),
            Some(stage) => format!("EC2: {stage}"),
            None => other.to_owned(),
        },
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".to_owned();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

fn run_section(
    out: &mut String,
    labeled: &LabeledRun,
    split: Option<&ColdWarm>,
    figure: Option<&Figure>,
) {
    let run = &labeled.run;
    let config = &run.config;
    let summary = &run.summary;
    let _ = writeln!(out, "### {}\n", one_line(&labeled.label));

    out.push_str("#### Configuration\n\n");
    let stop = match (config.requests, config.duration_s) {
        (Some(requests), Some(seconds)) => {
            format!("{requests} invocations or {seconds} s, whichever comes first")
        }
        (Some(requests), None) => format!("{requests} invocations"),
        (None, Some(seconds)) => format!("{seconds} s"),
        (None, None) => "–".to_owned(),
    };
    let stop = if config.interrupted {
        format!("{stop}; **interrupted by Ctrl-C: a partial run**")
    } else {
        stop
    };
    let settings = [
        (
            "file",
            format!("`{}`", cell(&labeled.file.display().to_string())),
        ),
        ("label in the file", cell(&config.label)),
        ("target", cell(&config.target)),
        ("stack", cell(config.stack.as_deref().unwrap_or("–"))),
        ("function", cell(&config.function)),
        ("load", shape_text(&config.shape)),
        ("stop after", stop),
        (
            "warm-up (not measured)",
            format!("{} invocations", config.warmup),
        ),
        ("payloads", config.payloads.to_string()),
        ("started", cell(&config.started_at)),
    ];
    let _ = writeln!(out, "| setting | value |\n|---|---|");
    for (setting, value) in settings {
        table_row(out, &[setting.to_owned(), value]);
    }
    out.push('\n');

    out.push_str("#### Results\n\n");
    let _ = writeln!(out, "| result | value |\n|---|---:|");
    let results = [
        ("invocations", summary.invocations.to_string()),
        ("elapsed", format!("{:.2} s", summary.elapsed_s)),
        (
            "throughput",
            format!("{:.1} invocations/s", summary.throughput_per_s),
        ),
        (
            "cold starts",
            format!(
                "{} ({})",
                summary.cold_starts,
                percent(summary.cold_starts, summary.invocations)
            ),
        ),
    ];
    for (result, value) in results {
        table_row(out, &[result.to_owned(), value]);
    }
    out.push('\n');

    out.push_str("#### Outcomes\n\n");
    table_header(out, &["outcome", "count", "share"], 1);
    for outcome in Outcome::ALL {
        let count = match outcome {
            Outcome::Ok => summary.ok,
            other => summary.errors.get(&other).copied().unwrap_or(0),
        };
        table_row(
            out,
            &[
                format!("`{outcome}`"),
                count.to_string(),
                percent(count, summary.invocations),
            ],
        );
    }
    out.push('\n');

    out.push_str("#### Percentiles (ms)\n\n");
    if summary.measures.is_empty() {
        out.push_str("No invocation was measured.\n\n");
    } else {
        table_header(
            out,
            &[
                "measure", "count", "p50", "p90", "p99", "p99.9", "max", "mean",
            ],
            1,
        );
        for measure in &summary.measures {
            table_row(
                out,
                &[
                    measure_title(&measure.name),
                    measure.count.to_string(),
                    ms(measure.p50_ms),
                    ms(measure.p90_ms),
                    ms(measure.p99_ms),
                    ms(measure.p999_ms),
                    ms(measure.max_ms),
                    ms(measure.mean_ms),
                ],
            );
        }
        out.push('\n');
    }

    out.push_str("#### Cold starts against warm invocations\n\n");
    cold_warm_part(out, run, split, figure);

    out.push_str("#### Cost estimate\n\n");
    let cost = &summary.cost;
    table_header(
        out,
        &[
            "billed requests",
            "GB-seconds",
            "compute (USD)",
            "requests (USD)",
            "total (USD)",
        ],
        0,
    );
    table_row(
        out,
        &[
            cost.requests.to_string(),
            format!("{:.4}", cost.gb_seconds),
            usd(cost.compute_usd),
            usd(cost.requests_usd),
            usd(cost.total_usd),
        ],
    );
    let _ = writeln!(out, "\n{}\n", one_line(&cost.basis));
}

fn cold_warm_part(out: &mut String, run: &Run, split: Option<&ColdWarm>, figure: Option<&Figure>) {
    let split = match split {
        Some(split) if split.has_cold_starts() => split,
        _ if run.samples.is_empty() => {
            out.push_str(
                "This run file keeps no samples, so cold starts cannot be told from warm \
                 invocations.\n\n",
            );
            return;
        }
        _ => {
            out.push_str(
                "No cold start in this run: every measured invocation found a warm execution \
                 environment (the warm-up invocations, not measured, may have had some).\n\n",
            );
            return;
        }
    };
    if let Some(figure) = figure {
        image(out, figure);
        out.push_str(
            "Boxes span p25 to p75 with a line at p50; whiskers reach the minimum and the \
             maximum. Init Duration is the execution environment's start-up, before the \
             handler runs, and is not part of the Lambda duration.\n\n",
        );
    }
    table_header(
        out,
        &["invocations", "count", "p50", "p90", "p99", "max"],
        1,
    );
    let rows: [(&str, Option<Spread>); 5] = [
        ("client latency, cold start", split.cold_client),
        ("client latency, warm", split.warm_client),
        ("Lambda duration, cold start", split.cold_duration),
        ("Lambda duration, warm", split.warm_duration),
        ("Init Duration", split.init_duration),
    ];
    for (name, spread) in rows {
        let Some(spread) = spread else { continue };
        table_row(
            out,
            &[
                name.to_owned(),
                spread.count.to_string(),
                ms(spread.p50_ms),
                ms(spread.p90_ms),
                ms(spread.p99_ms),
                ms(spread.max_ms),
            ],
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{run_at, run_of, sample};
    use crate::report::input::label_runs;
    use crate::report::plots;

    fn report_of(files: Vec<(&str, Vec<Run>)>) -> String {
        let runs = label_runs(
            files
                .into_iter()
                .map(|(name, runs)| (PathBuf::from(name), RunFile::new(runs)))
                .collect(),
        );
        let sweeps = analysis::sweeps(&runs);
        let cold_warm: Vec<ColdWarm> = runs.iter().map(|r| analysis::cold_warm(&r.run)).collect();
        let figures = plots::figures(&runs, &sweeps, &cold_warm);
        render(&ReportContent {
            title: "Lab 3",
            runs: &runs,
            sweeps: &sweeps,
            cold_warm: &cold_warm,
            figures: &figures,
        })
    }

    /// The cells of the first table row whose first cell is `first`.
    fn row<'a>(markdown: &'a str, first: &str) -> Vec<&'a str> {
        markdown
            .lines()
            .map(|line| {
                line.trim()
                    .trim_matches('|')
                    .split(" | ")
                    .map(str::trim)
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.first() == Some(&first))
            .unwrap_or_default()
    }

    #[test]
    fn the_percentile_table_shows_the_summary_in_milliseconds() {
        let run = run_at("c=2", 2, 100);
        let client = run.summary.measure("client").cloned().expect("client");
        let run_init_p50 = run.summary.measure("init_duration").map(|m| m.p50_ms);
        let markdown = report_of(vec![("run.json", vec![run])]);
        assert!(markdown.starts_with("# Lab 3\n"));
        assert!(markdown.contains("| measure | count | p50 | p90 | p99 | p99.9 | max | mean |"));
        assert_eq!(
            row(&markdown, "client latency"),
            [
                "client latency",
                "100",
                &format!("{:.2}", client.p50_ms),
                &format!("{:.2}", client.p90_ms),
                &format!("{:.2}", client.p99_ms),
                &format!("{:.2}", client.p999_ms),
                &format!("{:.2}", client.max_ms),
                &format!("{:.2}", client.mean_ms),
            ]
        );
        assert_eq!(row(&markdown, "Init Duration (cold starts)")[1], "2");
        assert_eq!(row(&markdown, "load")[1], "closed loop, 2 workers");
        assert!(markdown.contains("![Client latency by percentile](latency-distribution.svg)"));
        assert!(markdown.contains("(cold-warm-1-c-2.svg)"));
        let init = run_init_p50.expect("init duration");
        assert_eq!(row(&markdown, "Init Duration")[2], format!("{init:.2}"));
        // One run: no comparison, no sweep.
        assert!(!markdown.contains("## Comparison"));
        assert!(!markdown.contains("## Concurrency sweep"));
    }

    #[test]
    fn outcomes_are_counted_by_kind() {
        let mut samples: Vec<_> = (0..10).map(|i| sample(i, 1_000, 0.5, false)).collect();
        samples[3].outcome = Outcome::Throttled;
        samples[3].lambda = None;
        samples[7].outcome = Outcome::Ec2Error;
        samples[8].outcome = Outcome::Ec2Error;
        let markdown = report_of(vec![("flaky.json", vec![run_of("flaky", 1, samples)])]);
        assert_eq!(row(&markdown, "`ok`"), ["`ok`", "7", "70.0 %"]);
        assert_eq!(
            row(&markdown, "`throttled`"),
            ["`throttled`", "1", "10.0 %"]
        );
        assert_eq!(
            row(&markdown, "`ec2_error`"),
            ["`ec2_error`", "2", "20.0 %"]
        );
        assert_eq!(row(&markdown, "`timeout`"), ["`timeout`", "0", "0.0 %"]);
        // The summary's errors column.
        assert_eq!(row(&markdown, "flaky")[3], "3");
        assert!(markdown.contains("No cold start in this run"));
        assert!(!markdown.contains("cold-warm-"));
    }

    #[test]
    fn two_runs_are_compared_side_by_side_with_deltas() {
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
        let markdown = report_of(vec![("a.json", vec![fast]), ("b.json", vec![slow])]);
        assert!(markdown.contains("## Comparison"));
        assert!(markdown.contains("| metric | fast | slow | Δ slow |"));
        assert_eq!(
            row(&markdown, "client p50 (ms)"),
            ["client p50 (ms)", "1.00", "1.50", "+50.0%"]
        );
        assert_eq!(
            row(&markdown, "invocations"),
            ["invocations", "10", "10", "+0.0%"]
        );
        assert_eq!(
            row(&markdown, "cold starts"),
            ["cold starts", "0", "0", "+0.0%"]
        );
        // Same concurrency: no sweep.
        assert!(!markdown.contains("## Concurrency sweep"));
    }

    #[test]
    fn a_sweep_gets_its_plots_and_table() {
        let runs = vec![
            run_at("c=1", 1, 40),
            run_at("c=2", 2, 40),
            run_at("c=4", 4, 40),
        ];
        let client = runs[2].summary.measure("client").cloned().expect("client");
        let p99 = client.p99_ms;
        let markdown = report_of(vec![("sweep.json", runs)]);
        assert!(markdown.contains("## Concurrency sweep"));
        assert!(markdown.contains("(sweep-latency.svg)"));
        assert!(markdown.contains("(sweep-throughput.svg)"));
        let sweep_row = format!(
            "| c=4 | 4 | {:.2} | {:.2} | {p99:.2} |",
            client.p50_ms, client.p90_ms
        );
        assert!(markdown.contains(&sweep_row), "{sweep_row}");
    }

    #[test]
    fn labels_with_pipes_do_not_break_tables() {
        let markdown = report_of(vec![("a.json", vec![run_at("a|b", 1, 10)])]);
        assert!(markdown.contains("| a\\|b | closed loop, 1 worker |"));
    }
}
