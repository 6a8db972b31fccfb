//! Support for the stack tests: the `hybridlab` binary run against the test sandbox, and an
//! independent count of what a stack left behind, made with plain SDK listings rather than
//! the provision crate's own inventory.

use std::process::{Command, Output};

use aws_sdk_ec2::types::Filter;

use crate::sandbox::{EdgeClients, build_binary, lab_programs_env};

/// Runs `hybridlab <args> --endpoint <edge>` with its state files in the test's own place,
/// deploying the programs the test binary built (an `up` builds nothing of its own).
pub fn hybridlab(endpoint: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    hybridlab_command()
        .args(args)
        .args(["--endpoint", endpoint])
        .env_remove("HYBRIDLAB_FAIL_AFTER_STEP")
        .envs(lab_programs_env())
        .envs(envs.iter().copied())
        .output()
        .expect("hybridlab runs")
}

/// The `hybridlab` binary as a test runs it: none of the user's own settings can choose its
/// target (no target variables, no config file).
pub fn hybridlab_command() -> Command {
    let (config_var, config_dir) = crate::sandbox::without_user_config();
    let mut command = Command::new(build_binary("hybridlab-console", "hybridlab"));
    for var in crate::sandbox::USER_TARGET_VARS {
        command.env_remove(var);
    }
    command.env(config_var, config_dir);
    command
}

/// [`hybridlab`] from async code: the binary runs on a blocking thread, so the test's runtime
/// keeps serving meanwhile (an image host, a shared sandbox).
pub async fn hybridlab_async(endpoint: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let endpoint = endpoint.to_owned();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        hybridlab(&endpoint, &args, &envs)
    })
    .await
    .expect("the CLI thread does not panic")
}

/// The JSON lines `hybridlab ... --json` printed.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect()
}

/// Every resource whose name or tag says it belongs to stack `id`, as `kind name` strings.
pub async fn leftovers(clients: &EdgeClients, id: &str) -> Vec<String> {
    let mut left = Vec::new();
    let buckets = clients.s3.list_buckets().send().await.expect("ListBuckets");
    for bucket in buckets.buckets() {
        if bucket.name().is_some_and(|n| n.contains(id)) {
            left.push(format!("bucket {}", bucket.name().unwrap_or_default()));
        }
    }
    // Every listing to its last page: the shared sandbox holds more of each than one page
    // (50 log groups, 50 functions) once the suite has run a while.
    let tables: Vec<String> = clients
        .dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListTables");
    left.extend(
        tables
            .iter()
            .filter(|n| n.contains(id))
            .map(|n| format!("table {n}")),
    );
    let functions: Vec<_> = clients
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListFunctions");
    left.extend(
        functions
            .iter()
            .filter_map(|f| f.function_name())
            .filter(|n| n.contains(id))
            .map(|n| format!("function {n}")),
    );
    let groups: Vec<_> = clients
        .logs
        .describe_log_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("DescribeLogGroups");
    left.extend(
        groups
            .iter()
            .filter_map(|g| g.log_group_name())
            .filter(|n| n.contains(id))
            .map(|n| format!("log group {n}")),
    );
    let roles: Vec<_> = clients
        .iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListRoles");
    left.extend(
        roles
            .iter()
            .map(|r| r.role_name())
            .filter(|n| n.contains(id))
            .map(|n| format!("role {n}")),
    );
    let profiles: Vec<_> = clients
        .iam
        .list_instance_profiles()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListInstanceProfiles");
    left.extend(
        profiles
            .iter()
            .map(|p| p.instance_profile_name())
            .filter(|n| n.contains(id))
            .map(|n| format!("instance profile {n}")),
    );
    let groups = clients
        .ec2
        .describe_security_groups()
        .send()
        .await
        .expect("DescribeSecurityGroups");
    left.extend(
        groups
            .security_groups()
            .iter()
            .filter(|g| {
                g.group_name().is_some_and(|n| n.contains(id))
                    || g.tags().iter().any(|t| t.value() == Some(id))
            })
            .map(|g| format!("security group {}", g.group_id().unwrap_or_default())),
    );
    let instances = clients
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:hybridlab:stack")
                .values(id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    for instance in instances.reservations().iter().flat_map(|r| r.instances()) {
        let state = instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        if state != "terminated" {
            left.push(format!(
                "instance {} ({state})",
                instance.instance_id().unwrap_or_default()
            ));
        }
    }
    let mappings: Vec<_> = clients
        .lambda
        .list_event_source_mappings()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListEventSourceMappings");
    left.extend(
        mappings
            .iter()
            .filter(|m| m.function_arn().is_some_and(|arn| arn.contains(id)))
            .map(|m| format!("event source mapping {}", m.uuid().unwrap_or_default())),
    );
    // API Gateway's control plane through the edge as the AWS CLI would call it.
    let apis: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v2/apis", clients.endpoint))
        .header(
            "authorization",
            hybridlab_sandbox::moto::scope_authorization("apigateway", "us-east-1"),
        )
        .send()
        .await
        .expect("GetApis")
        .json()
        .await
        .expect("JSON");
    left.extend(
        apis["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|api| api["name"].as_str().is_some_and(|n| n.contains(id)))
            .map(|api| format!("http api {}", api["apiId"])),
    );
    left
}
