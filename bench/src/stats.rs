//! From samples to numbers: HdrHistograms (3 significant digits, microseconds) per measure,
//! percentiles, error counts, throughput and the cost estimate. Plain functions of the
//! samples, so the console, `bench` and `report` agree and tests need no network.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};

use crate::model::{CostEstimate, HistogramExport, MeasureSummary, Outcome, RunSummary, Sample};

/// Significant digits of every histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// AWS Lambda list prices, x86_64, us-east-1 (first pricing tier), November 2026.
pub const PRICE_PER_GB_SECOND_USD: f64 = 0.000_016_666_7;
pub const PRICE_PER_MILLION_REQUESTS_USD: f64 = 0.20;

/// The measures of a run, in the order they are shown.
pub const MEASURES: [&str; 10] = [
    "client",
    "lambda_duration",
    "init_duration",
    "ec2_total",
    "ec2_download",
    "ec2_decode",
    "ec2_resize",
    "ec2_encode",
    "ec2_s3",
    "ec2_dynamodb",
];

fn ms_to_us(ms: f64) -> u64 {
    (ms * 1000.0).round().max(0.0) as u64
}

/// The value of measure `name` in `sample`, in microseconds, if the sample has it.
pub fn value_us(sample: &Sample, name: &str) -> Option<u64> {
    let stage = |stage: &str| {
        let timings = sample.ec2_ms.as_ref()?;
        timings
            .stages()
            .into_iter()
            .find(|(name, _)| *name == stage)
            .map(|(_, ms)| ms_to_us(ms))
    };
    match name {
        "client" => Some(sample.latency_us()),
        "lambda_duration" => sample.lambda.as_ref().map(|r| ms_to_us(r.duration_ms)),
        "init_duration" => sample
            .lambda
            .as_ref()
            .and_then(|r| r.init_duration_ms)
            .map(ms_to_us),
        other => stage(other.strip_prefix("ec2_")?),
    }
}

/// An empty histogram of the kind every measure uses (auto-resizing, so no value is lost).
pub fn new_histogram() -> Histogram<u64> {
    let mut histogram =
        Histogram::<u64>::new(SIGNIFICANT_DIGITS).unwrap_or_else(|_| unreachable_histogram());
    histogram.auto(true);
    histogram
}

// 3 significant digits is always a valid precision; this only satisfies the type.
fn unreachable_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 2, 3).unwrap_or_else(|_| std::process::abort())
}

/// The histogram of measure `name` over `samples`.
pub fn histogram_of(samples: &[Sample], name: &str) -> Histogram<u64> {
    let mut histogram = new_histogram();
    for value in samples.iter().filter_map(|sample| value_us(sample, name)) {
        // Auto-resize accepts any u64, so recording cannot fail here.
        let _ = histogram.record(value);
    }
    histogram
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Percentiles and the exported histogram of one measure; `None` if no sample has it.
pub fn summarize_measure(name: &str, histogram: &Histogram<u64>) -> Option<MeasureSummary> {
    if histogram.is_empty() {
        return None;
    }
    let mut encoded = Vec::new();
    let hdr = match V2DeflateSerializer::new().serialize(histogram, &mut encoded) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&encoded),
        Err(_) => String::new(),
    };
    Some(MeasureSummary {
        name: name.to_owned(),
        count: histogram.len(),
        min_ms: ms(histogram.min()),
        mean_ms: histogram.mean() / 1000.0,
        stdev_ms: histogram.stdev() / 1000.0,
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
        histogram: HistogramExport {
            unit: "us".to_owned(),
            significant_digits: SIGNIFICANT_DIGITS,
            buckets: histogram
                .iter_recorded()
                .map(|bucket| [bucket.value_iterated_to(), bucket.count_at_value()])
                .collect(),
            hdr_v2_deflate_base64: hdr,
        },
    })
}

