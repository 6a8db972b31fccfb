//! The local sandbox as the lab needs it: its endpoint, with or without starting it, and a
//! detached start (the sandbox's own process is `hybridlab sandbox`). Starting one in the
//! background is said through the [`Say`] the caller gives.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hybridlab_sandbox::control::{SandboxRecord, log_path, running, state_dir};
use hybridlab_sandbox::timing::Timing;
use hybridlab_wire::lambda_cpu::{LambdaCpuShare, STATUS_FIELD};

/// Where the lab's few words about starting the sandbox go (the command line prints them on
/// standard error): a start takes seconds, minutes the first time, and must not be silent.
pub type Say = fn(&str);

/// How long a detached start may take: a first start installs moto.
const DETACH_TIMEOUT: Duration = Duration::from_secs(300);

/// How to start a sandbox: the settings `hybridlab sandbox` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLaunch {
    pub port: u16,
    /// The account's Lambda concurrency.
    pub concurrency: usize,
    /// The account's quota of On-Demand vCPUs running at once.
    pub vcpu_limit: u32,
    /// AWS's waits the sandbox keeps.
    pub timing: Timing,
    /// Whether IAM is enforced for the sandbox's functions and instances.
    pub iam: bool,
    /// A policy file enforced for the operator's own requests.
    pub operator_policy: Option<std::path::PathBuf>,
}

impl SandboxLaunch {
    /// The defaults on `port`: IAM enforced for principals, the operator unrestricted, AWS's
    /// waits kept (shorter than AWS's), an established account's Lambda concurrency.
    pub fn on_port(port: u16) -> Self {
        Self {
            port,
            concurrency: hybridlab_sandbox::DEFAULT_LAMBDA_CONCURRENCY,
            vcpu_limit: hybridlab_sandbox::DEFAULT_VCPU_LIMIT,
            timing: Timing::realistic(),
            iam: true,
            operator_policy: None,
        }
    }

    /// The `hybridlab sandbox` arguments that start a sandbox so.
    pub fn args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "sandbox".into(),
            "--port".into(),
            self.port.to_string().into(),
            "--lambda-concurrency".into(),
            self.concurrency.to_string().into(),
            "--vcpu-limit".into(),
            self.vcpu_limit.to_string().into(),
            "--iam".into(),
            if self.iam { "on" } else { "off" }.into(),
        ];
        // Every figure, so the detached sandbox keeps exactly this timing.
        for (flag, duration) in [
            ("--iam-propagation-seconds", self.timing.iam_propagation),
            ("--boot-seconds", self.timing.instance_boot),
            ("--function-pending-seconds", self.timing.function_create),
            ("--function-update-seconds", self.timing.function_update),
            ("--bucket-name-reuse-seconds", self.timing.bucket_name_reuse),
        ] {
            args.push(flag.into());
            args.push(duration.as_secs_f64().to_string().into());
        }
        args.push("--throttling".into());
        args.push(if self.timing.throttling { "on" } else { "off" }.into());
        if let Some(policy) = &self.operator_policy {
            args.push("--operator-policy".into());
            args.push(policy.clone().into_os_string());
        }
        args
    }
}

/// Starts `hybridlab sandbox` in the background and waits until it answers; `say` is told
/// where its log goes while it starts.
pub async fn spawn_detached(launch: &SandboxLaunch, say: Say) -> anyhow::Result<SandboxRecord> {
    use std::os::unix::process::CommandExt as _;
    std::fs::create_dir_all(state_dir()).context("creating the sandbox's state directory")?;
    let log = std::fs::File::create(log_path()).context("creating the sandbox's log")?;
    let exe = std::env::current_exe().context("finding the hybridlab binary")?;
    let mut child = std::process::Command::new(exe)
        .args(launch.args())
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("sharing the log")?)
        .stderr(log)
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()
        .context("starting the sandbox in the background")?;
    say(&format!(
        "hybridlab sandbox: starting in the background (log: {})...",
        log_path().display()
    ));
    let started = Instant::now();
    loop {
        if let Some(record) = running().await {
            return Ok(record);
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "the sandbox exited ({status}) before it was ready; see {}",
                log_path().display()
            );
        }
        if started.elapsed() > DETACH_TIMEOUT {
            let _ = child.kill();
            bail!(
                "the sandbox was not ready after {DETACH_TIMEOUT:?}; see {}",
                log_path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The port a sandbox started by a command listens on: `$HYBRIDLAB_SANDBOX_PORT`, or 4566.
fn sandbox_port() -> anyhow::Result<u16> {
    match std::env::var("HYBRIDLAB_SANDBOX_PORT") {
        Ok(port) if !port.is_empty() => port
            .parse()
            .with_context(|| format!("HYBRIDLAB_SANDBOX_PORT={port} is not a port number")),
        _ => Ok(hybridlab_wire::sandbox::DEFAULT_EDGE_PORT),
    }
}

/// The sandbox's endpoint without starting one: the running sandbox's, else the one a
/// command would start (for what only needs the name of the target, like a dry run).
pub async fn endpoint_without_starting() -> anyhow::Result<String> {
    if let Some(record) = running().await {
        return Ok(record.endpoint);
    }
    Ok(format!("http://127.0.0.1:{}", sandbox_port()?))
}

/// The endpoint of the running sandbox; starts one in the background first if none runs, as
/// every command on the local target does.
pub async fn ensure_running(say: Say) -> anyhow::Result<String> {
    if let Some(record) = running().await {
        return Ok(record.endpoint);
    }
    say("hybridlab: no sandbox is running; starting one (`hybridlab sandbox stop` stops it).");
    let record = spawn_detached(&SandboxLaunch::on_port(sandbox_port()?), say).await?;
    say(&format!(
        "hybridlab: sandbox running at {} (pid {}).",
        record.endpoint, record.pid
    ));
    Ok(record.endpoint)
}

/// How the sandbox at `endpoint` gives each Lambda environment the CPU share of its memory
/// (a cgroup mechanism), or why it cannot, from the sandbox's status. A memory sweep prints
/// [`LambdaCpuShare::line`] before it runs: without a cap, durations do not fall with memory.
pub async fn lambda_cpu_share(endpoint: &str) -> anyhow::Result<LambdaCpuShare> {
    let status = hybridlab_sandbox::control::status(endpoint).await?;
    let Some(share) = status.get(STATUS_FIELD) else {
        bail!(
            "the sandbox at {endpoint} does not say how it shares CPU among function environments (a sandbox from an older hybridlab?); restart it: `hybridlab sandbox stop`"
        );
    };
    serde_json::from_value(share.clone()).with_context(|| {
        format!("reading `{STATUS_FIELD}` in the status of the sandbox at {endpoint}")
    })
}
