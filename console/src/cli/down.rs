//! `hybridlab down`: the stack chosen (or every stack with `--all`), a confirmation on AWS, the
//! steps as they happen and what the sweep still finds. Exits 2 if anything remains.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use hybridlab_provision::stack::{self, Scope, StackClients, StackId};
use serde_json::json;

use super::DownArgs;
use super::steps::printer;
use crate::lab::choose_stack;
use crate::lab::target::{TargetChoice, connect};

/// Exit code of `down` when the sweep still finds resources.
const EXIT_REMAINING: u8 = 2;

/// Asks the user to type the stack id (or `all`) before deleting on AWS.
fn confirm(clients: &StackClients, scope: &Scope) -> anyhow::Result<()> {
    let expected = match scope {
        Scope::Stack(id) => id.to_string(),
        Scope::All => "all".to_owned(),
    };
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to delete on {} without confirmation: pass --yes",
            clients.describe()
        );
    }
    eprint!(
        "This deletes {} on {}. Type `{expected}` to confirm: ",
        if expected == "all" {
            "every hybridlab stack".to_owned()
        } else {
            format!("stack {expected}")
        },
        clients.describe()
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != expected {
        bail!("not confirmed; nothing was deleted");
    }
    Ok(())
}

pub async fn down(target: &TargetChoice, args: DownArgs) -> anyhow::Result<ExitCode> {
    if args.via == Some(super::Via::Terraform) {
        return super::terraform::down(target, args).await;
    }
    let clients = connect(target).await?;
    let scope = if args.all {
        Scope::All
    } else {
        let known = stack::list_stacks(&clients).await?;
        match choose_stack(&clients, args.stack.as_deref(), &known)? {
            Some(id) => Scope::Stack(id),
            None => {
                if args.json {
                    println!(
                        "{}",
                        json!({"type": "result", "ok": true, "stacks": [], "deleted": [], "remaining": []})
                    );
                } else {
                    println!(
                        "No hybridlab stack on {}: nothing to delete.",
                        clients.describe()
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
    };
    if !clients.is_sandbox() && !args.yes {
        confirm(&clients, &scope)?;
    }
    let report = stack::down(&clients, &scope, printer(args.json)).await?;
    if args.json {
        println!(
            "{}",
            json!({"type": "result", "ok": report.remaining.is_empty(), "report": report})
        );
    } else {
        println!(
            "Deleted {} resources of {} in {:.1}s.",
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
            println!("Sweep: nothing tagged or named for the stack remains.");
        } else {
            println!(
                "Sweep: these still exist; run `hybridlab down` again or delete them by hand:"
            );
            for resource in &report.remaining {
                println!(
                    "  {:<18} {}  (stack {})",
                    resource.kind.label(),
                    resource.id,
                    resource.stack
                );
            }
        }
    }
    Ok(if report.remaining.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REMAINING)
    })
}