/// A summary of each of `measures` over `samples` (in the order given; a measure no sample
/// has is left out), from the milliseconds `value_ms` reads of a sample.
pub fn summarize_ms<S>(
    measures: &[&str],
    samples: &[S],
    value_ms: impl Fn(&S, &str) -> Option<f64>,
) -> Vec<MeasureSummary> {
    measures
        .iter()
        .filter_map(|measure| {
            let mut histogram = new_histogram();
            for value in samples.iter().filter_map(|s| value_ms(s, measure)) {
                let _ = histogram.record((value * 1000.0).round().max(0.0) as u64);
            }
            summarize_measure(measure, &histogram)
        })
        .collect()
}

/// The cost of `samples` at list prices: GB-seconds from each billed duration and the
/// function's memory size, plus the per-request charge.
pub fn cost_of(samples: &[Sample]) -> CostEstimate {
    let requests = samples
        .iter()
        .filter(|sample| !matches!(sample.outcome, Outcome::Throttled | Outcome::ClientError))
        .count() as u64;
    let gb_seconds: f64 = samples
        .iter()
        .filter_map(|sample| sample.lambda.as_ref())
        .map(|report| {
            (report.billed_duration_ms / 1000.0) * (f64::from(report.memory_size_mb) / 1024.0)
        })
        .sum();
    let compute_usd = gb_seconds * PRICE_PER_GB_SECOND_USD;
    let requests_usd = requests as f64 * PRICE_PER_MILLION_REQUESTS_USD / 1e6;
    CostEstimate {
        requests,
        gb_seconds,
        compute_usd,
        requests_usd,
        total_usd: compute_usd + requests_usd,
        basis: format!(
            "AWS Lambda x86_64 list prices: ${PRICE_PER_GB_SECOND_USD} per GB-second, ${PRICE_PER_MILLION_REQUESTS_USD} per million requests; free tier not deducted; the EC2 instance is billed separately"
        ),
    }
}

