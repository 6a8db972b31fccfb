//! What one log line says: its level, the invocation it belongs to, its message and its
//! fields, read from the shapes the lab's programs write. Pure: a message in, a [`LogLine`]
//! out, whatever the text (a line that is none of the shapes below is kept as it is).
//!
//! - The image server (and the resizer) log tracing-subscriber's JSON: `{"timestamp":...,
//!   "level":"INFO","fields":{"message":"processed","width":320,...},"target":...,
//!   "span":{"request_id":"...","name":"process_image"}}`, with `"spans":[...]` (every span
//!   in scope, outermost first) where the span list is on, as it is for the resizer.
//! - The proxy logs tracing-subscriber's text format without time or target, inside the
//!   Lambda runtime's span: ` INFO Lambda runtime invoke{requestId="..." xrayTraceId="..."}:
//!   answered status=200 ...`. The span's request id is the invocation's; the span itself is
//!   not repeated.
//! - Lambda writes `START RequestId: <id> Version: $LATEST`, `END RequestId: <id>`, `REPORT
//!   RequestId: <id>\t...`, `INIT_START`/`INIT_REPORT`, `RequestId: <id> Error: ...` when the
//!   runtime dies and `<time> <id> Task timed out after 3.00 seconds`.
//!
//! Lines without a level of their own count as INFO for the level filter, except Lambda's
//! failure lines (a REPORT with a status, `Error:`, a timeout) and a panic, which are errors.

use serde::Serialize;

use super::entry::{LogEntry, report_summary};
use super::json_text::JsonText;
use hybridlab_wire::report::Report;

/// How severe a line is, as tracing names it; ordered from the least to the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The name as tracing writes it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }

    /// A level named in any case (`warn`, `WARN`; also `WARNING`, as some loggers write it).
    pub fn parse(name: &str) -> Option<Self> {
        let level = match name.to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "WARN" | "WARNING" => Self::Warn,
            "ERROR" => Self::Error,
            _ => return None,
        };
        Some(level)
    }
}

/// Which of the shapes a line was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineShape {
    /// A JSON object (tracing-subscriber's JSON format, or any other).
    Json,
    /// tracing-subscriber's text format: `LEVEL span{fields}: message`.
    Text,
    /// Lambda's REPORT line, parsed; its message is the fields in a sentence.
    Report,
    /// Lambda's other lines: START, END, INIT_*, its errors and timeouts.
    Platform,
    /// Anything else, as written.
    Plain,
}

/// One log line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub shape: LineShape,
    /// The level the line was written with, if it names one.
    pub level: Option<Level>,
    /// The level the filter goes by: `level`, or what the line says (see the module's doc).
    pub severity: Level,
    /// The request id of the invocation the line belongs to.
    pub request_id: Option<String>,
    /// The message, without the level, the span and the request id; it may hold newlines
    /// and anything else the program wrote: escape it before it reaches a terminal.
    pub message: String,
    /// `key` and value as printed after the message (`200`, `"89 ms"`, `true`); a text
    /// line's fields stay in its message, where tracing wrote them.
    pub fields: Vec<(String, String)>,
}

/// A member of a JSON object: its key and value.
type Member = (String, JsonText);

/// The span the Lambda runtime opens around each invocation.
const RUNTIME_SPAN: &str = "Lambda runtime invoke";

/// Names a field carrying a request id goes by: the server's span and the runtime's.
const REQUEST_ID_KEYS: [&str; 4] = ["request_id", "requestId", "aws_request_id", "awsRequestId"];

/// Top-level keys of tracing's JSON lines shown elsewhere or not at all: the time is the
/// event's, the target is the module's path.
const TRACING_KEYS: [&str; 6] = ["timestamp", "level", "fields", "target", "span", "spans"];

impl LogLine {
    /// The line of `entry`, its REPORT fields already parsed.
    pub fn of(entry: &LogEntry) -> Self {
        Self::parse(&entry.message, entry.report.as_ref())
    }

