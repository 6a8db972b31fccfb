//! The stack's life as lab actions: the options `up` takes by default, bringing a stack up and
//! tearing it down, reading every stack's status, and every message an `up` or a `down` ends
//! with (the command line's and the console's), written here once.

use anyhow::{Context as _, bail};
use hybridlab_provision::stack::artifacts::ArtifactSource;
use hybridlab_provision::stack::down::DownReport;
use hybridlab_provision::stack::up::{FAIL_AFTER_ENV, UpReport};
use hybridlab_provision::stack::{
    Reporter, Scope, StackClients, StackError, StackId, StackSettings, StackStatus, Step,
    UpOptions, list_stacks, statuses,
};

/// Where a message sends the user to go on: a command to type, or the console's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// `hybridlab up --stack X`, `hybridlab down --stack X`.
    Commands,
    /// The console's `u` and `d`.
    Keys,
}

/// What `up` does to `stack` by default: the server and the function built for this machine
/// on the sandbox, for Amazon Linux on AWS.
pub fn up_options(clients: &StackClients, stack: StackId) -> UpOptions {
    UpOptions {
        stack,
        settings: StackSettings::new(clients.region.clone()),
        artifacts: if clients.is_sandbox() {
            ArtifactSource::Host
        } else {
            ArtifactSource::AmazonLinux
        },
        fail_after: None,
    }
}

/// The step `up` is told to fail after (`HYBRIDLAB_FAIL_AFTER`, for tests of an aborted up).
pub fn fail_after_from_env() -> anyhow::Result<Option<Step>> {
    match std::env::var(FAIL_AFTER_ENV) {
        Ok(name) if !name.is_empty() => Step::parse(&name).map(Some).with_context(|| {
            format!(
                "{FAIL_AFTER_ENV}={name} is not a step; steps: {}",
                Step::ALL.map(Step::name).join(", ")
            )
        }),
        _ => Ok(None),
    }
}

/// `stack X is up in 12.3s: 14 steps done, 2 already in place`.
pub fn up_done(report: &UpReport) -> String {
    format!(
        "stack {} is up in {:.1}s: {} steps done, {} already in place",
        report.stack,
        report.elapsed_ms as f64 / 1000.0,
        report.done,
        report.skipped
    )
}

/// What an `up` made, resource by resource, and how to tear it down (`on_sandbox`: no
/// `--aws` flags in the advice), as `hybridlab up` prints it.
pub fn up_summary(report: &UpReport, on_sandbox: bool) -> String {
    format!(
        "Stack {} is up in {:.1}s ({} steps done, {} already in place).\n  function: {}\n  server:   {}\n  TLS:      self-signed certificate, SHA-256 {}\n            (a browser warns about it: accept it only if its viewer shows this fingerprint)\n  images:   s3://{}\n  table:    {}{}{}\nTear it down with `hybridlab down{}`.",
        report.stack,
        report.elapsed_ms as f64 / 1000.0,
        report.done,
        report.skipped,
        report.names.function,
        report.server_endpoint,
        report.cert_sha256,
        report.names.images_bucket,
        report.names.table,
        if report.resizer_arn.is_some() {
            format!(
                "\n  uploads:  s3://{} (POST {}/upload, or a presigned PUT from POST /api/uploads)\n  variants: s3://{}, made by {}",
                report.names.uploads_bucket,
                report.server_endpoint,
                report.names.processed_bucket,
                report.names.resizer
            )
        } else {
            String::new()
        },
        match &report.jobs_api_endpoint {
            Some(endpoint) => format!(
                "\n  jobs:     {endpoint}/jobs (the stack's token), run by {} on up to {} workers; `hybridlab job submit FILE --text T`",
                report.names.launcher, report.worker_cap
            ),
            None => String::new(),
        },
        if on_sandbox {
            String::new()
        } else {
            format!(" --aws --stack {}", report.stack)
        },
    )
}

/// What an `up` that stopped half-way left, and how to finish or remove it.
pub fn up_incomplete(stack: &StackId, next: NextStep) -> String {
    match next {
        NextStep::Commands => format!(
            "stack {stack} is incomplete; `hybridlab up --stack {stack}` finishes it, `hybridlab down --stack {stack}` removes it"
        ),
        NextStep::Keys => format!("stack {stack} is incomplete; u finishes it, d removes it"),
    }
}

