//! The sandbox's edge port: one endpoint for every AWS client. Lambda `Invoke` is answered
//! here by running the function; everything else is forwarded to moto unchanged, and the
//! Lambda control-plane calls that change a function are watched on their way through, so the
//! agent keeps each function's code and replaces stale environments. Requests from web pages
//! are refused before any of that (see [`super::web_guard`]). Each request's caller is told
//! from its access key (see [`identify_caller`]): STS's `GetCallerIdentity` for the keys the
//! sandbox issued to its functions and instances is answered here (see [`super::sts`]).
//! Requests signed with those keys (and the operator's, under an operator policy) are
//! authorised before any handler or moto sees them (see [`super::authorizer`]).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::authorizer::{Authorizer, Gate, IamMode};
use super::code::CodeStore;
use super::iam;
use super::lambda_host::{
    InvocationType, InvokeError, InvokeOutcome, InvokeRequest, LambdaHost, function_name,
};
use super::principals::{Caller, PrincipalTable};
use super::s3_events::{
    FORM_FIELDS_LIMIT, NotificationCache, ObjectCreated, POST_EVENT, event_document, event_matches,
    is_s3_request, key_matches, notification_functions, object_created, post_form_key,
    unvalidated_destinations,
};
use super::timing::{self, FunctionPhase, Settling, TimedCall};

/// Largest control-plane body the edge reads whole: a 50 MB zip, base64-encoded, in JSON.
const MAX_CAPTURED_BODY: usize = 80 * 1024 * 1024;
/// Largest STS body the edge reads to find its action (STS's largest, AssumeRole with a
/// session policy and tags, is a few kilobytes).
const MAX_STS_BODY: usize = 1024 * 1024;
/// Largest notification configuration the edge reads to validate its destinations (S3 keeps
/// at most a few hundred configurations, well under this).
const MAX_NOTIFICATION_BODY: usize = 1024 * 1024;
/// Largest request body an HTTP API takes (API Gateway's payload limit is 10 MB).
const MAX_API_BODY: usize = 10 * 1024 * 1024;

/// What the edge needs.
#[derive(Clone)]
pub struct EdgeState {
    pub moto_endpoint: String,
    pub client: reqwest::Client,
    pub lambda: Arc<LambdaHost>,
    pub code: Arc<CodeStore>,
    pub s3: aws_sdk_s3::Client,
    pub notifications: Arc<NotificationCache>,
    pub region: String,
    pub status: Arc<dyn Fn() -> Value + Send + Sync>,
    /// Held while a DynamoDB write is with moto: see [`is_dynamodb_write`].
    pub dynamodb_writes: Arc<tokio::sync::Mutex<()>>,
    /// The credentials the sandbox issued to its functions and instances.
    pub principals: Arc<PrincipalTable>,
    /// Decides, for the principals it checks, whether a request may go on.
    pub authorizer: Arc<Authorizer>,
    /// AWS's waits: IAM propagation, functions Pending, instances booting.
    pub settling: Arc<Settling>,
    /// Lambda's control plane on moto, for the function policies S3 checks.
    pub lambda_control: aws_sdk_lambda::Client,
    /// The console output of the instances the sandbox booted.
    pub consoles: Arc<super::ec2_host::ConsoleOutputs>,
    /// The event source mappings whose source is a DynamoDB stream: the agent runs them.
    pub stream_mappings: Arc<super::stream_mapping::StreamMappings>,
    /// The data plane of API Gateway's HTTP APIs.
    pub http_apis: Arc<super::http_api::HttpApis>,
    /// EC2's On-Demand vCPU quota.
    pub vcpu_quota: Arc<VcpuQuota>,
}

/// EC2's quota of On-Demand vCPUs running at once (AWS's "Running On-Demand Standard
/// instances"), counted on moto's pending and running instances.
pub struct VcpuQuota {
    ec2: aws_sdk_ec2::Client,
    pub limit: u32,
    /// Held from a launch's check until moto has answered it.
    launching: tokio::sync::Mutex<()>,
}

impl VcpuQuota {
    pub fn new(ec2: aws_sdk_ec2::Client, limit: u32) -> Self {
        Self {
            ec2,
            limit,
            launching: tokio::sync::Mutex::new(()),
        }
    }

    /// The vCPUs of every pending or running instance.
    async fn in_use(&self) -> Result<u32, String> {
        let mut pages = self
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .into_paginator()
            .send();
        let mut vcpus = 0;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                vcpus += timing::vcpus(instance.instance_type().map_or("m1.small", |t| t.as_str()));
            }
        }
        Ok(vcpus)
    }
}

