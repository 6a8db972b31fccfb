//! Materialises EC2 instances: every running instance tagged `hybridlab:role=image-server`
//! becomes a local `hybridlab-ec2-server` process, started from the binary and environment
//! file its user-data names in S3, exactly what the real instance's bootstrap fetches, and
//! fetched as it fetches them: with the instance's role, through the edge (no role, or one
//! that may not read them, and no server starts; the instance's console output says why). The
//! process is restarted if it crashes (on another port if another process took its own),
//! stopped with every process it started when the instance stops or terminates, its
//! output goes to its CloudWatch log group, and its address is tagged on the instance as
//! `hybridlab:endpoint` where clients look for it. The instance's TTL is honoured too.
//!
//! Each instance has its own metadata service (see [`super::imds`]), which the server reaches
//! through `AWS_EC2_METADATA_SERVICE_ENDPOINT` and gets its instance profile's role from; the
//! server is given no access key of its own, so the SDK's default chain goes through IMDS as
//! on EC2.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{
    Filter, HttpTokensState, Instance, InstanceAttributeName, InstanceMetadataEndpointState,
    InstanceStateName, Tag,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::oneshot;

use super::imds::{InstanceMetadata, InstanceProfile, MetadataService};
use super::logs::{LogShipper, LogStream, now_ms};
use super::principals::{PrincipalTable, RoleDirectory};
use super::spawner::{ProcessGroup, Spawner};
use super::timing::Settling;
use hybridlab_wire::launch::{ServerLaunch, parse_env_file};
use hybridlab_wire::tags::{ENDPOINT_TAG, ROLE_IMAGE_SERVER, ROLE_TAG};
use hybridlab_wire::tls::TLS_CERT_ENV;

const RECONCILE_EVERY: Duration = Duration::from_millis(500);

/// One materialised instance.
#[derive(Debug)]
struct ServerProcess {
    /// Changes if the server has to move to another port (see [`supervise`]).
    endpoint: Arc<Mutex<String>>,
    /// The server's current process id (it changes when the supervisor restarts it).
    pid: Arc<AtomicU32>,
    /// When the instance terminates itself, as its scheduled shutdown would on AWS.
    expires: Option<SystemTime>,
    /// The instance's metadata service: `None` when its `HttpEndpoint` is disabled.
    metadata: Option<(String, tokio::task::JoinHandle<()>)>,
    /// Dropping it stops the supervisor and the process.
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some((_, server)) = &self.metadata {
            server.abort();
        }
    }
}

/// An instance the sandbox runs, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MaterializedServer {
    pub instance_id: String,
    pub endpoint: String,
    /// 0 while the server is being (re)started.
    pub pid: u32,
    /// Where the instance's metadata service (IMDS) listens; empty if it is disabled.
    pub metadata_endpoint: String,
}

/// Settings of the EC2 host.
#[derive(Debug, Clone)]
pub struct Ec2Settings {
    pub edge_endpoint: String,
    pub state_dir: PathBuf,
    /// Which instances still boot (the edge records each launch).
    pub settling: Arc<Settling>,
    /// Each instance's console output, which the edge answers `GetConsoleOutput` with.
    pub consoles: Arc<ConsoleOutputs>,
}

/// What each instance's boot printed, as EC2's `GetConsoleOutput` returns it: here the
/// user-data's part of cloud-init's output.
#[derive(Debug, Default)]
pub struct ConsoleOutputs {
    by_instance: Mutex<HashMap<String, String>>,
}

impl ConsoleOutputs {
    fn append(&self, id: &str, line: &str) {
        if let Ok(mut outputs) = self.by_instance.lock() {
            let output = outputs.entry(id.to_owned()).or_default();
            output.push_str(line);
            output.push('\n');
        }
    }

    /// The console output of instance `id`, if the sandbox booted it.
    pub fn of(&self, id: &str) -> Option<String> {
        self.by_instance.lock().ok()?.get(id).cloned()
    }
}

