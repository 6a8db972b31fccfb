//! A memory sweep's arithmetic, as aws-lambda-power-tuning does it: per configured memory, the
//! function's duration and its cost per invocation from the REPORT lines, and the cheapest,
//! fastest and balanced memory of the sweep. Plain functions over numbers; the bench sets the
//! memory and runs the levels.

use hybridlab_wire::report::Report;
use serde::{Deserialize, Serialize};

use crate::stats::{PRICE_PER_GB_SECOND_USD, PRICE_PER_MILLION_REQUESTS_USD};

pub use hybridlab_wire::lambda_cpu::ONE_VCPU_MB;

/// The memory sizes Lambda accepts, in MB.
pub const MIN_MEMORY_MB: u32 = 128;
pub const MAX_MEMORY_MB: u32 = 10_240;

/// The share of one vCPU Lambda gives `memory_mb` (1.0 at 1,769 MB, 6 vCPUs at 10,240 MB).
pub fn vcpus_of(memory_mb: u32) -> f64 {
    f64::from(memory_mb) / f64::from(ONE_VCPU_MB)
}

/// Checks a `--memory` list: each size within what Lambda accepts, none repeated.
pub fn check_levels(levels: &[u32]) -> Result<(), String> {
    if levels.is_empty() {
        return Err("give at least one memory size in MB, e.g. 128,256,512,1024,1769".into());
    }
    for (at, &level) in levels.iter().enumerate() {
        if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&level) {
            return Err(format!(
                "{level} MB is outside what Lambda accepts ({MIN_MEMORY_MB} to {MAX_MEMORY_MB} MB)"
            ));
        }
        if levels[..at].contains(&level) {
            return Err(format!("{level} MB is given twice"));
        }
    }
    Ok(())
}

/// One memory size of a sweep, from the REPORT lines of its measured invocations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPoint {
    pub memory_mb: u32,
    /// Invocations with a REPORT line.
    pub invocations: u64,
    /// Invocations that did not succeed, whatever the reason.
    pub errors: u64,
    /// Lambda's `Duration`.
    pub duration_mean_ms: f64,
    pub duration_p50_ms: f64,
    pub duration_p99_ms: f64,
    pub billed_mean_ms: f64,
    /// Compute (GB-seconds of billed duration) plus the request charge, at list prices.
    pub cost_per_invocation_usd: f64,
}

/// The sweep's point for `memory_mb` from its invocations' REPORT lines; `None` without any.
pub fn point(memory_mb: u32, reports: &[Report], errors: u64) -> Option<MemoryPoint> {
    if reports.is_empty() {
        return None;
    }
    let mut durations: Vec<f64> = reports.iter().map(|report| report.duration_ms).collect();
    durations.sort_by(f64::total_cmp);
    let count = reports.len() as f64;
    let billed_mean_ms = reports
        .iter()
        .map(|report| report.billed_duration_ms)
        .sum::<f64>()
        / count;
    Some(MemoryPoint {
        memory_mb,
        invocations: reports.len() as u64,
        errors,
        duration_mean_ms: durations.iter().sum::<f64>() / count,
        duration_p50_ms: nearest_rank(&durations, 0.50),
        duration_p99_ms: nearest_rank(&durations, 0.99),
        billed_mean_ms,
        cost_per_invocation_usd: cost_per_invocation(memory_mb, billed_mean_ms),
    })
}

/// List-price cost of one invocation of `billed_ms` at `memory_mb`.
pub fn cost_per_invocation(memory_mb: u32, billed_ms: f64) -> f64 {
    f64::from(memory_mb) / 1024.0 * billed_ms / 1000.0 * PRICE_PER_GB_SECOND_USD
        + PRICE_PER_MILLION_REQUESTS_USD / 1e6
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The sweep's picks, as aws-lambda-power-tuning names them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Picks {
    /// The lowest cost per invocation (ties: the faster).
    pub cheapest_mb: u32,
    /// The lowest mean duration (ties: the cheaper).
    pub fastest_mb: u32,
    /// The lowest of cost and duration each divided by its sweep maximum, weighted equally
    /// (power-tuning's "balanced" strategy with its default weight 0.5).
    pub balanced_mb: u32,
}

