//! Synthetic runs for the report's tests: samples made up with known latencies, summarised by
//! the same `stats::summarize` that `hybridlab bench` uses.

use crate::model::{LoadShape, Outcome, Run, RunConfig, RunFile, Sample};
use crate::stats;
use hybridlab_wire::report::Report;

/// One successful invocation `latency_us` long whose function ran `duration_ms`, a cold
/// start (with a 150 ms Init Duration) if `cold`.
pub fn sample(seq: u64, latency_us: u64, duration_ms: f64, cold: bool) -> Sample {
    Sample {
        seq,
        intended_us: seq * 10_000,
        sent_us: seq * 10_000,
        done_us: seq * 10_000 + latency_us,
        outcome: Outcome::Ok,
        lambda: Some(Report {
            request_id: format!("r{seq}"),
            duration_ms,
            billed_duration_ms: duration_ms.ceil(),
            memory_size_mb: 512,
            max_memory_used_mb: 40,
            init_duration_ms: cold.then_some(150.0),
            status: None,
            error_type: None,
        }),
        ec2_ms: None,
        ec2_round_trip_ms: None,
        error: None,
    }
}

/// A closed-loop run of `samples`.
pub fn run_of(label: &str, concurrency: usize, samples: Vec<Sample>) -> Run {
    Run {
        config: RunConfig {
            label: label.to_owned(),
            target: "local sandbox (http://127.0.0.1:4566)".to_owned(),
            stack: Some("t1".to_owned()),
            function: "hybridlab-proxy-t1".to_owned(),
            shape: LoadShape::Closed { concurrency },
            requests: Some(samples.len() as u64),
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

/// `count` invocations at `concurrency` workers: latencies spread over 2..5 ms times the
/// concurrency, the first `concurrency` of them cold starts taking 150 ms more.
pub fn run_at(label: &str, concurrency: usize, count: u64) -> Run {
    let samples = (0..count)
        .map(|i| {
            let cold = i < concurrency as u64;
            let warm_us = (2_000 + (i * 7_919) % 3_000) * concurrency as u64;
            let latency_us = if cold { warm_us + 150_000 } else { warm_us };
            sample(i, latency_us, warm_us as f64 / 1000.0 * 0.8, cold)
        })
        .collect();
    run_of(label, concurrency, samples)
}

/// The JSON text `hybridlab bench --out` would write for `runs`.
pub fn run_file_json(runs: &[Run]) -> String {
    serde_json::to_string(&RunFile::new(runs.to_vec())).expect("a run file serialises")
}
