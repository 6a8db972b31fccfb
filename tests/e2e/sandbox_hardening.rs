//! The sandbox on a developer's machine against what a web page can send it, and the processes
//! and probes it must not let through: a cross-origin POST and a foreign `Host` (DNS rebinding)
//! are refused in AWS's shape while the lab's own clients keep working; a function that times
//! out takes the processes it started with it; and the image server, reached through the
//! sandbox's proxy function, answers every unreachable host with the same words.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hybridlab_tests::aws::unique_name;
use hybridlab_tests::lab::lab_stack;
use hybridlab_tests::procfs::ProcStat;
use hybridlab_tests::sandbox::{
    EdgeClients, bootstrap_zip, deploy_function, edge_clients, sandbox,
};
use hybridlab_tests::server::Lab;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Invoked, eventually, http, invoke, process};

/// A page on another site, as the browser names it in `Origin`.
const ATTACKER: &str = "https://attacker.example";

fn edge_port(clients: &EdgeClients) -> u16 {
    reqwest::Url::parse(&clients.endpoint)
        .ok()
        .and_then(|url| url.port())
        .expect("the edge endpoint has a port")
}

/// What a web page can make a browser send: a "simple" cross-origin POST (a form, or `fetch`
/// with `mode: "no-cors"`), which no CORS preflight stops, to the Invoke route and to
/// CreateFunction. Both are refused with Lambda's AccessDeniedException; the function never
/// ran and was never created; the SDK, on the same port, works as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_post_can_neither_invoke_nor_create_a_function() {
    let clients = edge_clients().await;
    let function = deploy_function(
        &clients,
        "web-target",
        bootstrap_zip("hybridlab-tests", "lab-test-function"),
        10,
        &[],
    )
    .await;
    let http = http();

    let invoked = http
        .post(format!(
            "{}/2015-03-31/functions/{function}/invocations",
            clients.endpoint
        ))
        .header("origin", ATTACKER)
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "text/plain")
        .body(r#"{"print": "run by a web page"}"#)
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(invoked.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        invoked.headers()["x-amzn-errortype"],
        "AccessDeniedException"
    );
    let body: Value = invoked.json().await.expect("Lambda's JSON error");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(ATTACKER), "{body}");
    assert!(message.contains("origin"), "{body}");

    let stolen = unique_name("web-created");
    let created = http
        .post(format!("{}/2015-03-31/functions", clients.endpoint))
        .header("origin", ATTACKER)
        .header("content-type", "text/plain")
        .body(
            json!({
                "FunctionName": stolen,
                "Runtime": "provided.al2023",
                "Role": "arn:aws:iam::123456789012:role/x",
                "Handler": "bootstrap",
                "Code": {"ZipFile": STANDARD.encode(b"not a zip")},
            })
            .to_string(),
        )
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(created.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        created.headers()["x-amzn-errortype"],
        "AccessDeniedException"
    );
    let lookup = clients
        .lambda
        .get_function()
        .function_name(&stolen)
        .send()
        .await;
    assert!(lookup.is_err(), "the page's function was not created");

    // A cross-site request with no Origin (an <img>, a link) is refused too: EC2's query API
    // acts on GET.
    let image = http
        .get(format!("{}/?Action=DescribeInstances", clients.endpoint))
        .header("sec-fetch-site", "cross-site")
        .header("referer", format!("{ATTACKER}/page.html"))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(image.status(), StatusCode::FORBIDDEN);

    // The SDK on the same port: the function runs, for the first time (the refused call never
    // reached an environment).
    let Invoked {
        function_error: error,
        payload,
        ..
    } = invoke(&clients, &function, json!({})).await;
    assert_eq!(error, None, "{payload}");
    assert_eq!(
        payload["served"], 1,
        "the refused POST never ran: {payload}"
    );

    // A page the lab serves on loopback may still call the sandbox (presigned uploads from
    // the gallery do).
    let local_page = http
        .get(format!("{}/_hybridlab/health", clients.endpoint))
        .header("origin", "http://127.0.0.1:8080")
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(local_page.status(), StatusCode::OK);
    clients
        .lambda
        .delete_function()
        .function_name(&function)
        .send()
        .await
        .expect("the test function is deleted");
}

