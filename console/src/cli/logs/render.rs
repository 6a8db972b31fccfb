//! How `logs` prints an entry: a line for people, `HH:MM:SS.mmm source LEVEL request-id |
//! message key=value ...` in UTC (the sandbox and AWS stamp events in UTC, and a local offset
//! cannot be read safely in a threaded program), the message as written with `--raw`, or one
//! JSON object. The reading and the layout are the lab's (`lab::logs::line` and
//! `lab::logs::render`, shared with the console); this file puts them on one line of text.
//! Pure: strings in, strings out.

use serde_json::{Value, json};

use crate::cli::output::paint;
use crate::lab::logs::entry::{CLOCK_WIDTH, LogEntry, LogSource, clock, rfc3339};
use crate::lab::logs::line::LogLine;
use crate::lab::logs::render::{
    LEVEL_WIDTH, REQUEST_ID_WIDTH, level_column, level_tone, line_text, printable,
    request_id_column, text_tone,
};
use crate::lab::tone::Tone;

/// Width of the source column: the longest label.
const SOURCE_WIDTH: usize = 6;

/// Choices of the human format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanStyle {
    pub colour: bool,
    /// Print each message as written (JSON as JSON, REPORT as Lambda wrote it), without
    /// the level and request-id columns.
    pub raw: bool,
}

/// How entries are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human(HumanStyle),
    Json,
}

/// One entry, read as `line`, in `format`, without the final newline.
pub fn format_entry(entry: &LogEntry, line: &LogLine, format: OutputFormat) -> String {
    match format {
        OutputFormat::Human(style) => human_line(entry, line, style),
        OutputFormat::Json => json_line(entry, line).to_string(),
    }
}

/// One entry for people, without trailing whitespace. A message of several lines (a stack
/// trace) continues under its first line, after the `|`, so the columns stay readable.
/// Control characters other than newline and tab are escaped, raw or not.
pub fn human_line(entry: &LogEntry, line: &LogLine, style: HumanStyle) -> String {
    let clock = paint(&clock(entry.timestamp_ms), Tone::Dim, style.colour);
    let label = format!("{:<SOURCE_WIDTH$}", entry.source.label());
    let label = paint(&label, source_tone(entry.source), style.colour);
    let (columns, columns_width, text, tone) = if style.raw {
        let text = printable(entry.message.trim_end()).into_owned();
        (String::new(), 0, text, None)
    } else {
        let level = match line.level {
            Some(level) => paint(&level_column(line), level_tone(level), style.colour),
            None => level_column(line),
        };
        let id = request_id_column(line, REQUEST_ID_WIDTH);
        (
            format!(" {level} {id}"),
            1 + LEVEL_WIDTH + 1 + REQUEST_ID_WIDTH,
            line_text(line),
            text_tone(line),
        )
    };
    let continuation = format!(
        "\n{:width$} | ",
        "",
        width = CLOCK_WIDTH + 1 + SOURCE_WIDTH + columns_width
    );
    let body: Vec<String> = text
        .split('\n')
        .map(|part| match tone {
            Some(tone) if !part.is_empty() => paint(part, tone, style.colour),
            _ => part.to_owned(),
        })
        .collect();
    let printed = format!("{clock} {label}{columns} | {}", body.join(&continuation));
    printed.trim_end().to_owned()
}

