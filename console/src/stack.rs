//! `hybridlab up`, `down` and `status`: pick the target (starting the sandbox if it is the
//! local one and not running), pick the stack, run the provision crate and render its events.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use hybridlab_provision::stack::artifacts::ArtifactSource;
use hybridlab_provision::stack::status::StackStatus;
use hybridlab_provision::stack::up::FAIL_AFTER_ENV;
use hybridlab_provision::stack::{
    self, Reporter, Scope, StackClients, StackId, StackSettings, StackState, Step, StepEvent,
    StepStatus, Target, UpOptions,
};
use serde_json::json;

use crate::cli::{DownArgs, StatusArgs, TargetArgs, UpArgs};

/// Exit code of `down` when the sweep still finds resources.
const EXIT_REMAINING: u8 = 2;
/// Exit codes of `status`.
const EXIT_NO_STACK: u8 = 3;
const EXIT_INCOMPLETE: u8 = 4;

/// The target the flags name; the local sandbox is started if needed.
pub async fn resolve_target(args: &TargetArgs) -> anyhow::Result<Target> {
    if args.aws {
        return Ok(Target::Aws {
            region: args.region.clone(),
            profile: args.profile.clone(),
        });
    }
    let endpoint = match &args.endpoint {
        Some(endpoint) => endpoint.clone(),
        None => crate::sandbox::ensure_running().await?,
    };
    Ok(Target::Sandbox { endpoint })
}

pub async fn connect(args: &TargetArgs) -> anyhow::Result<StackClients> {
    let target = resolve_target(args).await?;
    Ok(StackClients::connect(&target).await?)
}

