//! `hybridlab s3` and `hybridlab db` against the shared stack on the sandbox: objects and rows
//! are put with plain SDK calls under a prefix or image id of each test's own, then read back
//! through the real binary, in text and in `--json`; the typed JSON is parsed back into
//! attribute values here (independently of the console's own conversion) and compared with
//! what GetItem returns. Bad input gets one line that says what to do and a non-zero exit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hybridlab_tests::lab::{LabStack, lab_stack};
use hybridlab_tests::sandbox::{EdgeClients, build_binary, edge_clients};
use hybridlab_tests::stack::hybridlab;
use serde_json::Value;

use crate::common::http;

type Item = HashMap<String, AttributeValue>;

/// Exit code of a missing key (`s3`) or image id (`db get`), as their `--help` documents.
const EXIT_NOT_FOUND: i32 = 3;
/// clap's exit code for a bad command line.
const EXIT_USAGE: i32 = 2;

async fn run_cli(endpoint: &str, args: &[&str]) -> Output {
    let endpoint = endpoint.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        hybridlab(&endpoint, &args, &[("NO_COLOR", "1")])
    })
    .await
    .expect("the CLI thread does not panic")
}

/// The binary run directly: in `dir`, with the endpoint only from `HYBRIDLAB_ENDPOINT`.
async fn run_cli_in(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    let dir = dir.to_owned();
    let endpoint = endpoint.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(build_binary("hybridlab-console", "hybridlab"))
            .args(&args)
            .current_dir(dir)
            .env("HYBRIDLAB_ENDPOINT", endpoint)
            .env("NO_COLOR", "1")
            .env_remove("HYBRIDLAB_FAIL_AFTER_STEP")
            .output()
            .expect("hybridlab runs")
    })
    .await
    .expect("the CLI thread does not panic")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the command succeeded and returns its standard output.
fn succeeded(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: exit {:?}, stderr: {}",
        output.status.code(),
        stderr(output)
    );
    stdout(output)
}

fn json_of(output: &Output, what: &str) -> Value {
    let text = succeeded(output, what);
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{what}: not one JSON document ({err}): {text}"))
}

/// Asserts a failure with `code` and exactly one line on stderr, and returns that line.
fn failed_with(output: &Output, code: i32, what: &str) -> String {
    let text = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout {} stderr {text}",
        stdout(output)
    );
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "{what}: one line: {text}"
    );
    text.trim_end().to_owned()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A directory of the test's own under the system's temporary directory.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("hybridlab-cli-data"));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

async fn put_object(clients: &EdgeClients, bucket: &str, key: &str, body: &[u8]) -> String {
    let put = clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("image/jpeg")
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|err| panic!("PutObject {key}: {err:?}"));
    put.version_id().unwrap_or("null").to_owned()
}

async fn delete_prefix(clients: &EdgeClients, bucket: &str, prefix: &str) {
    let listed = clients
        .s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectVersions");
    let versions = listed
        .versions()
        .iter()
        .map(|v| (v.key(), v.version_id()))
        .chain(
            listed
                .delete_markers()
                .iter()
                .map(|m| (m.key(), m.version_id())),
        );
    for (key, version) in versions {
        clients
            .s3
            .delete_object()
            .bucket(bucket)
            .key(key.unwrap_or_default())
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .expect("DeleteObject");
    }
}

async fn put_row(clients: &EdgeClients, table: &str, item: Item) {
    clients
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem");
}

async fn get_row(clients: &EdgeClients, table: &str, image_id: &str) -> Item {
    clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("image_id", AttributeValue::S(image_id.to_owned()))
        .send()
        .await
        .expect("GetItem")
        .item
        .unwrap_or_else(|| panic!("row {image_id} exists"))
}

async fn delete_rows(clients: &EdgeClients, table: &str, image_ids: &[String]) {
    for image_id in image_ids {
        clients
            .dynamodb
            .delete_item()
            .table_name(table)
            .key("image_id", AttributeValue::S(image_id.clone()))
            .send()
            .await
            .expect("DeleteItem");
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.to_owned())
}

