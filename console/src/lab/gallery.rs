//! The stack's gallery opened in a browser, signed in, without the token ever leaving this
//! machine: [`GalleryServer::find`] reads the stack's record (its server, token and pinned
//! certificate), [`GalleryServer::sign_in_code`] asks the server for a one-time code
//! (`POST /api/sign-in-codes` with the token as `Authorization: Bearer`, over the pinned TLS
//! connection), and [`Opener`] hands `URL#code=...` to the browser. The gallery's page takes
//! the code out of the fragment and trades it for its session cookie (see the server's
//! `sign_in_code.rs`). The token is never put in a URL (browser history, proxy and server
//! logs) nor on a child process's command line (`ps` shows it to every user).
//!
//! The gallery is the server's own `/`, so every stack has one, with or without the pipeline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hybridlab_provision::stack::names::InvalidStackId;
use hybridlab_provision::stack::{StackClients, StackId, StackState};
use hybridlab_wire::tls::CertFingerprint;

pub use hybridlab_wire::sign_in::{SIGN_IN_CODES_PATH, SignInCode};

/// How long a call to the server may take.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the opener gets to say it failed. `xdg-open` and `open` hand the URL to the
/// browser and exit at once; a `$BROWSER` that is the browser itself keeps running, and is
/// then taken to have opened it.
const OPENER_GRACE: Duration = Duration::from_secs(3);

/// Why the gallery could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(
        "no hybridlab stack with a record on this machine for {target}; create one with `hybridlab up` (a stack made on another machine: its token is in the record there)"
    )]
    NoStack { target: String },
    #[error(
        "no record of stack `{stack}` on this machine for {target} ({path} does not exist){known}; `hybridlab status` lists the stacks, and a stack made on another machine has its token in the record there"
    )]
    UnknownStack {
        stack: StackId,
        target: String,
        path: PathBuf,
        known: String,
    },
    #[error(transparent)]
    InvalidStackId(#[from] InvalidStackId),
    #[error("{target} has several stacks ({known}); name one with --stack")]
    SeveralStacks { target: String, known: String },
    #[error(
        "stack `{stack}` has no image server yet ({path} names no endpoint); finish it with `hybridlab up --stack {stack}`"
    )]
    NoServer { stack: StackId, path: PathBuf },
    #[error(
        "stack `{stack}`'s record {path} has no token; run `hybridlab up --stack {stack}` on this machine to refresh it"
    )]
    NoToken { stack: StackId, path: PathBuf },
    #[error(
        "stack `{stack}`'s record {path} has no certificate fingerprint for {endpoint}, so its server cannot be trusted; run `hybridlab up --stack {stack}` on this machine to refresh it"
    )]
    NoPin {
        stack: StackId,
        path: PathBuf,
        endpoint: String,
    },
    #[error(
        "the image server of stack `{stack}` at {endpoint} does not answer ({cause}); `hybridlab status --stack {stack}` shows whether its instance runs"
    )]
    Unreachable {
        stack: StackId,
        endpoint: String,
        cause: String,
    },
    #[error(
        "the server at {endpoint} presented a certificate other than the one `up` made for stack `{stack}`; do not trust it"
    )]
    Untrusted { stack: StackId, endpoint: String },
    #[error("{0}")]
    Refused(String),
    #[error("building the HTTP client: {0}")]
    Client(String),
}

impl GalleryError {
    /// Whether what was asked for does not exist (no stack, no record of it): exit 3.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NoStack { .. } | Self::UnknownStack { .. })
    }
}

