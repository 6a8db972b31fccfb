//! DynamoDB's typed JSON (`{"size_bytes": {"N": "1234"}}`, as the AWS CLI and the low-level
//! API write it) to and from the SDK's `AttributeValue`, both ways and losslessly: numbers
//! keep their exact decimal text, binaries are base64, sets stay sets. Also a plain view for
//! people, which gives up that exactness for readability. Pure functions, no I/O.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

/// An item as the SDK takes and returns it.
pub type Item = HashMap<String, AttributeValue>;

/// Why a value does not convert. `path` says where in the item (`keys.original`, `tags[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedJsonError {
    #[error(
        "{path}: expected an object with one type key (S, N, B, BOOL, NULL, M, L, SS, NS, BS), found {found}"
    )]
    NotTyped { path: String, found: String },
    #[error("{path}: `{tag}` is not a DynamoDB type (S, N, B, BOOL, NULL, M, L, SS, NS, BS)")]
    UnknownType { path: String, tag: String },
    #[error("{path}: `{tag}` must hold {expected}")]
    WrongPayload {
        path: String,
        tag: &'static str,
        expected: &'static str,
    },
    #[error("{path}: `{text}` is not base64")]
    NotBase64 { path: String, text: String },
    #[error("{path}: an attribute type this version of hybridlab does not know")]
    Unsupported { path: String },
}

/// One attribute value as typed JSON.
pub fn to_typed_json(value: &AttributeValue) -> Result<Value, TypedJsonError> {
    value_to_json(value, "")
}

/// An item as a typed JSON object, attributes by name.
pub fn item_to_typed_json(item: &Item) -> Result<Value, TypedJsonError> {
    map_to_json(item, "").map(Value::Object)
}

/// One attribute value from typed JSON.
pub fn from_typed_json(json: &Value) -> Result<AttributeValue, TypedJsonError> {
    value_from_json(json, "")
}