/// DynamoDB's typed JSON read back into attribute values, written here from the format's
/// definition rather than borrowed from the console.
fn typed_value(json: &Value) -> AttributeValue {
    let object = json.as_object().expect("a typed value is an object");
    assert_eq!(object.len(), 1, "one type key: {json}");
    let (tag, payload) = object.iter().next().expect("one entry");
    let text = |value: &Value| value.as_str().expect("a string").to_owned();
    let blob = |value: &Value| Blob::new(BASE64.decode(text(value)).expect("base64"));
    let array = |value: &Value| value.as_array().expect("an array").clone();
    match tag.as_str() {
        "S" => AttributeValue::S(text(payload)),
        "N" => AttributeValue::N(text(payload)),
        "B" => AttributeValue::B(blob(payload)),
        "BOOL" => AttributeValue::Bool(payload.as_bool().expect("a bool")),
        "NULL" => AttributeValue::Null(payload.as_bool().expect("a bool")),
        "M" => AttributeValue::M(typed_item(payload)),
        "L" => AttributeValue::L(array(payload).iter().map(typed_value).collect()),
        "SS" => AttributeValue::Ss(array(payload).iter().map(text).collect()),
        "NS" => AttributeValue::Ns(array(payload).iter().map(text).collect()),
        "BS" => AttributeValue::Bs(array(payload).iter().map(blob).collect()),
        other => panic!("not a DynamoDB type: {other}"),
    }
}

fn typed_item(json: &Value) -> Item {
    json.as_object()
        .expect("an item is an object")
        .iter()
        .map(|(name, value)| (name.clone(), typed_value(value)))
        .collect()
}

/// Sets compared as sets: their order is not part of their value.
fn normalised(value: AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::Ss(mut items) => {
            items.sort();
            AttributeValue::Ss(items)
        }
        AttributeValue::Ns(mut items) => {
            items.sort();
            AttributeValue::Ns(items)
        }
        AttributeValue::Bs(mut items) => {
            items.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            AttributeValue::Bs(items)
        }
        AttributeValue::M(map) => AttributeValue::M(normalised_item(map)),
        AttributeValue::L(list) => AttributeValue::L(list.into_iter().map(normalised).collect()),
        other => other,
    }
}

