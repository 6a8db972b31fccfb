//! `status`: every resource of a stack with its live state, the server's health, the
//! instance's uptime and TTL, and what the stack costs.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::cost::{CostEstimate, estimate};
use super::down::{FoundResource, ResourceKind, Scope, inventory};
use super::error::{StackError, sdk_error};
use super::names::{StackId, StackNames};
use super::state::StackState;
use super::target::StackClients;
use hybridlab_wire::launch::user_data_failure;
use hybridlab_wire::tags::ENDPOINT_TAG;
use hybridlab_wire::tls::CertFingerprint;

#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    pub kind: ResourceKind,
    pub name: String,
    /// `present`, `missing`, or the service's own state (`running`, `Active`, ...).
    pub state: String,
    /// Seconds since the service made it (a function: since its last deployment); `None`
    /// when missing or when the service keeps no such time (security groups).
    pub age_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub id: String,
    pub state: String,
    pub instance_type: String,
    pub uptime_s: u64,
    /// Until the instance terminates itself.
    pub ttl_left_s: Option<u64>,
    /// When cloud-init says the user-data failed: the last lines it printed (from the
    /// instance's console output). The instance runs, but its server never will.
    pub user_data_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub endpoint: String,
    /// The SHA-256 fingerprint of the server's TLS certificate that `up` made (from this
    /// machine's state), which the health check pins: what a student compares in the browser.
    pub cert_sha256: Option<String>,
    pub healthy: bool,
    /// The server's `/health`, or why it did not answer.
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackStatus {
    pub stack: StackId,
    pub target: String,
    pub region: String,
    pub created_at: Option<String>,
    pub resources: Vec<ResourceStatus>,
    pub instance: Option<InstanceStatus>,
    pub server: Option<ServerStatus>,
    pub cost: CostEstimate,
}

impl StackStatus {
    /// Whether every resource exists and the server is healthy.
    pub fn complete(&self) -> bool {
        self.resources.iter().all(|r| r.state != "missing")
            && self.server.as_ref().is_some_and(|s| s.healthy)
    }

    /// Whether nothing of the stack exists.
    pub fn gone(&self) -> bool {
        self.resources.iter().all(|r| r.state == "missing")
    }
}