/// An item from a typed JSON object.
pub fn item_from_typed_json(json: &Value) -> Result<Item, TypedJsonError> {
    match json {
        Value::Object(map) => map_from_json(map, ""),
        other => Err(TypedJsonError::NotTyped {
            path: "item".into(),
            found: describe(other),
        }),
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn element(path: &str, index: usize) -> String {
    format!("{}[{index}]", if path.is_empty() { "value" } else { path })
}

fn map_to_json(map: &Item, path: &str) -> Result<Map<String, Value>, TypedJsonError> {
    map.iter()
        .map(|(name, value)| Ok((name.clone(), value_to_json(value, &child(path, name))?)))
        .collect()
}

fn value_to_json(value: &AttributeValue, path: &str) -> Result<Value, TypedJsonError> {
    let strings =
        |items: &[String]| Value::Array(items.iter().cloned().map(Value::String).collect());
    let binary = |blob: &Blob| Value::String(BASE64.encode(blob.as_ref()));
    let (tag, payload) = match value {
        AttributeValue::S(text) => ("S", Value::String(text.clone())),
        AttributeValue::N(number) => ("N", Value::String(number.clone())),
        AttributeValue::B(blob) => ("B", binary(blob)),
        AttributeValue::Bool(flag) => ("BOOL", Value::Bool(*flag)),
        AttributeValue::Null(flag) => ("NULL", Value::Bool(*flag)),
        AttributeValue::M(map) => ("M", Value::Object(map_to_json(map, path)?)),
        AttributeValue::L(list) => (
            "L",
            Value::Array(
                list.iter()
                    .enumerate()
                    .map(|(index, value)| value_to_json(value, &element(path, index)))
                    .collect::<Result<_, _>>()?,
            ),
        ),
        AttributeValue::Ss(items) => ("SS", strings(items)),
        AttributeValue::Ns(items) => ("NS", strings(items)),
        AttributeValue::Bs(items) => ("BS", Value::Array(items.iter().map(binary).collect())),
        _ => {
            return Err(TypedJsonError::Unsupported {
                path: path.to_owned(),
            });
        }
    };
    let mut typed = Map::new();
    typed.insert(tag.to_owned(), payload);
    Ok(Value::Object(typed))
}

fn map_from_json(map: &Map<String, Value>, path: &str) -> Result<Item, TypedJsonError> {
    map.iter()
        .map(|(name, value)| Ok((name.clone(), value_from_json(value, &child(path, name))?)))
        .collect()
}

fn value_from_json(json: &Value, path: &str) -> Result<AttributeValue, TypedJsonError> {
    let here = || {
        if path.is_empty() {
            "value".to_owned()
        } else {
            path.to_owned()
        }
    };
    let (tag, payload) = match json {
        Value::Object(typed) if typed.len() == 1 => {
            typed
                .iter()
                .next()
                .ok_or_else(|| TypedJsonError::NotTyped {
                    path: here(),
                    found: describe(json),
                })?
        }
        other => {
            return Err(TypedJsonError::NotTyped {
                path: here(),
                found: describe(other),
            });
        }
    };
    let wrong = |tag: &'static str, expected: &'static str| TypedJsonError::WrongPayload {
        path: here(),
        tag,
        expected,
    };
    let decode = |text: &str| {
        BASE64
            .decode(text)
            .map(Blob::new)
            .map_err(|_| TypedJsonError::NotBase64 {
                path: here(),
                text: text.to_owned(),
            })
    };
    let string_list = |tag: &'static str, expected: &'static str| -> Result<Vec<String>, _> {
        let Value::Array(items) = payload else {
            return Err(wrong(tag, expected));
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong(tag, expected))
            })
            .collect()
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(
            payload
                .as_str()
                .ok_or_else(|| wrong("S", "a string"))?
                .to_owned(),
        ),
        // A number travels as its decimal text, so no digit is lost to a float.
        "N" => AttributeValue::N(
            payload
                .as_str()
                .ok_or_else(|| wrong("N", "the number as a string, e.g. \"1234\""))?
                .to_owned(),
        ),
        "B" => AttributeValue::B(decode(
            payload
                .as_str()
                .ok_or_else(|| wrong("B", "a base64 string"))?,
        )?),
        "BOOL" => AttributeValue::Bool(
            payload
                .as_bool()
                .ok_or_else(|| wrong("BOOL", "true or false"))?,
        ),
        "NULL" => AttributeValue::Null(payload.as_bool().ok_or_else(|| wrong("NULL", "true"))?),
        "M" => match payload {
            Value::Object(map) => AttributeValue::M(map_from_json(map, path)?),
            _ => return Err(wrong("M", "an object of typed values")),
        },
        "L" => match payload {
            Value::Array(list) => AttributeValue::L(
                list.iter()
                    .enumerate()
                    .map(|(index, value)| value_from_json(value, &element(path, index)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(wrong("L", "an array of typed values")),
        },
        "SS" => AttributeValue::Ss(string_list("SS", "an array of strings")?),
        "NS" => AttributeValue::Ns(string_list("NS", "an array of numbers as strings")?),
        "BS" => AttributeValue::Bs(
            string_list("BS", "an array of base64 strings")?
                .iter()
                .map(|text| decode(text))
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(TypedJsonError::UnknownType {
                path: here(),
                tag: other.to_owned(),
            });
        }
    })
}

/// What a JSON value is, for error messages.
fn describe(json: &Value) -> String {
    match json {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(map) if map.is_empty() => "an empty object".into(),
        Value::Object(map) => format!(
            "an object with keys {}",
            map.keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// An item as plain JSON for people: strings, numbers, arrays and objects without type tags.
/// Lossy on purpose: a number becomes a JSON number only when that keeps its exact text, a
/// set becomes an array, a binary its base64. `--json` output uses the typed form instead.
pub fn item_to_plain_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), to_plain_json(value)))
            .collect(),
    )
}

/// One value as plain JSON; see [`item_to_plain_json`].
pub fn to_plain_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(number) => plain_number(number),
        AttributeValue::B(blob) => Value::String(BASE64.encode(blob.as_ref())),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::M(map) => item_to_plain_json(map),
        AttributeValue::L(list) => Value::Array(list.iter().map(to_plain_json).collect()),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        AttributeValue::Ns(items) => Value::Array(items.iter().map(|n| plain_number(n)).collect()),
        AttributeValue::Bs(items) => Value::Array(
            items
                .iter()
                .map(|blob| Value::String(BASE64.encode(blob.as_ref())))
                .collect(),
        ),
        _ => Value::String("<an attribute type this version does not know>".into()),
    }
}

