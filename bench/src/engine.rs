//! Issuing invocations and recording them. A closed loop keeps `concurrency` invocations in
//! flight; an open loop sends on a fixed schedule whatever the answers do and measures each
//! latency from the time the schedule meant to send it, so a stall is charged to every
//! invocation it delayed (coordinated omission corrected, as wrk2 does).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::sync::Semaphore;
// tokio's clock, so tests can run the engine on paused time.
use tokio::time::Instant;

use crate::invocation::Invocation;
use crate::model::{LoadShape, Outcome, Sample};

/// What to send and when to stop.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub shape: LoadShape,
    /// Stop after this many measured invocations...
    pub requests: Option<u64>,
    /// ...or once this much time has passed (no new invocation starts after it).
    pub duration: Option<Duration>,
    /// Invocations sent first, at the same concurrency, and not recorded.
    pub warmup: u64,
    /// Cycled through in order.
    pub payloads: Vec<Bytes>,
}

impl BenchPlan {
    fn payload(&self, seq: u64) -> Bytes {
        if self.payloads.is_empty() {
            return Bytes::from_static(b"{}");
        }
        self.payloads[(seq % self.payloads.len() as u64) as usize].clone()
    }

    /// Whether invocation `seq`, due at `due` after the start, is still part of the run.
    fn admits(&self, seq: u64, due: Duration) -> bool {
        self.requests.is_none_or(|n| seq < n) && self.duration.is_none_or(|d| due < d)
    }
}

/// Counters a progress display reads while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub warming: AtomicBool,
    /// Set to stop issuing; invocations in flight still finish and are recorded.
    pub stop: AtomicBool,
    /// Receives a copy of each measured sample as it completes (the console plots them live).
    pub live: Option<tokio::sync::mpsc::UnboundedSender<Sample>>,
    /// Why the run stopped before its end when preparing an invocation failed
    /// ([`Invoke::prepare`]); the first failure, once.
    pub halted: std::sync::OnceLock<String>,
}

/// Anything that can perform one invocation: the SDK in real use, a closure in tests.
pub trait Invoke: Clone + Send + Sync + 'static {
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Invocation> + Send;

    /// Runs before invocation `seq` of a closed loop, before its send time is taken, so what
    /// it does is no part of the invocation's measured time (`bench --cold` changes the
    /// function's configuration here and waits for the update, to make the invocation a cold
    /// start). An error stops the run, as Ctrl-C does, and is kept in [`Progress::halted`].
    /// Open loops never call it: their schedule, not the last answer, sets each send time.
    fn prepare(&self, seq: u64) -> impl Future<Output = Result<(), String>> + Send {
        let _ = seq;
        async { Ok(()) }
    }
}

