//! `hybridlab gallery` on the shared stack: the browser (a `BROWSER` script that records what it
//! is given) gets the gallery's URL with a one-time code in its fragment and never the token;
//! the code signs a browser in once through the server; nothing the command prints holds the
//! token or the code; `--no-open` prints the URL and where the token is, and opens nothing;
//! no stack exits 3, a server that does not answer says so.

use std::path::{Path, PathBuf};
use std::process::Output;

use hybridlab_provision::stack::{StackClients, StackId, StackSettings, StackState, Target};
use hybridlab_tests::lab::lab_stack;
use hybridlab_tests::stack::hybridlab_async;
use hybridlab_wire::tls::CertFingerprint;
use reqwest::StatusCode;
use serde_json::Value;

/// Exit code of a missing stack, as `hybridlab --help` documents.
const EXIT_NOT_FOUND: i32 = 3;

/// A directory of the test's own, removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }

    /// A `BROWSER` that writes its arguments, one a line, to `opened.txt` here.
    fn recording_browser(&self) -> (String, PathBuf) {
        let script = self.0.join("record-browser");
        let record = self.0.join("opened.txt");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
                record.display()
            ),
        )
        .expect("the script");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("executable");
        }
        (script.display().to_string(), record)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(output: &Output, what: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{what}: stdout {} stderr {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The shared stack's record, as `up` wrote it on this machine.
async fn record_of(endpoint: &str, stack: &str) -> (StackState, PathBuf) {
    let clients = StackClients::connect(&Target::Sandbox {
        endpoint: endpoint.to_owned(),
    })
    .await
    .expect("clients");
    let id = StackId::parse(stack).expect("a stack id");
    let key = clients.state_key();
    let state = StackState::load(&key, &id).expect("the stack's record");
    (state, StackState::path(&key, &id))
}

/// Posts `code` to the server's `/sign-in` as the gallery's page does.
async fn redeem(http: &reqwest::Client, server: &str, code: &str) -> reqwest::Response {
    http.post(format!("{server}/sign-in"))
        .header("origin", server)
        .header("content-type", "application/x-www-form-urlencoded")
        // URL-safe base64: nothing to escape.
        .body(format!("code={code}"))
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_opens_the_browser_with_a_one_time_code_and_never_the_token() {
    let lab = lab_stack().await;
    let (record, _) = record_of(&lab.endpoint, &lab.stack).await;
    let token = record.outputs.token.clone().expect("a token");
    let server = record
        .outputs
        .server_endpoint
        .clone()
        .expect("a server endpoint");
    let pin = record
        .outputs
        .cert_sha256
        .as_deref()
        .and_then(CertFingerprint::parse)
        .expect("the certificate's fingerprint");
    let scratch = Scratch::new("hybridlab-cli-gallery");
    let (browser, opened_file) = scratch.recording_browser();

    let output = hybridlab_async(
        &lab.endpoint,
        &["gallery", "--stack", &lab.stack, "--json"],
        &[("BROWSER", &browser), ("NO_COLOR", "1")],
    )
    .await;
    let stdout = succeeded(&output, "gallery --json");
    let answer: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let url = format!("{server}/");
    assert_eq!(answer["url"], url.as_str(), "{answer}");
    assert_eq!(answer["opened"], true, "{answer}");
    assert_eq!(answer["stack"], lab.stack.as_str());

    let opened = std::fs::read_to_string(&opened_file).expect("the browser was run");
    let link = opened.trim();
    assert_eq!(opened.lines().count(), 1, "one argument: {opened}");
    let code = link
        .strip_prefix(&format!("{url}#code="))
        .unwrap_or_else(|| panic!("the gallery URL with a code in its fragment: {link}"))
        .to_owned();
    assert_eq!(code.len(), 43, "{link}");
    assert!(!link.contains(&token), "the token is not in the URL");
    let stderr = text(&output.stderr);
    for (name, secret) in [("token", &token), ("code", &code)] {
        assert!(!stdout.contains(secret.as_str()), "stdout holds the {name}");
        assert!(!stderr.contains(secret.as_str()), "stderr holds the {name}");
    }

    // The code signs a browser in once: the session cookie, then a refusal.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(
            hybridlab_wire::tls::pinned_client_config(pin).expect("a TLS client"),
        )
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let signed_in = redeem(&http, &server, &code).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("the session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(
        cookie.ends_with("; Secure"),
        "over HTTPS the cookie is Secure: {cookie}"
    );
    let session = cookie.split(';').next().unwrap_or_default().to_owned();
    let gallery = http
        .get(&url)
        .header("cookie", &session)
        .send()
        .await
        .expect("the gallery answers");
    assert_eq!(
        gallery.status(),
        StatusCode::OK,
        "the cookie opens the gallery"
    );
    let again = redeem(&http, &server, &code).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "used once");
    assert!(again.headers().get("set-cookie").is_none());

    // In words: the URL, and the certificate to compare; neither secret.
    std::fs::remove_file(&opened_file).expect("the record removed");
    let output = hybridlab_async(
        &lab.endpoint,
        &["gallery", "--stack", &lab.stack],
        &[("BROWSER", &browser), ("NO_COLOR", "1")],
    )
    .await;
    let stdout = succeeded(&output, "gallery");
    assert!(stdout.contains(&url), "{stdout}");
    assert!(
        stdout.contains(&pin.to_string()),
        "the fingerprint: {stdout}"
    );
    let opened = std::fs::read_to_string(&opened_file).expect("the browser was run");
    let code = opened
        .trim()
        .rsplit_once("#code=")
        .map(|(_, code)| code.to_owned())
        .expect("a code");
    for secret in [&token, &code] {
        assert!(
            !stdout.contains(secret.as_str()) && !text(&output.stderr).contains(secret.as_str())
        );
    }
    assert_eq!(
        redeem(&http, &server, &code).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_no_open_prints_the_url_and_the_record_not_the_token() {
    let lab = lab_stack().await;
    let (record, record_path) = record_of(&lab.endpoint, &lab.stack).await;
    let token = record.outputs.token.clone().expect("a token");
    let server = record.outputs.server_endpoint.clone().expect("a server");
    let scratch = Scratch::new("hybridlab-cli-gallery");
    let (browser, opened_file) = scratch.recording_browser();

    let output = hybridlab_async(
        &lab.endpoint,
        &["gallery", "--stack", &lab.stack, "--no-open"],
        &[("BROWSER", &browser), ("NO_COLOR", "1")],
    )
    .await;
    let stdout = succeeded(&output, "gallery --no-open");
    assert!(stdout.contains(&format!("{server}/")), "{stdout}");
    assert!(
        stdout.contains(&record_path.display().to_string()),
        "where the token is: {stdout}"
    );
    assert!(stdout.contains("outputs.token"), "{stdout}");
    assert!(!stdout.contains(&token) && !text(&output.stderr).contains(&token));
    assert!(!stdout.contains("#code="), "{stdout}");
    assert!(!opened_file.exists(), "no browser was run");

    let output = hybridlab_async(
        &lab.endpoint,
        &["gallery", "--stack", &lab.stack, "--no-open", "--json"],
        &[("BROWSER", &browser)],
    )
    .await;
    let answer: Value = serde_json::from_str(succeeded(&output, "--no-open --json").trim())
        .expect("one JSON object");
    assert_eq!(answer["opened"], false);
    assert_eq!(answer["url"], format!("{server}/").as_str());
    assert_eq!(
        answer["state_file"],
        record_path.display().to_string().as_str()
    );
    assert!(!answer.to_string().contains(&token));
    assert!(!opened_file.exists(), "no browser was run");
}

/// Asserts exit `code` and one line on stderr, and returns that line.
fn failed_with(output: &Output, code: i32, what: &str) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout {} stderr {stderr}",
        text(&output.stdout)
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    stderr.trim_end().to_owned()
}

/// Writes a record of stack `id` under `state_dir` for the target at `endpoint`.
async fn write_record(state_dir: &Path, endpoint: &str, id: &StackId, server: &str) {
    let clients = StackClients::connect(&Target::Sandbox {
        endpoint: endpoint.to_owned(),
    })
    .await
    .expect("clients");
    let mut state = StackState::new(
        id.clone(),
        clients.describe(),
        StackSettings::new("us-east-1"),
    );
    state.outputs.token = Some("ghost-token-0123456789abcdef0123456789abcdef".into());
    state.outputs.server_endpoint = Some(server.to_owned());
    let dir = state_dir.join("stacks").join(clients.state_key());
    std::fs::create_dir_all(&dir).expect("a state directory");
    std::fs::write(
        dir.join(format!("{id}.json")),
        serde_json::to_vec(&state).expect("state JSON"),
    )
    .expect("the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gallery_without_a_stack_exits_3_and_an_unreachable_server_says_so() {
    let lab = lab_stack().await;
    let scratch = Scratch::new("hybridlab-cli-gallery-state");
    let state_dir = scratch.0.display().to_string();
    let env = [("HYBRIDLAB_STATE_DIR", state_dir.as_str())];

    let none = hybridlab_async(&lab.endpoint, &["gallery", "--no-open"], &env).await;
    let line = failed_with(&none, EXIT_NOT_FOUND, "no stack");
    assert!(line.contains("no hybridlab stack"), "{line}");
    assert!(line.contains("hybridlab up"), "{line}");

    let unknown =
        hybridlab_async(&lab.endpoint, &["gallery", "--stack", "nosuchstack9"], &env).await;
    let line = failed_with(&unknown, EXIT_NOT_FOUND, "unknown stack");
    assert!(line.contains("nosuchstack9"), "{line}");

    // A record whose server nothing listens on.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("bound")
        .port();
    let ghost = StackId::generate();
    write_record(
        &scratch.0,
        &lab.endpoint,
        &ghost,
        &format!("http://127.0.0.1:{closed_port}"),
    )
    .await;
    let scratch_browser = Scratch::new("hybridlab-cli-gallery");
    let (browser, opened_file) = scratch_browser.recording_browser();
    for args in [
        vec!["gallery", "--stack", ghost.as_str()],
        vec!["gallery", "--stack", ghost.as_str(), "--no-open"],
    ] {
        let mut env = env.to_vec();
        env.push(("BROWSER", browser.as_str()));
        let unreachable = hybridlab_async(&lab.endpoint, &args, &env).await;
        let line = failed_with(&unreachable, 1, "unreachable");
        assert!(line.contains("does not answer"), "{line}");
        assert!(line.contains(&format!("127.0.0.1:{closed_port}")), "{line}");
        assert!(
            line.contains(&format!("hybridlab status --stack {ghost}")),
            "{line}"
        );
        assert!(!line.contains("ghost-token"), "{line}");
    }
    assert!(!opened_file.exists(), "no browser without a code");
}
