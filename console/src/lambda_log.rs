//! What Lambda writes about an invocation: the `REPORT` line (duration, billed duration,
//! memory, init duration of a cold start) and the base64 log tail `Invoke` returns with
//! `LogType: Tail`. Plain parsing, shared by `invoke`, `bench` and `logs`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The fields of one `REPORT RequestId: ...` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub request_id: String,
    pub duration_ms: f64,
    pub billed_duration_ms: f64,
    pub memory_size_mb: u32,
    pub max_memory_used_mb: u32,
    /// Present on the first invocation of an execution environment: a cold start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_duration_ms: Option<f64>,
    /// `timeout` or `error` when the platform ended the invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Report {
    pub fn cold_start(&self) -> bool {
        self.init_duration_ms.is_some()
    }

    /// Parses a `REPORT` line; `None` for any other line. Fields are tab-separated `Name:
    /// value unit` pairs; unknown fields (X-Ray's, say) are ignored.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim_end().strip_prefix("REPORT ")?;
        let mut report = Self {
            request_id: String::new(),
            duration_ms: f64::NAN,
            billed_duration_ms: f64::NAN,
            memory_size_mb: 0,
            max_memory_used_mb: 0,
            init_duration_ms: None,
            status: None,
        };
        for field in rest.split('\t') {
            let Some((name, value)) = field.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let number = || {
                value
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
            };
            match name.trim() {
                "RequestId" => report.request_id = value.to_owned(),
                "Duration" => report.duration_ms = number()?,
                "Billed Duration" => report.billed_duration_ms = number()?,
                "Memory Size" => report.memory_size_mb = number()? as u32,
                "Max Memory Used" => report.max_memory_used_mb = number()? as u32,
                "Init Duration" => report.init_duration_ms = Some(number()?),
                "Status" => report.status = Some(value.to_owned()),
                _ => {}
            }
        }
        let complete = !report.request_id.is_empty()
            && report.duration_ms.is_finite()
            && report.billed_duration_ms.is_finite();
        complete.then_some(report)
    }
}

/// Decodes the `LogResult` of an `Invoke` with `LogType: Tail` (base64 of the last 4 KB of
/// the invocation's log) into its text; invalid base64 gives `None`.
pub fn decode_tail(log_result: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(log_result.trim())
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `REPORT` line of a decoded tail, if the tail reaches it.
pub fn report_of_tail(tail: &str) -> Option<Report> {
    tail.lines().rev().find_map(Report::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_report_line_parses() {
        let line = "REPORT RequestId: 8f5d-11\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t";
        let report = Report::parse(line).expect("a REPORT line");
        assert_eq!(report.request_id, "8f5d-11");
        assert_eq!(report.duration_ms, 12.35);
        assert_eq!(report.billed_duration_ms, 13.0);
        assert_eq!(report.memory_size_mb, 128);
        assert_eq!(report.max_memory_used_mb, 20);
        assert!(!report.cold_start());
        assert_eq!(report.status, None);
    }

    #[test]
    fn a_cold_report_line_has_its_init_duration_and_a_status() {
        let line = "REPORT RequestId: r\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 256 MB\tMax Memory Used: 31 MB\tInit Duration: 41.17 ms\tStatus: timeout\n";
        let report = Report::parse(line).expect("a REPORT line");
        assert_eq!(report.init_duration_ms, Some(41.17));
        assert!(report.cold_start());
        assert_eq!(report.status.as_deref(), Some("timeout"));
    }

    #[test]
    fn other_lines_and_broken_reports_are_not_reports() {
        assert_eq!(Report::parse("START RequestId: r Version: $LATEST"), None);
        assert_eq!(Report::parse("REPORT RequestId: r\tDuration: soon"), None);
        assert_eq!(
            Report::parse("REPORT Duration: 1 ms\tBilled Duration: 1 ms"),
            None
        );
    }

    #[test]
    fn the_tail_decodes_and_its_last_report_is_found() {
        let text = "START RequestId: a Version: $LATEST\nhello\nEND RequestId: a\nREPORT RequestId: a\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        let tail = decode_tail(&encoded).expect("base64");
        assert_eq!(tail, text);
        let report = report_of_tail(&tail).expect("a REPORT line");
        assert_eq!(report.request_id, "a");
        assert_eq!(report.duration_ms, 1.5);
        assert_eq!(decode_tail("not base64!"), None);
    }
}
