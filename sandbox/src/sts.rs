//! What the edge answers itself for STS: `GetCallerIdentity` signed with a key the sandbox
//! issued (see [`super::principals`]), which moto knows nothing of. Its answer is STS's, in
//! its query-protocol XML
//! (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html): the
//! role session's `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, `UserId`
//! `ROLE_ID:SESSION` and the account. A key whose session token is missing or another's is
//! `InvalidClientTokenId`, an expired one `ExpiredToken`, as STS refuses them
//! (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html). Every other STS
//! call goes to moto.

use std::time::SystemTime;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::iam::{self, Credential, Service};
use super::principals::Principal;

/// STS's XML namespace.
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The query-protocol `Action` of a request (STS, IAM, EC2): in the query string, or in a
/// form body.
pub fn action(query: &str, body: &[u8]) -> Option<String> {
    form_value(query, body, "Action")
}

/// A parameter of a query-protocol request: in the query string, or in a form body.
pub fn form_value(query: &str, body: &[u8], field: &str) -> Option<String> {
    [query.as_bytes(), body].into_iter().find_map(|params| {
        url::form_urlencoded::parse(params)
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.into_owned())
    })
}

/// Whether a request signed with `credential` is for STS and names its action in the query
/// or a form body the edge has to read.
pub fn is_sts(credential: &Credential, query: &str) -> bool {
    credential.scope_service.as_deref() == Some("sts")
        || url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| name == "Version" && value == "2011-06-15")
}

/// `GetCallerIdentity` for `principal`, sent with `credential`.
pub fn caller_identity(
    principal: &Principal,
    credential: &Credential,
    now: SystemTime,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Some(problem) = principal.token_problem(credential, now) {
        return iam::token_refusal(Service::Sts, problem, &request_id, false).into_response();
    }
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        escape(&principal.arn()),
        escape(&principal.user_id()),
        escape(principal.account()),
    );
    xml(StatusCode::OK, body, &request_id)
}

fn xml(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::iam::SigningScheme;
    use crate::principals::{PrincipalTable, Role};
    use http_body_util::BodyExt;

    fn session() -> Arc<Principal> {
        PrincipalTable::default().issue(
            &Role {
                arn: "arn:aws:iam::123456789012:role/proxy-role".into(),
                id: "AROAEXAMPLE0123456789".into(),
            },
            "hybridlab-proxy-k3x9q2ma",
            Duration::from_secs(3600),
        )
    }

    fn signed(principal: &Principal, token: Option<&str>) -> Credential {
        Credential {
            access_key_id: principal.access_key_id.clone(),
            session_token: token.map(str::to_owned),
            scheme: SigningScheme::SigV4Header,
            scope_region: Some("us-east-1".into()),
            scope_service: Some("sts".into()),
        }
    }

    async fn body(response: Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn the_identity_is_the_assumed_role_session() {
        let principal = session();
        let response = caller_identity(
            &principal,
            &signed(&principal, Some(&principal.session_token)),
            SystemTime::now(),
        );
        assert_eq!(response.status(), StatusCode::OK);
        let text = body(response).await;
        assert!(
            text.contains("<Arn>arn:aws:sts::123456789012:assumed-role/proxy-role/hybridlab-proxy-k3x9q2ma</Arn>"),
            "{text}"
        );
        assert!(
            text.contains("<UserId>AROAEXAMPLE0123456789:hybridlab-proxy-k3x9q2ma</UserId>"),
            "{text}"
        );
        assert!(text.contains("<Account>123456789012</Account>"), "{text}");
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_and_an_expired_session_are_refused() {
        let principal = session();
        for token in [None, Some("someone else's")] {
            let response =
                caller_identity(&principal, &signed(&principal, token), SystemTime::now());
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            let text = body(response).await;
            assert!(text.contains("<Code>InvalidClientTokenId</Code>"), "{text}");
        }
        let response = caller_identity(
            &principal,
            &signed(&principal, Some(&principal.session_token)),
            principal.expires,
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(body(response).await.contains("<Code>ExpiredToken</Code>"));
    }

    #[test]
    fn the_action_comes_from_the_query_or_the_form() {
        assert_eq!(
            action("", b"Action=GetCallerIdentity&Version=2011-06-15").as_deref(),
            Some("GetCallerIdentity")
        );
        assert_eq!(
            action("Action=GetCallerIdentity&Version=2011-06-15", b"").as_deref(),
            Some("GetCallerIdentity")
        );
        assert_eq!(action("", b"Version=2011-06-15").as_deref(), None);
    }
}