/// The record of the stack a command means: the one `named`, else the only one of `records`.
pub fn choose_record(
    records: Vec<StackState>,
    named: Option<&StackId>,
    target: &str,
    state_key: &str,
) -> Result<StackState, GalleryError> {
    let known = || {
        records
            .iter()
            .map(|record| record.stack_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(stack) = named {
        let listed = known();
        return records
            .iter()
            .find(|record| &record.stack_id == stack)
            .cloned()
            .ok_or_else(|| GalleryError::UnknownStack {
                stack: stack.clone(),
                target: target.to_owned(),
                path: StackState::path(state_key, stack),
                known: if listed.is_empty() {
                    String::new()
                } else {
                    format!(" (records here: {listed})")
                },
            });
    }
    if records.len() > 1 {
        return Err(GalleryError::SeveralStacks {
            target: target.to_owned(),
            known: known(),
        });
    }
    records
        .into_iter()
        .next()
        .ok_or_else(|| GalleryError::NoStack {
            target: target.to_owned(),
        })
}

/// The image server of a stack, as its record on this machine describes it.
pub struct GalleryServer {
    pub stack: StackId,
    /// `https://<address>:<port>`, without a trailing slash.
    pub endpoint: String,
    /// The stack's record, which holds the token (`outputs.token`).
    pub state_file: PathBuf,
    /// The fingerprint of the server's self-signed certificate, as `up` recorded it.
    pub cert_sha256: Option<CertFingerprint>,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for GalleryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GalleryServer")
            .field("stack", &self.stack)
            .field("endpoint", &self.endpoint)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

impl GalleryServer {
    /// The server of the stack `named` (else the target's only stack with a record here),
    /// with a client that trusts only its pinned certificate.
    pub fn find(clients: &StackClients, named: Option<&str>) -> Result<Self, GalleryError> {
        let named = named.map(StackId::parse).transpose()?;
        let state_key = clients.state_key();
        let record = choose_record(
            StackState::list(&state_key),
            named.as_ref(),
            &clients.describe(),
            &state_key,
        )?;
        let path = StackState::path(&state_key, &record.stack_id);
        Self::from_record(record, path)
    }

    /// The server `record` (read from `path`) describes.
    pub fn from_record(record: StackState, path: PathBuf) -> Result<Self, GalleryError> {
        let stack = record.stack_id;
        let outputs = record.outputs;
        let Some(endpoint) = outputs.server_endpoint.filter(|e| !e.is_empty()) else {
            return Err(GalleryError::NoServer { stack, path });
        };
        let Some(token) = outputs.token.filter(|t| !t.is_empty()) else {
            return Err(GalleryError::NoToken { stack, path });
        };
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let pin = outputs
            .cert_sha256
            .as_deref()
            .and_then(CertFingerprint::parse);
        let http = match pin {
            // Only the certificate `up` made is trusted, as `status` and the function trust it.
            Some(pin) => hybridlab_provision::stack::up::pinned_http(pin, SERVER_TIMEOUT)
                .map_err(|err| GalleryError::Client(err.to_string()))?,
            // A server without TLS (an older sandbox's) is on loopback; anything else is not
            // sent the token without a pin.
            None if endpoint.starts_with("http://") => reqwest::Client::builder()
                .no_proxy()
                .timeout(SERVER_TIMEOUT)
                .build()
                .map_err(|err| GalleryError::Client(err.to_string()))?,
            None => {
                return Err(GalleryError::NoPin {
                    stack,
                    path,
                    endpoint,
                });
            }
        };
        Ok(Self {
            stack,
            endpoint,
            state_file: path,
            cert_sha256: pin,
            token,
            http,
        })
    }

    /// The gallery's address: the server's `/`.
    pub fn url(&self) -> String {
        format!("{}/", self.endpoint)
    }

    fn unreachable(&self, err: &reqwest::Error) -> GalleryError {
        if hybridlab_wire::tls::is_untrusted_certificate(err) {
            return GalleryError::Untrusted {
                stack: self.stack.clone(),
                endpoint: self.endpoint.clone(),
            };
        }
        let mut cause: &(dyn std::error::Error + 'static) = err;
        while let Some(next) = cause.source() {
            cause = next;
        }
        GalleryError::Unreachable {
            stack: self.stack.clone(),
            endpoint: self.endpoint.clone(),
            cause: cause.to_string(),
        }
    }

    /// Checks that the server answers `GET /health` (without the token).
    pub async fn check(&self) -> Result<(), GalleryError> {
        let answer = self
            .http
            .get(format!("{}/health", self.endpoint))
            .send()
            .await
            .map_err(|err| self.unreachable(&err))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(GalleryError::Refused(format!(
                "the image server of stack `{}` at {} is not healthy (GET /health answered {}); `hybridlab status --stack {}` says more",
                self.stack,
                self.endpoint,
                answer.status(),
                self.stack
            )))
        }
    }

    /// A new one-time sign-in code from the server.
    pub async fn sign_in_code(&self) -> Result<SignInCode, GalleryError> {
        let answer = self
            .http
            .post(format!("{}{SIGN_IN_CODES_PATH}", self.endpoint))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|err| self.unreachable(&err))?;
        let status = answer.status();
        if status.is_success() {
            return answer.json().await.map_err(|err| {
                GalleryError::Refused(format!(
                    "the server at {} answered POST {SIGN_IN_CODES_PATH} with something other than a code: {err}",
                    self.endpoint
                ))
            });
        }
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        let said = body["message"].as_str().unwrap_or_default();
        Err(GalleryError::Refused(match status.as_u16() {
            401 => format!(
                "the server at {} refused the token in {} (another `up` elsewhere changed it?); run `hybridlab up --stack {}` on this machine",
                self.endpoint,
                self.state_file.display(),
                self.stack
            ),
            404 => format!(
                "the server at {} cannot make sign-in links (it predates `hybridlab gallery`); update it with `hybridlab up --stack {}`, or open {} and sign in with the token in {}",
                self.endpoint,
                self.stack,
                self.url(),
                self.state_file.display()
            ),
            _ => format!(
                "the server at {} refused a sign-in link ({status}{}{said})",
                self.endpoint,
                if said.is_empty() { "" } else { ": " }
            ),
        }))
    }
}

/// The program that opens a URL in the user's browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opener {
    program: String,
    /// Arguments before the URL; `None` in their place is where the URL goes.
    args: Vec<Option<String>>,
}

impl Opener {
    /// `$BROWSER` when set (its first `:`-separated command, whose `%s` is the URL, else the
    /// URL is its last argument, as Python's `webbrowser` and `xdg-open` read it), else the
    /// platform's opener: `open` on macOS, `xdg-open` elsewhere when it is on `PATH`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if let Some(browser) = env("BROWSER")
            && let Some(command) = browser.split(':').map(str::trim).find(|c| !c.is_empty())
        {
            let mut words = command.split_whitespace().map(str::to_owned);
            let program = words.next()?;
            let mut args: Vec<Option<String>> =
                words.map(|word| (word != "%s").then_some(word)).collect();
            if !args.iter().any(Option::is_none) {
                args.push(None);
            }
            return Some(Self { program, args });
        }
        let platform = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        on_path(platform, env("PATH").as_deref()).then(|| Self {
            program: platform.to_owned(),
            args: vec![None],
        })
    }

    /// The program's name, for messages.
    pub fn program(&self) -> &str {
        &self.program
    }

    fn argv(&self, url: &str) -> Vec<String> {
        self.args
            .iter()
            .map(|arg| arg.clone().unwrap_or_else(|| url.to_owned()))
            .collect()
    }

    /// Hands `link` to the opener. The link carries a one-time code, so this process's argv
    /// shows it to anyone running `ps` for a moment: harmless, since the code works once, the
    /// page spends it at once, and it expires within a minute. The token itself is never
    /// passed. Whatever the opener prints goes nowhere: it must not mix with our output.
    pub async fn open(&self, link: &str) -> Result<(), String> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(self.argv(link))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("`{}` did not start: {err}", self.program))?;
        match tokio::time::timeout(OPENER_GRACE, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("`{}` failed ({status})", self.program)),
            Ok(Err(err)) => Err(format!("`{}`: {err}", self.program)),
            // Still running: a browser started in the foreground, which has the link.
            Err(_) => Ok(()),
        }
    }
}

