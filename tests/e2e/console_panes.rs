//! The reads behind the console's S3 and DynamoDB views (`lab::s3::serve`, `lab::db::serve`)
//! against the shared stack on the sandbox: objects and rows put with plain SDK calls under an
//! image id or a test run of this test's own, then read back as the views read them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use hybridlab_console::lab::db::filter::parse_filter;
use hybridlab_console::lab::db::{self, DbRequest, PAGE_ROWS};
use hybridlab_console::lab::s3::{
    self, BucketChoice, Entry, S3Answer, S3Read, S3Request, VersionKind,
};
use hybridlab_provision::stack::{StackClients, Target};
use hybridlab_tests::fixtures;
use hybridlab_tests::lab::lab_stack;
use hybridlab_tests::sandbox::{EdgeClients, edge_clients};

use crate::common::http;

async fn put(clients: &EdgeClients, bucket: &str, key: &str, body: Vec<u8>, kind: &str) {
    let image_id = key.split('/').nth(1).unwrap_or_default();
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(kind)
        .metadata("image-id", image_id)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|err| panic!("PutObject {key}: {err:?}"));
}

async fn s3_read(clients: &StackClients, stack: &str, read: S3Read) -> S3Answer {
    let update = s3::serve(
        clients.clone(),
        S3Request {
            seq: 7,
            stack: Some(stack.to_owned()),
            bucket: BucketChoice::Images,
            read,
        },
    )
    .await;
    assert_eq!(update.seq, 7, "the answer carries its request's number");
    update.answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_view_lists_folders_reads_detail_versions_a_url_and_a_preview() {
    let lab = lab_stack().await;
    let edge = edge_clients().await;
    let clients = StackClients::connect(&Target::Sandbox {
        endpoint: lab.endpoint.clone(),
    })
    .await
    .expect("clients for the sandbox");
    let bucket = &lab.names.images_bucket;
    let image_id = format!("panes-{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("images/{image_id}/");
    let thumbnail = format!("{prefix}thumbnail.png");
    put(
        &edge,
        bucket,
        &thumbnail,
        fixtures::png(64, 48),
        "image/png",
    )
    .await;
    put(
        &edge,
        bucket,
        &thumbnail,
        fixtures::png(32, 24),
        "image/png",
    )
    .await;
    let notes = format!("{prefix}notes.txt");
    put(
        &edge,
        bucket,
        &notes,
        b"not a picture".to_vec(),
        "text/plain",
    )
    .await;
    let bomb = format!("{prefix}bomb.png");
    put(
        &edge,
        bucket,
        &bomb,
        fixtures::png_bomb(100_000, 100_000),
        "image/png",
    )
    .await;

    let S3Answer::Listed { more: false, page } = s3_read(
        &clients,
        &lab.stack,
        S3Read::List {
            prefix: "images/".into(),
            continuation: None,
        },
    )
    .await
    else {
        panic!("a listing");
    };
    let page = page.expect("images/ lists");
    assert!(
        page.entries.contains(&Entry::Folder(prefix.clone())),
        "the image is a folder under images/: {:?}",
        page.entries
    );

    let S3Answer::Listed { page, .. } = s3_read(
        &clients,
        &lab.stack,
        S3Read::List {
            prefix: prefix.clone(),
            continuation: None,
        },
    )
    .await
    else {
        panic!("a listing");
    };
    let keys: Vec<String> = page
        .expect("the image's prefix lists")
        .entries
        .iter()
        .map(|entry| entry.key().to_owned())
        .collect();
    assert_eq!(keys, [bomb.clone(), notes.clone(), thumbnail.clone()]);

    let S3Answer::Head(detail) = s3_read(
        &clients,
        &lab.stack,
        S3Read::Head {
            key: thumbnail.clone(),
        },
    )
    .await
    else {
        panic!("a detail");
    };
    let detail = detail.expect("HeadObject");
    assert_eq!(detail.content_type.as_deref(), Some("image/png"));
    assert_eq!(
        detail.metadata.get("image-id").map(String::as_str),
        Some(image_id.as_str())
    );

    let S3Answer::Versions(versions) = s3_read(
        &clients,
        &lab.stack,
        S3Read::Versions {
            key: thumbnail.clone(),
        },
    )
    .await
    else {
        panic!("versions");
    };
    let versions = versions.expect("ListObjectVersions");
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions.iter().all(|v| v.kind == VersionKind::Object));
    assert!(versions[0].is_latest, "newest first: {versions:?}");

    let S3Answer::Presigned(url) = s3_read(
        &clients,
        &lab.stack,
        S3Read::Presign {
            key: thumbnail.clone(),
        },
    )
    .await
    else {
        panic!("a URL");
    };
    let url = url.expect("presigned");
    let fetched = http().get(&url).send().await.expect("the URL answers");
    assert!(fetched.status().is_success(), "{}", fetched.status());
    assert_eq!(
        fetched.bytes().await.expect("a body").as_ref(),
        fixtures::png(32, 24).as_slice(),
        "the latest version, without credentials"
    );

    let S3Answer::Preview(preview) = s3_read(
        &clients,
        &lab.stack,
        S3Read::Preview {
            key: thumbnail.clone(),
        },
    )
    .await
    else {
        panic!("a preview");
    };
    let preview = preview.expect("the thumbnail decodes");
    assert_eq!((preview.source_width, preview.source_height), (32, 24));
    assert_eq!(preview.pixels.len(), 32 * 24);

    for (key, says) in [(&notes, "not an image"), (&bomb, "decode")] {
        let S3Answer::Preview(refused) =
            s3_read(&clients, &lab.stack, S3Read::Preview { key: key.clone() }).await
        else {
            panic!("a preview");
        };
        let err = refused.expect_err(key);
        assert!(err.contains(says), "{key}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    // A stack that is not there: one line that says what to do.
    let S3Answer::Listed { page, .. } = s3_read(
        &clients,
        "nosuch00",
        S3Read::List {
            prefix: String::new(),
            continuation: None,
        },
    )
    .await
    else {
        panic!("a listing");
    };
    let err = page.expect_err("no such stack");
    assert!(err.contains("hybridlab up --stack nosuch00"), "{err}");

    for key in [&thumbnail, &notes, &bomb] {
        hybridlab_tests::aws::delete_every_version(&edge.s3, bucket, key).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_view_pages_a_filtered_scan_without_losing_or_repeating_rows() {
    let lab = lab_stack().await;
    let edge = edge_clients().await;
    let clients = StackClients::connect(&Target::Sandbox {
        endpoint: lab.endpoint.clone(),
    })
    .await
    .expect("clients for the sandbox");
    let run = format!("panes-{}", uuid::Uuid::new_v4().simple());
    let count = PAGE_ROWS + 5;
    let mut ids = Vec::new();
    for index in 0..count {
        let image_id = format!("{run}-{index:03}");
        let item = HashMap::from([
            ("image_id".to_owned(), AttributeValue::S(image_id.clone())),
            ("status".to_owned(), AttributeValue::S("FAILED".into())),
            ("test_run".to_owned(), AttributeValue::S(run.clone())),
        ]);
        edge.dynamodb
            .put_item()
            .table_name(&lab.names.table)
            .set_item(Some(item))
            .send()
            .await
            .expect("PutItem");
        ids.push(image_id);
    }
    let filter = Some(parse_filter(&format!("test_run={run}")).expect("a filter"));
    let read = |start| {
        db::serve(
            clients.clone(),
            DbRequest {
                seq: 3,
                stack: Some(lab.stack.clone()),
                filter: filter.clone(),
                start,
            },
        )
    };
    let first = read(None).await;
    assert_eq!(first.seq, 3);
    let first = first.page.expect("the first page");
    assert_eq!(first.rows.len(), PAGE_ROWS);
    let next = first.next.clone().expect("a second page");
    let second = read(Some(next)).await.page.expect("the second page");
    assert_eq!(second.rows.len(), 5);
    assert_eq!(second.next, None, "the table ends");
    let mut seen: Vec<String> = first
        .rows
        .iter()
        .chain(&second.rows)
        .filter_map(|row| match row.get("image_id") {
            Some(AttributeValue::S(id)) => Some(id.clone()),
            _ => None,
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ids, "every row once");

    for image_id in &ids {
        edge.dynamodb
            .delete_item()
            .table_name(&lab.names.table)
            .key("image_id", AttributeValue::S(image_id.clone()))
            .send()
            .await
            .expect("DeleteItem");
    }
}
