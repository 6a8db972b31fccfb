//! `hybridlab sandbox`: start (in the foreground or detached), status and stop.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hybridlab_provision::stack::state::forget_gone_sandbox_stacks;
use hybridlab_sandbox::control::{
    self, SandboxRecord, log_path, remove_record, running, state_dir, write_record,
};
use hybridlab_sandbox::{Sandbox, SandboxOptions};

/// How long a detached start may take: a first start installs moto.
const DETACH_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn start(port: u16, detach: bool, concurrency: usize) -> anyhow::Result<ExitCode> {
    if let Some(record) = running().await {
        println!(
            "The sandbox is already running at {} (pid {}).",
            record.endpoint, record.pid
        );
        return Ok(ExitCode::SUCCESS);
    }
    if detach {
        let record = spawn_detached(port, concurrency).await?;
        println!(
            "hybridlab sandbox: running at {} (pid {}).",
            record.endpoint, record.pid
        );
        return Ok(ExitCode::SUCCESS);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut options = SandboxOptions::new(state_dir());
    options.edge_port = port;
    options.concurrency_limit = concurrency;
    let sandbox = Sandbox::start(options, |message| eprintln!("{message}"))
        .await
        .context("starting the sandbox")?;
    // A new sandbox is empty: the stacks recorded for its port, or for sandboxes that no
    // longer answer, are gone.
    forget_gone_sandbox_stacks(sandbox.port());
    let record = SandboxRecord {
        pid: std::process::id(),
        endpoint: sandbox.endpoint().to_owned(),
        moto_endpoint: sandbox.moto_endpoint(),
        started_at: hybridlab_wire::now_rfc3339(),
    };
    write_record(&record).context("writing the sandbox's state file")?;
    println!("hybridlab sandbox: listening on {}", record.endpoint);
    println!(
        "  export AWS_ENDPOINT_URL={} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
        record.endpoint
    );
    println!("Press Ctrl-C to stop.");
    wait_for_signal().await;
    eprintln!("hybridlab sandbox: stopping...");
    sandbox.stop().await;
    remove_record();
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

pub async fn spawn_detached(port: u16, concurrency: usize) -> anyhow::Result<SandboxRecord> {
    use std::os::unix::process::CommandExt as _;
    std::fs::create_dir_all(state_dir()).context("creating the sandbox's state directory")?;
    let log = std::fs::File::create(log_path()).context("creating the sandbox's log")?;
    let exe = std::env::current_exe().context("finding the hybridlab binary")?;
    let mut child = std::process::Command::new(exe)
        .args([
            "sandbox",
            "--port",
            &port.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("sharing the log")?)
        .stderr(log)
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()
        .context("starting the sandbox in the background")?;
    eprintln!(
        "hybridlab sandbox: starting in the background (log: {})...",
        log_path().display()
    );
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
pub async fn ensure_running() -> anyhow::Result<String> {
    if let Some(record) = running().await {
        return Ok(record.endpoint);
    }
    eprintln!(
        "hybridlab: no sandbox is running; starting one (`hybridlab sandbox stop` stops it)."
    );
    let record = spawn_detached(sandbox_port()?, 64).await?;
    eprintln!(
        "hybridlab: sandbox running at {} (pid {}).",
        record.endpoint, record.pid
    );
    Ok(record.endpoint)
}

pub async fn status(json: bool) -> anyhow::Result<ExitCode> {
    let record = running().await;
    if json {
        let value = match &record {
            Some(record) => {
                serde_json::json!({"running": true, "pid": record.pid, "endpoint": record.endpoint, "moto_endpoint": record.moto_endpoint, "started_at": record.started_at})
            }
            None => serde_json::json!({"running": false}),
        };
        println!("{value}");
    } else {
        match &record {
            Some(record) => println!(
                "The sandbox is running at {} (pid {}, since {}).",
                record.endpoint, record.pid, record.started_at
            ),
            None => println!("No sandbox is running. Start one with `hybridlab sandbox --detach`."),
        }
    }
    // Exit 3 when not running, like `systemctl status`, so scripts can test for it.
    Ok(if record.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

pub async fn stop() -> anyhow::Result<ExitCode> {
    match control::stop().await {
        Ok(record) => {
            println!("Stopped the sandbox (pid {}).", record.pid);
            Ok(ExitCode::SUCCESS)
        }
        Err(control::StopError::NotRunning) => {
            println!("No sandbox is running.");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Err(err.into()),
    }
}
