//! `hybridlab up`: pick the target (starting the sandbox if it is the local one and not
//! running), pick the stack, print the plan (`--dry-run`) or run the provision crate and print
//! its steps and what was made. `--via terraform` hands over to [`super::terraform`].

use std::process::ExitCode;

use hybridlab_provision::stack::{self, StackClients, StackId, StackState, Target};
use serde_json::json;

use super::UpArgs;
use super::steps::printer;
use crate::lab::choose_stack;
use crate::lab::sandbox::endpoint_without_starting;
use crate::lab::stack::{NextStep, fail_after_from_env, up_incomplete, up_options, up_summary};
use crate::lab::target::{TargetChoice, connect};

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
            for resource in plan {
                let kind = if resource.kind.is_empty() {
                    "-"
                } else {
                    resource.kind
                };
                println!(
                    "  {:<20} {:<26} {}",
                    resource.step.name(),
                    kind,
                    resource.name
                );
                for (key, value) in resource.settings {
                    println!("  {:<20} {:<26}   {key}: {value}", "", "");
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    if !args.json {
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