/// Every stack on the target: those with a state file and those found by name or tag.
pub async fn list_stacks(clients: &StackClients) -> Result<Vec<StackId>, StackError> {
    let mut ids: Vec<StackId> = StackState::list(&clients.state_key())
        .into_iter()
        .map(|s| s.stack_id)
        .collect();
    ids.extend(
        inventory(clients, &Scope::All)
            .await?
            .into_iter()
            .map(|r| r.stack),
    );
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The status of each of `ids`, in order.
pub async fn statuses(
    clients: &StackClients,
    ids: &[StackId],
) -> Result<Vec<StackStatus>, StackError> {
    let mut statuses = Vec::with_capacity(ids.len());
    for id in ids {
        statuses.push(status(clients, id).await?);
    }
    Ok(statuses)
}

pub async fn status(clients: &StackClients, id: &StackId) -> Result<StackStatus, StackError> {
    let names = StackNames::new(id);
    let state = StackState::load(&clients.state_key(), id);
    let found = inventory(clients, &Scope::Stack(id.clone())).await?;
    let present =
        |kind: ResourceKind, name: &str| found.iter().any(|r| r.kind == kind && r.id == name);
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    let age = |kind: ResourceKind, id: &str| {
        found
            .iter()
            .find(|r| r.kind == kind && r.id == id)
            .and_then(|r| r.created_s)
            .and_then(|created| u64::try_from(now_s - created).ok())
    };
    let of_kind = |kind: ResourceKind| {
        found
            .iter()
            .filter(|r| r.kind == kind)
            .collect::<Vec<&FoundResource>>()
    };
    let mut expected = vec![
        (ResourceKind::Bucket, &names.images_bucket),
        (ResourceKind::Bucket, &names.artifacts_bucket),
        (ResourceKind::Table, &names.table),
        (ResourceKind::LogGroup, &names.function_log_group),
        (ResourceKind::LogGroup, &names.server_log_group),
        (ResourceKind::Role, &names.lambda_role),
        (ResourceKind::Role, &names.server_role),
        (ResourceKind::InstanceProfile, &names.instance_profile),
        (ResourceKind::Function, &names.function),
    ];
    let pipeline = [
        (ResourceKind::Bucket, &names.uploads_bucket),
        (ResourceKind::Bucket, &names.processed_bucket),
        (ResourceKind::LogGroup, &names.resizer_log_group),
        (ResourceKind::Role, &names.resizer_role),
        (ResourceKind::Function, &names.resizer),
    ];
    // The pipeline's resources are expected where the stack was made with it, and shown
    // wherever one of them exists (a stack whose state file is lost still lists them).
    let with_pipeline = state.as_ref().is_some_and(|s| s.settings.pipeline)
        || pipeline.iter().any(|(kind, name)| present(*kind, name));
    if with_pipeline {
        expected.extend(pipeline);
    }
    let jobs = [
        (ResourceKind::Bucket, &names.jobs_bucket),
        (ResourceKind::Table, &names.jobs_table),
        (ResourceKind::LogGroup, &names.submit_log_group),
        (ResourceKind::LogGroup, &names.launcher_log_group),
        (ResourceKind::Role, &names.submit_role),
        (ResourceKind::Role, &names.launcher_role),
        (ResourceKind::Role, &names.worker_role),
        (ResourceKind::InstanceProfile, &names.worker_profile),
        (ResourceKind::Function, &names.submit),
        (ResourceKind::Function, &names.launcher),
    ];
    let with_jobs = state.as_ref().is_some_and(|s| s.settings.jobs)
        || jobs.iter().any(|(kind, name)| present(*kind, name));
    if with_jobs {
        expected.extend(jobs);
    }
    let mut resources: Vec<ResourceStatus> = expected
        .into_iter()
        .map(|(kind, name)| ResourceStatus {
            kind,
            name: name.clone(),
            state: if present(kind, name) {
                "present"
            } else {
                "missing"
            }
            .into(),
            age_s: age(kind, name),
        })
        .collect();
    let groups = of_kind(ResourceKind::SecurityGroup);
    resources.push(ResourceStatus {
        kind: ResourceKind::SecurityGroup,
        name: groups.first().map_or_else(
            || names.security_group.clone(),
            |g| format!("{} ({})", names.security_group, g.id),
        ),
        state: if groups.is_empty() {
            "missing"
        } else {
            "present"
        }
        .into(),
        age_s: None,
    });
    if with_jobs {
        // The API and the mapping are known by their ids; a stack has one of each.
        for (kind, name) in [
            (ResourceKind::HttpApi, &names.jobs_api),
            (ResourceKind::EventSourceMapping, &names.launcher),
        ] {
            let found = of_kind(kind);
            resources.push(ResourceStatus {
                kind,
                name: found
                    .first()
                    .map_or_else(|| name.clone(), |r| format!("{name} ({})", r.id)),
                state: if found.is_empty() {
                    "missing"
                } else {
                    "present"
                }
                .into(),
                age_s: found
                    .first()
                    .and_then(|r| r.created_s)
                    .and_then(|created| u64::try_from(now_s - created).ok()),
            });
        }
        // Workers come and go with their jobs: listed while they run, never expected.
        for worker in of_kind(ResourceKind::Worker) {
            resources.push(ResourceStatus {
                kind: ResourceKind::Worker,
                name: worker.id.clone(),
                state: "present".into(),
                age_s: worker
                    .created_s
                    .and_then(|created| u64::try_from(now_s - created).ok()),
            });
        }
    }
    // Only the stack's own status needs the table's age, which ListTables does not give: read
    // here, not in the inventory that `down` and the listing of stacks also use.
    if let Some(table) = resources
        .iter_mut()
        .find(|r| r.kind == ResourceKind::Table && r.state == "present")
        && let Ok(described) = clients
            .dynamodb
            .describe_table()
            .table_name(&names.table)
            .send()
            .await
    {
        table.age_s = described
            .table()
            .and_then(|t| t.creation_date_time())
            .and_then(|created| u64::try_from(now_s - created.secs()).ok());
    }
    for function in resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::Function && r.state == "present")
    {
        if let Ok(config) = clients
            .lambda
            .get_function_configuration()
            .function_name(&function.name)
            .send()
            .await
        {
            function.state = config
                .state()
                .map_or_else(|| "present".into(), |s| s.as_str().to_owned());
        }
    }

    let mut instance = None;
    let mut endpoint = None;
    let ttl = state.as_ref().map(|s| s.settings.ttl_seconds);
    if let Some(found) = of_kind(ResourceKind::Instance).first() {
        let described = clients
            .ec2
            .describe_instances()
            .instance_ids(&found.id)
            .send()
            .await
            .map_err(|err| sdk_error("ec2:DescribeInstances", err))?;
        if let Some(described) = described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
        {
            let uptime = described
                .launch_time()
                .and_then(|t| SystemTime::try_from(*t).ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or(Duration::ZERO)
                .as_secs();
            instance = Some(InstanceStatus {
                id: found.id.clone(),
                state: described
                    .state()
                    .and_then(|s| s.name())
                    .map_or("unknown", |n| n.as_str())
                    .to_owned(),
                instance_type: described
                    .instance_type()
                    .map_or("unknown", |t| t.as_str())
                    .to_owned(),
                uptime_s: uptime,
                ttl_left_s: ttl.map(|ttl| ttl.saturating_sub(uptime)),
                user_data_error: user_data_error(clients, &found.id).await,
            });
            endpoint = if clients.is_sandbox() {
                described
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(ENDPOINT_TAG))
                    .and_then(|t| t.value())
                    .map(str::to_owned)
            } else {
                let port = state.as_ref().map_or(8080, |s| s.settings.server_port);
                described
                    .public_ip_address()
                    .map(|ip| format!("https://{ip}:{port}"))
            };
        }
    }
    resources.push(ResourceStatus {
        kind: ResourceKind::Instance,
        name: instance.as_ref().map_or_else(
            || names.instance.clone(),
            |i| format!("{} ({})", names.instance, i.id),
        ),
        state: instance
            .as_ref()
            .map_or_else(|| "missing".to_owned(), |i| i.state.clone()),
        age_s: instance.as_ref().map(|i| i.uptime_s),
    });

    let server = match endpoint {
        Some(endpoint) => {
            let pin = state.as_ref().and_then(|s| s.outputs.cert_sha256.clone());
            Some(server_status(endpoint, pin).await)
        }
        None => None,
    };
    let instance_type = instance
        .as_ref()
        .map(|i| i.instance_type.clone())
        .or_else(|| state.as_ref().map(|s| s.settings.instance_type.clone()))
        .unwrap_or_else(|| "t3.micro".into());
    let cost = match &instance {
        Some(instance) => estimate(
            &instance_type,
            state.as_ref().and_then(|s| {
                super::plan::is_burstable(&instance_type).then_some(s.settings.cpu_credits)
            }),
            instance.uptime_s as f64,
        ),
        None => CostEstimate {
            per_hour_usd: 0.0,
            so_far_usd: 0.0,
            basis: "no instance runs; per-use services only".into(),
        },
    };
    Ok(StackStatus {
        stack: id.clone(),
        target: clients.describe(),
        region: clients.region.clone(),
        created_at: state.map(|s| s.created_at),
        resources,
        instance,
        server,
        cost,
    })
}

