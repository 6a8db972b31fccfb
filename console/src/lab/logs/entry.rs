//! One log event as `logs` and the console show it: which half of the lab wrote it, where it
//! is stored, when, and, for Lambda's `REPORT` lines, their parsed fields.

use std::hash::{DefaultHasher, Hash, Hasher};

use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, LiveTailSessionLogEvent};
use serde::Serialize;

use hybridlab_wire::report::Report;

/// The half of the lab a log group belongs to. The order is the tie-break between events
/// with the same timestamp: the function's lines before the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    Lambda,
    Ec2,
}

impl LogSource {
    /// The name printed in the source column and in JSON.
    pub fn label(self) -> &'static str {
        match self {
            Self::Lambda => "lambda",
            Self::Ec2 => "ec2",
        }
    }
}

/// A log group being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroup {
    pub source: LogSource,
    pub name: String,
    /// Without the `:*` suffix `DescribeLogGroups` puts on `arn`; StartLiveTail wants it so.
    pub arn: Option<String>,
}

impl LogGroup {
    /// Whether a live tail event's `logGroupIdentifier` (an ARN, with or without `:*`, or
    /// a name) means this group.
    pub fn is_identified_by(&self, identifier: &str) -> bool {
        let identifier = identifier.strip_suffix(":*").unwrap_or(identifier);
        identifier == self.name
            || self.arn.as_deref() == Some(identifier)
            || identifier
                .strip_suffix(self.name.as_str())
                .is_some_and(|head| head.ends_with(":log-group:"))
    }
}

/// One event of one of the lab's log groups.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub source: LogSource,
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: Option<i64>,
    /// Set by `FilterLogEvents`; StartLiveTail does not send one.
    pub event_id: Option<String>,
    pub message: String,
    pub report: Option<Report>,
}

impl LogEntry {
    /// An entry; `report` is parsed from `message`.
    pub fn new(
        group: &LogGroup,
        stream: &str,
        timestamp_ms: i64,
        ingestion_ms: Option<i64>,
        event_id: Option<String>,
        message: &str,
    ) -> Self {
        Self {
            source: group.source,
            group: group.name.clone(),
            stream: stream.to_owned(),
            timestamp_ms,
            ingestion_ms,
            event_id,
            message: message.to_owned(),
            report: Report::parse(message),
        }
    }

    /// An event `FilterLogEvents` returned from `group`; `None` without a timestamp.
    pub fn from_filtered(group: &LogGroup, event: &FilteredLogEvent) -> Option<Self> {
        Some(Self::new(
            group,
            event.log_stream_name().unwrap_or_default(),
            event.timestamp()?,
            event.ingestion_time(),
            event.event_id().map(str::to_owned),
            event.message().unwrap_or_default(),
        ))
    }

    /// An event a live tail session sent, attributed to the group of `groups` it names.
    pub fn from_live(groups: &[LogGroup], event: &LiveTailSessionLogEvent) -> Option<Self> {
        let identifier = event.log_group_identifier()?;
        let group = groups.iter().find(|g| g.is_identified_by(identifier))?;
        Some(Self::new(
            group,
            event.log_stream_name().unwrap_or_default(),
            event.timestamp()?,
            event.ingestion_time(),
            None,
            event.message().unwrap_or_default(),
        ))
    }

    /// What identifies the event when there is no event id (live tail): everything
    /// CloudWatch stores about it. Two events share it only if the same stream got the same
    /// text at the same millisecond in the same batch.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        (
            &self.group,
            &self.stream,
            self.timestamp_ms,
            self.ingestion_ms,
            &self.message,
        )
            .hash(&mut hasher);
        hasher.finish()
    }
}

/// Width of `HH:MM:SS.mmm`.
pub const CLOCK_WIDTH: usize = 12;

/// The fields of a `REPORT` line in a sentence, without the request id (it has a column).
pub fn report_summary(report: &Report) -> String {
    let mut text = format!(
        "REPORT duration {:.2} ms, billed {} ms, memory {}/{} MB, ",
        report.duration_ms,
        report.billed_duration_ms,
        report.max_memory_used_mb,
        report.memory_size_mb
    );
    match report.init_duration_ms {
        Some(init) => text.push_str(&format!("cold start (init {init:.2} ms)")),
        None => text.push_str("warm"),
    }
    if let Some(status) = &report.status {
        text.push_str(&format!(", status {status}"));
    }
    text
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds, UTC.
pub fn clock(timestamp_ms: i64) -> String {
    match utc(timestamp_ms) {
        Some(t) => format!(
            "{:02}:{:02}:{:02}.{:03}",
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        None => format!("{timestamp_ms:>CLOCK_WIDTH$}"),
    }
}

/// `2025-01-02T03:04:05.678Z` of a Unix time in milliseconds.
pub fn rfc3339(timestamp_ms: i64) -> String {
    match utc(timestamp_ms) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        None => timestamp_ms.to_string(),
    }
}

fn utc(timestamp_ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ms) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function_group() -> LogGroup {
        LogGroup {
            source: LogSource::Lambda,
            name: "/aws/lambda/hybridlab-proxy-abc".into(),
            arn: Some(
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/hybridlab-proxy-abc"
                    .into(),
            ),
        }
    }

    #[test]
    fn a_live_event_is_attributed_by_arn_or_name() {
        let group = function_group();
        let arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/hybridlab-proxy-abc";
        assert!(group.is_identified_by(arn));
        assert!(group.is_identified_by(&format!("{arn}:*")));
        assert!(group.is_identified_by("/aws/lambda/hybridlab-proxy-abc"));
        let without_arn = LogGroup { arn: None, ..group };
        assert!(without_arn.is_identified_by(arn));
        assert!(!without_arn.is_identified_by("/aws/lambda/hybridlab-proxy-abcd"));
        assert!(!without_arn.is_identified_by(
            "arn:aws:logs:us-east-1:123456789012:log-group:/other/aws/lambda/hybridlab-proxy-abc"
        ));
    }

    #[test]
    fn events_of_both_apis_become_entries_with_their_report() {
        let groups = [function_group()];
        let report = "REPORT RequestId: r1\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t";
        let polled = FilteredLogEvent::builder()
            .log_stream_name("s")
            .timestamp(5)
            .ingestion_time(6)
            .event_id("e1")
            .message(report)
            .build();
        let polled = LogEntry::from_filtered(&groups[0], &polled).expect("an entry");
        assert_eq!(polled.event_id.as_deref(), Some("e1"));
        assert_eq!(
            polled.report.as_ref().map(|r| r.request_id.as_str()),
            Some("r1")
        );
        let live = LiveTailSessionLogEvent::builder()
            .log_group_identifier(groups[0].arn.clone().unwrap_or_default())
            .log_stream_name("s")
            .timestamp(5)
            .ingestion_time(6)
            .message(report)
            .build();
        let live = LogEntry::from_live(&groups, &live).expect("an entry");
        assert_eq!(live.event_id, None);
        assert_eq!(live.source, LogSource::Lambda);
        assert_eq!(live.fingerprint(), polled.fingerprint());
        let stranger = LiveTailSessionLogEvent::builder()
            .log_group_identifier("/somebody/else")
            .timestamp(5)
            .message("x")
            .build();
        assert_eq!(LogEntry::from_live(&groups, &stranger), None);
    }
}
