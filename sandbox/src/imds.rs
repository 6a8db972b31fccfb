//! The instance metadata service (IMDSv2) of one instance, on a loopback port of its own: the
//! instance's processes reach it through `AWS_EC2_METADATA_SERVICE_ENDPOINT`, and the AWS SDKs'
//! default credential chain gets the instance profile's role from it exactly as on EC2, so the
//! server's code is the same in both places.
//!
//! What it answers, as EC2's does
//! (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html,
//! https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html):
//! - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` between 1 and 21600
//!   answers a session token and echoes the TTL; a missing or other TTL is 400, and a request
//!   with `X-Forwarded-For` (one that went through a proxy) is 403.
//! - every `GET` needs a valid, unexpired token in `X-aws-ec2-metadata-token` when the
//!   instance's `HttpTokens` is `required` (401 otherwise); an invalid token is 401 always.
//! - `meta-data/iam/security-credentials/` lists the instance profile's role name, and
//!   `.../ROLE` its credentials (`Code`, `LastUpdated`, `Type`, `AccessKeyId`,
//!   `SecretAccessKey`, `Token`, `Expiration`); an instance without a profile gets 404 there.
//!   Credentials last six hours and new ones are issued 15 minutes before they expire ("We
//!   make new credentials available at least five minutes before the expiration of the old
//!   credentials"); the old ones stay valid until their own expiry.
//! - `meta-data/instance-id`, `meta-data/placement/region`, `.../availability-zone`,
//!   `meta-data/iam/info` and `dynamic/instance-identity/document`. Anything else is 404.
//!
//! Tokens are stateless: the expiry and a keyed SHA-256 of it under a key only this instance's
//! service knows, so another instance's token is invalid here and no table grows. Requests a
//! web page could send are refused as the edge refuses them (see [`super::web_guard`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::principals::{Principal, PrincipalTable, Role, random_bytes, rfc3339_seconds};

const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// The longest token IMDS issues: six hours.
const MAX_TOKEN_TTL_SECONDS: u64 = 21_600;
/// How long an instance profile's credentials last.
pub const CREDENTIALS_LIFETIME: Duration = Duration::from_secs(6 * 3600);
/// How long before expiry new credentials are handed out.
const ROTATE_BEFORE: Duration = Duration::from_secs(15 * 60);
/// Bytes of the keyed digest in a token.
const TOKEN_MAC_LEN: usize = 24;

/// The instance profile an instance runs with.
#[derive(Debug, Clone)]
pub struct InstanceProfile {
    pub arn: String,
    /// The association's or profile's id, as `DescribeInstances` gives it.
    pub id: String,
    /// The profile's role; `None` for a profile with no role (its instance gets no
    /// credentials, as on EC2).
    pub role: Option<Role>,
}

/// What an instance's metadata says about it.
#[derive(Debug, Clone)]
pub struct InstanceMetadata {
    pub instance_id: String,
    pub account: String,
    pub region: String,
    pub availability_zone: String,
    pub instance_type: String,
    pub image_id: String,
    pub private_ip: String,
    pub launched: Option<SystemTime>,
    pub profile: Option<InstanceProfile>,
    /// `HttpTokens: required` (IMDSv2 only); `optional` also answers token-less GETs.
    pub tokens_required: bool,
}

/// One instance's metadata service.
#[derive(Debug)]
pub struct MetadataService {
    metadata: InstanceMetadata,
    principals: Arc<PrincipalTable>,
    token_key: Vec<u8>,
    current: Mutex<Option<Arc<Principal>>>,
}

impl MetadataService {
    pub fn new(metadata: InstanceMetadata, principals: Arc<PrincipalTable>) -> Arc<Self> {
        Arc::new(Self {
            metadata,
            principals,
            token_key: random_bytes(32),
            current: Mutex::new(None),
        })
    }

    fn role(&self) -> Option<&Role> {
        self.metadata.profile.as_ref()?.role.as_ref()
    }

