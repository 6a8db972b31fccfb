//! What the sandbox refuses from web pages. Its edge port runs any code a caller deploys, as the
//! developer who started it, and a browser will send requests there on behalf of any page it
//! shows: a cross-site form POST to the Invoke route needs no CORS permission, and a page can
//! rebind its own name to 127.0.0.1 (DNS rebinding) and then read the answers too. AWS's SDKs,
//! the AWS CLI, Terraform, the console and the sandbox's own functions and instances all name a
//! loopback host and send no `Origin`, so the edge admits only requests that:
//! - name a loopback host (`localhost` or a name under it, 127.0.0.0/8, `[::1]`; any port),
//!   which a rebound name never is; and
//! - come from no web page, or from a page on a loopback origin: an `Origin` header (sent on
//!   every cross-origin request and every POST) must be a loopback origin, and a request the
//!   browser marks `Sec-Fetch-Site: cross-site` with no `Origin` (an `<img>`, a link) must
//!   have a loopback `Referer`.
//!
//! Refusals carry AWS's `AccessDenied` shape for the service when the request says which it is
//! (its SigV4 scope, the Lambda path, `X-Amz-Target`), and a plain 403 otherwise.

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::s3_events::signed_service;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebRefusal {
    #[error(
        "the hybridlab sandbox refuses requests for host `{0}`: only loopback names and addresses (localhost, 127.0.0.0/8, [::1]) reach it, so that a web page cannot reach it by rebinding its own name (DNS rebinding)"
    )]
    ForeignHost(String),
    #[error(
        "the hybridlab sandbox refuses requests with no Host: only requests for a loopback host reach it"
    )]
    NoHost,
    #[error(
        "the hybridlab sandbox refuses browser requests from origin `{0}`: only pages on a loopback origin may call it, since it runs the code it is sent as the user who started it"
    )]
    ForeignOrigin(String),
    #[error(
        "the hybridlab sandbox refuses cross-site browser requests (Sec-Fetch-Site: cross-site) that come from no loopback page: it runs the code it is sent as the user who started it"
    )]
    CrossSite,
}

/// Whether `host` (a `Host` header or URI authority, with or without a port) names this
/// machine's loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    // `[v6]:port`, `[v6]`, `v4:port`, `name:port`, `name`.
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || port_only(after) => inside,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port_only(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if let Ok(address) = name.parse::<IpAddr>() {
        return match address {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
    }
    // RFC 6761 reserves `localhost` and every name under it for loopback, and browsers resolve
    // them so without asking DNS: no page can rebind them.
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// `:` followed by one to five digits.
fn port_only(text: &str) -> bool {
    text.strip_prefix(':').is_some_and(|digits| {
        !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether `origin` (an `Origin` or `Referer` value) is a page served from loopback.
fn is_loopback_origin(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin.trim()) else {
        return false; // `null` (sandboxed frames, files, data: URLs) among others
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(name)) => is_loopback_host(name),
        Some(url::Host::Ipv4(v4)) => v4.is_loopback(),
        Some(url::Host::Ipv6(v6)) => is_loopback_host(&format!("[{v6}]")),
        None => false,
    }
}

/// Checks one request's host and, if a browser sent it, its origin.
pub fn check(parts: &Parts) -> Result<(), WebRefusal> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    // Both are checked when both are present (an absolute-form request line and a Host).
    let authority = parts.uri.authority().map(|authority| authority.to_string());
    let host = header("host");
    if authority.is_none() && host.is_none() {
        return Err(WebRefusal::NoHost);
    }
    for named in [authority, host].into_iter().flatten() {
        if !is_loopback_host(&named) {
            return Err(WebRefusal::ForeignHost(named));
        }
    }
    if let Some(origin) = header("origin") {
        return if is_loopback_origin(&origin) {
            Ok(())
        } else {
            Err(WebRefusal::ForeignOrigin(origin))
        };
    }
    let cross_site = header("sec-fetch-site").is_some_and(|site| site.trim() == "cross-site");
    if cross_site && !header("referer").is_some_and(|referer| is_loopback_origin(&referer)) {
        return Err(WebRefusal::CrossSite);
    }
    Ok(())
}

/// The middleware: passes admitted requests on, answers the others with a refusal.
pub async fn refuse_web_pages(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match check(&parts) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(refusal) => {
            tracing::warn!(
                method = %parts.method,
                path = %parts.uri.path(),
                reason = %refusal,
                "refused a request from outside this machine's own programs"
            );
            refusal_response(&parts, &refusal)
        }
    }
}

/// The service a request is for, as far as the request says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Lambda's REST-JSON.
    Lambda,
    /// S3's REST-XML.
    S3,
    /// The JSON protocols selected by `X-Amz-Target` (DynamoDB, CloudWatch Logs, ...).
    Json,
    /// EC2's query protocol, whose errors differ from the other query services'.
    Ec2,
    /// The query protocol (IAM, STS, ...).
    Query,
    Unknown,
}

