//! `down`: finds every resource of a stack by its name and its tag (never only through the
//! state file), deletes them in dependency order (whatever writes to the buckets first), and
//! ends with a sweep that lists whatever still exists. A resource that is already gone counts
//! as deleted, so `down` twice is harmless. `down --all` on AWS looks in every enabled region.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::StreamExt as _;
use serde::Serialize;

use super::error::{Response, StackError, code_of, is_not_found, sdk_error};
use super::names::{IAM_PATH, NAME_PREFIX, StackId, StackNames};
use super::progress::{Reporter, StepEvent, StepStatus};
use super::state::StackState;
use super::target::StackClients;
use hybridlab_wire::tags::{ROLE_JOB_WORKER, ROLE_TAG, STACK_TAG};

/// Which stacks to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Stack(StackId),
    /// Every hybridlab stack on the target.
    All,
}

impl Scope {
    fn includes(&self, id: &StackId) -> bool {
        match self {
            Scope::Stack(wanted) => wanted == id,
            Scope::All => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Bucket,
    Function,
    Instance,
    SecurityGroup,
    InstanceProfile,
    Role,
    LogGroup,
    Table,
    /// A job's worker instance (tagged `hybridlab:role=job-worker`).
    Worker,
    /// The jobs' launcher mapping (its id is the mapping's UUID).
    EventSourceMapping,
    /// The jobs' HTTP API (its id is the API id).
    HttpApi,
}

impl ResourceKind {
    pub fn label(self) -> &'static str {
        match self {
            ResourceKind::Bucket => "s3 bucket",
            ResourceKind::Function => "lambda function",
            ResourceKind::Instance => "ec2 instance",
            ResourceKind::SecurityGroup => "security group",
            ResourceKind::InstanceProfile => "instance profile",
            ResourceKind::Role => "iam role",
            ResourceKind::LogGroup => "log group",
            ResourceKind::Table => "dynamodb table",
            ResourceKind::Worker => "job worker",
            ResourceKind::EventSourceMapping => "stream mapping",
            ResourceKind::HttpApi => "http api",
        }
    }
}

/// A resource that belongs to a stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FoundResource {
    pub kind: ResourceKind,
    /// The name, or the id where the service has no names (instances, security groups).
    pub id: String,
    pub stack: StackId,
    /// When the service says it was made, in Unix seconds, where the listing tells it (a
    /// function's last deployment; not for tables or security groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_s: Option<i64>,
}

/// What `down` did.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub stacks: Vec<StackId>,
    pub deleted: Vec<FoundResource>,
    /// What the final sweep still found: empty when the teardown is complete.
    pub remaining: Vec<FoundResource>,
    /// The regions besides the target's own where `down --all` found stacks and tore them
    /// down too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_regions: Vec<String>,
    pub elapsed_ms: u64,
}

/// The stack of a resource: from its name, else from its `hybridlab:stack` tag.
fn stack_of(name: &str, tag: Option<&str>) -> Option<StackId> {
    StackNames::stack_of(name).or_else(|| tag.and_then(|t| StackId::parse(t).ok()))
}

