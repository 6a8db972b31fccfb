//! `hybridlab up`: pick the target (starting the sandbox if it is the local one and not
//! running), pick the stack, print the plan (`--dry-run`) or run the provision crate and print
//! its steps and what was made. On AWS it first shows the plan and what it costs per hour and
//! asks, as `terraform apply` does (`--yes` skips the question). `--via terraform` hands over
//! to [`super::terraform`], which asks the same.

use std::io::{BufRead, IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use hybridlab_provision::stack::{self, StackClients, StackId, StackSettings, StackState, Target};
use serde_json::json;

use super::UpArgs;
use super::steps::printer;
use crate::lab::choose_stack;
use crate::lab::sandbox::endpoint_without_starting;
use crate::lab::stack::{
    NextStep, fail_after_from_env, spending_notice, up_incomplete, up_options, up_summary,
};
use crate::lab::target::{TargetChoice, connect};

/// The plan, resource by resource, as `--dry-run` and the question before spending show it.
fn plan_lines(stack: &StackId, settings: &StackSettings) -> Vec<String> {
    let mut lines = Vec::new();
    for resource in stack::plan(stack, settings) {
        let kind = if resource.kind.is_empty() {
            "-"
        } else {
            resource.kind
        };
        lines.push(format!(
            "  {:<20} {:<26} {}",
            resource.step.name(),
            kind,
            resource.name
        ));
        for (key, value) in resource.settings {
            lines.push(format!("  {:<20} {:<26}   {key}: {value}", "", ""));
        }
    }
    lines
}

/// On AWS, unless `yes`: shows the plan and its hourly cost on standard error and asks on the
/// terminal; anything but `y`/`yes` cancels before anything is created. Without a terminal
/// to ask on, `--yes` is required. The sandbox costs nothing and is never asked about.
pub fn confirm_spending(
    clients: &StackClients,
    stack: &StackId,
    settings: &StackSettings,
    yes: bool,
) -> anyhow::Result<()> {
    if clients.is_sandbox() || yes {
        return Ok(());
    }
    let target = clients.describe();
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to create stack {stack} on {target} without confirmation: pass --yes (`hybridlab up --dry-run` shows the plan)"
        );
    }
    let mut stderr = std::io::stderr().lock();
    writeln!(stderr, "Plan for stack {stack} on {target}:")?;
    for line in plan_lines(stack, settings) {
        writeln!(stderr, "{line}")?;
    }
    writeln!(stderr, "{}", spending_notice(settings))?;
    write!(stderr, "Create these resources on {target}? [y/N] ")?;
    stderr.flush()?;
    drop(stderr);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        bail!("cancelled: nothing was created");
    }
    Ok(())
}

pub async fn up(target: &TargetChoice, args: UpArgs) -> anyhow::Result<ExitCode> {
    if args.via == Some(super::Via::Terraform) {
        return super::terraform::up(target, args).await;
    }
    // A dry run only names the target: the local sandbox need not be started for it.
    let clients = if args.dry_run && matches!(target, TargetChoice::LocalSandbox { .. }) {
        let endpoint = endpoint_without_starting().await?;
        StackClients::connect(&Target::Sandbox { endpoint }).await?
    } else {
        connect(target).await?
    };
    let known: Vec<StackId> = StackState::list(&clients.state_key())
        .into_iter()
        .map(|s| s.stack_id)
        .collect();
    let stack = match choose_stack(&clients, args.stack.as_deref(), &known)? {
        Some(stack) => stack,
        None => StackId::generate(),
    };
    let mut options = up_options(&clients, stack.clone());
    options.settings = args.shape.settings(clients.region.clone());
    // As `up` itself does: a stack made with the pipeline or the jobs keeps them.
    if let Some(recorded) = StackState::load(&clients.state_key(), &stack) {
        options.settings.pipeline |= recorded.settings.pipeline;
        options.settings.jobs |= recorded.settings.jobs;
    }
    options.fail_after = fail_after_from_env()?;
    let settings = options.settings.clone();

    if args.dry_run {
        let plan = stack::plan(&stack, &settings);
        if args.json {
            println!(
                "{}",
                json!({"stack": stack, "target": clients.describe(), "settings": settings, "plan": plan})
            );
        } else {
            println!(
                "Plan for stack {stack} on {} (nothing is changed):",
                clients.describe()
            );
            for line in plan_lines(&stack, &settings) {
                println!("{line}");
            }
            if !clients.is_sandbox() {
                println!("{}", spending_notice(&settings));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    confirm_spending(&clients, &stack, &settings, args.yes)?;

    if !args.json && !super::output::quiet() {
        println!("Bringing up stack {stack} on {}...", clients.describe());
    }
    match stack::up(&clients, options, printer(args.json)).await {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    json!({"type": "result", "ok": true, "report": report})
                );
            } else {
                println!("{}", up_summary(&report, clients.is_sandbox()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                println!(
                    "{}",
                    json!({"type": "result", "ok": false, "stack": stack, "error": err.to_string()})
                );
            }
            Err(anyhow::Error::new(err).context(up_incomplete(&stack, NextStep::Commands)))
        }
    }
}
