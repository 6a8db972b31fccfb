//! The report's text: where the runs were made, a summary of every run, the side-by-side
//! comparison and the repeats, the figures with a word on how to read them, the sweeps, the
//! full cost, and per run its configuration, outcomes, percentiles, cold starts and cost, as
//! GitHub-flavoured Markdown tables.

use std::fmt::Write as _;

use super::analysis::{self, ColdWarm, ComparisonRow, Spread, Sweep};
use super::breakdown::Breakdown;
use super::input::{LabeledRun, LabeledUpload};
use super::memory_sweep::MemorySweep;
use super::overview::{self, MeanStdev, MemorySource, RunFacts};
use super::plots::{Figure, Figures};
use super::summary_csv::{SUMMARY_CSV_FILE, SUMMARY_CSV_HEADER};
use crate::model::{LoadShape, MeasureSummary, Outcome, Run};
use crate::stats::{PRICE_PER_GB_SECOND_USD, PRICE_PER_MILLION_REQUESTS_USD};

/// What the report is written from.
#[derive(Debug, Clone, Copy)]
pub struct ReportContent<'a> {
    pub title: &'a str,
    /// The proxy's runs.
    pub runs: &'a [LabeledRun],
    /// The upload pipeline's runs.
    pub uploads: &'a [LabeledUpload],
    /// Of every run, proxy runs first.
    pub facts: &'a [RunFacts<'a>],
    pub sweeps: &'a [Sweep],
    /// One per proxy run.
    pub cold_warm: &'a [ColdWarm],
    pub breakdowns: &'a [Breakdown],
    pub memory_sweeps: &'a [MemorySweep],
    pub figures: &'a Figures,
}

/// The whole of `report.md`.
pub fn render(content: &ReportContent<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", one_line(content.title));
    let files: Vec<String> = unique_files(content.facts)
        .into_iter()
        .map(|file| format!("`{file}`"))
        .collect();
    let total = content.facts.len();
    let _ = writeln!(
        out,
        "Made by `hybridlab report` from {} ({} run{}). Times are in milliseconds. *Client \
         latency* runs from when an invocation was meant to be sent to when its answer was \
         complete, so in an open loop the wait behind slow answers counts (no coordinated \
         omission); *Lambda duration* and *Init Duration* are from the function's REPORT log \
         lines.\n",
        files.join(", "),
        total,
        if total == 1 { "" } else { "s" },
    );
    environment_section(&mut out, content.facts);
    if !content.runs.is_empty() {
        summary_section(&mut out, content.runs);
    }
    if !content.uploads.is_empty() {
        upload_summary_section(&mut out, content.uploads);
    }
    if content.runs.len() >= 2 {
        comparison_section(&mut out, content.runs, &analysis::comparison(content.runs));
    }
    repeats_section(&mut out, &overview::repeats(content.facts));
    if !content.runs.is_empty() {
        distribution_section(&mut out, content.figures.latency_distribution.as_ref());
        breakdown_section(
            &mut out,
            content.breakdowns,
            content.figures.breakdown.as_ref(),
        );
    }
    if let Some(figure) = &content.figures.upload_distribution {
        upload_distribution_section(&mut out, figure);
    }
    if !content.sweeps.is_empty() {
        sweep_section(&mut out, content.sweeps, content.figures);
    }
    for (index, sweep) in content.memory_sweeps.iter().enumerate() {
        memory_sweep_section(&mut out, sweep, content.figures.memory_sweeps.get(index));
    }
    cost_section(&mut out, content.facts);
    files_section(&mut out);
    out.push_str("## Runs\n\n");
    for (index, labeled) in content.runs.iter().enumerate() {
        let split = content.cold_warm.get(index);
        let figure = content
            .figures
            .cold_warm
            .get(index)
            .and_then(Option::as_ref);
        let timeline = content
            .figures
            .timelines
            .get(index)
            .and_then(Option::as_ref);
        run_section(&mut out, labeled, split, figure);
        if let Some(timeline) = timeline {
            timeline_part(&mut out, timeline);
        }
    }
    for labeled in content.uploads {
        upload_run_section(&mut out, labeled);
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

fn unique_files(runs: &[RunFacts<'_>]) -> Vec<String> {
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
    // A column per kind of error that happened, so a level where throttles began shows.
    let outcomes: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|outcome| {
            sweeps
                .iter()
                .flat_map(|sweep| &sweep.points)
                .any(|point| point.errors.get(outcome).is_some_and(|&n| n > 0))
        })
        .collect();
    let mut headers: Vec<String> = Vec::new();
    if named {
        headers.push("sweep".to_owned());
    }
    headers.extend(
        [
            "run",
            "concurrency",
            "p50",
            "p90",
            "p99",
            "throughput (/s)",
            "errors",
        ]
        .map(String::from),
    );
    headers.extend(outcomes.iter().map(|outcome| format!("`{outcome}`")));
    let numbers = 6 + outcomes.len();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table_header(out, &headers, headers.len() - numbers);
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
                format!(
                    "{} ({})",
                    point.errors.values().sum::<u64>(),
                    percent(point.errors.values().sum::<u64>(), point.invocations)
                ),
            ]);
            cells.extend(
                outcomes
                    .iter()
                    .map(|outcome| point.errors.get(outcome).copied().unwrap_or(0).to_string()),
            );
            table_row(out, &cells);
        }
    }
    out.push('\n');
}

