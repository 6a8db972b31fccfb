//! How long the console takes to draw a frame, and how much memory it holds, with a burst of
//! 1,000,000 recorded invocations and 10,000 log lines: the load a long lab session or a
//! presenter's benchmark leaves in it. Each view is drawn into ratatui's TestBackend (the
//! drawing is the console's work; the terminal's own write is the same for any content).
//!
//! `cargo bench -p hybridlab-console --bench console_frame` (release). Prints a Markdown
//! table for BENCHMARKS.md.

use std::time::{Duration, Instant};

use hybridlab_bench::model::{Outcome, Sample};
use hybridlab_console::lab::logs::entry::{LogEntry, LogGroup, LogSource};
use hybridlab_console::tui::action::{Key, Update};
use hybridlab_console::tui::app::{App, Tab};
use hybridlab_console::tui::palette::Palette;
use hybridlab_console::tui::view;
use hybridlab_wire::StageTimings;
use hybridlab_wire::report::Report;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SAMPLES: u64 = 1_000_000;
const LOG_LINES: usize = 10_000;
const FRAMES: usize = 200;

/// A lab invocation as the engine records it: 2 to 60 ms, one in fifty throttled, the
/// first eight cold, with the REPORT fields and the server's stage timings.
fn sample(seq: u64) -> Sample {
    let latency_us = 2_000 + seq * 7_919 % 58_000;
    let outcome = if seq % 50 == 49 {
        Outcome::Throttled
    } else {
        Outcome::Ok
    };
    let ok = outcome == Outcome::Ok;
    Sample {
        seq,
        intended_us: seq * 200,
        sent_us: seq * 200,
        done_us: seq * 200 + latency_us,
        outcome,
        lambda: ok.then(|| Report {
            request_id: format!("8f5d1c2e-0b1a-4c3d-9e8f-{seq:012}"),
            duration_ms: latency_us as f64 / 1000.0 - 0.7,
            billed_duration_ms: (latency_us / 1000 + 1) as f64,
            memory_size_mb: 256,
            max_memory_used_mb: 24,
            init_duration_ms: (seq < 8).then_some(41.2),
            status: None,
            error_type: None,
        }),
        ec2_ms: ok.then_some(StageTimings {
            download: 1.2,
            decode: 4.1,
            resize: 3.3,
            encode: 5.0,
            s3: 2.2,
            dynamodb: 1.1,
            total: 17.0,
        }),
        ec2_round_trip_ms: ok.then_some(18.4),
        error: None,
    }
}

fn log_lines() -> Vec<LogEntry> {
    let lambda = LogGroup {
        source: LogSource::Lambda,
        name: "/aws/lambda/hybridlab-proxy-k3x9q2ma".into(),
        arn: None,
    };
    let server = LogGroup {
        source: LogSource::Ec2,
        name: "/hybridlab/k3x9q2ma/ec2-server".into(),
        arn: None,
    };
    let start = 1_795_000_000_000;
    (0..LOG_LINES)
        .map(|at| {
            let id = format!("8f5d1c2e-0b1a-4c3d-9e8f-{:012}", at / 4);
            let t = start + at as i64 * 3;
            match at % 4 {
                0 => LogEntry::new(&lambda, "s", t, None, None, &format!("START RequestId: {id} Version: $LATEST\n")),
                1 => LogEntry::new(
                    &server,
                    "s",
                    t,
                    None,
                    None,
                    &format!(r#"{{"timestamp":"2026-11-29T18:00:00Z","level":"INFO","fields":{{"message":"image processed","total_ms":17.0}},"span":{{"request_id":"{id}"}}}}"#),
                ),
                2 => LogEntry::new(&lambda, "s", t, None, None, &format!("END RequestId: {id}\n")),
                _ => LogEntry::new(
                    &lambda,
                    "s",
                    t,
                    None,
                    None,
                    &format!("REPORT RequestId: {id}\tDuration: 18.20 ms\tBilled Duration: 19 ms\tMemory Size: 256 MB\tMax Memory Used: 24 MB\t\n"),
                ),
            }
        })
        .collect()
}

/// `VmRSS` and `VmHWM` of this process, in MiB (NaN where procfs does not exist).
fn memory_mib() -> (f64, f64) {
    #[cfg(target_os = "linux")]
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    #[cfg(not(target_os = "linux"))]
    let status = String::new();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn frames(app: &App, width: u16, height: u16) -> Vec<Duration> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    let palette = Palette::new(true);
    let mut times: Vec<Duration> = (0..FRAMES)
        .map(|_| {
            let started = Instant::now();
            terminal
                .draw(|frame| view::draw(frame, app, palette))
                .expect("draws");
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn main() {
    let (rss_empty, _) = memory_mib();
    let mut app = App::new(
        "LOCAL SANDBOX (http://127.0.0.1:4566)".into(),
        false,
        "http://127.0.0.1:8000/cat.jpg".into(),
    );
    app.on_key(Key::Char('2'));
    app.on_key(Key::Enter);
    app.apply(Update::BurstStarted {
        function: "hybridlab-proxy-k3x9q2ma".into(),
        stack: "k3x9q2ma".into(),
        started_at: "2026-11-29T18:00:00Z".into(),
    });
    let started = Instant::now();
    for seq in 0..SAMPLES {
        app.apply(Update::Sample(Box::new(sample(seq))));
    }
    let record = started.elapsed();
    app.logs.push(log_lines());
    let (rss_loaded, _) = memory_mib();

    println!("| view | terminal | frames | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, app: &App, width: u16, height: u16| {
        let times = frames(app, width, height);
        println!(
            "| {name} | {width}x{height} | {FRAMES} | {:.2} ms | {:.2} ms | {:.2} ms |",
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    };
    // At 200x60 the view draws everything: the histogram, where the time goes, every
    // measure's percentiles, the slowest invocations and errors, and the p99 of each second.
    for (width, height) in [(80, 24), (200, 60)] {
        row("Invoke, 1,000,000 samples", &app, width, height);
    }
    // Down selects the slowest invocation: on a small terminal, the breakdown's panel.
    app.on_key(Key::Down);
    row("Invoke, breakdown and slowest selected", &app, 80, 24);
    app.on_key(Key::Char('p'));
    app.on_key(Key::Char('c'));
    row("Invoke, p99 of warm invocations", &app, 200, 60);
    app.tab = Tab::Logs;
    for (width, height) in [(80, 24), (200, 60)] {
        row("Logs, 10,000 lines, following", &app, width, height);
    }
    // A filter that matches one invocation: every line is looked at to fill the screen.
    app.logs.filter = "000000002499".into();
    row("Logs, filtered to one invocation", &app, 200, 60);
    app.logs.filter.clear();
    app.tab = Tab::Stack;
    row("Stack (no stack read)", &app, 200, 60);

    let (rss_end, hwm) = memory_mib();
    println!();
    println!(
        "Recording {SAMPLES} samples through `App::apply` took {:.2} s ({:.0} samples/s, each also written to the run's spool file).",
        record.as_secs_f64(),
        SAMPLES as f64 / record.as_secs_f64()
    );
    println!(
        "Memory (VmRSS): {rss_empty:.1} MiB at start, {rss_loaded:.1} MiB with the samples and the log lines, {rss_end:.1} MiB after drawing; peak (VmHWM) {hwm:.1} MiB."
    );
}
