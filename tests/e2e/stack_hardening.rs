//! The stack's launch and teardown as AWS would receive them, seen through a recording proxy
//! in front of the sandbox: the instance is launched with standard CPU credits unless asked
//! (none for a type that is not burstable); `down` stops what writes to the buckets (the
//! instance, terminated and waited for) before it empties them; every unfinished multipart
//! upload is aborted, over as many ListMultipartUploads pages as there are; and `down --all`
//! finds a stack's resources in another region.

use hybridlab_provision::stack::progress::silent;
use hybridlab_provision::stack::{
    CpuCredits, DownReport, Scope, StackClients, StackError, StackId, StackNames, StackSettings,
    Step, Target, UpOptions, down, up,
};
use hybridlab_tests::sandbox::{EdgeClients, edge_clients, lab_programs};
use hybridlab_tests::stack::leftovers;
use hybridlab_tests::tap::{EdgeTap, Tapped};

async fn clients_at(endpoint: &str) -> StackClients {
    StackClients::connect(&Target::Sandbox {
        endpoint: endpoint.to_owned(),
    })
    .await
    .expect("clients for the sandbox")
}

/// `up` of a stack with `settings` that stops after `step`, as a crash would.
async fn up_until(clients: &StackClients, id: &StackId, settings: StackSettings, step: Step) {
    let options = UpOptions {
        stack: id.clone(),
        settings,
        artifacts: lab_programs(),
        fail_after: Some(step),
    };
    let err = up(clients, options, silent())
        .await
        .expect_err("the injected fault stops up");
    assert!(
        matches!(err, StackError::FaultInjected(s) if s == step),
        "{err}"
    );
}

/// Tears stack `id` down on the sandbox itself (not through a tap), whatever a test left, and
/// says what remains.
async fn clean_up(edge: &EdgeClients, id: &StackId) -> Vec<String> {
    let clients = clients_at(&edge.endpoint).await;
    let _ = down(&clients, &Scope::Stack(id.clone()), silent()).await;
    leftovers(edge, id.as_str()).await
}

