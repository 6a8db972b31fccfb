//! What a benchmark run is made of and how it is saved: its configuration, one [`Sample`] per
//! invocation, and the summary computed from the samples. `hybridlab bench --out` writes a
//! [`RunFile`]; `hybridlab report` and the console read it back.

use std::collections::BTreeMap;

use hybridlab_wire::StageTimings;
use serde::{Deserialize, Serialize};

/// The `format` field of a run file; bumped when the shape changes incompatibly.
pub const RUN_FILE_FORMAT: &str = "hybridlab-bench/1";

/// How an invocation ended, by the kinds a student needs to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The function answered and, for the proxy, the image server answered 2xx.
    Ok,
    /// Lambda refused the invocation (429 TooManyRequestsException): concurrency exhausted.
    Throttled,
    /// The function itself failed (`X-Amz-Function-Error`, not a timeout).
    FunctionError,
    /// The function ran out of time (`Status: timeout` in its REPORT line).
    Timeout,
    /// The proxy answered, but with the image server's (or its own) error status.
    Ec2Error,
    /// The request never got an answer from Lambda: connection, SDK or service error.
    ClientError,
}

impl Outcome {
    pub const ALL: [Self; 6] = [
        Self::Ok,
        Self::Throttled,
        Self::FunctionError,
        Self::Timeout,
        Self::Ec2Error,
        Self::ClientError,
    ];

    /// The outcome of an invocation Lambda refused with `status` and error `code`: a throttle
    /// (429, TooManyRequestsException), or an error on the caller's side of the function.
    pub fn of_refusal(status: u16, code: &str) -> Self {
        if status == 429 || code == "TooManyRequestsException" {
            Self::Throttled
        } else {
            Self::ClientError
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Throttled => "throttled",
            Self::FunctionError => "function_error",
            Self::Timeout => "timeout",
            Self::Ec2Error => "ec2_error",
            Self::ClientError => "client_error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invocation as the engine saw it. Times are microseconds since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Order of issue, from 0.
    pub seq: u64,
    /// When the invocation was meant to be sent: the schedule's time in an open loop, the
    /// send time in a closed loop.
    pub intended_us: u64,
    /// When it was actually sent.
    pub sent_us: u64,
    /// When the answer was complete.
    pub done_us: u64,
    pub outcome: Outcome,
    /// From the REPORT line of the log tail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<hybridlab_wire::report::Report>,
    /// The image server's stage timings, from the proxy's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_ms: Option<StageTimings>,
    /// The proxy's own measure of its call to the image server, from the call to the last byte
    /// of the answer (`lambda.ec2_round_trip_ms` in its answer): the Lambda-to-EC2 network is
    /// this minus the server's `total`, and the proxy's own time is Lambda's duration minus it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_round_trip_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Sample {
    /// The latency the client saw, from the intended send time: coordinated omission
    /// corrected, as wrk2 measures it (in a closed loop the two times are equal).
    pub fn latency_us(&self) -> u64 {
        self.done_us.saturating_sub(self.intended_us)
    }

    /// The round trip alone, from the actual send time.
    pub fn service_us(&self) -> u64 {
        self.done_us.saturating_sub(self.sent_us)
    }

    pub fn cold_start(&self) -> bool {
        self.lambda
            .as_ref()
            .is_some_and(|report| report.cold_start())
    }

    // Where the time went, as the console's bar and the report's figure both split it. The
    // parts come from three clocks (the client's, Lambda's, the server's): a difference that
    // comes out negative is rounding or skew, and counts as no time.

    /// The client's latency beyond Lambda's Duration and Init (Init is outside Duration but
    /// inside what the client waited): signing, the Invoke API, the network to Lambda.
    /// `None` without a REPORT line.
    pub fn invoke_overhead_ms(&self) -> Option<f64> {
        let report = self.lambda.as_ref()?;
        let client_ms = self.latency_us() as f64 / 1000.0;
        Some((client_ms - report.duration_ms - report.init_duration_ms.unwrap_or(0.0)).max(0.0))
    }

    /// The proxy's own time: Lambda's Duration minus its call to the image server.
    pub fn proxy_own_ms(&self) -> Option<f64> {
        Some((self.lambda.as_ref()?.duration_ms - self.ec2_round_trip_ms?).max(0.0))
    }

    /// The Lambda-to-EC2 network: the proxy's call minus the server's own total.
    pub fn lambda_to_ec2_ms(&self) -> Option<f64> {
        Some((self.ec2_round_trip_ms? - self.ec2_ms.as_ref()?.total).max(0.0))
    }
}

/// How invocations are issued.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoadShape {
    /// `concurrency` workers, each sending its next invocation when the last one answered.
    Closed { concurrency: usize },
    /// Invocations sent on a fixed schedule of `rate` per second whatever the answers do,
    /// with at most `max_in_flight` outstanding (later ones wait, and their wait counts).
    Open { rate: f64, max_in_flight: usize },
}

impl LoadShape {
    /// The concurrency a run is plotted against: the workers of a closed loop, the cap of an
    /// open one.
    pub fn concurrency(&self) -> usize {
        match *self {
            Self::Closed { concurrency } => concurrency,
            Self::Open { max_in_flight, .. } => max_in_flight,
        }
    }
}

/// What a run was asked to do, and against what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// A name for plots and tables (`c=8`, `before`, the file name...).
    pub label: String,
    /// `local sandbox (...)` or `AWS <region>`.
    pub target: String,
    pub stack: Option<String>,
    pub function: String,
    pub shape: LoadShape,
    /// Stop after this many measured invocations...
    pub requests: Option<u64>,
    /// ...or after this many seconds, whichever comes first.
    pub duration_s: Option<f64>,
    /// Invocations sent and discarded before measuring.
    pub warmup: u64,
    /// The payloads, cycled through in order (an image URL becomes `{"image_url": ...}`).
    pub payloads: usize,
    /// Stopped by Ctrl-C before its count or its time: a partial run, every invocation sent
    /// before the stop finished and recorded. Absent in the files of complete runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// `bench --cold`: the function's configuration was changed before each invocation, so
    /// every one started a new execution environment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cold: bool,
    /// The function's configured memory during the run, when the bench set or read it (each
    /// level of a `--memory` sweep has its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// What the run ran on and with, for the report's environment section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<RunEnvironment>,
    /// RFC 3339.
    pub started_at: String,
}

