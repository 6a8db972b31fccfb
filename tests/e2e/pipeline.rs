//! The event-driven variant on the sandbox, end to end: a stack made without the pipeline gets
//! it from `up --with pipeline`; images uploaded through both paths with `hybridlab upload`
//! are processed by the resizer that the uploads bucket's S3 event runs; a non-image ends
//! FAILED; a duplicate event changes nothing; the resizer never runs for its own output; the
//! gallery shows it all in a real headless Chromium; and `down` leaves nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use hybridlab_provision::stack::{StackId, StackNames, Step};
use hybridlab_tests::browser::{Driver, Session};
use hybridlab_tests::fixtures;
use hybridlab_tests::sandbox::{EdgeClients, edge_clients};
use hybridlab_tests::stack::{hybridlab_async as run_cli, json_lines};
use hybridlab_wire::{ImageRecord, ImageStatus};
use serde_json::Value;

use crate::common::{assert_variants, eventually};
use crate::stack::{down_leaves_nothing, result_of, step_events};

async fn keys_under(clients: &EdgeClients, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectsV2");
    listed
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect()
}

fn statuses(row: &ImageRecord) -> Vec<ImageStatus> {
    row.history.iter().map(|change| change.status).collect()
}

/// `hybridlab upload --json` of `files`, one outcome per file.
pub(crate) async fn upload(
    endpoint: &str,
    stack: &str,
    via: &str,
    files: &[&Path],
) -> (Option<i32>, Vec<Value>) {
    let mut args = vec!["upload", "--json", "--stack", stack, "--via", via];
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let output = run_cli(endpoint, &args, &[]).await;
    assert!(
        output
            .status
            .code()
            .is_some_and(|code| code == 0 || code == 5),
        "upload: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), json_lines(&output))
}

fn row_of(outcome: &Value) -> ImageRecord {
    serde_json::from_value(outcome["row"].clone()).expect("the row as the wire type")
}

/// Each card of the gallery as the browser shows it: id, status, the thumbnail's decoded width
/// (-1 while loading, null without one), the variants linked and the error shown.
const READ_CARDS: &str = "return [...document.querySelectorAll('[data-image-id]')].map(card => {
    const img = card.querySelector('img.thumbnail');
    return {id: card.dataset.imageId, status: card.dataset.status,
            thumbnail: img ? (img.complete ? img.naturalWidth : -1) : null,
            variants: [...card.querySelectorAll('a.variant')].map(a => a.dataset.variant),
            error: (card.querySelector('.error') || {}).textContent || null};
});";

/// Whether the page comes to show image `id` COMPLETED with its thumbnail loaded, by itself
/// (no reload), within 20 s.
async fn shown_completed(session: &Session<'_>, id: &str) -> bool {
    eventually(Duration::from_secs(20), || async {
        let cards = session.run(READ_CARDS).await.ok()?;
        cards.as_array()?.iter().find_map(|card| {
            (card["id"] == id
                && card["status"] == "COMPLETED"
                && card["thumbnail"].as_i64().is_some_and(|w| w > 0))
            .then_some(())
        })
    })
    .await
    .is_some()
}

