//! What the Invoke view keeps of a burst besides its client-latency histogram, folded in as
//! each sample arrives so that drawing a frame never reads the samples themselves (a run may
//! hold a million): where each invocation's time went ([`Breakdown`], one HdrHistogram per
//! measure, cold and warm apart), the slowest invocations and the latest errors
//! ([`Notable`], a few of each), and the p99 of each second ([`PerSecondP99`]).

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use hybridlab_bench::model::{Outcome, Sample};
use hybridlab_bench::stats::new_histogram;

/// One thing measured of every invocation that has it, in milliseconds on the wire and
/// microseconds in the histograms. The totals ([`Measure::Client`], [`Measure::Lambda`]) come
/// first, then the segments of the "where the time goes" bar in the order an invocation
/// passes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// What the client saw, from the intended send to the answer.
    Client,
    /// Lambda's REPORT `Duration` (init excluded, as Lambda reports it).
    Lambda,
    /// The client's time outside the function: the network to Lambda and Lambda's own
    /// service, i.e. client minus Duration minus Init.
    Overhead,
    /// REPORT `Init Duration`: cold starts only.
    Init,
    /// The proxy's own work: Duration minus its timed call to the image server.
    Proxy,
    /// The Lambda-to-EC2 network: the proxy's timed call minus the server's `total`.
    Network,
    Download,
    Decode,
    Resize,
    Encode,
    S3,
    DynamoDb,
}

impl Measure {
    pub const ALL: [Self; 12] = [
        Self::Client,
        Self::Lambda,
        Self::Overhead,
        Self::Init,
        Self::Proxy,
        Self::Network,
        Self::Download,
        Self::Decode,
        Self::Resize,
        Self::Encode,
        Self::S3,
        Self::DynamoDb,
    ];

    /// The bar's segments: together they make up the client latency of one invocation. Every
    /// measure after the client's and Lambda's, which the segments split.
    pub const SEGMENTS: &'static [Self] = Self::ALL.split_at(2).1;

    pub fn label(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Lambda => "lambda",
            Self::Overhead => "overhead",
            Self::Init => "init",
            Self::Proxy => "proxy",
            Self::Network => "network",
            Self::Download => "download",
            Self::Decode => "decode",
            Self::Resize => "resize",
            Self::Encode => "encode",
            Self::S3 => "s3",
            Self::DynamoDb => "dynamodb",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

/// The measures of one sample, in milliseconds; `None` where the sample lacks what the
/// measure is made of (no REPORT for a throttle, no stage timings for a server error...).
/// The segments between clocks are [`Sample`]'s own, as the report computes them.
pub fn measures_of(sample: &Sample) -> [Option<f64>; Measure::ALL.len()] {
    let client = sample.latency_us() as f64 / 1000.0;
    let report = sample.lambda.as_ref();
    let stages = sample.ec2_ms.as_ref();
    let stage = |pick: fn(&hybridlab_wire::StageTimings) -> f64| stages.map(pick);
    let mut values = [None; Measure::ALL.len()];
    for measure in Measure::ALL {
        values[measure.index()] = match measure {
            Measure::Client => Some(client),
            Measure::Lambda => report.map(|report| report.duration_ms),
            Measure::Overhead => sample.invoke_overhead_ms(),
            Measure::Init => report.and_then(|report| report.init_duration_ms),
            Measure::Proxy => sample.proxy_own_ms(),
            Measure::Network => sample.lambda_to_ec2_ms(),
            Measure::Download => stage(|s| s.download),
            Measure::Decode => stage(|s| s.decode),
            Measure::Resize => stage(|s| s.resize),
            Measure::Encode => stage(|s| s.encode),
            Measure::S3 => stage(|s| s.s3),
            Measure::DynamoDb => stage(|s| s.dynamodb),
        };
    }
    values
}

/// Which invocations a table or bar is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Class {
    /// Every invocation, those without a REPORT (throttles, client errors) included.
    #[default]
    All,
    /// Invocations whose REPORT has no Init Duration.
    Warm,
    /// Invocations whose REPORT has an Init Duration: a new execution environment.
    Cold,
}

impl Class {
    /// The class `c` moves to after this one.
    pub fn next(self) -> Self {
        match self {
            Self::All => Self::Warm,
            Self::Warm => Self::Cold,
            Self::Cold => Self::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::All => 0,
            Self::Warm => 1,
            Self::Cold => 2,
        }
    }
}

/// A histogram per measure for each [`Class`].
#[derive(Debug, Clone)]
pub struct Breakdown {
    histograms: [[Histogram<u64>; Measure::ALL.len()]; 3],
}

impl Default for Breakdown {
    fn default() -> Self {
        Self {
            histograms: std::array::from_fn(|_| std::array::from_fn(|_| new_histogram())),
        }
    }
}

impl Breakdown {
    pub fn record(&mut self, sample: &Sample) {
        let class = match &sample.lambda {
            Some(report) if report.cold_start() => Some(Class::Cold),
            Some(_) => Some(Class::Warm),
            None => None,
        };
        for (at, value) in measures_of(sample).into_iter().enumerate() {
            let Some(ms) = value else { continue };
            let us = (ms * 1000.0).round() as u64;
            let _ = self.histograms[Class::All.index()][at].record(us);
            if let Some(class) = class {
                let _ = self.histograms[class.index()][at].record(us);
            }
        }
    }

