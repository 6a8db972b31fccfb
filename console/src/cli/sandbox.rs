//! `hybridlab sandbox`: start (in the foreground or detached), status and stop, printed.

use std::process::ExitCode;

use anyhow::Context as _;
use hybridlab_provision::stack::state::forget_gone_sandbox_stacks;
use hybridlab_sandbox::control::{
    self, SandboxRecord, remove_record, running, state_dir, write_record,
};
use hybridlab_sandbox::{Sandbox, SandboxOptions};

use crate::lab::sandbox::spawn_detached;

pub async fn start(port: u16, detach: bool, concurrency: usize) -> anyhow::Result<ExitCode> {
    if let Some(record) = running().await {
        println!(
            "The sandbox is already running at {} (pid {}).",
            record.endpoint, record.pid
        );
        return Ok(ExitCode::SUCCESS);
    }
    if detach {
        let record = spawn_detached(port, concurrency, |line| eprintln!("{line}")).await?;
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
