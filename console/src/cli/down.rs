//! `hybridlab down`: the stack chosen (or every stack with `--all`), a confirmation on AWS, the
//! steps as they happen and what the sweep still finds. Exits 2 if anything remains.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use hybridlab_provision::stack::{self, Scope, StackClients};
use serde_json::json;

use super::DownArgs;
use super::steps::printer;
use crate::lab::choose_stack;
use crate::lab::stack::down_summary;
use crate::lab::target::{TargetChoice, connect};

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
        print!("{}", down_summary(&report));
    }
    Ok(if report.remaining.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::REMAINING)
    })
}
