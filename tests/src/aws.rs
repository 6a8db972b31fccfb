//! moto's server for the tests, and SDK clients and resources on it. One moto per test binary,
//! started on first use; every test makes its own uniquely named bucket and table, so tests
//! run in parallel without seeing each other. moto keeps everything in memory and stops with
//! the test process, so nothing a test creates outlives the run, even when it fails.

use std::sync::OnceLock;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use hybridlab_sandbox::moto::MotoServer;
use hybridlab_tools::ensure_moto;

static MOTO: OnceLock<MotoServer> = OnceLock::new();

/// The shared moto server, installed and started on first use.
pub fn moto() -> &'static MotoServer {
    MOTO.get_or_init(|| {
        let install = ensure_moto(&mut |message| eprintln!("{message}"))
            .unwrap_or_else(|err| panic!("moto is needed by the tests: {err}"));
        let log =
            std::env::temp_dir().join(format!("hybridlab-test-moto-{}.log", std::process::id()));
        MotoServer::start(&install, 0, &log)
            .unwrap_or_else(|err| panic!("moto is needed by the tests: {err}"))
    })
}

/// The region every test client uses.
pub const REGION: &str = "us-east-1";

/// S3 and DynamoDB clients on moto, with moto's throwaway credentials.
#[derive(Debug, Clone)]
pub struct Clients {
    pub endpoint: String,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

pub async fn clients() -> Clients {
    let endpoint = tokio::task::spawn_blocking(|| moto().endpoint())
        .await
        .expect("starting moto does not panic");
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "hybridlab-tests",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
    Clients {
        endpoint,
        s3,
        dynamodb,
    }
}

/// A name no other test uses: `prefix` and a random suffix, valid for buckets and tables.
pub fn unique_name(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..12])
}

impl Clients {
    pub async fn create_bucket(&self, name: &str) {
        self.s3
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("moto creates the bucket");
    }

    /// A table shaped as the stack's: on-demand, partition key `image_id`.
    pub async fn create_table(&self, name: &str) {
        create_image_table(&self.dynamodb, name).await;
    }

    /// Every key in `bucket`, sorted.
    pub async fn list_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.expect("moto lists the bucket");
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key().map(str::to_owned)),
            );
        }
        keys.sort();
        keys
    }

    /// Every row of `table`.
    pub async fn scan_all(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut pages = self
            .dynamodb
            .scan()
            .table_name(table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            items.push(item.expect("moto scans the table"));
        }
        items
    }

    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::get_object::GetObjectOutput {
        get_object(&self.s3, bucket, key).await
    }

    /// The bytes of the object at `key` in `bucket`.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Vec<u8> {
        object_bytes(&self.s3, bucket, key).await.to_vec()
    }
}

/// The object at `key` in `bucket`, which must exist.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> aws_sdk_s3::operation::get_object::GetObjectOutput {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|err| panic!("s3://{bucket}/{key} exists: {err:?}"))
}

/// The bytes of the object at `key` in `bucket`, which must exist.
pub async fn object_bytes(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bytes::Bytes {
    get_object(s3, bucket, key)
        .await
        .body
        .collect()
        .await
        .expect("readable")
        .into_bytes()
}

/// Deletes every version of every object whose key starts with `prefix` in a versioned
/// `bucket`, so a test leaves the shared stack's buckets as it found them.
pub async fn delete_every_version(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
    let versions = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectVersions");
    for version in versions.versions() {
        s3.delete_object()
            .bucket(bucket)
            .set_key(version.key().map(str::to_owned))
            .set_version_id(version.version_id().map(str::to_owned))
            .send()
            .await
            .expect("DeleteObject");
    }
}

/// A table shaped as the stack's on `dynamodb`: on-demand, partition key `image_id`.
pub async fn create_image_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("image_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("image_id")
                .key_type(KeyType::Hash)
                .build()
                .expect("complete key"),
        )
        .send()
        .await
        .expect("moto creates the table");
}