    pub fn histogram(&self, class: Class, measure: Measure) -> &Histogram<u64> {
        &self.histograms[class.index()][measure.index()]
    }

    /// The `quantile` of `measure` over the invocations of `class` that have it, in
    /// microseconds; `None` when none has.
    pub fn at(&self, class: Class, measure: Measure, quantile: f64) -> Option<u64> {
        let histogram = self.histogram(class, measure);
        (!histogram.is_empty()).then(|| histogram.value_at_quantile(quantile))
    }

    /// How long `segment` takes at `quantile` in the bar of `class`, in microseconds. Each
    /// segment is its own measure's quantile (the bar is a stack of per-measure quantiles,
    /// not one invocation's parts). Init is the exception in the bar of every invocation:
    /// a warm invocation spends no time in it, so its quantile is taken over the warm ones
    /// counted as zero and the cold ones' inits together.
    pub fn segment_at(&self, class: Class, segment: Measure, quantile: f64) -> Option<u64> {
        match (class, segment) {
            (Class::All | Class::Warm, Measure::Init) => {
                let warm = self.histogram(Class::Warm, Measure::Lambda).len();
                let cold = self.histogram(Class::Cold, Measure::Init);
                match class {
                    Class::Warm => (warm > 0).then_some(0),
                    _ => quantile_with_zeros(cold, warm, quantile),
                }
            }
            _ => self.at(class, segment, quantile),
        }
    }
}

/// The `quantile` of the values of `histogram` together with `zeros` more values of 0.
pub fn quantile_with_zeros(histogram: &Histogram<u64>, zeros: u64, quantile: f64) -> Option<u64> {
    let total = zeros + histogram.len();
    if total == 0 {
        return None;
    }
    let zero_share = zeros as f64 / total as f64;
    if histogram.is_empty() || quantile <= zero_share {
        return Some(0);
    }
    let within = ((quantile - zero_share) / (1.0 - zero_share)).clamp(0.0, 1.0);
    Some(histogram.value_at_quantile(within))
}

/// An invocation worth a second look: one of the slowest, or one that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct NotedInvocation {
    pub seq: u64,
    pub latency_us: u64,
    pub outcome: Outcome,
    pub cold: bool,
    /// From its REPORT: what the Logs view narrows to. None when Lambda never ran it.
    pub request_id: Option<String>,
    pub error: Option<String>,
}