/// A JSON number when it prints back as the same text, else the text itself (38-digit
/// DynamoDB numbers do not fit an f64).
fn plain_number(text: &str) -> Value {
    match serde_json::from_str::<serde_json::Number>(text) {
        Ok(number) if number.to_string() == text => Value::Number(number),
        _ => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blob(bytes: &[u8]) -> Blob {
        Blob::new(bytes.to_vec())
    }

    /// One attribute of every type, some nested, with the values that break naive mappings:
    /// a 38-digit number, a tiny exponent, bytes that are not UTF-8, an empty string.
    fn every_type() -> Item {
        let nested = HashMap::from([
            (
                "deep".to_owned(),
                AttributeValue::Ns(vec!["1".into(), "2.50".into()]),
            ),
            ("flag".to_owned(), AttributeValue::Bool(false)),
        ]);
        HashMap::from([
            ("s".into(), AttributeValue::S("héllo \"quoted\"".into())),
            ("empty".into(), AttributeValue::S(String::new())),
            (
                "n".into(),
                AttributeValue::N("12345678901234567890123456789012345678".into()),
            ),
            ("n_small".into(), AttributeValue::N("-1.5E-130".into())),
            ("n_trailing".into(), AttributeValue::N("1.10".into())),
            (
                "b".into(),
                AttributeValue::B(blob(&[0, 159, 146, 150, 255])),
            ),
            ("bool".into(), AttributeValue::Bool(true)),
            ("null".into(), AttributeValue::Null(true)),
            ("m".into(), AttributeValue::M(nested.clone())),
            (
                "l".into(),
                AttributeValue::L(vec![
                    AttributeValue::S("a".into()),
                    AttributeValue::N("1".into()),
                    AttributeValue::M(nested),
                    AttributeValue::L(vec![AttributeValue::Null(true)]),
                ]),
            ),
            (
                "ss".into(),
                AttributeValue::Ss(vec!["x".into(), "y".into()]),
            ),
            (
                "ns".into(),
                AttributeValue::Ns(vec!["3".into(), "0.001".into()]),
            ),
            (
                "bs".into(),
                AttributeValue::Bs(vec![blob(b"\x01\x02"), blob(b"")]),
            ),
        ])
    }

    #[test]
    fn every_type_round_trips_through_typed_json() {
        let item = every_type();
        let json = item_to_typed_json(&item).expect("every type converts");
        let text = serde_json::to_string(&json).expect("serialises");
        let parsed: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(item_from_typed_json(&parsed), Ok(item));
    }

    #[test]
    fn typed_json_looks_like_dynamodbs_own() {
        let item = every_type();
        let json = item_to_typed_json(&item).expect("converts");
        assert_eq!(
            json["n"],
            json!({"N": "12345678901234567890123456789012345678"})
        );
        assert_eq!(json["n_trailing"], json!({"N": "1.10"}));
        assert_eq!(json["b"], json!({"B": "AJ+Slv8="}));
        assert_eq!(json["null"], json!({"NULL": true}));
        assert_eq!(json["bool"], json!({"BOOL": true}));
        assert_eq!(json["ss"], json!({"SS": ["x", "y"]}));
        assert_eq!(json["bs"], json!({"BS": ["AQI=", ""]}));
        assert_eq!(json["m"]["M"]["deep"], json!({"NS": ["1", "2.50"]}));
        assert_eq!(json["l"]["L"][3], json!({"L": [{"NULL": true}]}));
    }

    #[test]
    fn each_type_alone_round_trips() {
        for (name, value) in every_type() {
            let json = to_typed_json(&value).expect("converts");
            assert_eq!(from_typed_json(&json), Ok(value), "{name}: {json}");
        }
    }

    #[test]
    fn malformed_typed_json_is_refused_with_its_place() {
        let cases = [
            (
                json!({"a": "bare"}),
                "a: expected an object with one type key",
            ),
            (json!({"a": {"S": "x", "N": "1"}}), "a: expected an object"),
            (json!({"a": {"X": 1}}), "a: `X` is not a DynamoDB type"),
            (
                json!({"a": {"N": 12}}),
                "a: `N` must hold the number as a string",
            ),
            (json!({"a": {"B": "***"}}), "a: `***` is not base64"),
            (
                json!({"a": {"M": {"b": {"L": [{"S": 1}]}}}}),
                "a.b[0]: `S` must hold a string",
            ),
            (
                json!({"a": {"SS": ["x", 2]}}),
                "a: `SS` must hold an array of strings",
            ),
            (
                json!({"a": {"BOOL": "yes"}}),
                "a: `BOOL` must hold true or false",
            ),
        ];
        for (json, expected) in cases {
            let err = item_from_typed_json(&json).expect_err(&json.to_string());
            assert!(err.to_string().starts_with(expected), "{err} for {json}");
        }
        assert!(item_from_typed_json(&json!([1])).is_err());
    }

    #[test]
    fn plain_json_keeps_numbers_only_when_exact() {
        let plain = item_to_plain_json(&every_type());
        assert_eq!(plain["n_trailing"], json!("1.10"));
        assert_eq!(plain["n"], json!("12345678901234567890123456789012345678"));
        assert_eq!(plain["ns"], json!([3, 0.001]));
        assert_eq!(plain["null"], Value::Null);
        assert_eq!(plain["m"]["deep"], json!([1, "2.50"]));
        assert_eq!(plain["s"], json!("héllo \"quoted\""));
    }
}