/// The regions other than the target's where the stacks in `scope` have resources: each
/// region EC2 lists as enabled for the account (DescribeRegions without `AllRegions`), looked
/// in four at a time. IAM is global and is left to the target's own region. On the sandbox,
/// whose buckets are listed in every region alike, only the other services count.
pub async fn other_regions_with_stacks(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<String>, StackError> {
    let regions = clients
        .ec2
        .describe_regions()
        .send()
        .await
        .map_err(|err| sdk_error("ec2:DescribeRegions", err))?;
    let others: Vec<String> = regions
        .regions()
        .iter()
        .filter_map(|region| region.region_name())
        .filter(|region| *region != clients.region)
        .map(str::to_owned)
        .collect();
    let with_buckets = !clients.is_sandbox();
    let searched: Vec<(String, Result<bool, StackError>)> = futures::stream::iter(others)
        .map(|region| async move {
            let regional = clients.in_region(&region);
            let found = tokio::try_join!(
                async {
                    if with_buckets {
                        find_buckets(&regional, scope).await
                    } else {
                        Ok(Vec::new())
                    }
                },
                find_tables(&regional, scope),
                find_functions(&regional, scope),
                find_log_groups(&regional, scope),
                find_ec2(&regional, scope),
                find_mappings(&regional, scope),
                find_apis(&regional, scope),
            );
            let any = found.map(|(a, b, c, d, e, f, g)| {
                [a, b, c, d, e, f, g].iter().any(|found| !found.is_empty())
            });
            (region, any)
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut with_stacks = Vec::new();
    for (region, found) in searched {
        match found {
            Ok(true) => with_stacks.push(region),
            Ok(false) => {}
            // A region the account may not use (an SCP, a service not offered there) holds
            // nothing of ours; say so rather than stop the teardown everywhere else.
            Err(err) => tracing::warn!(region = %region, error = %err, "region not searched"),
        }
    }
    with_stacks.sort();
    Ok(with_stacks)
}

/// Every resource of the stacks in `scope` that exists now.
pub async fn inventory(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    let (buckets, tables, functions, log_groups, iam, ec2, mappings, apis) = tokio::try_join!(
        find_buckets(clients, scope),
        find_tables(clients, scope),
        find_functions(clients, scope),
        find_log_groups(clients, scope),
        find_iam(clients, scope),
        find_ec2(clients, scope),
        find_mappings(clients, scope),
        find_apis(clients, scope),
    )?;
    let mut found: Vec<FoundResource> = [
        buckets, tables, functions, log_groups, iam, ec2, mappings, apis,
    ]
    .concat();
    found.sort();
    found.dedup();
    Ok(found)
}

async fn find_buckets(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = clients
            .s3
            .list_buckets()
            .set_continuation_token(token.clone());
        if !clients.is_sandbox() {
            request = request.bucket_region(&clients.region);
        }
        let page = request
            .send()
            .await
            .map_err(|err| sdk_error("s3:ListAllMyBuckets", err))?;
        for bucket in page.buckets() {
            let Some(name) = bucket.name().filter(|n| n.starts_with(NAME_PREFIX)) else {
                continue;
            };
            let mut stack = StackNames::stack_of(name);
            if stack.is_none() {
                let tags = clients
                    .s3
                    .get_bucket_tagging()
                    .bucket(name)
                    .send()
                    .await
                    .ok();
                let tag = tags.as_ref().and_then(|t| {
                    t.tag_set()
                        .iter()
                        .find(|tag| tag.key() == STACK_TAG)
                        .map(|tag| tag.value().to_owned())
                });
                stack = stack_of(name, tag.as_deref());
            }
            if let Some(stack) = stack.filter(|s| scope.includes(s)) {
                found.push(FoundResource {
                    kind: ResourceKind::Bucket,
                    id: name.to_owned(),
                    stack,
                    created_s: bucket.creation_date().map(|date| date.secs()),
                });
            }
        }
        token = page.continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

async fn find_tables(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    let mut pages = clients
        .dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send();
    while let Some(name) = pages.next().await {
        let name = name.map_err(|err| sdk_error("dynamodb:ListTables", err))?;
        if let Some(stack) = StackNames::stack_of(&name).filter(|s| scope.includes(s)) {
            found.push(FoundResource {
                kind: ResourceKind::Table,
                id: name,
                stack,
                // ListTables gives names only; `status` reads the table's age itself.
                created_s: None,
            });
        }
    }
    Ok(found)
}

async fn find_functions(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    let mut pages = clients
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send();
    while let Some(function) = pages.next().await {
        let function = function.map_err(|err| sdk_error("lambda:ListFunctions", err))?;
        let Some(name) = function.function_name() else {
            continue;
        };
        if let Some(stack) = StackNames::stack_of(name).filter(|s| scope.includes(s)) {
            found.push(FoundResource {
                kind: ResourceKind::Function,
                id: name.to_owned(),
                stack,
                created_s: function.last_modified().and_then(lambda_timestamp_s),
            });
        }
    }
    Ok(found)
}

/// Event source mappings whose function is one of a stack's: Lambda keeps a mapping after
/// its function is deleted, so they are found by the function's name in their ARN.
async fn find_mappings(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    let mut pages = clients
        .lambda
        .list_event_source_mappings()
        .into_paginator()
        .items()
        .send();
    while let Some(mapping) = pages.next().await {
        let mapping = mapping.map_err(|err| sdk_error("lambda:ListEventSourceMappings", err))?;
        let function = mapping
            .function_arn()
            .and_then(|arn| arn.split(':').nth(6))
            .unwrap_or_default();
        if let (Some(uuid), Some(stack)) = (
            mapping.uuid(),
            StackNames::stack_of(function).filter(|s| scope.includes(s)),
        ) {
            found.push(FoundResource {
                kind: ResourceKind::EventSourceMapping,
                id: uuid.to_owned(),
                stack,
                created_s: None,
            });
        }
    }
    Ok(found)
}

/// Every HTTP API of the target's region (GetApis, page by page).
pub async fn list_apis(
    clients: &StackClients,
) -> Result<Vec<aws_sdk_apigatewayv2::types::Api>, StackError> {
    let mut apis = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_apis()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|err| sdk_error("apigateway:GetApis", err))?;
        apis.extend(page.items().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(apis);
        }
    }
}

/// HTTP APIs named as a stack's, or tagged with it.
async fn find_apis(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    Ok(list_apis(clients)
        .await?
        .iter()
        .filter_map(|api| {
            let tag = api.tags().and_then(|tags| tags.get(STACK_TAG));
            let stack = stack_of(api.name().unwrap_or_default(), tag.map(String::as_str))
                .filter(|s| scope.includes(s))?;
            Some(FoundResource {
                kind: ResourceKind::HttpApi,
                id: api.api_id()?.to_owned(),
                stack,
                created_s: api.created_date().map(|date| date.secs()),
            })
        })
        .collect())
}

async fn find_log_groups(
    clients: &StackClients,
    scope: &Scope,
) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    for prefix in [
        format!("/aws/lambda/{NAME_PREFIX}"),
        "/hybridlab/".to_owned(),
    ] {
        let mut pages = clients
            .logs
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .into_paginator()
            .items()
            .send();
        while let Some(group) = pages.next().await {
            let group = group.map_err(|err| sdk_error("logs:DescribeLogGroups", err))?;
            let Some(name) = group.log_group_name() else {
                continue;
            };
            if let Some(stack) = StackNames::stack_of(name).filter(|s| scope.includes(s)) {
                found.push(FoundResource {
                    kind: ResourceKind::LogGroup,
                    id: name.to_owned(),
                    stack,
                    created_s: group.creation_time().map(|ms| ms / 1000),
                });
            }
        }
    }
    Ok(found)
}

async fn find_iam(clients: &StackClients, scope: &Scope) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    let mut roles = clients
        .iam
        .list_roles()
        .path_prefix(IAM_PATH)
        .into_paginator()
        .items()
        .send();
    while let Some(role) = roles.next().await {
        let role = role.map_err(|err| sdk_error("iam:ListRoles", err))?;
        let tag = role
            .tags()
            .iter()
            .find(|t| t.key() == STACK_TAG)
            .map(|t| t.value());
        if let Some(stack) = stack_of(role.role_name(), tag).filter(|s| scope.includes(s)) {
            found.push(FoundResource {
                kind: ResourceKind::Role,
                id: role.role_name().to_owned(),
                stack,
                created_s: Some(role.create_date().secs()),
            });
        }
    }
    let mut profiles = clients
        .iam
        .list_instance_profiles()
        .path_prefix(IAM_PATH)
        .into_paginator()
        .items()
        .send();
    while let Some(profile) = profiles.next().await {
        let profile = profile.map_err(|err| sdk_error("iam:ListInstanceProfiles", err))?;
        let name = profile.instance_profile_name();
        let tag = profile
            .tags()
            .iter()
            .find(|t| t.key() == STACK_TAG)
            .map(|t| t.value());
        if let Some(stack) = stack_of(name, tag).filter(|s| scope.includes(s)) {
            found.push(FoundResource {
                kind: ResourceKind::InstanceProfile,
                id: name.to_owned(),
                stack,
                created_s: Some(profile.create_date().secs()),
            });
        }
    }
    Ok(found)
}

