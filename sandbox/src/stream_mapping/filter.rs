//! Lambda's event filtering (`FilterCriteria`), for the records a DynamoDB-stream mapping
//! reads: each filter's `Pattern` is a JSON object whose keys follow the record's and whose
//! leaves are lists of matchers, as AWS documents them
//! (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html). A record
//! passes if any filter matches it; one that matches none is dropped, never sent.

use serde_json::Value;

/// Why a pattern is refused (Lambda answers `InvalidParameterValueException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern definition: {0}")]
pub struct PatternError(String);

/// One filter's pattern, checked when the mapping is created.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(serde_json::Map<String, Value>);

impl Pattern {
    /// Reads the `Pattern` string of a filter.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| PatternError(format!("the pattern is not JSON: {err}")))?;
        let Value::Object(fields) = value else {
            return Err(PatternError("the pattern must be a JSON object".into()));
        };
        check_object(&fields)?;
        Ok(Self(fields))
    }

    /// Whether `record` matches.
    pub fn matches(&self, record: &Value) -> bool {
        object_matches(&self.0, record)
    }
}

/// Whether `record` passes `patterns`: any of them matches, or there are none.
pub fn passes(patterns: &[Pattern], record: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| pattern.matches(record))
}

fn check_object(fields: &serde_json::Map<String, Value>) -> Result<(), PatternError> {
    if fields.is_empty() {
        return Err(PatternError("an empty object matches nothing".into()));
    }
    for (key, value) in fields {
        match value {
            Value::Object(nested) => check_object(nested)?,
            Value::Array(matchers) if !matchers.is_empty() => {
                for matcher in matchers {
                    check_matcher(key, matcher)?;
                }
            }
            _ => {
                return Err(PatternError(format!(
                    "\"{key}\" must be an object or a non-empty list of matchers"
                )));
            }
        }
    }
    Ok(())
}

fn check_matcher(key: &str, matcher: &Value) -> Result<(), PatternError> {
    let Value::Object(operator) = matcher else {
        return Ok(()); // a literal
    };
    let [(name, operand)] = operator.iter().collect::<Vec<_>>()[..] else {
        return Err(PatternError(format!(
            "a matcher of \"{key}\" must have exactly one operator"
        )));
    };
    let ok = match name.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => operand.is_string(),
        "exists" => operand.is_boolean(),
        "anything-but" => true,
        "numeric" => numeric_bounds(operand).is_some(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(PatternError(format!(
            "unrecognised or malformed matcher {{\"{name}\": {operand}}} of \"{key}\""
        )))
    }
}

fn object_matches(pattern: &serde_json::Map<String, Value>, value: &Value) -> bool {
    pattern.iter().all(|(key, expected)| {
        let found = value.get(key);
        match expected {
            Value::Object(nested) => found.is_some_and(|found| object_matches(nested, found)),
            Value::Array(matchers) => matchers.iter().any(|matcher| leaf_matches(matcher, found)),
            _ => false,
        }
    })
}

/// Whether `matcher` accepts `found` (a list accepts if any element does).
fn leaf_matches(matcher: &Value, found: Option<&Value>) -> bool {
    if let Value::Object(operator) = matcher
        && let Some(exists) = operator.get("exists").and_then(Value::as_bool)
    {
        return found.is_some() == exists;
    }
    match found {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|item| one_matches(matcher, item)),
        Some(value) => one_matches(matcher, value),
    }
}

fn one_matches(matcher: &Value, value: &Value) -> bool {
    let Value::Object(operator) = matcher else {
        return matcher == value;
    };
    let Some((name, operand)) = operator.iter().next() else {
        return false;
    };
    let text = value.as_str();
    match name.as_str() {
        "prefix" => text
            .zip(operand.as_str())
            .is_some_and(|(t, p)| t.starts_with(p)),
        "suffix" => text
            .zip(operand.as_str())
            .is_some_and(|(t, s)| t.ends_with(s)),
        "equals-ignore-case" => text
            .zip(operand.as_str())
            .is_some_and(|(t, e)| t.eq_ignore_ascii_case(e)),
        "anything-but" => match operand {
            Value::Array(excluded) => !excluded.contains(value),
            Value::Object(_) => !one_matches(operand, value),
            excluded => excluded != value,
        },
        "numeric" => value
            .as_f64()
            .or_else(|| text.and_then(|t| t.parse().ok()))
            .zip(numeric_bounds(operand))
            .is_some_and(|(number, bounds)| {
                bounds.iter().all(|(op, bound)| compare(number, op, *bound))
            }),
        _ => false,
    }
}

