//! Materialises EC2 instances: every running instance tagged `hybridlab:role=image-server`
//! or `job-worker` boots as Amazon Linux would boot it. On its first boot its user-data script runs, as
//! cloud-init runs it, in a directory of the instance's own, with Amazon Linux's commands it
//! calls provided against the sandbox and the real AWS CLI (see `instance_os`); what
//! it printed is the instance's console output (`GetConsoleOutput`). Then the agent starts
//! what the script started: each service as a local process (restarted if it crashes, on
//! another port if another process took its own; its output shipped to CloudWatch Logs if the
//! CloudWatch agent was configured to collect its file), and the timers that power it off
//! (its TTL). A later boot (a stop and a start) runs the units the script enabled instead, as
//! systemd does. Every process goes when the instance stops or terminates; a terminated
//! instance's disk goes too. The server's address is tagged on the instance as
//! `hybridlab:endpoint`, where clients look for it: each instance's private port is published
//! on a loopback port of its own.
//!
//! Each instance has its own metadata service (see [`super::imds`]), which the script's AWS
//! CLI and the server reach through `AWS_EC2_METADATA_SERVICE_ENDPOINT` and get its instance
//! profile's role from; nothing is given an access key of its own, so the default credential
//! chains go through IMDS as on EC2.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_ec2::types::{
    Filter, HttpTokensState, Instance, InstanceAttributeName, InstanceMetadataEndpointState,
    InstanceStateName, Tag,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::{mpsc, oneshot};

use super::imds::{InstanceMetadata, InstanceProfile, MetadataService};
use super::instance_os::{CLOUDWATCH_AGENT_UNIT, InstanceRoot, Service, calendar_time, cloud_init};
use super::logs::{LogShipper, LogStream, now_ms};
use super::principals::{PrincipalTable, RoleDirectory};
use super::spawner::{ProcessGroup, Spawner};
use super::timing::Settling;
use hybridlab_wire::launch::parse_env_file;
use hybridlab_wire::tags::{ENDPOINT_TAG, ROLE_IMAGE_SERVER, ROLE_JOB_WORKER, ROLE_TAG};
use hybridlab_wire::tls::TLS_CERT_ENV;

const RECONCILE_EVERY: Duration = Duration::from_millis(500);

/// The variable the server listens by: the agent publishes the port its unit names on a
/// loopback port of the instance's own.
const LISTEN_ENV: &str = "HYBRIDLAB_LISTEN";

