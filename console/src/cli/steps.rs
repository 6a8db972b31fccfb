//! An `up`'s or a `down`'s steps as they happen, printed as lines with the time since the
//! command started, or as JSON lines (`--json`).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use hybridlab_provision::stack::{Reporter, StepEvent, StepStatus};
use serde_json::json;

/// Prints events as lines (or JSON lines), with the time since the command started; with
/// `--quiet`, only the failures.
pub fn printer(json: bool) -> Reporter {
    let quiet = super::output::quiet();
    let started = Instant::now();
    Arc::new(move |event: StepEvent| {
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", json!({"type": "step", "event": event}));
            return;
        }
        if quiet && event.status != StepStatus::Failed {
            return;
        }
        let mark = match event.status {
            StepStatus::Started => "..",
            StepStatus::Waiting => "~~",
            StepStatus::Done => "ok",
            StepStatus::Skipped => "==",
            StepStatus::Failed => "!!",
        };
        let clock = started.elapsed().as_secs_f64();
        let took = match event.status {
            StepStatus::Started => String::new(),
            _ => format!(" ({:.2}s)", event.elapsed().as_secs_f64()),
        };
        let _ = writeln!(
            out,
            "[{clock:7.2}s] {mark} {:<22} {}{}{took}",
            event.step,
            event.resource,
            if event.detail.is_empty() {
                String::new()
            } else {
                format!("  {}", event.detail)
            },
        );
    })
}
