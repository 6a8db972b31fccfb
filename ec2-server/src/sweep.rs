//! The stale-row sweep: an upload's row that nothing will finish is marked `FAILED`, so no
//! row waits forever. A presigned URL may never be used, an object may arrive without its event
//! being delivered, or the resizer may die (timeout, out of memory) and its retries run out;
//! each leaves a row `PENDING` or `PROCESSING` that no program would touch again.
//!
//! The timeout ([`ServerConfig::stale_after_seconds`], 30 minutes by default) is the longest
//! honest wait plus a margin: a browser may start its PUT at the last second of the presigned
//! URL's 15 minutes ([`ServerConfig::presign_seconds`]; start-up refuses a timeout that does not
//! exceed it), S3 delivers the event within seconds, and Lambda retries a failed asynchronous
//! invocation twice, about 1 and 2 minutes apart, each attempt bounded by the resizer's
//! timeout. A `PROCESSING` row is judged from the end of its lease (the attempt's deadline),
//! so an attempt still allowed to run is never failed under it. Each change is conditional
//! (`hybridlab_wire::transition::expire`): a row the resizer moved on meanwhile is left alone,
//! and a late event for a row failed here finds it no longer `PENDING` and writes nothing.
//!
//! The server runs it because it is the one long-lived program of a stack; it needs only the
//! `dynamodb:Scan` and `dynamodb:UpdateItem` its role already has. Each pass reads at most
//! [`MAX_ROWS_PER_SWEEP`] rows, in pages, and runs every [`interval`] (a minute at most).

use std::time::Duration;

use hybridlab_wire::transition::expire;
use time::OffsetDateTime;

use crate::AppState;
use crate::config::ServerConfig;
use crate::storage::{ImageStore, StorageError};

/// The most rows one pass scans, so a pass costs a bounded read however large the table is.
pub const MAX_ROWS_PER_SWEEP: usize = 1_000;

/// How often the sweep runs: a quarter of the timeout, between 1 s and 60 s, so a row is failed
/// at most a quarter late.
pub fn interval(config: &ServerConfig) -> Duration {
    Duration::from_secs(config.stale_after_seconds / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Unfinished rows looked at.
    pub candidates: usize,
    /// Rows marked FAILED.
    pub failed: usize,
}

/// One pass at `now`: every `PENDING` row unchanged for `stale_after`, and every `PROCESSING`
/// row whose lease ended `stale_after` ago, becomes `FAILED` with the reason.
pub async fn sweep_once(
    store: &ImageStore,
    stale_after: Duration,
    now: OffsetDateTime,
) -> Result<SweepReport, StorageError> {
    let ids = store.unfinished_ids(MAX_ROWS_PER_SWEEP).await?;
    let cutoff = now - stale_after;
    let pending_before = hybridlab_wire::rfc3339(cutoff);
    let at = hybridlab_wire::rfc3339(now);
    let reason = format!(
        "nothing finished this upload within {} s: its object never arrived, or the resizer \
         stopped and was not retried",
        stale_after.as_secs()
    );
    let mut report = SweepReport {
        candidates: ids.len(),
        failed: 0,
    };
    for id in ids {
        let update = expire(&reason, &at, &pending_before, cutoff.unix_timestamp());
        if store.transition(&id, update).await? {
            tracing::warn!(image_id = %id, "an unfinished upload was marked FAILED by the sweep");
            report.failed += 1;
        }
    }
    Ok(report)
}

/// Sweeps every [`interval`] until the task is aborted; does nothing on a stack without the
/// pipeline, where no row is ever `PENDING`. A failed pass is logged and the next one tries
/// again.
pub async fn run(state: AppState) {
    if state.pipeline_buckets().is_none() {
        return;
    }
    let stale_after = Duration::from_secs(state.config().stale_after_seconds);
    let mut ticks = tokio::time::interval(interval(state.config()));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = sweep_once(state.store(), stale_after, OffsetDateTime::now_utc()).await {
            tracing::error!(error = %err, "the stale-row sweep failed; trying again later");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_a_quarter_of_the_timeout_within_bounds() {
        let mut config = ServerConfig::new("b", "t");
        assert_eq!(interval(&config), Duration::from_secs(60));
        config.stale_after_seconds = 8;
        assert_eq!(interval(&config), Duration::from_secs(2));
        config.stale_after_seconds = 1;
        assert_eq!(interval(&config), Duration::from_secs(1));
    }
}
