//! JSON as a log line wrote it. serde_json's `Value` keeps one of two keys of the same name,
//! and tracing's JSON format writes such pairs: a field called `message` beside the event's
//! message (`{"message":"request failed","error":"download_failed","message":"the image host
//! answered HTTP 404"}`), or a span field called `name` beside the span's name. So a line is
//! read into [`JsonText`], whose objects keep every key in the order written, and printed back
//! from it for the console's detail pane.

use std::fmt::{self, Write as _};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep their keys in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonText {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<JsonText>),
    Object(Vec<(String, JsonText)>),
}

impl JsonText {
    /// `text` as one JSON value (whitespace around it allowed), or `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The members of an object, in order; `None` for anything else.
    pub fn members(&self) -> Option<&[(String, JsonText)]> {
        match self {
            Self::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The value of the first `key` of an object.
    pub fn get(&self, key: &str) -> Option<&JsonText> {
        self.members()?
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// On one line, as serde_json writes it.
    pub fn compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None, 0);
        out
    }

    /// Indented by two spaces, as `serde_json::to_string_pretty` writes it.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some("  "), 0);
        out
    }

    fn write(&self, out: &mut String, indent: Option<&str>, depth: usize) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(value) => {
                let _ = write!(out, "{value}");
            }
            Self::Number(number) => {
                let _ = write!(out, "{number}");
            }
            Self::String(text) => write_string(out, text),
            Self::Array(items) => {
                write_list(out, '[', ']', items, indent, depth, |out, item| {
                    item.write(out, indent, depth + 1);
                });
            }
            Self::Object(members) => {
                write_list(
                    out,
                    '{',
                    '}',
                    members,
                    indent,
                    depth,
                    |out, (key, value)| {
                        write_string(out, key);
                        out.push_str(if indent.is_some() { ": " } else { ":" });
                        value.write(out, indent, depth + 1);
                    },
                );
            }
        }
    }
}

fn write_list<T>(
    out: &mut String,
    open: char,
    close: char,
    items: &[T],
    indent: Option<&str>,
    depth: usize,
    mut item: impl FnMut(&mut String, &T),
) {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return;
    }
    for (at, value) in items.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        if let Some(indent) = indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth + 1));
        }
        item(out, value);
    }
    if let Some(indent) = indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
    out.push(close);
}

/// `text` as a JSON string: quoted, with `"`, `\` and the control characters escaped.
fn write_string(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        // Serialising a `str` cannot fail; this keeps the output well-formed regardless.
        Err(_) => out.push_str("\"\""),
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonTextVisitor)
    }
}

struct JsonTextVisitor;

impl<'de> Visitor<'de> for JsonTextVisitor {
    type Value = JsonText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<JsonText, E> {
        Ok(JsonText::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<JsonText, E> {
        Ok(JsonText::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<JsonText, E> {
        Ok(JsonText::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<JsonText, E> {
        Ok(JsonText::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<JsonText, E> {
        // JSON has no NaN or infinity, so a parsed float always converts.
        Ok(serde_json::Number::from_f64(value).map_or(JsonText::Null, JsonText::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<JsonText, E> {
        Ok(JsonText::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<JsonText, E> {
        Ok(JsonText::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonText, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonText::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonText, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, JsonText>()? {
            members.push(member);
        }
        Ok(JsonText::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of the image server, as shipped to its log group by the sandbox.
    const REQUEST_FAILED: &str = r#"{"timestamp":"2026-12-06T17:10:30.624598Z","level":"WARN","fields":{"message":"request failed","error":"download_failed","message":"the image host answered HTTP 404"},"target":"hybridlab_ec2_server","span":{"request_id":"346ed171-5731-4a18-9aba-e3cefadc55f4","name":"process_image"}}"#;

    #[test]
    fn duplicate_keys_are_kept_in_order_and_the_line_prints_back_as_written() {
        let line = JsonText::parse(REQUEST_FAILED).expect("JSON");
        let fields = line
            .get("fields")
            .and_then(JsonText::members)
            .expect("fields");
        let keys: Vec<&str> = fields.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["message", "error", "message"]);
        assert_eq!(
            line.get("fields")
                .and_then(|f| f.get("message"))
                .and_then(JsonText::as_str),
            Some("request failed"),
            "the first of two keys"
        );
        assert_eq!(line.compact(), REQUEST_FAILED);
    }

    #[test]
    fn pretty_printing_is_serde_jsons_where_keys_are_unique() {
        let text = r#"{"a":[1,2.5,-3,{"b":null}],"c":{},"d":[],"e":"x\ny\u001b","f":true,"g":156.70636800000003}"#;
        let ours = JsonText::parse(text).expect("JSON").pretty();
        let theirs: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let theirs = serde_json::to_string_pretty(&theirs).expect("prints");
        assert_eq!(ours, theirs);
        assert!(
            ours.contains(r#""x\ny\u001b""#),
            "escapes stay escaped: {ours}"
        );
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        for text in [
            "",
            "START RequestId: x",
            r#"{"level":"INFO","fields":{"message":"cut"#,
            r#"{"a":1} {"b":2}"#,
            "{'a': 1}",
        ] {
            assert_eq!(JsonText::parse(text), None, "{text}");
        }
        assert_eq!(JsonText::parse(" 7 "), Some(JsonText::Number(7.into())));
    }
}
