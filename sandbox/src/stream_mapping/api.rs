//! The event source mapping as Lambda's API reads and answers it
//! (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html), for
//! DynamoDB-stream sources: the settings a `CreateEventSourceMapping` or
//! `UpdateEventSourceMapping` body gives, checked as Lambda checks them, and the
//! `EventSourceMappingConfiguration` every call answers with.

use std::time::Duration;

use serde_json::{Value, json};

use super::delivery::RetryPolicy;
use super::filter::Pattern;
use crate::iam::lambda_function_arn;

/// Why Lambda refuses a mapping's settings (`InvalidParameterValueException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Where a mapping starts reading a stream it has no checkpoint in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

impl StartingPosition {
    pub fn as_str(self) -> &'static str {
        match self {
            StartingPosition::TrimHorizon => "TRIM_HORIZON",
            StartingPosition::Latest => "LATEST",
        }
    }
}

/// A mapping's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub stream_arn: String,
    /// The function's ARN.
    pub function_arn: String,
    pub enabled: bool,
    pub batch_size: u32,
    pub batching_window: Duration,
    pub starting_position: StartingPosition,
    /// The filters' `Pattern` strings, as given, and parsed.
    pub filters: Vec<(String, Pattern)>,
    pub retry: RetryPolicy,
    /// `DestinationConfig.OnFailure.Destination`: an SQS queue's ARN.
    pub on_failure: Option<String>,
    pub parallelization_factor: u32,
}

/// Whether `arn` is a DynamoDB stream's (`arn:aws:dynamodb:REGION:ACCOUNT:table/T/stream/LABEL`).
pub fn is_dynamodb_stream(arn: &str) -> bool {
    arn.starts_with("arn:aws:dynamodb:") && arn.contains(":table/") && arn.contains("/stream/")
}

fn int_in(
    body: &Value,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Invalid> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let number = value
                .as_i64()
                .ok_or_else(|| Invalid(format!("{key} must be an integer")))?;
            if range.contains(&number) {
                Ok(Some(number))
            } else {
                Err(Invalid(format!(
                    "1 validation error detected: Value '{number}' at '{}' failed to satisfy constraint: Member must have value between {} and {}",
                    lower_first(key),
                    range.start(),
                    range.end()
                )))
            }
        }
    }
}

fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn filters(body: &Value) -> Result<Option<Vec<(String, Pattern)>>, Invalid> {
    let Some(criteria) = body.get("FilterCriteria").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let list = criteria["Filters"].as_array().cloned().unwrap_or_default();
    if list.len() > 5 {
        return Err(Invalid("FilterCriteria takes at most 5 filters".into()));
    }
    list.iter()
        .map(|filter| {
            let text = filter["Pattern"]
                .as_str()
                .ok_or_else(|| Invalid("each filter needs a Pattern string".into()))?;
            let pattern = Pattern::parse(text).map_err(|err| Invalid(err.to_string()))?;
            Ok((text.to_owned(), pattern))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn on_failure(body: &Value) -> Result<Option<Option<String>>, Invalid> {
    let Some(config) = body.get("DestinationConfig").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    match config["OnFailure"]["Destination"].as_str() {
        None | Some("") => Ok(Some(None)),
        Some(arn) if arn.starts_with("arn:aws:sqs:") => Ok(Some(Some(arn.to_owned()))),
        Some(arn) => Err(Invalid(format!(
            "The destination ARN {arn} is invalid: hybridlab's sandbox sends a stream mapping's failures to an SQS queue only"
        ))),
    }
}

fn retry_fields(body: &Value, retry: &mut RetryPolicy) -> Result<(), Invalid> {
    if let Some(max) = int_in(body, "MaximumRetryAttempts", -1..=10_000)? {
        retry.max_retries = u32::try_from(max).ok();
    }
    if let Some(age) = int_in(body, "MaximumRecordAgeInSeconds", -1..=604_800)? {
        if (0..60).contains(&age) {
            return Err(Invalid(
                "MaximumRecordAgeInSeconds must be -1 or between 60 and 604800".into(),
            ));
        }
        retry.max_record_age = u64::try_from(age).ok().map(Duration::from_secs);
    }
    if let Some(bisect) = body
        .get("BisectBatchOnFunctionError")
        .and_then(Value::as_bool)
    {
        retry.bisect = bisect;
    }
    if let Some(types) = body.get("FunctionResponseTypes").and_then(Value::as_array) {
        retry.report_item_failures = types.iter().any(|t| t == "ReportBatchItemFailures");
        if let Some(other) = types.iter().find(|t| *t != "ReportBatchItemFailures") {
            return Err(Invalid(format!(
                "FunctionResponseTypes: {other} is not a response type"
            )));
        }
    }
    Ok(())
}

impl Settings {
    /// A `CreateEventSourceMapping` body's settings, with Lambda's defaults.
    pub fn create(body: &Value, region: &str, account: &str) -> Result<Self, Invalid> {
        let stream_arn = body["EventSourceArn"]
            .as_str()
            .filter(|arn| is_dynamodb_stream(arn))
            .ok_or_else(|| Invalid("EventSourceArn must be a DynamoDB stream's ARN".into()))?
            .to_owned();
        let function = body["FunctionName"]
            .as_str()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Invalid("FunctionName is required".into()))?;
        let starting_position = match body["StartingPosition"].as_str() {
            Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
            Some("LATEST") => StartingPosition::Latest,
            Some(other) => {
                return Err(Invalid(format!(
                    "Unsupported starting position for DynamoDB streams: {other}"
                )));
            }
            None => {
                return Err(Invalid(
                    "StartingPosition is required for a DynamoDB stream".into(),
                ));
            }
        };
        let mut settings = Self {
            stream_arn,
            function_arn: lambda_function_arn(function, region, account),
            enabled: body["Enabled"].as_bool().unwrap_or(true),
            batch_size: 100,
            batching_window: Duration::ZERO,
            starting_position,
            filters: Vec::new(),
            retry: RetryPolicy {
                max_retries: None,
                max_record_age: None,
                bisect: false,
                report_item_failures: false,
            },
            on_failure: None,
            parallelization_factor: 1,
        };
        settings.apply(body, region, account)?;
        Ok(settings)
    }

    /// Applies the fields an `UpdateEventSourceMapping` body gives (and a create's).
    pub fn apply(&mut self, body: &Value, region: &str, account: &str) -> Result<(), Invalid> {
        if let Some(function) = body.get("FunctionName").and_then(Value::as_str) {
            self.function_arn = lambda_function_arn(function, region, account);
        }
        if let Some(enabled) = body.get("Enabled").and_then(Value::as_bool) {
            self.enabled = enabled;
        }
        if let Some(size) = int_in(body, "BatchSize", 1..=10_000)? {
            self.batch_size = u32::try_from(size).unwrap_or(100);
        }
        if let Some(window) = int_in(body, "MaximumBatchingWindowInSeconds", 0..=300)? {
            self.batching_window = Duration::from_secs(u64::try_from(window).unwrap_or(0));
        }
        if let Some(factor) = int_in(body, "ParallelizationFactor", 1..=10)? {
            self.parallelization_factor = u32::try_from(factor).unwrap_or(1);
        }
        if let Some(filters) = filters(body)? {
            self.filters = filters;
        }
        if let Some(destination) = on_failure(body)? {
            self.on_failure = destination;
        }
        retry_fields(body, &mut self.retry)
    }

    pub fn patterns(&self) -> Vec<Pattern> {
        self.filters
            .iter()
            .map(|(_, pattern)| pattern.clone())
            .collect()
    }
}

/// A mapping's ARN, in its function's region and account.
pub fn mapping_arn(function_arn: &str, uuid: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:event-source-mapping:{uuid}",
        function_arn.split(':').nth(3).unwrap_or_default(),
        function_arn.split(':').nth(4).unwrap_or_default(),
    )
}

/// The UUID in an event source mapping's ARN, if `arn` is one.
pub fn uuid_of_mapping_arn(arn: &str) -> Option<&str> {
    let (prefix, uuid) = arn.rsplit_once(":event-source-mapping:")?;
    (prefix.starts_with("arn:") && prefix.contains(":lambda:") && !uuid.is_empty()).then_some(uuid)
}

/// A request's `Tags` (a map of strings), as Lambda takes them: at most 50, keys of 1 to 128
/// characters and values of at most 256, none starting with `aws:`.
pub fn tags(body: &Value) -> Result<crate::resource_tags::Tags, Invalid> {
    let Some(given) = body.get("Tags") else {
        return Ok(Default::default());
    };
    let map = given
        .as_object()
        .ok_or_else(|| Invalid("Tags must be a map of strings".into()))?;
    if map.len() > 50 {
        return Err(Invalid("Tags: at most 50 tags".into()));
    }
    map.iter()
        .map(|(key, value)| {
            let value = value
                .as_str()
                .ok_or_else(|| Invalid(format!("Tags: the value of {key} is not a string")))?;
            if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                return Err(Invalid(format!("Tags: {key} is not a valid tag")));
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return Err(Invalid(format!(
                    "Tags: the prefix aws: is reserved ({key})"
                )));
            }
            Ok((key.clone(), value.to_owned()))
        })
        .collect()
}