/// `stack X is torn down: 14 resources deleted in 3.2s, nothing left`, or what remains.
pub fn down_done(stack: &str, report: &DownReport) -> Result<String, String> {
    if !report.remaining.is_empty() {
        return Err(format!(
            "stack {stack}: {} resources remain ({}); d tries again",
            report.remaining.len(),
            report
                .remaining
                .iter()
                .map(|r| format!("{} {}", r.kind.label(), r.id))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(format!(
        "stack {stack} is torn down: {} resources deleted in {:.1}s, nothing left",
        report.deleted.len(),
        report.elapsed_ms as f64 / 1000.0
    ))
}

/// What a `down` deleted and what its sweep still finds, as `hybridlab down` prints it (one
/// line each, every line ended).
pub fn down_summary(report: &DownReport) -> String {
    let mut text = format!(
        "Deleted {} resources of {} in {:.1}s.\n",
        report.deleted.len(),
        report
            .stacks
            .iter()
            .map(StackId::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        report.elapsed_ms as f64 / 1000.0
    );
    if report.remaining.is_empty() {
        text.push_str("Sweep: nothing tagged or named for the stack remains.\n");
    } else {
        text.push_str(
            "Sweep: these still exist; run `hybridlab down` again or delete them by hand:\n",
        );
        for resource in &report.remaining {
            text.push_str(&format!(
                "  {:<18} {}  (stack {})\n",
                resource.kind.label(),
                resource.id,
                resource.stack
            ));
        }
    }
    text
}

/// Brings `stack` up (a new stack when `None`), with the pipeline if `pipeline`, and says how
/// it went.
pub async fn bring_up(
    clients: &StackClients,
    stack: Option<String>,
    pipeline: bool,
    reporter: Reporter,
) -> anyhow::Result<String> {
    let stack = match stack {
        Some(name) => StackId::parse(&name)?,
        None => StackId::generate(),
    };
    let mut options = up_options(clients, stack.clone());
    options.settings.pipeline = pipeline;
    match hybridlab_provision::stack::up(clients, options, reporter).await {
        Ok(report) => Ok(up_done(&report)),
        Err(err) => Err(anyhow::Error::new(err).context(up_incomplete(&stack, NextStep::Keys))),
    }
}

/// Tears `stack` down and says how it went; anything left is an error.
pub async fn tear_down(
    clients: &StackClients,
    stack: &str,
    reporter: Reporter,
) -> anyhow::Result<String> {
    let scope = Scope::Stack(StackId::parse(stack)?);
    let report = hybridlab_provision::stack::down(clients, &scope, reporter).await?;
    match down_done(stack, &report) {
        Ok(message) => Ok(message),
        Err(remaining) => bail!("{remaining}"),
    }
}

/// Every stack on the target with the state of each resource.
pub async fn read_stacks(clients: &StackClients) -> Result<Vec<StackStatus>, StackError> {
    let ids = list_stacks(clients).await?;
    statuses(clients, &ids).await
}

/// Which AWS account the clients' credentials are for (STS GetCallerIdentity), as the line
/// the console's header shows, or why it cannot be told.
pub async fn account_id(clients: &StackClients) -> Result<String, String> {
    let sts = aws_sdk_sts::Client::new(&clients.config);
    match sts.get_caller_identity().send().await {
        Ok(identity) => identity
            .account()
            .map(str::to_owned)
            .ok_or_else(|| "AWS did not say which account these credentials are for".into()),
        Err(err) => Err(format!(
            "cannot tell which AWS account this is ({}); check the credentials: `aws sts get-caller-identity`",
            aws_sdk_sts::error::DisplayErrorContext(&err)
        )),
    }
}

/// What a stack of `settings` costs while it stands, for the question `up` asks before it
/// spends on AWS: the hourly figure and its basis, what the TTL bounds and what it does not.
pub fn spending_notice(settings: &StackSettings) -> String {
    use hybridlab_provision::stack::cost::estimate;
    use hybridlab_provision::stack::plan::is_burstable;
    let credits = is_burstable(&settings.instance_type).then_some(settings.cpu_credits);
    let at_rest = estimate(&settings.instance_type, credits, 0.0);
    let ttl_hours = settings.ttl_seconds as f64 / 3600.0;
    let mut notice = format!(
        "Cost while it stands: about ${:.4} per hour (${:.2} a day): {}.\nThe server's instance terminates itself after {}, at most ${:.3}; the functions, buckets, tables and log groups stay, at next to nothing, until `hybridlab down`.",
        at_rest.per_hour_usd,
        at_rest.per_hour_usd * 24.0,
        at_rest.basis,
        crate::lab::units::human_duration(settings.ttl_seconds),
        at_rest.per_hour_usd * ttl_hours,
    );
    if settings.jobs {
        notice.push_str(&format!(
            "\nEach job adds a {} worker billed while it runs (at most {} at once), plus its requests.",
            settings.instance_type, settings.worker_cap
        ));
    }
    notice
}

#[cfg(test)]
mod spending_tests {
    use super::*;

    #[test]
    fn the_notice_gives_the_hourly_cost_the_ttl_bound_and_the_workers() {
        let mut settings = StackSettings::new("eu-west-1");
        settings.ttl_seconds = 7200;
        let notice = spending_notice(&settings);
        // t3.micro $0.0104, 8 GB gp3 $0.000877, IPv4 $0.005.
        assert!(
            notice.contains("about $0.0163 per hour ($0.39 a day)"),
            "{notice}"
        );
        assert!(notice.contains("after 2h00m, at most $0.033"), "{notice}");
        assert!(!notice.contains("worker"), "{notice}");
        settings.jobs = true;
        assert!(
            spending_notice(&settings).contains("Each job adds a t3.micro worker"),
            "{notice}"
        );
    }
}