/// EC2's `GetConsoleOutput` answer: the output base64-encoded, as EC2 sends it.
pub fn console_output_answer(id: &str, output: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetConsoleOutputResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{}</requestId><instanceId>{id}</instanceId><timestamp>{}</timestamp><output>{}</output></GetConsoleOutputResponse>",
        uuid::Uuid::new_v4(),
        hybridlab_wire::now_rfc3339(),
        STANDARD.encode(output)
    )
}

/// What the user-data's `aws s3 cp` prints when it cannot fetch, as the AWS CLI prints it.
fn download_failed(reason: &str) -> String {
    format!("fatal error: {reason}")
}

/// How materialising an instance ended.
enum Boot {
    /// Its server runs.
    Serving(ServerProcess),
    /// Not a hybridlab launch: left alone.
    Foreign,
    /// Its user-data failed (it is never run again, as cloud-init runs it once); the
    /// console output says why.
    Failed,
}

/// Keeps local server processes in line with the instances moto says are running.
#[derive(Debug)]
pub struct Ec2Host {
    ec2: aws_sdk_ec2::Client,
    logs: LogShipper,
    spawner: Spawner,
    principals: Arc<PrincipalTable>,
    roles: RoleDirectory,
    /// Which instances still boot: their user-data runs once they are `running`.
    settling: Arc<Settling>,
    settings: Ec2Settings,
    servers: Mutex<HashMap<String, ServerProcess>>,
    /// Instances whose user-data is not a hybridlab launch, or failed: never looked at again.
    foreign: Mutex<HashSet<String>>,
}

impl Ec2Host {
    pub(crate) fn new(
        ec2: aws_sdk_ec2::Client,
        logs: LogShipper,
        spawner: Spawner,
        principals: Arc<PrincipalTable>,
        roles: RoleDirectory,
        settings: Ec2Settings,
    ) -> Self {
        Self {
            ec2,
            logs,
            spawner,
            principals,
            roles,
            settling: settings.settling.clone(),
            settings,
            servers: Mutex::new(HashMap::new()),
            foreign: Mutex::new(HashSet::new()),
        }
    }