    fn token_mac(&self, expiry: u64) -> Vec<u8> {
        let mut digest = Sha256::new();
        digest.update(&self.token_key);
        digest.update(expiry.to_be_bytes());
        digest.finalize()[..TOKEN_MAC_LEN].to_vec()
    }

    fn token(&self, ttl_seconds: u64, now: SystemTime) -> String {
        let expiry = unix_seconds(now) + ttl_seconds;
        let mut bytes = expiry.to_be_bytes().to_vec();
        bytes.extend(self.token_mac(expiry));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token_is_valid(&self, token: &[u8], now: SystemTime) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        if bytes.len() != 8 + TOKEN_MAC_LEN {
            return false;
        }
        let (expiry, mac) = bytes.split_at(8);
        let Ok(expiry) = <[u8; 8]>::try_from(expiry).map(u64::from_be_bytes) else {
            return false;
        };
        let expected = self.token_mac(expiry);
        let differs = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        differs == 0 && expiry > unix_seconds(now)
    }

    /// The instance's current credentials, new ones if they are about to expire.
    fn credentials(&self, role: &Role, now: SystemTime) -> Arc<Principal> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(principal) = current.as_ref()
            && principal
                .expires
                .duration_since(now)
                .is_ok_and(|left| left > ROTATE_BEFORE)
        {
            return principal.clone();
        }
        let principal =
            self.principals
                .issue(role, &self.metadata.instance_id, CREDENTIALS_LIFETIME);
        *current = Some(principal.clone());
        principal
    }

    /// The answer to one request.
    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        let now = SystemTime::now();
        if path == "/latest/api/token" {
            if method != Method::PUT {
                return error(StatusCode::METHOD_NOT_ALLOWED);
            }
            if headers.contains_key("x-forwarded-for") {
                return error(StatusCode::FORBIDDEN);
            }
            let ttl = headers
                .get(TOKEN_TTL_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .filter(|ttl| (1..=MAX_TOKEN_TTL_SECONDS).contains(ttl));
            let Some(ttl) = ttl else {
                return error(StatusCode::BAD_REQUEST);
            };
            let mut response = text(self.token(ttl, now));
            response
                .headers_mut()
                .insert(TOKEN_TTL_HEADER, HeaderValue::from(ttl));
            return response;
        }
        if method != Method::GET && method != Method::HEAD {
            return error(StatusCode::METHOD_NOT_ALLOWED);
        }
        match headers.get(TOKEN_HEADER) {
            Some(token) if !self.token_is_valid(token.as_bytes(), now) => {
                return error(StatusCode::UNAUTHORIZED);
            }
            None if self.metadata.tokens_required => return error(StatusCode::UNAUTHORIZED),
            _ => {}
        }
        let Some(item) = path.strip_prefix("/latest/") else {
            return error(StatusCode::NOT_FOUND);
        };
        let metadata = &self.metadata;
        match item {
            "meta-data/instance-id" => text(metadata.instance_id.clone()),
            "meta-data/placement/region" => text(metadata.region.clone()),
            "meta-data/placement/availability-zone" => text(metadata.availability_zone.clone()),
            "meta-data/iam/info" => match &metadata.profile {
                Some(profile) => json_text(&IamInfo {
                    code: "Success",
                    last_updated: rfc3339_seconds(metadata.launched.unwrap_or(now)),
                    instance_profile_arn: &profile.arn,
                    instance_profile_id: &profile.id,
                }),
                None => error(StatusCode::NOT_FOUND),
            },
            "meta-data/iam/security-credentials" | "meta-data/iam/security-credentials/" => {
                match self.role() {
                    Some(role) => text(role.name().to_owned()),
                    None => error(StatusCode::NOT_FOUND),
                }
            }
            "dynamic/instance-identity/document" => json_text(&IdentityDocument {
                account_id: &metadata.account,
                architecture: "x86_64",
                availability_zone: &metadata.availability_zone,
                billing_products: None,
                devpay_product_codes: None,
                marketplace_product_codes: None,
                image_id: &metadata.image_id,
                instance_id: &metadata.instance_id,
                instance_type: &metadata.instance_type,
                kernel_id: None,
                pending_time: rfc3339_seconds(metadata.launched.unwrap_or(now)),
                private_ip: &metadata.private_ip,
                ramdisk_id: None,
                region: &metadata.region,
                version: "2017-09-30",
            }),
            other => match (
                other.strip_prefix("meta-data/iam/security-credentials/"),
                self.role(),
            ) {
                (Some(name), Some(role)) if name == role.name() => {
                    let principal = self.credentials(role, now);
                    json_text(&CredentialDocument {
                        code: "Success",
                        last_updated: rfc3339_seconds(principal.issued),
                        kind: "AWS-HMAC",
                        access_key_id: &principal.access_key_id,
                        secret_access_key: &principal.secret_access_key,
                        token: &principal.session_token,
                        expiration: rfc3339_seconds(principal.expires),
                    })
                }
                _ => error(StatusCode::NOT_FOUND),
            },
        }
    }
}

