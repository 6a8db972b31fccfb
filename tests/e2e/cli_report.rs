//! `hybridlab report` as a student runs it: run files on disk (written with the console's own
//! model and statistics, as `hybridlab bench --out` writes them, and one made by a real
//! `bench --upload` on the sandbox) to a folder with `report.md`, its SVG (and PNG) figures
//! and `summary.csv`; and bad files refused with one line and a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hybridlab_bench::model::{LoadShape, Outcome, Run, RunConfig, RunEnvironment, RunFile, Sample};
use hybridlab_bench::stats;
use hybridlab_bench::uploads::{UploadRun, UploadRunFile};
use hybridlab_provision::stack::StackId;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::fixtures;
use hybridlab_tests::sandbox::{build_binary, edge_clients};
use hybridlab_tests::stack::hybridlab_async as run_cli;
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

/// A `--memory` sweep level: `count` successful invocations at `memory_mb` whose duration
/// halves as memory doubles up to 1,024 MB (100 ms), and is 90 ms at 2,048 MB: 1,024 MB is
/// the cheapest and the balanced pick, 2,048 MB the fastest.
fn memory_level(memory_mb: u32, count: u64) -> Run {
    let mut run = run_at(&format!("m={memory_mb}"), 1, count, 1.0);
    let duration_ms = if memory_mb >= 2048 {
        90.0
    } else {
        100.0 * 1024.0 / f64::from(memory_mb)
    };
    for sample in &mut run.samples {
        sample.outcome = Outcome::Ok;
        sample.done_us = sample.intended_us + (duration_ms * 1000.0) as u64 + 2_000;
        sample.lambda = Some(Report {
            request_id: format!("req-{}", sample.seq),
            duration_ms,
            billed_duration_ms: duration_ms,
            memory_size_mb: memory_mb,
            max_memory_used_mb: 41,
            init_duration_ms: None,
            status: None,
            error_type: None,
        });
    }
    run.summary = stats::summarize(&run.samples);
    run.config.memory_mb = Some(memory_mb);
    run.config.environment = Some(RunEnvironment {
        target_kind: "aws".into(),
        region: Some("eu-west-1".into()),
        instance_type: Some("t3.micro".into()),
        instance_hourly_usd: Some(0.0104),
        input: Some("cat.jpg".into()),
        input_bytes: Some(48_213),
        hybridlab_version: "0.1.0".into(),
        commit: Some("0123abc".into()),
    });
    run.config.target = "AWS eu-west-1".into();
    run
}

/// The width and height in a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "IHDR first");
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

/// The cells of the line of `csv` whose label and measure are these.
fn csv_row<'a>(csv: &'a str, label: &str, measure: &str) -> Vec<&'a str> {
    csv.lines()
        .map(|line| line.split(',').collect::<Vec<_>>())
        .find(|cells| cells.get(1) == Some(&label) && cells.get(4) == Some(&measure))
        .unwrap_or_else(|| panic!("a row of {label} {measure} in {csv}"))
}