/// Whether a request is a DynamoDB write. DynamoDB applies each write to an item atomically,
/// condition included, so of two conditional updates racing on one item exactly one passes
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
/// moto's threaded server checks the condition and writes in separate steps, and both racers
/// can pass; the edge therefore hands moto one write at a time.
fn is_dynamodb_write(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.strip_prefix("DynamoDB_20120810."))
        .is_some_and(|operation| {
            matches!(
                operation,
                "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
            )
        })
}

/// The edge router.
pub fn router(state: EdgeState) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .route("/_hybridlab/health", get(health))
        .route(
            &format!("{}/{{api}}", super::http_api::EXECUTE_API_PREFIX),
            any(execute_api),
        )
        .route(
            &format!("{}/{{api}}/{{*rest}}", super::http_api::EXECUTE_API_PREFIX),
            any(execute_api),
        )
        .fallback(forward)
        .layer(DefaultBodyLimit::disable())
        // Inside IAM: a refused request changes nothing whose timing is kept.
        .layer(axum::middleware::from_fn_with_state(
            (state.settling.clone(), state.vcpu_quota.clone()),
            keep_aws_timing,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.authorizer.clone(),
            enforce_iam,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.principals.clone(),
            identify_caller,
        ))
        // Outermost, so nothing a web page sends reaches a handler or moto.
        .layer(axum::middleware::from_fn(
            super::web_guard::refuse_web_pages,
        ))
        .with_state(state)
}

/// Tells who sent a request from the access key that signed it, and leaves the answer in the
/// request's extensions as a [`Caller`] for the handlers (and for IAM enforcement) to read.
/// A key the sandbox issued names its role session; any other key is the operator's.
async fn identify_caller(
    State(principals): State<Arc<PrincipalTable>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = principals.caller(request.headers(), request.uri().query().unwrap_or(""));
    tracing::debug!(
        caller = %caller,
        method = %request.method(),
        path = %request.uri().path(),
        "request"
    );
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Authorises a request before anything acts on it (see [`super::authorizer`]), and forgets
/// the cached policies and names once an IAM write has gone through.
async fn enforce_iam(
    State(authorizer): State<Arc<Authorizer>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous);
    let checked = authorizer.checks(&caller);
    let (parts, body) = request.into_parts();
    let credential = match &caller {
        Caller::Principal { credential, .. } | Caller::Operator(credential) => Some(credential),
        Caller::Anonymous => None,
    };
    let signed_for_iam = credential.is_some_and(|c| c.scope_service.as_deref() == Some("iam"));
    let needs_body =
        signed_for_iam || (checked && iam::body_needed(&iam::HttpRequestParts::new(&parts, &[])));
    let (bytes, body) = if needs_body {
        match read_body(body, MAX_CAPTURED_BODY, "the request to authorise it").await {
            Ok(bytes) => (bytes.clone(), Body::from(bytes)),
            Err(refusal) => return refusal,
        }
    } else {
        (Bytes::new(), body)
    };
    let when_missing = if checked {
        match authorizer.decide(&caller, &parts, &bytes).await {
            Gate::Refuse(refusal) => return refusal.into_response(),
            Gate::Pass { when_missing } => when_missing,
        }
    } else {
        None
    };
    let query = parts.uri.query().unwrap_or("");
    let iam_action = signed_for_iam
        .then(|| super::sts::action(query, &bytes))
        .flatten();
    let iam_write = signed_for_iam
        && iam_action
            .as_deref()
            .is_none_or(|a| !is_read_only_iam_action(a));
    if let Some(change) = iam_action.as_deref().and_then(permissions_change) {
        let role = match change {
            PermissionsChange::Role => super::sts::form_value(query, &bytes, "RoleName"),
            PermissionsChange::ManagedPolicy => None,
        };
        authorizer.before_permissions_change(role.as_deref()).await;
    }
    let bucket_policy_write = credential.is_some_and(|c| c.scope_service.as_deref() == Some("s3"))
        && matches!(parts.method, http::Method::PUT | http::Method::DELETE)
        && (query
            .split('&')
            .any(|pair| pair == "policy" || pair.starts_with("policy="))
            // A deleted bucket's name may come back without a policy.
            || (parts.method == http::Method::DELETE
                && query.is_empty()
                && !parts.uri.path().trim_matches('/').contains('/')));
    let response = next.run(Request::from_parts(parts, body)).await;
    if iam_write && response.status().is_success() {
        authorizer.iam_changed();
    }
    if bucket_policy_write && response.status().is_success() {
        authorizer.bucket_policy_changed();
    }
    match when_missing {
        Some(refusal) if response.status() == StatusCode::NOT_FOUND => (*refusal).into_response(),
        _ => response,
    }
}