/// What Lambda answers for a mapping (`EventSourceMappingConfiguration`).
pub fn configuration(
    uuid: &str,
    settings: &Settings,
    state: &str,
    last_processing_result: &str,
    last_modified: f64,
) -> Value {
    let mut answer = json!({
        "UUID": uuid,
        "StartingPosition": settings.starting_position.as_str(),
        "BatchSize": settings.batch_size,
        "MaximumBatchingWindowInSeconds": settings.batching_window.as_secs(),
        "ParallelizationFactor": settings.parallelization_factor,
        "EventSourceArn": settings.stream_arn,
        "FunctionArn": settings.function_arn,
        "LastModified": last_modified,
        "LastProcessingResult": last_processing_result,
        "State": state,
        "StateTransitionReason": "User action",
        "DestinationConfig": {"OnFailure": match &settings.on_failure {
            Some(arn) => json!({"Destination": arn}),
            None => json!({}),
        }},
        "MaximumRecordAgeInSeconds": settings.retry.max_record_age.map_or(-1, |age| age.as_secs() as i64),
        "BisectBatchOnFunctionError": settings.retry.bisect,
        "MaximumRetryAttempts": settings.retry.max_retries.map_or(-1, i64::from),
        "TumblingWindowInSeconds": 0,
        "FunctionResponseTypes": if settings.retry.report_item_failures {
            json!(["ReportBatchItemFailures"])
        } else {
            json!([])
        },
        "EventSourceMappingArn": mapping_arn(&settings.function_arn, uuid),
    });
    if !settings.filters.is_empty() {
        answer["FilterCriteria"] = json!({"Filters": settings
            .filters
            .iter()
            .map(|(text, _)| json!({"Pattern": text}))
            .collect::<Vec<_>>()});
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_arns_and_tags_are_read_as_lambda_reads_them() {
        let arn = mapping_arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:launcher",
            "u-1",
        );
        assert_eq!(
            arn,
            "arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:u-1"
        );
        assert_eq!(uuid_of_mapping_arn(&arn), Some("u-1"));
        assert_eq!(
            uuid_of_mapping_arn("arn:aws:lambda:eu-west-1:123456789012:function:f"),
            None
        );
        let given = tags(&json!({"Tags": {"hybridlab:stack": "abcd1234"}})).expect("valid");
        assert_eq!(given["hybridlab:stack"], "abcd1234");
        assert!(tags(&json!({})).expect("none").is_empty());
        assert!(tags(&json!({"Tags": {"aws:x": "y"}})).is_err());
        assert!(tags(&json!({"Tags": {"k": 1}})).is_err());
        assert!(tags(&json!({"Tags": ["k"]})).is_err());
    }

    const STREAM: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/2026-12-06T08:30:33.149398";

    #[test]
    fn a_create_gets_lambdas_defaults_and_answers_in_its_shape() {
        let body = json!({
            "EventSourceArn": STREAM,
            "FunctionName": "launcher",
            "StartingPosition": "TRIM_HORIZON",
            "FilterCriteria": {"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"]}"}]},
        });
        let settings = Settings::create(&body, "us-east-1", "123456789012").expect("valid");
        assert_eq!(
            settings.function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:launcher"
        );
        assert_eq!(settings.batch_size, 100);
        assert_eq!(settings.retry.max_retries, None);
        let answer = configuration("u-1", &settings, "Creating", "No records processed", 1.0);
        assert_eq!(answer["MaximumRetryAttempts"], -1);
        assert_eq!(answer["MaximumRecordAgeInSeconds"], -1);
        assert_eq!(answer["StartingPosition"], "TRIM_HORIZON");
        assert_eq!(
            answer["FilterCriteria"]["Filters"][0]["Pattern"],
            "{\"eventName\": [\"INSERT\"]}"
        );
        assert_eq!(
            answer["EventSourceMappingArn"],
            "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:u-1"
        );
    }

    #[test]
    fn settings_out_of_lambdas_ranges_are_refused() {
        let base =
            json!({"EventSourceArn": STREAM, "FunctionName": "f", "StartingPosition": "LATEST"});
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            body[key] = value;
            Settings::create(&body, "us-east-1", "123456789012")
        };
        assert!(with("BatchSize", json!(0)).is_err());
        assert!(with("BatchSize", json!(10_001)).is_err());
        assert!(with("MaximumRecordAgeInSeconds", json!(30)).is_err());
        assert!(with("MaximumRetryAttempts", json!(-2)).is_err());
        assert!(with("StartingPosition", json!("AT_TIMESTAMP")).is_err());
        assert!(with("EventSourceArn", json!("arn:aws:sqs:us-east-1:1:q")).is_err());
        assert!(with("FilterCriteria", json!({"Filters": [{"Pattern": "{}"}]})).is_err());
        assert!(with("FunctionResponseTypes", json!(["Other"])).is_err());
        assert!(
            with(
                "DestinationConfig",
                json!({"OnFailure": {"Destination": "arn:aws:sns:us-east-1:1:t"}})
            )
            .is_err()
        );
        let retried = with("MaximumRetryAttempts", json!(2)).expect("valid");
        assert_eq!(retried.retry.max_retries, Some(2));
    }
}
