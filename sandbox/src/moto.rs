//! moto's server, run by the sandbox behind its agent.
//!
//! [`MotoServer::start`] runs it (installed by `hybridlab_tools::ensure_moto`) on a loopback
//! port chosen by the OS, through a small launcher that exits when its standard input closes:
//! moto never outlives the process that started it, even when that process is killed.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hybridlab_tools::MotoInstall;

/// How long moto may take to import and bind its port.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The launcher: serves moto's application on the given address, as moto's own
/// `ThreadedMotoServer` does, prints the bound port, then waits for standard input to close
/// and exits at once.
///
/// moto's port is on loopback but not behind the edge, and a web page can send blind "simple"
/// requests to every port of 127.0.0.1 (a form POST, which EC2's query API and S3's POST
/// upload accept, unsigned as moto takes them) or rebind its own name to it. Through moto
/// alone a page could then launch an instance the sandbox would run. The application is
/// therefore wrapped in the edge's own rules (see `web_guard.rs`): a loopback Host, and no
/// browser request from another origin.
const LAUNCHER: &str = r#"
import ipaddress, os, sys, threading
from urllib.parse import urlsplit
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)

def loopback_name(name):
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        name = name.rstrip(".").lower()
        return name == "localhost" or name.endswith(".localhost")
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)

def loopback_host(host):
    host = host.strip()
    if host.startswith("["):
        inside, _, rest = host[1:].partition("]")
        return (rest == "" or (rest[:1] == ":" and rest[1:].isdigit())) and loopback_name(inside)
    name, colon, port = host.rpartition(":")
    if not colon:
        return loopback_name(host)
    return port.isdigit() and loopback_name(name)

def loopback_origin(origin):
    try:
        parts = urlsplit(origin.strip())
        return parts.scheme in ("http", "https") and bool(parts.hostname) and loopback_name(parts.hostname)
    except ValueError:
        return False

def refusal(environ):
    host = environ.get("HTTP_HOST")
    if not host or not loopback_host(host):
        return "the hybridlab sandbox refuses requests for host %r: only loopback names and addresses reach it" % host
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        if not loopback_origin(origin):
            return "the hybridlab sandbox refuses browser requests from origin %r" % origin
        return None
    if environ.get("HTTP_SEC_FETCH_SITE", "").strip() == "cross-site" and not loopback_origin(environ.get("HTTP_REFERER", "")):
        return "the hybridlab sandbox refuses cross-site browser requests"
    return None

def guarded(app):
    def application(environ, start_response):
        reason = refusal(environ)
        if reason is None:
            return app(environ, start_response)
        sys.stderr.write("refused: %s\n" % reason)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
        return [(reason + "\n").encode()]
    return application

server = make_server(sys.argv[1], int(sys.argv[2]),
                     guarded(DomainDispatcherApplication(create_backend_app)), True,
                     request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdout.write("PORT %d\n" % server.server_address[1])
sys.stdout.flush()
try:
    sys.stdin.read()
finally:
    os._exit(0)
"#;

/// An `Authorization` header for a call the agent makes to moto directly: moto routes a
/// request to a service, and picks its region, by the credential scope; it checks no
/// signature.
pub fn scope_authorization(service: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=sandbox/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// Why moto could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(transparent)]
    Install(#[from] hybridlab_tools::ToolError),
    #[error("cannot write moto's log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("moto's server did not start: {0}; its log is {1}")]
    Start(String, PathBuf),
}

/// A running moto server on loopback. Dropping it stops the server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// Held open: moto's launcher exits when it closes.
    stdin: Option<ChildStdin>,
    port: u16,
    log: PathBuf,
}

impl MotoServer {
    /// Starts moto on `127.0.0.1:port` (0 lets the OS choose), logging to `log`.
    pub fn start(install: &MotoInstall, port: u16, log: &Path) -> Result<Self, MotoError> {
        Self::start_with_env(install, port, log, &[])
    }

    /// [`Self::start`] with extra environment for moto, such as its own settings
    /// (`INITIAL_NO_AUTH_ACTION_COUNT=0` makes it check every request's credentials).
    pub fn start_with_env(
        install: &MotoInstall,
        port: u16,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self, MotoError> {
        let log_file = File::create(log).map_err(|source| MotoError::Log {
            path: log.to_path_buf(),
            source,
        })?;
        let mut child = Command::new(&install.python)
            .args(["-c", LAUNCHER, "127.0.0.1", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|source| MotoError::Spawn {
                command: format!("{} -c <launcher>", install.python.display()),
                source,
            })?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            return Err(MotoError::Start("no stdout pipe".into(), log.to_path_buf()));
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = sender.send(result);
        });
        let port = match receiver.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line
                .trim()
                .strip_prefix("PORT ")
                .and_then(|port| port.parse::<u16>().ok()),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(MotoError::Start(
                "it printed no port".into(),
                log.to_path_buf(),
            ));
        };
        Ok(Self {
            child,
            stdin,
            port,
            log: log.to_path_buf(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, the endpoint URL for every AWS client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