const NOT_RECORDED: &str = "not recorded";

/// A size in bytes as a reader takes it in: `123456 bytes (120.6 KiB)`.
fn bytes_text(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if value >= KIB * KIB {
        format!("{bytes} bytes ({:.1} MiB)", value / KIB / KIB)
    } else if value >= KIB {
        format!("{bytes} bytes ({:.1} KiB)", value / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn memory_text(memory: Option<(u32, MemorySource)>) -> String {
    match memory {
        Some((mb, MemorySource::Configured)) => format!("{mb} MB"),
        Some((mb, MemorySource::ReportLines)) => format!("{mb} MB (from REPORT lines)"),
        None => NOT_RECORDED.to_owned(),
    }
}

/// The warning's first words, when a run was made on the sandbox.
pub const SANDBOX_WARNING: &str = "Sandbox numbers are not AWS numbers.";

fn environment_section(out: &mut String, facts: &[RunFacts<'_>]) {
    out.push_str("## Environment\n\n");
    let on_sandbox: Vec<&RunFacts<'_>> = facts.iter().filter(|run| run.on_sandbox()).collect();
    if !on_sandbox.is_empty() {
        let which = if on_sandbox.len() == facts.len() {
            "Every run of this report".to_owned()
        } else {
            let labels: Vec<String> = on_sandbox
                .iter()
                .map(|run| format!("`{}`", cell(run.label)))
                .collect();
            labels.join(", ")
        };
        let _ = writeln!(
            out,
            "> **{SANDBOX_WARNING}** {which} ran on the local sandbox: the functions, the image \
             server, S3 and DynamoDB are processes on one machine, with no real network between \
             them and CPU shares that only emulate Lambda's. Its latencies and throughput show \
             how the lab behaves, not what AWS would measure; its costs are what the same \
             invocations would cost on AWS.\n"
        );
    }
    table_header(
        out,
        &[
            "run",
            "target",
            "region",
            "memory",
            "instance type",
            "input",
            "input size",
            "hybridlab",
            "commit",
        ],
        9,
    );
    for run in facts {
        let environment = run.environment;
        let recorded = |value: Option<&str>| cell(value.unwrap_or(NOT_RECORDED));
        table_row(
            out,
            &[
                cell(run.label),
                cell(run.target),
                recorded(environment.and_then(|e| e.region.as_deref())),
                memory_text(run.memory),
                recorded(environment.and_then(|e| e.instance_type.as_deref())),
                recorded(run.input),
                run.input_bytes
                    .map_or_else(|| NOT_RECORDED.to_owned(), bytes_text),
                recorded(environment.map(|e| e.hybridlab_version.as_str())),
                recorded(environment.and_then(|e| e.commit.as_deref())),
            ],
        );
    }
    if facts.iter().any(|run| run.environment.is_none()) {
        out.push_str(
            "\n*not recorded*: the run file does not hold it (files written before `bench` \
             saved its environment).\n",
        );
    }
    out.push('\n');
}

fn upload_measure_title(name: &str) -> &str {
    match name {
        "to_final" => "to_final (upload start to final status seen)",
        "trigger" => "trigger (PENDING to PROCESSING)",
        "processing" => "processing (PROCESSING to final)",
        other => other,
    }
}

fn upload_summary_section(out: &mut String, uploads: &[LabeledUpload]) {
    out.push_str("## Upload runs\n\n");
    out.push_str(
        "Each image is uploaded, then followed until its row is COMPLETED or FAILED: \
         *to_final* is the whole span as the client saw it, *upload* the upload itself; from \
         the row's history, *trigger* is the S3 event starting the resizer (PENDING to \
         PROCESSING) and *processing* the resizer's work (PROCESSING to the final status).\n\n",
    );
    table_header(
        out,
        &[
            "run",
            "via",
            "uploads",
            "concurrency",
            "completed",
            "failed",
            "errors",
            "images/s",
            "to_final p50",
            "to_final p99",
        ],
        2,
    );
    for labeled in uploads {
        let run = &labeled.run;
        let to_final = run.measures.iter().find(|m| m.name == "to_final");
        table_row(
            out,
            &[
                cell(&labeled.label),
                cell(&run.via),
                run.uploads.to_string(),
                run.concurrency.to_string(),
                run.completed.to_string(),
                run.failed.to_string(),
                run.errors.to_string(),
                format!("{:.2}", run.images_per_s),
                to_final.map_or_else(|| "–".to_owned(), |m| ms(m.p50_ms)),
                to_final.map_or_else(|| "–".to_owned(), |m| ms(m.p99_ms)),
            ],
        );
    }
    out.push('\n');
}

fn spread_text(spread: Option<MeanStdev>, decimals: usize) -> String {
    match spread {
        Some(MeanStdev {
            mean,
            stdev: Some(stdev),
        }) => format!("{mean:.decimals$} ± {stdev:.decimals$}"),
        Some(MeanStdev { mean, stdev: None }) => format!("{mean:.decimals$}"),
        None => "–".to_owned(),
    }
}

fn repeats_section(out: &mut String, repeats: &[overview::Repeat]) {
    if repeats.is_empty() {
        return;
    }
    out.push_str("## Repeats\n\n");
    out.push_str(
        "Runs with the same label in several files are taken as repeats of one \
         configuration: each cell is the mean ± the sample standard deviation over them (of \
         client latency for proxy runs, of *to_final* for upload runs). A deviation that is \
         large against the difference between two configurations means that difference is \
         noise. If the files are before and after a change rather than repeats, read the \
         comparison instead. Partial runs are left out.\n\n",
    );
    table_header(
        out,
        &[
            "kind",
            "label",
            "runs",
            "n",
            "p50",
            "p99",
            "throughput (/s)",
        ],
        3,
    );
    for repeat in repeats {
        table_row(
            out,
            &[
                repeat.kind.as_str().to_owned(),
                cell(&repeat.label),
                cell(&repeat.runs.join(", ")),
                repeat.runs.len().to_string(),
                spread_text(repeat.p50_ms, 2),
                spread_text(repeat.p99_ms, 2),
                spread_text(repeat.throughput_per_s, 1),
            ],
        );
    }
    out.push('\n');
}

fn breakdown_section(out: &mut String, breakdowns: &[Breakdown], figure: Option<&Figure>) {
    out.push_str("## Where the time goes\n\n");
    let Some(figure) = figure else {
        out.push_str("No run file keeps samples, so the time cannot be split.\n\n");
        return;
    };
    image(out, figure);
    out.push_str(
        "Each bar is the successful invocations of a run, warm ones and cold starts apart; \
         each segment is the median of that part over them, so a bar's length is near, not \
         equal to, the client p50. From the left: the client's wait beyond the function \
         (signing, the Invoke API, the network to Lambda) = client latency − Lambda duration − \
         Init Duration; Init Duration on a cold start; the proxy's own time = Lambda duration \
         − `ec2_round_trip_ms` (the proxy's measure of its call to the image server); the \
         Lambda-to-EC2 network = `ec2_round_trip_ms` − the server's total; then the server's \
         stages.\n\n",
    );
    if breakdowns.iter().any(Breakdown::has_lumped) {
        out.push_str(
            "**Some runs did not record every timing**: their hatched grey segments (marked * \
             below) lump what their files cannot split; `ec2_round_trip_ms` is recorded by \
             newer versions of `bench` and the proxy.\n\n",
        );
    }
    let mut segments: Vec<super::breakdown::Segment> = breakdowns
        .iter()
        .flat_map(|bar| bar.segments.iter().map(|s| s.segment))
        .collect();
    segments.sort();
    segments.dedup();
    let mut headers = vec!["invocations".to_owned(), "n".to_owned()];
    headers.extend(segments.iter().map(|segment| {
        let mark = if segment.lumped() { "*" } else { "" };
        format!("{}{mark}", segment.name())
    }));
    headers.push("sum".to_owned());
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table_header(out, &headers, 1);
    for bar in breakdowns {
        let mut cells = vec![cell(&bar.label), bar.invocations.to_string()];
        cells.extend(segments.iter().map(|segment| {
            bar.segments
                .iter()
                .find(|s| s.segment == *segment)
                .map_or_else(|| "–".to_owned(), |s| ms(s.p50_ms))
        }));
        cells.push(ms(bar.total_ms()));
        table_row(out, &cells);
    }
    out.push('\n');
}

fn upload_distribution_section(out: &mut String, figure: &Figure) {
    out.push_str("## Upload pipeline distribution\n\n");
    image(out, figure);
    out.push_str(
        "Each line is one measure of an upload run by percentile, read as the client latency \
         plot is: a colour per measure, a dash pattern per run. *to_final* includes the \
         polling of the row, late by up to its pause; *trigger* and *processing* come from \
         the row's own history and are not.\n\n",
    );
}

fn memory_sweep_section(out: &mut String, sweep: &MemorySweep, figure: Option<&Figure>) {
    let _ = writeln!(
        out,
        "## Memory sweep of the {}: {}\n",
        sweep.function.name(),
        one_line(&sweep.name)
    );
    if let Some(figure) = figure {
        image(out, figure);
    }
    let _ = writeln!(
        out,
        "Lambda gives CPU in proportion to memory (one vCPU at 1,769 MB), so more memory \
         runs faster but each millisecond costs more. The cost per invocation is the mean \
         billed duration times the memory at ${PRICE_PER_GB_SECOND_USD} per GB-second, plus \
         ${PRICE_PER_MILLION_REQUESTS_USD} per million requests. The picks are AWS Lambda \
         Power Tuning's: *cheapest* (lowest cost per invocation), *fastest* (lowest mean \
         duration) and *balanced* (lowest of cost and duration each divided by the sweep's \
         highest, weighted equally); a level with errors is never picked.\n"
    );
    table_header(
        out,
        &[
            "run",
            "pick",
            "memory (MB)",
            "invocations",
            "errors",
            "duration p50",
            "duration mean",
            "duration p99",
            "billed mean",
            "cost per invocation (USD)",
            "cost per million (USD)",
        ],
        2,
    );
    for level in &sweep.levels {
        let point = &level.point;
        table_row(
            out,
            &[
                cell(&level.label),
                sweep.picks_of(point.memory_mb).join(", "),
                point.memory_mb.to_string(),
                point.invocations.to_string(),
                point.errors.to_string(),
                ms(point.duration_p50_ms),
                ms(point.duration_mean_ms),
                ms(point.duration_p99_ms),
                ms(point.billed_mean_ms),
                format!("{:.9}", point.cost_per_invocation_usd),
                format!("{:.2}", point.cost_per_invocation_usd * 1e6),
            ],
        );
    }
    match sweep.picks {
        Some(picks) => {
            let _ = writeln!(
                out,
                "\n**Cheapest:** {} MB. **Fastest:** {} MB. **Balanced:** {} MB.\n",
                picks.cheapest_mb, picks.fastest_mb, picks.balanced_mb
            );
        }
        None => out.push_str("\nNo pick: every memory size had errors.\n\n"),
    }
}

fn cost_section(out: &mut String, facts: &[RunFacts<'_>]) {
    out.push_str("## Cost\n\n");
    table_header(
        out,
        &[
            "run",
            "Lambda (USD)",
            "instance",
            "elapsed (s)",
            "instance share (USD)",
            "total (USD)",
        ],
        1,
    );
    let (mut lambda_sum, mut instance_sum, mut complete) = (0.0, 0.0, true);
    for run in facts {
        let cost = overview::full_cost(run);
        lambda_sum += cost.lambda_usd.unwrap_or(0.0);
        instance_sum += cost.instance_usd.unwrap_or(0.0);
        complete &= cost.is_complete();
        let instance = run
            .environment
            .and_then(|e| Some((e.instance_type.as_deref()?, e.instance_hourly_usd?)))
            .map_or_else(
                || NOT_RECORDED.to_owned(),
                |(kind, hourly)| format!("{} at ${hourly}/h", cell(kind)),
            );
        let known = |value: Option<f64>| value.map_or_else(|| NOT_RECORDED.to_owned(), usd);
        let total = if cost.is_complete() {
            usd(cost.total_usd())
        } else {
            format!("≥ {}", usd(cost.total_usd()))
        };
        table_row(
            out,
            &[
                cell(run.label),
                known(cost.lambda_usd),
                instance,
                format!("{:.2}", run.elapsed_s),
                known(cost.instance_usd),
                total,
            ],
        );
    }
    let at_least = if complete { "" } else { "≥ " };
    table_row(
        out,
        &[
            "**all runs**".to_owned(),
            usd(lambda_sum),
            String::new(),
            String::new(),
            usd(instance_sum),
            format!("**{at_least}{}**", usd(lambda_sum + instance_sum)),
        ],
    );
    let _ = writeln!(
        out,
        "\nBasis: Lambda at AWS list prices (x86_64): ${PRICE_PER_GB_SECOND_USD} per \
         GB-second of billed duration and ${PRICE_PER_MILLION_REQUESTS_USD} per million \
         requests, free tier not deducted; for upload runs, the resizer's invocations from \
         their REPORT lines. The instance share is the image server's on-demand hourly list \
         price (as `bench` recorded it) times the run's elapsed hours: the instance bills by \
         the second whether or not a benchmark runs, so this is the part of its bill the run \
         used. Not counted: S3 and DynamoDB requests and storage, data transfer, CloudWatch \
         Logs. *not recorded*: the run file does not hold it, and a total marked ≥ counts only \
         the parts it does.\n"
    );
}

fn files_section(out: &mut String) {
    let _ = writeln!(
        out,
        "## Files\n\n\
         - `report.md`: this report, with its figures beside it as SVG (and, with `hybridlab \
         report --png`, as PNG of the same name, for documents that do not take SVG).\n\
         - `{SUMMARY_CSV_FILE}`: one row per run and measure, with the columns \
         `{SUMMARY_CSV_HEADER}`. `kind` is `invoke` for `bench` and `upload` for `bench \
         --upload`; `memory_mb` is empty when unknown; `measure` is a measure of the \
         percentile tables (`client`, `lambda_duration`, ..., `to_final`, ...), with its count \
         and its percentiles, maximum, mean and standard deviation in milliseconds; \
         `invocations` (images for an upload run), `errors` and `cost_usd` (its Lambda cost, \
         empty when not recorded) are the run's, repeated on each of its rows. A run with no \
         measure has one row with the measure's columns empty.\n"
    );
}

fn timeline_part(out: &mut String, figure: &Figure) {
    out.push_str("#### Latency over time\n\n");
    image(out, figure);
    out.push_str(
        "Each mark is an invocation at its send time: dots warm, diamonds cold starts, \
         crosses errors. A level that steps up and stays is a change of regime (a queue \
         building, throttling).\n\n",
    );
}

fn upload_run_section(out: &mut String, labeled: &LabeledUpload) {
    let run = &labeled.run;
    let _ = writeln!(out, "### {}\n", one_line(&labeled.label));
    out.push_str("#### Configuration\n\n");
    let mut settings = vec![
        (
            "file",
            format!("`{}`", cell(&labeled.file.display().to_string())),
        ),
        ("kind", "upload pipeline (`bench --upload`)".to_owned()),
        ("target", cell(&run.target)),
        ("stack", cell(&run.stack)),
        (
            "image uploaded",
            format!("{} ({})", cell(&run.file), bytes_text(run.file_bytes)),
        ),
        ("uploaded via", cell(&run.via)),
        ("uploads", run.uploads.to_string()),
        ("concurrency", run.concurrency.to_string()),
        (
            "resizer memory",
            run.memory_mb
                .map_or_else(|| NOT_RECORDED.to_owned(), |mb| format!("{mb} MB")),
        ),
        (
            "started",
            cell(run.started_at.as_deref().unwrap_or(NOT_RECORDED)),
        ),
    ];
    if run.interrupted {
        settings.push((
            "stop",
            "**interrupted by Ctrl-C: a partial run**".to_owned(),
        ));
    }
    let _ = writeln!(out, "| setting | value |\n|---|---|");
    for (setting, value) in settings {
        table_row(out, &[setting.to_owned(), value]);
    }
    out.push('\n');

    out.push_str("#### Results\n\n");
    let _ = writeln!(out, "| result | value |\n|---|---:|");
    for (result, value) in [
        ("completed", run.completed.to_string()),
        ("failed", run.failed.to_string()),
        ("errors (upload or wait failed)", run.errors.to_string()),
        ("elapsed", format!("{:.2} s", run.elapsed_s)),
        ("throughput", format!("{:.2} images/s", run.images_per_s)),
    ] {
        table_row(out, &[result.to_owned(), value]);
    }
    out.push('\n');

    percentiles_part(
        out,
        &run.measures,
        |name| upload_measure_title(name).to_owned(),
        "image",
    );

    out.push_str("#### The resizer\n\n");
    let errors = run.failed + run.errors;
    let memory_mb = run
        .memory_mb
        .or_else(|| run.resizer_reports.first().map(|r| r.memory_size_mb));
    match memory_mb.and_then(|mb| crate::memory::point(mb, &run.resizer_reports, errors)) {
        Some(point) => {
            let _ = writeln!(
                out,
                "From the {} REPORT lines of its invocations during the run, at {} MB: \
                 duration p50 {} ms, mean {} ms, p99 {} ms; billed mean {} ms; \
                 ${:.9} per invocation (${:.2} per million).\n",
                point.invocations,
                point.memory_mb,
                ms(point.duration_p50_ms),
                ms(point.duration_mean_ms),
                ms(point.duration_p99_ms),
                ms(point.billed_mean_ms),
                point.cost_per_invocation_usd,
                point.cost_per_invocation_usd * 1e6,
            );
        }
        None => out.push_str(
            "This run file holds no REPORT line of the resizer, so its duration and cost are \
             not known.\n\n",
        ),
    }
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
        (
            "memory",
            config
                .memory_mb
                .map_or_else(|| "–".to_owned(), |mb| format!("{mb} MB")),
        ),
        (
            "cold starts",
            if config.cold {
                "forced on every invocation (`bench --cold`)".to_owned()
            } else {
                "as they came".to_owned()
            },
        ),
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

    percentiles_part(out, &summary.measures, measure_title, "invocation");

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

/// The `Percentiles (ms)` part of a run: a row per measure, each named by `title`; `what` is
/// what a sample is (`No invocation was measured.`).
fn percentiles_part(
    out: &mut String,
    measures: &[MeasureSummary],
    title: impl Fn(&str) -> String,
    what: &str,
) {
    out.push_str("#### Percentiles (ms)\n\n");
    if measures.is_empty() {
        let _ = writeln!(out, "No {what} was measured.\n");
        return;
    }
    table_header(
        out,
        &[
            "measure", "count", "p50", "p90", "p99", "p99.9", "max", "mean",
        ],
        1,
    );
    for measure in measures {
        table_row(
            out,
            &[
                title(&measure.name),
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::RunFile;
    use crate::report::fixtures::{run_at, run_of, sample};
    use crate::report::input::{ReportFile, label_all};

    fn report_of(files: Vec<(&str, Vec<Run>)>) -> String {
        report_of_files(
            files
                .into_iter()
                .map(|(name, runs)| (PathBuf::from(name), ReportFile::Bench(RunFile::new(runs))))
                .collect(),
        )
    }

    fn report_of_files(files: Vec<(PathBuf, ReportFile)>) -> String {
        crate::report::build("Lab 3", &label_all(files)).markdown
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
        assert!(markdown.contains("| flaky | closed loop, 1 worker | 10 | 3 |"));
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

    #[test]
    fn the_environment_says_what_was_not_recorded_and_warns_of_the_sandbox() {
        use crate::report::fixtures::environment;
        let mut aws = run_at("aws", 1, 10);
        aws.config.environment = Some(environment(true));
        aws.config.target = "AWS eu-west-1".into();
        let markdown = report_of(vec![
            ("a.json", vec![aws]),
            ("b.json", vec![run_at("old", 1, 10)]),
        ]);
        assert_eq!(
            row(&markdown, "aws")[..9],
            [
                "aws",
                "AWS eu-west-1",
                "eu-west-1",
                "512 MB (from REPORT lines)",
                "t3.micro",
                "https://example.com/cat.jpg",
                "123456 bytes (120.6 KiB)",
                "0.1.0",
                "abc1234"
            ]
        );
        assert_eq!(row(&markdown, "old")[2], "not recorded");
        assert!(markdown.contains("> **Sandbox numbers are not AWS numbers.** `old` ran"));
        assert!(markdown.contains("no real network"));

        let only_aws = {
            let mut run = run_at("aws", 1, 10);
            run.config.environment = Some(environment(true));
            report_of(vec![("a.json", vec![run])])
        };
        assert!(!only_aws.contains(SANDBOX_WARNING));
    }

    #[test]
    fn the_cost_adds_the_instance_share_and_states_its_basis() {
        use crate::report::fixtures::environment;
        let mut run = run_at("c=1", 1, 10);
        run.config.environment = Some(environment(true));
        run.summary.elapsed_s = 3600.0;
        let lambda = run.summary.cost.total_usd;
        let markdown = report_of(vec![("a.json", vec![run])]);
        let cost_row = markdown
            .lines()
            .find(|line| line.starts_with("| c=1 |") && line.contains("t3.micro at $0.0104/h"))
            .expect("a cost row");
        assert_eq!(
            cost_row,
            format!(
                "| c=1 | {lambda:.6} | t3.micro at $0.0104/h | 3600.00 | 0.010400 | {:.6} |",
                lambda + 0.0104
            )
        );
        assert!(markdown.contains("times the run's elapsed hours"));
        assert!(markdown.contains("`summary.csv`: one row per run and measure"));
    }

    #[test]
    fn repeats_show_mean_and_deviation() {
        let run = |us: u64| {
            run_of(
                "c=1",
                1,
                (0..10).map(|i| sample(i, us, 0.5, false)).collect(),
            )
        };
        let markdown = report_of(vec![
            ("r1.json", vec![run(1_000)]),
            ("r2.json", vec![run(3_000)]),
        ]);
        assert!(markdown.contains("## Repeats"));
        let repeat = row(&markdown, "invoke");
        assert_eq!(repeat[..4], ["invoke", "c=1", "r1: c=1, r2: c=1", "2"]);
        assert!(repeat[4].starts_with("2.00 ± 1.4"), "{repeat:?}");
        assert!(!report_of(vec![("one.json", vec![run(1_000)])]).contains("## Repeats"));
    }

    #[test]
    fn the_sweep_table_counts_errors_by_outcome() {
        let mut flaky = run_at("c=4", 4, 40);
        flaky.summary.errors.insert(Outcome::Throttled, 3);
        flaky.summary.errors.insert(Outcome::Timeout, 1);
        let markdown = report_of(vec![("s.json", vec![run_at("c=1", 1, 40), flaky])]);
        assert!(
            markdown.contains("| errors | `throttled` | `timeout` |"),
            "{markdown}"
        );
        let sweep_row = markdown
            .lines()
            .find(|line| line.starts_with("| c=4 | 4 |"))
            .expect("the sweep's row");
        assert!(
            sweep_row.ends_with(" | 4 (10.0 %) | 3 | 1 |"),
            "{sweep_row}"
        );
    }
}
