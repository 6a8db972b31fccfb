//! The `Condition` element: operators, `...IfExists`, the `ForAnyValue:`/`ForAllValues:` set
//! qualifiers and `Null`, as
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
//! and `reference_policies_condition-single-vs-multi-valued-context-keys.html` describe them.
//! Within a block every key must hold (AND); within a key any value may match (OR).
//! Operator names and condition key names are compared without case. Without a set qualifier
//! a multi-valued key matches when any of its values does (negated operators: when none
//! does).

use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::context::RequestContext;
use super::pattern::{Flavor, Variables, like};

/// One key of a condition block: `"StringLike": {"s3:prefix": ["home/", "home/*"]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    /// As written (`ForAnyValue:StringLikeIfExists`), for reports.
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// What a statement's conditions come to for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Holds,
    Fails,
    /// An operator this engine does not know: the statement does not apply.
    UnknownOperator(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(std::cmp::Ordering, bool),
    Date(std::cmp::Ordering, bool),
    NumericEquals,
    DateEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    set: Set,
    base: Base,
    negated: bool,
    if_exists: bool,
}

fn parse_operator(raw: &str) -> Option<Operator> {
    let lower = raw.to_ascii_lowercase();
    let (set, rest) = if let Some(rest) = lower.strip_prefix("foranyvalue:") {
        (Set::AnyValue, rest)
    } else if let Some(rest) = lower.strip_prefix("forallvalues:") {
        (Set::AllValues, rest)
    } else {
        (Set::Single, lower.as_str())
    };
    let (name, if_exists) = match rest.strip_suffix("ifexists") {
        Some(name) => (name, true),
        None => (rest, false),
    };
    use std::cmp::Ordering::{Greater, Less};
    let (base, negated) = match name {
        "stringequals" => (Base::StringEquals, false),
        "stringnotequals" => (Base::StringEquals, true),
        "stringequalsignorecase" => (Base::StringEqualsIgnoreCase, false),
        "stringnotequalsignorecase" => (Base::StringEqualsIgnoreCase, true),
        "stringlike" => (Base::StringLike, false),
        "stringnotlike" => (Base::StringLike, true),
        "numericequals" => (Base::NumericEquals, false),
        "numericnotequals" => (Base::NumericEquals, true),
        "numericlessthan" => (Base::Numeric(Less, false), false),
        "numericlessthanequals" => (Base::Numeric(Less, true), false),
        "numericgreaterthan" => (Base::Numeric(Greater, false), false),
        "numericgreaterthanequals" => (Base::Numeric(Greater, true), false),
        "dateequals" => (Base::DateEquals, false),
        "datenotequals" => (Base::DateEquals, true),
        "datelessthan" => (Base::Date(Less, false), false),
        "datelessthanequals" => (Base::Date(Less, true), false),
        "dategreaterthan" => (Base::Date(Greater, false), false),
        "dategreaterthanequals" => (Base::Date(Greater, true), false),
        "bool" => (Base::Bool, false),
        "binaryequals" => (Base::BinaryEquals, false),
        "ipaddress" => (Base::IpAddress, false),
        "notipaddress" => (Base::IpAddress, true),
        // IAM: ArnEquals and ArnLike behave alike, both take wildcards.
        "arnequals" | "arnlike" => (Base::Arn, false),
        "arnnotequals" | "arnnotlike" => (Base::Arn, true),
        "null" if !if_exists => (Base::Null, false),
        _ => return None,
    };
    Some(Operator {
        set,
        base,
        negated,
        if_exists,
    })
}

/// Whether every condition of a statement holds for `context`.
pub(crate) fn evaluate(
    conditions: &[Condition],
    context: &RequestContext,
    variables: &Variables<'_>,
) -> Outcome {
    let mut holds = true;
    for condition in conditions {
        let Some(operator) = parse_operator(&condition.operator) else {
            return Outcome::UnknownOperator(condition.operator.clone());
        };
        // Keep looking after a failure: an unknown operator elsewhere still has to be told.
        if holds && !key_holds(operator, condition, context, variables) {
            holds = false;
        }
    }
    if holds {
        Outcome::Holds
    } else {
        Outcome::Fails
    }
}

