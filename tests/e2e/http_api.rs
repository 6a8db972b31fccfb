//! An HTTP API (API Gateway v2) on the sandbox: made through the control plane, it answers at
//! the URL its `apiEndpoint` names, routes by method and path with path parameters, sends its
//! function the payload format 2.0 event and makes the response of its answer; it answers 500
//! while the function's policy does not let API Gateway invoke it, 404 where no route
//! matches, and 500 when the function fails.

use hybridlab_tests::sandbox::{EdgeClients, bootstrap_zip, deploy_function, edge_clients};
use serde_json::{Value, json};

use crate::common::http;

/// A call to API Gateway v2's control plane on the sandbox (the tests have no SDK for it):
/// the operator's key in a credential scope that names the service, as moto routes by it.
pub(crate) async fn control(
    clients: &EdgeClients,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = http()
        .request(method, format!("{}{path}", clients.endpoint))
        .header("content-type", "application/json")
        .header(
            "authorization",
            hybridlab_sandbox::moto::scope_authorization("apigateway", "us-east-1"),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("the control plane answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http().request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_api_routes_to_its_function_with_the_2_0_event_once_it_may_invoke_it() {
    let clients = edge_clients().await;
    let zip = tokio::task::spawn_blocking(|| bootstrap_zip("hybridlab-tests", "lab-test-function"))
        .await
        .expect("the build does not panic");
    let function = deploy_function(&clients, "api", zip, 5, &[]).await;
    let function_arn = clients.function_arn(&function).await;

    let api = control(
        &clients,
        reqwest::Method::POST,
        "/v2/apis",
        json!({"name": "jobs", "protocolType": "HTTP"}),
    )
    .await;
    let api_id = api["apiId"].as_str().expect("an id").to_owned();
    let endpoint = api["apiEndpoint"].as_str().expect("an endpoint").to_owned();
    assert_eq!(
        endpoint,
        format!("{}/_aws/execute-api/{api_id}", clients.endpoint)
    );
    let integration = control(
        &clients,
        reqwest::Method::POST,
        &format!("/v2/apis/{api_id}/integrations"),
        json!({"integrationType": "AWS_PROXY", "integrationUri": function_arn, "payloadFormatVersion": "2.0"}),
    )
    .await;
    let target = format!(
        "integrations/{}",
        integration["integrationId"].as_str().expect("an id")
    );
    for key in ["GET /jobs/{id}", "POST /jobs"] {
        control(
            &clients,
            reqwest::Method::POST,
            &format!("/v2/apis/{api_id}/routes"),
            json!({"routeKey": key, "target": target}),
        )
        .await;
    }
    control(
        &clients,
        reqwest::Method::POST,
        &format!("/v2/apis/{api_id}/stages"),
        json!({"stageName": "$default", "autoDeploy": true}),
    )
    .await;
    // GetApi says the same endpoint.
    let read = control(
        &clients,
        reqwest::Method::GET,
        &format!("/v2/apis/{api_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(read["apiEndpoint"], endpoint.as_str());

    // Lambda has not let API Gateway invoke the function yet: 500, as on AWS.
    let job = format!("{endpoint}/jobs/j-1?view=full");
    assert_eq!(
        call(reqwest::Method::GET, &job, None).await,
        (500, json!({"message": "Internal Server Error"}))
    );
    clients
        .lambda
        .add_permission()
        .function_name(&function)
        .statement_id("api")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:us-east-1:{}:{api_id}/*",
            hybridlab_sandbox::SANDBOX_ACCOUNT
        ))
        .send()
        .await
        .expect("the permission");

    let (status, answer) = call(reqwest::Method::GET, &job, None).await;
    assert_eq!(status, 200, "{answer}");
    let event = &answer["echo"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /jobs/{id}");
    assert_eq!(event["rawPath"], "/jobs/j-1");
    assert_eq!(event["pathParameters"]["id"], "j-1");
    assert_eq!(event["queryStringParameters"]["view"], "full");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(event["requestContext"]["apiId"], api_id.as_str());
    assert_eq!(event["requestContext"]["http"]["method"], "GET");

    // The function's own status, headers and body.
    let (status, answer) = call(
        reqwest::Method::POST,
        &format!("{endpoint}/jobs"),
        Some(json!({"respond": {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": "{\"id\":\"j-2\"}"}})),
    )
    .await;
    assert_eq!((status, answer), (201, json!({"id": "j-2"})));
    // A failing function, a path no route takes.
    assert_eq!(
        call(
            reqwest::Method::POST,
            &format!("{endpoint}/jobs"),
            Some(json!({"fail": "on purpose"}))
        )
        .await,
        (500, json!({"message": "Internal Server Error"}))
    );
    assert_eq!(
        call(
            reqwest::Method::DELETE,
            &format!("{endpoint}/jobs/j-1"),
            None
        )
        .await,
        (404, json!({"message": "Not Found"}))
    );
    assert_eq!(
        call(
            reqwest::Method::GET,
            &format!("{}/_aws/execute-api/nosuchapi/jobs", clients.endpoint),
            None
        )
        .await
        .0,
        404
    );
}