    /// Reads `text`; `report` is its parsed REPORT fields, if it is a REPORT line.
    pub fn parse(text: &str, report: Option<&Report>) -> Self {
        // Lambda ends its lines with `\n` (REPORT with `\t\n`).
        let text = text.trim_end();
        if let Some(report) = report {
            return Self::report(report);
        }
        if let Some(JsonText::Object(members)) = JsonText::parse(text) {
            return Self::json(&members);
        }
        platform_line(text)
            .or_else(|| text_line(text))
            .unwrap_or_else(|| plain_line(text))
    }

    /// Whether the line is at `min` or more severe (every line when `None`).
    pub fn at_least(&self, min: Option<Level>) -> bool {
        min.is_none_or(|min| self.severity >= min)
    }

    fn report(report: &Report) -> Self {
        Self {
            shape: LineShape::Report,
            level: None,
            severity: if report.status.is_some() {
                Level::Error
            } else {
                Level::Info
            },
            request_id: Some(report.request_id.clone()),
            message: report_summary(report),
            fields: Vec::new(),
        }
    }

    fn json(members: &[Member]) -> Self {
        let level = lookup(members, "level")
            .and_then(JsonText::as_str)
            .and_then(Level::parse);
        let event_fields = lookup(members, "fields").and_then(JsonText::members);
        let span = lookup(members, "span").and_then(JsonText::members);
        let spans = match lookup(members, "spans") {
            Some(JsonText::Array(spans)) => spans.as_slice(),
            _ => &[],
        };
        // The event's own fields first, then the current span's, then the outer spans'.
        let request_id = event_fields
            .and_then(request_id_in)
            .or_else(|| span.and_then(request_id_in))
            .or_else(|| {
                spans
                    .iter()
                    .rev()
                    .filter_map(JsonText::members)
                    .find_map(request_id_in)
            })
            .or_else(|| request_id_in(members));
        // The id has a column; an empty one (the health check's) says nothing.
        let is_request_id = |key: &str, value: &JsonText| {
            REQUEST_ID_KEYS.contains(&key)
                && (value.as_str() == request_id.as_deref() || value.as_str() == Some(""))
        };

        let mut message = String::new();
        let mut fields = Vec::new();
        // tracing's shape: the event's fields, then whatever else the line holds; another
        // logger's: its message and every other key.
        let own: &[Member] = event_fields.unwrap_or_default();
        let others = members.iter().filter(|(key, _)| {
            if event_fields.is_some() {
                !TRACING_KEYS.contains(&key.as_str())
            } else {
                !matches!(key.as_str(), "level" | "timestamp" | "time")
            }
        });
        let mut message_taken = false;
        for (key, value) in own.iter().chain(others) {
            let is_message = matches!(key.as_str(), "message" | "msg");
            if is_message && !message_taken {
                message = value
                    .as_str()
                    .map_or_else(|| value.compact(), str::to_owned);
                message_taken = true;
            } else if !is_request_id(key, value) {
                fields.push((key.clone(), value_text(value)));
            }
        }
        if let Some(span) = span {
            fields.extend(
                span_fields(span)
                    .filter(|&(key, value)| !is_request_id(key, value))
                    .map(|(key, value)| (key.to_owned(), value_text(value))),
            );
        }
        Self {
            shape: LineShape::Json,
            level,
            severity: level.unwrap_or(Level::Info),
            request_id,
            message,
            fields,
        }
    }
}

fn lookup<'a>(members: &'a [(String, JsonText)], key: &str) -> Option<&'a JsonText> {
    members
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// The first non-empty request id among `members`.
fn request_id_in(members: &[Member]) -> Option<String> {
    members
        .iter()
        .filter(|(key, _)| REQUEST_ID_KEYS.contains(&key.as_str()))
        .filter_map(|(_, value)| value.as_str())
        .find(|id| !id.is_empty())
        .map(str::to_owned)
}

/// The fields of a JSON span worth a column of text: none of the runtime's (its request id
/// has a column, its X-Ray trace id is noise), and not the span's name, which tracing writes
/// last (a field called `name` before it is kept).
fn span_fields(span: &[Member]) -> impl Iterator<Item = (&str, &JsonText)> {
    let runtime = span
        .iter()
        .rev()
        .find(|(key, _)| key == "name")
        .is_some_and(|(_, name)| name.as_str() == Some(RUNTIME_SPAN));
    let name_at = span.iter().rposition(|(key, _)| key == "name");
    span.iter()
        .enumerate()
        .filter(move |(at, _)| !runtime && Some(*at) != name_at)
        .map(|(_, (key, value))| (key.as_str(), value))
}