fn key_holds(
    operator: Operator,
    condition: &Condition,
    context: &RequestContext,
    variables: &Variables<'_>,
) -> bool {
    let present = context
        .key(&condition.key)
        .filter(|values| !values.is_empty());
    if operator.base == Base::Null {
        // "true": the key must be absent; "false": present.
        let want_absent = condition
            .values
            .iter()
            .any(|value| value.eq_ignore_ascii_case("true"));
        return want_absent == present.is_none();
    }
    let Some(request_values) = present else {
        return if operator.if_exists {
            true
        } else {
            match operator.set {
                // "ForAllValues [...] returns true if there are no keys in the request".
                Set::AllValues => true,
                Set::AnyValue => false,
                // A negated operator holds when the key is missing; the others fail.
                Set::Single => operator.negated,
            }
        };
    };
    // Whether one request value matches one of the policy's values (before negation).
    let matches_one = |request_value: &str| {
        condition.values.iter().any(|policy_value| {
            value_matches(operator.base, request_value, policy_value, variables)
        })
    };
    match operator.set {
        Set::Single => {
            let any = request_values.iter().any(|value| matches_one(value));
            any != operator.negated
        }
        Set::AnyValue => request_values
            .iter()
            .any(|value| matches_one(value) != operator.negated),
        Set::AllValues => request_values
            .iter()
            .all(|value| matches_one(value) != operator.negated),
    }
}

/// The policy value with its variables replaced; `None` when one cannot be (then it matches
/// nothing).
fn substituted(policy_value: &str, variables: &Variables<'_>) -> Option<String> {
    match variables {
        Variables::Literal => Some(policy_value.to_owned()),
        Variables::Substitute(_) if !policy_value.contains("${") => Some(policy_value.to_owned()),
        Variables::Substitute(_) => {
            let globs = super::pattern::compile(policy_value, Flavor::Anything, variables)?;
            // Re-escape: after substitution the characters are literal again.
            Some(
                globs
                    .into_iter()
                    .map(|glob| match glob {
                        super::pattern::Glob::Lit(c) => c,
                        super::pattern::Glob::One { .. } => '?',
                        super::pattern::Glob::Star { .. } => '*',
                    })
                    .collect(),
            )
        }
    }
}

fn value_matches(base: Base, request: &str, policy: &str, variables: &Variables<'_>) -> bool {
    match base {
        Base::StringLike => like(policy, request, Flavor::Anything, variables),
        Base::Arn => arn_like(policy, request, variables),
        _ => {
            let Some(policy) = substituted(policy, variables) else {
                return false;
            };
            match base {
                Base::StringEquals => request == policy,
                Base::StringEqualsIgnoreCase => request.to_lowercase() == policy.to_lowercase(),
                Base::BinaryEquals => request == policy,
                Base::Bool => request.eq_ignore_ascii_case(&policy),
                Base::NumericEquals => {
                    compare(number(request), number(&policy)) == Some(std::cmp::Ordering::Equal)
                }
                Base::Numeric(order, or_equal) => compare(number(request), number(&policy))
                    .is_some_and(|found| found == order || (or_equal && found.is_eq())),
                Base::DateEquals => {
                    compare(date(request), date(&policy)) == Some(std::cmp::Ordering::Equal)
                }
                Base::Date(order, or_equal) => compare(date(request), date(&policy))
                    .is_some_and(|found| found == order || (or_equal && found.is_eq())),
                Base::IpAddress => ip_in(request, &policy),
                Base::StringLike | Base::Arn | Base::Null => false,
            }
        }
    }
}

