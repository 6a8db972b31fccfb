//! `hybridlab status`: every resource of the stacks with its live state, the server's health,
//! uptime and cost. Exits 3 if there is no stack, 4 if one is incomplete or unhealthy.

use std::process::ExitCode;

use hybridlab_provision::stack::status::StackStatus;
use hybridlab_provision::stack::{self, StackId};
use serde_json::json;

use super::StatusArgs;
use crate::lab::target::{TargetChoice, connect};

fn print_status(status: &StackStatus) {
    println!("Stack {} on {}", status.stack, status.target);
    if let Some(created) = &status.created_at {
        println!("  created {created}");
    }
    for resource in &status.resources {
        let age = resource
            .age_s
            .map_or_else(|| "-".to_owned(), crate::lab::units::human_duration);
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
        if let Some(error) = &instance.user_data_error {
            println!("  user-data FAILED, its console output ends: {error}");
        }
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
    if let Some(sha256) = status
        .server
        .as_ref()
        .and_then(|s| s.cert_sha256.as_deref())
    {
        // A browser opening the gallery warns about the self-signed certificate; this is what
        // its certificate viewer must show before the student accepts it.
        println!("  TLS      certificate SHA-256 {sha256}");
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

pub async fn status(target: &TargetChoice, args: StatusArgs) -> anyhow::Result<ExitCode> {
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
        ExitCode::from(super::exit::NOT_FOUND)
    } else if present.iter().all(|s| s.complete()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::INCOMPLETE)
    })
}