/// A JSON value as it reads after `key=`: strings bare unless they need quotes, numbers
/// and booleans as written, arrays and objects as compact JSON.
fn value_text(value: &JsonText) -> String {
    match value {
        JsonText::String(text) if is_bare(text) => text.clone(),
        other => other.compact(),
    }
}

/// Whether `text` reads unambiguously without quotes after `key=`.
fn is_bare(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'))
}

/// Lambda's own lines (other than a REPORT that parsed).
fn platform_line(text: &str) -> Option<LogLine> {
    let platform = |request_id: Option<&str>, message: String, severity| LogLine {
        shape: LineShape::Platform,
        level: None,
        severity,
        request_id: request_id.map(str::to_owned),
        message,
        fields: Vec::new(),
    };
    for phase in ["START", "END", "REPORT"] {
        if let Some(rest) = text
            .strip_prefix(phase)
            .and_then(|rest| rest.strip_prefix(" RequestId: "))
        {
            // A REPORT here is one that did not parse: shown as written, minus the id.
            let (id, rest) = first_word(rest);
            let message = [phase, rest.trim_start()].join(" ");
            let severity = if rest.contains("Status: ") {
                Level::Error
            } else {
                Level::Info
            };
            return Some(platform(Some(id), message.trim_end().to_owned(), severity));
        }
    }
    if text.starts_with("INIT_START ") || text.starts_with("INIT_REPORT ") {
        let severity = if text.contains("Status: error") {
            Level::Error
        } else {
            Level::Info
        };
        return Some(platform(None, text.to_owned(), severity));
    }
    // The runtime died: `RequestId: <id> Error: Runtime exited with error: ...`.
    if let Some(rest) = text.strip_prefix("RequestId: ") {
        let (id, rest) = first_word(rest);
        return Some(platform(
            Some(id),
            rest.trim_start().to_owned(),
            Level::Error,
        ));
    }
    // `2026-12-06T17:10:30.624Z <id> Task timed out after 3.00 seconds`.
    let (time, rest) = first_word(text);
    let (id, rest) = first_word(rest.trim_start());
    let rest = rest.trim_start();
    if looks_like_timestamp(time) && !id.is_empty() && rest.starts_with("Task timed out") {
        return Some(platform(Some(id), rest.to_owned(), Level::Error));
    }
    None
}

/// The text up to the first whitespace, and what follows it.
fn first_word(text: &str) -> (&str, &str) {
    text.split_at(text.find(char::is_whitespace).unwrap_or(text.len()))
}

/// Whether `word` is an RFC 3339 time as Lambda and tracing write them (`...T...Z`).
fn looks_like_timestamp(word: &str) -> bool {
    word.len() >= 20
        && word.as_bytes()[0].is_ascii_digit()
        && word.as_bytes().get(10) == Some(&b'T')
        && (word.ends_with('Z') || word.contains('+'))
}

/// tracing-subscriber's text format: an optional time, the level (right-aligned in five
/// columns), the spans in scope as `name{fields}:` and a space, then the message with its
/// fields.
fn text_line(text: &str) -> Option<LogLine> {
    let mut rest = text.trim_start();
    let (first, after) = first_word(rest);
    if looks_like_timestamp(first) {
        rest = after.trim_start();
    }
    let (word, after) = first_word(rest);
    // Only the names as tracing writes them, so a sentence starting "Error" stays plain.
    let level = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
        .contains(&word)
        .then(|| Level::parse(word))
        .flatten()?;
    let after_level = after.strip_prefix(' ').unwrap_or(after);
    let mut rest = after_level;
    let mut spans = Vec::new();
    let mut scan = after_level;
    let mut spans_ended = false;
    while let Some((span, after)) = text_span(scan) {
        spans.push(span);
        if let Some(message) = after.strip_prefix(' ') {
            rest = message;
            spans_ended = true;
            break;
        }
        scan = after;
    }
    if !spans_ended {
        // What looked like spans did not end in `: `: it is the message's.
        spans.clear();
    }
    let request_id = spans.iter().rev().find_map(|span| {
        span.fields
            .iter()
            .find(|(key, _)| REQUEST_ID_KEYS.contains(key))
            .map(|(_, value)| unquote(value))
            .filter(|id| !id.is_empty())
    });
    let fields = spans
        .iter()
        .filter(|span| span.name != RUNTIME_SPAN)
        .flat_map(|span| span.fields.iter())
        .filter(|(key, _)| !REQUEST_ID_KEYS.contains(key))
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    Some(LogLine {
        shape: LineShape::Text,
        level: Some(level),
        severity: level,
        request_id,
        message: rest.to_owned(),
        fields,
    })
}