fn micros(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

fn sample(
    seq: u64,
    start: Instant,
    intended: Instant,
    sent: Instant,
    invocation: Invocation,
) -> Sample {
    let done = Instant::now();
    Sample {
        seq,
        intended_us: micros(start, intended),
        sent_us: micros(start, sent),
        done_us: micros(start, done),
        outcome: invocation.outcome,
        lambda: invocation.report,
        ec2_ms: invocation.ec2_ms,
        ec2_round_trip_ms: invocation.ec2_round_trip_ms,
        error: invocation.error,
    }
}

/// Runs the warm-up, then the measured invocations; returns the samples in order of issue.
pub async fn run<I: Invoke>(invoker: I, plan: &BenchPlan, progress: Arc<Progress>) -> Vec<Sample> {
    if plan.warmup > 0 {
        progress.warming.store(true, Ordering::Relaxed);
        let warmup = BenchPlan {
            shape: LoadShape::Closed {
                concurrency: plan.shape.concurrency().min(plan.warmup as usize).max(1),
            },
            requests: Some(plan.warmup),
            duration: None,
            warmup: 0,
            payloads: plan.payloads.clone(),
        };
        let warming = Arc::new(Progress::default());
        closed_loop(invoker.clone(), &warmup, warming.clone()).await;
        progress.warming.store(false, Ordering::Relaxed);
        if let Some(reason) = warming.halted.get() {
            let _ = progress.halted.set(format!("warming up: {reason}"));
            return Vec::new();
        }
    }
    let mut samples = match plan.shape {
        LoadShape::Closed { .. } => closed_loop(invoker, plan, progress).await,
        LoadShape::Open { .. } => open_loop(invoker, plan, progress).await,
    };
    samples.sort_by_key(|sample| sample.seq);
    samples
}

fn record(progress: &Progress, sample: &Sample) {
    progress.done.fetch_add(1, Ordering::Relaxed);
    if sample.outcome != Outcome::Ok {
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(live) = &progress.live {
        let _ = live.send(sample.clone());
    }
}

async fn closed_loop<I: Invoke>(
    invoker: I,
    plan: &BenchPlan,
    progress: Arc<Progress>,
) -> Vec<Sample> {
    let concurrency = plan.shape.concurrency().max(1);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let invoker = invoker.clone();
        let next = next.clone();
        let progress = progress.clone();
        async move {
            let mut samples = Vec::new();
            loop {
                if progress.stop.load(Ordering::Relaxed) {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if !plan.admits(seq, Instant::now() - start) {
                    break;
                }
                if let Err(reason) = invoker.prepare(seq).await {
                    let _ = progress
                        .halted
                        .set(format!("preparing invocation {seq} failed: {reason}"));
                    progress.stop.store(true, Ordering::Relaxed);
                    break;
                }
                // A Ctrl-C while preparing: the invocation is not sent.
                if progress.stop.load(Ordering::Relaxed) {
                    break;
                }
                let sent = Instant::now();
                let invocation = invoker.invoke(plan.payload(seq)).await;
                let sample = sample(seq, start, sent, sent, invocation);
                record(&progress, &sample);
                samples.push(sample);
            }
            samples
        }
    });
    // The workers are polled by this task rather than spawned: at thousands of invocations a
    // second, one task driving them all costs less than the wake-ups of many.
    let mut finished = Vec::with_capacity(concurrency);
    let mut workers: FuturesUnordered<_> = workers.collect();
    while let Some(samples) = workers.next().await {
        finished.push(samples);
    }
    // Joined only now: copying hundreds of thousands of samples while other workers still
    // wait for answers would delay their completion times, and so their latencies.
    finished.concat()
}

async fn open_loop<I: Invoke>(
    invoker: I,
    plan: &BenchPlan,
    progress: Arc<Progress>,
) -> Vec<Sample> {
    let LoadShape::Open {
        rate,
        max_in_flight,
    } = plan.shape
    else {
        return Vec::new();
    };
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    // Reserved once, up to a million: a growing vector copied between two sends would delay
    // the second.
    let scheduled = [
        plan.requests,
        plan.duration
            .map(|duration| (duration.as_secs_f64() * rate).ceil() as u64),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(0);
    const MOST_RESERVED: u64 = 1_000_000;
    let mut samples = Vec::with_capacity(scheduled.min(MOST_RESERVED) as usize);
    let mut seq = 0u64;
    loop {
        let due = interval.mul_f64(seq as f64);
        if !plan.admits(seq, due) || progress.stop.load(Ordering::Relaxed) {
            break;
        }
        let intended = start + due;
        tokio::time::sleep_until(intended).await;
        // Waiting for a permit delays the send, and the delay is part of the latency: the
        // sample keeps its intended time.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        while let Some(Ok(sample)) = in_flight.try_join_next() {
            samples.push(sample);
        }
        let invoker = invoker.clone();
        let payload = plan.payload(seq);
        let progress = progress.clone();
        let this = seq;
        in_flight.spawn(async move {
            let sent = Instant::now();
            let invocation = invoker.invoke(payload).await;
            drop(permit);
            let sample = sample(this, start, intended, sent, invocation);
            record(&progress, &sample);
            sample
        });
        seq += 1;
    }
    while let Some(result) = in_flight.join_next().await {
        if let Ok(sample) = result {
            samples.push(sample);
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An invoker that takes a fixed time per call, except that calls listed in `stall`
    /// (by order of arrival) take `stall_for`; it records the highest concurrency it saw.
    #[derive(Clone)]
    struct Fake {
        takes: Duration,
        stall: Arc<Vec<u64>>,
        stall_for: Duration,
        calls: Arc<AtomicU64>,
        active: Arc<AtomicU64>,
        peak: Arc<AtomicU64>,
        payloads: Arc<Mutex<Vec<Bytes>>>,
        /// How long each `prepare` takes, and the one (by sequence number) that fails.
        prepare_takes: Duration,
        prepare_fails_at: Option<u64>,
        /// `prepare <seq>` and `invoke` in the order they happened.
        events: Arc<Mutex<Vec<String>>>,
    }

    impl Fake {
        fn new(takes: Duration) -> Self {
            Self {
                takes,
                stall: Arc::new(Vec::new()),
                stall_for: Duration::ZERO,
                calls: Arc::default(),
                active: Arc::default(),
                peak: Arc::default(),
                payloads: Arc::default(),
                prepare_takes: Duration::ZERO,
                prepare_fails_at: None,
                events: Arc::default(),
            }
        }

        fn note(&self, event: String) {
            if let Ok(mut events) = self.events.lock() {
                events.push(event);
            }
        }
    }

    impl Invoke for Fake {
        fn invoke(&self, payload: Bytes) -> impl Future<Output = Invocation> + Send {
            let this = self.clone();
            async move {
                this.note("invoke".into());
                let call = this.calls.fetch_add(1, Ordering::SeqCst);
                let now = this.active.fetch_add(1, Ordering::SeqCst) + 1;
                this.peak.fetch_max(now, Ordering::SeqCst);
                if let Ok(mut payloads) = this.payloads.lock() {
                    payloads.push(payload);
                }
                let takes = if this.stall.contains(&call) {
                    this.stall_for
                } else {
                    this.takes
                };
                tokio::time::sleep(takes).await;
                this.active.fetch_sub(1, Ordering::SeqCst);
                Invocation {
                    outcome: if call % 10 == 9 {
                        Outcome::Throttled
                    } else {
                        Outcome::Ok
                    },
                    round_trip_ms: takes.as_secs_f64() * 1000.0,
                    status_code: Some(200),
                    function_error: None,
                    response: None,
                    body: None,
                    report: None,
                    ec2_ms: None,
                    ec2_round_trip_ms: None,
                    log_tail: None,
                    error: None,
                }
            }
        }

        fn prepare(&self, seq: u64) -> impl Future<Output = Result<(), String>> + Send {
            let this = self.clone();
            async move {
                this.note(format!("prepare {seq}"));
                tokio::time::sleep(this.prepare_takes).await;
                match this.prepare_fails_at {
                    Some(at) if at == seq => Err("the update failed".into()),
                    _ => Ok(()),
                }
            }
        }
    }

    fn plan(shape: LoadShape, requests: u64) -> BenchPlan {
        BenchPlan {
            shape,
            requests: Some(requests),
            duration: None,
            warmup: 0,
            payloads: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_keeps_exactly_its_concurrency_and_records_every_call() {
        let fake = Fake::new(Duration::from_millis(10));
        let progress = Arc::new(Progress::default());
        let mut plan = plan(LoadShape::Closed { concurrency: 4 }, 40);
        plan.warmup = 8;
        let samples = run(fake.clone(), &plan, progress.clone()).await;
        assert_eq!(samples.len(), 40);
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            48,
            "warm-up calls are made"
        );
        assert_eq!(fake.peak.load(Ordering::SeqCst), 4);
        assert_eq!(progress.done.load(Ordering::SeqCst), 40);
        assert!(samples.iter().enumerate().all(|(i, s)| s.seq == i as u64));
        // 40 calls of 10 ms, 4 at a time: 100 ms of (paused, exact) time.
        let last = samples.iter().map(|s| s.done_us).max().expect("samples");
        assert_eq!(last, 100_000);
        assert!(samples.iter().all(|s| s.latency_us() == 10_000));
        let payloads = fake.payloads.lock().expect("payloads");
        assert_eq!(payloads[8], Bytes::from_static(b"a"));
        assert_eq!(payloads[9], Bytes::from_static(b"b"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_charges_a_stall_to_every_invocation_it_delays() {
        // 100/s for 1 s with at most one in flight; call 10 stalls for 500 ms. The next 49
        // invocations should have been sent during the stall: their latency counts the wait.
        let mut fake = Fake::new(Duration::from_millis(1));
        fake.stall = Arc::new(vec![10]);
        fake.stall_for = Duration::from_millis(500);
        let plan = plan(
            LoadShape::Open {
                rate: 100.0,
                max_in_flight: 1,
            },
            100,
        );
        let samples = run(fake.clone(), &plan, Arc::new(Progress::default())).await;
        assert_eq!(samples.len(), 100);
        assert_eq!(fake.peak.load(Ordering::SeqCst), 1);
        assert_eq!(samples[10].latency_us(), 500_000);
        // Invocation 11 was due 10 ms after 10 and could only leave 490 ms later.
        assert_eq!(samples[11].intended_us, 110_000);
        assert_eq!(samples[11].sent_us, 600_000);
        assert_eq!(samples[11].latency_us(), 491_000);
        assert_eq!(samples[11].service_us(), 1_000);
        // The backlog then drains one call per millisecond while the schedule moves on by
        // ten: call k leaves at 600 + (k - 11) ms and is late until about k = 65. A closed
        // loop would have reported one slow call; here 54 take more than 20 ms.
        assert_eq!(samples[30].sent_us, 619_000);
        assert_eq!(samples[30].latency_us(), 320_000);
        let slow = samples.iter().filter(|s| s.latency_us() > 20_000).count();
        assert_eq!(slow, 54);
        let throttled = samples
            .iter()
            .filter(|s| s.outcome == Outcome::Throttled)
            .count();
        assert_eq!(throttled, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_duration_limit_stops_issuing() {
        let fake = Fake::new(Duration::from_millis(10));
        let mut plan = plan(LoadShape::Closed { concurrency: 2 }, 1_000_000);
        plan.requests = None;
        plan.duration = Some(Duration::from_millis(95));
        let samples = run(fake, &plan, Arc::new(Progress::default())).await;
        // 2 workers, one call each per 10 ms, none started at or after 95 ms.
        assert_eq!(samples.len(), 20);
        assert!(samples.iter().all(|s| s.sent_us < 95_000));
    }

    #[tokio::test(start_paused = true)]
    async fn prepare_runs_before_each_invocation_outside_its_measured_time() {
        let mut fake = Fake::new(Duration::from_millis(10));
        fake.prepare_takes = Duration::from_millis(50);
        let progress = Arc::new(Progress::default());
        let samples = run(
            fake.clone(),
            &plan(LoadShape::Closed { concurrency: 1 }, 4),
            progress.clone(),
        )
        .await;
        assert_eq!(samples.len(), 4);
        let events = fake.events.lock().expect("events").clone();
        assert_eq!(
            events,
            [
                "prepare 0",
                "invoke",
                "prepare 1",
                "invoke",
                "prepare 2",
                "invoke",
                "prepare 3",
                "invoke"
            ]
        );
        // Each invocation is measured from after its preparation: 10 ms, not 60.
        assert!(samples.iter().all(|s| s.latency_us() == 10_000));
        let sent: Vec<u64> = samples.iter().map(|s| s.sent_us).collect();
        assert_eq!(sent, [50_000, 110_000, 170_000, 230_000]);
        assert!(progress.halted.get().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_preparation_stops_the_run_and_says_why() {
        let mut fake = Fake::new(Duration::from_millis(10));
        fake.prepare_fails_at = Some(2);
        let progress = Arc::new(Progress::default());
        let samples = run(
            fake.clone(),
            &plan(LoadShape::Closed { concurrency: 1 }, 10),
            progress.clone(),
        )
        .await;
        assert_eq!(samples.len(), 2, "invocations 0 and 1 only");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        let halted = progress.halted.get().expect("the reason is kept");
        assert!(halted.contains("invocation 2") && halted.contains("the update failed"));
    }
}
