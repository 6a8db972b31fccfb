//! How `logs` prints an entry: a line for people, `HH:MM:SS.mmm source | message` in UTC
//! (the sandbox and AWS stamp events in UTC, and a local offset cannot be read safely in a
//! threaded program), or one JSON object. Pure: strings in, strings out.

use serde_json::{Value, json};

use crate::cli::output::paint;
use crate::lab::logs::entry::{CLOCK_WIDTH, LogEntry, LogSource, clock, report_summary, rfc3339};
use crate::lab::tone::Tone;

/// Width of the source column: the longest label.
const SOURCE_WIDTH: usize = 6;

/// Choices of the human format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanStyle {
    pub colour: bool,
    /// Print `REPORT` lines as Lambda wrote them instead of their parsed fields.
    pub raw_reports: bool,
}

/// How entries are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human(HumanStyle),
    Json,
}

/// One entry in `format`, without the final newline.
pub fn format_entry(entry: &LogEntry, format: OutputFormat) -> String {
    match format {
        OutputFormat::Human(style) => human_line(entry, style),
        OutputFormat::Json => json_line(entry).to_string(),
    }
}

/// One entry for people, without trailing whitespace. A message of several lines (a stack
/// trace) continues under its first line, so the columns stay readable.
pub fn human_line(entry: &LogEntry, style: HumanStyle) -> String {
    let clock = paint(&clock(entry.timestamp_ms), Tone::Dim, style.colour);
    let label = format!("{:<SOURCE_WIDTH$}", entry.source.label());
    let label = paint(&label, source_tone(entry.source), style.colour);
    // Lambda ends its lines with `\n` (REPORT with `\t\n`): invisible, or blank lines.
    let message = entry.message.trim_end();
    let body = match &entry.report {
        Some(report) => {
            let text = if style.raw_reports {
                message.to_owned()
            } else {
                report_summary(report)
            };
            let tone = if report.status.is_some() {
                Tone::Bad
            } else {
                Tone::Good
            };
            paint(&text, tone, style.colour)
        }
        None => message.to_owned(),
    };
    let continuation = format!("\n{:width$} | ", "", width = CLOCK_WIDTH + 1 + SOURCE_WIDTH);
    format!("{clock} {label} | {}", body.replace('\n', &continuation))
}

/// One entry as a JSON object: `source`, `group`, `stream`, `timestamp` (RFC 3339, UTC, ms),
/// `timestamp_ms`, `ingestion_ms`, `event_id` (null from a live tail), `message` as stored,
/// and `report`: the parsed fields of a `REPORT` line, else null.
pub fn json_line(entry: &LogEntry) -> Value {
    json!({
        "source": entry.source,
        "group": entry.group,
        "stream": entry.stream,
        "timestamp": rfc3339(entry.timestamp_ms),
        "timestamp_ms": entry.timestamp_ms,
        "ingestion_ms": entry.ingestion_ms,
        "event_id": entry.event_id,
        "message": entry.message,
        "report": entry.report,
    })
}

fn source_tone(source: LogSource) -> Tone {
    match source {
        LogSource::Lambda => Tone::Accent,
        LogSource::Ec2 => Tone::Warn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::logs::entry::LogGroup;

    /// 2024-03-05T06:07:08.009Z
    const WHEN: i64 = 1_709_618_828_009;

    fn entry(source: LogSource, message: &str) -> LogEntry {
        let group = LogGroup {
            source,
            name: format!("/{}", source.label()),
            arn: None,
        };
        LogEntry::new(
            &group,
            "s1",
            WHEN,
            Some(WHEN + 5),
            Some("42".into()),
            message,
        )
    }

    const PLAIN: HumanStyle = HumanStyle {
        colour: false,
        raw_reports: false,
    };

    #[test]
    fn times_print_in_utc_with_milliseconds() {
        assert_eq!(clock(WHEN), "06:07:08.009");
        assert_eq!(rfc3339(WHEN), "2024-03-05T06:07:08.009Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_line_shows_time_source_and_message_without_its_newline() {
        assert_eq!(
            human_line(&entry(LogSource::Ec2, "listening on 0.0.0.0:8080\n"), PLAIN),
            "06:07:08.009 ec2    | listening on 0.0.0.0:8080"
        );
        assert_eq!(
            human_line(
                &entry(LogSource::Lambda, "panicked\n  at main.rs:3\n"),
                PLAIN
            ),
            "06:07:08.009 lambda | panicked\n                    |   at main.rs:3"
        );
    }

    #[test]
    fn report_lines_show_their_fields_or_as_written() {
        let line = "REPORT RequestId: r-1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 41.17 ms\t\n";
        let report = entry(LogSource::Lambda, line);
        assert_eq!(
            human_line(&report, PLAIN),
            "06:07:08.009 lambda | REPORT r-1 duration 12.35 ms, billed 13 ms, memory 20/128 MB, cold start (init 41.17 ms)"
        );
        let raw = HumanStyle {
            raw_reports: true,
            ..PLAIN
        };
        assert_eq!(
            human_line(&report, raw),
            format!("06:07:08.009 lambda | {}", line.trim_end())
        );
        let timeout = entry(
            LogSource::Lambda,
            "REPORT RequestId: r-2\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tStatus: timeout",
        );
        assert!(human_line(&timeout, PLAIN).ends_with("memory 20/128 MB, warm, status timeout"));
    }

    #[test]
    fn colour_marks_the_source_and_highlights_reports_only_when_allowed() {
        let colour = HumanStyle {
            colour: true,
            raw_reports: false,
        };
        let server = human_line(&entry(LogSource::Ec2, "hello"), colour);
        assert_eq!(
            server,
            "\x1b[2m06:07:08.009\x1b[0m \x1b[33mec2   \x1b[0m | hello"
        );
        let report = human_line(
            &entry(
                LogSource::Lambda,
                "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB",
            ),
            colour,
        );
        assert!(report.contains("\x1b[36mlambda\x1b[0m"), "{report}");
        assert!(
            report.ends_with(
                "| \x1b[32mREPORT r duration 1.00 ms, billed 1 ms, memory 9/128 MB, warm\x1b[0m"
            ),
            "{report}"
        );
        assert!(!human_line(&entry(LogSource::Ec2, "hello"), PLAIN).contains('\x1b'));
    }

    #[test]
    fn json_has_every_field_and_the_parsed_report() {
        let plain = json_line(&entry(LogSource::Ec2, "hello\n"));
        assert_eq!(
            plain,
            json!({
                "source": "ec2", "group": "/ec2", "stream": "s1",
                "timestamp": "2024-03-05T06:07:08.009Z", "timestamp_ms": WHEN,
                "ingestion_ms": WHEN + 5, "event_id": "42", "message": "hello\n", "report": null,
            })
        );
        let report = json_line(&entry(
            LogSource::Lambda,
            "REPORT RequestId: r\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB",
        ));
        assert_eq!(report["source"], "lambda");
        assert_eq!(
            report["report"],
            json!({"request_id": "r", "duration_ms": 1.5, "billed_duration_ms": 2.0, "memory_size_mb": 128, "max_memory_used_mb": 9})
        );
    }
}