/// A span of a text line: its name and its fields, values as written.
struct TextSpan<'a> {
    name: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

/// A span at the start of `text`: `name{key=value key="quoted value"}:`; its name, its
/// fields (values as written) and what follows the colon.
fn text_span(text: &str) -> Option<(TextSpan<'_>, &str)> {
    let open = text.find('{')?;
    let name = &text[..open];
    // Span names are identifiers or phrases ("Lambda runtime invoke"), never padded.
    if name.is_empty() || name.trim() != name || name.contains([':', '"', '=', '}']) {
        return None;
    }
    let body_start = open + 1;
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    let mut close = None;
    for (at, c) in text[body_start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted && depth == 0 => {
                close = Some(body_start + at);
                break;
            }
            '}' if !quoted => depth -= 1,
            _ => {}
        }
    }
    let close = close?;
    let after = text[close + 1..].strip_prefix(':')?;
    let span = TextSpan {
        name,
        fields: text_fields(&text[body_start..close]),
    };
    Some((span, after))
}

/// `key=value key="a \"quoted\" value"` as (key, value as written) pairs.
fn text_fields(text: &str) -> Vec<(&str, &str)> {
    let mut fields = Vec::new();
    let mut rest = text.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let value_start = eq + 1;
        let value_text = &rest[value_start..];
        let value_len = if value_text.starts_with('"') {
            let mut escaped = false;
            value_text
                .char_indices()
                .skip(1)
                .find_map(|(at, c)| match c {
                    _ if escaped => {
                        escaped = false;
                        None
                    }
                    '\\' => {
                        escaped = true;
                        None
                    }
                    '"' => Some(at + 1),
                    _ => None,
                })
                .unwrap_or(value_text.len())
        } else {
            value_text.find(' ').unwrap_or(value_text.len())
        };
        fields.push((key, &value_text[..value_len]));
        rest = value_text[value_len..].trim_start();
    }
    fields
}

/// A value as tracing's text format writes it, without its quotes and escapes.
fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_owned(),
    }
}

