//! The data plane of API Gateway's HTTP APIs (v2), which moto does not have: a request to
//! `/_aws/execute-api/{api-id}/{stage}/{path}` on the edge (for the `$default` stage,
//! `/_aws/execute-api/{api-id}/{path}`, the form LocalStack uses) takes the route API Gateway
//! would choose ([`routing`]), and its Lambda proxy integration gets the payload format 2.0
//! event and makes the response of the function's answer ([`payload`]). As on AWS, a function
//! whose policy does not let `apigateway.amazonaws.com` invoke it for this API answers 500,
//! and a route with an authorizer never lets a request through unchecked. The API, its
//! stages, routes and integrations are read from moto's control plane on each request, and
//! the `apiEndpoint` moto answers is rewritten to this URL.

pub mod payload;
pub mod routing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::iam;
use super::lambda_host::{InvocationType, InvokeError, InvokeOutcome, InvokeRequest, LambdaHost};
use payload::Response;
use routing::RouteKey;

/// Where the data plane listens on the edge.
pub const EXECUTE_API_PREFIX: &str = "/_aws/execute-api";

/// What the data plane needs from the rest of the agent.
#[derive(Clone)]
pub struct HttpApis {
    pub moto_endpoint: String,
    pub edge_endpoint: String,
    pub http: reqwest::Client,
    pub lambda: Arc<LambdaHost>,
    pub lambda_control: aws_sdk_lambda::Client,
    pub region: String,
    pub account: String,
}

/// A request to an API, as the edge received it.
pub struct ApiRequest {
    pub api_id: String,
    /// Everything after the API id, without the leading `/`.
    pub rest: String,
    pub method: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: String,
}

/// The URL clients reach API `api_id` at (what `apiEndpoint` says).
pub fn endpoint_of(edge_endpoint: &str, api_id: &str) -> String {
    format!("{edge_endpoint}{EXECUTE_API_PREFIX}/{api_id}")
}

/// Rewrites every `apiEndpoint` of a control-plane answer (one API, or a page of `items`).
pub fn show_endpoints(answer: &mut Value, edge_endpoint: &str) {
    let mut rewrite = |api: &mut Value| {
        if let Some(id) = api["apiId"].as_str().map(str::to_owned)
            && api.get("apiEndpoint").is_some()
        {
            api["apiEndpoint"] = Value::from(endpoint_of(edge_endpoint, &id));
        }
    };
    match answer.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(&mut rewrite),
        None => rewrite(answer),
    }
}

/// The function ARN of a Lambda integration's `integrationUri` (the ARN itself, or API
/// Gateway's `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`).
pub fn function_of(uri: &str) -> Option<&str> {
    if uri.starts_with("arn:aws:lambda:") {
        return Some(uri);
    }
    uri.split_once("/functions/")?
        .1
        .strip_suffix("/invocations")
}

