//! `hybridlab report` as a student runs it: run files on disk (written with the console's own
//! model and statistics, as `hybridlab bench --out` writes them) to a folder with
//! `report.md` and its SVG plots; and bad files refused with one line and a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hybridlab_bench::model::{LoadShape, Outcome, Run, RunConfig, RunFile, Sample};
use hybridlab_bench::stats;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::sandbox::build_binary;
use hybridlab_wire::report::Report;

/// A folder of the test's own, removed when dropped (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn report(args: &[&str]) -> Output {
    Command::new(build_binary("hybridlab-console", "hybridlab"))
        .arg("report")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("hybridlab runs")
}

/// A closed-loop run at `concurrency`: `count` invocations of 2..5 ms times the
/// concurrency times `slowdown`, the first `concurrency` of them cold starts.
fn run_at(label: &str, concurrency: usize, count: u64, slowdown: f64) -> Run {
    let samples: Vec<Sample> = (0..count)
        .map(|seq| {
            let cold = seq < concurrency as u64;
            let warm_us = ((2_000 + (seq * 7_919) % 3_000) * concurrency as u64) as f64 * slowdown;
            let latency_us = if cold { warm_us + 180_000.0 } else { warm_us } as u64;
            let duration_ms = warm_us * 0.8 / 1000.0;
            Sample {
                seq,
                intended_us: seq * 20_000,
                sent_us: seq * 20_000,
                done_us: seq * 20_000 + latency_us,
                outcome: if seq == 7 {
                    Outcome::Throttled
                } else {
                    Outcome::Ok
                },
                lambda: (seq != 7).then(|| Report {
                    request_id: format!("req-{seq}"),
                    duration_ms,
                    billed_duration_ms: duration_ms.ceil(),
                    memory_size_mb: 512,
                    max_memory_used_mb: 41,
                    init_duration_ms: cold.then_some(160.0),
                    status: None,
                    error_type: None,
                }),
                ec2_ms: None,
                ec2_round_trip_ms: None,
                error: None,
            }
        })
        .collect();
    Run {
        config: RunConfig {
            label: label.to_owned(),
            target: "local sandbox (http://127.0.0.1:4566)".to_owned(),
            stack: Some("e2e".to_owned()),
            function: "hybridlab-proxy-e2e".to_owned(),
            shape: LoadShape::Closed { concurrency },
            requests: Some(count),
            duration_s: None,
            warmup: 0,
            payloads: 1,
            interrupted: false,
            cold: false,
            memory_mb: None,
            environment: None,
            started_at: "2026-11-03T10:00:00Z".to_owned(),
        },
        summary: stats::summarize(&samples),
        samples,
    }
}

fn write_run_file(dir: &Path, name: &str, runs: Vec<Run>) -> PathBuf {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(&RunFile::new(runs)).expect("serialises");
    std::fs::write(&path, text).expect("run file written");
    path
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn report_compares_two_sweeps_in_markdown_with_svg_plots() {
    let dir = TempDir::new("hybridlab-report");
    let before = write_run_file(
        &dir.0,
        "before.json",
        vec![run_at("c=1", 1, 60, 1.0), run_at("c=4", 4, 60, 1.0)],
    );
    let after = write_run_file(
        &dir.0,
        "after.json",
        vec![run_at("c=1", 1, 60, 0.5), run_at("c=4", 4, 60, 0.5)],
    );
    let out = dir.0.join("report").join("lab3");
    let output = report(&[
        &before.display().to_string(),
        &after.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--title",
        "Lab 3: before and after",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "report fails: {stderr}");

    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints one JSON object");
    let report_md = out.join("report.md");
    assert_eq!(summary["report"], report_md.display().to_string());
    let figures: Vec<PathBuf> = summary["figures"]
        .as_array()
        .expect("a list of figures")
        .iter()
        .filter_map(|path| path.as_str().map(PathBuf::from))
        .collect();
    let labels: Vec<&str> = summary["runs"]
        .as_array()
        .expect("a list of runs")
        .iter()
        .filter_map(|run| run["label"].as_str())
        .collect();
    // Both files label their runs `c=1` and `c=4`: the file stems tell them apart.
    assert_eq!(
        labels,
        ["before: c=1", "before: c=4", "after: c=1", "after: c=4"]
    );

    let markdown = read(&report_md);
    assert!(
        markdown.starts_with("# Lab 3: before and after\n"),
        "{markdown}"
    );
    for section in [
        "## Summary",
        "## Comparison",
        "## Client latency distribution",
        "## Concurrency sweep",
        "### after: c=4",
        "#### Percentiles (ms)",
        "#### Cost estimate",
    ] {
        assert!(markdown.contains(section), "{section} in the report");
    }
    assert!(markdown.contains("| metric | before: c=1 | before: c=4 | Δ before: c=4 |"));
    assert!(markdown.contains("| `throttled` | 1 | 1.7 % |"));

    let names: Vec<String> = figures
        .iter()
        .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "latency-distribution.svg",
        "sweep-latency.svg",
        "sweep-throughput.svg",
        "cold-warm-1-before-c-1.svg",
        "cold-warm-4-after-c-4.svg",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for (path, name) in figures.iter().zip(&names) {
        assert_eq!(path.parent(), Some(out.as_path()));
        let svg = read(path);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{name}"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{name}");
        assert!(markdown.contains(&format!("]({name})")), "{name} is linked");
    }
    let distribution = read(&out.join("latency-distribution.svg"));
    for label in labels {
        assert!(
            distribution.contains(&format!("data-name=\"{label}\"")),
            "{label}"
        );
    }
    assert!(distribution.contains(">99.99%</text>"));
    let sweep = read(&out.join("sweep-latency.svg"));
    assert!(sweep.contains("data-name=\"after: p99\""));
}

#[test]
fn report_refuses_bad_run_files_with_one_line_and_a_nonzero_exit() {
    let dir = TempDir::new("hybridlab-report-bad");
    let not_json = dir.0.join("notes.json");
    std::fs::write(&not_json, "p50 was 12 ms").expect("written");
    let other_format = dir.0.join("old.json");
    std::fs::write(
        &other_format,
        r#"{"format": "hybridlab-bench/0", "runs": []}"#,
    )
    .expect("written");
    let missing = dir.0.join("nowhere.json");
    let good = write_run_file(&dir.0, "good.json", vec![run_at("c=1", 1, 10, 1.0)]);
    let out = dir.0.join("out");

    for (bad, needle) in [
        (&missing, "no such file"),
        (&not_json, "is not JSON"),
        (&other_format, "is a `hybridlab-bench/0` file"),
    ] {
        let output = report(&[
            &good.display().to_string(),
            &bad.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(&bad.display().to_string()),
            "names the file: {stderr}"
        );
        assert!(stderr.contains(needle), "`{needle}` in {stderr}");
        assert!(
            stderr.contains("hybridlab bench --out"),
            "says what to do: {stderr}"
        );
        assert!(!out.join("report.md").exists(), "nothing written");
    }
}