impl NotedInvocation {
    fn of(sample: &Sample) -> Self {
        Self {
            seq: sample.seq,
            latency_us: sample.latency_us(),
            outcome: sample.outcome,
            cold: sample.cold_start(),
            request_id: sample.lambda.as_ref().map(|r| r.request_id.clone()),
            error: sample.error.as_deref().map(|error| {
                // The list shows one row of it; a long error is cut where it is kept.
                error.chars().take(ERROR_CHARS).collect()
            }),
        }
    }

    /// Why Enter on this invocation cannot show its log lines, if it cannot.
    pub fn why_no_logs(&self) -> Option<String> {
        if self.request_id.is_some() {
            return None;
        }
        let reason = match self.outcome {
            Outcome::Throttled => "Lambda throttled it, so the function never ran",
            _ => "Lambda never answered it, so it has no REPORT",
        };
        Some(format!(
            "invocation #{} has no request id: {reason}; no log lines to show",
            self.seq
        ))
    }
}

/// The longest error kept of a noted invocation, in characters.
const ERROR_CHARS: usize = 200;

/// How many of the slowest invocations, and of the latest errors, are kept.
pub const NOTED: usize = 10;

/// The slowest invocations and the latest errors of a run, [`NOTED`] of each.
#[derive(Debug, Clone, Default)]
pub struct Notable {
    /// Slowest first; of equal latency, the earlier recorded first.
    slowest: Vec<NotedInvocation>,
    /// Oldest first.
    errors: VecDeque<NotedInvocation>,
}

impl Notable {
    pub fn record(&mut self, sample: &Sample) {
        let latency = sample.latency_us();
        // Most samples are not among the slowest: they are turned away before any copy.
        let slow = self.slowest.len() < NOTED
            || self
                .slowest
                .last()
                .is_some_and(|last| latency > last.latency_us);
        if slow {
            let at = self
                .slowest
                .partition_point(|noted| noted.latency_us >= latency);
            self.slowest.insert(at, NotedInvocation::of(sample));
            self.slowest.truncate(NOTED);
        }
        if sample.outcome != Outcome::Ok {
            self.errors.push_back(NotedInvocation::of(sample));
            if self.errors.len() > NOTED {
                self.errors.pop_front();
            }
        }
    }

    pub fn slowest(&self) -> &[NotedInvocation] {
        &self.slowest
    }

    /// The latest errors, newest first.
    pub fn errors(&self) -> impl Iterator<Item = &NotedInvocation> {
        self.errors.iter().rev()
    }

    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The slowest, then the errors newest first: the list the Invoke view selects in.
    pub fn len(&self) -> usize {
        self.slowest.len() + self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `at`th of the list the view selects in.
    pub fn get(&self, at: usize) -> Option<&NotedInvocation> {
        match at.checked_sub(self.slowest.len()) {
            None => self.slowest.get(at),
            Some(error) => self.errors().nth(error),
        }
    }
}

/// Seconds whose p99 may still change: samples arrive in the order they complete, give or
/// take the few in flight in the forwarding channel, so a second is settled once a sample
/// a few seconds later has arrived.
const OPEN_SECONDS: usize = 3;

/// The p99 client latency of the invocations that completed in each second of a run. Only the
/// last [`OPEN_SECONDS`] seconds keep a histogram; older ones keep their p99 alone.
#[derive(Debug, Clone, Default)]
pub struct PerSecondP99 {
    /// The p99 of each settled second, from the run's first, in microseconds (0: none
    /// completed in it).
    settled: Vec<u64>,
    /// The seconds after those, oldest first.
    open: VecDeque<Histogram<u64>>,
    /// Histograms of settled seconds, emptied, for the next open ones.
    spare: Vec<Histogram<u64>>,
}

impl PerSecondP99 {
    pub fn record(&mut self, done_us: u64, latency_us: u64) {
        let second = done_us / 1_000_000;
        // A sample later than the open seconds (held up in a long queue) is not worth
        // reopening a settled second for: the invocations/s counts it, this line does not.
        let Some(mut offset) = second.checked_sub(self.settled.len() as u64) else {
            return;
        };
        while offset >= OPEN_SECONDS as u64 {
            self.settle_oldest();
            offset -= 1;
        }
        let offset = offset as usize;
        while self.open.len() <= offset {
            let histogram = self.spare.pop().unwrap_or_else(new_histogram);
            self.open.push_back(histogram);
        }
        let _ = self.open[offset].record(latency_us.max(1));
    }