/// Whether `program` is an executable file in one of `path`'s directories.
fn on_path(program: &str, path: Option<&str>) -> bool {
    let Some(path) = path else {
        return false;
    };
    std::env::split_paths(path).any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(file: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        file.is_file()
    }
}

#[cfg(test)]
mod tests {
    use hybridlab_provision::stack::StackSettings;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn browser_wins_and_reads_like_pythons_webbrowser() {
        let url = "https://198.51.100.7:8080/#code=abc";
        let opener = Opener::from_env(env(&[("BROWSER", "/tmp/record-url")])).expect("BROWSER");
        assert_eq!(opener.program(), "/tmp/record-url");
        assert_eq!(opener.argv(url), [url]);
        let opener = Opener::from_env(env(&[("BROWSER", "firefox --new-window %s:chromium")]))
            .expect("BROWSER");
        assert_eq!(opener.program(), "firefox");
        assert_eq!(opener.argv(url), ["--new-window", url]);
        let opener = Opener::from_env(env(&[("BROWSER", " :w3m -T text/html")])).expect("BROWSER");
        assert_eq!(opener.argv(url), ["-T", "text/html", url]);
    }

    #[test]
    fn without_browser_the_platform_opener_is_used_only_when_installed() {
        let dir = std::env::temp_dir().join(format!("hybridlab-opener-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let name = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        let path = dir.display().to_string();
        assert_eq!(Opener::from_env(env(&[("PATH", &path)])), None);
        assert_eq!(
            Opener::from_env(env(&[("BROWSER", ""), ("PATH", &path)])),
            None
        );
        let file = dir.join(name);
        std::fs::write(&file, "#!/bin/sh\n").expect("a script");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                .expect("executable");
        }
        let opener = Opener::from_env(env(&[("PATH", &path)])).expect("found");
        assert_eq!(opener.program(), name);
        assert_eq!(opener.argv("u"), ["u"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn record(id: &str, endpoint: Option<&str>, pin: Option<&str>) -> StackState {
        let mut state = StackState::new(
            StackId::parse(id).expect("an id"),
            "local sandbox".into(),
            StackSettings::new("us-east-1"),
        );
        state.outputs.token = Some("t".repeat(64));
        state.outputs.server_endpoint = endpoint.map(str::to_owned);
        state.outputs.cert_sha256 = pin.map(str::to_owned);
        state
    }

    #[test]
    fn the_stack_is_the_named_one_or_the_only_one() {
        let one = || vec![record("aaaa1111", None, None)];
        let two = || {
            vec![
                record("aaaa1111", None, None),
                record("bbbb2222", None, None),
            ]
        };
        let named = StackId::parse("bbbb2222").expect("an id");
        assert_eq!(
            choose_record(one(), None, "t", "k")
                .expect("the only one")
                .stack_id
                .as_str(),
            "aaaa1111"
        );
        assert_eq!(
            choose_record(two(), Some(&named), "t", "k")
                .expect("named")
                .stack_id,
            named
        );
        let none = choose_record(Vec::new(), None, "t", "k").expect_err("none");
        assert!(none.is_not_found(), "{none}");
        let unknown = choose_record(one(), Some(&named), "t", "k").expect_err("unknown");
        assert!(unknown.is_not_found());
        assert!(
            unknown.to_string().contains("records here: aaaa1111"),
            "{unknown}"
        );
        let several = choose_record(two(), None, "t", "k").expect_err("several");
        assert!(!several.is_not_found());
        assert!(several.to_string().contains("--stack"), "{several}");
    }

    #[test]
    fn a_server_is_trusted_by_its_pin_and_its_token_never_shows() {
        let path = PathBuf::from("/state/k.json");
        let pin = CertFingerprint([7; 32]).to_string();
        let server = GalleryServer::from_record(
            record("aaaa1111", Some("https://198.51.100.7:8080/"), Some(&pin)),
            path.clone(),
        )
        .expect("a server");
        assert_eq!(server.url(), "https://198.51.100.7:8080/");
        assert_eq!(server.cert_sha256, Some(CertFingerprint([7; 32])));
        assert!(!format!("{server:?}").contains(&"t".repeat(64)));
        let unpinned = GalleryServer::from_record(
            record("aaaa1111", Some("https://198.51.100.7:8080"), None),
            path.clone(),
        )
        .expect_err("no pin for https");
        assert!(matches!(unpinned, GalleryError::NoPin { .. }), "{unpinned}");
        assert!(
            GalleryServer::from_record(
                record("aaaa1111", Some("http://127.0.0.1:9"), None),
                path.clone()
            )
            .is_ok(),
            "plain loopback HTTP needs no pin"
        );
        let unserved = GalleryServer::from_record(record("aaaa1111", None, None), path)
            .expect_err("no endpoint");
        assert!(matches!(unserved, GalleryError::NoServer { .. }));
    }
}
