//! From an HTTP request as the edge sees it to what AWS authorises: who signed it (the access
//! key of the SigV4 `Authorization` header or presigned `X-Amz-Credential`, or of SigV2's
//! `AWS AKID:sig` and presigned `AWSAccessKeyId`), which service it is for, and each IAM
//! action and resource ARN it needs, with the condition keys the stack's policies read. Pure
//! functions: anything the request alone does not say (a role's path, an instance profile's
//! role, a secret's suffix) comes from [`Lookups`] or stays an unknown part of the resource
//! (see [`Resource`]).
//!
//! Requests this module does not know come back as [`Classification::Unknown`], never as a
//! guess; no input makes it panic.
//!
//! Not modelled: keys that need a resource's state (`aws:ResourceTag/*`,
//! `s3:ExistingObjectTag/*`, `dynamodb:LeadingKeys`, which needs the table's key schema);
//! S3 presigned POST (the key and credential are form fields of the body), access points and
//! `x-amz-copy-source` ARNs; DynamoDB PartiQL; the principal's own keys (`aws:PrincipalArn`,
//! `aws:username`, `aws:SecureTransport`, `aws:CurrentTime`), which the edge knows and sets
//! with [`RequestContext::set_key`]; IAM calls that name no entity (`GetUser` of the caller is
//! checked on `*`); EC2's `DryRun` (AWS answers `DryRunOperation` when allowed).

mod apigateway;
mod json;
mod lambda;
pub use lambda::lambda_function_arn;
mod query;
mod s3;

use std::net::IpAddr;

use http::HeaderMap;

use super::context::{RequestContext, Resource};

/// The parts of an HTTP request the classifier reads.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequestParts<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string without `?` (percent-encoded).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The body, for the services whose operation and parameters are in it (see
    /// [`body_needed`]); may be empty otherwise.
    pub body: &'a [u8],
    /// The client's address, for `aws:SourceIp`.
    pub source_ip: Option<IpAddr>,
}

impl<'a> HttpRequestParts<'a> {
    /// The parts of an `http` request and its (possibly empty) body.
    pub fn new(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        Self {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
            source_ip: None,
        }
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// The services the classifier knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    S3,
    /// DynamoDB and DynamoDB Streams.
    DynamoDb,
    Logs,
    Lambda,
    Ec2,
    Iam,
    Sts,
    SecretsManager,
    /// API Gateway's v2 control plane (HTTP and WebSocket APIs).
    ApiGateway,
}

impl Service {
    /// The service's prefix in IAM actions and credential scopes.
    pub fn prefix(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::DynamoDb => "dynamodb",
            Service::Logs => "logs",
            Service::Lambda => "lambda",
            Service::Ec2 => "ec2",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::SecretsManager => "secretsmanager",
            Service::ApiGateway => "apigateway",
        }
    }

    fn from_scope(scope: &str) -> Option<Self> {
        Some(match scope {
            "s3" => Service::S3,
            "dynamodb" => Service::DynamoDb,
            "logs" => Service::Logs,
            "lambda" => Service::Lambda,
            "ec2" => Service::Ec2,
            "iam" => Service::Iam,
            "sts" => Service::Sts,
            "secretsmanager" => Service::SecretsManager,
            "apigateway" => Service::ApiGateway,
            _ => return None,
        })
    }
}

/// How a request was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=...` (or SigV4a's `AWS4-ECDSA-P256-SHA256`).
    SigV4Header,
    /// A presigned URL with `X-Amz-Credential`.
    SigV4Query,
    /// `Authorization: AWS AKID:signature`.
    SigV2Header,
    /// A presigned URL with `AWSAccessKeyId`.
    SigV2Query,
}

/// Who signed a request. The signature itself is not checked: the sandbox trusts its loopback
/// clients and uses the key only to tell principals apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `X-Amz-Security-Token`, as temporary credentials carry.
    pub session_token: Option<String>,
    pub scheme: SigningScheme,
    /// The credential scope's region and service (SigV4 only).
    pub scope_region: Option<String>,
    pub scope_service: Option<String>,
}

