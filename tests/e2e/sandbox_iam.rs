//! IAM enforced on a real stack: one statement taken out of a role's policy (as IAM lets an
//! operator do, and as a mistake in `provision` would) makes the step that needs it fail with
//! the error AWS sends, for the image server, the resizer and the proxy; put back, the step
//! works again at once (the edge forgets cached policies on every IAM write).

use std::time::Duration;

use hybridlab_provision::stack::describe::ROLE_POLICY_NAME;
use hybridlab_provision::stack::{StackId, StackNames};
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::sandbox::{EdgeClients, edge_clients};
use hybridlab_tests::stack::hybridlab_async as run_cli;
use serde_json::{Value, json};

use crate::common::{eventually, invoke};
use crate::pipeline::upload;
use crate::stack::down_leaves_nothing;

/// The stack role's policy document, and the same without statement `sid` (`None` when that
/// was its only statement: IAM takes no policy without statements, so it is deleted).
async fn policy_without(clients: &EdgeClients, role: &str, sid: &str) -> (String, Option<String>) {
    let output = clients
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name(ROLE_POLICY_NAME)
        .send()
        .await
        .expect("the role has the stack's policy");
    let document = urlencoding_decode(output.policy_document());
    let mut policy: Value = serde_json::from_str(&document).expect("a JSON policy");
    let statements = policy["Statement"].as_array_mut().expect("statements");
    let before = statements.len();
    statements.retain(|statement| statement["Sid"] != sid);
    assert_eq!(statements.len(), before - 1, "{role} has statement {sid}");
    let rest = (!statements.is_empty()).then(|| policy.to_string());
    (document, rest)
}

