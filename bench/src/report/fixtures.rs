//! Synthetic runs for the report's tests: samples made up with known latencies, summarised by
//! the same `stats::summarize` that `hybridlab bench` uses.

use crate::model::{LoadShape, Outcome, Run, RunConfig, RunEnvironment, RunFile, Sample};
use crate::stats;
use crate::uploads::{UploadRun, UploadSample, summarize_uploads};
use hybridlab_wire::StageTimings;
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

/// A successful invocation of the proxy with every timing: the client saw `client_ms`, the
/// function ran 40 ms of which 30 ms were its call to the server, and the server took 24 ms
/// in stages of 5, 3, 8, 2, 4 and 2 ms.
pub fn staged_sample(seq: u64, client_ms: f64) -> Sample {
    let mut sample = sample(seq, (client_ms * 1000.0) as u64, 40.0, false);
    sample.ec2_round_trip_ms = Some(30.0);
    sample.ec2_ms = Some(StageTimings {
        download: 5.0,
        decode: 3.0,
        resize: 8.0,
        encode: 2.0,
        s3: 4.0,
        dynamodb: 2.0,
        total: 24.0,
    });
    sample
}

/// What `bench` records of where it ran: the sandbox, or AWS in eu-west-1 on a t3.micro.
pub fn environment(on_aws: bool) -> RunEnvironment {
    RunEnvironment {
        target_kind: if on_aws { "aws" } else { "sandbox" }.to_owned(),
        region: on_aws.then(|| "eu-west-1".to_owned()),
        instance_type: Some("t3.micro".to_owned()),
        instance_hourly_usd: Some(0.0104),
        input: Some("https://example.com/cat.jpg".to_owned()),
        input_bytes: Some(123_456),
        hybridlab_version: "0.1.0".to_owned(),
        commit: Some("abc1234".to_owned()),
    }
}

/// A run of a `--memory` sweep level: `count` invocations at `memory_mb` whose duration
/// falls as memory grows (`work_ms` at 1,024 MB, never under 10 ms).
pub fn memory_run(memory_mb: u32, count: u64, work_ms: f64) -> Run {
    let duration_ms = (work_ms * 1024.0 / f64::from(memory_mb)).max(10.0);
    let samples = (0..count)
        .map(|i| {
            let mut sample = sample(i, (duration_ms * 1000.0) as u64 + 3_000, duration_ms, false);
            if let Some(report) = sample.lambda.as_mut() {
                report.memory_size_mb = memory_mb;
            }
            sample
        })
        .collect();
    let mut run = run_of(&format!("m={memory_mb}"), 1, samples);
    run.config.memory_mb = Some(memory_mb);
    run
}

/// A REPORT line of the resizer at `memory_mb`.
pub fn resizer_report(seq: u64, duration_ms: f64, memory_mb: u32) -> Report {
    Report {
        request_id: format!("resize-{seq}"),
        duration_ms,
        billed_duration_ms: duration_ms.ceil(),
        memory_size_mb: memory_mb,
        max_memory_used_mb: 90,
        init_duration_ms: None,
        status: None,
        error_type: None,
    }
}

/// An upload run of `count` images, each 100 + 10·i ms to its final status (upload 20 ms,
/// trigger 30 ms, processing 50 + 10·i ms), with the resizer's REPORT lines at `memory_mb`
/// when given.
pub fn upload_run(label: Option<&str>, memory_mb: Option<u32>, count: u64) -> UploadRun {
    let samples: Vec<UploadSample> = (0..count)
        .map(|i| UploadSample {
            image_id: Some(format!("img-{i}")),
            outcome: "COMPLETED".to_owned(),
            to_final_ms: Some(100.0 + 10.0 * i as f64),
            upload_ms: Some(20.0),
            trigger_ms: Some(30.0),
            processing_ms: Some(50.0 + 10.0 * i as f64),
            error: None,
        })
        .collect();
    let resizer_reports = memory_mb.map_or_else(Vec::new, |memory_mb| {
        (0..count)
            .map(|i| {
                resizer_report(
                    i,
                    40.0 * 1024.0 / f64::from(memory_mb) + i as f64,
                    memory_mb,
                )
            })
            .collect()
    });
    UploadRun {
        label: label.map(str::to_owned),
        started_at: Some("2026-11-03T11:00:00Z".to_owned()),
        interrupted: false,
        memory_mb,
        resizer_reports,
        environment: None,
        target: "local sandbox (http://127.0.0.1:4566)".to_owned(),
        stack: "t1".to_owned(),
        file: "photo.jpg".to_owned(),
        file_bytes: 250_000,
        via: "presigned".to_owned(),
        uploads: count,
        concurrency: 2,
        completed: count,
        failed: 0,
        errors: 0,
        elapsed_s: 2.0,
        images_per_s: count as f64 / 2.0,
        measures: summarize_uploads(&samples),
        samples,
    }
}