/// The `CreditSpecification.CpuCredits` of the RunInstances requests that passed.
fn credits_sent(tapped: &[Tapped]) -> Vec<Option<String>> {
    tapped
        .iter()
        .filter(|t| t.action() == Some("RunInstances"))
        .map(|t| {
            t.body
                .split('&')
                .find_map(|pair| pair.strip_prefix("CreditSpecification.CpuCredits="))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_runs_on_standard_credits_and_is_gone_before_its_buckets_are_emptied() {
    let edge = edge_clients().await;
    let tap = EdgeTap::start(&edge.endpoint, 1000).await;
    let tapped_clients = clients_at(&tap.endpoint()).await;
    let id = StackId::generate();
    let names = StackNames::new(&id);

    up_until(
        &tapped_clients,
        &id,
        StackSettings::new("us-east-1"),
        Step::Instance,
    )
    .await;
    let launched = credits_sent(&tap.tapped());
    // Something for `down` to empty, as the server would have stored.
    edge.s3
        .put_object()
        .bucket(&names.images_bucket)
        .key("images/0001/original.jpg")
        .body(b"jpeg".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    let before_down = tap.tapped().len();
    let report = down(&tapped_clients, &Scope::Stack(id.clone()), silent()).await;
    let teardown: Vec<Tapped> = tap.tapped().split_off(before_down);
    let left = clean_up(&edge, &id).await;

    assert_eq!(launched, vec![Some("standard".to_owned())], "RunInstances");
    let report: DownReport = report.expect("down");
    assert!(report.remaining.is_empty(), "{:?}", report.remaining);
    assert!(left.is_empty(), "left behind: {left:?}");
    let position = |what: &str, found: &dyn Fn(&Tapped) -> bool| {
        teardown
            .iter()
            .position(found)
            .unwrap_or_else(|| panic!("no {what} in the teardown"))
    };
    let terminate = position("TerminateInstances", &|t| {
        t.action() == Some("TerminateInstances")
    });
    let terminated = teardown
        .iter()
        .enumerate()
        .skip(terminate + 1)
        .find(|(_, t)| {
            t.action() == Some("DescribeInstances") && t.answer.contains("<name>terminated</name>")
        })
        .map(|(index, _)| index)
        .expect("a DescribeInstances answering terminated after TerminateInstances");
    let first_emptying = position("the images bucket's ListObjectVersions", &|t| {
        t.method == "GET"
            && t.uri.starts_with(&format!("/{}", names.images_bucket))
            && t.has_query("versions")
    });
    assert!(
        terminate < terminated && terminated < first_emptying,
        "TerminateInstances at {terminate}, terminated at {terminated}, the bucket emptied from {first_emptying}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_credits_are_sent_only_when_asked_and_never_for_other_types() {
    let edge = edge_clients().await;
    let tap = EdgeTap::start(&edge.endpoint, 1000).await;
    let tapped_clients = clients_at(&tap.endpoint()).await;
    let (unlimited, large) = (StackId::generate(), StackId::generate());
    up_until(
        &tapped_clients,
        &unlimited,
        StackSettings {
            cpu_credits: CpuCredits::Unlimited,
            ..StackSettings::new("us-east-1")
        },
        Step::Instance,
    )
    .await;
    let asked = credits_sent(&tap.tapped());
    up_until(
        &tapped_clients,
        &large,
        StackSettings {
            instance_type: "m5.large".into(),
            ..StackSettings::new("us-east-1")
        },
        Step::Instance,
    )
    .await;
    let both = credits_sent(&tap.tapped());
    let left = [
        clean_up(&edge, &unlimited).await,
        clean_up(&edge, &large).await,
    ]
    .concat();

    assert_eq!(asked, vec![Some("unlimited".to_owned())]);
    assert_eq!(both, vec![Some("unlimited".to_owned()), None], "m5.large");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_aborts_every_multipart_upload_over_several_pages() {
    const UPLOADS: usize = 25;
    let edge = edge_clients().await;
    // Ten uploads a page: three pages.
    let tap = EdgeTap::start(&edge.endpoint, 10).await;
    let tapped_clients = clients_at(&tap.endpoint()).await;
    let id = StackId::generate();
    let names = StackNames::new(&id);
    up_until(
        &tapped_clients,
        &id,
        StackSettings::new("us-east-1"),
        Step::ImagesBucket,
    )
    .await;
    for n in 0..UPLOADS {
        edge.s3
            .create_multipart_upload()
            .bucket(&names.images_bucket)
            .key(format!("images/{n:04}/original.jpg"))
            .send()
            .await
            .expect("CreateMultipartUpload");
    }
    let before_down = tap.tapped().len();
    let report = down(&tapped_clients, &Scope::Stack(id.clone()), silent()).await;
    let teardown: Vec<Tapped> = tap.tapped().split_off(before_down);
    let left = clean_up(&edge, &id).await;

    let in_bucket = |t: &&Tapped| t.uri.starts_with(&format!("/{}", names.images_bucket));
    let pages = teardown
        .iter()
        .filter(in_bucket)
        .filter(|t| t.method == "GET" && t.has_query("uploads"))
        .count();
    let aborted = teardown
        .iter()
        .filter(in_bucket)
        .filter(|t| t.method == "DELETE" && t.has_query("uploadId") && t.status == 204)
        .count();
    assert_eq!(pages, 3, "ListMultipartUploads pages");
    assert_eq!(aborted, UPLOADS, "AbortMultipartUpload");
    let report = report.expect("down");
    assert!(report.remaining.is_empty(), "{:?}", report.remaining);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_all_looks_for_stacks_in_every_region() {
    let edge = edge_clients().await;
    let home = clients_at(&edge.endpoint).await;
    let away = home.in_region("eu-west-1");
    let id = StackId::generate();
    let names = StackNames::new(&id);
    let scope = Scope::Stack(id.clone());
    // A stack's table and log group in another region than the target's.
    away.logs
        .create_log_group()
        .log_group_name(&names.server_log_group)
        .send()
        .await
        .expect("CreateLogGroup in eu-west-1");
    let created = away
        .dynamodb
        .create_table()
        .table_name(&names.table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("image_id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("an attribute"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("image_id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("a key"),
        )
        .send()
        .await;
    let found = hybridlab_provision::stack::down::other_regions_with_stacks(&home, &scope).await;
    let report = down(&away, &scope, silent()).await;
    let after = hybridlab_provision::stack::down::other_regions_with_stacks(&home, &scope).await;
    let home_found = hybridlab_provision::stack::inventory(&home, &scope).await;

    created.expect("CreateTable in eu-west-1");
    assert_eq!(
        found.expect("regions searched"),
        vec!["eu-west-1".to_owned()]
    );
    let report = report.expect("down in eu-west-1");
    assert_eq!(report.deleted.len(), 2, "{:?}", report.deleted);
    assert!(report.remaining.is_empty(), "{:?}", report.remaining);
    assert_eq!(after.expect("regions searched"), Vec::<String>::new());
    assert_eq!(
        home_found.expect("inventory"),
        vec![],
        "nothing in us-east-1"
    );
}
