//! Delivering one batch of stream records to a function as Lambda's DynamoDB-stream poller
//! does: the batch is retried while the function fails, split in two first when
//! `BisectBatchOnFunctionError` is on (a split does not count as a retry), retried from the
//! first failed record when the function reports item failures (`ReportBatchItemFailures`),
//! and given up, to the on-failure destination, once `MaximumRetryAttempts` retries failed or
//! its oldest record is older than `MaximumRecordAgeInSeconds`. Records are delivered in
//! order: a failing batch holds back the ones after it, as it holds the shard on AWS.
//! (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)
//!
//! Plain logic: the invocation is a closure, so a recorded sequence of records and a
//! scripted function drive it in tests.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// How a mapping retries (its `MaximumRetryAttempts`, `MaximumRecordAgeInSeconds`,
/// `BisectBatchOnFunctionError` and `FunctionResponseTypes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `None`: retry until the records expire (`-1`, the default).
    pub max_retries: Option<u32>,
    /// `None`: no limit (`-1`, the default).
    pub max_record_age: Option<Duration>,
    pub bisect: bool,
    pub report_item_failures: bool,
}

/// What one invocation answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The function returned this payload.
    Returned(Value),
    /// The function failed (`X-Amz-Function-Error`), timed out, or could not be invoked.
    Failed(String),
}

/// Why a batch was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl GiveUp {
    /// The `condition` AWS writes in the on-failure record.
    pub fn condition(self) -> &'static str {
        match self {
            GiveUp::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            GiveUp::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// Records given up, for the on-failure destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Discarded {
    pub records: Vec<Value>,
    pub reason: GiveUp,
    /// How many times these records were sent to the function.
    pub invocations: u32,
    /// The last failure, as the function reported it.
    pub error: String,
}

/// How a batch's delivery went.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delivery {
    pub invocations: u32,
    pub failures: u32,
    pub discarded: Vec<Discarded>,
}

impl Delivery {
    /// The mapping's `LastProcessingResult` after this delivery.
    pub fn last_processing_result(&self) -> &'static str {
        if self.failures == 0 {
            "OK"
        } else {
            "PROBLEM: Function call failed"
        }
    }
}

/// A record's `dynamodb.SequenceNumber`.
pub fn sequence_number(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

/// When the record was written (`dynamodb.ApproximateCreationDateTime`, epoch seconds).
pub fn created(record: &Value) -> Option<SystemTime> {
    let seconds = record["dynamodb"]["ApproximateCreationDateTime"].as_f64()?;
    (seconds >= 0.0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds))
}

/// Delivers `records` (in order) through `invoke`, which gets each batch to send; returns
/// when every record was delivered or given up. `pause` is awaited before each retry.
pub async fn deliver<Invoke, Invoked, Pause, Paused>(
    records: Vec<Value>,
    policy: &RetryPolicy,
    now: impl Fn() -> SystemTime,
    mut invoke: Invoke,
    mut pause: Pause,
) -> Delivery
where
    Invoke: FnMut(Vec<Value>) -> Invoked,
    Invoked: Future<Output = Answer>,
    Pause: FnMut(u32) -> Paused,
    Paused: Future<Output = ()>,
{
    let mut delivery = Delivery::default();
    // Each pending batch with how many retries it has had, and how often its records were
    // sent (for the on-failure record).
    let mut pending: VecDeque<(Vec<Value>, u32, u32)> = VecDeque::new();
    if !records.is_empty() {
        pending.push_back((records, 0, 0));
    }
    while let Some((batch, retries, sent)) = pending.pop_front() {
        if let Some(limit) = policy.max_record_age
            && batch
                .first()
                .and_then(created)
                .and_then(|at| now().duration_since(at).ok())
                .is_some_and(|age| age > limit)
        {
            delivery.discarded.push(Discarded {
                records: batch,
                reason: GiveUp::RecordAgeExceeded,
                invocations: sent,
                error: "the records are older than MaximumRecordAgeInSeconds".into(),
            });
            continue;
        }
        if retries > 0 {
            pause(retries).await;
        }
        delivery.invocations += 1;
        let sent = sent + 1;
        // What failed, why, and whether it is the whole batch.
        let (failed, error, whole) = match invoke(batch.clone()).await {
            Answer::Returned(payload) if policy.report_item_failures => {
                match first_failed_item(&batch, &payload) {
                    Ok(None) => continue,
                    Ok(Some(index)) => (
                        batch[index..].to_vec(),
                        format!(
                            "the function reported item {} failed",
                            sequence_number(&batch[index]).unwrap_or("?")
                        ),
                        false,
                    ),
                    Err(reason) => (batch, reason, true),
                }
            }
            Answer::Returned(_) => continue,
            Answer::Failed(error) => (batch, error, true),
        };
        delivery.failures += 1;
        let exhausted = policy.max_retries.is_some_and(|max| retries >= max);
        // A whole failed batch is split, unless it is one record; the rest after a reported
        // item is retried from that item on (where AWS bisects it).
        if policy.bisect && whole && failed.len() > 1 {
            let right = failed[failed.len() / 2..].to_vec();
            let left = failed[..failed.len() / 2].to_vec();
            pending.push_front((right, retries, sent));
            pending.push_front((left, retries, sent));
        } else if exhausted {
            delivery.discarded.push(Discarded {
                records: failed,
                reason: GiveUp::RetryAttemptsExhausted,
                invocations: sent,
                error,
            });
        } else {
            pending.push_front((failed, retries + 1, sent));
        }
    }
    delivery
}

/// The index of the first record the function reported failed
/// (`{"batchItemFailures": [{"itemIdentifier": SEQUENCE_NUMBER}]}`), `None` if none; an
/// answer naming a record not in the batch fails the whole batch, as on AWS.
fn first_failed_item(batch: &[Value], payload: &Value) -> Result<Option<usize>, String> {
    let failures = match &payload["batchItemFailures"] {
        Value::Null => return Ok(None),
        Value::Array(failures) => failures,
        other => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    let mut first: Option<usize> = None;
    for failure in failures {
        let identifier = failure["itemIdentifier"].as_str().unwrap_or_default();
        let index = batch
            .iter()
            .position(|record| sequence_number(record) == Some(identifier))
            .ok_or_else(|| {
                format!("the function reported an item that is not in the batch: {identifier:?}")
            })?;
        first = Some(first.map_or(index, |first| first.min(index)));
    }
    Ok(first)
}

#[cfg(test)]
mod tests;