/// One running instance.
#[derive(Debug)]
struct InstanceRun {
    /// Where its server is published; empty until a service listens. Changes if the server
    /// has to move to another port (see [`supervise`]).
    endpoint: Arc<Mutex<String>>,
    /// The server's current process id (0 while none runs).
    pid: Arc<AtomicU32>,
    /// When the instance powers itself off: its TTL timer's time, or now if it asked to.
    powers_off_at: Arc<Mutex<Option<SystemTime>>>,
    /// The instance's metadata service: `None` when its `HttpEndpoint` is disabled.
    metadata: Option<(String, tokio::task::JoinHandle<()>)>,
    /// Dropping it stops the boot, every service, and their processes.
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for InstanceRun {
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
    /// Empty while no server listens (booting, or its user-data failed).
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
    /// The AWS CLI the instances' `aws` command runs.
    pub aws_cli: PathBuf,
    /// Which instances still boot (the edge records each launch).
    pub settling: Arc<Settling>,
    /// Each instance's console output, which the edge answers `GetConsoleOutput` with.
    pub consoles: Arc<ConsoleOutputs>,
}

/// What each instance's boot printed, as EC2's `GetConsoleOutput` returns it: cloud-init's
/// lines and the user-data's output.
#[derive(Debug, Default)]
pub struct ConsoleOutputs {
    by_instance: Mutex<HashMap<String, String>>,
}

/// EC2 keeps the last 64 KB of an instance's console output.
const CONSOLE_KEPT: usize = 64 * 1024;

impl ConsoleOutputs {
    fn append(&self, id: &str, line: &str) {
        if let Ok(mut outputs) = self.by_instance.lock() {
            let output = outputs.entry(id.to_owned()).or_default();
            output.push_str(line);
            output.push('\n');
            if output.len() > CONSOLE_KEPT {
                let mut cut = output.len() - CONSOLE_KEPT;
                while !output.is_char_boundary(cut) {
                    cut += 1;
                }
                output.drain(..cut);
            }
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

/// Keeps local processes in line with the instances moto says are running.
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
    running: Mutex<HashMap<String, InstanceRun>>,
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
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Every running instance: its id, its server's endpoint and process id.
    pub fn servers(&self) -> Vec<MaterializedServer> {
        self.running
            .lock()
            .map(|running| {
                running
                    .iter()
                    .map(|(id, run)| MaterializedServer {
                        instance_id: id.clone(),
                        endpoint: run
                            .endpoint
                            .lock()
                            .map(|endpoint| endpoint.clone())
                            .unwrap_or_default(),
                        pid: run.pid.load(Ordering::Acquire),
                        metadata_endpoint: run
                            .metadata
                            .as_ref()
                            .map(|(endpoint, _)| endpoint.clone())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reconciles until `stop` resolves, then stops every instance and removes their disks.
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
            .running
            .lock()
            .map(|mut running| running.drain().map(|(id, _)| id).collect())
            .unwrap_or_default();
        for id in ids {
            self.forget_disk(&id);
        }
    }

    fn disk_of(&self, id: &str) -> PathBuf {
        self.settings.state_dir.join("instances").join(id)
    }

    /// Removes instance `id`'s disk (unlinking the binary of a server still shutting down is
    /// fine: the process keeps its open file).
    fn forget_disk(&self, id: &str) {
        let dir = self.disk_of(id);
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
                    .values(ROLE_JOB_WORKER)
                    .build(),
            )
            .send()
            .await
            .map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())?;
        let mut running = Vec::new();
        let mut states = HashMap::new();
        for reservation in output.reservations() {
            for instance in reservation.instances() {
                let Some(id) = instance.instance_id() else {
                    continue;
                };
                let state = instance.state().and_then(|state| state.name()).cloned();
                if state == Some(InstanceStateName::Running) {
                    let launched = instance
                        .launch_time()
                        .and_then(|time| SystemTime::try_from(*time).ok());
                    running.push((
                        id.to_owned(),
                        launched,
                        LaunchedInstance::of(instance, reservation.owner_id()),
                    ));
                }
                states.insert(id.to_owned(), state);
            }
        }
        let mut stopped = Vec::new();
        if let Ok(mut runs) = self.running.lock() {
            runs.retain(|id, _| {
                let keep = states.get(id) == Some(&Some(InstanceStateName::Running));
                if !keep {
                    tracing::info!(instance = %id, "instance no longer running: stopping its processes");
                    stopped.push(id.clone());
                }
                keep
            });
        }
        // A stopped instance keeps its disk (its next boot runs what its user-data enabled);
        // a terminated one's goes with it: its copy of the server binary (tens of MB) would
        // otherwise pile up for as long as the sandbox lives.
        for (id, state) in &states {
            let kept = matches!(
                state,
                Some(
                    InstanceStateName::Running
                        | InstanceStateName::Pending
                        | InstanceStateName::Stopped
                        | InstanceStateName::Stopping
                )
            );
            if !kept && (stopped.contains(id) || self.disk_of(id).exists()) {
                self.forget_disk(id);
            }
        }
        let now = SystemTime::now();
        let powering_off: Vec<String> = self
            .running
            .lock()
            .map(|runs| {
                runs.iter()
                    .filter(|(_, run)| {
                        run.powers_off_at
                            .lock()
                            .map(|mut at| at.take_if(|at| *at <= now).is_some())
                            .unwrap_or(false)
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for id in powering_off {
            self.power_off(&id).await;
        }
        for (id, launched, described) in running {
            let known = self
                .running
                .lock()
                .map(|runs| runs.contains_key(&id))
                .unwrap_or(true);
            // Still booting: its user-data has not run yet.
            if known || self.settling.is_booting(&id, Instant::now()) {
                continue;
            }
            match self.start_boot(&id, launched, &described).await {
                Ok(run) => {
                    if let Ok(mut runs) = self.running.lock() {
                        runs.insert(id, run);
                    }
                }
                Err(err) => {
                    tracing::warn!(instance = %id, error = %err, "cannot boot the instance yet")
                }
            }
        }
        Ok(())
    }

    /// What powering off does on EC2: the instance stops, or terminates if its
    /// `InstanceInitiatedShutdownBehavior` says so.
    async fn power_off(&self, id: &str) {
        let behaviour = self
            .ec2
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
            .send()
            .await
            .ok()
            .and_then(|answer| {
                answer
                    .instance_initiated_shutdown_behavior()
                    .and_then(|value| value.value())
                    .map(str::to_owned)
            });
        self.settings.consoles.append(id, "reboot: Power down");
        let terminate = behaviour.as_deref() == Some("terminate");
        tracing::info!(instance = %id, terminate, "the instance powers itself off");
        let result = if terminate {
            self.ec2
                .terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())
        } else {
            self.ec2
                .stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|err| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string())
        };
        if let Err(err) = result {
            tracing::warn!(instance = %id, error = %err, "cannot power the instance off");
        }
    }

    async fn user_data_of(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
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
        STANDARD
            .decode(encoded.trim())
            .map(Some)
            .map_err(|err| err.to_string())
    }

    /// The instance's metadata, its profile's role looked up in IAM.
    async fn metadata_of(
        &self,
        id: &str,
        launched: Option<SystemTime>,
        described: &LaunchedInstance,
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
            region: described.region(),
            availability_zone: described.availability_zone.clone(),
            instance_type: described.instance_type.clone(),
            image_id: described.image_id.clone(),
            private_ip: described.private_ip.clone(),
            launched,
            profile,
            tokens_required: described.tokens_required,
        })
    }

    /// Serves the instance's metadata and starts its boot in a task of its own.
    async fn start_boot(
        &self,
        id: &str,
        launched: Option<SystemTime>,
        described: &LaunchedInstance,
    ) -> Result<InstanceRun, String> {
        let user_data = self.user_data_of(id).await?;
        let metadata = if described.metadata_enabled {
            let metadata = self.metadata_of(id, launched, described).await?;
            let role_name = metadata
                .profile
                .as_ref()
                .and_then(|profile| profile.role.as_ref())
                .map(|role| role.name().to_owned());
            let service = MetadataService::new(metadata, self.principals.clone());
            let (address, server) = super::imds::serve(service)
                .await
                .map_err(|err| format!("cannot serve the instance's metadata: {err}"))?;
            Some((format!("http://{address}"), server, role_name))
        } else {
            None
        };
        let (stop, stopped) = oneshot::channel();
        let endpoint = Arc::new(Mutex::new(String::new()));
        let pid = Arc::new(AtomicU32::new(0));
        let powers_off_at = Arc::new(Mutex::new(None));
        let (metadata_endpoint, role_name, metadata) = match metadata {
            Some((endpoint, server, role)) => {
                (Some(endpoint.clone()), role, Some((endpoint, server)))
            }
            None => (None, None, None),
        };
        let boot = Boot {
            instance_id: id.to_owned(),
            root: InstanceRoot::new(self.disk_of(id)),
            user_data,
            region: described.region(),
            launched,
            metadata_endpoint,
            role_name,
            edge_endpoint: self.settings.edge_endpoint.clone(),
            aws_cli: self.settings.aws_cli.clone(),
            consoles: self.settings.consoles.clone(),
            powers_off_at: powers_off_at.clone(),
            supervision: Supervision {
                logs: self.logs.clone(),
                spawner: self.spawner.clone(),
                ec2: self.ec2.clone(),
                pid: pid.clone(),
                endpoint: endpoint.clone(),
            },
        };
        tokio::spawn(boot.run(stopped));
        Ok(InstanceRun {
            endpoint,
            pid,
            powers_off_at,
            metadata,
            stop: Some(stop),
        })
    }
}

/// One boot of one instance: its user-data (first boot) or its enabled units (later boots),
/// then its services and timers until the instance stops.
struct Boot {
    instance_id: String,
    root: InstanceRoot,
    user_data: Option<Vec<u8>>,
    region: String,
    launched: Option<SystemTime>,
    /// The instance's metadata service; `None` when its `HttpEndpoint` is disabled.
    metadata_endpoint: Option<String>,
    /// The instance profile's role, whose permissions its CloudWatch agent ships logs with.
    role_name: Option<String>,
    edge_endpoint: String,
    aws_cli: PathBuf,
    consoles: Arc<ConsoleOutputs>,
    powers_off_at: Arc<Mutex<Option<SystemTime>>>,
    /// Shared with the service that publishes the instance's port.
    supervision: Supervision,
}

/// A supervised service: the sender that stops it, and its supervisor.
type RunningService = (oneshot::Sender<()>, tokio::task::JoinHandle<()>);

/// The instance stopped while its boot was under way.
struct Interrupted;

impl Boot {
    fn console(&self, line: &str) {
        self.consoles.append(&self.instance_id, line);
    }

    fn uptime_s(&self) -> f64 {
        self.launched
            .and_then(|launched| SystemTime::now().duration_since(launched).ok())
            .unwrap_or_default()
            .as_secs_f64()
    }

    fn power_off_at(&self, at: SystemTime) {
        if let Ok(mut powers_off_at) = self.powers_off_at.lock() {
            *powers_off_at = Some(powers_off_at.map_or(at, |earlier| earlier.min(at)));
        }
    }

    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let units = if self.root.first_boot_done() {
            self.root.clear_run();
            self.console("systemd: starting the units enabled on the instance's disk");
            self.root.enabled_units()
        } else {
            if self.run_user_data(&mut stop).await.is_err() {
                return;
            }
            self.root.started_units()
        };
        if self.root.poweroff_requested() {
            self.power_off_at(SystemTime::now());
        }
        let collected = if units.iter().any(|unit| unit == CLOUDWATCH_AGENT_UNIT) {
            self.root
                .collected_logs(&self.instance_id)
                .unwrap_or_else(|err| {
                    self.console(&format!("amazon-cloudwatch-agent: {err}"));
                    Vec::new()
                })
        } else {
            Vec::new()
        };
        let mut services = Vec::new();
        for unit in &units {
            if unit == CLOUDWATCH_AGENT_UNIT {
                continue;
            }
            let started = if let Some(stem) = unit.strip_suffix(".timer") {
                self.arm_timer(unit, stem)
            } else if unit.ends_with(".service") {
                self.start_service(unit, &collected)
                    .map(|service| services.extend(service))
            } else {
                Err(format!(
                    "{unit}: only services and timers are modelled by hybridlab's sandbox"
                ))
            };
            if let Err(err) = started {
                tracing::warn!(instance = %self.instance_id, "{err}");
                self.console(&err);
            }
        }
        let _ = stop.await;
        for (stop, supervisor) in services {
            let _ = stop.send(());
            let _ = supervisor.await;
        }
    }

    /// Runs the user-data as cloud-init does, once; its output is the console output.
    async fn run_user_data(&self, stop: &mut oneshot::Receiver<()>) -> Result<(), Interrupted> {
        let finish = |boot: &Self| {
            if let Err(err) = boot.root.mark_boot_finished() {
                tracing::warn!(instance = %boot.instance_id, error = %err, "cannot mark the boot finished");
            }
        };
        let Some(user_data) = &self.user_data else {
            finish(self);
            return Ok(());
        };
        self.console(&cloud_init::final_stage_starts(self.uptime_s()));
        let script = match self.root.prepare(
            user_data,
            &self.aws_cli,
            &self.edge_endpoint,
            self.metadata_endpoint.as_deref(),
        ) {
            Ok(script) => script,
            Err(err) => {
                self.console(&format!(
                    "hybridlab sandbox: cannot lay out the instance's disk: {err}"
                ));
                return Ok(());
            }
        };
        let mut command = tokio::process::Command::new(&script);
        command
            .env_clear()
            .envs(
                self.root
                    .script_environment(&self.edge_endpoint, self.metadata_endpoint.as_deref()),
            )
            .current_dir(self.root.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let status = match self.supervision.spawner.spawn(command).await {
            Ok(mut child) => {
                let group = ProcessGroup::of(&child);
                let (line_sender, mut lines) = mpsc::unbounded_channel();
                let _output = super::output::forward_output(&mut child, &line_sender);
                drop(line_sender);
                let forwarder = {
                    let consoles = self.consoles.clone();
                    let id = self.instance_id.clone();
                    tokio::spawn(async move {
                        while let Some((_, line)) = lines.recv().await {
                            consoles.append(&id, &line);
                        }
                    })
                };
                let status = tokio::select! {
                    _ = &mut *stop => {
                        if let Some(group) = &group {
                            group.kill();
                        }
                        let _ = child.kill().await;
                        return Err(Interrupted);
                    }
                    status = child.wait() => status,
                };
                // What the script left running keeps the pipes open: cloud-init waits for
                // the script, not for them.
                let _ = tokio::time::timeout(Duration::from_secs(2), forwarder).await;
                status
                    .map(|status| status.code())
                    .map_err(|err| err.to_string())
            }
            Err(err) => Err(err.to_string()),
        };
        match status {
            Ok(Some(0)) => {}
            Ok(code) => {
                for line in cloud_init::script_failed(code) {
                    self.console(&line);
                }
                tracing::warn!(instance = %self.instance_id, code = ?code, "the instance's user-data failed");
            }
            Err(err) => {
                self.console(&format!("{}: {err}", script.display()));
                for line in cloud_init::script_failed(None) {
                    self.console(&line);
                }
            }
        }
        self.console(&cloud_init::finished(self.uptime_s()));
        finish(self);
        Ok(())
    }

    /// A timer whose service powers the instance off: the instance does so at its time.
    fn arm_timer(&self, unit: &str, stem: &str) -> Result<(), String> {
        let timer = self.root.unit(unit)?;
        let service_name = timer
            .get("Timer", "Unit")
            .map_or_else(|| format!("{stem}.service"), str::to_owned);
        let service = Service::of(&service_name, &self.root.unit(&service_name)?)?;
        if !service.powers_off() {
            return Err(format!(
                "{unit}: only timers that power the instance off are modelled by hybridlab's sandbox"
            ));
        }
        let calendar = timer
            .get("Timer", "OnCalendar")
            .ok_or_else(|| format!("{unit}: Timer unit lacks value setting. Refusing."))?;
        // `Persistent=true`: a boot past the time fires it at once, as the time has passed.
        self.power_off_at(calendar_time(calendar).map_err(|err| format!("{unit}: {err}"))?);
        Ok(())
    }

    /// Starts service `name` under supervision; `None` for one that powers the instance off
    /// (done at once).
    fn start_service(
        &self,
        name: &str,
        collected: &[super::instance_os::CollectedFile],
    ) -> Result<Option<RunningService>, String> {
        let service = Service::of(name, &self.root.unit(name)?)?;
        if service.powers_off() {
            self.power_off_at(SystemTime::now());
            return Ok(None);
        }
        let mut environment = Vec::new();
        for (file, optional) in &service.environment_files {
            match std::fs::read_to_string(self.root.path(file)) {
                Ok(text) => environment.extend(parse_env_file(&text)),
                Err(_) if *optional => {}
                Err(err) => {
                    return Err(format!("{name}: Failed to load environment files: {err}"));
                }
            }
        }
        environment.extend(service.environment.iter().cloned());
        let binary = self.root.program(&service.exec[0]);
        if !binary.is_file() {
            return Err(format!(
                "{name}: Failed to locate executable {}: No such file or directory",
                service.exec[0]
            ));
        }
        // The instance's port, published on a loopback port of its own.
        let port = if environment.iter().any(|(key, _)| key == LISTEN_ENV) {
            Some(unused_port().map_err(|err| format!("{name}: no loopback port is free: {err}"))?)
        } else {
            None
        };
        let ship_to = service.output_file.as_ref().and_then(|file| {
            collected
                .iter()
                .find(|collected| &collected.file_path == file)
                .map(|collected| {
                    LogStream::new(&collected.log_group, &collected.log_stream)
                        .written_by(self.role_name.as_deref())
                })
        });
        let supervised = Supervised {
            instance_id: self.instance_id.clone(),
            binary,
            args: service.exec[1..].to_vec(),
            environment,
            port,
            edge_endpoint: self.edge_endpoint.clone(),
            metadata_endpoint: self.metadata_endpoint.clone(),
            region: self.region.clone(),
            output_file: service
                .output_file
                .as_ref()
                .map(|file| self.root.path(file)),
            ship_to,
            restarts: service.restarts,
        };
        if let Some(port) = port {
            let endpoint = endpoint_of(scheme_of(&supervised.environment), port);
            if let Ok(mut shared) = self.supervision.endpoint.lock() {
                shared.clone_from(&endpoint);
            }
            let ec2 = self.supervision.ec2.clone();
            let id = self.instance_id.clone();
            tokio::spawn(async move { tag_endpoint(&ec2, &id, &endpoint).await });
        }
        self.console(&format!("systemd[1]: Started {name}."));
        tracing::info!(instance = %self.instance_id, service = %name, "service started");
        let (stop, stopped) = oneshot::channel();
        let supervision = Supervision {
            logs: self.supervision.logs.clone(),
            spawner: self.supervision.spawner.clone(),
            ec2: self.supervision.ec2.clone(),
            // Only the published service's process is the one the status reports.
            pid: if port.is_some() {
                self.supervision.pid.clone()
            } else {
                Arc::new(AtomicU32::new(0))
            },
            endpoint: self.supervision.endpoint.clone(),
        };
        Ok(Some((
            stop,
            tokio::spawn(supervise(supervised, supervision, stopped)),
        )))
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
    /// The region, from the availability zone (`us-east-1a`: `us-east-1`).
    fn region(&self) -> String {
        let zone = self
            .availability_zone
            .trim_end_matches(|c: char| c.is_ascii_lowercase());
        if zone.is_empty() {
            hybridlab_wire::sandbox::DEFAULT_REGION.to_owned()
        } else {
            zone.to_owned()
        }
    }

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
    args: Vec<String>,
    environment: Vec<(String, String)>,
    /// The loopback port the instance's port is published on, if the service listens.
    port: Option<u16>,
    edge_endpoint: String,
    /// The instance's metadata service; `None` when its `HttpEndpoint` is disabled.
    metadata_endpoint: Option<String>,
    region: String,
    /// Where the unit appends its output (`StandardOutput=append:`), on the host.
    output_file: Option<PathBuf>,
    /// The CloudWatch stream the agent ships that file to, if it collects it.
    ship_to: Option<LogStream>,
    /// `Restart=`: started again when it exits.
    restarts: bool,
}

/// Where a service's output goes: its file, and CloudWatch if the agent collects the file.
#[derive(Clone)]
struct OutputSink {
    logs: LogShipper,
    file: Option<Arc<Mutex<std::fs::File>>>,
    ship_to: Option<LogStream>,
}

impl OutputSink {
    fn new(logs: LogShipper, file: Option<&std::path::Path>, ship_to: Option<LogStream>) -> Self {
        let file = file.and_then(|path| {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        Self {
            logs,
            file: file.map(|file| Arc::new(Mutex::new(file))),
            ship_to,
        }
    }

    fn line(&self, at_ms: i64, line: String) {
        if let Some(file) = &self.file
            && let Ok(mut file) = file.lock()
        {
            use std::io::Write as _;
            let _ = writeln!(file, "{line}");
        }
        if let Some(stream) = &self.ship_to {
            self.logs.send_batch(stream, vec![(at_ms, line)]);
        }
    }
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
    let sink = OutputSink::new(
        logs,
        process.output_file.as_deref(),
        process.ship_to.clone(),
    );
    let mut pause = Duration::from_millis(500);
    loop {
        let mut command = tokio::process::Command::new(&process.binary);
        command
            .args(&process.args)
            .env_clear()
            .envs(process.environment.iter().map(|(k, v)| (k, v)))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HYBRIDLAB_ENDPOINT_URL", &process.edge_endpoint)
            // The lab's test images are served on loopback in the sandbox.
            .env("HYBRIDLAB_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("AWS_REGION", &process.region)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(port) = process.port {
            command.env(LISTEN_ENV, format!("127.0.0.1:{port}"));
        }
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
        {
            let sink = sink.clone();
            tokio::spawn(async move {
                while let Some((at_ms, line)) = lines.recv().await {
                    sink.line(at_ms, line);
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
                if !process.restarts {
                    tracing::info!(instance = %process.instance_id, status = %status, "the service exited");
                    return;
                }
                tracing::warn!(instance = %process.instance_id, status = %status, "the server exited; restarting it");
                sink.line(
                    now_ms(),
                    format!("hybridlab sandbox: the server exited ({status}); restarting it"),
                );
            }
        }
        if let Some(taken_port) = process.port.filter(|port| taken(*port)) {
            match unused_port() {
                Ok(port) => {
                    let moved = endpoint_of(scheme_of(&process.environment), port);
                    tracing::warn!(instance = %process.instance_id, taken = taken_port, endpoint = %moved, "another process took the server's port: moving it");
                    sink.line(
                        now_ms(),
                        format!("hybridlab sandbox: port {taken_port} was taken by another process; the server moves to {moved}"),
                    );
                    process.port = Some(port);
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
                args: Vec::new(),
                environment: vec![(LISTEN_ENV.into(), "0.0.0.0:8080".into())],
                port: Some(taken_port),
                edge_endpoint: "http://127.0.0.1:1".into(),
                metadata_endpoint: None,
                region: "us-east-1".into(),
                output_file: None,
                ship_to: None,
                restarts: true,
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
        #[cfg(target_os = "linux")]
        {
            let alive = std::fs::read_to_string(format!("/proc/{server_pid}/stat"))
                .ok()
                .and_then(|stat| Some(stat.rsplit_once(')')?.1.trim_start().chars().next()? != 'Z'))
                .unwrap_or(false);
            assert!(!alive, "the stopped server's process is gone");
        }
    }
}