/// The stack a command means: the one named, else the target's only one.
fn chosen_stack(
    clients: &StackClients,
    named: Option<&str>,
    known: &[StackId],
) -> anyhow::Result<Option<StackId>> {
    if let Some(name) = named {
        return Ok(Some(StackId::parse(name)?));
    }
    match known {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        several => bail!(
            "{} has several stacks ({}); name one with --stack",
            clients.describe(),
            several
                .iter()
                .map(StackId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Prints events as lines (or JSON lines), with the time since the command started.
pub fn printer(json: bool) -> Reporter {
    let started = Instant::now();
    Arc::new(move |event: StepEvent| {
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", json!({"type": "step", "event": event}));
            return;
        }
        let mark = match event.status {
            StepStatus::Started => "..",
            StepStatus::Done => "ok",
            StepStatus::Skipped => "==",
            StepStatus::Failed => "!!",
        };
        let clock = started.elapsed().as_secs_f64();
        let took = match event.status {
            StepStatus::Started => String::new(),
            _ => format!(" ({:.2}s)", event.elapsed().as_secs_f64()),
        };
        let _ = writeln!(
            out,
            "[{clock:7.2}s] {mark} {:<22} {}{}{took}",
            event.step,
            event.resource,
            if event.detail.is_empty() {
                String::new()
            } else {
                format!("  {}", event.detail)
            },
        );
    })
}

fn fail_after_from_env() -> anyhow::Result<Option<Step>> {
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

pub async fn up(target: &TargetArgs, args: UpArgs) -> anyhow::Result<ExitCode> {
    if args.via == Some(crate::cli::Via::Terraform) {
        return crate::terraform::up(target, args).await;
    }
    // A dry run only names the target: the local sandbox need not be started for it.
    let clients = if args.dry_run && !target.aws && target.endpoint.is_none() {
        let endpoint = crate::sandbox::endpoint_without_starting().await?;
        StackClients::connect(&Target::Sandbox { endpoint }).await?
    } else {
        connect(target).await?
    };
    let known: Vec<StackId> = StackState::list(&clients.state_key())
        .into_iter()
        .map(|s| s.stack_id)
        .collect();
    let stack = match chosen_stack(&clients, args.stack.as_deref(), &known)? {
        Some(stack) => stack,
        None => StackId::generate(),
    };
    let mut options = up_options(&clients, stack.clone());
    options.settings = args.shape.settings(clients.region.clone());
    // As `up` itself does: a stack made with the pipeline keeps it.
    options.settings.pipeline |=
        StackState::load(&clients.state_key(), &stack).is_some_and(|s| s.settings.pipeline);
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
                println!(
                    "Stack {} is up in {:.1}s ({} steps done, {} already in place).\n  function: {}\n  server:   {}\n  images:   s3://{}\n  table:    {}{}\nTear it down with `hybridlab down{}`.",
                    report.stack,
                    report.elapsed_ms as f64 / 1000.0,
                    report.done,
                    report.skipped,
                    report.names.function,
                    report.server_endpoint,
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
                    if clients.is_sandbox() {
                        String::new()
                    } else {
                        format!(" --aws --stack {}", report.stack)
                    },
                );
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
            Err(anyhow::Error::new(err).context(format!(
                "stack {stack} is incomplete; `hybridlab up --stack {stack}` finishes it, `hybridlab down --stack {stack}` removes it"
            )))
        }
    }
}

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

pub async fn down(target: &TargetArgs, args: DownArgs) -> anyhow::Result<ExitCode> {
    if args.via == Some(crate::cli::Via::Terraform) {
        return crate::terraform::down(target, args).await;
    }
    let clients = connect(target).await?;
    let scope = if args.all {
        Scope::All
    } else {
        let known = stack::list_stacks(&clients).await?;
        match chosen_stack(&clients, args.stack.as_deref(), &known)? {
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

fn print_status(status: &StackStatus) {
    println!("Stack {} on {}", status.stack, status.target);
    if let Some(created) = &status.created_at {
        println!("  created {created}");
    }
    for resource in &status.resources {
        let age = resource
            .age_s
            .map_or_else(|| "-".to_owned(), crate::units::human_duration);
        println!(
            "  {:<18} {:<12} {age:>7}  {}",
            resource.kind.label(),
            resource.state,
            resource.name
        );
    }
    if let Some(instance) = &status.instance {
        let ttl = instance
            .ttl_left_s
            .map(|s| format!(", terminates itself in {}m", s / 60))
            .unwrap_or_default();
        println!(
            "  instance {} {} ({}), up {}m{ttl}",
            instance.id,
            instance.state,
            instance.instance_type,
            instance.uptime_s / 60
        );
    }
    match &status.server {
        Some(server) if server.healthy => println!(
            "  server   {} healthy (version {}, up {:.0}s)",
            server.endpoint,
            server.detail["version"].as_str().unwrap_or("?"),
            server.detail["uptime_s"].as_f64().unwrap_or(0.0)
        ),
        Some(server) => println!(
            "  server   {} NOT healthy: {}",
            server.endpoint, server.detail
        ),
        None => println!("  server   no instance, no server"),
    }
    println!(
        "  cost     ${:.4}/hour, ${:.4} so far{} ({})",
        status.cost.per_hour_usd,
        status.cost.so_far_usd,
        if status.target.starts_with("local") {
            " if it were on AWS"
        } else {
            ""
        },
        status.cost.basis
    );
}

pub async fn status(target: &TargetArgs, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let clients = connect(target).await?;
    let stacks = match &args.stack {
        Some(name) => vec![StackId::parse(name)?],
        None => stack::list_stacks(&clients).await?,
    };
    let statuses = stack::statuses(&clients, &stacks).await?;
    let present: Vec<&StackStatus> = statuses.iter().filter(|s| !s.gone()).collect();
    if args.json {
        println!(
            "{}",
            json!({"target": clients.describe(), "region": clients.region, "stacks": present})
        );
    } else if present.is_empty() {
        println!(
            "No hybridlab stack on {}. Create one with `hybridlab up`.",
            clients.describe()
        );
    } else {
        for status in &present {
            print_status(status);
        }
    }
    Ok(if present.is_empty() {
        ExitCode::from(EXIT_NO_STACK)
    } else if present.iter().all(|s| s.complete()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    })
}