fn protocol(parts: &Parts) -> Protocol {
    let query = parts.uri.query().unwrap_or("");
    let service = signed_service(&parts.headers, query);
    let path = parts.uri.path();
    let lambda_path = [
        "/2015-03-31/",
        "/2017-10-31/",
        "/2019-09-30/",
        "/2021-10-31/",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix));
    match service.as_deref() {
        Some("s3") => Protocol::S3,
        Some("lambda") => Protocol::Lambda,
        _ if lambda_path => Protocol::Lambda,
        _ if parts.headers.contains_key("x-amz-target") => Protocol::Json,
        Some("ec2") => Protocol::Ec2,
        Some(_) => Protocol::Query,
        None => Protocol::Unknown,
    }
}

/// The refusal in the shape of the service's own `AccessDenied`.
fn refusal_response(parts: &Parts, refusal: &WebRefusal) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let message = refusal.to_string();
    let escaped = xml_escape(&message);
    let (status, content_type, body, error_type) = match protocol(parts) {
        // https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors
        Protocol::Lambda => (
            StatusCode::FORBIDDEN,
            "application/json",
            serde_json::json!({"Type": "User", "message": message}).to_string(),
            Some("AccessDeniedException"),
        ),
        // https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
        Protocol::S3 => (
            StatusCode::FORBIDDEN,
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{escaped}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
            None,
        ),
        // DynamoDB and CloudWatch Logs answer AccessDeniedException with HTTP 400
        // (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html).
        Protocol::Json => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": "AccessDeniedException", "message": message}).to_string(),
            Some("AccessDeniedException"),
        ),
        // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
        Protocol::Ec2 => (
            StatusCode::FORBIDDEN,
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{escaped}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
            None,
        ),
        // https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html
        Protocol::Query => (
            StatusCode::FORBIDDEN,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escaped}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
            None,
        ),
        Protocol::Unknown => (
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            format!("{message}\n"),
            None,
        ),
    };
    let mut response = (status, body).into_response();
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Some(error_type) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id.clone());
        headers.insert("x-amz-request-id", id);
    }
    response
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = HttpRequest::builder().method("POST").uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn loopback_hosts_are_names_and_addresses_of_this_machine() {
        for host in [
            "localhost",
            "localhost:4566",
            "LOCALHOST.:4566",
            "bucket.localhost:4566",
            "127.0.0.1",
            "127.0.0.1:4566",
            "127.3.2.1:80",
            "[::1]",
            "[::1]:4566",
            "[::ffff:127.0.0.1]:4566",
        ] {
            assert!(is_loopback_host(host), "{host} is loopback");
        }
        for host in [
            "evil.example",
            "evil.example:4566",
            "localhost.evil.example:4566",
            "evil-localhost:4566",
            "0.0.0.0:4566",
            "10.0.0.1:4566",
            "192.168.1.10",
            "[::]:4566",
            "[fe80::1]:4566",
            "127.0.0.1:4566:1",
            "127.0.0.1:port",
            "[::1]x",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host} is not loopback");
        }
    }

    #[test]
    fn programs_on_this_machine_pass() {
        // The SDKs, the CLI, Terraform, the functions and instances: a loopback Host, no Origin.
        let sdk = parts(
            "/2015-03-31/functions/f/invocations",
            &[("host", "127.0.0.1:4566")],
        );
        assert_eq!(check(&sdk), Ok(()));
        // A page the lab serves on loopback, calling the edge with a presigned URL.
        let page = parts(
            "/bucket/key",
            &[
                ("host", "127.0.0.1:4566"),
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
        );
        assert_eq!(check(&page), Ok(()));
        let image = parts(
            "/bucket/key",
            &[
                ("host", "127.0.0.1:4566"),
                ("referer", "http://127.0.0.1:8080/"),
                ("sec-fetch-site", "cross-site"),
            ],
        );
        assert_eq!(check(&image), Ok(()));
        let typed = parts(
            "/_hybridlab/health",
            &[("host", "localhost:4566"), ("sec-fetch-site", "none")],
        );
        assert_eq!(check(&typed), Ok(()));
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused() {
        let rebound = parts("/", &[("host", "attacker.example:4566")]);
        assert_eq!(
            check(&rebound),
            Err(WebRefusal::ForeignHost("attacker.example:4566".into()))
        );
        let absolute = parts(
            "http://attacker.example:4566/",
            &[("host", "127.0.0.1:4566")],
        );
        assert!(matches!(check(&absolute), Err(WebRefusal::ForeignHost(_))));
        assert_eq!(check(&parts("/", &[])), Err(WebRefusal::NoHost));
        for origin in [
            "https://attacker.example",
            "null",
            "http://localhost.attacker.example",
            "chrome-extension://abcdef",
            "file://",
        ] {
            let request = parts(
                "/2015-03-31/functions/f/invocations",
                &[("host", "127.0.0.1:4566"), ("origin", origin)],
            );
            assert_eq!(
                check(&request),
                Err(WebRefusal::ForeignOrigin(origin.into())),
                "{origin}"
            );
        }
        let image = parts(
            "/?Action=RunInstances",
            &[("host", "127.0.0.1:4566"), ("sec-fetch-site", "cross-site")],
        );
        assert_eq!(check(&image), Err(WebRefusal::CrossSite));
        let referred = parts(
            "/",
            &[
                ("host", "127.0.0.1:4566"),
                ("sec-fetch-site", "cross-site"),
                ("referer", "https://attacker.example/page"),
            ],
        );
        assert_eq!(check(&referred), Err(WebRefusal::CrossSite));
    }

    #[test]
    fn refusals_take_the_shape_of_the_service_named() {
        let refusal = WebRefusal::ForeignOrigin("https://attacker.example".into());
        let lambda = refusal_response(
            &parts(
                "/2015-03-31/functions/f/invocations",
                &[("host", "127.0.0.1")],
            ),
            &refusal,
        );
        assert_eq!(lambda.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            lambda.headers()["x-amzn-errortype"],
            "AccessDeniedException"
        );
        let signed = |service: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
            )
        };
        let s3 = refusal_response(
            &parts("/bucket/key", &[("authorization", &signed("s3"))]),
            &refusal,
        );
        assert_eq!(s3.status(), StatusCode::FORBIDDEN);
        assert_eq!(s3.headers()["content-type"], "application/xml");
        let dynamodb = refusal_response(
            &parts(
                "/",
                &[
                    ("authorization", &signed("dynamodb")),
                    ("x-amz-target", "DynamoDB_20120810.PutItem"),
                ],
            ),
            &refusal,
        );
        assert_eq!(dynamodb.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            dynamodb.headers()["x-amzn-errortype"],
            "AccessDeniedException"
        );
        let ec2 = refusal_response(&parts("/", &[("authorization", &signed("ec2"))]), &refusal);
        assert_eq!(ec2.status(), StatusCode::FORBIDDEN);
        assert_eq!(ec2.headers()["content-type"], "text/xml");
        let unknown = refusal_response(&parts("/", &[]), &refusal);
        assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            unknown.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
    }
}
