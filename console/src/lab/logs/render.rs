//! A read log line laid out for people, the same in `hybridlab logs` and in the console: the
//! columns (time, source, level, request id), the text (`message key=value ...`), their
//! tones, and the detail of one line. Every character a terminal would act on rather than
//! show (escape sequences, carriage returns, bells, bidirectional overrides) is escaped
//! here, so what a program logs cannot move the cursor or retitle the window. Pure: each face
//! paints the result its own way.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::json_text::JsonText;
use super::line::{Level, LineShape, LogLine};
use crate::lab::tone::Tone;

/// Width of the level column: the longest level name.
pub const LEVEL_WIDTH: usize = 5;
/// Width of the request-id column: a Lambda request id (a UUID).
pub const REQUEST_ID_WIDTH: usize = 36;
/// Width of the request-id column where space is short: a UUID's first group, which tells
/// a lab's invocations apart as a short commit hash does commits.
pub const SHORT_REQUEST_ID_WIDTH: usize = 8;

/// `message key=value ...` of `line`, printable. Newlines and tabs are kept: the faces lay
/// them out.
pub fn line_text(line: &LogLine) -> String {
    line_text_within(line, usize::MAX)
}

/// [`line_text`] cut after about `limit` characters: a row of the console shows no more
/// than its width, and a line can be 256 KB.
pub fn line_text_within(line: &LogLine, limit: usize) -> String {
    let mut out = String::new();
    let mut budget = limit;
    push_printable(&mut out, &line.message, &mut budget);
    for (key, value) in &line.fields {
        if budget == 0 {
            break;
        }
        if !out.is_empty() {
            push_printable(&mut out, " ", &mut budget);
        }
        push_printable(&mut out, key, &mut budget);
        push_printable(&mut out, "=", &mut budget);
        push_printable(&mut out, value, &mut budget);
    }
    out
}

/// `text` with what a terminal acts on escaped, newlines and tabs kept.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut budget = usize::MAX;
    push_printable(&mut out, text, &mut budget);
    Cow::Owned(out)
}