/// Where and with what a run was made: what a reader needs to compare two reports, and to
/// know sandbox numbers from AWS numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunEnvironment {
    /// `sandbox` or `aws`.
    pub target_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The image server's EC2 instance type, from the stack record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// The instance's on-demand list price (`provision`'s table), for the report's full cost:
    /// the instance's share of a run is this times the run's elapsed hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_hourly_usd: Option<f64>,
    /// The image URL, URL list or file the run sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The input image's size, when the bench knew it (a local file, or a fetched URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bytes: Option<u64>,
    /// `CARGO_PKG_VERSION` of the hybridlab that ran the bench.
    pub hybridlab_version: String,
    /// The git commit it was built from, when known at build time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Percentiles and the histogram of one measure, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureSummary {
    /// `client`, `lambda_duration`, `init_duration`, `ec2_total`, `ec2_download`, ...
    pub name: String,
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub stdev_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub histogram: HistogramExport,
}

/// The raw histogram: HdrHistogram with 3 significant digits over microseconds, as
/// `[value_us, count]` pairs of every non-empty bucket, and in the standard HdrHistogram V2
/// compressed encoding (base64) that HdrHistogram's own tools read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramExport {
    pub unit: String,
    pub significant_digits: u8,
    pub buckets: Vec<[u64; 2]>,
    pub hdr_v2_deflate_base64: String,
}

/// What the invocations would cost on AWS Lambda (x86_64) at list prices, free tier ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub requests: u64,
    pub gb_seconds: f64,
    pub compute_usd: f64,
    pub requests_usd: f64,
    pub total_usd: f64,
    /// The prices used, so a reader can check them.
    pub basis: String,
}

/// The numbers of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Measured invocations (warm-up excluded).
    pub invocations: u64,
    pub ok: u64,
    /// Count per outcome other than `ok`, by its name.
    pub errors: BTreeMap<Outcome, u64>,
    /// From the first intended send to the last answer.
    pub elapsed_s: f64,
    /// Answered invocations per second, errors included.
    pub throughput_per_s: f64,
    pub cold_starts: u64,
    pub measures: Vec<MeasureSummary>,
    pub cost: CostEstimate,
}

impl RunSummary {
    pub fn measure(&self, name: &str) -> Option<&MeasureSummary> {
        self.measures.iter().find(|measure| measure.name == name)
    }
}

/// One run: what it was asked, what it saw, and what that adds up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub config: RunConfig,
    pub summary: RunSummary,
    /// Every measured invocation, in order of issue.
    pub samples: Vec<Sample>,
}

/// What `hybridlab bench --out` writes: one run, or one per level of a `--sweep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub format: String,
    pub runs: Vec<Run>,
}

impl RunFile {
    pub fn new(runs: Vec<Run>) -> Self {
        Self {
            format: RUN_FILE_FORMAT.to_owned(),
            runs,
        }
    }
}