fn normalised_item(item: Item) -> Item {
    item.into_iter()
        .map(|(name, value)| (name, normalised(value)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_ls_lists_the_keys_under_a_prefix_as_a_table_and_as_json() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let bucket = &lab.names.images_bucket;
    let prefix = format!("images/{}/", unique("ls"));
    let sizes = [
        ("original.jpg", 3000),
        ("thumbnail.jpg", 150),
        ("medium.jpg", 600),
    ];
    for (name, size) in sizes {
        put_object(
            &clients,
            bucket,
            &format!("{prefix}{name}"),
            &vec![7u8; size],
        )
        .await;
    }
    // Shares the prefix's text but not its last `/`: must not be listed.
    let neighbour = format!("{}-not/x.jpg", prefix.trim_end_matches('/'));
    put_object(&clients, bucket, &neighbour, b"x").await;

    let text = succeeded(
        &run_cli(&lab.endpoint, &["s3", "ls", &prefix, "--stack", &lab.stack]).await,
        "s3 ls",
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "header, 3 objects, total: {text}");
    assert!(
        lines[0].starts_with("KEY") && lines[0].contains("SIZE"),
        "{text}"
    );
    assert!(
        lines[0].contains("LAST MODIFIED"),
        "columns are named: {text}"
    );
    for (name, size) in sizes {
        let line = lines
            .iter()
            .find(|line| line.starts_with(&format!("{prefix}{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {text}"));
        assert!(line.contains(&format!(" {size}  ")), "{line}");
    }
    assert!(!text.contains(&neighbour), "{text}");
    assert!(lines[4].starts_with("3 objects, 3750 bytes"), "{text}");
    // Columns line up: every row starts its size column at the same place.
    let size_end = lines[0].find("SIZE").expect("SIZE") + "SIZE".len();
    for line in &lines[1..4] {
        assert_eq!(&line[size_end..size_end + 2], "  ", "aligned: {text}");
    }

    let json = json_of(
        &run_cli(
            &lab.endpoint,
            &["s3", "ls", &prefix, "--json", "--stack", &lab.stack],
        )
        .await,
        "s3 ls --json",
    );
    assert_eq!(json["bucket"], bucket.as_str());
    assert_eq!(json["count"], 3);
    assert_eq!(json["total_bytes"], 3750);
    let objects = json["objects"].as_array().expect("objects");
    for (name, size) in sizes {
        let object = objects
            .iter()
            .find(|o| o["key"] == format!("{prefix}{name}").as_str())
            .unwrap_or_else(|| panic!("{name} in {json}"));
        assert_eq!(object["size"], size);
        assert!(
            object["last_modified"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }

    // The artifacts bucket is the stack's other one: it holds the server, not these images.
    let artifacts = json_of(
        &run_cli(
            &lab.endpoint,
            &[
                "s3",
                "ls",
                "--bucket",
                "artifacts",
                "--json",
                "--stack",
                &lab.stack,
            ],
        )
        .await,
        "s3 ls --bucket artifacts",
    );
    assert_eq!(artifacts["bucket"], lab.names.artifacts_bucket.as_str());
    assert!(
        artifacts["count"].as_u64().is_some_and(|count| count > 0),
        "{artifacts}"
    );

    delete_prefix(&clients, bucket, &prefix).await;
    delete_prefix(&clients, bucket, &neighbour).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_get_writes_the_object_to_a_file_and_never_over_one_unasked() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let bucket = &lab.names.images_bucket;
    let key = format!("images/{}/thumbnail.jpg", unique("get"));
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    put_object(&clients, bucket, &key, &body).await;
    let dir = scratch_dir();

    let named = dir.join("copy.jpg");
    let named_arg = named.display().to_string();
    let json = json_of(
        &run_cli(
            &lab.endpoint,
            &[
                "s3", "get", &key, "-o", &named_arg, "--json", "--stack", &lab.stack,
            ],
        )
        .await,
        "s3 get -o FILE",
    );
    assert_eq!(std::fs::read(&named).expect("the file is written"), body);
    assert_eq!(json["size"], body.len());
    assert_eq!(json["path"], named_arg.as_str());

    // Without -o: the key's last segment, in the current directory.
    let output = run_cli_in(
        &dir,
        &lab.endpoint,
        &["s3", "get", &key, "--stack", &lab.stack],
    )
    .await;
    let text = succeeded(&output, "s3 get");
    assert!(
        text.contains("thumbnail.jpg") && text.contains("70000 bytes"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.join("thumbnail.jpg")).expect("written"),
        body
    );
    assert!(!dir.join("thumbnail.jpg.part").exists());

    // Again: the file is there, so it is left alone and the user told how to choose another.
    std::fs::write(dir.join("thumbnail.jpg"), b"mine").expect("write");
    let again = run_cli_in(
        &dir,
        &lab.endpoint,
        &["s3", "get", &key, "--stack", &lab.stack],
    )
    .await;
    let line = failed_with(&again, 1, "s3 get over an existing file");
    assert!(
        line.contains("already exists") && line.contains("-o FILE"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(dir.join("thumbnail.jpg")).expect("kept"),
        b"mine"
    );

    // `-o -`: the bytes on standard output (a pipe here, not a terminal).
    let piped = run_cli(
        &lab.endpoint,
        &["s3", "get", &key, "-o", "-", "--stack", &lab.stack],
    )
    .await;
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(piped.stdout, body);

    std::fs::remove_dir_all(&dir).expect("clean up");
    delete_prefix(&clients, bucket, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_presign_hands_out_a_url_that_fetches_the_object_and_refuses_bad_expiries() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let bucket = &lab.names.images_bucket;
    let key = format!("images/{}/medium.jpg", unique("presign"));
    let body = b"presigned bytes".to_vec();
    put_object(&clients, bucket, &key, &body).await;

    let output = run_cli(
        &lab.endpoint,
        &[
            "s3",
            "presign",
            &key,
            "--expires",
            "5m",
            "--stack",
            &lab.stack,
        ],
    )
    .await;
    let text = succeeded(&output, "s3 presign");
    assert_eq!(text.lines().count(), 1, "the URL alone: {text}");
    let url = text.trim();
    assert!(
        url.contains("X-Amz-Signature") && url.contains("X-Amz-Expires=300"),
        "{url}"
    );
    let fetched = http().get(url).send().await.expect("the URL answers");
    assert_eq!(fetched.status(), 200, "{url}");
    assert_eq!(
        fetched.bytes().await.expect("a body").as_ref(),
        body.as_slice()
    );

    let json = json_of(
        &run_cli(
            &lab.endpoint,
            &["s3", "presign", &key, "--json", "--stack", &lab.stack],
        )
        .await,
        "s3 presign --json",
    );
    assert_eq!(json["expires_in_s"], 900, "15 minutes by default: {json}");
    let url = json["url"].as_str().expect("a url");
    let fetched = http().get(url).send().await.expect("the URL answers");
    assert_eq!(fetched.status(), 200);

    for bad in ["8d", "0s", "soon"] {
        let output = run_cli(
            &lab.endpoint,
            &[
                "s3",
                "presign",
                &key,
                "--expires",
                bad,
                "--stack",
                &lab.stack,
            ],
        )
        .await;
        assert_eq!(output.status.code(), Some(EXIT_USAGE), "--expires {bad}");
        assert!(stderr(&output).contains(bad), "{}", stderr(&output));
    }
    let too_long = run_cli(
        &lab.endpoint,
        &[
            "s3",
            "presign",
            &key,
            "--expires",
            "8d",
            "--stack",
            &lab.stack,
        ],
    )
    .await;
    assert!(
        stderr(&too_long).contains("7 days"),
        "{}",
        stderr(&too_long)
    );

    let missing = format!("{key}.gone");
    let output = run_cli(
        &lab.endpoint,
        &["s3", "presign", &missing, "--stack", &lab.stack],
    )
    .await;
    let line = failed_with(&output, EXIT_NOT_FOUND, "presign of a missing key");
    assert!(
        line.contains("no object") && line.contains(&missing),
        "{line}"
    );

    delete_prefix(&clients, bucket, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_versions_shows_every_overwrite_and_the_delete_marker() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let bucket = &lab.names.images_bucket;
    let key = format!("images/{}/large.jpg", unique("versions"));
    let first = put_object(&clients, bucket, &key, b"first").await;
    let second = put_object(&clients, bucket, &key, b"second version").await;
    assert_ne!(first, second, "the images bucket is versioned");
    // A longer key under the same text is another key: not one of this key's versions.
    put_object(&clients, bucket, &format!("{key}.bak"), b"other").await;
    clients
        .s3
        .delete_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .expect("DeleteObject");

    let json = json_of(
        &run_cli(
            &lab.endpoint,
            &["s3", "versions", &key, "--json", "--stack", &lab.stack],
        )
        .await,
        "s3 versions --json",
    );
    let versions = json["versions"].as_array().expect("versions");
    assert_eq!(
        versions.len(),
        3,
        "two versions and a delete marker: {json}"
    );
    let markers: Vec<&Value> = versions
        .iter()
        .filter(|v| v["kind"] == "delete_marker")
        .collect();
    assert_eq!(markers.len(), 1, "{json}");
    assert_eq!(markers[0]["is_latest"], true);
    assert_eq!(versions[0]["kind"], "delete_marker", "newest first: {json}");
    let sizes: Vec<(String, u64)> = versions
        .iter()
        .filter(|v| v["kind"] == "object")
        .map(|v| {
            (
                v["version_id"].as_str().expect("an id").to_owned(),
                v["size"].as_u64().expect("a size"),
            )
        })
        .collect();
    assert!(sizes.contains(&(first.clone(), 5)), "{json}");
    assert!(sizes.contains(&(second, 14)), "{json}");

    let text = succeeded(
        &run_cli(
            &lab.endpoint,
            &["s3", "versions", &key, "--stack", &lab.stack],
        )
        .await,
        "s3 versions",
    );
    assert!(text.contains("delete marker"), "{text}");
    assert!(text.contains("2 versions, 1 delete marker"), "{text}");

    // The key is deleted: a plain get misses it, but its old versions are still there.
    let dir = scratch_dir();
    let target = dir.join("old.jpg").display().to_string();
    let gone = run_cli(
        &lab.endpoint,
        &["s3", "get", &key, "-o", &target, "--stack", &lab.stack],
    )
    .await;
    let line = failed_with(&gone, EXIT_NOT_FOUND, "get of a deleted key");
    assert!(line.contains("s3 versions"), "{line}");
    let old = run_cli(
        &lab.endpoint,
        &[
            "s3",
            "get",
            &key,
            "--version-id",
            &first,
            "-o",
            &target,
            "--stack",
            &lab.stack,
        ],
    )
    .await;
    succeeded(&old, "get --version-id");
    assert_eq!(std::fs::read(&target).expect("written"), b"first");

    std::fs::remove_dir_all(&dir).expect("clean up");
    delete_prefix(&clients, bucket, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_exits_3_with_a_line_that_says_where_to_look() {
    let lab = lab_stack().await;
    let prefix = format!("images/{}/", unique("missing"));
    let key = format!("{prefix}original.jpg");
    let dir = scratch_dir();
    let target = dir.join("x.jpg").display().to_string();
    let output = run_cli(
        &lab.endpoint,
        &["s3", "get", &key, "-o", &target, "--stack", &lab.stack],
    )
    .await;
    let line = failed_with(&output, EXIT_NOT_FOUND, "get of a missing key");
    assert!(
        line.contains(&key) && line.contains(&format!("hybridlab s3 ls {prefix}")),
        "{line}"
    );
    assert!(
        !Path::new(&target).exists(),
        "nothing written for a missing key"
    );

    let output = run_cli(
        &lab.endpoint,
        &["s3", "versions", &key, "--stack", &lab.stack],
    )
    .await;
    failed_with(&output, EXIT_NOT_FOUND, "versions of a missing key");

    // An empty listing is an answer, not an error.
    let output = run_cli(&lab.endpoint, &["s3", "ls", &prefix, "--stack", &lab.stack]).await;
    assert!(succeeded(&output, "ls of nothing").contains("No objects under"));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Seven rows of one test run: three FAILED, four COMPLETED, all tagged `test_run`.
async fn put_run_rows(clients: &EdgeClients, lab: &LabStack, run: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..7 {
        let image_id = format!("{run}-{index}");
        let status = if index % 2 == 1 {
            "FAILED"
        } else {
            "COMPLETED"
        };
        let item = Item::from([
            ("image_id".to_owned(), s(&image_id)),
            ("status".to_owned(), s(status)),
            ("test_run".to_owned(), s(run)),
            ("bucket".to_owned(), s(&lab.names.images_bucket)),
            ("size_bytes".to_owned(), n(&format!("{}", 1000 + index))),
            ("width".to_owned(), n("1600")),
            ("height".to_owned(), n("1000")),
            ("created_at".to_owned(), s("2026-01-01T00:00:00Z")),
            ("updated_at".to_owned(), s("2026-01-01T00:00:00Z")),
        ]);
        put_row(clients, &lab.names.table, item).await;
        ids.push(image_id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_scan_pages_up_to_the_limit_and_filters_on_every_condition() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let run = unique("scan");
    let ids = put_run_rows(&clients, lab, &run).await;
    let mine = format!("test_run={run}");

    // Two items evaluated per request: five rows take at least three pages.
    let json = json_of(
        &run_cli(
            &lab.endpoint,
            &[
                "db",
                "scan",
                "--filter",
                &mine,
                "--page-size",
                "2",
                "--limit",
                "5",
                "--json",
                "--stack",
                &lab.stack,
            ],
        )
        .await,
        "db scan --limit 5",
    );
    assert_eq!(json["count"], 5, "{json}");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(5));
    assert!(
        json["pages"].as_u64().is_some_and(|pages| pages >= 3),
        "{json}"
    );

    let all = json_of(
        &run_cli(
            &lab.endpoint,
            &[
                "db",
                "scan",
                "--filter",
                &mine,
                "--page-size",
                "2",
                "--json",
                "--stack",
                &lab.stack,
            ],
        )
        .await,
        "db scan",
    );
    assert_eq!(all["count"], 7, "{all}");
    assert_eq!(all["complete"], true);
    // Every row of the scan is exactly what GetItem returns.
    for typed in all["items"].as_array().expect("items") {
        let row = typed_item(typed);
        let Some(AttributeValue::S(image_id)) = row.get("image_id") else {
            panic!("an image_id: {typed}");
        };
        assert!(ids.contains(image_id), "{image_id} is one of this run's");
        assert_eq!(row, get_row(&clients, &lab.names.table, image_id).await);
    }

    let failed = json_of(
        &run_cli(
            &lab.endpoint,
            &[
                "db",
                "scan",
                "--filter",
                &mine,
                "--filter",
                "status=FAILED",
                "--json",
                "--stack",
                &lab.stack,
            ],
        )
        .await,
        "db scan --filter status=FAILED",
    );
    let statuses: Vec<&str> = failed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["status"]["S"].as_str().expect("a status"))
        .collect();
    assert_eq!(statuses, ["FAILED"; 3], "{failed}");

    let text = succeeded(
        &run_cli(
            &lab.endpoint,
            &[
                "db",
                "scan",
                "--filter",
                &mine,
                "--filter",
                "status=FAILED",
                "--stack",
                &lab.stack,
            ],
        )
        .await,
        "db scan (text)",
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "header, 3 rows, count: {text}");
    for column in ["IMAGE ID", "STATUS", "SIZE", "DIMENSIONS", "CREATED AT"] {
        assert!(lines[0].contains(column), "{column}: {text}");
    }
    for line in &lines[1..4] {
        assert!(line.starts_with(&run) && line.contains("FAILED"), "{line}");
        assert!(line.contains("1600x1000"), "{line}");
        assert!(!line.contains('\x1b'), "NO_COLOR: {line:?}");
    }
    assert!(lines[4].starts_with("3 rows matching"), "{text}");

    // Without a filter the limit alone caps the rows.
    let capped = json_of(
        &run_cli(
            &lab.endpoint,
            &[
                "db", "scan", "--limit", "3", "--json", "--stack", &lab.stack,
            ],
        )
        .await,
        "db scan --limit 3",
    );
    assert_eq!(capped["count"], 3, "{capped}");

    delete_rows(&clients, &lab.names.table, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_get_json_round_trips_every_dynamodb_type() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let image_id = unique("types");
    let nested = Item::from([
        (
            "deep".to_owned(),
            AttributeValue::Ns(vec!["1".into(), "2.5".into()]),
        ),
        ("flag".to_owned(), AttributeValue::Bool(false)),
    ]);
    let row = Item::from([
        ("image_id".to_owned(), s(&image_id)),
        ("status".to_owned(), s("COMPLETED")),
        ("s".to_owned(), s("héllo \"quoted\"")),
        ("n".to_owned(), n("12345678901234567890123456789012345678")),
        (
            "n_fraction".to_owned(),
            n("0.000123456789012345678901234567890123"),
        ),
        (
            "b".to_owned(),
            AttributeValue::B(Blob::new(vec![0u8, 159, 146, 150, 255])),
        ),
        ("bool".to_owned(), AttributeValue::Bool(true)),
        ("null".to_owned(), AttributeValue::Null(true)),
        ("m".to_owned(), AttributeValue::M(nested.clone())),
        (
            "l".to_owned(),
            AttributeValue::L(vec![s("a"), n("1"), AttributeValue::M(nested)]),
        ),
        (
            "ss".to_owned(),
            AttributeValue::Ss(vec!["x".into(), "y".into()]),
        ),
        (
            "ns".to_owned(),
            AttributeValue::Ns(vec!["3".into(), "0.5".into()]),
        ),
        (
            "bs".to_owned(),
            AttributeValue::Bs(vec![
                Blob::new(b"\x01\x02".to_vec()),
                Blob::new(b"\xff".to_vec()),
            ]),
        ),
    ]);
    put_row(&clients, &lab.names.table, row.clone()).await;
    let stored = get_row(&clients, &lab.names.table, &image_id).await;

    let json = json_of(
        &run_cli(
            &lab.endpoint,
            &["db", "get", &image_id, "--json", "--stack", &lab.stack],
        )
        .await,
        "db get --json",
    );
    assert_eq!(json["table"], lab.names.table.as_str());
    assert_eq!(
        json["item"]["n"],
        serde_json::json!({"N": "12345678901234567890123456789012345678"}),
        "numbers keep every digit"
    );
    let parsed = typed_item(&json["item"]);
    assert_eq!(
        parsed, stored,
        "the typed JSON is exactly what GetItem returns"
    );
    assert_eq!(
        normalised_item(parsed),
        normalised_item(row),
        "and what was put"
    );

    // The text form is plain JSON for people.
    let plain: Value = serde_json::from_str(&succeeded(
        &run_cli(
            &lab.endpoint,
            &["db", "get", &image_id, "--stack", &lab.stack],
        )
        .await,
        "db get",
    ))
    .expect("plain JSON");
    assert_eq!(plain["image_id"], image_id.as_str());
    assert_eq!(plain["m"]["flag"], false);
    assert_eq!(plain["null"], Value::Null);

    let missing = unique("no-such-image");
    let output = run_cli(
        &lab.endpoint,
        &["db", "get", &missing, "--stack", &lab.stack],
    )
    .await;
    let line = failed_with(&output, EXIT_NOT_FOUND, "db get of a missing image id");
    assert!(
        line.contains(&missing) && line.contains("hybridlab db scan"),
        "{line}"
    );

    delete_rows(&clients, &lab.names.table, &[image_id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_line_that_says_what_to_do() {
    let lab = lab_stack().await;

    for command in [&["s3", "ls"][..], &["db", "scan"][..]] {
        let args = [command, &["--stack", "zzzz9999"][..]].concat();
        let output = run_cli(&lab.endpoint, &args).await;
        let line = failed_with(&output, 1, "an unknown stack");
        assert!(line.contains("hybridlab up --stack zzzz9999"), "{line}");
        assert!(
            line.contains(&lab.stack),
            "it lists the stacks there: {line}"
        );
    }

    let output = run_cli(
        &lab.endpoint,
        &["db", "scan", "--filter", "status", "--stack", &lab.stack],
    )
    .await;
    assert_eq!(output.status.code(), Some(EXIT_USAGE));
    assert!(
        stderr(&output).contains("NAME=VALUE"),
        "{}",
        stderr(&output)
    );
    let output = run_cli(
        &lab.endpoint,
        &[
            "db",
            "scan",
            "--filter",
            "keys.original=x",
            "--stack",
            &lab.stack,
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(EXIT_USAGE));
    assert!(stderr(&output).contains("top-level"), "{}", stderr(&output));

    // Nothing listens on the discard port: the endpoint is unreachable.
    let dir = std::env::temp_dir();
    for command in [&["s3", "ls"][..], &["db", "get", "x"][..]] {
        let args = [command, &["--stack", lab.stack.as_str()][..]].concat();
        let output = run_cli_in(&dir, "http://127.0.0.1:9", &args).await;
        let line = failed_with(&output, 1, "an unreachable endpoint");
        assert!(
            line.contains("cannot reach the endpoint http://127.0.0.1:9")
                && line.contains("hybridlab sandbox"),
            "{line}"
        );
    }

    // The exit codes are documented where people look.
    for command in ["s3", "db"] {
        let help = succeeded(
            &run_cli(&lab.endpoint, &[command, "--help"]).await,
            "--help",
        );
        assert!(
            help.contains("Exit codes:") && help.contains("\n  3  no "),
            "{help}"
        );
    }
}