fn compare<T: PartialOrd>(request: Option<T>, policy: Option<T>) -> Option<std::cmp::Ordering> {
    request?.partial_cmp(&policy?)
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// ISO 8601 / RFC 3339 date-times, bare dates, or epoch seconds (`aws:EpochTime`).
fn date(text: &str) -> Option<i128> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(i128::from(seconds) * 1_000_000_000);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339))
        .ok()?;
    Some(parsed.unix_timestamp_nanos())
}

/// Whether address `request` lies in `policy` (`203.0.113.0/24`, `2001:db8::/32` or one
/// address).
fn ip_in(request: &str, policy: &str) -> bool {
    let Ok(address) = request.trim().parse::<IpAddr>() else {
        return false;
    };
    let (network, bits) = match policy.trim().split_once('/') {
        Some((network, bits)) => (network, bits.parse::<u32>().ok()),
        None => (policy.trim(), None),
    };
    let Ok(network) = network.parse::<IpAddr>() else {
        return false;
    };
    let (address, network, width) = match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let bits = bits.unwrap_or(width);
    if bits > width {
        return false;
    }
    let host_bits = width - bits;
    let mask = if host_bits >= 128 {
        0
    } else {
        u128::MAX << host_bits
    };
    address & mask == network & mask
}

/// `ArnLike`: "Each of the six colon-delimited components of the ARN is checked separately
/// and each can include multi-character match wildcards (*) or single-character match
/// wildcards (?)."
fn arn_like(policy: &str, request: &str, variables: &Variables<'_>) -> bool {
    let Some(policy) = substituted(policy, variables) else {
        return false;
    };
    if policy == "*" {
        return true;
    }
    let policy_parts: Vec<&str> = policy.splitn(6, ':').collect();
    let request_parts: Vec<&str> = request.splitn(6, ':').collect();
    policy_parts.len() == 6
        && request_parts.len() == 6
        && policy_parts
            .iter()
            .zip(&request_parts)
            .all(|(policy, request)| like(policy, request, Flavor::Anything, &Variables::Literal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::context::Resource;

    fn context(keys: &[(&str, &[&str])]) -> RequestContext {
        let mut context = RequestContext::new("s3:ListBucket", Resource::arn("arn:aws:s3:::b"));
        for (key, values) in keys {
            context.set_key(key, values.iter().copied());
        }
        context
    }

    fn holds(operator: &str, key: &str, values: &[&str], keys: &[(&str, &[&str])]) -> bool {
        let condition = Condition {
            operator: operator.into(),
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        match evaluate(&[condition], &context(keys), &Variables::Literal) {
            Outcome::Holds => true,
            Outcome::Fails => false,
            Outcome::UnknownOperator(op) => panic!("unknown operator {op}"),
        }
    }

    #[test]
    fn string_operators_compare_as_iam_does() {
        let account: &[(&str, &[&str])] = &[("aws:SourceAccount", &["123456789012"])];
        assert!(holds(
            "StringEquals",
            "aws:SourceAccount",
            &["123456789012"],
            account
        ));
        assert!(
            holds(
                "StringEquals",
                "AWS:sourceaccount",
                &["1", "123456789012"],
                account
            ),
            "key names ignore case, values OR"
        );
        assert!(!holds(
            "StringEquals",
            "aws:SourceAccount",
            &["210987654321"],
            account
        ));
        assert!(holds(
            "StringNotEquals",
            "aws:SourceAccount",
            &["210987654321"],
            account
        ));
        assert!(!holds(
            "StringNotEquals",
            "aws:SourceAccount",
            &["123456789012"],
            account
        ));
        let prefix: &[(&str, &[&str])] = &[("s3:prefix", &["Uploads/cat.jpg"])];
        assert!(holds("StringLike", "s3:prefix", &["Uploads/*"], prefix));
        assert!(
            !holds("StringLike", "s3:prefix", &["uploads/*"], prefix),
            "StringLike keeps case"
        );
        assert!(holds("StringNotLike", "s3:prefix", &["images/*"], prefix));
        assert!(holds(
            "StringEqualsIgnoreCase",
            "s3:prefix",
            &["uploads/CAT.jpg"],
            prefix
        ));
        assert!(!holds(
            "StringNotEqualsIgnoreCase",
            "s3:prefix",
            &["uploads/CAT.jpg"],
            prefix
        ));
    }

    #[test]
    fn a_missing_key_fails_positive_operators_and_passes_negated_ones() {
        assert!(!holds("StringEquals", "aws:SourceAccount", &["1"], &[]));
        assert!(holds("StringNotEquals", "aws:SourceAccount", &["1"], &[]));
        assert!(!holds("ArnLike", "aws:SourceArn", &["arn:aws:s3:::b"], &[]));
        assert!(holds(
            "StringEqualsIfExists",
            "aws:SourceAccount",
            &["1"],
            &[]
        ));
        assert!(!holds(
            "StringEqualsIfExists",
            "aws:SourceAccount",
            &["1"],
            &[("aws:SourceAccount", &["2"])]
        ));
        assert!(holds("Null", "aws:SourceAccount", &["true"], &[]));
        assert!(!holds("Null", "aws:SourceAccount", &["false"], &[]));
        assert!(holds(
            "Null",
            "aws:SourceAccount",
            &["false"],
            &[("aws:SourceAccount", &["2"])]
        ));
    }

    #[test]
    fn set_qualifiers_quantify_over_the_request_values() {
        let tags: &[(&str, &[&str])] = &[("aws:TagKeys", &["hybridlab:stack", "owner"])];
        assert!(holds(
            "ForAllValues:StringEquals",
            "aws:TagKeys",
            &["hybridlab:stack", "owner", "x"],
            tags
        ));
        assert!(!holds(
            "ForAllValues:StringEquals",
            "aws:TagKeys",
            &["hybridlab:stack"],
            tags
        ));
        assert!(
            holds(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                &["anything"],
                &[]
            ),
            "vacuously"
        );
        assert!(holds(
            "ForAnyValue:StringEquals",
            "aws:TagKeys",
            &["owner"],
            tags
        ));
        assert!(!holds(
            "ForAnyValue:StringEquals",
            "aws:TagKeys",
            &["cost"],
            tags
        ));
        assert!(!holds(
            "ForAnyValue:StringEquals",
            "aws:TagKeys",
            &["owner"],
            &[]
        ));
        // Some value is not "owner" / every value is something other than "cost".
        assert!(holds(
            "ForAnyValue:StringNotEquals",
            "aws:TagKeys",
            &["owner"],
            tags
        ));
        assert!(holds(
            "ForAllValues:StringNotEquals",
            "aws:TagKeys",
            &["cost"],
            tags
        ));
        assert!(!holds(
            "ForAllValues:StringNotEquals",
            "aws:TagKeys",
            &["owner"],
            tags
        ));
        assert!(holds(
            "ForAnyValue:StringLikeIfExists",
            "aws:TagKeys",
            &["hybridlab:*"],
            tags
        ));
    }

    #[test]
    fn arns_numbers_dates_booleans_and_addresses() {
        let source: &[(&str, &[&str])] = &[(
            "aws:SourceArn",
            &["arn:aws:s3:::hybridlab-uploads-abcd1234"],
        )];
        assert!(holds(
            "ArnLike",
            "aws:SourceArn",
            &["arn:aws:s3:::hybridlab-uploads-abcd1234"],
            source
        ));
        assert!(holds(
            "ArnEquals",
            "aws:SourceArn",
            &["arn:aws:s3:::hybridlab-uploads-*"],
            source
        ));
        assert!(holds(
            "ArnLike",
            "aws:SourceArn",
            &["arn:aws:s3:*:*:hybridlab-*"],
            source
        ));
        assert!(!holds(
            "ArnLike",
            "aws:SourceArn",
            &["arn:aws:s3:::other"],
            source
        ));
        assert!(holds(
            "ArnNotLike",
            "aws:SourceArn",
            &["arn:aws:s3:::other"],
            source
        ));
        assert!(!holds("ArnLike", "aws:SourceArn", &["not-an-arn"], source));
        // A star does not run across the six segments.
        let function: &[(&str, &[&str])] = &[(
            "lambda:FunctionArn",
            &["arn:aws:lambda:us-east-1:1:function:f"],
        )];
        assert!(!holds(
            "ArnLike",
            "lambda:FunctionArn",
            &["arn:aws:*:function:f"],
            function
        ));

        let keys: &[(&str, &[&str])] = &[("s3:max-keys", &["10"])];
        assert!(holds("NumericLessThanEquals", "s3:max-keys", &["10"], keys));
        assert!(!holds("NumericLessThan", "s3:max-keys", &["10"], keys));
        assert!(holds("NumericGreaterThan", "s3:max-keys", &["9.5"], keys));
        assert!(holds("NumericEquals", "s3:max-keys", &["10.0"], keys));
        assert!(holds("NumericNotEquals", "s3:max-keys", &["11"], keys));
        assert!(!holds("NumericEquals", "s3:max-keys", &["ten"], keys));

        let time: &[(&str, &[&str])] = &[("aws:CurrentTime", &["2026-03-01T12:00:00Z"])];
        assert!(holds(
            "DateGreaterThan",
            "aws:CurrentTime",
            &["2026-01-01T00:00:00Z"],
            time
        ));
        assert!(holds(
            "DateLessThan",
            "aws:CurrentTime",
            &["2027-01-01"],
            time
        ));
        assert!(holds(
            "DateGreaterThanEquals",
            "aws:CurrentTime",
            &["1767225600"],
            time
        ));
        assert!(!holds(
            "DateEquals",
            "aws:CurrentTime",
            &["2026-03-01"],
            time
        ));

        let secure: &[(&str, &[&str])] = &[("aws:SecureTransport", &["false"])];
        assert!(holds("Bool", "aws:SecureTransport", &["false"], secure));
        assert!(!holds("Bool", "aws:SecureTransport", &["true"], secure));

        let ip: &[(&str, &[&str])] = &[("aws:SourceIp", &["203.0.113.7"])];
        assert!(holds("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], ip));
        assert!(holds("IpAddress", "aws:SourceIp", &["203.0.113.7"], ip));
        assert!(holds("IpAddress", "aws:SourceIp", &["0.0.0.0/0"], ip));
        assert!(!holds(
            "IpAddress",
            "aws:SourceIp",
            &["198.51.100.0/24"],
            ip
        ));
        assert!(holds(
            "NotIpAddress",
            "aws:SourceIp",
            &["198.51.100.0/24", "2001:db8::/32"],
            ip
        ));
        let ip6: &[(&str, &[&str])] = &[("aws:SourceIp", &["2001:db8::1"])];
        assert!(holds("IpAddress", "aws:SourceIp", &["2001:db8::/32"], ip6));
        assert!(!holds(
            "IpAddress",
            "aws:SourceIp",
            &["203.0.113.0/24"],
            ip6
        ));
    }

    #[test]
    fn an_unknown_operator_is_reported_not_guessed() {
        let condition = Condition {
            operator: "StringSoundsLike".into(),
            key: "aws:SourceAccount".into(),
            values: vec!["1".into()],
        };
        assert_eq!(
            evaluate(&[condition], &context(&[]), &Variables::Literal),
            Outcome::UnknownOperator("StringSoundsLike".into())
        );
        assert!(parse_operator("NullIfExists").is_none());
        assert!(parse_operator("ForAnyValue:").is_none());
    }
}
