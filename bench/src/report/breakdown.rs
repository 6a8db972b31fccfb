//! Where an invocation's time goes, segment by segment: the client's wait beyond the
//! function (the Invoke API and the network to Lambda), Init on a cold start, the proxy's own
//! work, the network from Lambda to the image server, and the server's stages. Each segment is
//! computed per invocation and summarised by its median; what a run file did not record is
//! lumped into one segment that says what it holds.

use crate::model::{Outcome, Sample};

/// One part of an invocation's time, in the order the bar draws them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// Client latency minus Lambda's duration (and Init): signing, the Invoke API, the
    /// network between the client and Lambda.
    ClientOverhead,
    /// Init Duration: the execution environment's start-up on a cold start.
    Init,
    /// Lambda's duration minus its call to the image server: the proxy's own work.
    Proxy,
    /// The proxy's call to the server minus the server's own total: the Lambda-to-EC2
    /// network (and the server's HTTP handling outside its stages).
    Network,
    /// No `ec2_round_trip_ms` in the sample: the proxy's work and the network together.
    ProxyAndNetwork,
    /// No server timings, but the proxy's call: network and server together.
    RoundTripUnsplit,
    /// Neither server timings nor the proxy's call: the whole of Lambda's duration.
    FunctionUnsplit,
    /// No REPORT line at all: only the client's latency is known.
    ClientUnsplit,
    Download,
    Decode,
    Resize,
    Encode,
    S3,
    DynamoDb,
    /// The server's total minus its named stages.
    ServerOther,
}

impl Segment {
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientOverhead => "client − Lambda (Invoke API, network)",
            Self::Init => "Init Duration (cold start)",
            Self::Proxy => "proxy's own time",
            Self::Network => "Lambda → EC2 network",
            Self::ProxyAndNetwork => "proxy + network (not split: no ec2_round_trip_ms)",
            Self::RoundTripUnsplit => "network + server (not split: no server timings)",
            Self::FunctionUnsplit => "Lambda duration (not split: no server timings)",
            Self::ClientUnsplit => "client latency (not split: no REPORT line)",
            Self::Download => "server: download",
            Self::Decode => "server: decode",
            Self::Resize => "server: resize",
            Self::Encode => "server: encode",
            Self::S3 => "server: S3 upload",
            Self::DynamoDb => "server: DynamoDB write",
            Self::ServerOther => "server: other",
        }
    }

    /// Whether this segment holds parts the run file could not tell apart.
    pub fn lumped(self) -> bool {
        matches!(
            self,
            Self::ProxyAndNetwork
                | Self::RoundTripUnsplit
                | Self::FunctionUnsplit
                | Self::ClientUnsplit
        )
    }

    /// The segment's colour, one of its own across bars and reports (more segments than
    /// the charts' palette has entries): the client and Lambda in blues, oranges and reds,
    /// the server's stages in greens, yellows and purples. Lumped segments are drawn grey.
    pub fn colour(self) -> &'static str {
        match self {
            Self::ClientOverhead | Self::ClientUnsplit => "#4e79a7",
            Self::Init => "#f28e2b",
            Self::Proxy | Self::ProxyAndNetwork | Self::FunctionUnsplit => "#e15759",
            Self::Network | Self::RoundTripUnsplit => "#76b7b2",
            Self::Download => "#59a14f",
            Self::Decode => "#8cd17d",
            Self::Resize => "#b6992d",
            Self::Encode => "#f1ce63",
            Self::S3 => "#b07aa1",
            Self::DynamoDb => "#d4a6c8",
            Self::ServerOther => "#9d7660",
        }
    }
}

/// Below this a computed segment is rounding, not time (the server's stages are rounded to
/// 0.01 ms on the wire).
const NEGLIGIBLE_MS: f64 = 0.005;

