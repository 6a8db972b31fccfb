//! Who may use the gallery and `/api/*`: a caller presenting the stack's token, either as
//! `Authorization: Bearer` (the CLI, scripts) or as the gallery's session cookie, which the
//! sign-in form sets once so the token never sits in a URL or in the page.
//!
//! The cookie is not the token: it is an HMAC-SHA256 of a fixed label keyed by the token, so
//! it proves the browser once knew the token, cannot be turned back into it, and stops working
//! when the token changes (the server keeps no session state). It is `HttpOnly` (no script
//! reads it), `SameSite=Strict` (no other site's page makes the browser send it) and `Secure`
//! when the browser signed in over HTTPS. Requests that change something and were
//! authenticated by the cookie must also come from the page's own origin (an `Origin` check),
//! since SameSite alone does not cover every older browser or a sibling on the same site.

use axum::http::{HeaderMap, HeaderValue, header};
use hybridlab_wire::ErrorCode;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::error::AppError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hybridlab_session";

/// What the session cookie's HMAC is computed over; changing it signs every browser out.
const SESSION_LABEL: &[u8] = b"hybridlab gallery session v1";

/// How a request proved it knows the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// No token is configured, so nothing was asked (start-up refuses that on a stack).
    Open,
    /// `Authorization: Bearer <token>`: a browser never adds it by itself, so no CSRF check.
    Bearer,
    /// The session cookie, which a browser sends by itself: changes need an Origin check.
    Session,
}

/// The session cookie's value for `token`: lowercase hex of HMAC-SHA256(token, label).
pub fn session_value(token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let tag = hmac::sign(&key, SESSION_LABEL);
    tag.as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn unauthorized() -> AppError {
    AppError::new(
        ErrorCode::Unauthorized,
        "this endpoint needs the stack's token: `Authorization: Bearer <token>`, or sign in to \
         the gallery at `/`",
    )
}

/// The value of cookie `name` in the request's `Cookie` headers, if any.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Checks the bearer token or the session cookie against `expected`, in constant time. A
/// wrong bearer token is refused even if a good cookie came along: the caller meant the header.
pub fn authenticate(expected: Option<&str>, headers: &HeaderMap) -> Result<Credential, AppError> {
    let Some(expected) = expected else {
        return Ok(Credential::Open);
    };
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        return if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Credential::Bearer)
        } else {
            Err(unauthorized())
        };
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(presented)
            if bool::from(
                presented
                    .as_bytes()
                    .ct_eq(session_value(expected).as_bytes()),
            ) =>
        {
            Ok(Credential::Session)
        }
        _ => Err(unauthorized()),
    }
}

/// The host (and port) part of an `Origin` value, if it is an http(s) origin.
fn origin_host(origin: &str) -> Option<&str> {
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .filter(|host| !host.is_empty() && !host.contains('/'))
}

