//! Delivery against a recorded sequence of stream records (the shape moto's and DynamoDB's
//! `GetRecords` give) and a scripted function.

use std::cell::RefCell;

use serde_json::json;

use super::*;

/// Six records as a jobs table's stream has them: inserts `j-1`..`j-6`, written a second
/// apart starting at `t0` (epoch seconds).
fn recorded(t0: u64) -> Vec<Value> {
    (1..=6)
        .map(|n| {
            json!({
                "eventID": format!("e{n}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": t0 + n,
                    "Keys": {"id": {"S": format!("j-{n}")}},
                    "NewImage": {"id": {"S": format!("j-{n}")}, "status": {"S": "SUBMITTED"}},
                    "SequenceNumber": format!("11000000000000000000{n}"),
                    "SizeBytes": 60,
                    "StreamViewType": "NEW_IMAGE"
                }
            })
        })
        .collect()
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

fn id(record: &Value) -> String {
    record["dynamodb"]["Keys"]["id"]["S"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn ids(records: &[Value]) -> Vec<String> {
    records.iter().map(id).collect()
}

const NOW: u64 = 1_800_000_000;

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// Runs a delivery of `records` to a function that fails any batch holding a record in
/// `bad` (reporting it as an item failure when `report`); returns each invocation's ids.
fn run(
    records: Vec<Value>,
    policy: &RetryPolicy,
    bad: &[&str],
    report: bool,
    now: SystemTime,
) -> (Delivery, Vec<Vec<String>>) {
    let calls = RefCell::new(Vec::new());
    let pauses = RefCell::new(Vec::new());
    let delivery = block_on(deliver(
        records,
        policy,
        || now,
        |batch: Vec<Value>| {
            calls.borrow_mut().push(ids(&batch));
            let failing: Vec<&Value> = batch
                .iter()
                .filter(|record| bad.contains(&id(record).as_str()))
                .collect();
            let answer = if failing.is_empty() {
                Answer::Returned(json!({}))
            } else if report {
                Answer::Returned(json!({"batchItemFailures": failing
                    .iter()
                    .map(|record| json!({"itemIdentifier": sequence_number(record)}))
                    .collect::<Vec<_>>()}))
            } else {
                Answer::Failed("Unhandled: bad record".into())
            };
            async move { answer }
        },
        |retry| {
            pauses.borrow_mut().push(retry);
            async {}
        },
    ));
    (delivery, calls.into_inner())
}

fn policy(max_retries: Option<u32>, bisect: bool, report: bool) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        max_record_age: None,
        bisect,
        report_item_failures: report,
    }
}

#[test]
fn a_good_batch_is_one_invocation() {
    let (delivery, calls) = run(
        recorded(NOW),
        &policy(Some(2), false, false),
        &[],
        false,
        at(NOW + 10),
    );
    assert_eq!(calls, vec![ids(&recorded(NOW))]);
    assert_eq!(delivery.last_processing_result(), "OK");
    assert!(delivery.discarded.is_empty());
}

#[test]
fn a_failing_batch_is_retried_whole_then_given_up_whole() {
    let (delivery, calls) = run(
        recorded(NOW),
        &policy(Some(2), false, false),
        &["j-4"],
        false,
        at(NOW + 10),
    );
    // The first attempt and two retries, each of the whole batch.
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|call| call.len() == 6));
    assert_eq!(delivery.discarded.len(), 1);
    let discarded = &delivery.discarded[0];
    assert_eq!(ids(&discarded.records), ids(&recorded(NOW)));
    assert_eq!(discarded.reason, GiveUp::RetryAttemptsExhausted);
    assert_eq!(discarded.invocations, 3);
    assert_eq!(
        delivery.last_processing_result(),
        "PROBLEM: Function call failed"
    );
}

#[test]
fn bisecting_isolates_the_bad_record_and_delivers_the_rest_in_order() {
    let (delivery, calls) = run(
        recorded(NOW),
        &policy(Some(1), true, false),
        &["j-4"],
        false,
        at(NOW + 10),
    );
    let expected: Vec<Vec<&str>> = vec![
        vec!["j-1", "j-2", "j-3", "j-4", "j-5", "j-6"],
        vec!["j-1", "j-2", "j-3"],
        vec!["j-4", "j-5", "j-6"],
        vec!["j-4"],
        // One retry of the single record, then it is given up; the rest goes on.
        vec!["j-4"],
        vec!["j-5", "j-6"],
    ];
    assert_eq!(calls, expected);
    assert_eq!(delivery.discarded.len(), 1);
    assert_eq!(ids(&delivery.discarded[0].records), vec!["j-4"]);
    assert_eq!(
        delivery.discarded[0].invocations, 4,
        "j-4 was sent four times"
    );
}

#[test]
fn reported_item_failures_are_retried_from_the_first_failed_record() {
    let (delivery, calls) = run(
        recorded(NOW),
        &policy(Some(1), false, true),
        &["j-3", "j-5"],
        true,
        at(NOW + 10),
    );
    assert_eq!(
        calls,
        vec![
            vec!["j-1", "j-2", "j-3", "j-4", "j-5", "j-6"],
            vec!["j-3", "j-4", "j-5", "j-6"],
        ]
    );
    assert_eq!(
        ids(&delivery.discarded[0].records),
        vec!["j-3", "j-4", "j-5", "j-6"]
    );
}

#[test]
fn an_item_failure_naming_no_record_of_the_batch_fails_it_whole() {
    let batch = recorded(NOW);
    let delivery = block_on(deliver(
        batch,
        &policy(Some(0), false, true),
        || at(NOW),
        |_| async { Answer::Returned(json!({"batchItemFailures": [{"itemIdentifier": "nope"}]})) },
        |_| async {},
    ));
    assert_eq!(delivery.discarded[0].records.len(), 6);
    assert!(
        delivery.discarded[0].error.contains("not in the batch"),
        "{:?}",
        delivery.discarded
    );
    // An empty list, or none, is success.
    let delivery = block_on(deliver(
        recorded(NOW),
        &policy(Some(0), false, true),
        || at(NOW),
        |_| async { Answer::Returned(json!({"batchItemFailures": []})) },
        |_| async {},
    ));
    assert!(delivery.discarded.is_empty());
}

#[test]
fn records_older_than_the_maximum_age_are_given_up_unsent() {
    let mut aged = policy(None, false, false);
    aged.max_record_age = Some(Duration::from_secs(60));
    let (delivery, calls) = run(recorded(NOW), &aged, &[], false, at(NOW + 3600));
    assert!(calls.is_empty());
    assert_eq!(delivery.discarded[0].reason, GiveUp::RecordAgeExceeded);
    assert_eq!(delivery.discarded[0].invocations, 0);
}