/// The segments of one invocation, in milliseconds: [`Sample`]'s own split between clocks
/// (as the console draws it), and lumps where the run file lacks a part. Differences that come
/// out negative (clocks of different hosts, rounding) count as zero.
pub fn segments_of(sample: &Sample) -> Vec<(Segment, f64)> {
    let (Some(report), Some(overhead)) = (&sample.lambda, sample.invoke_overhead_ms()) else {
        return vec![(Segment::ClientUnsplit, sample.latency_us() as f64 / 1000.0)];
    };
    let duration = report.duration_ms;
    let mut out = vec![(Segment::ClientOverhead, overhead)];
    if let Some(init) = report.init_duration_ms {
        out.push((Segment::Init, init));
    }
    match (&sample.ec2_ms, sample.ec2_round_trip_ms) {
        (Some(server), _) => {
            match (sample.proxy_own_ms(), sample.lambda_to_ec2_ms()) {
                (Some(proxy), Some(network)) => {
                    out.push((Segment::Proxy, proxy));
                    out.push((Segment::Network, network));
                }
                _ => out.push((Segment::ProxyAndNetwork, (duration - server.total).max(0.0))),
            }
            let stages = [
                (Segment::Download, server.download),
                (Segment::Decode, server.decode),
                (Segment::Resize, server.resize),
                (Segment::Encode, server.encode),
                (Segment::S3, server.s3),
                (Segment::DynamoDb, server.dynamodb),
            ];
            let named: f64 = stages.iter().map(|(_, ms)| ms).sum();
            out.extend(stages);
            let other = server.total - named;
            if other > NEGLIGIBLE_MS {
                out.push((Segment::ServerOther, other));
            }
        }
        (None, Some(round_trip)) => {
            // The REPORT and the proxy's call are both here: its own time is known.
            out.extend(sample.proxy_own_ms().map(|proxy| (Segment::Proxy, proxy)));
            out.push((Segment::RoundTripUnsplit, round_trip));
        }
        (None, None) => out.push((Segment::FunctionUnsplit, duration)),
    }
    out
}

/// One bar of the breakdown: a segment's median over the invocations that have it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMedian {
    pub segment: Segment,
    pub p50_ms: f64,
    /// How many invocations had this segment.
    pub count: u64,
}

/// The breakdown of one group of invocations of a run (its warm ones, or its cold starts).
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// The run's label and the group: `c=4, warm`.
    pub label: String,
    pub invocations: u64,
    pub segments: Vec<SegmentMedian>,
}

impl Breakdown {
    /// Whether some of the time could not be split.
    pub fn has_lumped(&self) -> bool {
        self.segments.iter().any(|s| s.segment.lumped())
    }

    /// The sum of the medians: near the group's client p50, not equal to it (a sum of
    /// medians is not the median of the sums).
    pub fn total_ms(&self) -> f64 {
        self.segments.iter().map(|s| s.p50_ms).sum()
    }
}

/// The median of `values` (nearest rank); `None` for none.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (values.len().div_ceil(2)).clamp(1, values.len());
    Some(values[rank - 1])
}

fn breakdown_of(label: String, samples: &[&Sample]) -> Option<Breakdown> {
    if samples.is_empty() {
        return None;
    }
    let mut by_segment: std::collections::BTreeMap<Segment, Vec<f64>> = Default::default();
    for sample in samples {
        for (segment, ms) in segments_of(sample) {
            by_segment.entry(segment).or_default().push(ms);
        }
    }
    let segments = by_segment
        .into_iter()
        .filter_map(|(segment, mut values)| {
            let count = values.len() as u64;
            let p50_ms = median(&mut values)?;
            Some(SegmentMedian {
                segment,
                p50_ms,
                count,
            })
        })
        .collect();
    Some(Breakdown {
        label,
        invocations: samples.len() as u64,
        segments,
    })
}