/// Appends `text` to `out`, escaped, spending one of `budget` per character written.
fn push_printable(out: &mut String, text: &str, budget: &mut usize) {
    for c in text.chars() {
        if *budget == 0 {
            return;
        }
        if needs_escape(c) {
            let before = out.len();
            match c {
                '\r' => out.push_str("\\r"),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
            *budget = budget.saturating_sub(out.len() - before);
        } else {
            out.push(c);
            *budget -= 1;
        }
    }
}

/// Control characters (C0, DEL, C1) other than newline and tab, and the bidirectional
/// embeddings, overrides and isolates, which reorder what follows them on screen.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The level column: the name as written, or blanks.
pub fn level_column(line: &LogLine) -> String {
    format!("{:<LEVEL_WIDTH$}", line.level.map_or("", Level::label))
}

/// The request-id column, `width` wide: the id (its first `width` characters if longer),
/// or blanks.
pub fn request_id_column(line: &LogLine, width: usize) -> String {
    let id: String = line
        .request_id
        .as_deref()
        .map(|id| printable(id).chars().take(width).collect())
        .unwrap_or_default();
    format!("{id:<width$}")
}

/// How a level's name reads: tracing's colours (red, yellow, green, dim).
pub fn level_tone(level: Level) -> Tone {
    match level {
        Level::Error => Tone::Bad,
        Level::Warn => Tone::Warn,
        Level::Info => Tone::Good,
        Level::Debug | Level::Trace => Tone::Dim,
    }
}

/// How a line's text reads: a REPORT good or bad (a timeout, an error), an error or a
/// warning as such, debug lines dim, the rest plain.
pub fn text_tone(line: &LogLine) -> Option<Tone> {
    match (line.shape, line.severity) {
        (LineShape::Report, Level::Error) => Some(Tone::Bad),
        (LineShape::Report, _) => Some(Tone::Good),
        (_, Level::Error) => Some(Tone::Bad),
        (_, Level::Warn) => Some(Tone::Warn),
        (_, Level::Debug | Level::Trace) => Some(Tone::Dim),
        (_, Level::Info) => None,
    }
}

/// The whole of one line, for a detail pane: a JSON line pretty-printed with every key in
/// the order written (duplicates too), anything else as written; printable, newlines kept
/// and tabs as four spaces.
pub fn detail_text(message: &str) -> String {
    let message = message.trim_end();
    let text = match JsonText::parse(message) {
        Some(json @ (JsonText::Object(_) | JsonText::Array(_))) => json.pretty(),
        _ => message.to_owned(),
    };
    printable(&text).replace('\t', "    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_wire::report::Report;

    /// Lines of a sandbox stack's log groups (see `line.rs`).
    const SERVER_FINISHED: &str = r#"{"timestamp":"2026-12-06T17:08:55.969868Z","level":"INFO","fields":{"message":"finished processing request","latency":"89 ms","status":200},"target":"tower_http::trace::on_response","span":{"method":"POST","path":"/process-image","request_id":"dbd6be08-b597-4650-840b-aba33b1a7dd3","name":"http"}}"#;
    const SERVER_REQUEST_FAILED: &str = r#"{"timestamp":"2026-12-06T17:10:30.624598Z","level":"WARN","fields":{"message":"request failed","error":"download_failed","message":"the image host answered HTTP 404"},"target":"hybridlab_ec2_server","span":{"request_id":"346ed171-5731-4a18-9aba-e3cefadc55f4","name":"process_image"}}"#;
    const REPORT_TIMEOUT: &str = "REPORT RequestId: 9a0e\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tStatus: timeout";

    fn parse(text: &str) -> LogLine {
        LogLine::parse(text, Report::parse(text).as_ref())
    }

    #[test]
    fn a_json_line_reads_as_its_message_and_fields() {
        let line = parse(SERVER_FINISHED);
        assert_eq!(
            line_text(&line),
            r#"finished processing request latency="89 ms" status=200 method=POST path=/process-image"#
        );
        assert_eq!(level_column(&line), "INFO ");
        assert_eq!(
            request_id_column(&line, REQUEST_ID_WIDTH),
            "dbd6be08-b597-4650-840b-aba33b1a7dd3"
        );
        assert_eq!(request_id_column(&line, SHORT_REQUEST_ID_WIDTH), "dbd6be08");
        let start = parse("INIT_START Runtime Version: provided:al2023.v100");
        assert_eq!(level_column(&start), "     ");
        assert_eq!(request_id_column(&start, 8), "        ");
        // A short id is padded.
        let short = parse("END RequestId: 3f1c-aa");
        assert_eq!(request_id_column(&short, 8), "3f1c-aa ");
    }

    #[test]
    fn tones_follow_the_level_and_a_reports_status() {
        let warn = parse(SERVER_REQUEST_FAILED);
        assert_eq!(text_tone(&warn), Some(Tone::Warn));
        assert_eq!(level_tone(Level::Warn), Tone::Warn);
        assert_eq!(text_tone(&parse(SERVER_FINISHED)), None);
        assert_eq!(text_tone(&parse(REPORT_TIMEOUT)), Some(Tone::Bad));
        let report = "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB";
        assert_eq!(text_tone(&parse(report)), Some(Tone::Good));
        assert_eq!(text_tone(&parse("DEBUG tls handshake")), Some(Tone::Dim));
        assert_eq!(
            text_tone(&parse("thread 'main' panicked at src/main.rs:1:1:")),
            Some(Tone::Bad)
        );
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        // Clear the screen, retitle the window, ring the bell, return to the line's start,
        // reverse the text: each shown as an escape instead.
        let line = parse(
            r#"{"level":"INFO","fields":{"message":"a\u001b[2Jb\u001b]0;pwned\u0007c\rd\u202eevil","k":"\u009b31m"}}"#,
        );
        let text = line_text(&line);
        assert_eq!(
            text,
            r#"a\u{1b}[2Jb\u{1b}]0;pwned\u{7}c\rd\u{202e}evil k="\u{9b}31m""#
        );
        assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        let raw = " INFO Lambda runtime invoke{requestId=\"r\x1b[31m\"}: x\x1b[0m";
        let line = parse(raw);
        assert_eq!(line_text(&line), r"x\u{1b}[0m");
        assert_eq!(request_id_column(&line, 36).trim_end(), r"r\u{1b}[31m");
        // Newlines and tabs are the faces' to lay out; non-ASCII is text.
        assert_eq!(printable("a\n\tb é 東京 🦀"), "a\n\tb é 東京 🦀");
        assert!(matches!(printable("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn a_long_line_is_cut_where_asked() {
        let long = format!(
            r#"{{"level":"INFO","fields":{{"message":"{}","n":1}}}}"#,
            "é".repeat(300_000)
        );
        let line = parse(&long);
        assert_eq!(line_text_within(&line, 100).chars().count(), 100);
        assert_eq!(line_text(&line).chars().count(), 300_004);
        let escaped = parse("\x1b\x1b\x1b\x1b");
        assert_eq!(line_text_within(&escaped, 12), r"\u{1b}\u{1b}");
    }

    #[test]
    fn the_detail_is_pretty_json_in_written_order_or_the_line_as_written() {
        let detail = detail_text(SERVER_REQUEST_FAILED);
        assert!(
            detail.starts_with("{\n  \"timestamp\": \"2026-12-06T17:10:30.624598Z\",\n  \"level\": \"WARN\",\n  \"fields\": {\n    \"message\": \"request failed\",\n    \"error\": \"download_failed\",\n    \"message\": \"the image host answered HTTP 404\"\n  },"),
            "{detail}"
        );
        assert_eq!(
            detail_text(REPORT_TIMEOUT),
            "REPORT RequestId: 9a0e    Duration: 3000.00 ms    Billed Duration: 3000 ms    Memory Size: 128 MB    Max Memory Used: 20 MB    Status: timeout"
        );
        assert_eq!(detail_text("{\"cut"), "{\"cut");
        assert_eq!(detail_text("bell\x07\n"), r"bell\u{7}");
        // JSON keeps C1 controls and bidi overrides unescaped; the detail escapes them.
        assert_eq!(
            detail_text("{\"a\":\"\u{9b}\u{202e}\"}"),
            "{\n  \"a\": \"\\u{9b}\\u{202e}\"\n}"
        );
    }
}