    fn settle_oldest(&mut self) {
        match self.open.pop_front() {
            Some(mut histogram) => {
                self.settled.push(p99_or_zero(&histogram));
                histogram.reset();
                self.spare.push(histogram);
            }
            None => self.settled.push(0),
        }
    }

    /// Seconds seen so far.
    pub fn len(&self) -> usize {
        self.settled.len() + self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The p99 of the last `count` seconds, oldest first, in microseconds.
    pub fn last(&self, count: usize) -> Vec<u64> {
        let from_open = self.open.len().min(count);
        let from_settled = (count - from_open).min(self.settled.len());
        let settled = &self.settled[self.settled.len() - from_settled..];
        settled
            .iter()
            .copied()
            .chain(
                self.open
                    .iter()
                    .skip(self.open.len() - from_open)
                    .map(p99_or_zero),
            )
            .collect()
    }
}

fn p99_or_zero(histogram: &Histogram<u64>) -> u64 {
    if histogram.is_empty() {
        0
    } else {
        histogram.value_at_quantile(0.99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::StageTimings;
    use hybridlab_wire::report::Report;

    fn report(id: &str, duration_ms: f64, init: Option<f64>) -> Report {
        Report {
            request_id: id.into(),
            duration_ms,
            billed_duration_ms: duration_ms.ceil(),
            memory_size_mb: 128,
            max_memory_used_mb: 20,
            init_duration_ms: init,
            status: None,
            error_type: None,
        }
    }

    fn sample(seq: u64, latency_us: u64, outcome: Outcome) -> Sample {
        Sample {
            seq,
            intended_us: seq * 1000,
            sent_us: seq * 1000,
            done_us: seq * 1000 + latency_us,
            outcome,
            lambda: None,
            ec2_ms: None,
            ec2_round_trip_ms: None,
            error: None,
        }
    }

    fn stages() -> StageTimings {
        StageTimings {
            download: 1.0,
            decode: 2.0,
            resize: 3.0,
            encode: 4.0,
            s3: 5.0,
            dynamodb: 0.5,
            total: 16.0,
        }
    }

    fn value(values: &[Option<f64>; 12], measure: Measure) -> Option<f64> {
        values[measure.index()]
    }

    #[test]
    fn a_whole_sample_splits_into_segments_that_add_up_to_its_latency() {
        let mut whole = sample(0, 60_000, Outcome::Ok);
        whole.lambda = Some(report("a", 19.0, Some(38.0)));
        whole.ec2_round_trip_ms = Some(17.5);
        whole.ec2_ms = Some(stages());
        let values = measures_of(&whole);
        let close = |measure, expected: f64| {
            let got = value(&values, measure).expect("present");
            assert!((got - expected).abs() < 1e-9, "{measure:?}: {got}");
        };
        close(Measure::Client, 60.0);
        close(Measure::Lambda, 19.0);
        close(Measure::Overhead, 3.0);
        close(Measure::Init, 38.0);
        close(Measure::Proxy, 1.5);
        close(Measure::Network, 1.5);
        close(Measure::Resize, 3.0);
        close(Measure::DynamoDb, 0.5);
        // The segments, total aside, are the client's latency (the stages sum to `total`
        // here but for its 0.5 ms of unmeasured work).
        let sum: f64 = Measure::SEGMENTS
            .iter()
            .filter_map(|m| value(&values, *m))
            .sum();
        assert!((sum - 59.5).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn missing_fields_leave_their_segments_out_and_negative_gaps_are_zero() {
        // A throttle: the client's latency, nothing else.
        let values = measures_of(&sample(0, 4_000, Outcome::Throttled));
        assert_eq!(value(&values, Measure::Client), Some(4.0));
        for measure in &Measure::ALL[1..] {
            assert_eq!(value(&values, *measure), None, "{measure:?}");
        }
        // A server error: a REPORT and the proxy's timing, no stages.
        let mut failed = sample(1, 10_000, Outcome::Ec2Error);
        failed.lambda = Some(report("b", 8.0, None));
        failed.ec2_round_trip_ms = Some(6.0);
        let values = measures_of(&failed);
        assert_eq!(value(&values, Measure::Overhead), Some(2.0));
        assert_eq!(value(&values, Measure::Init), None);
        assert_eq!(value(&values, Measure::Proxy), Some(2.0));
        assert_eq!(value(&values, Measure::Network), None, "no server total");
        assert_eq!(value(&values, Measure::Download), None);
        // Stages without the proxy's timing (an older proxy): no proxy nor network.
        let mut old = sample(2, 30_000, Outcome::Ok);
        old.lambda = Some(report("c", 20.0, None));
        old.ec2_ms = Some(stages());
        let values = measures_of(&old);
        assert_eq!(value(&values, Measure::Proxy), None);
        assert_eq!(value(&values, Measure::Network), None);
        assert_eq!(value(&values, Measure::Encode), Some(4.0));
        // Clocks that disagree: a round trip longer than Duration is no negative proxy time.
        let mut skewed = sample(3, 5_000, Outcome::Ok);
        skewed.lambda = Some(report("d", 6.0, None));
        skewed.ec2_round_trip_ms = Some(6.5);
        let values = measures_of(&skewed);
        assert_eq!(value(&values, Measure::Proxy), Some(0.0));
        assert_eq!(value(&values, Measure::Overhead), Some(0.0));
    }

    #[test]
    fn the_breakdown_keeps_cold_and_warm_apart_and_the_bar_counts_warm_inits_as_zero() {
        let mut breakdown = Breakdown::default();
        for seq in 0..99 {
            let mut warm = sample(seq, 10_000, Outcome::Ok);
            warm.lambda = Some(report("w", 8.0, None));
            breakdown.record(&warm);
        }
        let mut cold = sample(99, 50_000, Outcome::Ok);
        cold.lambda = Some(report("c", 8.0, Some(40.0)));
        breakdown.record(&cold);
        breakdown.record(&sample(100, 1_000, Outcome::Throttled));

        let client = |class| breakdown.histogram(class, Measure::Client).len();
        assert_eq!(
            (client(Class::All), client(Class::Warm), client(Class::Cold)),
            (101, 99, 1),
            "a throttle is in every invocation only"
        );
        assert_eq!(breakdown.at(Class::Warm, Measure::Init, 0.5), None);
        let init = breakdown.at(Class::Cold, Measure::Init, 0.5).expect("one");
        assert!((39_900..=40_100).contains(&init), "{init}");
        // In the bar of every invocation a cold start is one in a hundred: p50 nothing,
        // the maximum its init.
        assert_eq!(
            breakdown.segment_at(Class::All, Measure::Init, 0.5),
            Some(0)
        );
        let top = breakdown.segment_at(Class::All, Measure::Init, 1.0);
        assert!(top.is_some_and(|us| us >= 39_900), "{top:?}");
        assert_eq!(
            breakdown.segment_at(Class::Warm, Measure::Init, 0.99),
            Some(0)
        );
        assert_eq!(
            breakdown.segment_at(Class::Cold, Measure::Init, 0.5),
            Some(init)
        );
        assert_eq!(
            Breakdown::default().segment_at(Class::All, Measure::Init, 0.5),
            None,
            "no REPORT yet"
        );
    }

    #[test]
    fn the_slowest_stay_ten_slowest_first_whatever_the_order_they_come_in() {
        let mut notable = Notable::default();
        // Latencies in a scrambled order, 1 to 100 ms.
        for seq in 0..100u64 {
            let latency = (seq * 37 % 100 + 1) * 1000;
            notable.record(&sample(seq, latency, Outcome::Ok));
        }
        let latencies: Vec<u64> = notable.slowest().iter().map(|n| n.latency_us).collect();
        assert_eq!(
            latencies,
            (91..=100).rev().map(|ms| ms * 1000).collect::<Vec<_>>()
        );
        assert_eq!(notable.error_count(), 0);
        // A tie with the last one kept does not push it out.
        notable.record(&sample(100, 91_000, Outcome::Ok));
        assert_eq!(notable.slowest()[9].seq, 70, "91 ms, recorded first");
        assert!(notable.slowest().iter().all(|n| n.seq != 100));
    }

    #[test]
    fn the_errors_are_the_last_ten_newest_first_and_say_when_they_have_no_logs() {
        let mut notable = Notable::default();
        for seq in 0..25 {
            let mut failed = sample(seq, 1_000, Outcome::Throttled);
            failed.error = Some("x".repeat(1_000));
            notable.record(&failed);
            notable.record(&sample(100 + seq, 500, Outcome::Ok));
        }
        let seqs: Vec<u64> = notable.errors().map(|n| n.seq).collect();
        assert_eq!(seqs, (15..25).rev().collect::<Vec<_>>());
        assert_eq!(notable.len(), 20);
        assert_eq!(notable.get(10).map(|n| n.seq), Some(24), "the newest error");
        assert_eq!(notable.get(19).map(|n| n.seq), Some(15));
        assert_eq!(notable.get(20), None);
        let newest = notable.get(10).expect("an error");
        assert_eq!(newest.error.as_ref().map(String::len), Some(ERROR_CHARS));
        let why = newest.why_no_logs().expect("no request id");
        assert!(why.contains("#24") && why.contains("throttled"), "{why}");

        let mut answered = sample(7, 1_000, Outcome::Ec2Error);
        answered.lambda = Some(report("8f5d1c2e", 0.9, None));
        notable.record(&answered);
        let newest = notable.get(10).expect("an error");
        assert_eq!(newest.request_id.as_deref(), Some("8f5d1c2e"));
        assert_eq!(newest.why_no_logs(), None);
    }

    #[test]
    fn each_second_has_the_p99_of_the_invocations_that_completed_in_it() {
        let mut line = PerSecondP99::default();
        // Second 0: 100 invocations of 1..=100 ms; second 1: none; second 2: 5 ms each.
        for ms in 1..=100u64 {
            line.record(ms * 1_000, ms * 1_000);
        }
        for at in 0..10 {
            line.record(2_000_000 + at, 5_000);
        }
        let p99 = line.last(10);
        assert_eq!(p99.len(), 3);
        assert!((98_900..=99_100).contains(&p99[0]), "{p99:?}");
        assert_eq!(p99[1], 0, "a second without completions");
        assert!((4_990..=5_010).contains(&p99[2]), "{p99:?}");
        // Far later: the old seconds settle with the same values, the histograms are
        // reused, and only the last asked for are returned.
        line.record(60_000_000, 7_000);
        assert_eq!(line.len(), 61);
        let all = line.last(100);
        assert_eq!(&all[..3], &p99[..]);
        assert!(all[3..60].iter().all(|us| *us == 0));
        assert_eq!(line.last(2).len(), 2);
        assert!((6_990..=7_010).contains(&line.last(1)[0]));
        assert!(line.open.len() <= OPEN_SECONDS, "bounded");
        // A straggler for a settled second changes nothing.
        line.record(500_000, 900_000);
        assert_eq!(line.last(100), all);
    }
}
