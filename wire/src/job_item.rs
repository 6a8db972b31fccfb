//! A job's row as a DynamoDB item, and its status changes as conditional `UpdateItem`s: each
//! checks the statuses it may start from (so a duplicated stream record, a late worker or a
//! second cancel fails its condition instead of writing), sets the status and `updated_at`,
//! and appends to `history`. Plain functions over `AttributeValue`s, tested without a table,
//! and the few requests every program that reads or moves a job makes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use crate::item::Item;
use crate::job::{JOB_KEY_ATTRIBUTE, Job, JobEvent, JobStatus};
use crate::transition::ConditionalUpdate;

/// Why an item does not read as a [`Job`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("job item: {0}")]
pub struct JobItemError(String);

/// A JSON value as a DynamoDB attribute (numbers as `N`, `null` as `NULL`).
pub fn attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(attribute).collect()),
        Value::Object(fields) => AttributeValue::M(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), attribute(value)))
                .collect(),
        ),
    }
}

/// A DynamoDB attribute as JSON; `None` for the kinds a job never holds (sets, binary).
pub fn json(attribute: &AttributeValue) -> Option<Value> {
    Some(match attribute {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::N(text) => Value::Number(
            text.parse::<i64>()
                .map(Number::from)
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))?,
        ),
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::L(items) => Value::Array(items.iter().map(json).collect::<Option<_>>()?),
        AttributeValue::M(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| Some((name.clone(), json(value)?)))
                .collect::<Option<Map<_, _>>>()?,
        ),
        _ => return None,
    })
}

/// The item written for a new job.
pub fn to_item(job: &Job) -> Item {
    match attribute(&serde_json::to_value(job).unwrap_or(Value::Null)) {
        AttributeValue::M(fields) => fields,
        _ => Item::new(),
    }
}

/// Reads a job's item (`updated_at`, which only the table keeps, is ignored).
pub fn from_item(item: &Item) -> Result<Job, JobItemError> {
    let value = json(&AttributeValue::M(item.clone()))
        .ok_or_else(|| JobItemError("an attribute of a kind no job holds".into()))?;
    serde_json::from_value(value).map_err(|err| JobItemError(err.to_string()))
}

/// The request that reads job `job_id`'s row in `table`, strongly consistent (a change made a
/// moment ago, by the launcher or the worker, must be seen); callers send it.
pub fn get_job(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    job_id: &str,
) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
    client
        .get_item()
        .table_name(table)
        .key(JOB_KEY_ATTRIBUTE, AttributeValue::S(job_id.to_owned()))
        .consistent_read(true)
}

/// Applies `update` to job `job_id`'s row in `table`: `Ok(false)` when its condition failed
/// (the job was not where the change may start from, or not on this worker).
pub async fn apply(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    job_id: &str,
    update: ConditionalUpdate,
) -> Result<bool, aws_sdk_dynamodb::Error> {
    let request = client
        .update_item()
        .table_name(table)
        .key(JOB_KEY_ATTRIBUTE, AttributeValue::S(job_id.to_owned()));
    match update.apply(request).send().await {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(err.into()),
    }
}

/// Every row of the jobs table, page by page (strongly consistent when `consistent`); a row
/// that does not read as a job is its error.
pub async fn scan_jobs(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    consistent: bool,
) -> Result<Vec<Result<Job, JobItemError>>, aws_sdk_dynamodb::Error> {
    let mut jobs = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(consistent)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        jobs.extend(page.items().iter().map(from_item));
        match page.last_evaluated_key() {
            Some(last) if !last.is_empty() => start = Some(last.clone()),
            _ => return Ok(jobs),
        }
    }
}

/// What a status change writes besides the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// The launcher took the job; its instance is attached once it exists
    /// ([`attach_instance`]).
    Launching,
    /// The cap was reached: the job waits for a worker.
    Queued,
    /// The worker `instance_id` started it, with its first heartbeat at `now` (Unix seconds).
    Running {
        instance_id: &'a str,
        now: i64,
    },
    Succeeded {
        outputs: &'a [String],
    },
    Failed {
        error: &'a str,
    },
    Cancelled,
}