/// DNS rebinding: a page on `attacker.example` rebinds its name to 127.0.0.1 and talks to the
/// edge port as same-origin; the browser then sends `Host: attacker.example:<port>`. The edge
/// refuses any host that is not a loopback name or address, in the shape of the service the
/// request names (S3's XML here), and still admits `localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_a_foreign_host_is_refused_and_loopback_names_pass() {
    let clients = edge_clients().await;
    let port = edge_port(&clients);
    let http = http();
    let rebound = format!("attacker.example:{port}");

    let health = http
        .get(format!("{}/_hybridlab/health", clients.endpoint))
        .header("host", &rebound)
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(health.status(), StatusCode::FORBIDDEN);
    let text = health.text().await.expect("a body");
    assert!(text.contains(&rebound), "{text}");
    assert!(text.contains("DNS rebinding"), "{text}");

    let bucket = unique_name("rebinding");
    let signed = format!(
        "AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={}",
        "0".repeat(64)
    );
    let create = http
        .put(format!("{}/{bucket}", clients.endpoint))
        .header("host", &rebound)
        .header("authorization", signed)
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    let xml = create.text().await.expect("a body");
    assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
    let exists = clients.s3.head_bucket().bucket(&bucket).send().await;
    assert!(exists.is_err(), "the bucket was not created");

    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        let response = http
            .get(format!("{}/_hybridlab/health", clients.endpoint))
            .header("host", &host)
            .send()
            .await
            .expect("the edge answers");
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    // The lab's clients name the endpoint they were given.
    clients
        .s3
        .list_buckets()
        .send()
        .await
        .expect("the SDK still reaches the sandbox");

    // moto's own port, behind the edge but on loopback too, keeps the same rules: a page
    // could otherwise POST EC2's query API a form that launches an instance the sandbox runs.
    let moto = sandbox().await.moto_endpoint();
    let moto_port = reqwest::Url::parse(&moto)
        .ok()
        .and_then(|url| url.port())
        .expect("moto's port");
    let form = http
        .post(&moto)
        .header("origin", ATTACKER)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=DescribeInstances&Version=2016-11-15")
        .send()
        .await
        .expect("moto answers");
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    let rebound_moto = http
        .get(format!("{moto}/?Action=DescribeRegions&Version=2016-11-15"))
        .header("host", format!("attacker.example:{moto_port}"))
        .send()
        .await
        .expect("moto answers");
    assert_eq!(rebound_moto.status(), StatusCode::FORBIDDEN);
    let direct = http
        .post(&moto)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=sandbox/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("Action=DescribeRegions&Version=2016-11-15")
        .send()
        .await
        .expect("moto answers");
    assert_eq!(
        direct.status(),
        StatusCode::OK,
        "the sandbox's own calls pass"
    );
}

/// A `sleep` the function started, if it still runs.
fn running_sleep(pid: u32) -> bool {
    ProcStat::of(pid).is_some_and(|stat| !stat.zombie() && stat.name == "sleep")
}

/// Kills the function's `sleep` if the test fails while it runs.
struct SleepGuard(u32);

impl Drop for SleepGuard {
    fn drop(&mut self) {
        if running_sleep(self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
}

/// A function starts a `sleep` of its own and then runs past its timeout: the sandbox kills
/// the environment, and the `sleep` with it (checked in `/proc`), as Lambda destroys an
/// environment whole. The function still works afterwards, in a new environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_function_leaves_no_process_behind() {
    let clients = edge_clients().await;
    let function = deploy_function(
        &clients,
        "spawner",
        bootstrap_zip("hybridlab-tests", "lab-test-function"),
        1,
        &[],
    )
    .await;
    let Invoked {
        function_error: error,
        payload,
        log,
        ..
    } = invoke(
        &clients,
        &function,
        json!({"spawn_sleep": 300, "sleep_ms": 5000}),
    )
    .await;
    assert_eq!(error.as_deref(), Some("Unhandled"), "{payload}");
    assert_eq!(payload["errorType"], "Sandbox.Timedout", "{payload}");
    let pid: u32 = log
        .lines()
        .find_map(|line| line.trim().strip_prefix("spawned "))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the function printed its child's id: {log}"));
    let _guard = SleepGuard(pid);
    let gone = eventually(Duration::from_secs(10), || async {
        (!running_sleep(pid)).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the sleep {pid} the timed-out function started is still running"
    );

    let Invoked {
        function_error: error,
        payload,
        ..
    } = invoke(&clients, &function, json!({})).await;
    assert_eq!(error, None, "{payload}");
    assert_eq!(payload["served"], 1, "a new environment: {payload}");
    clients
        .lambda
        .delete_function()
        .function_name(&function)
        .send()
        .await
        .expect("the test function is deleted");
}

/// A loopback host that treats each of its first `connections` connections one way; stops
/// when dropped.
struct HostileHost {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy)]
enum Hostility {
    /// Accepts, then closes with RST.
    Reset,
    /// Accepts, reads the request, and answers in another protocol.
    NotHttp,
    /// Accepts and says nothing for longer than the server waits.
    Silent,
}

impl HostileHost {
    async fn start(hostility: Hostility, connections: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let task = tokio::spawn(async move {
            for _ in 0..connections {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    match hostility {
                        Hostility::Reset => {
                            let _ = stream.set_zero_linger();
                        }
                        Hostility::NotHttp => {
                            let mut request = [0u8; 4096];
                            let _ = stream.read(&mut request).await;
                            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
                        }
                        Hostility::Silent => {
                            tokio::time::sleep(Duration::from_secs(10)).await;
                        }
                    }
                    drop(stream);
                });
            }
        });
        Self { port, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/photo.jpg", self.port)
    }
}