/// IAM answers policy documents URL-encoded (moto as IAM does).
fn urlencoding_decode(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        return text.to_owned();
    }
    url::form_urlencoded::parse(format!("d={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .expect("a decodable document")
}

async fn put_policy(clients: &EdgeClients, role: &str, document: Option<&str>) {
    let Some(document) = document else {
        clients
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(ROLE_POLICY_NAME)
            .send()
            .await
            .expect("IAM deletes the policy");
        return;
    };
    clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(ROLE_POLICY_NAME)
        .policy_document(document)
        .send()
        .await
        .expect("IAM takes the policy");
}

/// The proxy's answer for `url`: the HTTP status it returns and its body.
async fn process(clients: &EdgeClients, names: &StackNames, url: &str) -> (Value, String) {
    let invoked = invoke(clients, &names.function, json!({ "image_url": url })).await;
    assert_eq!(invoked.function_error, None, "{}", invoked.log);
    let body: Value = serde_json::from_str(invoked.payload["body"].as_str().expect("a body"))
        .expect("a JSON body");
    let request_id = invoked
        .log
        .lines()
        .find_map(|line| line.strip_prefix("REPORT RequestId: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the log tail has the REPORT line")
        .to_owned();
    assert_eq!(invoked.payload["statusCode"], body_status(&body), "{body}");
    (body, request_id)
}

fn body_status(body: &Value) -> u16 {
    if body.get("error").is_some() {
        502
    } else {
        200
    }
}

async fn row_error(clients: &EdgeClients, table: &str, id: &str) -> (String, String) {
    let item = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            "image_id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .send()
        .await
        .expect("GetItem")
        .item()
        .cloned()
        .expect("the row exists");
    let field = |name: &str| {
        item.get(name)
            .and_then(|value| value.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (field("status"), field("error"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_taken_from_a_stack_role_fails_its_step_with_the_error_aws_sends() {
    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();
    let id = StackId::generate().to_string();
    let names = StackNames::new(&StackId::parse(&id).expect("a valid id"));
    let up = run_cli(
        &endpoint,
        &["up", "--json", "--stack", &id, "--with", "pipeline"],
        &[],
    )
    .await;
    assert!(
        up.status.success(),
        "up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let images = ImageHost::start().await;
    let url = images.add("photo.jpg", fixtures::jpeg(800, 600), "image/jpeg");
    let (body, _) = process(&clients, &names, &url).await;
    assert!(body.get("error").is_none(), "with the whole policy: {body}");

    // The server without StoreImages: its PutObject is refused as S3 refuses it, the row
    // says why, and nothing of the image is kept.
    let (whole, without) = policy_without(&clients, &names.server_role, "StoreImages").await;
    put_policy(&clients, &names.server_role, without.as_deref()).await;
    let (body, _) = process(&clients, &names, &url).await;
    assert_eq!(body["error"], "storage_failed", "{body}");
    let image_id = body["message"]
        .as_str()
        .and_then(|message| message.strip_prefix("image "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the message names the image")
        .to_owned();
    let (status, error) = row_error(&clients, &names.table, &image_id).await;
    assert_eq!(status, "FAILED");
    assert!(
        error.contains("AccessDenied")
            && error.contains(&format!(
                "is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::{}/images/{image_id}/",
                names.images_bucket
            ))
            && error.contains("because no identity-based policy allows the s3:PutObject action"),
        "{error}"
    );
    put_policy(&clients, &names.server_role, Some(&whole)).await;
    let (body, _) = process(&clients, &names, &url).await;
    assert!(body.get("error").is_none(), "the policy put back: {body}");

    // The resizer without WriteVariants: the upload ends FAILED with S3's refusal.
    let (whole, without) = policy_without(&clients, &names.resizer_role, "WriteVariants").await;
    put_policy(&clients, &names.resizer_role, without.as_deref()).await;
    let dir = std::env::temp_dir().join(format!("hybridlab-iam-{id}"));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let photo = dir.join("photo.jpg");
    std::fs::write(&photo, fixtures::jpeg(640, 480)).expect("write");
    let (_, outcomes) = upload(&endpoint, &id, "presigned", &[&photo]).await;
    let outcome = &outcomes[0];
    let row = &outcome["row"];
    assert_eq!(row["status"], "FAILED", "{outcome}");
    let reason = row["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("AccessDenied")
            && reason.contains("s3:PutObject")
            && reason.contains(&names.processed_bucket),
        "{outcome}"
    );
    put_policy(&clients, &names.resizer_role, Some(&whole)).await;
    let (_, outcomes) = upload(&endpoint, &id, "presigned", &[&photo]).await;
    assert_eq!(outcomes[0]["row"]["status"], "COMPLETED", "{outcomes:?}");

    // The proxy without OwnLogGroup: Lambda cannot write its log stream, so the invocation's
    // lines never reach CloudWatch (AWS drops them without a word), while they still come
    // back in the invocation's log tail.
    let (whole, without) = policy_without(&clients, &names.lambda_role, "OwnLogGroup").await;
    put_policy(&clients, &names.lambda_role, without.as_deref()).await;
    let (_, unlogged) = process(&clients, &names, &url).await;
    // Lines are authorised when they are shipped (within a tenth of a second on a quiet
    // sandbox): the policy comes back only after this invocation's had their turn.
    tokio::time::sleep(Duration::from_secs(3)).await;
    put_policy(&clients, &names.lambda_role, Some(&whole)).await;
    let (_, logged) = process(&clients, &names, &url).await;
    let report = |request_id: String| {
        let clients = clients.clone();
        let group = names.function_log_group.clone();
        async move {
            let lines = clients.log_messages(&group).await;
            lines
                .iter()
                .any(|line| line.starts_with(&format!("REPORT RequestId: {request_id}")))
                .then_some(())
        }
    };
    assert!(
        eventually(Duration::from_secs(20), || report(logged.clone()))
            .await
            .is_some(),
        "the invocation after the policy came back is logged"
    );
    // Shipped in order: once the later line is in, the earlier one would be too.
    assert!(
        report(unlogged.clone()).await.is_none(),
        "the invocation without logs permissions is not in CloudWatch"
    );

    down_leaves_nothing(&endpoint, &clients, &id).await;
    let _ = std::fs::remove_dir_all(&dir);
}