/// `[">", 0, "<=", 5]` as pairs.
fn numeric_bounds(operand: &Value) -> Option<Vec<(String, f64)>> {
    let items = operand.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str()?;
            matches!(op, "=" | "<" | "<=" | ">" | ">=").then_some(())?;
            Some((op.to_owned(), pair[1].as_f64()?))
        })
        .collect()
}

fn compare(number: f64, op: &str, bound: f64) -> bool {
    match op {
        "=" => number == bound,
        "<" => number < bound,
        "<=" => number <= bound,
        ">" => number > bound,
        ">=" => number >= bound,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(event: &str, status: &str, attempts: u64) -> Value {
        json!({
            "eventName": event,
            "dynamodb": {
                "Keys": {"id": {"S": "j-1"}},
                "NewImage": {"status": {"S": status}, "attempts": {"N": attempts.to_string()}, "tags": {"SS": ["a", "b"]}}
            }
        })
    }

    fn pattern(value: Value) -> Pattern {
        Pattern::parse(&value.to_string()).expect("a valid pattern")
    }

    #[test]
    fn inserts_only_as_the_launchers_mapping_filters_them() {
        let inserts = pattern(json!({"eventName": ["INSERT"]}));
        assert!(inserts.matches(&record("INSERT", "SUBMITTED", 0)));
        assert!(!inserts.matches(&record("MODIFY", "SUBMITTED", 0)));
        assert!(passes(&[], &record("REMOVE", "x", 0)));
        assert!(passes(
            &[inserts.clone(), pattern(json!({"eventName": ["REMOVE"]}))],
            &record("REMOVE", "x", 0)
        ));
    }

    #[test]
    fn nested_fields_and_every_operator() {
        let record = record("MODIFY", "QUEUED", 3);
        let matches = |value: Value| pattern(value).matches(&record);
        assert!(matches(
            json!({"dynamodb": {"NewImage": {"status": {"S": ["QUEUED"]}}}})
        ));
        assert!(matches(
            json!({"dynamodb": {"NewImage": {"status": {"S": [{"prefix": "QUE"}]}}}})
        ));
        assert!(matches(
            json!({"dynamodb": {"NewImage": {"status": {"S": [{"suffix": "UED"}]}}}})
        ));
        assert!(matches(
            json!({"dynamodb": {"NewImage": {"status": {"S": [{"equals-ignore-case": "queued"}]}}}})
        ));
        assert!(!matches(
            json!({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["QUEUED", "FAILED"]}]}}}})
        ));
        assert!(matches(
            json!({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": {"prefix": "FAIL"}}]}}}})
        ));
        assert!(matches(
            json!({"dynamodb": {"NewImage": {"attempts": {"N": [{"numeric": [">", 2, "<=", 3]}]}}}})
        ));
        assert!(!matches(
            json!({"dynamodb": {"NewImage": {"attempts": {"N": [{"numeric": ["<", 3]}]}}}})
        ));
        assert!(
            matches(json!({"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}})),
            "a list matches if any element does"
        );
        assert!(matches(
            json!({"dynamodb": {"OldImage": [{"exists": false}]}})
        ));
        assert!(!matches(
            json!({"dynamodb": {"NewImage": [{"exists": false}]}})
        ));
        assert!(
            !matches(json!({"dynamodb": {"OldImage": {"status": {"S": ["QUEUED"]}}}})),
            "a missing field matches nothing but exists:false"
        );
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "not json",
            "[\"INSERT\"]",
            "{}",
            r#"{"eventName": "INSERT"}"#,
            r#"{"eventName": []}"#,
            r#"{"eventName": [{"wildcard": "I*"}]}"#,
            r#"{"n": [{"numeric": [">"]}]}"#,
            r#"{"n": [{"prefix": "a", "suffix": "b"}]}"#,
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