/// What the instance's console output says of its user-data, if it failed.
async fn user_data_error(clients: &StackClients, instance_id: &str) -> Option<String> {
    user_data_failure(&console_output(clients, instance_id).await?)
}

/// The instance's console output (what its boot and user-data printed), if EC2 has any yet.
pub(super) async fn console_output(clients: &StackClients, instance_id: &str) -> Option<String> {
    let answer = clients
        .ec2
        .get_console_output()
        .instance_id(instance_id)
        .latest(true)
        .send()
        .await
        .ok()?;
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        answer.output()?.trim(),
    )
    .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

async fn server_status(endpoint: String, cert_sha256: Option<String>) -> ServerStatus {
    let unhealthy = |detail: String| ServerStatus {
        endpoint: endpoint.clone(),
        cert_sha256: cert_sha256.clone(),
        healthy: false,
        detail: detail.into(),
    };
    // Only the certificate `up` made is trusted, as the function trusts it.
    let Some(pin) = cert_sha256.as_deref().and_then(CertFingerprint::parse) else {
        return unhealthy(
            "not checked: this machine's state has no certificate fingerprint for the server \
             (run `hybridlab up` here to refresh it)"
                .into(),
        );
    };
    let http = match super::up::pinned_http(pin, Duration::from_secs(3)) {
        Ok(http) => http,
        Err(err) => return unhealthy(err.to_string()),
    };
    let answer = http
        .get(format!("{endpoint}/health"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => match response
            .bytes()
            .await
            .map_err(|err| err.to_string())
            .and_then(|body| {
                serde_json::from_slice::<serde_json::Value>(&body).map_err(|err| err.to_string())
            }) {
            Ok(health) => ServerStatus {
                healthy: health["status"] == "ok",
                detail: health,
                endpoint,
                cert_sha256,
            },
            Err(err) => unhealthy(err),
        },
        Ok(response) => unhealthy(format!("HTTP {}", response.status())),
        Err(err) if hybridlab_wire::tls::is_untrusted_certificate(&err) => unhealthy(
            "the server presented a certificate other than the one `up` made; do not trust it"
                .into(),
        ),
        Err(err) => unhealthy(err.to_string()),
    }
}