/// What AWS authorises a request as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub service: Service,
    /// The API operation (`PutObject`, `CopyObject`, `RunInstances`).
    pub operation: String,
    /// `None`: the request is not signed (anonymous).
    pub credential: Option<Credential>,
    /// Every action and resource AWS checks; all must be allowed. Empty: the operation needs
    /// no permission (`sts:GetCallerIdentity`).
    pub checks: Vec<RequestContext>,
    /// What decides the answer when the object read does not exist (S3 GetObject and
    /// HeadObject): "If you have the s3:ListBucket permission on the bucket, Amazon S3 returns
    /// an HTTP status code 404 Not Found error. If you don't have the s3:ListBucket
    /// permission, Amazon S3 returns an HTTP status code 403 Access Denied error"
    /// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html). The edge checks it
    /// when moto answers 404 and refuses instead when it is denied.
    pub when_missing: Option<RequestContext>,
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    Known(Authorization),
    /// A request this module cannot map to actions and resources (an unknown service or
    /// operation, a missing parameter). The edge decides what to do with it.
    Unknown {
        service: Option<Service>,
        credential: Option<Credential>,
        reason: String,
    },
}

impl Classification {
    /// Who signed the request, known or not.
    pub fn credential(&self) -> Option<&Credential> {
        match self {
            Classification::Known(authorization) => authorization.credential.as_ref(),
            Classification::Unknown { credential, .. } => credential.as_ref(),
        }
    }
}

/// What the classifier cannot see in a request. Every method may answer `None`; the resource
/// then keeps an unknown part that matches any value (see [`Resource`]).
pub trait Lookups {
    /// The ARN (with its path) of the role in instance profile `profile` (a name or an ARN).
    fn instance_profile_role(&self, _profile: &str) -> Option<String> {
        None
    }
    /// The ARN (with its path) of role `name`.
    fn role_arn(&self, _name: &str) -> Option<String> {
        None
    }
    /// The full ARN (with its random suffix) of the secret named by `secret_id` (a name, a
    /// partial ARN or a full ARN).
    fn secret_arn(&self, _secret_id: &str) -> Option<String> {
        None
    }
}

/// Lookups that know nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookups;

impl Lookups for NoLookups {}

/// Where the classifier writes ARNs.
pub(crate) struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub lookups: &'a dyn Lookups,
}

/// A classified operation, before the request-wide keys are added.
pub(crate) struct Classified {
    pub operation: String,
    pub checks: Vec<RequestContext>,
    pub when_missing: Option<RequestContext>,
}

impl Classified {
    pub fn new(operation: impl Into<String>, checks: Vec<RequestContext>) -> Self {
        Self {
            operation: operation.into(),
            checks,
            when_missing: None,
        }
    }

    pub fn one(operation: &str, action: &str, resource: Resource) -> Self {
        Self::new(operation, vec![RequestContext::new(action, resource)])
    }
}

/// Why a request was not classified.
pub(crate) type Outcome = Result<Classified, String>;