impl Change<'_> {
    pub fn status(&self) -> JobStatus {
        match self {
            Change::Launching => JobStatus::Launching,
            Change::Queued => JobStatus::Queued,
            Change::Running { .. } => JobStatus::Running,
            Change::Succeeded { .. } => JobStatus::Succeeded,
            Change::Failed { .. } => JobStatus::Failed,
            Change::Cancelled => JobStatus::Cancelled,
        }
    }
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(placeholder, name)| ((*placeholder).to_owned(), (*name).to_owned()))
        .collect()
}

/// The change to `change`'s status at `at` (RFC 3339), from any status that may move to it,
/// with `detail` in the history. A RUNNING job moves on only by its own worker's hand, or by
/// a cancel or a lease run out (`Failed`, `Cancelled`).
pub fn transition(change: &Change<'_>, at: &str, detail: &str) -> ConditionalUpdate {
    let to = change.status();
    let event = JobEvent {
        status: to,
        at: at.to_owned(),
        detail: detail.to_owned(),
    };
    let mut names = names(&[
        ("#status", "status"),
        ("#updated_at", "updated_at"),
        ("#history", "history"),
    ]);
    let mut values: HashMap<String, AttributeValue> = HashMap::from([
        (":to".to_owned(), AttributeValue::S(to.as_str().to_owned())),
        (":at".to_owned(), AttributeValue::S(at.to_owned())),
        (
            ":event".to_owned(),
            AttributeValue::L(vec![attribute(
                &serde_json::to_value(&event).unwrap_or(Value::Null),
            )]),
        ),
    ]);
    let mut update_expression =
        "SET #status = :to, #updated_at = :at, #history = list_append(#history, :event)".to_owned();
    let from: Vec<JobStatus> = JobStatus::ALL
        .into_iter()
        .filter(|status| status.may_become(to))
        .collect();
    let mut condition = format!(
        "#status IN ({})",
        from.iter()
            .enumerate()
            .map(|(index, _)| format!(":from{index}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (index, status) in from.iter().enumerate() {
        values.insert(
            format!(":from{index}"),
            AttributeValue::S(status.as_str().to_owned()),
        );
    }
    match change {
        Change::Running { instance_id, now } => {
            update_expression.push_str(", #heartbeat_at = :now");
            names.extend(self::names(&[
                ("#heartbeat_at", "heartbeat_at"),
                ("#instance_id", "instance_id"),
            ]));
            values.insert(":now".into(), AttributeValue::N(now.to_string()));
            values.insert(
                ":instance".into(),
                AttributeValue::S((*instance_id).to_owned()),
            );
            // Only the job's own worker starts it.
            condition.push_str(" AND #instance_id = :instance");
        }
        Change::Succeeded { outputs } => {
            update_expression.push_str(", #outputs = :outputs");
            names.insert("#outputs".into(), "outputs".into());
            values.insert(
                ":outputs".into(),
                AttributeValue::L(
                    outputs
                        .iter()
                        .map(|key| AttributeValue::S(key.clone()))
                        .collect(),
                ),
            );
        }
        Change::Failed { error } => {
            update_expression.push_str(", #error = :error");
            names.insert("#error".into(), "error".into());
            values.insert(":error".into(), AttributeValue::S((*error).to_owned()));
        }
        Change::Launching | Change::Queued | Change::Cancelled => {}
    }
    ConditionalUpdate {
        update_expression,
        condition_expression: condition,
        names,
        values,
    }
}

/// Records the instance the launcher started for a LAUNCHING job, and when RunInstances
/// answered (`at`, RFC 3339).
pub fn attach_instance(instance_id: &str, at: &str) -> ConditionalUpdate {
    ConditionalUpdate {
        update_expression: "SET #instance_id = :instance, #launched_at = :at".into(),
        condition_expression: "#status = :launching".into(),
        names: names(&[
            ("#instance_id", "instance_id"),
            ("#launched_at", "launched_at"),
            ("#status", "status"),
        ]),
        values: HashMap::from([
            (
                ":instance".to_owned(),
                AttributeValue::S(instance_id.to_owned()),
            ),
            (":at".to_owned(), AttributeValue::S(at.to_owned())),
            (
                ":launching".to_owned(),
                AttributeValue::S(JobStatus::Launching.as_str().to_owned()),
            ),
        ]),
    }
}

/// The worker's heartbeat at `now` (Unix seconds): only while its job is RUNNING on it, so a
/// worker whose job was cancelled or failed learns it from the failed condition.
pub fn heartbeat(instance_id: &str, now: i64) -> ConditionalUpdate {
    ConditionalUpdate {
        update_expression: "SET #heartbeat_at = :now".into(),
        condition_expression: "#status = :running AND #instance_id = :instance".into(),
        names: names(&[
            ("#heartbeat_at", "heartbeat_at"),
            ("#status", "status"),
            ("#instance_id", "instance_id"),
        ]),
        values: HashMap::from([
            (":now".to_owned(), AttributeValue::N(now.to_string())),
            (
                ":running".to_owned(),
                AttributeValue::S(JobStatus::Running.as_str().to_owned()),
            ),
            (
                ":instance".to_owned(),
                AttributeValue::S(instance_id.to_owned()),
            ),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobKind;

    fn job() -> Job {
        Job {
            job_id: "j-0123456789abcdef".into(),
            kind: JobKind::AppendText {
                text: "more".into(),
            },
            status: JobStatus::Submitted,
            submitted_at: "2026-12-06T08:00:00.000Z".into(),
            instance_id: None,
            heartbeat_at: None,
            launched_at: None,
            lease_seconds: 120,
            input_bytes: None,
            outputs: Vec::new(),
            error: None,
            history: vec![JobEvent {
                status: JobStatus::Submitted,
                at: "2026-12-06T08:00:00.000Z".into(),
                detail: "submitted".into(),
            }],
        }
    }

    #[test]
    fn a_job_survives_the_item() {
        let item = to_item(&job());
        assert_eq!(
            item["job_id"],
            AttributeValue::S("j-0123456789abcdef".into())
        );
        assert_eq!(item["kind"], AttributeValue::S("append-text".into()));
        assert_eq!(item["lease_seconds"], AttributeValue::N("120".into()));
        assert_eq!(from_item(&item), Ok(job()));
        let mut broken = item.clone();
        broken.insert("status".into(), AttributeValue::S("LOST".into()));
        assert!(from_item(&broken).is_err());
        broken.insert("status".into(), AttributeValue::Ss(vec!["x".into()]));
        assert!(from_item(&broken).is_err());
    }

    #[test]
    fn each_change_checks_where_it_may_come_from() {
        let launching = transition(&Change::Launching, "t", "");
        assert_eq!(
            launching.condition_expression,
            "#status IN (:from0, :from1)"
        );
        assert_eq!(
            launching.values[":from0"],
            AttributeValue::S("SUBMITTED".into())
        );
        assert_eq!(
            launching.values[":from1"],
            AttributeValue::S("QUEUED".into())
        );
        let running = transition(
            &Change::Running {
                instance_id: "i-1",
                now: 5,
            },
            "t",
            "",
        );
        assert_eq!(
            running.condition_expression,
            "#status IN (:from0) AND #instance_id = :instance"
        );
        assert_eq!(
            running.values[":from0"],
            AttributeValue::S("LAUNCHING".into())
        );
        let failed = transition(&Change::Failed { error: "lease" }, "t", "no heartbeat");
        assert_eq!(
            failed.condition_expression, "#status IN (:from0, :from1, :from2, :from3)",
            "any status not yet final"
        );
        assert!(failed.update_expression.ends_with(", #error = :error"));
        let AttributeValue::L(event) = &failed.values[":event"] else {
            panic!("a list of one event");
        };
        let event = json(&event[0]).expect("JSON");
        assert_eq!(event["status"], "FAILED");
        assert_eq!(event["detail"], "no heartbeat");
        assert_eq!(
            heartbeat("i-1", 9).condition_expression,
            "#status = :running AND #instance_id = :instance"
        );
        assert_eq!(
            attach_instance("i-1", "t").condition_expression,
            "#status = :launching"
        );
    }
}