/// Unix seconds of Lambda's `LastModified`: `2026-11-29T18:00:00.000+0000` from AWS, which is
/// not quite RFC 3339 (its offset has no colon), or RFC 3339 proper (moto's `...Z`).
fn lambda_timestamp_s(text: &str) -> Option<i64> {
    let rfc3339 = |text: &str| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(time::OffsetDateTime::unix_timestamp)
    };
    rfc3339(text).or_else(|| {
        let (local, offset) = text.split_at(text.len().checked_sub(5)?);
        rfc3339(&format!("{local}{}:{}", offset.get(..3)?, offset.get(3..)?))
    })
}

fn tag_filter(scope: &Scope) -> Filter {
    match scope {
        Scope::Stack(id) => Filter::builder()
            .name(format!("tag:{STACK_TAG}"))
            .values(id.as_str())
            .build(),
        Scope::All => Filter::builder().name("tag-key").values(STACK_TAG).build(),
    }
}

fn ec2_stack(tags: &[aws_sdk_ec2::types::Tag]) -> Option<StackId> {
    tags.iter()
        .find(|t| t.key() == Some(STACK_TAG))
        .and_then(|t| t.value())
        .and_then(|v| StackId::parse(v).ok())
}

async fn find_ec2(clients: &StackClients, scope: &Scope) -> Result<Vec<FoundResource>, StackError> {
    let mut found = Vec::new();
    let mut instances = clients
        .ec2
        .describe_instances()
        .filters(tag_filter(scope))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped", "shutting-down"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = instances.next().await {
        let page = page.map_err(|err| sdk_error("ec2:DescribeInstances", err))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            if let (Some(id), Some(stack)) = (instance.instance_id(), ec2_stack(instance.tags())) {
                let worker = instance
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(ROLE_TAG) && t.value() == Some(ROLE_JOB_WORKER));
                found.push(FoundResource {
                    kind: if worker {
                        ResourceKind::Worker
                    } else {
                        ResourceKind::Instance
                    },
                    id: id.to_owned(),
                    stack,
                    created_s: instance.launch_time().map(|time| time.secs()),
                });
            }
        }
    }
    // Security groups by tag and by name: a group's name is the stack's even if its tags are not.
    for filter in [
        tag_filter(scope),
        Filter::builder()
            .name("group-name")
            .values(format!("{NAME_PREFIX}server-*"))
            .build(),
    ] {
        let groups = clients
            .ec2
            .describe_security_groups()
            .filters(filter)
            .send()
            .await
            .map_err(|err| sdk_error("ec2:DescribeSecurityGroups", err))?;
        for group in groups.security_groups() {
            let stack = group
                .group_name()
                .and_then(StackNames::stack_of)
                .or_else(|| ec2_stack(group.tags()));
            if let (Some(id), Some(stack)) = (group.group_id(), stack.filter(|s| scope.includes(s)))
            {
                found.push(FoundResource {
                    kind: ResourceKind::SecurityGroup,
                    id: id.to_owned(),
                    stack,
                    created_s: None,
                });
            }
        }
    }
    Ok(found)
}

