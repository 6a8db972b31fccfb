//! Lambda's REST API: the function named in the path (a name, a partial or a full ARN, with or
//! without a qualifier) becomes `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`;
//! CreateFunction and an UpdateFunctionConfiguration that changes the role also need
//! `iam:PassRole` on the role, passed to `lambda.amazonaws.com`
//! (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html).

use serde_json::Value;

use super::json::tags;
use super::{
    Classified, HttpRequestParts, Outcome, Scope, pass_role, percent_decode, request_tags,
    role_from_arn_or_name,
};
use crate::iam::context::{RequestContext, Resource};

/// The API versions Lambda's paths start with.
const VERSIONS: &[&str] = &[
    "2015-03-31",
    "2016-08-19",
    "2017-03-31",
    "2017-10-31",
    "2018-10-31",
    "2019-09-25",
    "2019-09-30",
    "2020-04-22",
    "2020-06-30",
    "2021-10-31",
];

pub(super) fn is_lambda_path(path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').split('/');
    segments
        .next()
        .is_some_and(|version| VERSIONS.contains(&version))
        && segments.next().is_some_and(|collection| {
            matches!(
                collection,
                "functions" | "event-source-mappings" | "tags" | "account-settings"
            )
        })
}

pub(super) fn body_needed(request: &HttpRequestParts<'_>) -> bool {
    let segments = segments(request.path);
    let names: Vec<&str> = segments.iter().map(String::as_str).collect();
    !matches!(names.as_slice(), [_, "functions", _, "invocations"])
        && matches!(request.method, "POST" | "PUT")
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect()
}

/// The ARN of function `name` (a name, `NAME:QUALIFIER`, `ACCOUNT:function:NAME` or a full
/// ARN), qualified by `qualifier` when given.
pub(super) fn function_arn(name: &str, qualifier: Option<&str>, scope: &Scope<'_>) -> String {
    let mut arn = lambda_function_arn(name, scope.region, scope.account);
    // `...:function:NAME` has seven parts; a qualifier makes eight.
    if let Some(qualifier) = qualifier.filter(|q| !q.is_empty())
        && arn.split(':').count() == 7
    {
        arn = format!("{arn}:{qualifier}");
    }
    arn
}

/// The ARN of function `name` as Lambda's API takes it in `FunctionName` (a name,
/// `ACCOUNT:function:NAME` or a full ARN), in `region` of `account`.
pub fn lambda_function_arn(name: &str, region: &str, account: &str) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else if let Some((account, rest)) = name.split_once(":function:") {
        format!("arn:aws:lambda:{region}:{account}:function:{rest}")
    } else {
        format!("arn:aws:lambda:{region}:{account}:function:{name}")
    }
}

fn body(request: &HttpRequestParts<'_>) -> Result<Value, String> {
    if request.body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(request.body)
        .map_err(|err| format!("the body is not JSON ({err}); was it passed?"))
}

