//! Who may see the gallery and `/api/images*`: nobody without the stack's token (401, with or
//! without a wrong one), a browser after signing in once (a session cookie that is not the
//! token), a script with `Authorization: Bearer`; cookie-authenticated changes only from the
//! server's own origin; nothing presigned until it is followed, and no source URL's query
//! string handed out.

use hybridlab_tests::fixtures;
use hybridlab_tests::server::Lab;
use hybridlab_wire::{ImageListItem, ImageListPage};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    LAB_TOKEN, assert_recovered, fetch_object_link, http, http_no_redirect, post_json, rows,
};

const SESSION_COOKIE: &str = "hybridlab_session";

/// Signs in through the form as a browser on `origin` would; returns the answer.
async fn sign_in(lab: &Lab, token: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = http_no_redirect()
        .post(format!("{}/sign-in", lab.server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        // The tokens here are letters, digits and dashes: nothing to escape.
        .body(format!("token={token}"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("the server answers")
}

/// The `name=value` part of the session cookie a sign-in answer sets.
fn session_cookie(answer: &reqwest::Response) -> (String, String) {
    let set = answer
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a Set-Cookie")
        .to_owned();
    let pair = set.split(';').next().unwrap_or_default().trim().to_owned();
    (pair, set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gallery_and_api_need_the_token_and_work_after_sign_in() {
    let lab = Lab::start_with_pipeline(|config| config.token = Some(LAB_TOKEN.into())).await;
    let origin = lab.server.url.clone();
    // An image whose URL carries a secret in its query string, as a presigned URL would.
    let image_url = format!(
        "{}?X-Amz-Credential=AKIDSECRET&sig=s3cr3t",
        lab.images
            .add("query.jpg", fixtures::jpeg(320, 240), "image/jpeg")
    );
    let processed = post_json(&lab, json!({ "image_url": image_url }), Some(LAB_TOKEN)).await;
    assert_eq!(processed.status, StatusCode::OK, "{}", processed.body);
    let id = processed.body["image_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let server = &lab.server.url;
    let reads = [
        "/".to_owned(),
        "/api/images".to_owned(),
        format!("/api/images/{id}"),
        format!("/api/images/{id}/objects/thumbnail"),
        format!("/api/images/{id}/objects/original"),
    ];

    // Nothing without the token: no header, a wrong one, the token itself as the cookie, a
    // cookie made with another token.
    let wrong_cookie = format!(
        "{SESSION_COOKIE}={}",
        hybridlab_ec2_server::session::session_value("not-the-token-0123456789abcdef")
    );
    let token_as_cookie = format!("{SESSION_COOKIE}={LAB_TOKEN}");
    let refused: [(&str, Option<(&str, String)>); 5] = [
        ("no credentials", None),
        (
            "wrong bearer",
            Some(("authorization", "Bearer wrong".into())),
        ),
        (
            "short bearer",
            Some((
                "authorization",
                format!("Bearer {}", &LAB_TOKEN[..LAB_TOKEN.len() - 1]),
            )),
        ),
        ("token as cookie", Some(("cookie", token_as_cookie))),
        ("foreign cookie", Some(("cookie", wrong_cookie))),
    ];
    for (case, credential) in &refused {
        for path in &reads {
            let mut request = http_no_redirect().get(format!("{server}{path}"));
            if let Some((name, value)) = credential {
                request = request.header(*name, value);
            }
            let answer = request.send().await.expect("answers");
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{case}: GET {path}"
            );
            let body = answer.text().await.expect("a body");
            assert!(!body.contains(&id), "{case}: {path} shows no image: {body}");
            assert!(
                !body.contains(&lab.bucket),
                "{case}: {path} names no bucket"
            );
            if path == "/" {
                assert!(body.contains("id=\"sign-in-form\""), "the sign-in form");
            } else {
                let body: Value = serde_json::from_str(&body).expect("a JSON error");
                assert_eq!(body["error"], "unauthorized", "{case}: {path}");
            }
        }
        let mut presign = http()
            .post(format!("{server}/api/uploads"))
            .header("origin", &origin)
            .json(&json!({"filename": "a.jpg", "size_bytes": 10}));
        if let Some((name, value)) = credential {
            presign = presign.header(*name, value);
        }
        let answer = presign.send().await.expect("answers");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{case}: upload");
    }
    assert_eq!(rows(&lab).await.len(), 1, "no upload row was written");

    // Signing in: a wrong token is refused, a sign-in posted from another site too.
    let wrong = sign_in(&lab, "wrong", Some(&origin)).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let foreign = sign_in(&lab, LAB_TOKEN, Some("https://evil.example")).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(foreign.headers().get("set-cookie").is_none());

    let signed_in = sign_in(&lab, LAB_TOKEN, Some(&origin)).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/")
    );
    let (cookie, set_cookie) = session_cookie(&signed_in);
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains(LAB_TOKEN),
        "the cookie is not the token"
    );
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP gets no Secure flag: {set_cookie}"
    );
    // Over HTTPS (as the browser's Origin says) the cookie is only sent back over HTTPS.
    let https_origin = origin.replacen("http://", "https://", 1);
    let over_tls = sign_in(&lab, LAB_TOKEN, Some(&https_origin)).await;
    assert!(session_cookie(&over_tls).1.ends_with("; Secure"));

    // With the cookie: the gallery and the API answer, and hand out no secrets.
    let with_cookie = |request: reqwest::RequestBuilder| request.header("cookie", &cookie);
    let page = with_cookie(http().get(format!("{server}/")))
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("HTML");
    assert!(page.contains(&format!("data-image-id=\"{id}\"")), "{page}");
    assert!(
        page.contains(&format!(
            "<img class=\"thumbnail\" src=\"/api/images/{id}/objects/thumbnail\""
        )),
        "{page}"
    );
    for secret in [LAB_TOKEN, "X-Amz-Signature", "AKIDSECRET", "s3cr3t"] {
        assert!(!page.contains(secret), "the page holds no {secret}");
    }
    assert!(!page.contains("upload-token"), "the form asks no token");

    let listing: ImageListPage = with_cookie(http().get(format!("{server}/api/images")))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("a page");
    let [item] = <[ImageListItem; 1]>::try_from(listing.items).expect("one row");
    assert_eq!(item.record.image_id, id);
    let source = item.record.source_url.clone().expect("a source URL");
    assert!(source.ends_with("/images/query.jpg?…"), "{source}");
    assert!(!source.contains("s3cr3t") && !source.contains("AKIDSECRET"));
    let stored = rows(&lab).await;
    assert_eq!(
        stored[0].source_url.as_deref(),
        Some(image_url.as_str()),
        "the row itself keeps the URL whole"
    );
    for (name, link) in &item.urls {
        assert_eq!(link, &format!("/api/images/{id}/objects/{name}"));
        let bytes = fetch_object_link(&lab, link, with_cookie).await;
        let expected = lab
            .clients
            .object_bytes(&lab.bucket, &item.record.keys[name])
            .await;
        assert_eq!(bytes, expected, "{name}");
    }
    assert_eq!(item.urls.len(), 4, "{:?}", item.urls);

    // A script with the bearer token reads the same.
    let bearer = |request: reqwest::RequestBuilder| request.bearer_auth(LAB_TOKEN);
    let single: ImageListItem = bearer(http().get(format!("{server}/api/images/{id}")))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("a row");
    assert_eq!(single.urls, item.urls);
    fetch_object_link(&lab, &single.urls["medium"], bearer).await;
    let missing = bearer(http().get(format!("{server}/api/images/{id}/objects/nothing")))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A change authenticated by the cookie needs the server's own Origin: a page on another
    // site cannot use a signed-in browser.
    let presign = |origin: Option<&str>| {
        let mut request = with_cookie(http().post(format!("{server}/api/uploads")))
            .json(&json!({"filename": "b.jpg", "content_type": "image/jpeg", "size_bytes": 10}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        async move { request.send().await.expect("answers") }
    };
    for origin in [None, Some("https://evil.example"), Some("null")] {
        let answer = presign(origin).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{origin:?}");
        let body: Value = answer.json().await.expect("JSON");
        assert_eq!(body["error"], "cross_origin", "{origin:?}");
    }
    assert_eq!(rows(&lab).await.len(), 1, "no cross-origin upload row");
    let answer = presign(Some(&origin)).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(rows(&lab).await.len(), 2);

    // Signing out forgets the cookie.
    let out = with_cookie(http_no_redirect().post(format!("{server}/sign-out")))
        .header("origin", &origin)
        .send()
        .await
        .expect("answers");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&out).1.contains("Max-Age=0"));

    assert_recovered(&lab, Some(LAB_TOKEN)).await;
}
