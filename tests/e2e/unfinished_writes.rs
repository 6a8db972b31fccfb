//! Writes a client cannot leave half done: a `/process-image` whose client hangs up at any point
//! leaves its row and all its objects, or nothing; an upload's row that nothing will finish
//! (its object never arrives, or its resizer died) is marked FAILED by the server's sweep, and
//! a late event for it then changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hybridlab_lambda::resizer::{Outcome, Resizer, ResizerConfig, S3Event};
use hybridlab_sandbox::s3_events::{ObjectCreated, event_document};
use hybridlab_tests::aws::REGION;
use hybridlab_tests::fixtures;
use hybridlab_tests::server::Lab;
use hybridlab_wire::item::to_item;
use hybridlab_wire::transition::PROCESSING_UNTIL;
use hybridlab_wire::{ImageStatus, StatusChange};
use lambda_runtime::{Context, LambdaEvent};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{LAB_TOKEN, assert_recovered, eventually, http, post_json, rows};

/// Every object of the lab's bucket belongs to a COMPLETED row that lists exactly the objects
/// stored under its id, and every COMPLETED row has all its objects; FAILED rows have none.
/// Returns the ids of the COMPLETED rows.
async fn assert_rows_and_objects_agree(lab: &Lab, case: &str) -> BTreeSet<String> {
    let mut objects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in lab.clients.list_keys(&lab.bucket).await {
        let id = key
            .strip_prefix("images/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("{case}: an object outside images/: {key}"))
            .to_owned();
        objects.entry(id).or_default().insert(key);
    }
    let mut completed = BTreeSet::new();
    for row in rows(lab).await {
        let stored = objects.remove(&row.image_id).unwrap_or_default();
        match row.status {
            ImageStatus::Completed => {
                let listed: BTreeSet<String> = row.keys.values().cloned().collect();
                assert_eq!(
                    listed, stored,
                    "{case}: row {} and its objects",
                    row.image_id
                );
                completed.insert(row.image_id);
            }
            ImageStatus::Failed => {
                assert!(stored.is_empty(), "{case}: a FAILED row kept {stored:?}");
            }
            other => panic!("{case}: a {other} row from /process-image"),
        }
    }
    assert!(
        objects.is_empty(),
        "{case}: objects without their row: {objects:?}"
    );
    completed
}

/// Sends `/process-image` for `url` and hangs up after `after` (the request future is dropped,
/// which closes the connection, as a client that gives up does).
async fn hang_up_after(lab: &Lab, url: &str, after: Duration) -> bool {
    let request = http()
        .post(format!("{}/process-image", lab.server.url))
        .bearer_auth(LAB_TOKEN)
        .json(&json!({ "image_url": url }))
        .send();
    tokio::time::timeout(after, request).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_process_image_leaves_its_row_and_objects_or_neither() {
    let lab = Lab::start_with(|config| config.token = Some(LAB_TOKEN.into())).await;
    // A large photo, so storing (a few MB of original and variants) takes a while.
    let url = lab
        .images
        .add("big.jpg", fixtures::jpeg(3000, 2000), "image/jpeg");
    let whole = post_json(&lab, json!({ "image_url": url }), Some(LAB_TOKEN)).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.body);
    let timings = &whole.body["timings_ms"];
    let ms = |stage: &str| timings[stage].as_f64().unwrap_or_default();
    let total = ms("total");
    let storing_from = total - ms("s3") - ms("dynamodb");
    let baseline = assert_rows_and_objects_agree(&lab, "one whole request").await;
    assert_eq!(baseline.len(), 1);

    // Hang up at several points: during the download and the decode, as storing starts, in
    // the middle of the S3 puts, during the row's write.
    let points = [
        0.1 * storing_from,
        0.5 * storing_from,
        0.95 * storing_from,
        storing_from + 0.3 * ms("s3"),
        storing_from + 0.7 * ms("s3"),
        total - 0.5 * ms("dynamodb"),
    ];
    let mut finished_without_client = 0;
    // The latest hang-up that left nothing and the earliest one that was answered: the storing
    // window lies between them.
    let mut left_nothing_at: f64 = 0.0;
    let mut answered_at: f64 = f64::INFINITY;
    for (index, at_ms) in points.iter().enumerate() {
        let outcome = hang_up_once(&lab, &url, *at_ms, &format!("hang-up {index}")).await;
        match outcome {
            HangUp::FinishedWithoutClient => finished_without_client += 1,
            HangUp::LeftNothing => left_nothing_at = left_nothing_at.max(*at_ms),
            HangUp::Answered => answered_at = answered_at.min(*at_ms),
        }
        eprintln!("hang-up {index} at {at_ms:.0} ms of {total:.0}: {outcome:?}");
    }

    // A hang-up once storing has begun must let the writes finish. Timing on a loaded machine
    // is loose (a warm server answers faster than the first request said), so if no point
    // above landed in the storing window, bisect between the last hang-up that left nothing
    // and the first one that was answered until one does.
    if answered_at.is_infinite() {
        answered_at = total;
    }
    for attempt in 0..10 {
        if finished_without_client > 0 {
            break;
        }
        let at_ms = (left_nothing_at + answered_at) / 2.0;
        let outcome = hang_up_once(&lab, &url, at_ms, &format!("bisection {attempt}")).await;
        eprintln!("bisection {attempt} at {at_ms:.1} ms: {outcome:?}");
        match outcome {
            HangUp::FinishedWithoutClient => finished_without_client += 1,
            HangUp::LeftNothing => left_nothing_at = at_ms,
            HangUp::Answered => answered_at = at_ms,
        }
    }
    assert!(
        finished_without_client > 0,
        "at least one request whose client hung up while it was storing finished its writes"
    );
    assert_recovered(&lab, Some(LAB_TOKEN)).await;
    assert_rows_and_objects_agree(&lab, "after the recovery photo").await;
}

/// What one hang-up came to.
#[derive(Debug, Clone, Copy)]
enum HangUp {
    /// The client got its answer before it hung up.
    Answered,
    /// The client hung up and the request still stored its row and objects.
    FinishedWithoutClient,
    /// The client hung up and nothing was stored.
    LeftNothing,
}

/// Sends `/process-image`, hangs up after `at_ms`, waits until the server is idle and checks
/// that rows and objects agree.
async fn hang_up_once(lab: &Lab, url: &str, at_ms: f64, case: &str) -> HangUp {
    let before = rows(lab).await.len();
    let answered = hang_up_after(lab, url, Duration::from_secs_f64(at_ms.max(1.0) / 1000.0)).await;
    assert_recovered_idle(lab).await;
    assert_rows_and_objects_agree(lab, &format!("{case} at {at_ms:.1} ms")).await;
    if answered {
        HangUp::Answered
    } else if rows(lab).await.len() > before {
        HangUp::FinishedWithoutClient
    } else {
        HangUp::LeftNothing
    }
}

/// Waits until nothing is in flight (the writes a hang-up left running are done).
async fn assert_recovered_idle(lab: &Lab) {
    let idle = eventually(Duration::from_secs(30), || async {
        let health: hybridlab_wire::Health = http()
            .get(format!("{}/health", lab.server.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (health.in_flight == 0).then_some(())
    })
    .await;
    assert!(idle.is_some(), "nothing in flight within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_nothing_finishes_becomes_failed_and_a_late_event_changes_nothing() {
    // Short times for the test; the defaults are 15 and 30 minutes.
    let lab = Lab::start_with_pipeline(|config| {
        config.token = Some(LAB_TOKEN.into());
        config.presign_seconds = 1;
        config.stale_after_seconds = 3;
    })
    .await;
    let pipeline = lab.pipeline().clone();
    let server = &lab.server.url;

    // A presigned upload whose object never arrives.
    let ticket: serde_json::Value = http()
        .post(format!("{server}/api/uploads"))
        .bearer_auth(LAB_TOKEN)
        .json(&json!({"filename": "never.jpg", "content_type": "image/jpeg", "size_bytes": 1234}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let never = ticket["image_id"].as_str().expect("an id").to_owned();
    let key = ticket["key"].as_str().expect("a key").to_owned();

    // A row whose resizer took it and died: PROCESSING with a lease that ended long ago; and a
    // finished row, which the sweep must leave alone.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let long_ago = "2026-01-01T00:00:00.000Z".to_owned();
    let item = |id: &str, status: ImageStatus| {
        let record = hybridlab_wire::ImageRecord {
            image_id: id.to_owned(),
            status,
            source_url: None,
            bucket: pipeline.processed.clone(),
            keys: [("original".to_owned(), format!("uploads/{id}/x.jpg"))].into(),
            size_bytes: Some(10),
            width: None,
            height: None,
            format: None,
            created_at: long_ago.clone(),
            updated_at: long_ago.clone(),
            timings_ms: None,
            error: None,
            request_id: None,
            original_bucket: Some(pipeline.uploads.clone()),
            original_filename: Some("x.jpg".into()),
            uploaded_at: Some(long_ago.clone()),
            history: vec![StatusChange {
                status,
                at: long_ago.clone(),
            }],
        };
        to_item(&record)
    };
    let mut died = item("died-0001", ImageStatus::Processing);
    died.insert(
        PROCESSING_UNTIL.to_owned(),
        aws_sdk_dynamodb::types::AttributeValue::N((now_s - 3600).to_string()),
    );
    let done = item("done-0001", ImageStatus::Completed);
    for row in [died, done] {
        lab.clients
            .dynamodb
            .put_item()
            .table_name(&lab.table)
            .set_item(Some(row))
            .send()
            .await
            .expect("moto writes the row");
    }

    let failed = eventually(Duration::from_secs(20), || async {
        let rows = rows(&lab).await;
        let status = |id: &str| {
            rows.iter()
                .find(|row| row.image_id == id)
                .map(|row| row.status)
        };
        (status(&never) == Some(ImageStatus::Failed)
            && status("died-0001") == Some(ImageStatus::Failed))
        .then_some(rows)
    })
    .await
    .expect("the sweep marked both rows FAILED within 20 s");
    for row in &failed {
        match row.image_id.as_str() {
            "done-0001" => assert_eq!(row.status, ImageStatus::Completed, "left alone"),
            id => {
                assert_eq!(row.status, ImageStatus::Failed, "{id}");
                let history: Vec<ImageStatus> = row.history.iter().map(|c| c.status).collect();
                assert_eq!(history.last(), Some(&ImageStatus::Failed), "{id}");
                assert!(
                    row.error
                        .as_deref()
                        .is_some_and(|e| e.contains("within 3 s")),
                    "{id}: {:?}",
                    row.error
                );
            }
        }
    }

    // The object arrives after all, and its event reaches the resizer: the row is no longer
    // PENDING, so nothing is written.
    lab.clients
        .s3
        .put_object()
        .bucket(&pipeline.uploads)
        .key(&key)
        .metadata("image-id", &never)
        .body(fixtures::jpeg(64, 48).into())
        .send()
        .await
        .expect("moto stores the late upload");
    let env = std::collections::HashMap::from([
        ("HYBRIDLAB_TABLE", lab.table.clone()),
        ("HYBRIDLAB_PROCESSED_BUCKET", pipeline.processed.clone()),
    ]);
    let resizer = Resizer::new(
        ResizerConfig::from_lookup(|name| env.get(name).cloned()).expect("a configuration"),
        lab.clients.s3.clone(),
        lab.clients.dynamodb.clone(),
    );
    let created = ObjectCreated {
        bucket: pipeline.uploads.clone(),
        key: key.clone(),
        event_name: "ObjectCreated:Put",
    };
    let event: S3Event =
        serde_json::from_value(event_document(&created, "resizer", REGION, 1, "etag"))
            .expect("an event");
    let summary = resizer
        .handle(LambdaEvent::new(event, Context::default()))
        .await
        .expect("nothing to retry");
    assert_eq!(
        summary.records[0].outcome,
        Outcome::Duplicate,
        "{summary:?}"
    );
    let row = rows(&lab)
        .await
        .into_iter()
        .find(|row| row.image_id == never)
        .expect("the row");
    assert_eq!(row.status, ImageStatus::Failed);
    assert!(lab.clients.list_keys(&pipeline.processed).await.is_empty());

    assert_recovered(&lab, Some(LAB_TOKEN)).await;
}