/// Keeps AWS's timing (see [`super::timing`]): refuses what AWS refuses while a role or instance
/// profile propagates or a function is Pending or updating, remembers what changed once moto
/// has accepted it, and shows functions and instances in the state AWS would show.
async fn keep_aws_timing(
    State((settling, quota)): State<(Arc<Settling>, Arc<VcpuQuota>)>,
    request: Request,
    next: Next,
) -> Response {
    let (scope, region) = match request.extensions().get::<Caller>() {
        Some(Caller::Principal { credential, .. } | Caller::Operator(credential)) => (
            credential.scope_service.clone(),
            credential.scope_region.clone(),
        ),
        _ => (None, None),
    };
    let refuse = |(service, error): (iam::Service, iam::ServiceError)| {
        tracing::info!(code = %error.code, message = %error.message, "refused as AWS would at this moment");
        let request_id = uuid::Uuid::new_v4().to_string();
        iam::error_response(service, &error, &request_id, false).into_response()
    };
    let (parts, body) = request.into_parts();
    let (method, path) = (parts.method.as_str(), parts.uri.path());
    let (bytes, body) = if timing::body_needed(method, path, scope.as_deref()) {
        match read_body(body, MAX_CAPTURED_BODY, "the request").await {
            Ok(bytes) => (bytes.clone(), Body::from(bytes)),
            Err(refusal) => return refusal,
        }
    } else {
        (Bytes::new(), body)
    };
    let query = parts.uri.query().unwrap_or("");
    let now = Instant::now();
    if let Some(class) = timing::rate_class(method, path, query, scope.as_deref(), &bytes)
        && !settling.admit(class, now)
    {
        return refuse(class.throttled());
    }
    let call = timing::recognise(method, path, query, scope.as_deref(), &bytes);
    let Some(call) = call else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let function_arn = |name: &str| {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            region
                .as_deref()
                .unwrap_or(hybridlab_wire::sandbox::DEFAULT_REGION),
            super::SANDBOX_ACCOUNT
        )
    };
    let refusal = match &call {
        TimedCall::CreateFunction { role, .. } if !settling.role_assumable(role, now) => {
            Some(timing::role_not_assumable())
        }
        TimedCall::UpdateFunction { name, role } => timing::function_busy(
            settling.function_phase(name, now),
            &function_arn(name),
            true,
        )
        .or_else(|| {
            role.as_deref()
                .filter(|role| !settling.role_assumable(role, now))
                .map(|_| timing::role_not_assumable())
        }),
        TimedCall::Invoke { name } => timing::function_busy(
            settling.function_phase(name, now),
            &function_arn(name),
            false,
        ),
        TimedCall::RunInstances {
            profile: Some(profile),
            ..
        } if !settling.profile_known(profile, now) => Some(timing::profile_unknown(profile)),
        TimedCall::CreateBucket { name } if !settling.bucket_name_free(name, now) => {
            Some(timing::bucket_name_busy())
        }
        _ => None,
    };
    if let Some(refusal) = refusal {
        return refuse(refusal);
    }
    // A launch is checked against the vCPU quota and made under one lock, so that two
    // launches at once cannot both pass it.
    let _launching = match &call {
        TimedCall::RunInstances {
            instance_type,
            min_count,
            ..
        } => {
            let launching = quota.launching.lock().await;
            match quota.in_use().await {
                Ok(in_use) if in_use + timing::vcpus(instance_type) * min_count > quota.limit => {
                    return refuse(timing::vcpu_limit_exceeded(quota.limit));
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot count the running instances' vCPUs")
                }
            }
            Some(launching)
        }
        _ => None,
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    if !response.status().is_success() {
        return response;
    }
    let now = Instant::now();
    match call {
        TimedCall::IamChange { role, profile } => {
            settling.iam_changed(role.as_deref(), profile.as_deref(), now);
            response
        }
        TimedCall::CreateFunction { name, .. } => {
            settling.function_changed(&name, FunctionPhase::Creating, now);
            rewrite_json(response, |answer| {
                timing::show_phase(answer, settling.function_phase(&name, now));
            })
            .await
        }
        TimedCall::UpdateFunction { name, .. } => {
            settling.function_changed(&name, FunctionPhase::Updating, now);
            rewrite_json(response, |answer| {
                timing::show_phase(answer, settling.function_phase(&name, now));
            })
            .await
        }
        TimedCall::DeleteFunction { name } => {
            settling.function_deleted(&name);
            response
        }
        TimedCall::ReadFunction { name, nested } => match settling.function_phase(&name, now) {
            FunctionPhase::Ready => response,
            phase => {
                rewrite_json(response, |answer| {
                    let configuration = if nested {
                        &mut answer["Configuration"]
                    } else {
                        answer
                    };
                    timing::show_phase(configuration, phase);
                })
                .await
            }
        },
        TimedCall::RunInstances { .. } => {
            rewrite_text(response, |answer| {
                settling.instances_launched(&timing::launched_instance_ids(answer), now);
                None
            })
            .await
        }
        TimedCall::DescribeInstances => {
            let booting = settling.booting(now);
            if booting.is_empty() {
                return response;
            }
            rewrite_text(response, |answer| {
                Some(timing::show_booting(answer, &booting))
            })
            .await
        }
        TimedCall::DeleteBucket { name } => {
            settling.bucket_deleted(&name, now);
            response
        }
        TimedCall::Invoke { .. } | TimedCall::CreateBucket { .. } => response,
    }
}

