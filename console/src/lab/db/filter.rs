//! `--filter NAME=VALUE` for `db scan`: parsing what was typed, and the FilterExpression the
//! filters make together. Names go through ExpressionAttributeNames and values through
//! ExpressionAttributeValues, so reserved words (`status` is one) and any characters are safe.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// One `NAME=VALUE`: the top-level attribute NAME holds the string VALUE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeFilter {
    pub name: String,
    pub value: String,
}

/// Parses `NAME=VALUE` (split at the first `=`, so the value may hold more).
pub fn parse_filter(text: &str) -> Result<AttributeFilter, String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not NAME=VALUE (e.g. --filter status=FAILED)"
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "`{text}` has no attribute name before `=` (e.g. --filter status=FAILED)"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '.' | '[' | ']'))
    {
        return Err(format!(
            "`{name}`: only top-level attribute names (like status or format) can be filtered"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "`{text}` has no value after `=` (e.g. --filter status=FAILED)"
        ));
    }
    Ok(AttributeFilter {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// A Scan's FilterExpression with its placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterExpression {
    pub expression: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

/// Every filter ANDed: `#f0 = :v0 AND #f1 = :v1`; `None` without filters.
pub fn filter_expression(filters: &[AttributeFilter]) -> Option<FilterExpression> {
    if filters.is_empty() {
        return None;
    }
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut clauses = Vec::new();
    for (index, filter) in filters.iter().enumerate() {
        let name = format!("#f{index}");
        let value = format!(":v{index}");
        clauses.push(format!("{name} = {value}"));
        names.insert(name, filter.name.clone());
        values.insert(value, AttributeValue::S(filter.value.clone()));
    }
    Some(FilterExpression {
        expression: clauses.join(" AND "),
        names,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_at_the_first_equals_sign() {
        assert_eq!(
            parse_filter("status=FAILED"),
            Ok(AttributeFilter {
                name: "status".into(),
                value: "FAILED".into()
            })
        );
        assert_eq!(
            parse_filter("source_url=http://h/a?b=c").map(|f| f.value),
            Ok("http://h/a?b=c".to_owned())
        );
    }

    #[test]
    fn malformed_filters_say_what_is_wrong() {
        for (bad, says) in [
            ("status", "is not NAME=VALUE"),
            ("=FAILED", "no attribute name"),
            ("status=", "no value"),
            ("keys.original=x", "top-level"),
            ("my status=x", "top-level"),
        ] {
            let err = parse_filter(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn filters_are_anded_through_placeholders() {
        assert_eq!(filter_expression(&[]), None);
        let filters = [
            parse_filter("status=FAILED").expect("valid"),
            parse_filter("format=png").expect("valid"),
        ];
        let expression = filter_expression(&filters).expect("an expression");
        assert_eq!(expression.expression, "#f0 = :v0 AND #f1 = :v1");
        assert_eq!(expression.names["#f0"], "status");
        assert_eq!(expression.names["#f1"], "format");
        assert_eq!(expression.values[":v0"], AttributeValue::S("FAILED".into()));
        assert_eq!(expression.values[":v1"], AttributeValue::S("png".into()));
    }
}