/// Everything a run's samples add up to.
pub fn summarize(samples: &[Sample]) -> RunSummary {
    let mut errors = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.outcome != Outcome::Ok) {
        *errors.entry(sample.outcome).or_insert(0) += 1;
    }
    let first = samples.iter().map(|s| s.intended_us).min().unwrap_or(0);
    let last = samples.iter().map(|s| s.done_us).max().unwrap_or(0);
    let elapsed_s = last.saturating_sub(first) as f64 / 1e6;
    let invocations = samples.len() as u64;
    let measures = MEASURES
        .iter()
        .filter_map(|name| summarize_measure(name, &histogram_of(samples, name)))
        .collect();
    RunSummary {
        invocations,
        ok: samples.iter().filter(|s| s.outcome == Outcome::Ok).count() as u64,
        errors,
        elapsed_s,
        throughput_per_s: if elapsed_s > 0.0 {
            invocations as f64 / elapsed_s
        } else {
            0.0
        },
        cold_starts: samples.iter().filter(|s| s.cold_start()).count() as u64,
        measures,
        cost: cost_of(samples),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::report::Report;

    fn sample(seq: u64, latency_us: u64, duration_ms: f64, cold: bool) -> Sample {
        Sample {
            seq,
            intended_us: seq * 1000,
            sent_us: seq * 1000,
            done_us: seq * 1000 + latency_us,
            outcome: Outcome::Ok,
            lambda: Some(Report {
                request_id: format!("r{seq}"),
                duration_ms,
                billed_duration_ms: duration_ms.ceil(),
                memory_size_mb: 512,
                max_memory_used_mb: 30,
                init_duration_ms: cold.then_some(120.0),
                status: None,
                error_type: None,
            }),
            ec2_ms: None,
            ec2_round_trip_ms: None,
            error: None,
        }
    }

    /// The exact percentile by the nearest-rank definition HdrHistogram uses.
    fn nearest_rank(values: &mut [u64], quantile: f64) -> u64 {
        values.sort_unstable();
        let rank = ((quantile * values.len() as f64).ceil() as usize).max(1);
        values[rank - 1]
    }

    #[test]
    fn percentiles_agree_with_an_exact_computation_within_the_precision() {
        // A skewed distribution: mostly 2-5 ms with a long tail to 900 ms.
        let samples: Vec<Sample> = (0..20_000u64)
            .map(|i| {
                let base = 2_000 + (i * 7919) % 3_000;
                let latency = if i % 97 == 0 { base * 150 } else { base };
                sample(i, latency, 1.0, false)
            })
            .collect();
        let summary = summarize(&samples);
        let client = summary.measure("client").expect("client latency");
        let mut values: Vec<u64> = samples.iter().map(Sample::latency_us).collect();
        for (quantile, reported) in [
            (0.5, client.p50_ms),
            (0.9, client.p90_ms),
            (0.99, client.p99_ms),
            (0.999, client.p999_ms),
        ] {
            let exact = nearest_rank(&mut values, quantile) as f64 / 1000.0;
            let error = (reported - exact).abs() / exact;
            assert!(error <= 0.001, "p{quantile}: {reported} vs exact {exact}");
        }
        let exact_max = *values.iter().max().expect("values") as f64 / 1000.0;
        assert!((client.max_ms - exact_max).abs() / exact_max <= 0.001);
        assert_eq!(client.count, 20_000);
        let recorded: u64 = client.histogram.buckets.iter().map(|[_, n]| n).sum();
        assert_eq!(recorded, 20_000);
    }

    #[test]
    fn errors_cold_starts_and_throughput_are_counted() {
        let mut samples: Vec<Sample> = (0..10).map(|i| sample(i, 5_000, 3.2, i < 2)).collect();
        samples[5].outcome = Outcome::Throttled;
        samples[5].lambda = None;
        samples[6].outcome = Outcome::Ec2Error;
        let summary = summarize(&samples);
        assert_eq!(summary.invocations, 10);
        assert_eq!(summary.ok, 8);
        assert_eq!(summary.errors.get(&Outcome::Throttled), Some(&1));
        assert_eq!(summary.errors.get(&Outcome::Ec2Error), Some(&1));
        assert_eq!(summary.cold_starts, 2);
        assert_eq!(summary.measure("init_duration").map(|m| m.count), Some(2));
        // From the first intended send (0) to the last answer (9 ms + 5 ms).
        assert!((summary.elapsed_s - 0.014).abs() < 1e-9);
        assert!((summary.throughput_per_s - 10.0 / 0.014).abs() < 1e-6);
        assert!(summary.measure("ec2_total").is_none());
    }

    #[test]
    fn cost_follows_billed_duration_and_memory() {
        // 9 billed invocations of 4 ms at 512 MB, one throttled (not billed).
        let mut samples: Vec<Sample> = (0..10).map(|i| sample(i, 5_000, 3.2, false)).collect();
        samples[0].outcome = Outcome::Throttled;
        samples[0].lambda = None;
        let cost = cost_of(&samples);
        assert_eq!(cost.requests, 9);
        assert!((cost.gb_seconds - 9.0 * 0.004 * 0.5).abs() < 1e-12);
        let expected = cost.gb_seconds * PRICE_PER_GB_SECOND_USD + 9.0 * 0.2 / 1e6;
        assert!((cost.total_usd - expected).abs() < 1e-15);
    }

    #[test]
    fn the_v2_encoding_decodes_to_the_same_histogram() {
        use hdrhistogram::serialization::Deserializer;
        let samples: Vec<Sample> = (0..500)
            .map(|i| sample(i, 1_000 + i * 13, 1.0, false))
            .collect();
        let original = histogram_of(&samples, "client");
        let summary = summarize_measure("client", &original).expect("a measure");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&summary.histogram.hdr_v2_deflate_base64)
            .expect("base64");
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .expect("a V2 histogram");
        assert_eq!(decoded, original);
    }
}