/// Rewrites a JSON answer in place (an answer that is not JSON goes through as it was).
async fn rewrite_json(response: Response, change: impl FnOnce(&mut Value)) -> Response {
    rewrite_text(response, |text| {
        let mut answer: Value = serde_json::from_str(text).ok()?;
        change(&mut answer);
        Some(answer.to_string())
    })
    .await
}

/// Reads a (small, control-plane) answer whole and replaces its body with what `change`
/// returns, or leaves it as it was for `None`.
async fn rewrite_text(response: Response, change: impl FnOnce(&str) -> Option<String>) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_CAPTURED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("could not read moto's answer: {err}"),
            )
                .into_response();
        }
    };
    let Some(changed) = std::str::from_utf8(&bytes).ok().and_then(change) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(changed))
}

/// Reads a request's body whole, up to `limit` bytes, or answers the 413 that says why not.
async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("could not read {what}: {err}"),
        )
            .into_response()
    })
}

/// IAM actions that change nothing, so leave cached policies as they are.
/// What an IAM write changes of roles' permissions.
enum PermissionsChange {
    /// The permissions of the role its `RoleName` names.
    Role,
    /// A managed policy's document: any role attaching it.
    ManagedPolicy,
}

fn permissions_change(action: &str) -> Option<PermissionsChange> {
    match action {
        "PutRolePolicy" | "DeleteRolePolicy" | "AttachRolePolicy" | "DetachRolePolicy" => {
            Some(PermissionsChange::Role)
        }
        "CreatePolicyVersion" | "SetDefaultPolicyVersion" | "DeletePolicy" => {
            Some(PermissionsChange::ManagedPolicy)
        }
        _ => None,
    }
}

fn is_read_only_iam_action(action: &str) -> bool {
    ["Get", "List", "Simulate", "Generate"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

impl IntoResponse for iam::RefusalResponse {
    fn into_response(self) -> Response {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(Body::from(self.body)).unwrap_or_else(|err| {
            (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
        })
    }
}

async fn health(State(state): State<EdgeState>) -> axum::Json<Value> {
    axum::Json((state.status)())
}

/// A Lambda-style JSON error: the SDKs read the code from `x-amzn-ErrorType`.
fn lambda_error(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: Option<(&str, &str)>,
) -> Response {
    let mut body = json!({"Type": "User", "message": message});
    if let Some((key, value)) = extra
        && let Value::Object(fields) = &mut body
    {
        fields.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", value);
    }
    response
}

async fn invoke(
    State(state): State<EdgeState>,
    Path(function): Path<String>,
    request: Request,
) -> Response {
    // The request whole rather than a `HeaderMap` extractor, which would copy the headers.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(invocation_type) = InvocationType::parse(header("x-amz-invocation-type")) else {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun",
            None,
        );
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(err) => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                &format!("could not read the request body: {err}"),
                None,
            );
        }
    };
    // Only the syntax matters here: nothing is built from the document.
    if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
            None,
        );
    }
    let request = InvokeRequest {
        function,
        payload: body,
        invocation_type,
        log_tail: header("x-amz-log-type") == Some("Tail"),
    };
    match state.lambda.invoke(request).await {
        Ok(InvokeOutcome::Completed {
            payload,
            function_error,
            log_result,
            request_id,
        }) => {
            let mut response = (StatusCode::OK, payload).into_response();
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            if let Some(error) = function_error {
                headers.insert("x-amz-function-error", HeaderValue::from_static(error));
            }
            if let Some(tail) = log_result.and_then(|tail| HeaderValue::from_str(&tail).ok()) {
                headers.insert("x-amz-log-result", tail);
            }
            if let Ok(id) = HeaderValue::from_str(&request_id) {
                headers.insert("x-amzn-requestid", id);
            }
            response
        }
        Ok(InvokeOutcome::Accepted { request_id }) => {
            let mut response = StatusCode::ACCEPTED.into_response();
            if let Ok(id) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-amzn-requestid", id);
            }
            response
        }
        Ok(InvokeOutcome::DryRun) => StatusCode::NO_CONTENT.into_response(),
        Err(err @ InvokeError::NotFound(_)) => lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &err.to_string(),
            None,
        ),
        Err(InvokeError::Throttled { reason }) => lambda_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate Exceeded.",
            Some(("Reason", reason)),
        ),
        Err(err @ InvokeError::InvalidRequest(_)) => lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &err.to_string(),
            None,
        ),
        Err(err) => {
            tracing::error!(error = %err, "invoke failed in the sandbox");
            lambda_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                &err.to_string(),
                None,
            )
        }
    }
}