/// The row of image `id` as it is now.
async fn row_in(clients: &EdgeClients, table: &str, id: &str) -> ImageRecord {
    let found = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            "image_id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    hybridlab_wire::item::from_item(found.item().expect("the row")).expect("a record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_is_added_processes_uploads_shows_them_in_a_browser_and_goes_down() {
    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();
    let id = StackId::generate().to_string();
    let names = StackNames::new(&StackId::parse(&id).expect("a valid id"));

    // A stack without the pipeline first; its server answers uploads with the way to add it.
    let plain = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    assert!(
        plain.status.success(),
        "up: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let dir = std::env::temp_dir().join(format!("hybridlab-pipeline-{id}"));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let photo = dir.join("holiday photo.jpg");
    std::fs::write(&photo, fixtures::jpeg(1600, 1200)).expect("write");
    let refused = run_cli(
        &endpoint,
        &["upload", "--stack", &id, &photo.display().to_string()],
        &[],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--with pipeline"), "{stderr}");

    // Adding it: every pipeline step runs, and the instance is replaced to read its new
    // configuration.
    let added = run_cli(
        &endpoint,
        &["up", "--json", "--stack", &id, "--with", "pipeline"],
        &[],
    )
    .await;
    assert!(
        added.status.success(),
        "up --with pipeline: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let lines = json_lines(&added);
    assert_eq!(result_of(&lines)["ok"], true);
    let done = step_events(&lines, "done");
    for step in Step::ALL.into_iter().filter(|step| step.is_pipeline()) {
        assert!(
            done.contains(&step.name()),
            "{} done: {done:?}",
            step.name()
        );
    }
    let instance = lines
        .iter()
        .map(|line| &line["event"])
        .find(|event| event["step"] == "instance" && event["status"] == "done")
        .expect("the instance step changed something");
    assert!(
        instance["detail"]
            .as_str()
            .is_some_and(|d| d.contains("in place of")),
        "{instance}"
    );
    // Running `up` again without the flag keeps the pipeline and changes nothing.
    let again = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    assert!(again.status.success());
    let lines = json_lines(&again);
    let changed = step_events(&lines, "done");
    for step in &changed {
        assert!(
            ["build", "image", "server-health"].contains(step),
            "the third up changed {step}"
        );
    }
    assert_eq!(
        step_events(&lines, "skipped").len(),
        Step::of_stack(true, false).len() - 3
    );

    // Uploads through both paths, and a file that is not an image.
    let picture = dir.join("diagram.png");
    std::fs::write(&picture, fixtures::png(900, 700)).expect("write");
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, b"not an image at all").expect("write");
    let (code, presigned) = upload(&endpoint, &id, "presigned", &[&photo]).await;
    assert_eq!(code, Some(0), "{presigned:?}");
    let (code, through_server) = upload(&endpoint, &id, "server", &[&picture, &notes]).await;
    assert_eq!(
        code,
        Some(5),
        "one FAILED image exits 5: {through_server:?}"
    );

    let mut completed = Vec::new();
    for outcome in presigned.iter().chain(&through_server[..1]) {
        let row = row_of(outcome);
        assert_eq!(row.status, ImageStatus::Completed, "{outcome}");
        assert_eq!(
            statuses(&row),
            [
                ImageStatus::Pending,
                ImageStatus::Processing,
                ImageStatus::Completed
            ]
        );
        assert_eq!(row.bucket, names.processed_bucket);
        assert_eq!(
            row.original_bucket.as_deref(),
            Some(names.uploads_bucket.as_str())
        );
        let variants = keys_under(
            &clients,
            &names.processed_bucket,
            &format!("images/{}/", row.image_id),
        )
        .await;
        assert_eq!(variants.len(), 3, "{variants:?}");
        for name in ["thumbnail", "medium", "large"] {
            let key = &row.keys[name];
            assert!(variants.contains(key), "{name}: {key} in {variants:?}");
        }
        let source = (row.width.expect("a width"), row.height.expect("a height"));
        assert_variants(
            &clients.s3,
            &names.processed_bucket,
            &row.keys,
            &row.image_id,
            source,
        )
        .await;
        completed.push(row);
    }
    assert_eq!(
        completed[0].original_filename.as_deref(),
        Some("holiday photo.jpg")
    );
    assert_eq!(completed[0].width, Some(1600));
    let failed = row_of(&through_server[1]);
    assert_eq!(failed.status, ImageStatus::Failed);
    assert_eq!(
        statuses(&failed),
        [
            ImageStatus::Pending,
            ImageStatus::Processing,
            ImageStatus::Failed
        ]
    );
    assert!(
        failed.error.as_deref().is_some_and(|e| !e.is_empty()),
        "{failed:?}"
    );
    assert_eq!(
        keys_under(
            &clients,
            &names.processed_bucket,
            &format!("images/{}/", failed.image_id)
        )
        .await,
        Vec::<String>::new(),
        "a FAILED image has no variants"
    );

    // A duplicate event: the same original copied onto itself is a second ObjectCreated for
    // the same image, which must not make a second set of variants or touch the row.
    let first = &completed[0];
    let original = &first.keys["original"];
    let before = keys_under(&clients, &names.processed_bucket, "images/").await;
    clients
        .s3
        .copy_object()
        .bucket(&names.uploads_bucket)
        .key(original)
        .copy_source(format!(
            "{}/{}",
            names.uploads_bucket,
            original.replace(' ', "%20")
        ))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Copy)
        .send()
        .await
        .expect("CopyObject onto itself");
    // Every ObjectCreated of the uploads bucket ran the resizer exactly once: three uploads
    // and the copy. Its own writes to the processed bucket ran nothing.
    let starts = eventually(Duration::from_secs(30), || async {
        let lines = clients.log_messages(&names.resizer_log_group).await;
        let starts = lines
            .iter()
            .filter(|line| line.starts_with("START RequestId"))
            .count();
        (starts >= 4).then_some(starts)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines = clients.log_messages(&names.resizer_log_group).await;
    let count = lines
        .iter()
        .filter(|line| line.starts_with("START RequestId"))
        .count();
    assert_eq!(starts, Some(4), "resizer invocations: {lines:#?}");
    assert_eq!(count, 4, "no invocation after the four: {lines:#?}");
    let after = keys_under(&clients, &names.processed_bucket, "images/").await;
    assert_eq!(before, after, "the duplicate event wrote variants");
    let row = row_in(&clients, &names.table, &first.image_id).await;
    assert_eq!(
        statuses(&row),
        statuses(first),
        "the duplicate event changed the row"
    );

    // The gallery in a real browser: every image with its status, thumbnails loaded, the
    // failure's reason shown; then an upload made while the page is open appears by itself.
    let server = status_server(&endpoint, &id).await;
    // The stack's token, which a student reads from `hybridlab status` or the function.
    let token = clients
        .lambda
        .get_function_configuration()
        .function_name(&names.function)
        .send()
        .await
        .expect("GetFunctionConfiguration")
        .environment()
        .and_then(|e| e.variables())
        .and_then(|v| v.get("HYBRIDLAB_TOKEN").cloned())
        .expect("the stack's token");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    let driver = Driver::start().await.expect("chromium and chromedriver");
    let session = driver.session().await.expect("a browser window");
    session
        .goto(&format!("{server}/"))
        .await
        .expect("the sign-in page loads");
    // Without the session cookie the page is only the sign-in form; the token is typed once.
    let before = session
        .run("return [document.getElementById('sign-in-form') !== null, document.querySelectorAll('[data-image-id]').length];")
        .await
        .expect("the page reads");
    assert_eq!(
        before,
        serde_json::json!([true, 0]),
        "signed out: only the form"
    );
    session
        .run(&format!(
            "document.getElementById('sign-in-token').value = '{token}'; \
             document.getElementById('sign-in-form').submit(); return true;"
        ))
        .await
        .expect("the sign-in form submits");
    let signed_in = eventually(Duration::from_secs(20), || async {
        let state = session
            .run("return [document.getElementById('images') !== null, location.href, document.cookie];")
            .await
            .ok()?;
        (state[0] == true).then_some(state)
    })
    .await
    .expect("the gallery after signing in");
    assert_eq!(
        signed_in[1],
        format!("{server}/"),
        "the token is not in the URL"
    );
    assert_eq!(
        signed_in[2], "",
        "the session cookie is HttpOnly: no script reads it"
    );
    let expected: BTreeSet<String> = completed
        .iter()
        .chain([&failed])
        .map(|row| row.image_id.clone())
        .collect();
    let cards = eventually(Duration::from_secs(20), || async {
        let cards = session.run(READ_CARDS).await.ok()?;
        let ready = cards.as_array()?.iter().filter(|card| {
            card["status"] == "FAILED" || card["thumbnail"].as_i64().is_some_and(|w| w > 0)
        });
        let ids: BTreeSet<String> = ready
            .filter_map(|card| card["id"].as_str().map(str::to_owned))
            .collect();
        expected.is_subset(&ids).then_some(cards)
    })
    .await
    .expect("every image shown with its thumbnail loaded or its failure");
    let card = |id: &str| {
        cards
            .as_array()
            .and_then(|cards| cards.iter().find(|card| card["id"] == id))
            .cloned()
            .unwrap_or_default()
    };
    for row in &completed {
        let shown = card(&row.image_id);
        assert_eq!(shown["status"], "COMPLETED", "{shown}");
        assert_eq!(
            shown["thumbnail"], 150,
            "the thumbnail decoded at 150 px wide: {shown}"
        );
        for variant in ["thumbnail", "medium", "large", "original"] {
            assert!(
                shown["variants"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v == variant)),
                "{variant} linked: {shown}"
            );
        }
    }
    let shown = card(&failed.image_id);
    assert_eq!(shown["status"], "FAILED");
    assert!(
        shown["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{shown}"
    );
    let screenshot = session.screenshot().await.expect("a screenshot");
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG");
    // Kept for a person to look at (cargo's scratch directory for integration tests).
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pipeline-gallery.png");
    if std::fs::write(&kept, &screenshot).is_ok() {
        eprintln!("the gallery as Chromium drew it: {}", kept.display());
    }

    let late = dir.join("late.jpg");
    std::fs::write(&late, fixtures::jpeg(800, 600)).expect("write");
    let (code, late) = upload(&endpoint, &id, "presigned", &[&late]).await;
    assert_eq!(code, Some(0));
    let late_id = row_of(&late[0]).image_id;
    assert!(
        shown_completed(&session, &late_id).await,
        "the page showed the new upload COMPLETED without a reload"
    );

    // The page's own upload form: the browser asks the server for a presigned URL and PUTs
    // the file straight to S3 (across origins, so the uploads bucket's CORS rule is needed).
    let picked = dir.join("picked in the browser.jpg");
    std::fs::write(&picked, fixtures::jpeg(640, 480)).expect("write");
    session
        .choose_file("#upload-file", &picked)
        .await
        .expect("the file input takes the file");
    // The form asks no token: the session cookie signs the request for the upload URL.
    session
        .run("document.getElementById('upload-form').requestSubmit(); return true;")
        .await
        .expect("the form submits");
    let said = eventually(Duration::from_secs(20), || async {
        let text = session
            .run("return document.getElementById('upload-result').textContent;")
            .await
            .ok()?;
        let text = text.as_str()?.to_owned();
        (text.starts_with("uploaded ") || text.contains("refused") || text.contains("failed"))
            .then_some(text)
    })
    .await
    .expect("the form says how the upload went");
    let browser_id = said
        .strip_prefix("uploaded ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("the upload went through: {said}"))
        .to_owned();
    assert!(
        shown_completed(&session, &browser_id).await,
        "the browser's upload {browser_id} COMPLETED on the page"
    );
    let row = row_in(&clients, &names.table, &browser_id).await;
    assert_eq!(
        row.original_filename.as_deref(),
        Some("picked in the browser.jpg")
    );
    assert_eq!(row.status, ImageStatus::Completed);
    session.close().await;

    // Status lists the pipeline's resources; down removes them all.
    let status = run_cli(&endpoint, &["status", "--json", "--stack", &id], &[]).await;
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let resources = status["stacks"][0]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(resources.len(), 16, "{resources:?}");
    for name in [
        &names.uploads_bucket,
        &names.processed_bucket,
        &names.resizer,
    ] {
        assert!(
            resources
                .iter()
                .any(|r| r["name"] == name.as_str() && r["state"] != "missing"),
            "{name} in {resources:?}"
        );
    }
    down_leaves_nothing(&endpoint, &clients, &id).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stack's server address, as `status --json` reports it.
async fn status_server(endpoint: &str, id: &str) -> String {
    let status = run_cli(endpoint, &["status", "--json", "--stack", id], &[]).await;
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    status["stacks"][0]["server"]["endpoint"]
        .as_str()
        .expect("the server's endpoint")
        .trim_end_matches('/')
        .to_owned()
}
