//! API Gateway's v2 control plane (HTTP and WebSocket APIs, `/v2/...` signed for
//! `apigateway`). AWS authorises it by HTTP verb and path, not by operation: the action is
//! `apigateway:GET|POST|PUT|PATCH|DELETE` and the resource is
//! `arn:aws:apigateway:REGION::PATH`, the request's path without `/v2`
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-control-access-using-iam-policies-to-create-and-manage-api.html,
//! and the HTTP API and WebSocket API resources of
//! https://docs.aws.amazon.com/apigateway/latest/developerguide/arn-format-reference.html).
//! Tags a create or `TagResource` sets are `aws:RequestTag/KEY` and `aws:TagKeys`
//! (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-iam-policy.html).
//!
//! Only the paths below are known; any other comes back unknown, and so does everything
//! outside `/v2`, such as the sandbox's HTTP API data plane under `/_aws/execute-api`, which
//! is `execute-api:Invoke`, not a control-plane call. Not modelled: the
//! `apigateway:Request/*` and `apigateway:Resource/*` condition keys.

use serde_json::Value;

use super::json::tags;
use super::{Classified, HttpRequestParts, Outcome, Scope, percent_decode, request_tags};
use crate::iam::context::{RequestContext, Resource};

/// Whether [`classify`] needs the body: the tags of a create and of `TagResource` are there.
pub(super) fn body_needed(request: &HttpRequestParts<'_>) -> bool {
    request.method == "POST"
}

fn body(request: &HttpRequestParts<'_>) -> Result<Value, String> {
    if request.body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(request.body)
        .map_err(|err| format!("the body is not JSON ({err}); was it passed?"))
}

/// The API operation of `method` on `segments` (the decoded path after `/v2`), if it is one.
fn operation(method: &str, segments: &[&str]) -> Option<&'static str> {
    let on_one = |get, update, delete| match method {
        "GET" => Some(get),
        "PATCH" => Some(update),
        "DELETE" => Some(delete),
        _ => None,
    };
    let on_many = |list, create| match method {
        "GET" => Some(list),
        "POST" => Some(create),
        _ => None,
    };
    match segments {
        ["apis"] => on_many("GetApis", "CreateApi"),
        ["apis", _] => on_one("GetApi", "UpdateApi", "DeleteApi"),
        ["apis", _, "integrations"] => on_many("GetIntegrations", "CreateIntegration"),
        ["apis", _, "integrations", _] => {
            on_one("GetIntegration", "UpdateIntegration", "DeleteIntegration")
        }
        ["apis", _, "routes"] => on_many("GetRoutes", "CreateRoute"),
        ["apis", _, "routes", _] => on_one("GetRoute", "UpdateRoute", "DeleteRoute"),
        ["apis", _, "stages"] => on_many("GetStages", "CreateStage"),
        ["apis", _, "stages", _] => on_one("GetStage", "UpdateStage", "DeleteStage"),
        ["apis", _, "deployments"] => on_many("GetDeployments", "CreateDeployment"),
        ["apis", _, "deployments", _] => {
            on_one("GetDeployment", "UpdateDeployment", "DeleteDeployment")
        }
        ["apis", _, "cors"] => (method == "DELETE").then_some("DeleteCorsConfiguration"),
        _ => None,
    }
}

pub(super) fn classify(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let method = request.method;
    let unknown = || {
        format!(
            "API Gateway {method} {} is not an operation the sandbox knows",
            request.path
        )
    };
    let rest = request.path.strip_prefix("/v2/").ok_or_else(unknown)?;
    let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
    let names: Vec<&str> = segments.iter().map(String::as_str).collect();
    if names.iter().any(|segment| segment.is_empty()) {
        return Err(unknown());
    }
    let region = scope.region;
    let check = |path: &str| {
        RequestContext::new(
            format!("apigateway:{method}"),
            Resource::arn(format!("arn:aws:apigateway:{region}::/{path}")),
        )
    };
    if let ["tags", arn @ ..] = names.as_slice() {
        // The SDKs send the tagged resource's ARN as one percent-encoded segment; joined, a
        // client that left its `/` unencoded names the same ARN. IAM evaluates the decoded ARN
        // (`.../tags/arn:aws:apigateway:REGION::/apis/ID` in refusals of TagResource), which
        // the Service Authorization Reference writes `/tags/${UrlEncodedResourceARN}`.
        let arn = arn.join("/");
        let mut check = check(&format!("tags/{arn}"));
        let operation = match method {
            "GET" => "GetTags",
            "POST" => {
                request_tags(&mut check, &tags(body(request)?.get("tags")));
                "TagResource"
            }
            "DELETE" => {
                let keys: Vec<String> = url::form_urlencoded::parse(request.query.as_bytes())
                    .filter(|(name, _)| name == "tagKeys")
                    .map(|(_, key)| key.into_owned())
                    .collect();
                check.set_key("aws:TagKeys", keys);
                "UntagResource"
            }
            _ => return Err(unknown()),
        };
        return Ok(Classified::new(operation, vec![check]));
    }
    let operation = operation(method, &names).ok_or_else(unknown)?;
    let path = names.join("/");
    let mut checks = vec![check(&path)];
    if matches!(operation, "CreateApi" | "CreateStage") {
        let tags = tags(body(request)?.get("tags"));
        request_tags(&mut checks[0], &tags);
        // Tag-on-create: a CreateStage with tags is also authorised as
        // `apigateway:TagResource` (no HTTP verb) on the API's stage collection. The
        // Service Authorization Reference does not list it; refusals quote it ("not
        // authorized to perform: apigateway:TagResource on resource:
        // arn:aws:apigateway:eu-west-3::/apis/ID/stages",
        // https://github.com/aws-amplify/amplify-cli/issues/12316, and the same for a
        // Terraform `aws_apigatewayv2_stage` with tags). Whether a CreateApi with tags
        // needs it too on `/apis` is not documented and no refusal of it was found, so it is
        // not modelled: CreateApi is checked as `apigateway:POST` alone.
        if operation == "CreateStage" && !tags.is_empty() {
            let mut tag = RequestContext::new(
                "apigateway:TagResource",
                Resource::arn(format!("arn:aws:apigateway:{region}::/{path}")),
            );
            request_tags(&mut tag, &tags);
            checks.push(tag);
        }
    }
    Ok(Classified::new(operation, checks))
}
