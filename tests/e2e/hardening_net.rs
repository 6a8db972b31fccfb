//! The image server's port against hostile clients, on the sandbox: the server runs as an
//! instance with the TLS certificate `up` would give it, the proxy function calls it through
//! the edge with the certificate pinned, and loopback clients (bounded in count and time, each
//! stopping by itself) try a slowloris and connection floods meanwhile. Also: a server without
//! a usable token does not start, and the proxy refuses a server whose certificate is not the
//! pinned one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use hybridlab_provision::stack::up::{ServerCertificate, pinned_http};
use hybridlab_tests::aws::Clients;
use hybridlab_tests::fixtures;
use hybridlab_tests::image_host::ImageHost;
use hybridlab_tests::sandbox::{
    EdgeClients, bootstrap_zip, build_binary, deploy_function, edge_clients,
};
use hybridlab_wire::Health;
use hybridlab_wire::tls::{CERT_PIN_ENV, TLS_CERT_ENV, TLS_KEY_ENV, pinned_client_config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::rustls::pki_types::ServerName;

use crate::common::eventually;
use crate::sandbox_ec2::{endpoint_tag, launch_server, server_store};

/// A token of the required length, for the servers these tests launch.
const TOKEN: &str = "hardening-token-0123456789abcdef0123456789";

/// The server's total connection cap in the flood test, under the 1024 descriptors it is
/// given there.
const TOTAL_CAP: usize = 600;

/// How long each hostile phase lasts; every hostile client stops by itself at its end.
const PHASE: Duration = Duration::from_secs(8);

/// An image-server instance on the sandbox, speaking TLS with a certificate made as `up`
/// makes it, and a proxy function pinned to that certificate.
struct TlsServer {
    clients: EdgeClients,
    store: Clients,
    table: String,
    instance: String,
    endpoint: String,
    address: SocketAddr,
    certificate: ServerCertificate,
    function: String,
    // Serves the photo; kept for as long as the server may fetch it.
    _images: ImageHost,
    photo: String,
}

impl TlsServer {
    async fn launch(extra_env: &str) -> Self {
        let clients = edge_clients().await;
        let (store, bucket, table) = server_store(&clients).await;
        let certificate = ServerCertificate::generate().expect("a certificate");
        let tls = certificate.values(TOKEN);
        let env = format!(
            "{TLS_CERT_ENV}={}\n{TLS_KEY_ENV}={}\n{extra_env}",
            tls.tls_certificate, tls.tls_key
        );
        let (instance, _log_group) = launch_server(&clients, &bucket, &table, TOKEN, &env).await;
        let tagged = eventually(Duration::from_secs(60), || {
            endpoint_tag(&clients, &instance)
        })
        .await
        .expect("the sandbox tags the instance with its server's address");
        // The server has a certificate, so the sandbox's tag names an https address.
        assert!(tagged.starts_with("https://127.0.0.1:"), "{tagged}");
        let endpoint = tagged.clone();
        let address: SocketAddr = tagged
            .trim_start_matches("https://")
            .parse()
            .expect("a loopback address");
        let images = ImageHost::start().await;
        let photo = images.add("photo.jpg", fixtures::jpeg(640, 480), "image/jpeg");
        let pin = certificate.fingerprint().to_string();
        let function = deploy_function(
            &clients,
            "proxy",
            bootstrap_zip("hybridlab-lambda", "proxy"),
            30,
            &[
                ("EC2_ENDPOINT", &endpoint),
                ("HYBRIDLAB_TOKEN", TOKEN),
                (CERT_PIN_ENV, &pin),
            ],
        )
        .await;
        let server = Self {
            clients,
            store,
            table,
            instance,
            endpoint,
            address,
            certificate,
            function,
            _images: images,
            photo,
        };
        let health = eventually(Duration::from_secs(30), || server.health()).await;
        assert!(health.is_some(), "the server answers /health over TLS");
        server
    }

    /// `/health`, trusting only the server's certificate.
    async fn health(&self) -> Option<Health> {
        let http = pinned_http(self.certificate.fingerprint(), Duration::from_secs(10)).ok()?;
        let response = http
            .get(format!("{}/health", self.endpoint))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Invokes `function` through the edge with the photo; the API Gateway-shaped answer.
    async fn invoke(&self, function: &str) -> Value {
        let output = self
            .clients
            .lambda
            .invoke()
            .function_name(function)
            .payload(Blob::new(json!({ "image_url": self.photo }).to_string()))
            .send()
            .await
            .expect("the proxy is invoked");
        assert_eq!(output.function_error(), None);
        serde_json::from_slice(output.payload().expect("a payload").as_ref()).expect("JSON")
    }

    /// Asserts that the Lambda path processes the photo: proxy, TLS, server, S3, DynamoDB.
    async fn assert_lambda_path_answers(&self, when: &str) {
        let answer = self.invoke(&self.function).await;
        assert_eq!(answer["statusCode"], 200, "{when}: {answer}");
        let body: Value =
            serde_json::from_str(answer["body"].as_str().expect("a body")).expect("a JSON body");
        assert_eq!(body["width"], 640, "{when}: {body}");
    }

    /// After a hostile case: `/health` answers with nothing in flight, the server process is
    /// the one that started (no crash and restart), and a normal photo is processed.
    async fn assert_recovered(&self, when: &str, pid: u64) {
        let idle = eventually(Duration::from_secs(30), || async {
            self.health().await.filter(|health| health.in_flight == 0)
        })
        .await;
        assert!(
            idle.is_some(),
            "{when}: /health answers with nothing in flight"
        );
        assert_eq!(
            self.server_pid().await,
            Some(pid),
            "{when}: the server did not restart"
        );
        self.assert_lambda_path_answers(&format!("{when}, afterwards"))
            .await;
    }

    /// The server's process id, as the sandbox's agent reports it.
    async fn server_pid(&self) -> Option<u64> {
        let status: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .ok()?
            .get(format!("{}/_hybridlab/health", self.clients.endpoint))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        status["instances"]
            .as_array()?
            .iter()
            .find(|i| i["instance_id"] == self.instance.as_str())
            .and_then(|i| i["pid"].as_u64())
            .filter(|pid| *pid != 0)
    }

    async fn terminate(&self) {
        let _ = self
            .clients
            .ec2
            .terminate_instances()
            .instance_ids(&self.instance)
            .send()
            .await;
    }
}

/// Runs `body` against a fresh server and terminates the instance afterwards, even when the
/// body fails.
async fn with_server<F, Fut>(extra_env: &str, body: F)
where
    F: FnOnce(Arc<TlsServer>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let server = Arc::new(TlsServer::launch(extra_env).await);
    let outcome = tokio::spawn(body(server.clone())).await;
    server.terminate().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Raises this process's soft descriptor limit to its hard limit: the floods hold 2,000
/// sockets on the client side.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

/// A TCP connection to `server` from the loopback address `from`: Linux routes all of
/// 127.0.0.0/8 to the loopback interface, so each address is a different client to the server.
async fn connect_from(from: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(server))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Waits until the server closes `stream` (EOF or reset) or `deadline`; true if it closed.
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> bool {
    let mut buf = [0u8; 512];
    loop {
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await;
        match read {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// What a flood saw: connections opened, and closed by the server.
#[derive(Debug, Default)]
struct FloodCount {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

/// `connections` idle connections held to `server`, spread over `sources`, each reopened when
/// the server closes it, until `deadline`; at most `connections * 10` opened in all.
async fn flood(
    server: SocketAddr,
    sources: Vec<Ipv4Addr>,
    connections: usize,
    deadline: Instant,
) -> Arc<FloodCount> {
    let count = Arc::new(FloodCount::default());
    let budget = connections * 10;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..connections {
        let from = sources[index % sources.len()];
        let count = count.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline && count.opened.load(Ordering::Relaxed) < budget {
                let Ok(mut stream) = connect_from(from, server).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                count.opened.fetch_add(1, Ordering::Relaxed);
                if closed_by_server(&mut stream, deadline).await {
                    count.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    // The caller works while the flood runs; the flood's tasks end by the deadline.
    tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_and_connection_floods_leave_the_lambda_path_answering() {
    raise_descriptor_limit();
    // A short header timeout, so the slowloris's connections are closed by it within the
    // phase; a total cap under the 1024 descriptors set below.
    let env = format!("HYBRIDLAB_HEADER_TIMEOUT_MS=3000\nHYBRIDLAB_MAX_CONNECTIONS={TOTAL_CAP}\n");
    with_server(&env, |server| async move {
        let pid = server.server_pid().await.expect("the agent reports the server's pid");
        // The descriptor limit a server gets on an instance when its unit sets none: the
        // floods below would exhaust it without the cap (`accept()` failing with EMFILE while
        // the Lambda's connection waits in the backlog), so the test can fail without the cap.
        let limit = rustix::process::Rlimit {
            current: Some(1024),
            maximum: Some(1024),
        };
        let pid_raw = i32::try_from(pid).expect("a pid");
        rustix::process::prlimit(rustix::process::Pid::from_raw(pid_raw), rustix::process::Resource::Nofile, limit)
            .expect("the server's descriptor limit is lowered");
        server.assert_lambda_path_answers("before").await;

        // 1. Slowloris: 300 connections from one address, half sending a TLS handshake one
        // byte at a time, half completing it and then sending a request head one byte at a
        // time; the per-client cap and the timeouts close them all.
        let deadline = Instant::now() + PHASE;
        let closed = Arc::new(AtomicUsize::new(0));
        let mut slow = tokio::task::JoinSet::new();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(
            pinned_client_config(server.certificate.fingerprint()).expect("a TLS client"),
        ));
        for index in 0..300 {
            let address = server.address;
            let closed = closed.clone();
            let tls = tls.clone();
            slow.spawn(async move {
                let from = Ipv4Addr::new(127, 0, 0, 2);
                let Ok(mut stream) = connect_from(from, address).await else {
                    return;
                };
                let head = b"POST /process-image HTTP/1.1\r\nHost: server\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let was_closed = if index % 2 == 0 {
                    // A TLS record header announcing a ClientHello that never finishes.
                    let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
                    dribble(&mut stream, &hello, deadline).await
                } else {
                    let name = ServerName::try_from("server").expect("a name");
                    match tokio::time::timeout_at(deadline.into(), tls.connect(name, stream)).await {
                        Ok(Ok(mut stream)) => dribble(&mut stream, head, deadline).await,
                        // Evicted during the handshake.
                        Ok(Err(_)) => true,
                        Err(_) => false,
                    }
                };
                if was_closed {
                    closed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..3 {
            server.assert_lambda_path_answers("during the slowloris").await;
        }
        while slow.join_next().await.is_some() {}
        assert_eq!(
            closed.load(Ordering::Relaxed),
            300,
            "every slowloris connection is closed by the server within the phase"
        );
        server.assert_recovered("after the slowloris", pid).await;

        // 2. A flood of 2,000 idle connections from one address: the per-client cap makes it
        // evict only its own connections.
        let deadline = Instant::now() + PHASE;
        let one = flood(server.address, vec![Ipv4Addr::new(127, 0, 0, 3)], 2000, deadline).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..3 {
            server.assert_lambda_path_answers("during a flood from one address").await;
        }
        tokio::time::sleep_until(deadline.into()).await;
        let (opened, closed) = (one.opened.load(Ordering::Relaxed), one.closed.load(Ordering::Relaxed));
        assert!(opened >= 2000, "the flood opened its connections: {opened}");
        assert!(closed > 0, "the server shed connections: {opened} opened, {closed} closed");
        server.assert_recovered("after the flood from one address", pid).await;

        // 3. A distributed flood: 2,000 idle connections from 20 addresses, each under the
        // per-client cap, together over three times the total cap: idle ones give way.
        let deadline = Instant::now() + PHASE;
        let sources: Vec<Ipv4Addr> = (10..30).map(|last| Ipv4Addr::new(127, 0, 0, last)).collect();
        let many = flood(server.address, sources, 2000, deadline).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for _ in 0..3 {
            server.assert_lambda_path_answers("during a distributed flood").await;
        }
        tokio::time::sleep_until(deadline.into()).await;
        let (opened, closed) = (many.opened.load(Ordering::Relaxed), many.closed.load(Ordering::Relaxed));
        assert!(opened >= 2000, "the flood opened its connections: {opened}");
        assert!(closed > 0, "the server shed connections: {opened} opened, {closed} closed");
        server.assert_recovered("after the distributed flood", pid).await;
    })
    .await;
}

/// Writes `bytes` one every 300 ms until they run out or `deadline`, then waits; true if the
/// server closed the connection before the deadline.
async fn dribble<S>(stream: &mut S, bytes: &[u8], deadline: Instant) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for byte in bytes {
        if Instant::now() >= deadline {
            return false;
        }
        if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
            return true;
        }
        let mut buf = [0u8; 256];
        // A close (EOF, reset) ends it; nothing yet, or an alert or a 408 first, goes on.
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return true;
        }
    }
    closed_by_server(stream, deadline).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refuses_a_server_whose_certificate_is_not_the_pinned_one() {
    with_server("", |server| async move {
        let other = ServerCertificate::generate().expect("a certificate");
        let pin = other.fingerprint().to_string();
        let misled = deploy_function(
            &server.clients,
            "proxy",
            bootstrap_zip("hybridlab-lambda", "proxy"),
            30,
            &[
                ("EC2_ENDPOINT", &server.endpoint),
                ("HYBRIDLAB_TOKEN", TOKEN),
                (CERT_PIN_ENV, &pin),
            ],
        )
        .await;
        let answer = server.invoke(&misled).await;
        assert_eq!(answer["statusCode"], 502, "{answer}");
        let body: Value =
            serde_json::from_str(answer["body"].as_str().expect("a body")).expect("a JSON body");
        assert_eq!(body["error"], "ec2_untrusted", "{body}");
        // The token never reached the server: nothing was processed or stored.
        assert!(server.store.scan_all(&server.table).await.is_empty());
        // The rightly pinned function works against the same server.
        server
            .assert_lambda_path_answers("with the right pin")
            .await;
        assert_eq!(server.store.scan_all(&server.table).await.len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_without_a_long_enough_token() {
    let binary = build_binary("hybridlab-ec2-server", "hybridlab-ec2-server");
    for (case, token) in [
        ("unset", None),
        ("empty", Some("")),
        ("short", Some("s3cret")),
        ("31 characters", Some("0123456789abcdef0123456789abcde")),
    ] {
        let mut command = tokio::process::Command::new(&binary);
        command
            .env("HYBRIDLAB_BUCKET", "images")
            .env("HYBRIDLAB_TABLE", "images")
            .env("HYBRIDLAB_LISTEN", "127.0.0.1:0")
            .env("AWS_REGION", "us-east-1")
            .env_remove("HYBRIDLAB_TOKEN")
            .kill_on_drop(true);
        if let Some(token) = token {
            command.env("HYBRIDLAB_TOKEN", token);
        }
        // Bounded: a server that starts instead of refusing is killed when dropped.
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .unwrap_or_else(|_| panic!("{case}: the server started instead of refusing"))
            .expect("the server runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{case}: exits non-zero");
        assert!(
            stderr.contains("refusing to start") && stderr.contains("HYBRIDLAB_TOKEN"),
            "{case}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_replaces_a_short_token_in_the_env_file_and_the_function() {
    use hybridlab_provision::stack::plan::SERVER_ENV_KEY;
    use hybridlab_provision::stack::{StackId, StackNames};
    use hybridlab_tests::stack::hybridlab_async as run_cli;
    use hybridlab_wire::launch::parse_env_file;

    let clients = edge_clients().await;
    let endpoint = clients.endpoint.clone();
    let id = StackId::generate().to_string();
    let names = StackNames::new(&StackId::parse(&id).expect("a valid id"));
    let env_file = || async {
        let object = clients
            .s3
            .get_object()
            .bucket(&names.artifacts_bucket)
            .key(SERVER_ENV_KEY)
            .send()
            .await
            .expect("the env file");
        let bytes = object.body.collect().await.expect("read").into_bytes();
        parse_env_file(&String::from_utf8_lossy(&bytes))
    };
    let function_env = || async {
        clients
            .lambda
            .get_function_configuration()
            .function_name(&names.function)
            .send()
            .await
            .expect("GetFunctionConfiguration")
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default()
    };
    let value = |pairs: &[(String, String)], key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };

    let first = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
    let outcome = async {
        assert!(
            first.status.success(),
            "up: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let env = env_file().await;
        let pin = function_env().await.get(CERT_PIN_ENV).cloned();
        assert!(pin.is_some(), "the function pins the server's certificate");

        // An env file left with a short token (by hand, or by an older version).
        let short: String = env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "HYBRIDLAB_TOKEN" => "HYBRIDLAB_TOKEN=short\n".to_owned(),
                _ => format!("{k}={v}\n"),
            })
            .collect();
        clients
            .s3
            .put_object()
            .bucket(&names.artifacts_bucket)
            .key(SERVER_ENV_KEY)
            .body(short.into_bytes().into())
            .send()
            .await
            .expect("the env file is overwritten");

        let again = run_cli(&endpoint, &["up", "--json", "--stack", &id], &[]).await;
        assert!(
            again.status.success(),
            "second up: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        let env = env_file().await;
        let token = value(&env, "HYBRIDLAB_TOKEN");
        assert!(
            hybridlab_wire::token::check_token(Some(&token)).is_ok(),
            "the short token is replaced: {token:?}"
        );
        let function = function_env().await;
        assert_eq!(
            function.get("HYBRIDLAB_TOKEN"),
            Some(&token),
            "the function's copy too"
        );
        assert_eq!(
            function.get(CERT_PIN_ENV).cloned(),
            pin,
            "the certificate is kept"
        );
        // And the lab works with it: a new instance read the new file.
        crate::stack::invoke_end_to_end(&clients, &names).await;
    };
    // The stack goes down even when a check failed.
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    let gone = run_cli(&endpoint, &["down", "--json", "--stack", &id], &[]).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(
        gone.status.code(),
        Some(0),
        "down: {}",
        String::from_utf8_lossy(&gone.stderr)
    );
}