/// Headers that belong to one hop and are not forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
    )
}

/// Which function a control-plane path names, and whether the call changes it.
fn control_plane_target(method: &Method, path: &str) -> Option<String> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let rest = path
        .strip_prefix("/2015-03-31/functions/")
        .or_else(|| path.strip_prefix("/2017-10-31/functions/"))
        .or_else(|| path.strip_prefix("/2019-09-30/functions/"))?;
    let name = rest.split('/').next().filter(|name| !name.is_empty())?;
    Some(function_name(name))
}

/// A request to an HTTP API (see [`super::http_api`]).
async fn execute_api(
    State(state): State<EdgeState>,
    Path(path): Path<std::collections::HashMap<String, String>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_API_BODY, "the request").await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let api_request = super::http_api::ApiRequest {
        api_id: path.get("api").cloned().unwrap_or_default(),
        rest: path.get("rest").cloned().unwrap_or_default(),
        method: parts.method.as_str().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body,
        source_ip: "127.0.0.1".to_owned(),
    };
    let answer = state.http_apis.serve(api_request).await;
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &answer.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Body::from(answer.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Forwards to moto; API Gateway v2's answers get the sandbox's `apiEndpoint`.
async fn forward(State(state): State<EdgeState>, request: Request) -> Response {
    if request.uri().path().starts_with("/v2/apis") {
        let edge_endpoint = state.http_apis.edge_endpoint.clone();
        let response = forward_to_moto(state, request).await;
        return rewrite_json(response, |answer| {
            super::http_api::show_endpoints(answer, &edge_endpoint);
        })
        .await;
    }
    forward_to_moto(state, request).await
}

async fn forward_to_moto(state: EdgeState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = if parts.uri.path().starts_with(EVENT_SOURCE_MAPPINGS) {
        match event_source_mapping(&state, &parts, body).await {
            Ok(answered) => return answered,
            Err(body) => body,
        }
    } else if parts.uri.path().starts_with(LAMBDA_TAGS) {
        match mapping_tags(&state, &parts, body).await {
            Ok(answered) => return answered,
            Err(body) => body,
        }
    } else {
        body
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let path = parts.uri.path().to_owned();
    let creates_function = parts.method == Method::POST && path == "/2015-03-31/functions";
    let updates_code = parts.method == Method::PUT
        && path.starts_with("/2015-03-31/functions/")
        && path.ends_with("/code");
    let changed_function = control_plane_target(&parts.method, &path);
    let query = parts.uri.query().unwrap_or("");
    let is_s3 = is_s3_request(&parts.method, &path, query, &parts.headers);
    let mut created = is_s3
        .then(|| object_created(&parts.method, &path, query, &parts.headers))
        .flatten();
    // A form upload names its key in the form: its fields (before the file) are kept.
    let form_fields = created
        .as_ref()
        .filter(|created| created.event_name == POST_EVENT)
        .map(|_| Arc::new(std::sync::Mutex::new(Vec::new())));
    let notification_bucket = (is_s3
        && parts.method == Method::PUT
        && url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "notification"))
    .then(|| path.trim_matches('/').to_owned());
    let created_size = ["x-amz-decoded-content-length", "content-length"]
        .iter()
        .find_map(|name| parts.headers.get(*name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(0);

    // moto knows nothing of the keys the sandbox issued: who they are is answered here.
    let mut body = body;
    if let Some(Caller::Principal {
        principal,
        credential,
    }) = parts.extensions.get::<Caller>()
        && super::sts::is_sts(credential, query)
    {
        let bytes = match read_body(body, MAX_STS_BODY, "the STS request").await {
            Ok(bytes) => bytes,
            Err(refusal) => return refusal,
        };
        if super::sts::action(query, &bytes).as_deref() == Some("GetCallerIdentity") {
            return super::sts::caller_identity(principal, credential, SystemTime::now());
        }
        body = Body::from(bytes);
    }

    // An instance the sandbox booted has the console output of that boot.
    if let Some(Caller::Principal { credential, .. } | Caller::Operator(credential)) =
        parts.extensions.get::<Caller>()
        && credential.scope_service.as_deref() == Some("ec2")
    {
        let bytes = match read_body(body, MAX_STS_BODY, "the EC2 request").await {
            Ok(bytes) => bytes,
            Err(refusal) => return refusal,
        };
        if super::sts::action(query, &bytes).as_deref() == Some("GetConsoleOutput")
            && let Some(id) = super::sts::form_value(query, &bytes, "InstanceId")
            && let Some(output) = state.consoles.of(&id)
        {
            return (
                StatusCode::OK,
                [("content-type", "text/xml;charset=UTF-8")],
                super::ec2_host::console_output_answer(&id, &output),
            )
                .into_response();
        }
        body = Body::from(bytes);
    }

    // S3 validates a notification's destinations: it must be allowed to invoke each function.
    if let Some(bucket) = &notification_bucket
        && state.authorizer.mode() == IamMode::Enforce
    {
        let bytes = match read_body(
            body,
            MAX_NOTIFICATION_BODY,
            "the notification configuration",
        )
        .await
        {
            Ok(bytes) => bytes,
            Err(refusal) => return refusal,
        };
        let functions = notification_functions(&String::from_utf8_lossy(&bytes));
        let mut refused = Vec::new();
        for function in functions {
            if !s3_may_invoke(&state.lambda_control, &function, bucket).await {
                refused.push(function);
            }
        }
        if !refused.is_empty() {
            let request_id = uuid::Uuid::new_v4().to_string();
            return iam::error_response(
                iam::Service::S3,
                &unvalidated_destinations(&refused),
                &request_id,
                false,
            )
            .into_response();
        }
        body = Body::from(bytes);
    }

    // Bodies that carry code are read whole so the code can be kept; others stream through.
    let (captured, upstream_body) = if creates_function || updates_code {
        match axum::body::to_bytes(body, MAX_CAPTURED_BODY).await {
            Ok(bytes) => (Some(bytes.clone()), reqwest::Body::from(bytes)),
            Err(err) => {
                return lambda_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    &err.to_string(),
                    None,
                );
            }
        }
    } else if let Some(fields) = &form_fields {
        let fields = fields.clone();
        let stream = body.into_data_stream().map(move |chunk| {
            if let (Ok(bytes), Ok(mut kept)) = (&chunk, fields.lock())
                && kept.len() < FORM_FIELDS_LIMIT
            {
                let room = FORM_FIELDS_LIMIT - kept.len();
                kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            chunk
        });
        (None, reqwest::Body::wrap_stream(stream))
    } else {
        (None, reqwest::Body::wrap_stream(body.into_data_stream()))
    };

    let url = format!("{}{}", state.moto_endpoint, path_and_query);
    let mut upstream = state
        .client
        .request(parts.method.clone(), &url)
        .body(upstream_body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    // moto has applied a write once it answers: the lock is held until the answer arrives.
    let write_turn = if is_dynamodb_write(&parts.headers) {
        Some(state.dynamodb_writes.clone().lock_owned().await)
    } else {
        None
    };
    let sent = upstream.send().await;
    drop(write_turn);
    let response = match sent {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(url = %url, error = %err, "moto did not answer");
            return (
                StatusCode::BAD_GATEWAY,
                format!("the sandbox's moto server did not answer: {err}"),
            )
                .into_response();
        }
    };

    let status = response.status();
    // A form upload may answer with its `success_action_redirect`.
    let stored = status.is_success() || (form_fields.is_some() && status == StatusCode::SEE_OTHER);
    if let Some(fields) = &form_fields {
        let key = fields
            .lock()
            .ok()
            .and_then(|fields| post_form_key(&parts.headers, &fields));
        match key {
            Some(key) => {
                if let Some(created) = created.as_mut() {
                    created.key = key;
                }
            }
            None => {
                tracing::warn!(path = %path, "a form upload whose key is not in its first fields: no event");
                created = None;
            }
        }
    }
    if stored {
        if let Some(body) = &captured {
            let function = if creates_function {
                None
            } else {
                path.strip_prefix("/2015-03-31/functions/")
                    .and_then(|rest| rest.strip_suffix("/code"))
                    .map(function_name)
            };
            if let Err(err) = keep_code(&state, body, function).await {
                tracing::warn!(error = %err, "could not keep the function's code");
            }
        }
        if let Some(name) = &changed_function {
            state.lambda.invalidate(name);
        }
        if let Some(bucket) = &notification_bucket {
            state.notifications.forget(bucket);
        }
        if let Some(created) = created {
            let etag = response
                .headers()
                .get("etag")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // A versioned bucket's event names the version it created, as S3's does.
            let version = response
                .headers()
                .get("x-amz-version-id")
                .and_then(|value| value.to_str().ok())
                .filter(|version| !version.is_empty() && *version != "null")
                .map(str::to_owned);
            tokio::spawn(notify(state.clone(), created, created_size, etag, version));
        }
    }

    let mut builder = Response::builder().status(status);
    for (name, value) in response.headers() {
        if !hop_by_hop(name) {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(Body::from_stream(response.bytes_stream()))
        .unwrap_or_else(|err| (StatusCode::BAD_GATEWAY, err.to_string()).into_response())
}

/// Whether the function's policy lets S3 invoke it for events of `bucket`, as S3 checks before
/// it takes a notification configuration (and Lambda when S3 invokes).
async fn s3_may_invoke(lambda: &aws_sdk_lambda::Client, function_arn: &str, bucket: &str) -> bool {
    super::authorizer::service_may_invoke(
        lambda,
        function_arn,
        "s3.amazonaws.com",
        &format!("arn:aws:s3:::{bucket}"),
        super::SANDBOX_ACCOUNT,
    )
    .await
}

/// Invokes, asynchronously, every function the bucket's notification configuration names for
/// this event and key.
async fn notify(
    state: EdgeState,
    created: ObjectCreated,
    size: u64,
    etag: String,
    version: Option<String>,
) {
    let configurations: Vec<_> = state
        .notifications
        .lambda_configurations(&state.s3, &created.bucket)
        .await
        .into_iter()
        .filter(|configuration| {
            event_matches(configuration.events(), created.event_name)
                && key_matches(configuration, &created.key)
        })
        .collect();
    if configurations.is_empty() {
        return;
    }
    // Only a PUT's request says the object's size and its answer the ETag; a copy's, a
    // completed multipart upload's and a form's object is looked at.
    let (size, etag, version) = if created.event_name == "ObjectCreated:Put" {
        (size, etag, version)
    } else {
        match state
            .s3
            .head_object()
            .bucket(&created.bucket)
            .key(&created.key)
            .set_version_id(version.clone())
            .send()
            .await
        {
            Ok(head) => (
                head.content_length().unwrap_or_default().max(0) as u64,
                head.e_tag().unwrap_or_default().to_owned(),
                version.or_else(|| {
                    head.version_id()
                        .filter(|version| *version != "null")
                        .map(str::to_owned)
                }),
            ),
            Err(err) => {
                tracing::warn!(bucket = %created.bucket, key = %created.key, error = %aws_sdk_s3::error::DisplayErrorContext(&err), "the created object is not there: no event");
                return;
            }
        }
    };
    for configuration in configurations {
        // Lambda checks the function's policy each time S3 invokes it: a permission removed
        // after the configuration was stored stops the events (S3 drops them).
        if state.authorizer.mode() == IamMode::Enforce
            && !s3_may_invoke(
                &state.lambda_control,
                configuration.lambda_function_arn(),
                &created.bucket,
            )
            .await
        {
            tracing::warn!(
                bucket = %created.bucket,
                key = %created.key,
                function = %configuration.lambda_function_arn(),
                "the function's policy no longer lets S3 invoke it: the event is dropped"
            );
            continue;
        }
        let mut document = event_document(
            &created,
            configuration.id().unwrap_or("hybridlab-notification"),
            &state.region,
            size,
            &etag,
        );
        if let Some(version) = &version {
            document["Records"][0]["s3"]["object"]["versionId"] = Value::from(version.as_str());
        }
        let request = InvokeRequest {
            function: configuration.lambda_function_arn().to_owned(),
            payload: Bytes::from(document.to_string()),
            invocation_type: InvocationType::Event,
            log_tail: false,
        };
        if let Err(err) = state.lambda.invoke(request).await {
            tracing::warn!(
                bucket = %created.bucket,
                key = %created.key,
                function = %configuration.lambda_function_arn(),
                error = %err,
                "could not deliver an S3 event notification"
            );
        }
    }
}

const EVENT_SOURCE_MAPPINGS: &str = "/2015-03-31/event-source-mappings";

/// Answers an event source mapping call that concerns a DynamoDB stream (see
/// [`super::stream_mapping`]); any other goes on to moto with its body (`Err`). A listing
/// is moto's with the agent's mappings added.
async fn event_source_mapping(
    state: &EdgeState,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response, Body> {
    use super::stream_mapping::ApiAnswer;
    let bytes = match read_body(body, MAX_NOTIFICATION_BODY, "the event source mapping").await {
        Ok(bytes) => bytes,
        Err(refusal) => return Ok(refusal),
    };
    let mappings = &state.stream_mappings;
    let rest = parts.uri.path()[EVENT_SOURCE_MAPPINGS.len()..].trim_matches('/');
    let json_body = || serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
    let answer = match (&parts.method, rest) {
        (&Method::POST, "") => {
            let request = json_body();
            if !request["EventSourceArn"]
                .as_str()
                .is_some_and(super::stream_mapping::api::is_dynamodb_stream)
            {
                return Err(Body::from(bytes));
            }
            mappings.create(&request).await
        }
        (&Method::GET, "") => {
            let query: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let ours = mappings.list(
                query.get("FunctionName").map(String::as_str),
                query.get("EventSourceArn").map(String::as_str),
            );
            let theirs = state
                .client
                .get(format!(
                    "{}{}",
                    state.moto_endpoint,
                    parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
                ))
                .headers(parts.headers.clone())
                .send()
                .await;
            let mut listing = match theirs {
                Ok(response) => response
                    .bytes()
                    .await
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                    .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if !listing.is_object() {
                listing = serde_json::json!({"EventSourceMappings": []});
            }
            if let Some(list) = listing["EventSourceMappings"].as_array_mut() {
                list.extend(ours);
            } else {
                listing["EventSourceMappings"] = Value::from(ours);
            }
            ApiAnswer {
                status: 200,
                body: listing,
            }
        }
        (method, uuid) if mappings.owns(uuid) => match *method {
            Method::GET => mappings.get(uuid),
            Method::PUT => mappings.update(uuid, &json_body()).await,
            Method::DELETE => mappings.delete(uuid),
            _ => return Err(Body::from(bytes)),
        },
        _ => return Err(Body::from(bytes)),
    };
    Ok(lambda_answer(&answer))
}

const LAMBDA_TAGS: &str = "/2017-03-31/tags/";

/// Lambda's tagging API on an event source mapping the agent keeps (moto knows none of
/// them); any other resource's tags go on to moto with the body (`Err`).
async fn mapping_tags(
    state: &EdgeState,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response, Body> {
    let bytes = match read_body(body, MAX_NOTIFICATION_BODY, "the tags").await {
        Ok(bytes) => bytes,
        Err(refusal) => return Ok(refusal),
    };
    let encoded = &parts.uri.path()[LAMBDA_TAGS.len()..];
    let arn = percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned();
    let untag: Vec<String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .filter(|(key, _)| key == "tagKeys")
            .map(|(_, value)| value.into_owned())
            .collect();
    let request = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
    let Some(answer) = state
        .stream_mappings
        .tags_call(&parts.method, &arn, &request, &untag)
    else {
        return Err(Body::from(bytes));
    };
    Ok(lambda_answer(&answer))
}

/// An answer of the agent's Lambda API as Lambda sends it: JSON (none for a null body),
/// with an error's type in `x-amzn-errortype`.
fn lambda_answer(answer: &super::stream_mapping::ApiAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if answer.body.is_null() {
        return status.into_response();
    }
    let mut response = (status, answer.body.to_string()).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(kind) = answer.body["__type"].as_str()
        && let Ok(value) = HeaderValue::from_str(kind)
    {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

/// Keeps the zip of a CreateFunction or UpdateFunctionCode call.
async fn keep_code(
    state: &EdgeState,
    body: &Bytes,
    function: Option<String>,
) -> Result<(), String> {
    let request: Value = serde_json::from_slice(body).map_err(|err| err.to_string())?;
    let function = function
        .or_else(|| request["FunctionName"].as_str().map(function_name))
        .ok_or("no FunctionName")?;
    // CreateFunction nests the code under `Code`; UpdateFunctionCode has it at the top.
    let code = if request.get("Code").is_some() {
        &request["Code"]
    } else {
        &request
    };
    let zip = if let Some(encoded) = code["ZipFile"].as_str() {
        STANDARD.decode(encoded).map_err(|err| err.to_string())?
    } else if let (Some(bucket), Some(key)) = (code["S3Bucket"].as_str(), code["S3Key"].as_str()) {
        super::fetch_object(&state.s3, bucket, key).await?
    } else {
        return Err(
            "the call carries no ZipFile or S3 location (container images are not run)".into(),
        );
    };
    state
        .code
        .save(&function, &zip)
        .map_err(|err| err.to_string())?;
    state.lambda.invalidate(&function);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_writes_are_told_from_reads_and_other_services() {
        let target = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-amz-target",
                HeaderValue::from_str(value).expect("a value"),
            );
            headers
        };
        for write in [
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ] {
            assert!(is_dynamodb_write(&target(&format!(
                "DynamoDB_20120810.{write}"
            ))));
        }
        assert!(!is_dynamodb_write(&target("DynamoDB_20120810.GetItem")));
        assert!(!is_dynamodb_write(&target("DynamoDB_20120810.Query")));
        assert!(!is_dynamodb_write(&target("Logs_20140328.PutLogEvents")));
        assert!(!is_dynamodb_write(&HeaderMap::new()));
    }

    #[test]
    fn only_changing_calls_name_a_function_to_refresh() {
        assert_eq!(
            control_plane_target(&Method::PUT, "/2015-03-31/functions/proxy/configuration"),
            Some("proxy".into())
        );
        assert_eq!(
            control_plane_target(&Method::PUT, "/2017-10-31/functions/proxy/concurrency"),
            Some("proxy".into())
        );
        assert_eq!(
            control_plane_target(&Method::DELETE, "/2015-03-31/functions/proxy"),
            Some("proxy".into())
        );
        assert_eq!(
            control_plane_target(&Method::GET, "/2015-03-31/functions/proxy"),
            None
        );
        assert_eq!(control_plane_target(&Method::PUT, "/my-bucket/key"), None);
    }
}