/// One entry as a JSON object: `source`, `group`, `stream`, `timestamp` (RFC 3339, UTC, ms),
/// `timestamp_ms`, `ingestion_ms`, `event_id` (null from a live tail), `message` as stored,
/// `report` (the parsed fields of a `REPORT` line, else null), `level` (as the line names
/// it, else null) and `request_id` (of the invocation the line belongs to, else null).
pub fn json_line(entry: &LogEntry, line: &LogLine) -> Value {
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
        "level": line.level,
        "request_id": line.request_id,
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

    /// Lines of a sandbox stack's log groups, as `hybridlab logs --json` printed them.
    const SERVER_PROCESSED: &str = r#"{"timestamp":"2026-12-06T17:08:55.969523Z","level":"INFO","fields":{"message":"processed","image_id":"01a24c54-7fd3-704f-8f89-f8e2a68e9e23","width":320,"height":200,"total_ms":88.528},"target":"hybridlab_ec2_server::process","span":{"request_id":"dbd6be08-b597-4650-840b-aba33b1a7dd3","name":"process_image"}}"#;
    const SERVER_REQUEST_FAILED: &str = r#"{"timestamp":"2026-12-06T17:10:30.624598Z","level":"WARN","fields":{"message":"request failed","error":"download_failed","message":"the image host answered HTTP 404"},"target":"hybridlab_ec2_server","span":{"request_id":"346ed171-5731-4a18-9aba-e3cefadc55f4","name":"process_image"}}"#;
    const PROXY_ANSWERED: &str = r#" INFO Lambda runtime invoke{requestId="dbd6be08-b597-4650-840b-aba33b1a7dd3" xrayTraceId="Root=1-dbd6be08-dbd6be08b5974650840baba33b1a7dd3;Sampled=0"}: answered status=200 cold_start=true total_ms=188.029968 ec2_round_trip_ms=187.878994"#;

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

    fn human(entry: &LogEntry, style: HumanStyle) -> String {
        human_line(entry, &LogLine::of(entry), style)
    }

    const PLAIN: HumanStyle = HumanStyle {
        colour: false,
        raw: false,
    };
    const RAW: HumanStyle = HumanStyle {
        colour: false,
        raw: true,
    };

    #[test]
    fn times_print_in_utc_with_milliseconds() {
        assert_eq!(clock(WHEN), "06:07:08.009");
        assert_eq!(rfc3339(WHEN), "2024-03-05T06:07:08.009Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn json_and_runtime_lines_print_as_level_request_id_and_message() {
        assert_eq!(
            human(&entry(LogSource::Ec2, SERVER_PROCESSED), PLAIN),
            "06:07:08.009 ec2    INFO  dbd6be08-b597-4650-840b-aba33b1a7dd3 | processed image_id=01a24c54-7fd3-704f-8f89-f8e2a68e9e23 width=320 height=200 total_ms=88.528"
        );
        assert_eq!(
            human(&entry(LogSource::Lambda, PROXY_ANSWERED), PLAIN),
            "06:07:08.009 lambda INFO  dbd6be08-b597-4650-840b-aba33b1a7dd3 | answered status=200 cold_start=true total_ms=188.029968 ec2_round_trip_ms=187.878994"
        );
        assert_eq!(
            human(&entry(LogSource::Ec2, SERVER_REQUEST_FAILED), PLAIN),
            r#"06:07:08.009 ec2    WARN  346ed171-5731-4a18-9aba-e3cefadc55f4 | request failed error=download_failed message="the image host answered HTTP 404""#
        );
    }

    #[test]
    fn raw_prints_the_message_as_written() {
        assert_eq!(
            human(&entry(LogSource::Ec2, SERVER_PROCESSED), RAW),
            format!("06:07:08.009 ec2    | {SERVER_PROCESSED}")
        );
        assert_eq!(
            human(&entry(LogSource::Lambda, PROXY_ANSWERED), RAW),
            format!("06:07:08.009 lambda | {PROXY_ANSWERED}")
        );
        // But nothing a terminal would act on.
        assert_eq!(
            human(&entry(LogSource::Ec2, "a\x1b[2Jb\rc\n"), RAW),
            r"06:07:08.009 ec2    | a\u{1b}[2Jb\rc"
        );
    }

    #[test]
    fn a_plain_line_has_blank_columns_and_continues_under_its_first_line() {
        assert_eq!(
            human(&entry(LogSource::Ec2, "listening on 0.0.0.0:8080\n"), PLAIN),
            format!("06:07:08.009 ec2    {:42} | listening on 0.0.0.0:8080", "")
        );
        assert_eq!(
            human(&entry(LogSource::Lambda, "panicked\n  at main.rs:3\n"), RAW),
            "06:07:08.009 lambda | panicked\n                    |   at main.rs:3"
        );
        let continued = human(
            &entry(
                LogSource::Ec2,
                r#"{"level":"ERROR","fields":{"message":"storing the image failed:\n  caused by: timeout"}}"#,
            ),
            PLAIN,
        );
        let rows: Vec<&str> = continued.lines().collect();
        assert_eq!(rows.len(), 2, "{continued}");
        assert_eq!(rows[0].find('|'), rows[1].find('|'), "{continued}");
        assert!(rows[1].ends_with("|   caused by: timeout"), "{continued}");
    }

    #[test]
    fn report_lines_show_their_fields_or_as_written() {
        let line = "REPORT RequestId: r-1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 41.17 ms\t\n";
        let report = entry(LogSource::Lambda, line);
        assert_eq!(
            human(&report, PLAIN),
            format!(
                "06:07:08.009 lambda       {:36} | REPORT duration 12.35 ms, billed 13 ms, memory 20/128 MB, cold start (init 41.17 ms)",
                "r-1"
            )
        );
        assert_eq!(
            human(&report, RAW),
            format!("06:07:08.009 lambda | {}", line.trim_end())
        );
        let timeout = entry(
            LogSource::Lambda,
            "REPORT RequestId: r-2\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tStatus: timeout",
        );
        assert!(human(&timeout, PLAIN).ends_with("memory 20/128 MB, warm, status timeout"));
    }

    #[test]
    fn colour_marks_the_source_level_and_text_only_when_allowed() {
        let colour = HumanStyle {
            colour: true,
            raw: false,
        };
        let server = human(&entry(LogSource::Ec2, "hello"), colour);
        assert_eq!(
            server,
            format!(
                "\x1b[2m06:07:08.009\x1b[0m \x1b[33mec2   \x1b[0m {:42} | hello",
                ""
            )
        );
        let warn = human(&entry(LogSource::Ec2, SERVER_REQUEST_FAILED), colour);
        assert!(warn.contains(" \x1b[33mWARN \x1b[0m "), "{warn:?}");
        assert!(
            warn.ends_with("| \x1b[33mrequest failed error=download_failed message=\"the image host answered HTTP 404\"\x1b[0m"),
            "{warn:?}"
        );
        let report = human(
            &entry(
                LogSource::Lambda,
                "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB",
            ),
            colour,
        );
        assert!(report.contains("\x1b[36mlambda\x1b[0m"), "{report}");
        assert!(
            report.ends_with(
                "| \x1b[32mREPORT duration 1.00 ms, billed 1 ms, memory 9/128 MB, warm\x1b[0m"
            ),
            "{report}"
        );
        for style in [PLAIN, RAW] {
            assert!(!human(&entry(LogSource::Ec2, SERVER_REQUEST_FAILED), style).contains('\x1b'));
        }
    }

    #[test]
    fn json_has_every_field_the_parsed_report_level_and_request_id() {
        let plain_entry = entry(LogSource::Ec2, "hello\n");
        let plain = json_line(&plain_entry, &LogLine::of(&plain_entry));
        assert_eq!(
            plain,
            json!({
                "source": "ec2", "group": "/ec2", "stream": "s1",
                "timestamp": "2024-03-05T06:07:08.009Z", "timestamp_ms": WHEN,
                "ingestion_ms": WHEN + 5, "event_id": "42", "message": "hello\n", "report": null,
                "level": null, "request_id": null,
            })
        );
        let server_entry = entry(LogSource::Ec2, SERVER_REQUEST_FAILED);
        let server = json_line(&server_entry, &LogLine::of(&server_entry));
        assert_eq!(server["message"], SERVER_REQUEST_FAILED, "as stored");
        assert_eq!(server["level"], "WARN");
        assert_eq!(server["request_id"], "346ed171-5731-4a18-9aba-e3cefadc55f4");
        let report_entry = entry(
            LogSource::Lambda,
            "REPORT RequestId: r\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB",
        );
        let report = json_line(&report_entry, &LogLine::of(&report_entry));
        assert_eq!(report["source"], "lambda");
        assert_eq!(report["request_id"], "r");
        assert_eq!(
            report["report"],
            json!({"request_id": "r", "duration_ms": 1.5, "billed_duration_ms": 2.0, "memory_size_mb": 128, "max_memory_used_mb": 9})
        );
    }
}