/// A line of no known shape: a panic, an error a program printed on its way out, a script's
/// output.
fn plain_line(text: &str) -> LogLine {
    let request_id = text
        .split_once("RequestId: ")
        .map(|(_, rest)| first_word(rest).0)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let failed = text.contains("panicked at")
        || text.starts_with("Error: ")
        || text.starts_with("error: ")
        || text.starts_with("fatal: ");
    LogLine {
        shape: LineShape::Plain,
        level: None,
        severity: if failed { Level::Error } else { Level::Info },
        request_id,
        message: text.to_owned(),
        fields: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as the programs wrote them, copied from the log groups of a sandbox stack
    // (`hybridlab logs --json` after an invocation, a failed one and one without an image
    // URL), except where a test says otherwise.

    const SERVER_PROCESSED: &str = r#"{"timestamp":"2026-12-06T17:08:55.969523Z","level":"INFO","fields":{"message":"processed","image_id":"01a24c54-7fd3-704f-8f89-f8e2a68e9e23","width":320,"height":200,"total_ms":88.528},"target":"hybridlab_ec2_server::process","span":{"request_id":"dbd6be08-b597-4650-840b-aba33b1a7dd3","name":"process_image"}}"#;
    const SERVER_FINISHED: &str = r#"{"timestamp":"2026-12-06T17:08:55.969868Z","level":"INFO","fields":{"message":"finished processing request","latency":"89 ms","status":200},"target":"tower_http::trace::on_response","span":{"method":"POST","path":"/process-image","request_id":"dbd6be08-b597-4650-840b-aba33b1a7dd3","name":"http"}}"#;
    const SERVER_HEALTH: &str = r#"{"timestamp":"2026-12-06T17:08:53.240657Z","level":"INFO","fields":{"message":"finished processing request","latency":"0 ms","status":200},"target":"tower_http::trace::on_response","span":{"method":"GET","path":"/health","request_id":"","name":"http"}}"#;
    const SERVER_STARTED: &str = r#"{"timestamp":"2026-12-06T17:08:53.006131Z","level":"INFO","fields":{"message":"image server listening","address":"127.0.0.1:37511","bucket":"hybridlab-images-ox3xg3gm","table":"hybridlab-images-ox3xg3gm","uploads_bucket":"none","version":"0.1.0"},"target":"hybridlab_ec2_server"}"#;
    const SERVER_REQUEST_FAILED: &str = r#"{"timestamp":"2026-12-06T17:10:30.624598Z","level":"WARN","fields":{"message":"request failed","error":"download_failed","message":"the image host answered HTTP 404"},"target":"hybridlab_ec2_server","span":{"request_id":"346ed171-5731-4a18-9aba-e3cefadc55f4","name":"process_image"}}"#;
    const SERVER_RESPONSE_FAILED: &str = r#"{"timestamp":"2026-12-06T17:10:30.624775Z","level":"ERROR","fields":{"message":"response failed","classification":"Status code: 502 Bad Gateway","latency":"1 ms"},"target":"tower_http::trace::on_failure","span":{"method":"POST","path":"/process-image","request_id":"346ed171-5731-4a18-9aba-e3cefadc55f4","name":"http"}}"#;
    const PROXY_ANSWERED: &str = r#" INFO Lambda runtime invoke{requestId="dbd6be08-b597-4650-840b-aba33b1a7dd3" xrayTraceId="Root=1-dbd6be08-dbd6be08b5974650840baba33b1a7dd3;Sampled=0"}: answered status=200 cold_start=true total_ms=188.029968 ec2_round_trip_ms=187.878994"#;
    const PROXY_FAILED: &str = r#" WARN Lambda runtime invoke{requestId="e4c55bed-8fba-4351-b43a-95d9bff3af4c" xrayTraceId="Root=1-e4c55bed-e4c55bed8fba4351b43a95d9bff3af4c;Sampled=0"}: invocation failed error="invalid_request" the event has no `image_url`: send {"image_url": "https://..."}"#;
    const START: &str = "START RequestId: dbd6be08-b597-4650-840b-aba33b1a7dd3 Version: $LATEST";
    const END: &str = "END RequestId: dbd6be08-b597-4650-840b-aba33b1a7dd3";
    const REPORT: &str = "REPORT RequestId: dbd6be08-b597-4650-840b-aba33b1a7dd3\tDuration: 190.12 ms\tBilled Duration: 194 ms\tMemory Size: 256 MB\tMax Memory Used: 15 MB\tInit Duration: 3.43 ms\t";
    /// The resizer's configuration of tracing-subscriber (`log_json_lines`: JSON, span list
    /// on, no time or target) inside the runtime's span, printed by tracing-subscriber 0.3.23.
    const RESIZER_FAILED: &str = r#"{"level":"WARN","fields":{"message":"image failed","image_id":"01a24c54-7fd3-704f-8f89-f8e2a68e9e23","bucket":"hybridlab-uploads-k3x9q2ma","key":"incoming/cat.jpg","reason":"the object is not an image: unsupported format"},"span":{"requestId":"8c1f0c4e-3b9a-4d47-a1a4-0f7c2b1d9e55","xrayTraceId":"Root=1-8c1f0c4e-8c1f0c4e3b9a4d47a1a40f7c2b1d9e55;Sampled=0","name":"Lambda runtime invoke"},"spans":[{"requestId":"8c1f0c4e-3b9a-4d47-a1a4-0f7c2b1d9e55","xrayTraceId":"Root=1-8c1f0c4e-8c1f0c4e3b9a4d47a1a40f7c2b1d9e55;Sampled=0","name":"Lambda runtime invoke"}]}"#;
    /// The same, one span deeper: the request id is only in the outer span of `spans`.
    const RESIZER_NESTED: &str = r#"{"level":"ERROR","fields":{"message":"the variants could not be listed for deletion","image_id":"01a24c54-7fd3-704f-8f89-f8e2a68e9e23","error":"dispatch failure: io error: connection refused\n  caused by: tcp connect"},"span":{"name":"thumbnail","name":"variant"},"spans":[{"requestId":"8c1f0c4e-3b9a-4d47-a1a4-0f7c2b1d9e55","xrayTraceId":"Root=1-8c1f0c4e-8c1f0c4e3b9a4d47a1a40f7c2b1d9e55;Sampled=0","name":"Lambda runtime invoke"},{"name":"thumbnail","name":"variant"}]}"#;

    fn parse(text: &str) -> LogLine {
        LogLine::parse(text, Report::parse(text).as_ref())
    }

    fn fields(line: &LogLine) -> Vec<String> {
        line.fields
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect()
    }

    #[test]
    fn the_servers_json_gives_its_level_message_fields_and_the_spans_request_id() {
        let line = parse(SERVER_PROCESSED);
        assert_eq!(line.shape, LineShape::Json);
        assert_eq!(line.level, Some(Level::Info));
        assert_eq!(
            line.request_id.as_deref(),
            Some("dbd6be08-b597-4650-840b-aba33b1a7dd3")
        );
        assert_eq!(line.message, "processed");
        assert_eq!(
            fields(&line),
            [
                "image_id=01a24c54-7fd3-704f-8f89-f8e2a68e9e23",
                "width=320",
                "height=200",
                "total_ms=88.528"
            ],
            "no time, target, span name or request id among the fields"
        );
        let finished = parse(SERVER_FINISHED);
        assert_eq!(finished.message, "finished processing request");
        assert_eq!(
            fields(&finished),
            [
                r#"latency="89 ms""#,
                "status=200",
                "method=POST",
                "path=/process-image"
            ],
            "the span's other fields follow the event's"
        );
        let started = parse(SERVER_STARTED);
        assert_eq!(started.request_id, None);
        assert_eq!(started.fields.len(), 5);
        let health = parse(SERVER_HEALTH);
        assert_eq!(
            health.request_id, None,
            "the health check's empty id is none"
        );
        assert_eq!(
            fields(&health),
            [
                "latency=\"0 ms\"",
                "status=200",
                "method=GET",
                "path=/health"
            ]
        );
    }

    #[test]
    fn a_second_message_field_is_kept_after_the_first() {
        let line = parse(SERVER_REQUEST_FAILED);
        assert_eq!(line.level, Some(Level::Warn));
        assert_eq!(line.severity, Level::Warn);
        assert_eq!(line.message, "request failed");
        assert_eq!(
            fields(&line),
            [
                "error=download_failed",
                r#"message="the image host answered HTTP 404""#
            ]
        );
        let error = parse(SERVER_RESPONSE_FAILED);
        assert_eq!(error.severity, Level::Error);
        assert_eq!(
            error.request_id.as_deref(),
            Some("346ed171-5731-4a18-9aba-e3cefadc55f4")
        );
    }

    #[test]
    fn the_resizers_spans_give_the_request_id_and_the_runtime_span_is_not_repeated() {
        let line = parse(RESIZER_FAILED);
        assert_eq!(
            line.request_id.as_deref(),
            Some("8c1f0c4e-3b9a-4d47-a1a4-0f7c2b1d9e55")
        );
        assert!(
            !fields(&line).iter().any(|f| f.contains("xrayTraceId")),
            "{line:?}"
        );
        assert_eq!(
            fields(&line).last().map(String::as_str),
            Some(r#"reason="the object is not an image: unsupported format""#)
        );
        let nested = parse(RESIZER_NESTED);
        assert_eq!(
            nested.request_id.as_deref(),
            Some("8c1f0c4e-3b9a-4d47-a1a4-0f7c2b1d9e55"),
            "from the outer span of `spans`"
        );
        assert_eq!(
            fields(&nested),
            [
                "image_id=01a24c54-7fd3-704f-8f89-f8e2a68e9e23",
                r#"error="dispatch failure: io error: connection refused\n  caused by: tcp connect""#,
                "name=thumbnail",
            ],
            "a field named `name` stays; the span's own name (the last `name`) goes"
        );
    }

    #[test]
    fn the_proxys_runtime_span_becomes_the_request_id() {
        let line = parse(PROXY_ANSWERED);
        assert_eq!(line.shape, LineShape::Text);
        assert_eq!(line.level, Some(Level::Info));
        assert_eq!(
            line.request_id.as_deref(),
            Some("dbd6be08-b597-4650-840b-aba33b1a7dd3")
        );
        assert_eq!(
            line.message,
            "answered status=200 cold_start=true total_ms=188.029968 ec2_round_trip_ms=187.878994"
        );
        assert!(line.fields.is_empty());
        let failed = parse(PROXY_FAILED);
        assert_eq!(failed.severity, Level::Warn);
        assert_eq!(
            failed.request_id.as_deref(),
            Some("e4c55bed-8fba-4351-b43a-95d9bff3af4c")
        );
        assert_eq!(
            failed.message,
            r#"invocation failed error="invalid_request" the event has no `image_url`: send {"image_url": "https://..."}"#
        );
    }

    #[test]
    fn text_lines_with_a_time_nested_spans_or_no_span_read_too() {
        // The server's text format (HYBRIDLAB_LOG_FORMAT=text), as tracing writes it.
        let line = parse(
            r#"2026-12-06T17:08:55.883208Z  INFO process_image{request_id=dbd6be08-b597-4650-840b-aba33b1a7dd3}:variant{name="thumbnail" size="{w: 1}"}: hybridlab_ec2_server::process: downloaded bytes=36715"#,
        );
        assert_eq!(line.level, Some(Level::Info));
        assert_eq!(
            line.request_id.as_deref(),
            Some("dbd6be08-b597-4650-840b-aba33b1a7dd3")
        );
        assert_eq!(
            line.message,
            "hybridlab_ec2_server::process: downloaded bytes=36715"
        );
        assert_eq!(fields(&line), [r#"name="thumbnail""#, r#"size="{w: 1}""#]);
        let bare = parse("ERROR the stale-row sweep failed; trying again later");
        assert_eq!((bare.level, bare.request_id), (Some(Level::Error), None));
        assert_eq!(
            bare.message,
            "the stale-row sweep failed; trying again later"
        );
        // Braces in a message that are not a span stay in it.
        let braces = parse(r#" INFO sent {"a": 1}: done"#);
        assert_eq!(braces.message, r#"sent {"a": 1}: done"#);
        assert_eq!(parse("Error handling is hard").shape, LineShape::Plain);
    }

    #[test]
    fn lambdas_lines_give_the_request_id_and_a_short_message() {
        let start = parse(START);
        assert_eq!(start.shape, LineShape::Platform);
        assert_eq!(
            start.request_id.as_deref(),
            Some("dbd6be08-b597-4650-840b-aba33b1a7dd3")
        );
        assert_eq!(start.message, "START Version: $LATEST");
        assert_eq!(start.severity, Level::Info);
        assert_eq!(parse(&format!("{END}\n")).message, "END");
        let report = parse(REPORT);
        assert_eq!(report.shape, LineShape::Report);
        assert_eq!(
            report.message,
            "REPORT duration 190.12 ms, billed 194 ms, memory 15/256 MB, cold start (init 3.43 ms)"
        );
        assert_eq!(report.severity, Level::Info);
        // The sandbox's lines of a timeout and of a runtime that died, as it writes them.
        let timeout = parse(
            "REPORT RequestId: 9a0e\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tStatus: timeout",
        );
        assert_eq!(timeout.severity, Level::Error);
        let timed_out = parse("2026-12-06T17:10:30.624Z 9a0e Task timed out after 3.00 seconds");
        assert_eq!(
            (timed_out.request_id.as_deref(), timed_out.severity),
            (Some("9a0e"), Level::Error)
        );
        assert_eq!(timed_out.message, "Task timed out after 3.00 seconds");
        let died = parse("RequestId: 9a0e Error: Runtime exited with error: exit status 101");
        assert_eq!(died.request_id.as_deref(), Some("9a0e"));
        assert_eq!(
            died.message,
            "Error: Runtime exited with error: exit status 101"
        );
        assert_eq!(died.severity, Level::Error);
        let init = parse(
            "INIT_REPORT Init Duration: 12.00 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError",
        );
        assert_eq!((init.request_id, init.severity), (None, Level::Error));
        // A REPORT that does not parse is still Lambda's.
        let broken = parse("REPORT RequestId: 9a0e\tDuration: soon");
        assert_eq!(broken.shape, LineShape::Platform);
        assert_eq!(broken.message, "REPORT Duration: soon");
    }

    #[test]
    fn lines_of_no_known_shape_are_kept_whole() {
        for text in [
            // Cut off mid-line (a line over CloudWatch's 256 KB limit is truncated).
            r#"{"timestamp":"2026-12-06T17:08:55.969523Z","level":"INFO","fields":{"message":"proc"#,
            "{not json}",
            "",
            "listening on 0.0.0.0:8080",
        ] {
            let line = parse(text);
            assert_eq!(line.shape, LineShape::Plain, "{text}");
            assert_eq!(line.message, text);
            assert_eq!((line.level, line.severity), (None, Level::Info), "{text}");
        }
        let panic = parse("thread 'main' panicked at ec2-server/src/main.rs:40:5:");
        assert_eq!(panic.severity, Level::Error);
        let refused = parse("Error: refusing to start");
        assert_eq!(refused.severity, Level::Error);
        // JSON that is not an object is not a structured line.
        assert_eq!(parse("42").shape, LineShape::Plain);
        assert_eq!(parse("[1, 2]").shape, LineShape::Plain);
    }

    #[test]
    fn other_loggers_json_and_odd_values_read_too() {
        let line = parse(
            r#"{"time":"2026-12-06T17:08:55Z","level":"warning","msg":"slow","request_id":"r-1","n":1.5,"tags":["a","b"],"extra":{"k":null},"note":""}"#,
        );
        assert_eq!(line.level, Some(Level::Warn));
        assert_eq!(line.request_id.as_deref(), Some("r-1"));
        assert_eq!(line.message, "slow");
        assert_eq!(
            fields(&line),
            [
                "n=1.5",
                r#"tags=["a","b"]"#,
                r#"extra={"k":null}"#,
                r#"note="""#
            ]
        );
        let quiet = parse(r#"{"level":"LOUD","fields":{"count":3}}"#);
        assert_eq!((quiet.level, quiet.severity), (None, Level::Info));
        assert_eq!(quiet.message, "");
        assert_eq!(fields(&quiet), ["count=3"]);
        let numeric = parse(r#"{"fields":{"message":42}}"#);
        assert_eq!(numeric.message, "42");
    }

    #[test]
    fn non_ascii_very_long_and_control_characters_are_kept_for_the_renderer() {
        let long = "é".repeat(100_000);
        let line = parse(&format!(
            r#"{{"level":"INFO","fields":{{"message":"{long}","who":"Zoë 東京"}}}}"#
        ));
        assert_eq!(line.message.chars().count(), 100_000);
        assert_eq!(fields(&line), [r#"who="Zoë 東京""#]);
        // JSON escapes come back as the characters; the renderer escapes them for terminals.
        let hostile = parse(r#"{"level":"INFO","fields":{"message":"a\u001b[2Jb\r\u0007"}}"#);
        assert_eq!(hostile.message, "a\x1b[2Jb\r\x07");
        let text = parse(" INFO Lambda runtime invoke{requestId=\"r\"}: x\x1b]0;pwned\x07");
        assert_eq!(text.message, "x\x1b]0;pwned\x07");
    }

    #[test]
    fn the_level_filter_keeps_a_level_and_what_is_more_severe() {
        let info = parse(SERVER_PROCESSED);
        let warn = parse(SERVER_REQUEST_FAILED);
        let start = parse(START);
        assert!(info.at_least(None) && info.at_least(Some(Level::Info)));
        assert!(!info.at_least(Some(Level::Warn)));
        assert!(warn.at_least(Some(Level::Warn)) && !warn.at_least(Some(Level::Error)));
        assert!(!start.at_least(Some(Level::Warn)), "START counts as INFO");
        assert!(start.at_least(Some(Level::Debug)));
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert_eq!(Level::parse("Error"), Some(Level::Error));
        assert_eq!(Level::parse("loud"), None);
    }
}
