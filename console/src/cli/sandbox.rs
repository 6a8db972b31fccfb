//! `hybridlab sandbox`: start (in the foreground or detached), status and stop, printed.

use std::process::ExitCode;

use anyhow::Context as _;
use hybridlab_provision::stack::state::forget_gone_sandbox_stacks;
use hybridlab_sandbox::control::{
    self, SandboxRecord, remove_record, running, state_dir, write_record,
};
use hybridlab_sandbox::{Sandbox, SandboxOptions};

use crate::lab::sandbox::{SandboxLaunch, lambda_cpu_share, spawn_detached};
use hybridlab_sandbox::authorizer::IamMode;
use hybridlab_sandbox::iam::Policy;
use hybridlab_sandbox::timing::Timing;

pub async fn start(launch: &SandboxLaunch, detach: bool) -> anyhow::Result<ExitCode> {
    if let Some(record) = running().await {
        println!(
            "The sandbox is already running at {} (pid {}).",
            record.endpoint, record.pid
        );
        return Ok(ExitCode::SUCCESS);
    }
    // A bad policy file is said here, not in a detached sandbox's log.
    let operator_policy = launch
        .operator_policy
        .as_deref()
        .map(read_policy)
        .transpose()?;
    if detach {
        let mut launch = launch.clone();
        if let Some(path) = &launch.operator_policy {
            launch.operator_policy =
                Some(std::path::absolute(path).context("finding the policy file")?);
        }
        let record = spawn_detached(&launch, |line| eprintln!("{line}")).await?;
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
    options.edge_port = launch.port;
    options.concurrency_limit = launch.concurrency;
    options.vcpu_limit = launch.vcpu_limit;
    options.timing = launch.timing;
    options.iam = if launch.iam {
        IamMode::Enforce
    } else {
        IamMode::Off
    };
    options.operator_policy = operator_policy.map(|policy| vec![policy]);
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
        "  IAM: {}",
        match (launch.iam, &launch.operator_policy) {
            (false, _) => "not enforced (--iam off)".to_owned(),
            (true, None) =>
                "enforced for functions and instances; the operator may do anything".to_owned(),
            (true, Some(path)) => format!(
                "enforced for functions, instances and the operator ({})",
                path.display()
            ),
        }
    );
    println!("  AWS's waits: {}", describe_timing(&launch.timing));
    println!(
        "  EC2 vCPU quota: {} vCPUs running at once",
        launch.vcpu_limit
    );
    println!(
        "  Lambda concurrency: {}{}",
        launch.concurrency,
        if launch.concurrency == hybridlab_sandbox::NEW_ACCOUNT_LAMBDA_CONCURRENCY {
            " (a new account's quota)"
        } else {
            ""
        }
    );
    println!("  Lambda CPU: {}", sandbox.lambda_cpu());
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

/// The timing in a line: its preset's name, if it is one, and its figures.
fn describe_timing(timing: &Timing) -> String {
    if *timing == Timing::fast() {
        return "none (--fast): roles, instances and functions are ready at once".to_owned();
    }
    let preset = if *timing == Timing::like_aws() {
        "AWS's typical figures (--like-aws)"
    } else if *timing == Timing::realistic() {
        "shorter than AWS's (--like-aws for AWS's figures, --fast for none)"
    } else {
        "as set"
    };
    let seconds = |duration: std::time::Duration| format!("{} s", duration.as_secs_f64());
    format!(
        "{preset}: a new role or instance profile is refused for {}, an instance boots for {}, a new function is Pending for {}, an update in progress for {}, a deleted bucket's name is refused for {}; control planes {}",
        seconds(timing.iam_propagation),
        seconds(timing.instance_boot),
        seconds(timing.function_create),
        seconds(timing.function_update),
        seconds(timing.bucket_name_reuse),
        if timing.throttling {
            "throttled at AWS's rates"
        } else {
            "not throttled"
        }
    )
}

/// The operator policy in `path`, parsed as IAM would take it.
fn read_policy(path: &std::path::Path) -> anyhow::Result<Policy> {
    let document = std::fs::read_to_string(path)
        .with_context(|| format!("reading the operator policy {}", path.display()))?;
    Policy::parse(&path.display().to_string(), &document).with_context(|| {
        format!(
            "the operator policy {} is not a valid IAM policy",
            path.display()
        )
    })
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
    // A sandbox that answers but cannot say is still running: the reason stands in.
    let lambda_cpu = match &record {
        Some(record) => Some(
            lambda_cpu_share(&record.endpoint)
                .await
                .map_err(|err| format!("{err:#}")),
        ),
        None => None,
    };
    if json {
        let value = match &record {
            Some(record) => {
                let lambda_cpu = match &lambda_cpu {
                    Some(Ok(share)) => serde_json::to_value(share).unwrap_or_default(),
                    Some(Err(why)) => serde_json::json!({"error": why}),
                    None => serde_json::Value::Null,
                };
                serde_json::json!({"running": true, "pid": record.pid, "endpoint": record.endpoint, "moto_endpoint": record.moto_endpoint, "started_at": record.started_at, "lambda_cpu": lambda_cpu})
            }
            None => serde_json::json!({"running": false}),
        };
        println!("{value}");
    } else {
        match &record {
            Some(record) => {
                println!(
                    "The sandbox is running at {} (pid {}, since {}).",
                    record.endpoint, record.pid, record.started_at
                );
                match &lambda_cpu {
                    Some(Ok(share)) => println!("{}", share.line()),
                    Some(Err(why)) => println!("CPU share per memory: unknown ({why})"),
                    None => {}
                }
            }
            None => println!("No sandbox is running. Start one with `hybridlab sandbox --detach`."),
        }
    }
    // Exit 3 when not running, like `systemctl status`, so scripts can test for it.
    Ok(if record.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::NOT_FOUND)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn launch_of(args: &[&str]) -> anyhow::Result<SandboxLaunch> {
        let line = ["hybridlab", "sandbox"].iter().chain(args);
        match Cli::try_parse_from(line)?.command {
            Some(Command::Sandbox(args)) => args.launch(),
            other => panic!("not the sandbox command: {other:?}"),
        }
    }

    #[test]
    fn presets_and_figures_make_the_timing_and_a_detached_start_keeps_it() {
        let default = launch_of(&[]).expect("the defaults");
        assert_eq!(default.timing, Timing::realistic());
        assert_eq!(
            default.concurrency,
            hybridlab_sandbox::DEFAULT_LAMBDA_CONCURRENCY
        );
        let like_aws = launch_of(&["--like-aws", "--new-account"]).expect("parses");
        assert_eq!(like_aws.timing, Timing::like_aws());
        assert_eq!(like_aws.concurrency, 10);
        let tuned = launch_of(&[
            "--fast",
            "--boot-seconds",
            "2.5",
            "--lambda-concurrency",
            "7",
            "--vcpu-limit",
            "4",
        ])
        .expect("parses");
        assert_eq!(tuned.vcpu_limit, 4);
        assert_eq!(default.vcpu_limit, hybridlab_sandbox::DEFAULT_VCPU_LIMIT);
        assert!(launch_of(&["--vcpu-limit", "0"]).is_err());
        assert_eq!(tuned.timing.instance_boot, Duration::from_millis(2500));
        assert_eq!(tuned.timing.iam_propagation, Duration::ZERO);
        assert_eq!(tuned.concurrency, 7);
        assert!(launch_of(&["--fast", "--like-aws"]).is_err());
        assert!(launch_of(&["--boot-seconds", "-1"]).is_err());
        assert!(launch_of(&["--lambda-concurrency", "0"]).is_err());
        // What a detached start is given makes the same launch again.
        let args: Vec<String> = tuned
            .args()
            .iter()
            .skip(1)
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let again = launch_of(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .expect("its own arguments parse");
        assert_eq!(again, tuned);
    }
}