/// Deletes every resource of the stacks in `scope`, then sweeps. `Scope::All` tears down the
/// stacks of every other region first ([`other_regions_with_stacks`]), the target's own last.
pub async fn down(
    clients: &StackClients,
    scope: &Scope,
    reporter: Reporter,
) -> Result<DownReport, StackError> {
    let started = Instant::now();
    let mut elsewhere = Vec::new();
    if *scope == Scope::All {
        for region in other_regions_with_stacks(clients, scope).await? {
            let regional = clients.in_region(&region);
            elsewhere.push((
                region,
                down_in_region(&regional, scope, reporter.clone()).await?,
            ));
        }
    }
    let mut report = down_in_region(clients, scope, reporter).await?;
    for (region, other) in elsewhere {
        report.stacks.extend(other.stacks);
        report.deleted.extend(other.deleted);
        report.remaining.extend(other.remaining);
        report.other_regions.push(region);
    }
    report.stacks.sort();
    report.stacks.dedup();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// [`down`] in the target's region.
async fn down_in_region(
    clients: &StackClients,
    scope: &Scope,
    reporter: Reporter,
) -> Result<DownReport, StackError> {
    let started = Instant::now();
    let found = inventory(clients, scope).await?;
    let mut stacks: BTreeSet<StackId> = found.iter().map(|r| r.stack.clone()).collect();
    match scope {
        Scope::Stack(id) => {
            stacks.insert(id.clone());
        }
        Scope::All => stacks.extend(
            StackState::list(&clients.state_key())
                .into_iter()
                .map(|s| s.stack_id),
        ),
    }
    let teardown = Teardown { clients, reporter };

    // What writes to the buckets and the table goes first: the instance (terminated, and
    // waited for) and the functions. Only then are the buckets emptied, or an object the
    // server stores meanwhile would keep its bucket from being deleted. The security group and
    // the instance profile wait for the instance; IAM and logs go last, so nothing running
    // loses its permissions or recreates its log group while it shuts down.
    let delete_all = |kinds: &[ResourceKind]| {
        let targets: Vec<&FoundResource> =
            found.iter().filter(|r| kinds.contains(&r.kind)).collect();
        let teardown = &teardown;
        futures::future::join_all(targets.into_iter().map(move |r| teardown.delete(r)))
    };
    // What starts instances or runs code goes before the instances: the launcher's mapping,
    // the jobs API and every function. Then the instances, looked for again, because a
    // launcher already running may have started a job's worker since the inventory.
    let starters = delete_all(&[
        ResourceKind::EventSourceMapping,
        ResourceKind::HttpApi,
        ResourceKind::Function,
    ])
    .await;
    let instances: Vec<FoundResource> = find_ec2(clients, scope)
        .await?
        .into_iter()
        .filter(|r| matches!(r.kind, ResourceKind::Instance | ResourceKind::Worker))
        .collect();
    let started_since: Vec<FoundResource> = instances
        .iter()
        .filter(|instance| !found.contains(instance))
        .cloned()
        .collect();
    let writers = futures::future::join_all(instances.iter().map(|r| teardown.delete(r))).await;
    let storage = delete_all(&[
        ResourceKind::Bucket,
        ResourceKind::Table,
        ResourceKind::SecurityGroup,
    ])
    .await;
    let last = delete_all(&[
        ResourceKind::InstanceProfile,
        ResourceKind::Role,
        ResourceKind::LogGroup,
    ])
    .await;
    let failures: Vec<StackError> = starters
        .into_iter()
        .chain(writers)
        .chain(storage)
        .chain(last)
        .filter_map(Result::err)
        .collect();

    let remaining = inventory(clients, scope).await?;
    if remaining.is_empty() {
        for stack in &stacks {
            StackState::remove(&clients.state_key(), stack);
        }
    } else if let Some(failure) = failures.into_iter().next() {
        tracing::warn!(error = %failure, "teardown incomplete");
    }
    let deleted = found
        .into_iter()
        .chain(started_since)
        .filter(|r| !remaining.contains(r))
        .collect();
    Ok(DownReport {
        stacks: stacks.into_iter().collect(),
        deleted,
        remaining,
        other_regions: Vec::new(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

struct Teardown<'a> {
    clients: &'a StackClients,
    reporter: Reporter,
}

/// Whether a deletion deleted something or found it already gone.
enum Deleted {
    Now(String),
    AlreadyGone,
}

/// The answer of a call on a resource that may already be gone (an earlier `down`, the TTL,
/// a person in the console): `None` when AWS says it does not exist, the answer otherwise,
/// and any other refusal as the error of `action`.
fn unless_gone<T, E>(
    action: &str,
    answer: Result<T, SdkError<E, Response>>,
) -> Result<Option<T>, StackError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match answer {
        Ok(output) => Ok(Some(output)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(sdk_error(action, err)),
    }
}

/// A deletion's outcome: `done` when the call deleted, already gone when AWS did not find it.
fn deleted<T, E>(
    action: &str,
    answer: Result<T, SdkError<E, Response>>,
    done: &str,
) -> Result<Deleted, StackError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Ok(match unless_gone(action, answer)? {
        Some(_) => Deleted::Now(done.to_owned()),
        None => Deleted::AlreadyGone,
    })
}

impl Teardown<'_> {
    fn report(
        &self,
        resource: &FoundResource,
        status: StepStatus,
        elapsed: Duration,
        detail: String,
    ) {
        (self.reporter)(StepEvent {
            stack: resource.stack.to_string(),
            step: format!("delete {}", resource.kind.label()),
            resource: resource.id.clone(),
            status,
            elapsed_ms: elapsed.as_millis() as u64,
            detail,
        });
    }

    async fn delete(&self, resource: &FoundResource) -> Result<(), StackError> {
        let started = Instant::now();
        self.report(resource, StepStatus::Started, Duration::ZERO, String::new());
        let id = resource.id.as_str();
        let work = async {
            match resource.kind {
                ResourceKind::Bucket => self.bucket(id).await,
                ResourceKind::Table => self.table(id).await,
                ResourceKind::Function => self.function(id).await,
                ResourceKind::Instance | ResourceKind::Worker => self.instance(id).await,
                ResourceKind::SecurityGroup => self.security_group(id).await,
                ResourceKind::InstanceProfile => self.instance_profile(id).await,
                ResourceKind::Role => self.role(id).await,
                ResourceKind::LogGroup => self.log_group(id).await,
                ResourceKind::EventSourceMapping => self.mapping(id).await,
                ResourceKind::HttpApi => self.http_api(id).await,
            }
        };
        match work.await {
            Ok(Deleted::Now(detail)) => {
                self.report(resource, StepStatus::Done, started.elapsed(), detail);
                Ok(())
            }
            Ok(Deleted::AlreadyGone) => {
                self.report(
                    resource,
                    StepStatus::Skipped,
                    started.elapsed(),
                    "already gone".into(),
                );
                Ok(())
            }
            Err(err) => {
                self.report(
                    resource,
                    StepStatus::Failed,
                    started.elapsed(),
                    err.to_string(),
                );
                Err(err)
            }
        }
    }

    /// Deletes every object version and delete marker and aborts every unfinished multipart
    /// upload, then the bucket. A writer that `down` did not stop (a resizer invocation still
    /// running after its function was deleted) can add an object meanwhile: S3 then answers
    /// BucketNotEmpty, and the bucket is emptied again, within the patience.
    async fn bucket(&self, name: &str) -> Result<Deleted, StackError> {
        let patience = self.clients.patience(Duration::from_secs(120));
        let deadline = Instant::now() + patience;
        let mut removed = 0usize;
        let mut aborted = 0usize;
        loop {
            let Some(count) = self.empty_bucket(name).await? else {
                return Ok(Deleted::AlreadyGone);
            };
            removed += count;
            let Some(count) = self.abort_uploads(name).await? else {
                return Ok(Deleted::AlreadyGone);
            };
            aborted += count;
            match self.clients.s3.delete_bucket().bucket(name).send().await {
                Ok(_) => {
                    return Ok(Deleted::Now(format!(
                        "emptied ({removed} object versions, {aborted} multipart uploads aborted) and deleted"
                    )));
                }
                Err(err) if is_not_found(&err) => return Ok(Deleted::AlreadyGone),
                Err(err)
                    if code_of(&err) == Some("BucketNotEmpty") && Instant::now() < deadline =>
                {
                    tracing::info!(bucket = name, "written to while emptied; emptying again");
                    tokio::time::sleep(self.clients.poll_pause(Duration::from_secs(2))).await;
                }
                Err(err) => return Err(sdk_error("s3:DeleteBucket", err)),
            }
        }
    }

    /// Deletes every object version and delete marker, a page at a time; the count, or `None`
    /// if the bucket is gone.
    async fn empty_bucket(&self, name: &str) -> Result<Option<usize>, StackError> {
        let s3 = &self.clients.s3;
        let mut removed = 0usize;
        loop {
            let listing = s3
                .list_object_versions()
                .bucket(name)
                .max_keys(1000)
                .send()
                .await;
            let Some(page) = unless_gone("s3:ListBucketVersions", listing)? else {
                return Ok(None);
            };
            let mut identifiers = Vec::new();
            for version in page.versions() {
                identifiers.push((version.key(), version.version_id()));
            }
            for marker in page.delete_markers() {
                identifiers.push((marker.key(), marker.version_id()));
            }
            if identifiers.is_empty() {
                return Ok(Some(removed));
            }
            let objects = identifiers
                .into_iter()
                .filter_map(|(key, version)| {
                    ObjectIdentifier::builder()
                        .set_key(key.map(str::to_owned))
                        .set_version_id(version.map(str::to_owned))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            let count = objects.len();
            let output = s3
                .delete_objects()
                .bucket(name)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(|err| StackError::Invalid(format!("delete request: {err}")))?,
                )
                .send()
                .await
                .map_err(|err| sdk_error("s3:DeleteObjectVersion", err))?;
            if let Some(error) = output.errors().first() {
                return Err(StackError::Aws {
                    action: "s3:DeleteObjectVersion".into(),
                    message: format!(
                        "{} of {name}: {}",
                        error.key().unwrap_or_default(),
                        error.message().unwrap_or("not deleted")
                    ),
                });
            }
            removed += count;
        }
    }

    /// Aborts every unfinished multipart upload, following ListMultipartUploads' pages (at
    /// most 1,000 uploads each) by their key and upload-id markers; the count, or `None` if
    /// the bucket is gone. An unfinished upload's parts are billed storage until aborted.
    async fn abort_uploads(&self, name: &str) -> Result<Option<usize>, StackError> {
        let s3 = &self.clients.s3;
        let mut aborted = 0usize;
        let (mut key_marker, mut upload_id_marker) = (None::<String>, None::<String>);
        loop {
            let listing = s3
                .list_multipart_uploads()
                .bucket(name)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(upload_id_marker.clone())
                .send()
                .await;
            let Some(page) = unless_gone("s3:ListBucketMultipartUploads", listing)? else {
                return Ok(None);
            };
            for upload in page.uploads() {
                let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let answer = s3
                    .abort_multipart_upload()
                    .bucket(name)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await;
                // NoSuchUpload: completed or aborted since it was listed.
                match answer {
                    Ok(_) => aborted += 1,
                    Err(err) if code_of(&err) == Some("NoSuchUpload") => {}
                    Err(err) => return Err(sdk_error("s3:AbortMultipartUpload", err)),
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(Some(aborted));
            }
            let next = (
                page.next_key_marker().map(str::to_owned),
                page.next_upload_id_marker().map(str::to_owned),
            );
            if next.0.is_none() || next == (key_marker.clone(), upload_id_marker.clone()) {
                return Err(StackError::Aws {
                    action: "s3:ListBucketMultipartUploads".into(),
                    message: format!("{name}: a truncated page without a new marker"),
                });
            }
            (key_marker, upload_id_marker) = next;
        }
    }

    async fn table(&self, name: &str) -> Result<Deleted, StackError> {
        let answer = self
            .clients
            .dynamodb
            .delete_table()
            .table_name(name)
            .send()
            .await;
        deleted("dynamodb:DeleteTable", answer, "deleted")
    }

    async fn function(&self, name: &str) -> Result<Deleted, StackError> {
        let answer = self
            .clients
            .lambda
            .delete_function()
            .function_name(name)
            .send()
            .await;
        deleted("lambda:DeleteFunction", answer, "deleted")
    }

    async fn mapping(&self, uuid: &str) -> Result<Deleted, StackError> {
        let answer = self
            .clients
            .lambda
            .delete_event_source_mapping()
            .uuid(uuid)
            .send()
            .await;
        deleted("lambda:DeleteEventSourceMapping", answer, "deleted")
    }

    /// Deletes the API with its routes, integrations and stages.
    async fn http_api(&self, id: &str) -> Result<Deleted, StackError> {
        let answer = self.clients.apigateway.delete_api().api_id(id).send().await;
        deleted("apigateway:DeleteApi", answer, "deleted")
    }

    /// Terminates the instance and waits until it is terminated: its security group and
    /// instance profile cannot go before.
    async fn instance(&self, id: &str) -> Result<Deleted, StackError> {
        let ec2 = &self.clients.ec2;
        let answer = ec2.terminate_instances().instance_ids(id).send().await;
        if unless_gone("ec2:TerminateInstances", answer)?.is_none() {
            return Ok(Deleted::AlreadyGone);
        }
        let patience = self.clients.patience(Duration::from_secs(600));
        let deadline = Instant::now() + patience;
        loop {
            let state = ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|err| sdk_error("ec2:DescribeInstances", err))?
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find_map(|i| i.state().and_then(|s| s.name()).cloned());
            if matches!(
                state,
                None | Some(aws_sdk_ec2::types::InstanceStateName::Terminated)
            ) {
                return Ok(Deleted::Now("terminated".into()));
            }
            if Instant::now() > deadline {
                return Err(StackError::Timeout {
                    what: format!("instance {id} terminating"),
                    after: patience,
                });
            }
            tokio::time::sleep(self.clients.poll_pause(Duration::from_secs(5))).await;
        }
    }

    /// Deletes the group, retrying while EC2 still sees it in use (a terminated instance's
    /// network interface lingers for a while on AWS).
    async fn security_group(&self, id: &str) -> Result<Deleted, StackError> {
        let patience = self.clients.patience(Duration::from_secs(300));
        let deadline = Instant::now() + patience;
        loop {
            match self
                .clients
                .ec2
                .delete_security_group()
                .group_id(id)
                .send()
                .await
            {
                Ok(_) => return Ok(Deleted::Now("deleted".into())),
                Err(err) if is_not_found(&err) => return Ok(Deleted::AlreadyGone),
                Err(err)
                    if code_of(&err) == Some("DependencyViolation")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Err(err) => return Err(sdk_error("ec2:DeleteSecurityGroup", err)),
            }
        }
    }

    async fn instance_profile(&self, name: &str) -> Result<Deleted, StackError> {
        let iam = &self.clients.iam;
        let answer = iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await;
        let Some(profile) = unless_gone("iam:GetInstanceProfile", answer)? else {
            return Ok(Deleted::AlreadyGone);
        };
        for role in profile
            .instance_profile()
            .map(|p| p.roles())
            .unwrap_or_default()
        {
            let answer = iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role.role_name())
                .send()
                .await;
            unless_gone("iam:RemoveRoleFromInstanceProfile", answer)?;
        }
        let answer = iam
            .delete_instance_profile()
            .instance_profile_name(name)
            .send()
            .await;
        deleted(
            "iam:DeleteInstanceProfile",
            answer,
            "roles removed, deleted",
        )
    }

    /// Deletes the role's inline policies, detaches its managed ones, leaves any instance
    /// profile that still holds it, then deletes it.
    async fn role(&self, name: &str) -> Result<Deleted, StackError> {
        let iam = &self.clients.iam;
        let answer = iam.list_role_policies().role_name(name).send().await;
        let Some(inline) = unless_gone("iam:ListRolePolicies", answer)? else {
            return Ok(Deleted::AlreadyGone);
        };
        let inline = inline.policy_names().to_vec();
        for policy in &inline {
            let answer = iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await;
            unless_gone("iam:DeleteRolePolicy", answer)?;
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|err| sdk_error("iam:ListAttachedRolePolicies", err))?;
        for policy in attached.attached_policies() {
            let _ = iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(policy.policy_arn().unwrap_or_default())
                .send()
                .await
                .map_err(|err| sdk_error("iam:DetachRolePolicy", err))?;
        }
        if let Ok(profiles) = iam
            .list_instance_profiles_for_role()
            .role_name(name)
            .send()
            .await
        {
            for profile in profiles.instance_profiles() {
                let _ = iam
                    .remove_role_from_instance_profile()
                    .instance_profile_name(profile.instance_profile_name())
                    .role_name(name)
                    .send()
                    .await;
            }
        }
        deleted(
            "iam:DeleteRole",
            iam.delete_role().role_name(name).send().await,
            &format!(
                "{} policies removed, deleted",
                inline.len() + attached.attached_policies().len()
            ),
        )
    }

    async fn log_group(&self, name: &str) -> Result<Deleted, StackError> {
        let answer = self
            .clients
            .logs
            .delete_log_group()
            .log_group_name(name)
            .send()
            .await;
        deleted("logs:DeleteLogGroup", answer, "deleted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_last_modified_reads_with_its_colonless_offset() {
        assert_eq!(
            lambda_timestamp_s("2026-11-29T18:00:00.000+0000"),
            Some(1_795_975_200)
        );
        assert_eq!(
            lambda_timestamp_s("2026-11-29T19:30:00.000+0130"),
            Some(1_795_975_200)
        );
        assert_eq!(
            lambda_timestamp_s("2026-11-29T18:00:00.123456000Z"),
            Some(1_795_975_200)
        );
        assert_eq!(lambda_timestamp_s("yesterday"), None);
        assert_eq!(lambda_timestamp_s(""), None);
    }
}