#[test]
fn report_reads_memory_sweeps_partial_runs_and_old_upload_files_with_pngs_and_a_csv() {
    let dir = TempDir::new("hybridlab-report-kinds");
    let sweep = write_run_file(
        &dir.0,
        "memory.json",
        vec![
            memory_level(128, 20),
            memory_level(512, 20),
            memory_level(1024, 20),
            memory_level(2048, 20),
        ],
    );
    let mut stopped = run_at("c=2", 2, 15, 1.0);
    stopped.config.interrupted = true;
    let partial = write_run_file(&dir.0, "partial.json", vec![stopped.clone()]);
    // An upload run as `bench --upload --out` wrote it before its file had a format.
    let old_upload = dir.0.join("old-upload.json");
    let bare: UploadRun = serde_json::from_value(serde_json::json!({
        "target": "local sandbox (http://127.0.0.1:4566)",
        "stack": "e2e", "file": "cat.jpg", "file_bytes": 48213, "via": "presigned",
        "uploads": 2, "concurrency": 1, "completed": 2, "failed": 0, "errors": 0,
        "elapsed_s": 1.5, "images_per_s": 1.33, "measures": []
    }))
    .expect("an old upload run");
    std::fs::write(
        &old_upload,
        serde_json::to_string(&bare).expect("serialises"),
    )
    .expect("written");
    let out = dir.0.join("report");
    let output = report(&[
        &sweep.display().to_string(),
        &partial.display().to_string(),
        &old_upload.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--png",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let markdown = read(&out.join("report.md"));
    for section in [
        "## Environment",
        "## Memory sweep of the proxy: memory",
        "## Where the time goes",
        "## Upload runs",
        "## Cost",
        "### c=2 (partial)",
        "interrupted by Ctrl-C: a partial run",
        "### upload c=1",
        "`summary.csv`: one row per run and measure",
    ] {
        assert!(markdown.contains(section), "{section} in the report");
    }
    assert!(markdown.contains("Sandbox numbers are not AWS numbers."));
    assert!(
        markdown.contains("**Cheapest:** 1024 MB. **Fastest:** 2048 MB. **Balanced:** 1024 MB."),
        "{markdown}"
    );
    let sweep_svg = read(&out.join("memory-sweep-1-memory.svg"));
    assert!(sweep_svg.contains(">cost per million invocations (USD)</text>"));
    assert!(
        sweep_svg.contains("data-label=\"cheapest, balanced\""),
        "{sweep_svg}"
    );
    assert!(sweep_svg.contains("data-label=\"fastest\""), "{sweep_svg}");
    for level in ["128", "512", "1024", "2048"] {
        assert!(sweep_svg.contains(&format!(">{level}</text>")), "{level}");
    }
    // The instance share: $0.0104 an hour for the run's elapsed hours.
    let elapsed = memory_level(128, 20).summary.elapsed_s;
    assert!(markdown.contains(&format!(
        "| t3.micro at $0.0104/h | {elapsed:.2} | {:.6} |",
        0.0104 * elapsed / 3600.0
    )));

    // Every SVG has its PNG, twice its size, with ink where the title is.
    let svgs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("the folder")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert!(svgs.len() >= 5, "{svgs:?}");
    for svg in &svgs {
        let png = std::fs::read(svg.with_extension("png"))
            .unwrap_or_else(|err| panic!("{}: {err}", svg.display()));
        let text = read(svg);
        let width: u32 = text
            .split("width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|w| w.parse().ok())
            .expect("the SVG's width");
        assert_eq!(png_size(&png).0, width * 2, "{}", svg.display());
    }

    // summary.csv: the runs' own numbers.
    let csv = read(&out.join("summary.csv"));
    assert!(csv.starts_with(
        "file,label,kind,memory_mb,measure,count,p50_ms,p90_ms,p99_ms,max_ms,mean_ms,stdev_ms,invocations,errors,cost_usd\n"
    ));
    let client = stopped.summary.measure("client").expect("client");
    let row = csv_row(&csv, "c=2 (partial)", "client");
    assert_eq!(row[2], "invoke");
    assert_eq!(row[6], format!("{:.3}", client.p50_ms));
    assert_eq!(row[12], "15");
    assert_eq!(row[13], "1");
    assert_eq!(csv_row(&csv, "m=512", "lambda_duration")[3], "512");
    // The old upload file has no measures: one row, its counts kept.
    assert!(csv.contains(",upload c=1,upload,,,,,,,,,,2,0,\n"), "{csv}");
}

/// `down` of the test's own stack when the test ends, passed or not.
struct OwnStack {
    endpoint: String,
    id: String,
}

impl Drop for OwnStack {
    fn drop(&mut self) {
        let _ = hybridlab_tests::stack::hybridlab(
            &self.endpoint,
            &["down", "--json", "--stack", &self.id, "--yes"],
            &[],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_reads_a_real_upload_bench_run() {
    // A stack of its own: the shared one has no pipeline, and adding it replaces the
    // instance the other tests use.
    let clients = edge_clients().await;
    let stack = OwnStack {
        endpoint: clients.endpoint.clone(),
        id: StackId::generate().to_string(),
    };
    let up = run_cli(
        &stack.endpoint,
        &["up", "--json", "--stack", &stack.id, "--with", "pipeline"],
        &[],
    )
    .await;
    assert!(
        up.status.success(),
        "up --with pipeline: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let dir = TempDir::new("hybridlab-report-upload");
    let photo = dir.0.join("photo.jpg");
    std::fs::write(&photo, fixtures::jpeg(800, 600)).expect("write");
    let run_file = dir.0.join("upload.json");
    let bench = run_cli(
        &stack.endpoint,
        &[
            "bench",
            "--stack",
            &stack.id,
            "--upload",
            &photo.display().to_string(),
            "-n",
            "3",
            "--out",
            &run_file.display().to_string(),
        ],
        &[],
    )
    .await;
    assert!(
        bench.status.success(),
        "bench --upload: {}{}",
        String::from_utf8_lossy(&bench.stderr),
        String::from_utf8_lossy(&bench.stdout)
    );
    // Whatever this version writes, a file with a format or a bare run.
    let saved: serde_json::Value =
        serde_json::from_str(&read(&run_file)).expect("the run file is JSON");
    let run: UploadRun = if saved.get("format").is_some() {
        let file: UploadRunFile = serde_json::from_value(saved).expect("an upload run file");
        file.runs.into_iter().next().expect("one run")
    } else {
        serde_json::from_value(saved).expect("an upload run")
    };
    assert_eq!(run.completed, 3);

    let out = dir.0.join("report");
    let output = report(&[
        &run_file.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--png",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed["runs"][0]["kind"], "upload");
    let label = printed["runs"][0]["label"]
        .as_str()
        .expect("a label")
        .to_owned();
    let markdown = read(&out.join("report.md"));
    assert!(markdown.contains("## Upload runs"), "{markdown}");
    assert!(markdown.contains("Sandbox numbers are not AWS numbers."));
    assert!(markdown.contains(&format!("### {label}")));
    let to_final = run
        .measures
        .iter()
        .find(|m| m.name == "to_final")
        .expect("to_final");
    let csv = read(&out.join("summary.csv"));
    let row = csv_row(&csv, &label, "to_final");
    assert_eq!(row[2], "upload");
    assert_eq!(row[5], "3");
    assert_eq!(row[6], format!("{:.3}", to_final.p50_ms));
    let svg = read(&out.join("upload-distribution.svg"));
    for measure in ["to_final", "upload", "trigger", "processing"] {
        assert!(
            svg.contains(&format!("data-name=\"{measure}\"")),
            "{measure}"
        );
    }
    let png = std::fs::read(out.join("upload-distribution.png")).expect("the PNG");
    assert_eq!(png_size(&png), (1600, 880));
}