/// `meta-data/iam/security-credentials/ROLE`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialDocument<'a> {
    code: &'static str,
    last_updated: String,
    #[serde(rename = "Type")]
    kind: &'static str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
}

/// `meta-data/iam/info`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IamInfo<'a> {
    code: &'static str,
    last_updated: String,
    instance_profile_arn: &'a str,
    instance_profile_id: &'a str,
}

/// `dynamic/instance-identity/document`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityDocument<'a> {
    account_id: &'a str,
    architecture: &'static str,
    availability_zone: &'a str,
    billing_products: Option<()>,
    devpay_product_codes: Option<()>,
    marketplace_product_codes: Option<()>,
    image_id: &'a str,
    instance_id: &'a str,
    instance_type: &'a str,
    kernel_id: Option<()>,
    pending_time: String,
    private_ip: &'a str,
    ramdisk_id: Option<()>,
    region: &'a str,
    version: &'static str,
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn text(body: String) -> Response {
    (StatusCode::OK, [("content-type", "text/plain")], body).into_response()
}

fn json_text(document: &impl Serialize) -> Response {
    match serde_json::to_string_pretty(document) {
        Ok(body) => text(body),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// IMDS answers errors with a small HTML page naming the status.
fn error(status: StatusCode) -> Response {
    let title = format!(
        "{} - {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
    );
    (status, [("content-type", "text/html")], body).into_response()
}

async fn handle(State(service): State<Arc<MetadataService>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    service.answer(&parts.method, parts.uri.path(), &parts.headers)
}

/// The service's router.
pub fn router(service: Arc<MetadataService>) -> Router {
    Router::new()
        .fallback(handle)
        // A page that found the port could otherwise read the instance's credentials.
        .layer(axum::middleware::from_fn(
            super::web_guard::refuse_web_pages,
        ))
        .with_state(service)
}

/// Serves `service` on a fresh loopback port; returns its address (for
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`) and the server task.
pub async fn serve(
    service: Arc<MetadataService>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = router(service);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    fn metadata(profile: Option<InstanceProfile>, tokens_required: bool) -> InstanceMetadata {
        InstanceMetadata {
            instance_id: "i-0123456789abcdef0".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            availability_zone: "us-east-1a".into(),
            instance_type: "t3.micro".into(),
            image_id: "ami-0123456789abcdef0".into(),
            private_ip: "10.0.0.12".into(),
            launched: Some(SystemTime::now()),
            profile,
            tokens_required,
        }
    }

    fn profile() -> InstanceProfile {
        InstanceProfile {
            arn: "arn:aws:iam::123456789012:instance-profile/hybridlab-server-k3x9q2ma".into(),
            id: "AIPAEXAMPLE0123456789".into(),
            role: Some(Role {
                arn: "arn:aws:iam::123456789012:role/hybridlab/hybridlab-server-k3x9q2ma".into(),
                id: "AROAEXAMPLE0123456789".into(),
            }),
        }
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    async fn send(
        service: &Arc<MetadataService>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:41234");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router(service.clone())
            .oneshot(request.body(Body::empty()).expect("a request"))
            .await
            .expect("an answer");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn token(service: &Arc<MetadataService>, ttl: &str) -> Answer {
        send(
            service,
            Method::PUT,
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
        )
        .await
    }

    #[tokio::test]
    async fn a_token_needs_a_ttl_between_one_second_and_six_hours() {
        let service = MetadataService::new(metadata(Some(profile()), true), Arc::default());
        for ttl in ["1", "21600", "60"] {
            let answer = token(&service, ttl).await;
            assert_eq!(answer.status, StatusCode::OK, "ttl {ttl}");
            assert!(!answer.body.is_empty());
            assert_eq!(
                answer
                    .headers
                    .get(TOKEN_TTL_HEADER)
                    .and_then(|v| v.to_str().ok()),
                Some(ttl),
                "the TTL is echoed"
            );
        }
        for ttl in ["0", "21601", "-5", "ten", ""] {
            assert_eq!(
                token(&service, ttl).await.status,
                StatusCode::BAD_REQUEST,
                "ttl {ttl:?}"
            );
        }
        let missing = send(&service, Method::PUT, "/latest/api/token", &[]).await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        let proxied = send(
            &service,
            Method::PUT,
            "/latest/api/token",
            &[
                ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
                ("X-Forwarded-For", "203.0.113.9"),
            ],
        )
        .await;
        assert_eq!(proxied.status, StatusCode::FORBIDDEN);
        let fetched = send(&service, Method::GET, "/latest/api/token", &[]).await;
        assert_eq!(fetched.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn a_missing_or_invalid_token_is_unauthorized() {
        let service = MetadataService::new(metadata(Some(profile()), true), Arc::default());
        let path = "/latest/meta-data/iam/security-credentials/";
        assert_eq!(
            send(&service, Method::GET, path, &[]).await.status,
            StatusCode::UNAUTHORIZED
        );
        let valid = token(&service, "60").await.body;
        // Another instance's token, a tampered one, garbage, and an expired one.
        let other = MetadataService::new(metadata(Some(profile()), true), Arc::default());
        let foreign = token(&other, "60").await.body;
        let mut tampered = valid.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ASCII");
        let expired = service.token(1, SystemTime::now() - Duration::from_secs(5));
        for bad in [foreign.as_str(), &tampered, "not-a-token", &expired] {
            let answer = send(
                &service,
                Method::GET,
                path,
                &[("X-aws-ec2-metadata-token", bad)],
            )
            .await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "token {bad}");
        }
        let answer = send(
            &service,
            Method::GET,
            path,
            &[("X-aws-ec2-metadata-token", &valid)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, "hybridlab-server-k3x9q2ma");

        // With `HttpTokens: optional`, IMDSv1's token-less GET works; a bad token still not.
        let optional = MetadataService::new(metadata(Some(profile()), false), Arc::default());
        assert_eq!(
            send(&optional, Method::GET, path, &[]).await.status,
            StatusCode::OK
        );
        assert_eq!(
            send(
                &optional,
                Method::GET,
                path,
                &[("X-aws-ec2-metadata-token", "not-a-token")]
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn the_credential_document_names_an_issued_session_of_the_profile_role() {
        let principals = Arc::new(PrincipalTable::default());
        let service = MetadataService::new(metadata(Some(profile()), true), principals.clone());
        let valid = token(&service, "300").await.body;
        let headers = [("X-aws-ec2-metadata-token", valid.as_str())];
        let path = "/latest/meta-data/iam/security-credentials/hybridlab-server-k3x9q2ma";
        let answer = send(&service, Method::GET, path, &headers).await;
        assert_eq!(answer.status, StatusCode::OK);
        let document: Value = serde_json::from_str(&answer.body).expect("JSON");
        let fields: Vec<&str> = document
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "AccessKeyId",
            "Code",
            "Expiration",
            "LastUpdated",
            "SecretAccessKey",
            "Token",
            "Type",
        ];
        expected.sort_unstable();
        assert_eq!(fields, expected, "{document}");
        assert_eq!(document["Code"], "Success");
        assert_eq!(document["Type"], "AWS-HMAC");
        let key = document["AccessKeyId"].as_str().expect("a key");
        assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
        for time in ["LastUpdated", "Expiration"] {
            let stamp = document[time].as_str().expect("a time");
            assert!(
                time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                    .is_ok()
                    && stamp.ends_with('Z'),
                "{time}: {stamp}"
            );
        }
        let principal = principals.get(key).expect("the key is in the table");
        assert_eq!(principal.session_name, "i-0123456789abcdef0");
        assert_eq!(
            principal.arn(),
            "arn:aws:sts::123456789012:assumed-role/hybridlab-server-k3x9q2ma/i-0123456789abcdef0"
        );
        assert_eq!(document["SecretAccessKey"], principal.secret_access_key);
        assert_eq!(document["Token"], principal.session_token);
        assert_eq!(
            document["Expiration"],
            rfc3339_seconds(principal.expires).as_str()
        );

        // Asked again, the same credentials until they near expiry.
        let again: Value =
            serde_json::from_str(&send(&service, Method::GET, path, &headers).await.body)
                .expect("JSON");
        assert_eq!(again["AccessKeyId"], key);
        let later = SystemTime::now() + CREDENTIALS_LIFETIME - ROTATE_BEFORE / 2;
        let role = profile().role.expect("a role");
        let rotated = service.credentials(&role, later);
        assert_ne!(rotated.access_key_id, key, "new credentials before expiry");
        assert!(principals.get(key).is_some(), "the old ones stay valid");

        // Another role name is not this instance's.
        let other = "/latest/meta-data/iam/security-credentials/someone-else";
        assert_eq!(
            send(&service, Method::GET, other, &headers).await.status,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn an_instance_without_a_profile_has_no_credentials() {
        let service = MetadataService::new(metadata(None, true), Arc::default());
        let valid = token(&service, "60").await.body;
        let headers = [("X-aws-ec2-metadata-token", valid.as_str())];
        for path in [
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials/any-role",
            "/latest/meta-data/iam/info",
        ] {
            assert_eq!(
                send(&service, Method::GET, path, &headers).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let id = send(
            &service,
            Method::GET,
            "/latest/meta-data/instance-id",
            &headers,
        )
        .await;
        assert_eq!(id.body, "i-0123456789abcdef0");
        let region = send(
            &service,
            Method::GET,
            "/latest/meta-data/placement/region",
            &headers,
        )
        .await;
        assert_eq!(region.body, "us-east-1");
        let document = send(
            &service,
            Method::GET,
            "/latest/dynamic/instance-identity/document",
            &headers,
        )
        .await;
        let document: Value = serde_json::from_str(&document.body).expect("JSON");
        assert_eq!(document["instanceId"], "i-0123456789abcdef0");
        assert_eq!(document["accountId"], "123456789012");
        assert_eq!(document["region"], "us-east-1");
        assert_eq!(document["instanceType"], "t3.micro");
        assert_eq!(
            send(&service, Method::GET, "/latest/user-data/x", &headers)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn web_pages_are_refused() {
        let service = MetadataService::new(metadata(Some(profile()), true), Arc::default());
        let rebound = Request::builder()
            .method(Method::PUT)
            .uri("/latest/api/token")
            .header("host", "attacker.example:41234")
            .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
            .body(Body::empty())
            .expect("a request");
        let answer = router(service).oneshot(rebound).await.expect("an answer");
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }
}
