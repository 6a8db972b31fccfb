//! A real headless browser for the page tests: Debian's Chromium driven through ChromeDriver's
//! WebDriver protocol (plain HTTP and JSON, so no browser-automation crate is needed). Both
//! packages are installed with apt on first use, as moto is installed with pip.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Why no browser could be had.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "installing Debian's chromium and chromium-driver failed ({0}); install them with `sudo apt-get install chromium chromium-driver` and run the test again"
    )]
    Install(String),
    #[error("chromedriver did not start: {0}")]
    Driver(String),
    #[error("WebDriver {command}: {message}")]
    WebDriver { command: String, message: String },
}

/// Installs chromium and chromedriver with apt unless both are there. Once per process: a
/// second apt run at the same time would fail on dpkg's lock.
pub fn ensure_installed() -> Result<(), BrowserError> {
    static INSTALL: Mutex<bool> = Mutex::new(false);
    let mut done = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *done || (Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()) {
        *done = true;
        return Ok(());
    }
    eprintln!(
        "hybridlab tests: installing Debian's chromium and chromium-driver for the browser tests (apt-get, about 120 MB, once)..."
    );
    // apt needs root: as another user, sudo without a password prompt (CI runners allow it).
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    let apt = |args: &[&str]| -> Result<(), BrowserError> {
        let mut command = if as_root {
            Command::new("apt-get")
        } else {
            // sudo drops the environment, so the frontend is set through env.
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            sudo
        };
        let output = command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|err| BrowserError::Install(format!("apt-get: {err}")))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        Err(BrowserError::Install(format!(
            "apt-get {} exited with {}: {}",
            args.join(" "),
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )))
    };
    let install = [
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
    ];
    // The package lists of a fresh machine may be empty or stale: refresh once and retry.
    if apt(&install).is_err() {
        apt(&["update", "-q"])?;
        apt(&install)?;
    }
    *done = true;
    Ok(())
}

/// A ChromeDriver process on a loopback port, stopped on drop.
pub struct Driver {
    process: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    /// Installs the browser if needed and starts ChromeDriver.
    pub async fn start() -> Result<Self, BrowserError> {
        tokio::task::spawn_blocking(ensure_installed)
            .await
            .map_err(|err| BrowserError::Install(err.to_string()))??;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| BrowserError::Driver(err.to_string()))?
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| BrowserError::Driver(format!("{CHROMEDRIVER}: {err}")))?;
        let driver = Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()
                .map(|response| response.json::<Value>());
            if let Some(status) = ready
                && let Ok(status) = status.await
                && status["value"]["ready"] == true
            {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err(BrowserError::Driver(
                    "not ready after 20 s on its /status".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let command = format!("{method} {path}");
        let fail = |message: String| BrowserError::WebDriver {
            command: command.clone(),
            message,
        };
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|err| fail(err.to_string()))?;
        let answer: Value = response.json().await.map_err(|err| fail(err.to_string()))?;
        if let Some(error) = answer["value"]["error"].as_str() {
            return Err(fail(format!(
                "{error}: {}",
                answer["value"]["message"].as_str().unwrap_or_default()
            )));
        }
        Ok(answer["value"].clone())
    }

    /// A new headless Chromium window.
    pub async fn session(&self) -> Result<Session<'_>, BrowserError> {
        self.session_with_args(&[]).await
    }

    /// A new headless Chromium window with more command-line switches (such as
    /// `--host-resolver-rules`, which gives a page a name of its own on loopback).
    pub async fn session_with_args(&self, extra: &[&str]) -> Result<Session<'_>, BrowserError> {
        // Root has no user namespace sandbox here; the pages are the test's own.
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ];
        args.extend_from_slice(extra);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // A stack's gallery is served with its self-signed certificate; a student accepts
            // it after comparing the fingerprint `hybridlab up`/`status` print. The test's
            // pages are its own, so the window accepts it without the warning page.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let value = self
            .call(reqwest::Method::POST, "/session", Some(capabilities))
            .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::WebDriver {
                command: "POST /session".into(),
                message: format!("no session id in {value}"),
            })?
            .to_owned();
        Ok(Session { driver: self, id })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One browser window.
pub struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/url", self.id),
                Some(json!({"url": url})),
            )
            .await
            .map(drop)
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn run(&self, script: &str) -> Result<Value, BrowserError> {
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/execute/sync", self.id),
                Some(json!({"script": script, "args": []})),
            )
            .await
    }

    /// Chooses the local file `path` in the `<input type="file">` that `selector` finds, as a
    /// person picking it would.
    pub async fn choose_file(
        &self,
        selector: &str,
        path: &std::path::Path,
    ) -> Result<(), BrowserError> {
        let found = self
            .driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/element", self.id),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await?;
        // WebDriver names an element under this fixed key.
        let element = found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .ok_or_else(|| BrowserError::WebDriver {
                command: format!("find {selector}"),
                message: format!("no element in {found}"),
            })?
            .to_owned();
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}/element/{element}/value", self.id),
                Some(json!({"text": path.display().to_string()})),
            )
            .await
            .map(drop)
    }

    /// The window as a PNG.
    pub async fn screenshot(&self) -> Result<Vec<u8>, BrowserError> {
        use base64::Engine as _;
        let value = self
            .driver
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/screenshot", self.id),
                None,
            )
            .await?;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .map_err(|err| BrowserError::WebDriver {
                command: "GET screenshot".into(),
                message: err.to_string(),
            })
    }

    pub async fn close(self) {
        let _ = self
            .driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}", self.id),
                None,
            )
            .await;
    }
}