/// The breakdowns of a run's successful invocations: the warm ones, and the cold starts
/// apart (their Init would otherwise vanish under a median of mostly warm invocations).
/// Failed invocations are left out: a throttle or a timeout has no stages to show.
pub fn run_breakdowns(label: &str, samples: &[Sample]) -> Vec<Breakdown> {
    let ok: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.outcome == Outcome::Ok)
        .collect();
    let (cold, warm): (Vec<&Sample>, Vec<&Sample>) = ok.into_iter().partition(|s| s.cold_start());
    [
        breakdown_of(format!("{label}, warm"), &warm),
        breakdown_of(format!("{label}, cold starts"), &cold),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{sample, staged_sample};

    fn value(segments: &[(Segment, f64)], wanted: Segment) -> Option<f64> {
        segments
            .iter()
            .find(|(segment, _)| *segment == wanted)
            .map(|&(_, ms)| ms)
    }

    #[test]
    fn a_fully_timed_invocation_splits_into_every_segment() {
        // Client 50 ms, Lambda 40 ms, the call to the server 30 ms, the server 24 ms.
        let segments = segments_of(&staged_sample(0, 50.0));
        let expected = [
            (Segment::ClientOverhead, 10.0),
            (Segment::Proxy, 10.0),
            (Segment::Network, 6.0),
            (Segment::Download, 5.0),
            (Segment::Decode, 3.0),
            (Segment::Resize, 8.0),
            (Segment::Encode, 2.0),
            (Segment::S3, 4.0),
            (Segment::DynamoDb, 2.0),
        ];
        assert_eq!(segments.len(), expected.len(), "{segments:?}");
        for (segment, ms) in expected {
            let got = value(&segments, segment).unwrap_or(f64::NAN);
            assert!((got - ms).abs() < 1e-9, "{segment:?}: {got}");
        }
        // The segments add up to the client latency.
        let sum: f64 = segments.iter().map(|(_, ms)| ms).sum();
        assert!((sum - 50.0).abs() < 1e-9, "{sum}");
        assert!(segments.iter().all(|(segment, _)| !segment.lumped()));
    }

    #[test]
    fn a_cold_start_has_its_init_outside_the_client_overhead() {
        let mut cold = staged_sample(0, 250.0);
        if let Some(report) = cold.lambda.as_mut() {
            report.init_duration_ms = Some(180.0);
        }
        let segments = segments_of(&cold);
        assert_eq!(value(&segments, Segment::Init), Some(180.0));
        assert_eq!(value(&segments, Segment::ClientOverhead), Some(30.0));
    }

    #[test]
    fn what_a_run_file_did_not_record_is_lumped_and_says_so() {
        // An older file: server timings but no round trip.
        let mut older = staged_sample(0, 50.0);
        older.ec2_round_trip_ms = None;
        let segments = segments_of(&older);
        assert_eq!(value(&segments, Segment::ProxyAndNetwork), Some(16.0));
        assert!(value(&segments, Segment::Proxy).is_none());
        assert!(Segment::ProxyAndNetwork.lumped());
        assert!(
            Segment::ProxyAndNetwork
                .name()
                .contains("no ec2_round_trip_ms")
        );

        // No server timings: the whole duration is one lump.
        let bare = sample(0, 12_000, 9.0, false);
        let segments = segments_of(&bare);
        assert_eq!(
            segments,
            [
                (Segment::ClientOverhead, 3.0),
                (Segment::FunctionUnsplit, 9.0)
            ]
        );

        // No REPORT line: only the client.
        let mut throttled = sample(0, 2_000, 1.0, false);
        throttled.lambda = None;
        assert_eq!(segments_of(&throttled), [(Segment::ClientUnsplit, 2.0)]);
    }

    #[test]
    fn a_server_total_beyond_its_stages_shows_as_other() {
        let mut sample = staged_sample(0, 50.0);
        if let Some(server) = sample.ec2_ms.as_mut() {
            server.total = 27.5;
        }
        let segments = segments_of(&sample);
        assert_eq!(value(&segments, Segment::ServerOther), Some(3.5));
        assert_eq!(value(&segments, Segment::Network), Some(2.5));
    }

    #[test]
    fn breakdowns_take_medians_of_ok_invocations_warm_and_cold_apart() {
        let mut samples: Vec<Sample> = [50.0, 60.0, 70.0]
            .iter()
            .enumerate()
            .map(|(i, &ms)| staged_sample(i as u64, ms))
            .collect();
        let mut cold = staged_sample(3, 400.0);
        if let Some(report) = cold.lambda.as_mut() {
            report.init_duration_ms = Some(300.0);
        }
        samples.push(cold);
        let mut failed = staged_sample(4, 5_000.0);
        failed.outcome = Outcome::Timeout;
        samples.push(failed);

        let bars = run_breakdowns("c=2", &samples);
        let labels: Vec<&str> = bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["c=2, warm", "c=2, cold starts"]);
        assert_eq!(bars[0].invocations, 3);
        let overhead = bars[0]
            .segments
            .iter()
            .find(|s| s.segment == Segment::ClientOverhead)
            .map(|s| s.p50_ms);
        // Overheads of 10, 20 and 30 ms: the median is 20.
        assert_eq!(overhead, Some(20.0));
        assert!((bars[0].total_ms() - 60.0).abs() < 1e-9);
        let init = bars[1]
            .segments
            .iter()
            .find(|s| s.segment == Segment::Init)
            .map(|s| (s.p50_ms, s.count));
        assert_eq!(init, Some((300.0, 1)));
        assert!(!bars[0].has_lumped());
        assert!(run_breakdowns("none", &[]).is_empty());
    }

    #[test]
    fn the_median_is_the_nearest_rank() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
    }
}