pub(super) fn classify(request: &HttpRequestParts<'_>, scope: &Scope<'_>) -> Outcome {
    let segments = segments(request.path);
    let names: Vec<&str> = segments.iter().map(String::as_str).collect();
    let qualifier = url::form_urlencoded::parse(request.query.as_bytes())
        .find(|(name, _)| name == "Qualifier")
        .map(|(_, value)| value.into_owned());
    let function = |name: &str| Resource::arn(function_arn(name, qualifier.as_deref(), scope));
    let one = |operation: &str, resource: Resource| {
        Ok(Classified::one(
            operation,
            &format!("lambda:{operation}"),
            resource,
        ))
    };
    let method = request.method;
    match (method, names.as_slice()) {
        ("POST", [_, "functions", name, "invocations"]) => Ok(Classified::one(
            "Invoke",
            "lambda:InvokeFunction",
            function(name),
        )),
        ("GET", [_, "functions"]) => one("ListFunctions", Resource::any()),
        ("POST", [_, "functions"]) => {
            let body = body(request)?;
            let name = body
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or("Lambda CreateFunction without a FunctionName")?;
            let arn = function_arn(name, None, scope);
            let mut create =
                RequestContext::new("lambda:CreateFunction", Resource::arn(arn.clone()));
            request_tags(&mut create, &tags(body.get("Tags")));
            let mut checks = vec![create];
            if let Some(role) = body.get("Role").and_then(Value::as_str) {
                checks.push(pass_role(
                    role_from_arn_or_name(scope, role),
                    "lambda.amazonaws.com",
                    &arn,
                ));
            }
            Ok(Classified::new("CreateFunction", checks))
        }
        ("GET", [_, "functions", name]) => one("GetFunction", function(name)),
        ("DELETE", [_, "functions", name]) => one("DeleteFunction", function(name)),
        ("GET", [_, "functions", name, "configuration"]) => {
            one("GetFunctionConfiguration", function(name))
        }
        ("PUT", [_, "functions", name, "configuration"]) => {
            let body = body(request)?;
            let resource = function(name);
            let arn = resource.as_str().to_owned();
            let mut checks = vec![RequestContext::new(
                "lambda:UpdateFunctionConfiguration",
                resource,
            )];
            if let Some(role) = body.get("Role").and_then(Value::as_str) {
                checks.push(pass_role(
                    role_from_arn_or_name(scope, role),
                    "lambda.amazonaws.com",
                    &arn,
                ));
            }
            Ok(Classified::new("UpdateFunctionConfiguration", checks))
        }
        ("PUT", [_, "functions", name, "code"]) => one("UpdateFunctionCode", function(name)),
        ("GET", [_, "functions", name, "policy"]) => one("GetPolicy", function(name)),
        ("POST", [_, "functions", name, "policy"]) => {
            let body = body(request)?;
            let mut check = RequestContext::new("lambda:AddPermission", function(name));
            if let Some(principal) = body.get("Principal").and_then(Value::as_str) {
                check.set_key("lambda:Principal", [principal]);
            }
            if let Some(auth) = body.get("FunctionUrlAuthType").and_then(Value::as_str) {
                check.set_key("lambda:FunctionUrlAuthType", [auth]);
            }
            Ok(Classified::new("AddPermission", vec![check]))
        }
        ("DELETE", [_, "functions", name, "policy", _sid]) => {
            one("RemovePermission", function(name))
        }
        ("GET", [_, "functions", name, "versions"]) => {
            one("ListVersionsByFunction", function(name))
        }
        ("POST", [_, "functions", name, "versions"]) => one("PublishVersion", function(name)),
        ("GET", [_, "functions", name, "aliases"]) => one("ListAliases", function(name)),
        ("POST", [_, "functions", name, "aliases"]) => one("CreateAlias", function(name)),
        ("GET", [_, "functions", name, "aliases", _]) => one("GetAlias", function(name)),
        ("PUT", [_, "functions", name, "aliases", _]) => one("UpdateAlias", function(name)),
        ("DELETE", [_, "functions", name, "aliases", _]) => one("DeleteAlias", function(name)),
        ("PUT", [_, "functions", name, "concurrency"]) => {
            one("PutFunctionConcurrency", function(name))
        }
        ("DELETE", [_, "functions", name, "concurrency"]) => {
            one("DeleteFunctionConcurrency", function(name))
        }
        ("GET", [_, "functions", name, "concurrency"]) => {
            one("GetFunctionConcurrency", function(name))
        }
        ("PUT", [_, "functions", name, "event-invoke-config"]) => {
            one("PutFunctionEventInvokeConfig", function(name))
        }
        ("POST", [_, "functions", name, "event-invoke-config"]) => {
            one("UpdateFunctionEventInvokeConfig", function(name))
        }
        ("GET", [_, "functions", name, "event-invoke-config"]) => {
            one("GetFunctionEventInvokeConfig", function(name))
        }
        ("DELETE", [_, "functions", name, "event-invoke-config"]) => {
            one("DeleteFunctionEventInvokeConfig", function(name))
        }
        ("POST", [_, "functions", name, "url"]) => one("CreateFunctionUrlConfig", function(name)),
        ("GET", [_, "functions", name, "url"]) => one("GetFunctionUrlConfig", function(name)),
        ("PUT", [_, "functions", name, "url"]) => one("UpdateFunctionUrlConfig", function(name)),
        ("DELETE", [_, "functions", name, "url"]) => one("DeleteFunctionUrlConfig", function(name)),
        ("GET", [_, "event-source-mappings"]) => one("ListEventSourceMappings", Resource::any()),
        ("POST", [_, "event-source-mappings"]) => {
            let body = body(request)?;
            let mut check = RequestContext::new("lambda:CreateEventSourceMapping", Resource::any());
            if let Some(name) = body.get("FunctionName").and_then(Value::as_str) {
                check.set_key("lambda:FunctionArn", [function_arn(name, None, scope)]);
            }
            request_tags(&mut check, &tags(body.get("Tags")));
            Ok(Classified::new("CreateEventSourceMapping", vec![check]))
        }
        (method, [_, "event-source-mappings", id]) => {
            let operation = match method {
                "GET" => "GetEventSourceMapping",
                "PUT" => "UpdateEventSourceMapping",
                "DELETE" => "DeleteEventSourceMapping",
                _ => {
                    return Err(format!(
                        "Lambda {method} on an event source mapping is not an operation"
                    ));
                }
            };
            one(
                operation,
                Resource::arn(format!(
                    "arn:aws:lambda:{}:{}:event-source-mapping:{id}",
                    scope.region, scope.account
                )),
            )
        }
        (method, [_, "tags", arn]) => {
            let operation = match method {
                "GET" => "ListTags",
                "POST" => "TagResource",
                "DELETE" => "UntagResource",
                _ => return Err(format!("Lambda {method} on tags is not an operation")),
            };
            let mut check = RequestContext::new(format!("lambda:{operation}"), Resource::arn(*arn));
            if operation == "TagResource" {
                let body = body(request)?;
                request_tags(&mut check, &tags(body.get("Tags")));
            }
            Ok(Classified::new(operation, vec![check]))
        }
        ("GET", [_, "account-settings"]) => one("GetAccountSettings", Resource::any()),
        _ => Err(format!(
            "Lambda {method} {} is not an operation the sandbox knows",
            request.path
        )),
    }
}