impl HttpApis {
    /// A GET of moto's API Gateway v2 control plane.
    async fn control(&self, path: &str) -> Result<Value, String> {
        let response = self
            .http
            .get(format!("{}{path}", self.moto_endpoint))
            .header(
                "authorization",
                super::moto::scope_authorization("apigateway", &self.region),
            )
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|err| err.to_string())?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Value::Null);
        }
        if !status.is_success() {
            return Err(format!("{path}: HTTP {status}"));
        }
        serde_json::from_slice(&body).map_err(|err| format!("{path}: {err}"))
    }

    /// Answers one request to an API.
    pub async fn serve(&self, request: ApiRequest) -> Response {
        match self.answer(&request).await {
            Ok(response) => response,
            Err(reason) => {
                tracing::warn!(api = %request.api_id, method = %request.method, path = %request.rest, "{reason}");
                Response::internal_error()
            }
        }
    }

    async fn answer(&self, request: &ApiRequest) -> Result<Response, String> {
        let api_path = format!("/v2/apis/{}", request.api_id);
        let api = self.control(&api_path).await?;
        if api.is_null() || api["protocolType"] != "HTTP" {
            return Ok(Response::message(404, "Not Found"));
        }
        let stages: Vec<Value> = self.control(&format!("{api_path}/stages")).await?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let named = |name: &str| {
            stages
                .iter()
                .find(|stage| stage["stageName"] == name)
                .cloned()
        };
        let (first, after_first) = request.rest.split_once('/').unwrap_or((&request.rest, ""));
        let (stage, raw_path) = match named(first).filter(|_| first != "$default") {
            Some(stage) => (stage, format!("/{after_first}")),
            None => match named("$default") {
                Some(stage) => (stage, format!("/{}", request.rest)),
                None => return Ok(Response::message(404, "Not Found")),
            },
        };
        let stage_name = stage["stageName"].as_str().unwrap_or("$default").to_owned();
        let routes: Vec<(RouteKey, Value)> =
            self.control(&format!("{api_path}/routes")).await?["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|route| {
                    Some((RouteKey::parse(route["routeKey"].as_str()?)?, route.clone()))
                })
                .collect();
        let decoded_path = iam::percent_decode(&raw_path);
        let Some((route, parameters)) = routing::select(&routes, &request.method, &decoded_path)
        else {
            return Ok(Response::message(404, "Not Found"));
        };
        let route_key = route["routeKey"].as_str().unwrap_or_default().to_owned();
        match route["authorizationType"].as_str().unwrap_or("NONE") {
            "NONE" => {}
            "JWT" => {
                tracing::warn!(route = %route_key, "a JWT authorizer is not modelled by hybridlab's sandbox: the request is refused");
                return Ok(Response::message(401, "Unauthorized"));
            }
            other => {
                tracing::warn!(route = %route_key, authorization = %other, "this authorizer is not modelled by hybridlab's sandbox: the request is refused");
                return Ok(Response::message(403, "Forbidden"));
            }
        }
        let integration_id = route["target"]
            .as_str()
            .and_then(|target| target.strip_prefix("integrations/"))
            .ok_or_else(|| format!("route {route_key} has no integration"))?;
        let integration = self
            .control(&format!("{api_path}/integrations/{integration_id}"))
            .await?;
        if integration["integrationType"] != "AWS_PROXY"
            || integration["payloadFormatVersion"]
                .as_str()
                .unwrap_or("2.0")
                != "2.0"
        {
            return Err(format!(
                "integration {integration_id} is {} with payload format {}: hybridlab's sandbox runs Lambda proxy integrations with format 2.0 only",
                integration["integrationType"], integration["payloadFormatVersion"]
            ));
        }
        let function_arn = integration["integrationUri"]
            .as_str()
            .and_then(function_of)
            .ok_or_else(|| format!("integration {integration_id} names no function"))?
            .to_owned();
        let route_path = route_key
            .split_once(' ')
            .map_or(route_key.as_str(), |(_, path)| path);
        let method_part = route_key.split_once(' ').map_or("", |(method, _)| method);
        let source_arn = if route_key == "$default" {
            format!(
                "arn:aws:execute-api:{}:{}:{}/{stage_name}/$default",
                self.region, self.account, request.api_id
            )
        } else {
            format!(
                "arn:aws:execute-api:{}:{}:{}/{stage_name}/{}{route_path}",
                self.region,
                self.account,
                request.api_id,
                if method_part == "ANY" {
                    "*"
                } else {
                    method_part
                }
            )
        };
        if !super::authorizer::service_may_invoke(
            &self.lambda_control,
            &function_arn,
            "apigateway.amazonaws.com",
            &source_arn,
            &self.account,
        )
        .await
        {
            return Err(format!(
                "the policy of {function_arn} does not let apigateway.amazonaws.com invoke it for {source_arn} (lambda add-permission)"
            ));
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let stage_variables: Map<String, Value> = stage["stageVariables"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let time_epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let domain = self
            .edge_endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        let parameters: BTreeMap<String, String> = parameters;
        let event = payload::event(&payload::Request {
            account: &self.account,
            api_id: &request.api_id,
            stage: &stage_name,
            route_key: &route_key,
            method: &request.method,
            raw_path: &raw_path,
            raw_query: &request.query,
            headers: &request.headers,
            body: &request.body,
            path_parameters: &parameters,
            stage_variables: &stage_variables,
            source_ip: &request.source_ip,
            request_id: &request_id,
            time_epoch_ms,
            domain: &domain,
        });
        let timeout = Duration::from_millis(
            integration["timeoutInMillis"]
                .as_u64()
                .unwrap_or(30_000)
                .clamp(50, 30_000),
        );
        let invoked = tokio::time::timeout(
            timeout,
            self.lambda.invoke(InvokeRequest {
                // The host reads the function's name from its ARN.
                function: function_arn.clone(),
                payload: Bytes::from(event.to_string()),
                invocation_type: InvocationType::RequestResponse,
                log_tail: false,
            }),
        )
        .await;
        let mut response = match invoked {
            Err(_) => Response::message(503, "Service Unavailable"),
            Ok(Err(InvokeError::Throttled { .. })) => Response::message(503, "Service Unavailable"),
            Ok(Err(err)) => return Err(format!("invoking {function_arn}: {err}")),
            Ok(Ok(InvokeOutcome::Completed {
                function_error: Some(_),
                payload,
                ..
            })) => {
                tracing::info!(function = %function_arn, error = %String::from_utf8_lossy(&payload), "the integration's function failed");
                Response::internal_error()
            }
            Ok(Ok(InvokeOutcome::Completed { payload, .. })) => payload::response(&payload),
            Ok(Ok(other)) => return Err(format!("unexpected answer {other:?}")),
        };
        response
            .headers
            .push(("apigw-requestid".into(), request_id));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_integration_uris_are_read_as_api_gateway_writes_them() {
        let mut one = serde_json::json!({"apiId": "abc", "apiEndpoint": "https://abc.execute-api.us-east-1.amazonaws.com"});
        show_endpoints(&mut one, "http://127.0.0.1:4566");
        assert_eq!(
            one["apiEndpoint"],
            "http://127.0.0.1:4566/_aws/execute-api/abc"
        );
        let mut page = serde_json::json!({"items": [{"apiId": "x", "apiEndpoint": "https://x"}]});
        show_endpoints(&mut page, "http://e");
        assert_eq!(
            page["items"][0]["apiEndpoint"],
            "http://e/_aws/execute-api/x"
        );
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:submit";
        assert_eq!(function_of(arn), Some(arn));
        assert_eq!(
            function_of(&format!(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
            )),
            Some(arn)
        );
        assert_eq!(function_of("http://example.com"), None);
    }
}