/// The access key that signed the request, from its headers or query string.
pub fn credential(headers: &HeaderMap, query: &str) -> Option<Credential> {
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.into_owned())
    };
    let token = headers
        .get("x-amz-security-token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| param("X-Amz-Security-Token"));
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    let scoped = |scope: &str, scheme| {
        // AKID/date/region/service/aws4_request; SigV4a leaves the region out.
        let parts: Vec<&str> = scope.trim().split('/').collect();
        let access_key_id = parts.first().filter(|akid| !akid.is_empty())?.to_string();
        let (region, service) = match parts.len() {
            5 => (Some(parts[2].to_owned()), Some(parts[3].to_owned())),
            4 => (None, Some(parts[2].to_owned())),
            _ => (None, None),
        };
        Some(Credential {
            access_key_id,
            session_token: token.clone(),
            scheme,
            scope_region: region,
            scope_service: service,
        })
    };
    if let Some(auth) = authorization {
        if let Some(rest) = auth.strip_prefix("AWS4-") {
            let scope = rest.split("Credential=").nth(1)?.split([',', ' ']).next()?;
            return scoped(scope, SigningScheme::SigV4Header);
        }
        if let Some(rest) = auth.strip_prefix("AWS ") {
            let (akid, _signature) = rest.split_once(':')?;
            return (!akid.trim().is_empty()).then(|| Credential {
                access_key_id: akid.trim().to_owned(),
                session_token: token.clone(),
                scheme: SigningScheme::SigV2Header,
                scope_region: None,
                scope_service: None,
            });
        }
    }
    if let Some(scope) = param("X-Amz-Credential") {
        return scoped(&scope, SigningScheme::SigV4Query);
    }
    param("AWSAccessKeyId")
        .filter(|akid| !akid.is_empty())
        .map(|akid| Credential {
            access_key_id: akid,
            session_token: token,
            scheme: SigningScheme::SigV2Query,
            scope_region: None,
            scope_service: None,
        })
}

/// The service a request is for: its credential scope, else its shape (an `X-Amz-Target`, a
/// Lambda path, a query-protocol `Version`); S3 is what is left.
fn service(
    request: &HttpRequestParts<'_>,
    credential: Option<&Credential>,
) -> Result<Service, String> {
    if let Some(scope) = credential.and_then(|c| c.scope_service.as_deref()) {
        return Service::from_scope(scope)
            .ok_or_else(|| format!("the sandbox does not authorise service `{scope}`"));
    }
    if let Some(target) = request.header("x-amz-target") {
        return if target.starts_with("DynamoDB") {
            Ok(Service::DynamoDb)
        } else if target.starts_with("Logs_") {
            Ok(Service::Logs)
        } else if target.starts_with("secretsmanager.") {
            Ok(Service::SecretsManager)
        } else {
            Err(format!("unknown X-Amz-Target `{target}`"))
        };
    }
    if lambda::is_lambda_path(request.path) {
        return Ok(Service::Lambda);
    }
    if let Some(version) = query::params(request).get("Version") {
        return match version.as_str() {
            "2016-11-15" => Ok(Service::Ec2),
            "2010-05-08" => Ok(Service::Iam),
            "2011-06-15" => Ok(Service::Sts),
            other => Err(format!("unknown query-protocol Version `{other}`")),
        };
    }
    Ok(Service::S3)
}