/// Whether the request's `Origin` names the server it was sent to (its `Host`). Browsers send
/// `Origin` on every POST, same-origin ones included; `null` (a sandboxed frame, a redirect
/// across origins) and a missing one do not match.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .and_then(origin_host);
    matches!((origin, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

/// [`authenticate`] for a route that changes something: a session-cookie caller must also send
/// a same-origin `Origin`.
pub fn authenticate_change(
    expected: Option<&str>,
    headers: &HeaderMap,
) -> Result<Credential, AppError> {
    let credential = authenticate(expected, headers)?;
    if credential == Credential::Session && !same_origin(headers) {
        return Err(AppError::new(
            ErrorCode::CrossOrigin,
            "a request signed in by the gallery's cookie must come from the gallery's own page \
             (its Origin must name this server)",
        ));
    }
    Ok(credential)
}

/// Whether the browser reached the server over HTTPS, as its `Origin` says: the cookie is then
/// marked `Secure`, so it is never sent over plain HTTP. Behind TLS the browser's Origin is
/// `https://`; the plain-HTTP sandbox and tests get a cookie without the flag, which browsers
/// would otherwise drop on a non-loopback `http://` address.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|origin| origin.starts_with("https://"))
}

/// The `Set-Cookie` that signs a browser in.
pub fn sign_in_cookie(token: &str, request: &HeaderMap) -> HeaderValue {
    let secure = if over_https(request) { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
        session_value(token)
    );
    // Hex, fixed attributes: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that signs a browser out.
pub fn sign_out_cookie() -> HeaderValue {
    HeaderValue::from_static("hybridlab_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether `presented` is the token, in constant time.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    const TOKEN: &str = "a-long-enough-stack-token-0123456789";

    #[test]
    fn the_cookie_is_a_keyed_hash_not_the_token() {
        let value = session_value(TOKEN);
        assert_eq!(value.len(), 64);
        assert!(!value.contains(TOKEN));
        assert_ne!(value, session_value("another-token-0123456789abcdef"));
        // RFC 4231 test case 2, to pin the construction.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            tag.as_ref()[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "HMAC-SHA256 as specified"
        );
    }

    #[test]
    fn bearer_or_cookie_is_accepted_and_nothing_else() {
        let good_cookie = format!("other=1; {SESSION_COOKIE}={}", session_value(TOKEN));
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            authenticate(Some(TOKEN), &headers(&[("authorization", &bearer)])).ok(),
            Some(Credential::Bearer)
        );
        assert_eq!(
            authenticate(Some(TOKEN), &headers(&[("cookie", &good_cookie)])).ok(),
            Some(Credential::Session)
        );
        let token_as_cookie = format!("{SESSION_COOKIE}={TOKEN}");
        let wrong_cookie = format!("{SESSION_COOKIE}={}", session_value("wrong"));
        for refused in [
            headers(&[]),
            headers(&[("cookie", &token_as_cookie)]),
            headers(&[("cookie", &wrong_cookie)]),
            headers(&[("authorization", "Bearer wrong")]),
            headers(&[("authorization", "Bearer wrong"), ("cookie", &good_cookie)]),
        ] {
            let err = authenticate(Some(TOKEN), &refused).expect_err("refused");
            assert_eq!(err.code, ErrorCode::Unauthorized, "{refused:?}");
        }
        assert_eq!(
            authenticate(None, &HeaderMap::new()).ok(),
            Some(Credential::Open)
        );
    }

    #[test]
    fn a_cookie_change_needs_the_servers_own_origin() {
        let cookie = format!("{SESSION_COOKIE}={}", session_value(TOKEN));
        let same = headers(&[
            ("cookie", &cookie),
            ("host", "203.0.113.7:8080"),
            ("origin", "https://203.0.113.7:8080"),
        ]);
        assert!(authenticate_change(Some(TOKEN), &same).is_ok());
        for (origin, host) in [
            (Some("https://evil.example"), "203.0.113.7:8080"),
            (Some("null"), "203.0.113.7:8080"),
            (None, "203.0.113.7:8080"),
            (Some("http://203.0.113.7:8081"), "203.0.113.7:8080"),
        ] {
            let mut request = headers(&[("cookie", &cookie), ("host", host)]);
            if let Some(origin) = origin {
                request.insert("origin", HeaderValue::from_str(origin).expect("valid"));
            }
            let err = authenticate_change(Some(TOKEN), &request).expect_err("cross-origin");
            assert_eq!(err.code, ErrorCode::CrossOrigin, "{origin:?}");
        }
        // A bearer caller is not a browser acting on its own: no Origin needed.
        let bearer = format!("Bearer {TOKEN}");
        assert!(authenticate_change(Some(TOKEN), &headers(&[("authorization", &bearer)])).is_ok());
    }

    #[test]
    fn the_cookie_is_secure_when_the_browser_came_over_https() {
        let https = headers(&[("origin", "https://gallery.example")]);
        let http = headers(&[("origin", "http://127.0.0.1:8080")]);
        let secure = sign_in_cookie(TOKEN, &https);
        let plain = sign_in_cookie(TOKEN, &http);
        let secure = secure.to_str().expect("ascii");
        let plain = plain.to_str().expect("ascii");
        for cookie in [secure, plain] {
            assert!(cookie.contains("HttpOnly; SameSite=Strict"), "{cookie}");
            assert!(!cookie.contains(TOKEN), "{cookie}");
        }
        assert!(secure.ends_with("; Secure"), "{secure}");
        assert!(!plain.contains("Secure"), "{plain}");
    }
}