/// The picks among the points without errors; `None` when every point had errors.
pub fn picks(points: &[MemoryPoint]) -> Option<Picks> {
    let clean: Vec<&MemoryPoint> = points.iter().filter(|point| point.errors == 0).collect();
    let max_cost = clean
        .iter()
        .map(|point| point.cost_per_invocation_usd)
        .fold(0.0, f64::max);
    let max_duration = clean
        .iter()
        .map(|point| point.duration_mean_ms)
        .fold(0.0, f64::max);
    let normalised = |value: f64, max: f64| if max > 0.0 { value / max } else { 0.0 };
    let best = |key: &dyn Fn(&MemoryPoint) -> (f64, f64)| {
        clean
            .iter()
            .min_by(|a, b| {
                let (a, b) = (key(a), key(b));
                a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
            })
            .map(|point| point.memory_mb)
    };
    Some(Picks {
        cheapest_mb: best(&|p| (p.cost_per_invocation_usd, p.duration_mean_ms))?,
        fastest_mb: best(&|p| (p.duration_mean_ms, p.cost_per_invocation_usd))?,
        balanced_mb: best(&|p| {
            (
                0.5 * normalised(p.cost_per_invocation_usd, max_cost)
                    + 0.5 * normalised(p.duration_mean_ms, max_duration),
                p.cost_per_invocation_usd,
            )
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(duration_ms: f64, memory_mb: u32) -> Report {
        Report {
            request_id: "r".into(),
            duration_ms,
            billed_duration_ms: duration_ms.ceil(),
            memory_size_mb: memory_mb,
            max_memory_used_mb: 40,
            init_duration_ms: None,
            status: None,
            error_type: None,
        }
    }

    fn point_at(memory_mb: u32, duration_ms: f64) -> MemoryPoint {
        point(memory_mb, &[report(duration_ms, memory_mb)], 0).expect("a point")
    }

    #[test]
    fn a_point_costs_its_billed_gb_seconds_and_its_request() {
        let reports = [report(99.2, 512), report(200.5, 512), report(300.0, 512)];
        let point = point(512, &reports, 1).expect("a point");
        assert_eq!(point.invocations, 3);
        assert_eq!(point.errors, 1);
        assert_eq!(point.duration_p50_ms, 200.5);
        assert_eq!(point.duration_p99_ms, 300.0);
        assert!((point.billed_mean_ms - 200.333_333).abs() < 1e-3);
        // 0.5 GB for 0.2003 s, plus $0.20 per million requests.
        let expected = 0.5 * 0.200_333_333 * PRICE_PER_GB_SECOND_USD + 0.2e-6;
        assert!((point.cost_per_invocation_usd - expected).abs() < 1e-12);
        assert!(super::point(512, &[], 0).is_none());
    }

    #[test]
    fn the_picks_are_power_tunings() {
        // Duration falls a little faster than memory grows up to 1 GB, then barely falls: the
        // cost falls, then nearly doubles.
        let points = [
            point_at(128, 900.0),
            point_at(256, 420.0),
            point_at(512, 210.0),
            point_at(1024, 100.0),
            point_at(2048, 95.0),
        ];
        let picks = picks(&points).expect("picks");
        assert_eq!(picks.fastest_mb, 2048);
        assert_eq!(picks.cheapest_mb, 1024);
        assert_eq!(picks.balanced_mb, 1024);
        // Balanced weighs both: at 2,048 MB the cost is the sweep's highest, and at 128 MB the
        // duration is.
        let slow_and_cheap = [point_at(128, 700.0), point_at(2048, 50.0)];
        assert_eq!(
            super::picks(&slow_and_cheap).expect("picks").cheapest_mb,
            128
        );
    }

    #[test]
    fn points_with_errors_are_never_picked() {
        let mut failing = point_at(1024, 10.0);
        failing.errors = 2;
        let points = [point_at(128, 800.0), failing];
        let picks = picks(&points).expect("picks");
        assert_eq!(
            (picks.cheapest_mb, picks.fastest_mb, picks.balanced_mb),
            (128, 128, 128)
        );
        failing = point_at(256, 1.0);
        failing.errors = 1;
        assert!(super::picks(&[failing]).is_none());
    }

    #[test]
    fn levels_are_checked_against_lambdas_limits() {
        assert!(check_levels(&[128, 256, 1769]).is_ok());
        assert!(check_levels(&[]).is_err());
        assert!(
            check_levels(&[64])
                .expect_err("below the minimum")
                .contains("128 to 10240")
        );
        assert!(
            check_levels(&[256, 256])
                .expect_err("a repeat")
                .contains("twice")
        );
        assert!((vcpus_of(1769) - 1.0).abs() < 1e-12);
        assert!((vcpus_of(10_240) - 5.788).abs() < 1e-3);
    }
}