impl Drop for HostileHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port no process listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a loopback port")
        .port()
}

/// The image server as a port scanner: through the lab's proxy function on the sandbox, a
/// closed port, a port that resets and one that speaks another protocol answer the very same
/// status, code and message; so does a port that never answers, on a server with a short
/// download timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unreachable_image_host_gets_the_same_answer() {
    let lab = lab_stack().await;
    let clients = edge_clients().await;
    let reset = HostileHost::start(Hostility::Reset, 4).await;
    let not_http = HostileHost::start(Hostility::NotHttp, 4).await;
    let mut answers = Vec::new();
    for (case, url) in [
        (
            "closed",
            format!("http://127.0.0.1:{}/photo.jpg", closed_port()),
        ),
        ("reset", reset.url()),
        ("not HTTP", not_http.url()),
    ] {
        let Invoked {
            function_error: error,
            payload,
            ..
        } = invoke(&clients, &lab.names.function, json!({ "image_url": url })).await;
        assert_eq!(error, None, "{case}: {payload}");
        let body: Value = serde_json::from_str(payload["body"].as_str().unwrap_or("{}"))
            .unwrap_or_else(|err| panic!("{case}: a JSON body ({err}): {payload}"));
        answers.push((
            case,
            payload["statusCode"].clone(),
            body["error"].clone(),
            body["message"].clone(),
        ));
    }
    for (case, status, code, message) in &answers {
        assert_eq!(
            (status, code, message),
            (
                &json!(502),
                &json!("download_failed"),
                &json!("could not connect to the image host")
            ),
            "{case}"
        );
    }

    // The same words when nothing answers in time.
    let silent = HostileHost::start(Hostility::Silent, 1).await;
    let server = Lab::start_with(|config| config.download_timeout_ms = 700).await;
    let answer = process(&server, &silent.url()).await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (StatusCode::BAD_GATEWAY, "download_failed"),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.body["message"],
        "could not connect to the image host"
    );
}

/// The page of a site that is not the developer's, served on loopback under the name
/// `attacker.test` (the browser is told to resolve it there, as a rebinding attacker's DNS
/// would): a form that POSTs an event to the function's Invoke route as soon as it loads.
async fn attacker_page(invoke_url: String) -> (u16, tokio::task::JoinHandle<()>) {
    let page = format!(
        r#"<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" action="{invoke_url}">
<input name='{{"print": "run by a web page", "x": "' value='"}}'>
</form>
<script>document.getElementById("f").submit();</script>
</body></html>"#
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

/// The same two attacks from a real browser: a page on another site submits a form to the
/// Invoke route, and a page whose name resolves to loopback opens the edge as its own origin.
/// Chromium sends what it sends; the sandbox refuses both, and the function never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_on_another_site_cannot_invoke_a_function() {
    use hybridlab_tests::browser::Driver;
    let clients = edge_clients().await;
    let port = edge_port(&clients);
    let function = deploy_function(
        &clients,
        "browser-target",
        bootstrap_zip("hybridlab-tests", "lab-test-function"),
        10,
        &[],
    )
    .await;
    let invoke_url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        clients.endpoint
    );
    let (page_port, page_task) = attacker_page(invoke_url).await;
    let driver = Driver::start().await.expect("chromium and chromedriver");
    let session = driver
        .session_with_args(&["--host-resolver-rules=MAP attacker.test 127.0.0.1"])
        .await
        .expect("a browser window");

    // The form posts itself; the browser then shows the edge's answer.
    session
        .goto(&format!("http://attacker.test:{page_port}/"))
        .await
        .expect("the page loads");
    let shown = eventually(Duration::from_secs(20), || async {
        let text = session
            .run("return document.body ? document.body.innerText : ''")
            .await
            .ok()?;
        let text = text.as_str()?.to_owned();
        text.contains("refuses").then_some(text)
    })
    .await;
    // A rebound name: the page's own origin is the edge port.
    session
        .goto(&format!("http://attacker.test:{port}/_hybridlab/health"))
        .await
        .expect("the browser navigates");
    let rebound = session
        .run("return document.body ? document.body.innerText : ''")
        .await
        .expect("the page's text");
    session.close().await;
    drop(driver);
    page_task.abort();

    let shown = shown.expect("the form's POST was answered with the sandbox's refusal");
    assert!(
        shown.contains(&format!("origin `http://attacker.test:{page_port}`")),
        "{shown}"
    );
    let rebound = rebound.as_str().unwrap_or_default();
    assert!(
        rebound.contains(&format!("host `attacker.test:{port}`")),
        "{rebound}"
    );
    let Invoked {
        function_error: error,
        payload,
        ..
    } = invoke(&clients, &function, json!({})).await;
    assert_eq!(error, None, "{payload}");
    assert_eq!(payload["served"], 1, "the page's POST never ran: {payload}");
    clients
        .lambda
        .delete_function()
        .function_name(&function)
        .send()
        .await
        .expect("the test function is deleted");
}
