//! What Lambda writes about an invocation: the `REPORT` line (duration, billed duration,
//! memory, init duration of a cold start) and the base64 log tail `Invoke` returns with
//! `LogType: Tail`. The sandbox writes both ([`Report::line`], [`encode_tail`]); `invoke`,
//! `bench` and `logs` read them ([`Report::parse`], [`decode_tail`]): one module, both sides.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// How much of an invocation's log `Invoke` with `LogType: Tail` returns: the last 4 KB.
pub const TAIL_BYTES: usize = 4096;

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
    /// Why the platform ended it (`Runtime.ExitError`), after `Status: error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Report {
    /// The report of an invocation that ran for `duration` after an init of `init` (a cold
    /// start). Billed Duration is rounded up to the millisecond and, for `provided` runtimes,
    /// includes the init phase, which AWS bills for them.
    pub fn measured(
        request_id: &str,
        duration: Duration,
        init: Option<Duration>,
        memory_size_mb: u32,
        max_memory_used_mb: u32,
    ) -> Self {
        let billed = (ms(duration) + init.map_or(0.0, ms)).ceil().max(1.0);
        Self {
            request_id: request_id.to_owned(),
            duration_ms: ms(duration),
            billed_duration_ms: billed,
            memory_size_mb,
            max_memory_used_mb,
            init_duration_ms: init.map(ms),
            status: None,
            error_type: None,
        }
    }

    /// The report of an environment that died before the invocation ran (its init failed):
    /// nothing ran and nothing is billed, as Lambda reports a `Runtime.ExitError`.
    pub fn init_failed(request_id: &str, memory_size_mb: u32) -> Self {
        Self {
            request_id: request_id.to_owned(),
            duration_ms: 0.0,
            billed_duration_ms: 0.0,
            memory_size_mb,
            max_memory_used_mb: 0,
            init_duration_ms: None,
            status: Some("error".into()),
            error_type: Some("Runtime.ExitError".into()),
        }
    }

    /// With `Status: <status>` (`timeout`, `error`).
    pub fn with_status(mut self, status: Option<&str>) -> Self {
        self.status = status.map(str::to_owned);
        self
    }

    pub fn cold_start(&self) -> bool {
        self.init_duration_ms.is_some()
    }

    /// The line as Lambda writes it: tab-separated `Name: value unit` fields, each followed by
    /// a tab except the status fields at the end.
    pub fn line(&self) -> String {
        let mut line = String::with_capacity(200);
        let _ = write!(
            line,
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            self.request_id,
            self.duration_ms,
            self.billed_duration_ms as u64,
            self.memory_size_mb,
            self.max_memory_used_mb,
        );
        if let Some(init) = self.init_duration_ms {
            let _ = write!(line, "Init Duration: {init:.2} ms\t");
        }
        if let Some(status) = &self.status {
            let _ = write!(line, "Status: {status}");
            if let Some(error_type) = &self.error_type {
                let _ = write!(line, "\tError Type: {error_type}");
            }
        }
        line
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
            error_type: None,
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
                "Error Type" => report.error_type = Some(value.to_owned()),
                _ => {}
            }
        }
        let complete = !report.request_id.is_empty()
            && report.duration_ms.is_finite()
            && report.billed_duration_ms.is_finite();
        complete.then_some(report)
    }
}

/// The `LogResult` of an `Invoke` with `LogType: Tail`: base64 of the last [`TAIL_BYTES`] of
/// the invocation's log, each line ended by a newline, cut at a character boundary.
pub fn encode_tail<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    STANDARD.encode(&text.as_bytes()[start..])
}

/// Decodes the `LogResult` of an `Invoke` with `LogType: Tail` into its text; invalid base64
/// gives `None`.
pub fn decode_tail(log_result: &str) -> Option<String> {
    let bytes = STANDARD.decode(log_result.trim()).ok()?;
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
    fn the_report_line_has_the_fields_aws_writes() {
        let line = Report::measured(
            "id-1",
            Duration::from_micros(12_345),
            Some(Duration::from_millis(40)),
            128,
            20,
        )
        .line();
        assert_eq!(
            line,
            "REPORT RequestId: id-1\tDuration: 12.35 ms\tBilled Duration: 53 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 40.00 ms\t"
        );
        let warm = Report::measured("id-2", Duration::from_millis(3000), None, 256, 30)
            .with_status(Some("timeout"))
            .line();
        assert!(warm.ends_with("Billed Duration: 3000 ms\tMemory Size: 256 MB\tMax Memory Used: 30 MB\tStatus: timeout"), "{warm}");
        assert!(!warm.contains("Init Duration"));
        assert_eq!(
            Report::init_failed("id-3", 512).line(),
            "REPORT RequestId: id-3\tDuration: 0.00 ms\tBilled Duration: 0 ms\tMemory Size: 512 MB\tMax Memory Used: 0 MB\tStatus: error\tError Type: Runtime.ExitError"
        );
    }

    #[test]
    fn what_the_sandbox_writes_the_readers_parse_back() {
        let reports = [
            Report::measured(
                "cold",
                Duration::from_millis(1250),
                Some(Duration::from_millis(75)),
                1024,
                88,
            ),
            Report::measured("warm", Duration::from_micros(2_500), None, 128, 9),
            Report::measured("late", Duration::from_secs(3), None, 256, 30)
                .with_status(Some("timeout")),
            Report::init_failed("dead", 128),
        ];
        for report in reports {
            assert_eq!(Report::parse(&report.line()), Some(report.clone()));
            let tail =
                decode_tail(&encode_tail(["START", "hello", &report.line()])).expect("base64");
            assert_eq!(report_of_tail(&tail), Some(report));
        }
    }

    #[test]
    fn the_tail_decodes_and_its_last_report_is_found() {
        let text = "START RequestId: a Version: $LATEST\nhello\nEND RequestId: a\nREPORT RequestId: a\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t\n";
        let encoded = STANDARD.encode(text);
        let tail = decode_tail(&encoded).expect("base64");
        assert_eq!(tail, text);
        let report = report_of_tail(&tail).expect("a REPORT line");
        assert_eq!(report.request_id, "a");
        assert_eq!(report.duration_ms, 1.5);
        assert_eq!(decode_tail("not base64!"), None);
    }

    #[test]
    fn the_tail_is_at_most_4_kb() {
        let lines: Vec<String> = (0..500).map(|i| format!("line {i} of the log")).collect();
        let tail = STANDARD
            .decode(encode_tail(lines.iter().map(String::as_str)))
            .expect("base64");
        assert!(tail.len() <= TAIL_BYTES);
        assert!(
            String::from_utf8(tail)
                .expect("utf-8")
                .ends_with("line 499 of the log\n")
        );
    }
}