    /// Every materialised instance: its id, its server's endpoint and process id.
    pub fn servers(&self) -> Vec<MaterializedServer> {
        self.servers
            .lock()
            .map(|servers| {
                servers
                    .iter()
                    .map(|(id, server)| MaterializedServer {
                        instance_id: id.clone(),
                        endpoint: server
                            .endpoint
                            .lock()
                            .map(|endpoint| endpoint.clone())
                            .unwrap_or_default(),
                        pid: server.pid.load(Ordering::Acquire),
                        metadata_endpoint: server
                            .metadata
                            .as_ref()
                            .map(|(endpoint, _)| endpoint.clone())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reconciles until `stop` resolves, then stops every server.
    pub async fn run(self: Arc<Self>, mut stop: oneshot::Receiver<()>) {
        let mut ticker = tokio::time::interval(RECONCILE_EVERY);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticker.tick() => {
                    if let Err(err) = self.reconcile().await {
                        tracing::warn!(error = %err, "EC2 reconcile failed");
                    }
                }
            }
        }
        let ids: Vec<String> = self
            .servers
            .lock()
            .map(|mut servers| servers.drain().map(|(id, _)| id).collect())
            .unwrap_or_default();
        for id in ids {
            self.forget_disk(&id);
        }
    }

    /// Removes the directory instance `id` ran from (unlinking the binary of a server still
    /// shutting down is fine: the process keeps its open file).
    fn forget_disk(&self, id: &str) {
        let dir = self.settings.state_dir.join("instances").join(id);
        if let Err(err) = std::fs::remove_dir_all(&dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(instance = %id, error = %err, "cannot remove the instance's directory");
        }
    }

    async fn reconcile(&self) -> Result<(), String> {
        let output = self
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{ROLE_TAG}"))
                    .values(ROLE_IMAGE_SERVER)
                    .build(),
            )
            .send()
            .await
            .map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())?;
        let mut running = Vec::new();
        for reservation in output.reservations() {
            for instance in reservation.instances() {
                let Some(id) = instance.instance_id() else {
                    continue;
                };
                let state = instance.state().and_then(|state| state.name());
                if state != Some(&InstanceStateName::Running) {
                    continue;
                }
                let launched = instance
                    .launch_time()
                    .and_then(|time| SystemTime::try_from(*time).ok());
                running.push((
                    id.to_owned(),
                    launched,
                    LaunchedInstance::of(instance, reservation.owner_id()),
                ));
            }
        }
        let running_ids: HashSet<String> = running.iter().map(|(id, ..)| id.clone()).collect();
        let mut stopped = Vec::new();
        if let Ok(mut servers) = self.servers.lock() {
            servers.retain(|id, _| {
                let keep = running_ids.contains(id);
                if !keep {
                    tracing::info!(instance = %id, "instance no longer running: stopping its server");
                    stopped.push(id.clone());
                }
                keep
            });
        }
        // A terminated instance's disk goes with it: its copy of the server binary (tens of
        // MB each) would otherwise pile up for as long as the sandbox lives.
        for id in stopped {
            self.forget_disk(&id);
        }
        let now = SystemTime::now();
        let expired: Vec<String> = self
            .servers
            .lock()
            .map(|servers| {
                servers
                    .iter()
                    .filter(|(_, server)| server.expires.is_some_and(|at| at <= now))
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for id in expired {
            tracing::info!(instance = %id, "TTL reached: terminating the instance");
            let _ = self
                .ec2
                .terminate_instances()
                .instance_ids(&id)
                .send()
                .await;
        }
        for (id, launched, described) in running {
            let known = self
                .servers
                .lock()
                .map(|s| s.contains_key(&id))
                .unwrap_or(true)
                || self.foreign.lock().map(|f| f.contains(&id)).unwrap_or(true);
            // Still booting: its user-data has not run yet.
            if known || self.settling.is_booting(&id, std::time::Instant::now()) {
                continue;
            }
            match self.materialize(&id, launched, &described).await {
                Ok(Boot::Serving(server)) => {
                    if let Ok(mut servers) = self.servers.lock() {
                        servers.insert(id, server);
                    }
                }
                Ok(Boot::Foreign | Boot::Failed) => {
                    if let Ok(mut foreign) = self.foreign.lock() {
                        foreign.insert(id);
                    }
                }
                Err(err) => {
                    tracing::warn!(instance = %id, error = %err, "cannot start the instance's server yet")
                }
            }
        }
        Ok(())
    }

    async fn launch_of(&self, id: &str) -> Result<Option<ServerLaunch>, String> {
        let attribute = self
            .ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::UserData)
            .send()
            .await
            .map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())?;
        let Some(encoded) = attribute.user_data().and_then(|value| value.value()) else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|err| err.to_string())?;
        Ok(ServerLaunch::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// An S3 client that signs as the instance's role (a session named after the instance, as
    /// IMDS hands out) and goes through the edge, where IAM is enforced.
    async fn s3_as(
        &self,
        role: &super::principals::Role,
        id: &str,
        region: &str,
    ) -> aws_sdk_s3::Client {
        let session = self
            .principals
            .issue(role, id, Duration::from_secs(15 * 60));
        let credentials = aws_sdk_s3::config::Credentials::new(
            session.access_key_id.clone(),
            session.secret_access_key.clone(),
            Some(session.session_token.clone()),
            Some(session.expires),
            "instance-role",
        );
        let config = super::sdk_config_as(&self.settings.edge_endpoint, region, credentials).await;
        super::s3_client(&config)
    }

    /// The instance's metadata, its profile's role looked up in IAM.
    async fn metadata_of(
        &self,
        id: &str,
        launched: Option<SystemTime>,
        described: &LaunchedInstance,
        region: &str,
    ) -> Result<InstanceMetadata, String> {
        let profile = match &described.profile {
            Some((arn, profile_id)) => {
                let role = self.roles.instance_profile_role(arn).await?;
                if role.is_none() {
                    tracing::warn!(instance = %id, profile = %arn, "the instance profile has no role: the instance gets no credentials");
                }
                Some(InstanceProfile {
                    arn: arn.clone(),
                    id: profile_id.clone(),
                    role,
                })
            }
            None => None,
        };
        Ok(InstanceMetadata {
            instance_id: id.to_owned(),
            account: described.account.clone(),
            region: region.to_owned(),
            availability_zone: described.availability_zone.clone(),
            instance_type: described.instance_type.clone(),
            image_id: described.image_id.clone(),
            private_ip: described.private_ip.clone(),
            launched,
            profile,
            tokens_required: described.tokens_required,
        })
    }

    async fn materialize(
        &self,
        id: &str,
        launched: Option<SystemTime>,
        described: &LaunchedInstance,
    ) -> Result<Boot, String> {
        let Some(launch) = self.launch_of(id).await? else {
            return Ok(Boot::Foreign);
        };
        let metadata = if described.metadata_enabled {
            Some(
                self.metadata_of(id, launched, described, &launch.region)
                    .await?,
            )
        } else {
            None
        };
        // The user-data fetches the server with the instance's role (the AWS CLI finds it
        // through IMDS): a role that may not read the artifacts, or no role, boots no server.
        let role = metadata
            .as_ref()
            .and_then(|metadata| metadata.profile.as_ref())
            .and_then(|profile| profile.role.clone());
        let fetched = match &role {
            Some(role) => {
                let s3 = self.s3_as(role, id, &launch.region).await;
                let binary =
                    super::fetch_object(&s3, &launch.artifact_bucket, &launch.binary_key).await;
                match binary {
                    Ok(binary) => {
                        super::fetch_object(&s3, &launch.artifact_bucket, &launch.env_key)
                            .await
                            .map(|env_file| (binary, env_file))
                    }
                    Err(reason) => Err(reason),
                }
            }
            None => Err("Unable to locate credentials".to_owned()),
        };
        let consoles = &self.settings.consoles;
        consoles.append(
            id,
            &format!(
                "cloud-init: running the user-data (aws s3 cp s3://{}/{} /opt/hybridlab/hybridlab-ec2-server)",
                launch.artifact_bucket, launch.binary_key
            ),
        );
        let (binary, env_file) = match fetched {
            Ok(fetched) => fetched,
            Err(reason) => {
                let line = download_failed(&reason);
                consoles.append(id, &line);
                consoles.append(
                    id,
                    "cloud-init: the user-data exited with status 1; Failed to run module scripts_user",
                );
                tracing::warn!(instance = %id, "{line}: the instance runs without its server");
                return Ok(Boot::Failed);
            }
        };
        consoles.append(
            id,
            &format!(
                "download: s3://{}/{} to /opt/hybridlab/hybridlab-ec2-server",
                launch.artifact_bucket, launch.binary_key
            ),
        );
        let environment = parse_env_file(&String::from_utf8_lossy(&env_file));
        let dir = self.settings.state_dir.join("instances").join(id);
        std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let path = dir.join("hybridlab-ec2-server");
        std::fs::write(&path, &binary).map_err(|err| format!("{}: {err}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|err| format!("{}: {err}", path.display()))?;
        }
        let port = unused_port().map_err(|err| err.to_string())?;
        let role_name = role.as_ref().map(|role| role.name().to_owned());
        // Served once nothing else can fail: a task left behind would serve it forever.
        let metadata = match metadata {
            Some(metadata) => {
                let service = MetadataService::new(metadata, self.principals.clone());
                let (address, server) = super::imds::serve(service)
                    .await
                    .map_err(|err| format!("cannot serve the instance's metadata: {err}"))?;
                Some((format!("http://{address}"), server))
            }
            None => None,
        };
        let scheme = scheme_of(&environment);
        let endpoint = endpoint_of(scheme, port);
        let shared_endpoint = Arc::new(Mutex::new(endpoint.clone()));
        let (stop, stopped) = oneshot::channel();
        let pid = Arc::new(AtomicU32::new(0));
        tag_endpoint(&self.ec2, id, &endpoint).await;
        tokio::spawn(supervise(
            Supervised {
                instance_id: id.to_owned(),
                binary: path,
                environment,
                port,
                edge_endpoint: self.settings.edge_endpoint.clone(),
                metadata_endpoint: metadata.as_ref().map(|(endpoint, _)| endpoint.clone()),
                launch: launch.clone(),
                role_name: role_name.clone(),
            },
            Supervision {
                logs: self.logs.clone(),
                spawner: self.spawner.clone(),
                ec2: self.ec2.clone(),
                pid: pid.clone(),
                endpoint: shared_endpoint.clone(),
            },
            stopped,
        ));
        tracing::info!(instance = %id, endpoint = %endpoint, "instance materialised");
        consoles.append(id, "cloud-init: hybridlab.service started");
        let expires = launched.map(|at| at + Duration::from_secs(launch.ttl_seconds));
        Ok(Boot::Serving(ServerProcess {
            endpoint: shared_endpoint,
            pid,
            expires,
            metadata,
            stop: Some(stop),
        }))
    }
}

/// What `DescribeInstances` says of an instance that its metadata repeats.
#[derive(Debug, Clone, Default)]
struct LaunchedInstance {
    account: String,
    availability_zone: String,
    instance_type: String,
    image_id: String,
    private_ip: String,
    /// The instance profile's ARN and id.
    profile: Option<(String, String)>,
    /// `MetadataOptions.HttpTokens` is `required`.
    tokens_required: bool,
    /// `MetadataOptions.HttpEndpoint` is not `disabled`.
    metadata_enabled: bool,
}

impl LaunchedInstance {
    fn of(instance: &Instance, owner: Option<&str>) -> Self {
        let options = instance.metadata_options();
        Self {
            account: owner.unwrap_or(crate::SANDBOX_ACCOUNT).to_owned(),
            availability_zone: instance
                .placement()
                .and_then(|placement| placement.availability_zone())
                .unwrap_or_default()
                .to_owned(),
            instance_type: instance
                .instance_type()
                .map(|kind| kind.as_str().to_owned())
                .unwrap_or_default(),
            image_id: instance.image_id().unwrap_or_default().to_owned(),
            private_ip: instance.private_ip_address().unwrap_or_default().to_owned(),
            profile: instance.iam_instance_profile().and_then(|profile| {
                Some((
                    profile.arn()?.to_owned(),
                    profile.id().unwrap_or_default().to_owned(),
                ))
            }),
            tokens_required: options.and_then(|options| options.http_tokens())
                == Some(&HttpTokensState::Required),
            metadata_enabled: options.and_then(|options| options.http_endpoint())
                != Some(&InstanceMetadataEndpointState::Disabled),
        }
    }
}

/// `https` when the server's environment gives it a certificate (as every stack's does), so
/// the tag says how to reach it, as an instance's address and port would on AWS.
fn scheme_of(environment: &[(String, String)]) -> &'static str {
    let has_certificate = environment
        .iter()
        .any(|(key, value)| key == TLS_CERT_ENV && !value.trim().is_empty());
    if has_certificate { "https" } else { "http" }
}

fn endpoint_of(scheme: &str, port: u16) -> String {
    format!("{scheme}://127.0.0.1:{port}")
}

/// A loopback port nothing listens on at this instant. The server binds it itself (an address
/// is all it can be told), so another process may take it first; [`supervise`] then moves the
/// server to another port.
fn unused_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether some other process listens on `port`, once the server meant to has exited. (The
/// standard library sets `SO_REUSEADDR`, so connections in TIME_WAIT do not count.)
fn taken(port: u16) -> bool {
    matches!(
        std::net::TcpListener::bind(("127.0.0.1", port)),
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse
    )
}

/// Tags the instance with the address clients reach its server at.
async fn tag_endpoint(ec2: &aws_sdk_ec2::Client, id: &str, endpoint: &str) {
    if let Err(err) = ec2
        .create_tags()
        .resources(id)
        .tags(Tag::builder().key(ENDPOINT_TAG).value(endpoint).build())
        .send()
        .await
    {
        tracing::warn!(instance = %id, error = %aws_sdk_ec2::error::DisplayErrorContext(&err), "cannot tag the instance's endpoint");
    }
}

/// What [`supervise`] shares with the host.
#[derive(Debug)]
struct Supervision {
    logs: LogShipper,
    spawner: Spawner,
    ec2: aws_sdk_ec2::Client,
    /// The server's current process id, 0 while it is being (re)started.
    pid: Arc<AtomicU32>,
    endpoint: Arc<Mutex<String>>,
}

#[derive(Debug)]
struct Supervised {
    instance_id: String,
    binary: PathBuf,
    environment: Vec<(String, String)>,
    port: u16,
    edge_endpoint: String,
    /// The instance's metadata service; `None` when its `HttpEndpoint` is disabled.
    metadata_endpoint: Option<String>,
    launch: ServerLaunch,
    /// The instance profile's role, whose permissions its CloudWatch agent ships logs with.
    role_name: Option<String>,
}

/// Runs the server, restarting it with a growing pause if it exits, until `stop`. A server
/// that exits because another process took its port between [`unused_port`] and its own bind
/// is restarted at once on a new port, and the instance's endpoint tag follows.
async fn supervise(
    mut process: Supervised,
    supervision: Supervision,
    mut stop: oneshot::Receiver<()>,
) {
    let Supervision {
        logs,
        spawner,
        ec2,
        pid,
        endpoint,
    } = supervision;
    let mut pause = Duration::from_millis(500);
    loop {
        let mut command = tokio::process::Command::new(&process.binary);
        command
            .env_clear()
            .envs(process.environment.iter().map(|(k, v)| (k, v)))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HYBRIDLAB_LISTEN", format!("127.0.0.1:{}", process.port))
            .env("HYBRIDLAB_ENDPOINT_URL", &process.edge_endpoint)
            // The lab's test images are served on loopback in the sandbox.
            .env("HYBRIDLAB_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("AWS_REGION", &process.launch.region)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // No access key: the SDK's default chain finds none in the environment or a profile
        // file (there is no HOME) and asks the instance's metadata service, as on EC2. With
        // the service disabled it must not try 169.254.169.254, which on a cloud machine is
        // the host's own.
        match &process.metadata_endpoint {
            Some(endpoint) => command.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint),
            None => command.env("AWS_EC2_METADATA_DISABLED", "true"),
        };
        let mut child = match spawner.spawn(command).await {
            Ok(child) => child,
            Err(err) => {
                tracing::error!(instance = %process.instance_id, error = %err, "cannot start the server");
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        pid.store(child.id().unwrap_or(0), Ordering::Release);
        let group = ProcessGroup::of(&child);
        let (line_sender, mut lines) = tokio::sync::mpsc::unbounded_channel();
        // The server's lines need no flush handshake: nothing waits for them.
        let _output = super::output::forward_output(&mut child, &line_sender);
        drop(line_sender);
        let stream = LogStream::new(&process.launch.log_group, &process.instance_id)
            .written_by(process.role_name.as_deref());
        {
            let logs = logs.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                while let Some(line) = lines.recv().await {
                    logs.send_batch(&stream, vec![line]);
                }
            });
        }
        let started = std::time::Instant::now();
        tokio::select! {
            _ = &mut stop => {
                // SIGTERM first, so the server drains its requests, then SIGKILL, to every
                // process of the unit, as systemd stops one (KillMode=control-group:
                // https://www.freedesktop.org/software/systemd/man/latest/systemd.kill.html).
                if let Some(group) = &group {
                    group.terminate();
                }
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                if let Some(group) = &group {
                    group.reap();
                }
                return;
            }
            status = child.wait() => {
                if let Some(group) = &group {
                    group.reap();
                }
                pid.store(0, Ordering::Release);
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                tracing::warn!(instance = %process.instance_id, status = %status, "the server exited; restarting it");
                logs.send_batch(&stream, vec![(
                    now_ms(),
                    format!("hybridlab sandbox: the server exited ({status}); restarting it"),
                )]);
            }
        }
        if taken(process.port) {
            match unused_port() {
                Ok(port) => {
                    let moved = endpoint_of(scheme_of(&process.environment), port);
                    tracing::warn!(instance = %process.instance_id, taken = process.port, endpoint = %moved, "another process took the server's port: moving it");
                    logs.send_batch(&stream, vec![(
                        now_ms(),
                        format!("hybridlab sandbox: port {} was taken by another process; the server moves to {moved}", process.port),
                    )]);
                    process.port = port;
                    if let Ok(mut endpoint) = endpoint.lock() {
                        endpoint.clone_from(&moved);
                    }
                    tag_endpoint(&ec2, &process.instance_id, &moved).await;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(instance = %process.instance_id, error = %err, "no loopback port is free");
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            pause = Duration::from_millis(500);
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the server: listens where `HYBRIDLAB_LISTEN` says, without
    /// `SO_REUSEADDR`, and exits with an error when it cannot, as the server does.
    const STAND_IN: &str = r#"
import os, socket
host, port = os.environ["HYBRIDLAB_LISTEN"].rsplit(":", 1)
server = socket.socket()
server.bind((host, int(port)))
server.listen()
while True:
    connection, _ = server.accept()
    connection.close()
"#;

    /// The Python the sandbox already needs for moto, by absolute path: servers run with a
    /// fixed `PATH`.
    fn python() -> PathBuf {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("python3"))
            .find(|candidate| candidate.is_file())
            .expect("python3 on PATH (the sandbox needs it for moto)")
    }

    /// Another process holds the port the server was given: the server fails to bind, and
    /// the supervisor starts it again on another port and publishes that one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_whose_port_was_taken_moves_to_another() {
        let dir = std::env::temp_dir().join(format!(
            "hybridlab-port-move-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("a directory");
        let binary = dir.join("stand-in");
        std::fs::write(
            &binary,
            format!(
                "#!/bin/sh\nexec {} -c '{}'\n",
                python().display(),
                STAND_IN.replace('\'', "\"")
            ),
        )
        .expect("the stand-in is written");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
                .expect("executable");
        }
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let taken_port = squatter.local_addr().expect("bound").port();

        // Nothing answers at this address: the log lines and the tag are dropped.
        let config = crate::sdk_config("http://127.0.0.1:1", "us-east-1").await;
        let endpoint = Arc::new(Mutex::new(endpoint_of("http", taken_port)));
        let pid = Arc::new(AtomicU32::new(0));
        let (stop, stopped) = oneshot::channel();
        let supervisor = tokio::spawn(supervise(
            Supervised {
                instance_id: "i-0123456789abcdef0".into(),
                binary,
                environment: Vec::new(),
                port: taken_port,
                edge_endpoint: "http://127.0.0.1:1".into(),
                metadata_endpoint: None,
                role_name: None,
                launch: ServerLaunch {
                    artifact_bucket: "artifacts".into(),
                    binary_key: "server".into(),
                    env_key: "server.env".into(),
                    log_group: "/hybridlab/test/ec2-server".into(),
                    region: "us-east-1".into(),
                    port: 8080,
                    ttl_seconds: 3600,
                },
            },
            Supervision {
                logs: LogShipper::start(aws_sdk_cloudwatchlogs::Client::new(&config), None),
                spawner: Spawner::start().expect("spawning threads"),
                ec2: aws_sdk_ec2::Client::new(&config),
                pid: pid.clone(),
                endpoint: endpoint.clone(),
            },
            stopped,
        ));

        let current = || endpoint.lock().map(|e| e.clone()).unwrap_or_default();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let moved = loop {
            let now = current();
            let port = now
                .rsplit(':')
                .next()
                .and_then(|port| port.parse::<u16>().ok())
                .unwrap_or(taken_port);
            if port != taken_port && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break Some(port);
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let server_pid = pid.load(Ordering::Acquire);
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), supervisor).await;
        drop(squatter);
        let _ = std::fs::remove_dir_all(&dir);
        let moved = moved.expect("the server moved to a port of its own within 30 s");
        assert_ne!(moved, taken_port);
        assert!(server_pid > 0);
        let alive = std::fs::read_to_string(format!("/proc/{server_pid}/stat"))
            .ok()
            .and_then(|stat| Some(stat.rsplit_once(')')?.1.trim_start().chars().next()? != 'Z'))
            .unwrap_or(false);
        assert!(!alive, "the stopped server's process is gone");
    }
}
