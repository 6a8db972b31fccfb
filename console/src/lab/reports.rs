//! The `REPORT` lines of a function's invocations, read back from its CloudWatch log group
//! over a time window: what `bench --upload --memory` measures the resizer by, since the S3
//! event, not the bench, invokes it and no log tail comes back. CloudWatch delivers log
//! events seconds after they are written on AWS, so the reader waits (bounded) until it has as
//! many as there were invocations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata as _;
use hybridlab_wire::report::Report;
use tokio::time::Instant;

use super::Lab;

/// How long the reader waits for CloudWatch to deliver the lines it expects.
pub const DELIVERY_PATIENCE: Duration = Duration::from_secs(60);
/// The pause between two reads while waiting (FilterLogEvents allows 5 calls a second).
const READ_EVERY: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch now, CloudWatch's timestamps.
pub fn epoch_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// The REPORT lines the group got since `since_ms` whose memory size is `memory_mb`: until
/// there are at least `expected`, or [`DELIVERY_PATIENCE`] has passed (then those there are).
pub async fn reports_since(
    lab: &Lab,
    group: &str,
    since_ms: i64,
    memory_mb: u32,
    expected: usize,
) -> anyhow::Result<Vec<Report>> {
    let deadline = Instant::now() + DELIVERY_PATIENCE;
    loop {
        let reports: Vec<Report> = read_reports(lab, group, since_ms)
            .await?
            .into_iter()
            .filter(|report| report.memory_size_mb == memory_mb)
            .collect();
        if reports.len() >= expected || Instant::now() >= deadline {
            return Ok(reports);
        }
        tokio::time::sleep(READ_EVERY).await;
    }
}

/// Every REPORT line of `group` from `since_ms` on, every page of them.
async fn read_reports(lab: &Lab, group: &str, since_ms: i64) -> anyhow::Result<Vec<Report>> {
    let mut pages = lab
        .clients
        .logs
        .filter_log_events()
        .log_group_name(group)
        .start_time(since_ms)
        .into_paginator()
        .send();
    let mut reports = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            // No invocation has written to it yet.
            Err(err) if err.code() == Some("ResourceNotFoundException") => return Ok(reports),
            Err(err) => {
                return Err(lab.explain(
                    "logs:FilterLogEvents",
                    &format!("the log group {group}"),
                    err,
                ));
            }
        };
        reports.extend(
            page.events()
                .iter()
                .filter_map(|event| event.message())
                .filter_map(Report::parse),
        );
    }
    Ok(reports)
}
