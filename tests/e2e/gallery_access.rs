//! Who may see the gallery and `/api/images*`: nobody without the stack's token (401, with or
//! without a wrong one), a browser after signing in once (a session cookie that is not the
//! token), a script with `Authorization: Bearer`; cookie-authenticated changes only from the
//! server's own origin; nothing presigned until it is followed, and no source URL's query
//! string handed out. A one-time sign-in code (what `hybridlab gallery` opens the browser
//! with) is minted only with the bearer token and signs a browser in once, before it expires,
//! from the server's own page.

use std::time::Duration;

use hybridlab_tests::browser::Driver;
use hybridlab_tests::fixtures;
use hybridlab_tests::server::Lab;
use hybridlab_wire::{ImageListItem, ImageListPage};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    LAB_TOKEN, assert_recovered, eventually, fetch_object_link, http, http_no_redirect, post_json,
    rows,
};

const SESSION_COOKIE: &str = "hybridlab_session";

/// Posts the sign-in form (`form`, already encoded) as a browser on `origin` would; returns
/// the answer.
async fn post_sign_in(lab: &Lab, form: String, origin: Option<&str>) -> reqwest::Response {
    let mut request = http_no_redirect()
        .post(format!("{}/sign-in", lab.server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("the server answers")
}

/// Signs in through the form with `token`, as a browser on `origin` would.
async fn sign_in(lab: &Lab, token: &str, origin: Option<&str>) -> reqwest::Response {
    // The tokens here are letters, digits and dashes: nothing to escape.
    post_sign_in(lab, format!("token={token}"), origin).await
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

/// `POST /api/sign-in-codes` with `credential` (a header name and value), as a script would.
async fn mint_request(lab: &Lab, credential: Option<(&str, &str)>) -> reqwest::Response {
    let mut request = http_no_redirect().post(format!("{}/api/sign-in-codes", lab.server.url));
    if let Some((name, value)) = credential {
        request = request.header(name, value);
    }
    request.send().await.expect("the server answers")
}

/// A fresh one-time code, minted with the bearer token.
async fn mint_code(lab: &Lab) -> String {
    let answer = mint_request(lab, Some(("authorization", &format!("Bearer {LAB_TOKEN}")))).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let body: Value = answer.json().await.expect("JSON");
    body["code"].as_str().expect("a code").to_owned()
}

/// Posts `code` to `/sign-in` as the gallery's page does, from `origin`.
async fn redeem(lab: &Lab, code: &str, origin: Option<&str>) -> reqwest::Response {
    // Codes are URL-safe base64: nothing to escape.
    post_sign_in(lab, format!("code={code}"), origin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_a_sign_in_code_needs_the_bearer_token_not_the_cookie() {
    let lab = Lab::start().await;
    let signed_in = sign_in(&lab, LAB_TOKEN, Some(&lab.server.url)).await;
    let (cookie, _) = session_cookie(&signed_in);
    let short = format!("Bearer {}", &LAB_TOKEN[..LAB_TOKEN.len() - 1]);
    for (case, credential) in [
        ("nothing", None),
        (
            "the session cookie alone",
            Some(("cookie", cookie.as_str())),
        ),
        ("a wrong bearer", Some(("authorization", "Bearer wrong"))),
        ("a short bearer", Some(("authorization", short.as_str()))),
    ] {
        let answer = mint_request(&lab, credential).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{case}");
        let body: Value = answer.json().await.expect("a JSON error");
        assert_eq!(body["error"], "unauthorized", "{case}");
        assert!(body.get("code").is_none(), "{case}: no code");
    }

    let bearer = format!("Bearer {LAB_TOKEN}");
    let answer = mint_request(&lab, Some(("authorization", &bearer))).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(
        answer
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["expires_in_seconds"], 60);
    let code = body["code"].as_str().expect("a code");
    assert_eq!(code.len(), 43, "32 bytes of URL-safe base64: {code}");
    assert!(
        code.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{code}"
    );
    assert!(!code.contains(LAB_TOKEN) && !LAB_TOKEN.contains(code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_code_signs_a_browser_in_once_from_the_servers_own_origin() {
    let lab = Lab::start().await;
    let origin = lab.server.url.clone();
    let code = mint_code(&lab).await;

    // Another site's page cannot sign the browser in with it, nor spend it.
    for foreign in ["https://evil.example", "null"] {
        let answer = redeem(&lab, &code, Some(foreign)).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{foreign}");
        assert!(answer.headers().get("set-cookie").is_none(), "{foreign}");
    }

    let signed_in = redeem(&lab, &code, Some(&origin)).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/")
    );
    let (cookie, set_cookie) = session_cookie(&signed_in);
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains(&code) && !set_cookie.contains(LAB_TOKEN));
    let by_token = sign_in(&lab, LAB_TOKEN, Some(&origin)).await;
    assert_eq!(
        cookie,
        session_cookie(&by_token).0,
        "the same session a token sign-in gives"
    );
    let page = http()
        .get(format!("{origin}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("HTML").contains("id=\"images\""));

    // Once only.
    let again = redeem(&lab, &code, Some(&origin)).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.headers().get("set-cookie").is_none());
    let page = again.text().await.expect("HTML");
    assert!(page.contains("id=\"sign-in-form\""), "{page}");
    assert!(page.contains("expired or was already used"), "{page}");
    assert!(!page.contains(&code));

    // Made up, or a token posted as a code: refused the same way.
    for wrong in ["A".repeat(43), LAB_TOKEN.to_owned(), String::new()] {
        let answer = redeem(&lab, &wrong, Some(&origin)).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(answer.headers().get("set-cookie").is_none());
    }
    // The form with the token typed by hand still works after all of that.
    let typed = sign_in(&lab, LAB_TOKEN, Some(&origin)).await;
    assert_eq!(typed.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_sign_in_code_is_refused() {
    let lab = Lab::start_with(|config| config.sign_in_code_ttl_ms = 300).await;
    let origin = lab.server.url.clone();
    let stale = mint_code(&lab).await;
    let fresh = mint_code(&lab).await;
    // Within its lifetime a code works...
    let answer = redeem(&lab, &fresh, Some(&origin)).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    // ...and past it, not.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let answer = redeem(&lab, &stale, Some(&origin)).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(answer.headers().get("set-cookie").is_none());
    let page = answer.text().await.expect("HTML");
    assert!(page.contains("expired or was already used"), "{page}");
}

/// What the page shows: the gallery's grid, the sign-in form, the error line, the URL and
/// its fragment.
const READ_PAGE: &str = "return [document.getElementById('images') !== null, \
     document.getElementById('sign-in-form') !== null, \
     (document.getElementById('sign-in-error') || {}).textContent || '', \
     location.href, location.hash, document.cookie];";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_opened_at_a_sign_in_link_shows_the_gallery_with_a_clean_url() {
    let lab = Lab::start().await;
    let server = lab.server.url.clone();
    let code = mint_code(&lab).await;
    let driver = Driver::start().await.expect("chromium and chromedriver");

    let session = driver.session().await.expect("a browser window");
    session
        .goto(&format!("{server}/#code={code}"))
        .await
        .expect("the page loads");
    let shown = eventually(Duration::from_secs(20), || async {
        let page = session.run(READ_PAGE).await.ok()?;
        (page[0] == true).then_some(page)
    })
    .await
    .expect("the gallery, signed in by the link");
    assert_eq!(shown[1], false, "not the sign-in form: {shown}");
    assert_eq!(shown[3], format!("{server}/"), "the clean URL: {shown}");
    assert_eq!(shown[4], "", "no fragment left: {shown}");
    assert_eq!(shown[5], "", "the cookie is HttpOnly");
    // Going back never returns to the link: replaceState took the fragment out of its entry.
    // (Whether the page's own sign-in post replaced that entry is Chromium's choice; the
    // window's first entry is ChromeDriver's blank page.)
    session
        .run("window.hybridlabMarker = true; history.back(); return true;")
        .await
        .expect("back");
    let back = eventually(Duration::from_secs(20), || async {
        let page = session
            .run("return [window.hybridlabMarker === true, location.href];")
            .await
            .ok()?;
        (page[0] == false).then_some(page[1].clone())
    })
    .await
    .expect("the entry before");
    assert!(
        !back.to_string().contains(&code),
        "the code is in no history entry: {back}"
    );

    // Already signed in, a link still loses its fragment, and the page spends its code.
    let unused = mint_code(&lab).await;
    session
        .goto(&format!("{server}/#code={unused}"))
        .await
        .expect("the page loads");
    let shown = eventually(Duration::from_secs(20), || async {
        let page = session
            .run(
                "return [document.getElementById('images') !== null, location.hash, \
                 document.body.dataset.signInCode || ''];",
            )
            .await
            .ok()?;
        (page[0] == true && page[2] == "posted").then_some(page)
    })
    .await
    .expect("the gallery, which posted the code");
    assert_eq!(shown[1], "", "no fragment left: {shown}");
    let spent = redeem(&lab, &unused, Some(&server)).await;
    assert_eq!(
        spent.status(),
        StatusCode::UNAUTHORIZED,
        "the page spent the code it was opened with"
    );
    session.close().await;

    // A second browser with the same link gets the sign-in form and says why.
    let other = driver.session().await.expect("another browser window");
    other
        .goto(&format!("{server}/#code={code}"))
        .await
        .expect("the page loads");
    let refused = eventually(Duration::from_secs(20), || async {
        let page = other.run(READ_PAGE).await.ok()?;
        (page[1] == true && page[2] != "").then_some(page)
    })
    .await
    .expect("the sign-in form with a message");
    assert_eq!(refused[0], false, "no gallery: {refused}");
    assert!(
        refused[2]
            .as_str()
            .is_some_and(|m| m.contains("expired or was already used")),
        "{refused}"
    );
    assert_eq!(refused[4], "", "no fragment left: {refused}");
    // The form still takes the token typed by hand.
    other
        .run(&format!(
            "document.getElementById('sign-in-token').value = '{LAB_TOKEN}'; \
             document.getElementById('sign-in-form').submit(); return true;"
        ))
        .await
        .expect("the sign-in form submits");
    eventually(Duration::from_secs(20), || async {
        let page = other.run(READ_PAGE).await.ok()?;
        (page[0] == true).then_some(())
    })
    .await
    .expect("the gallery after typing the token");
    other.close().await;
}