/// Whether [`classify`] needs the request's body: the JSON and query protocols carry the
/// operation's parameters there, S3's DeleteObjects its keys, Lambda's control plane its
/// role and API Gateway's creates their tags. S3 object uploads and Lambda `Invoke` never
/// need it.
pub fn body_needed(request: &HttpRequestParts<'_>) -> bool {
    let credential = credential(request.headers, request.query);
    match service(request, credential.as_ref()) {
        Ok(Service::S3) => s3::body_needed(request),
        Ok(Service::Lambda) => lambda::body_needed(request),
        Ok(Service::ApiGateway) => apigateway::body_needed(request),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Classifies a request made to account `account` in `region`.
pub fn classify(
    request: &HttpRequestParts<'_>,
    account: &str,
    region: &str,
    lookups: &dyn Lookups,
) -> Classification {
    let credential = credential(request.headers, request.query);
    let service = match service(request, credential.as_ref()) {
        Ok(service) => service,
        Err(reason) => {
            return Classification::Unknown {
                service: None,
                credential,
                reason,
            };
        }
    };
    let scope = Scope {
        account,
        region,
        lookups,
    };
    let outcome = match service {
        Service::S3 => s3::classify(request, &scope, credential.as_ref()),
        Service::DynamoDb => json::dynamodb(request, &scope),
        Service::Logs => json::logs(request, &scope),
        Service::SecretsManager => json::secrets_manager(request, &scope),
        Service::Lambda => lambda::classify(request, &scope),
        Service::Ec2 => query::ec2(request, &scope),
        Service::Iam => query::iam(request, &scope),
        Service::Sts => query::sts(request, &scope),
        Service::ApiGateway => apigateway::classify(request, &scope),
    };
    match outcome {
        Ok(Classified {
            operation,
            mut checks,
            mut when_missing,
        }) => {
            // IAM and STS answer from us-east-1 whatever the client's region.
            let requested_region = match service {
                Service::Iam | Service::Sts => "us-east-1",
                _ => region,
            };
            for check in checks.iter_mut().chain(when_missing.as_mut()) {
                if check.key("aws:RequestedRegion").is_none() {
                    check.set_key("aws:RequestedRegion", [requested_region]);
                }
                if let Some(ip) = request.source_ip {
                    check.set_key("aws:SourceIp", [ip.to_string()]);
                }
            }
            Classification::Known(Authorization {
                service,
                operation,
                credential,
                checks,
                when_missing,
            })
        }
        Err(reason) => Classification::Unknown {
            service: Some(service),
            credential,
            reason,
        },
    }
}

/// The check Lambda makes when S3 delivers an event of `bucket` (owned by `account`) to
/// `function_arn`: `lambda:InvokeFunction` with `aws:SourceArn` and `aws:SourceAccount`, the
/// keys of the function policy `AddPermission` writes (evaluate it with
/// [`super::evaluate_resource_policy`] and `Caller::Service("s3.amazonaws.com")`).
pub fn s3_event_invoke(function_arn: &str, bucket: &str, account: &str) -> RequestContext {
    service_invoke(function_arn, &format!("arn:aws:s3:::{bucket}"), account)
}

/// The check Lambda makes when an AWS service invokes `function_arn` for the resource
/// `source_arn` (a bucket, an API's `execute-api` ARN) of `account`: its function policy
/// must allow `lambda:InvokeFunction` with those `aws:SourceArn` and `aws:SourceAccount`.
pub fn service_invoke(function_arn: &str, source_arn: &str, account: &str) -> RequestContext {
    RequestContext::new("lambda:InvokeFunction", Resource::arn(function_arn))
        .with_key("aws:SourceArn", [source_arn])
        .with_key("aws:SourceAccount", [account])
}

/// Percent-decodes `text` (`+` stays `+`); invalid escapes stay as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(hi)), Some(Some(lo))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `aws:RequestTag/KEY` and `aws:TagKeys` for tags set by a request.
pub(crate) fn request_tags(check: &mut RequestContext, tags: &[(String, String)]) {
    if tags.is_empty() {
        return;
    }
    for (key, value) in tags {
        check.set_key(&format!("aws:RequestTag/{key}"), [value.clone()]);
    }
    check.set_key("aws:TagKeys", tags.iter().map(|(key, _)| key.clone()));
}

/// The ARN of role `name`, from the lookups or with an unknown path.
pub(crate) fn role_resource(scope: &Scope<'_>, name: &str) -> Resource {
    match scope.lookups.role_arn(name) {
        Some(arn) => Resource::arn(arn),
        None => Resource::unknown_path(&format!("arn:aws:iam::{}:role", scope.account), name),
    }
}

/// The role `role` names (an ARN, or a name looked up).
pub(crate) fn role_from_arn_or_name(scope: &Scope<'_>, role: &str) -> Resource {
    if role.starts_with("arn:") {
        Resource::arn(role)
    } else {
        role_resource(scope, role)
    }
}

/// `iam:PassRole` of `role` to `service`, for a resource `associated_with`.
pub(crate) fn pass_role(role: Resource, service: &str, associated_with: &str) -> RequestContext {
    RequestContext::new("iam:PassRole", role)
        .with_key("iam:PassedToService", [service])
        .with_key("iam:AssociatedResourceArn", [associated_with])
}

#[cfg(test)]
mod tests;
