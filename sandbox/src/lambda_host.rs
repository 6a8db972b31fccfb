//! Runs deployed functions as Lambda does: a pool of execution environments per function
//! (each a `bootstrap` process with its own Runtime API), grown on demand up to the function's
//! reserved concurrency or the sandbox's limit, a cold start for each new environment and
//! warm reuse after, the configured timeout enforced by killing the environment (its
//! `bootstrap` and every process it started), and the `START`/`END`/`REPORT` lines written to
//! `/aws/lambda/<name>` as AWS writes them. Each environment holds credentials of its own for
//! the function's execution role, in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN` as on AWS (see [`super::principals`]), and a cgroup capping its CPU to
//! its memory's share, as Lambda allocates it (see [`super::cpu_share`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_lambda::error::ProvideErrorMetadata;
use bytes::Bytes;
use hybridlab_wire::report::{Report, encode_tail};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::code::{CodeError, CodeStore};
use super::cpu_share::CpuShare;
use super::logs::{LogShipper, LogStream, now_ms};
use super::output::{Output, forward_output};
use super::principals::{PrincipalTable, Role, RoleDirectory};
use super::runtime_api::{PendingInvocation, RuntimeChannel, RuntimeResult, serve};
use super::spawner::{ProcessGroup, Spawner};

/// Lambda gives an environment 10 s to initialise before it fails the invocation.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the host waits for the function's last lines to come through its pipes. The wait
/// is exact (see [`Output::settled`]) and normally takes microseconds; this only bounds it if
/// the reader tasks cannot keep up.
const OUTPUT_SETTLE_LIMIT: Duration = Duration::from_millis(100);
/// How long an environment's credentials last. An environment must not outlive them: one whose
/// credentials would expire before an invocation could end is retired instead of reused.
pub const CREDENTIALS_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// How the caller wants the function run (`X-Amz-Invocation-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    pub fn parse(header: Option<&str>) -> Option<Self> {
        match header {
            None | Some("RequestResponse") => Some(Self::RequestResponse),
            Some("Event") => Some(Self::Event),
            Some("DryRun") => Some(Self::DryRun),
            Some(_) => None,
        }
    }
}

/// One `Invoke` call.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function: String,
    pub payload: Bytes,
    pub invocation_type: InvocationType,
    pub log_tail: bool,
}

/// What an `Invoke` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeOutcome {
    /// 200: the function ran; `function_error` is `X-Amz-Function-Error`.
    Completed {
        payload: Bytes,
        function_error: Option<&'static str>,
        /// Base64 of the log's last 4 KB, for `LogType: Tail`.
        log_result: Option<String>,
        request_id: String,
    },
    /// 202: queued (`Event`).
    Accepted { request_id: String },
    /// 204: the function exists and may be invoked (`DryRun`).
    DryRun,
}

/// Why an `Invoke` was refused before the function ran.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("Function not found: {0}")]
    NotFound(String),
    #[error("Rate Exceeded.")]
    Throttled { reason: &'static str },
    #[error("{0}")]
    Code(#[from] CodeError),
    #[error("the sandbox could not start the function: {0}")]
    Spawn(String),
    #[error("the control plane failed: {0}")]
    Control(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Settings of the host, the same for every function.
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub region: String,
    /// What functions use as `AWS_ENDPOINT_URL`: the sandbox's edge port.
    pub edge_endpoint: String,
    /// The most environments that run at once, over all functions (the account limit).
    pub concurrency_limit: usize,
    /// Caps each environment's CPU to its memory's share, as Lambda allocates it.
    pub cpu_share: Arc<CpuShare>,
}

/// A function's configuration, as the control plane has it.
#[derive(Debug, Clone)]
struct FunctionSpec {
    name: String,
    arn: Arc<str>,
    /// The execution role, whose sessions the environments hold.
    role: Role,
    memory_mb: i32,
    timeout: Duration,
    environment: HashMap<String, String>,
    handler: String,
    reserved_concurrency: Option<usize>,
    code_dir: PathBuf,
}

/// The function's environments: the idle ones and how many exist.
#[derive(Debug)]
struct FunctionPool {
    spec: FunctionSpec,
    idle: Mutex<Vec<Environment>>,
    live: AtomicUsize,
    /// Set when the function's code or configuration changed: its environments are replaced.
    retired: AtomicBool,
    limit: usize,
}

impl FunctionPool {
    /// An idle environment whose credentials outlast an invocation, if there is one; older
    /// ones are retired.
    fn take_idle(&self) -> Option<Environment> {
        let usable_until = SystemTime::now() + self.spec.timeout + Duration::from_secs(60);
        loop {
            let environment = self.idle.lock().ok()?.pop()?;
            if environment.credentials_expire > usable_until {
                return Some(environment);
            }
            self.release();
            drop(environment); // which kills it
        }
    }

    fn try_reserve(&self) -> bool {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < self.limit).then_some(live + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    fn give_back(&self, environment: Environment) {
        if self.retired.load(Ordering::Acquire) {
            self.release();
            return; // dropping kills it
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(environment);
        }
    }
}

/// One execution environment: a `bootstrap` process and its Runtime API.
#[derive(Debug)]
struct Environment {
    channel: Arc<RuntimeChannel>,
    events: mpsc::Sender<PendingInvocation>,
    exited: watch::Receiver<Option<String>>,
    kill: Option<oneshot::Sender<()>>,
    lines: mpsc::UnboundedReceiver<(i64, String)>,
    output: Output,
    log: LogStream,
    memory: PeakMemory,
    spawned_at: Instant,
    /// When the environment's role credentials expire.
    credentials_expire: SystemTime,
    /// Until the first invocation has reported it.
    init_pending: bool,
    server: tokio::task::JoinHandle<()>,
    /// The `bootstrap`'s process group, killed here as well as by the task that waits for the
    /// process: that task may never run again if the runtime is shutting down.
    group: Option<ProcessGroup>,
}

impl Drop for Environment {
    fn drop(&mut self) {
        if let Some(group) = &self.group {
            group.kill();
        }
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.server.abort();
    }
}

/// Runs the functions the control plane knows.
#[derive(Debug)]
pub struct LambdaHost {
    control: aws_sdk_lambda::Client,
    code: Arc<CodeStore>,
    logs: LogShipper,
    spawner: Spawner,
    principals: Arc<PrincipalTable>,
    roles: RoleDirectory,
    settings: HostSettings,
    functions: Mutex<HashMap<String, Arc<FunctionPool>>>,
    /// Per function, held while its configuration is read and its code unpacked, so a burst
    /// of first invocations does that once rather than once each (and other functions' first
    /// invocations do not wait for it).
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Counts [`LambdaHost::invalidate`] calls: a configuration read before one is stale.
    invalidations: AtomicU64,
    account: Arc<Semaphore>,
}

/// The bare function name of a name, an ARN or a partial ARN, without a qualifier.
pub fn function_name(identifier: &str) -> String {
    // Invoke calls name the function on every call; most names are plain.
    if !identifier.contains(['%', '+', ':']) {
        return identifier.to_owned();
    }
    let decoded = percent_decode(identifier);
    let name = match decoded.find(":function:") {
        Some(at) => &decoded[at + ":function:".len()..],
        None => decoded.as_str(),
    };
    name.split(':').next().unwrap_or(name).to_owned()
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

impl LambdaHost {
    pub(crate) fn new(
        control: aws_sdk_lambda::Client,
        code: Arc<CodeStore>,
        logs: LogShipper,
        spawner: Spawner,
        principals: Arc<PrincipalTable>,
        roles: RoleDirectory,
        settings: HostSettings,
    ) -> Self {
        Self {
            account: Arc::new(Semaphore::new(settings.concurrency_limit)),
            control,
            code,
            logs,
            spawner,
            principals,
            roles,
            settings,
            functions: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
            invalidations: AtomicU64::new(0),
        }
    }

    /// Forgets what the host knows of `function` after its code or configuration changed:
    /// idle environments stop now, busy ones when they finish.
    pub fn invalidate(&self, function: &str) {
        let name = function_name(function);
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        let pool = self
            .functions
            .lock()
            .ok()
            .and_then(|mut map| map.remove(&name));
        if let Some(pool) = pool {
            pool.retired.store(true, Ordering::Release);
            let idle = pool
                .idle
                .lock()
                .map(|mut idle| std::mem::take(&mut *idle))
                .unwrap_or_default();
            for environment in idle {
                pool.release();
                drop(environment);
            }
        }
    }

    /// Environments alive per function, for the agent's status.
    pub fn environments(&self) -> Vec<(String, usize)> {
        self.functions
            .lock()
            .map(|map| {
                map.iter()
                    .map(|(name, pool)| (name.clone(), pool.live.load(Ordering::Acquire)))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn pool(&self, function: &str) -> Result<Arc<FunctionPool>, InvokeError> {
        let name = function_name(function);
        let known = |name: &str| {
            self.functions
                .lock()
                .ok()
                .and_then(|map| map.get(name).cloned())
        };
        if let Some(pool) = known(&name) {
            return Ok(pool);
        }
        let gate = self
            .loading
            .lock()
            .map_err(|_| InvokeError::Control("the function table is poisoned".into()))?
            .entry(name.clone())
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        loop {
            // Loaded meanwhile by the invocation that held the lock.
            if let Some(pool) = known(&name) {
                return Ok(pool);
            }
            let invalidations = self.invalidations.load(Ordering::Acquire);
            let spec = self.load_spec(&name).await?;
            let limit = spec
                .reserved_concurrency
                .unwrap_or(self.settings.concurrency_limit);
            let pool = Arc::new(FunctionPool {
                spec,
                idle: Mutex::new(Vec::new()),
                live: AtomicUsize::new(0),
                retired: AtomicBool::new(false),
                limit,
            });
            let mut map = self
                .functions
                .lock()
                .map_err(|_| InvokeError::Control("the function table is poisoned".into()))?;
            // The code or configuration changed while it was read: read it again.
            if self.invalidations.load(Ordering::Acquire) == invalidations {
                return Ok(map.entry(name).or_insert(pool).clone());
            }
        }
    }

    async fn load_spec(&self, name: &str) -> Result<FunctionSpec, InvokeError> {
        let output = self
            .control
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_err(|err| match err.code() {
                Some("ResourceNotFoundException") => InvokeError::NotFound(format!(
                    "arn:aws:lambda:{}:123456789012:function:{name}",
                    self.settings.region
                )),
                _ => InvokeError::Control(
                    aws_sdk_lambda::error::DisplayErrorContext(&err).to_string(),
                ),
            })?;
        let Some(config) = output.configuration() else {
            return Err(InvokeError::Control(
                "GetFunction returned no configuration".into(),
            ));
        };
        let mut reserved = output
            .concurrency()
            .and_then(|concurrency| concurrency.reserved_concurrent_executions());
        if reserved.is_none() {
            reserved = self
                .control
                .get_function_concurrency()
                .function_name(name)
                .send()
                .await
                .ok()
                .and_then(|output| output.reserved_concurrent_executions());
        }
        let role = self.execution_role(name, config.role()).await?;
        let code_sha256 = config.code_sha256().map(str::to_owned);
        // Unpacking tens of megabytes would hold a runtime worker, and with it every other
        // invocation the worker would have taken meanwhile.
        let (code, function) = (self.code.clone(), name.to_owned());
        let code_dir =
            tokio::task::spawn_blocking(move || code.unpacked(&function, code_sha256.as_deref()))
                .await
                .map_err(|err| InvokeError::Spawn(format!("unpacking the code failed: {err}")))??;
        Ok(FunctionSpec {
            name: name.to_owned(),
            arn: config.function_arn().unwrap_or(name).into(),
            role,
            memory_mb: config.memory_size().unwrap_or(128),
            timeout: Duration::from_secs(config.timeout().unwrap_or(3).max(1) as u64),
            environment: config
                .environment()
                .and_then(|environment| environment.variables())
                .cloned()
                .unwrap_or_default(),
            handler: config.handler().unwrap_or("bootstrap").to_owned(),
            reserved_concurrency: reserved.map(|value| value.max(0) as usize),
            code_dir,
        })
    }

    /// The function's execution role, with its id from IAM. A role IAM no longer knows (deleted
    /// after the function was created) still names the environments' sessions.
    async fn execution_role(&self, function: &str, arn: Option<&str>) -> Result<Role, InvokeError> {
        let Some(arn) = arn.filter(|arn| !arn.is_empty()) else {
            return Err(InvokeError::Control(format!(
                "function {function} has no execution role"
            )));
        };
        match self.roles.role(arn).await {
            Ok(Some(role)) => Ok(role),
            Ok(None) => {
                tracing::warn!(
                    function,
                    role = arn,
                    "the function's execution role does not exist"
                );
                Ok(Role::unresolved(arn))
            }
            Err(err) => Err(InvokeError::Control(err)),
        }
    }

    /// Runs one `Invoke`.
    pub async fn invoke(
        self: &Arc<Self>,
        request: InvokeRequest,
    ) -> Result<InvokeOutcome, InvokeError> {
        let pool = self.pool(&request.function).await?;
        match request.invocation_type {
            InvocationType::DryRun => Ok(InvokeOutcome::DryRun),
            InvocationType::RequestResponse => {
                self.run(&pool, request.payload, request.log_tail).await
            }
            InvocationType::Event => {
                let request_id = uuid::Uuid::new_v4().to_string();
                let host = Arc::clone(self);
                tokio::spawn(async move {
                    // Lambda's async queue retries throttled events for hours; a bounded minute
                    // is enough for a lab and keeps the sandbox from piling up work.
                    let give_up = Instant::now() + Duration::from_secs(60);
                    loop {
                        match host.run(&pool, request.payload.clone(), false).await {
                            Err(InvokeError::Throttled { .. }) if Instant::now() < give_up => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Err(err) => {
                                tracing::warn!(function = %pool.spec.name, error = %err, "an Event invocation failed");
                                break;
                            }
                            Ok(_) => break,
                        }
                    }
                });
                Ok(InvokeOutcome::Accepted { request_id })
            }
        }
    }

    async fn run(
        &self,
        pool: &Arc<FunctionPool>,
        payload: Bytes,
        log_tail: bool,
    ) -> Result<InvokeOutcome, InvokeError> {
        let Ok(_slot) = self.account.clone().try_acquire_owned() else {
            return Err(InvokeError::Throttled {
                reason: "ConcurrentInvocationLimitExceeded",
            });
        };
        let environment = match pool.take_idle() {
            Some(environment) => environment,
            None => {
                if !pool.try_reserve() {
                    return Err(InvokeError::Throttled {
                        reason: if pool.spec.reserved_concurrency.is_some() {
                            "ReservedFunctionConcurrentInvocationLimitExceeded"
                        } else {
                            "ConcurrentInvocationLimitExceeded"
                        },
                    });
                }
                match self.spawn_environment(&pool.spec).await {
                    Ok(environment) => environment,
                    Err(err) => {
                        pool.release();
                        return Err(err);
                    }
                }
            }
        };
        let (outcome, environment) = self.run_on(pool, environment, payload, log_tail).await;
        match environment {
            Some(environment) => pool.give_back(environment),
            None => pool.release(),
        }
        Ok(outcome)
    }

    async fn spawn_environment(&self, spec: &FunctionSpec) -> Result<Environment, InvokeError> {
        let (channel, events) = RuntimeChannel::new();
        let (address, server) = serve(channel.clone())
            .await
            .map_err(|err| InvokeError::Spawn(err.to_string()))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let date = time::OffsetDateTime::now_utc();
        let log_stream = format!(
            "{:04}/{:02}/{:02}/[$LATEST]{id}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        let log_group = format!("/aws/lambda/{}", spec.name);
        // Lambda names the execution role's session after the function.
        let credentials = self
            .principals
            .issue(&spec.role, &spec.name, CREDENTIALS_LIFETIME);
        let mut command = tokio::process::Command::new(spec.code_dir.join("bootstrap"));
        command
            .current_dir(&spec.code_dir)
            .env_clear()
            .envs(&spec.environment)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_LOG_GROUP_NAME", &log_group)
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &log_stream)
            .env("AWS_REGION", &self.settings.region)
            .env("AWS_DEFAULT_REGION", &self.settings.region)
            .env("LAMBDA_TASK_ROOT", &spec.code_dir)
            .env("LAMBDA_RUNTIME_DIR", &spec.code_dir)
            .env("_HANDLER", &spec.handler)
            .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
            .env("AWS_SESSION_TOKEN", &credentials.session_token)
            // So the function's own SDK calls reach the sandbox, as they reach AWS on AWS.
            .env("AWS_ENDPOINT_URL", &self.settings.edge_endpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The environment's CPU share, named like its log stream; entered before `exec`.
        let mut cpu_group = self
            .settings
            .cpu_share
            .environment_group(&id, memory_mb(spec.memory_mb))
            .map_err(|err| InvokeError::Spawn(err.to_string()))?;
        if let Some(group) = &mut cpu_group {
            group.enter_before_exec(&mut command);
        }
        // On its own thread: see `Spawner` for why.
        let spawned = self.spawner.spawn(command).await;
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                // A child that entered the group and failed to exec leaves it as it exits.
                if let Some(group) = cpu_group {
                    group.remove().await;
                }
                return Err(InvokeError::Spawn(format!(
                    "{}: {err}",
                    spec.code_dir.join("bootstrap").display()
                )));
            }
        };
        let pid = child.id();
        let group = ProcessGroup::of(&child);
        let (line_sender, lines) = mpsc::unbounded_channel();
        let output = forward_output(&mut child, &line_sender);
        let (exit_sender, exited) = watch::channel(None);
        let (kill, kill_requested) = oneshot::channel::<()>();
        let watched = group.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_requested => {
                    if let Some(group) = &watched {
                        group.kill();
                    }
                    let _ = child.kill().await;
                    "killed".to_owned()
                }
            };
            // Whatever the function started ends with its environment (a timeout, a crash,
            // a code update), as everything in a destroyed Lambda environment does.
            if let Some(group) = &watched {
                group.reap();
            }
            let _ = exit_sender.send(Some(status));
            // Its processes were killed: once they have exited, the group can go.
            if let Some(group) = cpu_group {
                group.remove().await;
            }
        });
        Ok(Environment {
            channel,
            events,
            exited,
            kill: Some(kill),
            lines,
            output,
            log: LogStream::new(&log_group, &log_stream).written_by(Some(spec.role.name())),
            memory: PeakMemory::open(pid),
            spawned_at: Instant::now(),
            credentials_expire: credentials.expires,
            init_pending: true,
            server,
            group,
        })
    }

    /// Runs one invocation on `environment`; gives the environment back unless it had to die.
    async fn run_on(
        &self,
        pool: &FunctionPool,
        mut environment: Environment,
        payload: Bytes,
        log_tail: bool,
    ) -> (InvokeOutcome, Option<Environment>) {
        let spec = &pool.spec;
        let request_id = uuid::Uuid::new_v4().to_string();
        // Whatever the environment printed between invocations belongs to no invocation.
        let mut stray = Vec::new();
        while let Ok(line) = environment.lines.try_recv() {
            stray.push(line);
        }

        // A new environment first has to reach `next`; that time is its Init Duration.
        let mut init_duration = None;
        if environment.init_pending {
            let failure = wait_ready(&mut environment).await;
            // What init printed comes before START, as on AWS.
            environment.output.settled(OUTPUT_SETTLE_LIMIT).await;
            while let Ok(line) = environment.lines.try_recv() {
                stray.push(line);
            }
            self.logs.send_batch(&environment.log, stray);
            if let Some(reason) = failure {
                let message = format!("RequestId: {request_id} Error: {reason}");
                let body =
                    serde_json::json!({"errorType": "Runtime.ExitError", "errorMessage": message});
                let mut lines = vec![(
                    now_ms(),
                    format!(
                        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError",
                        ms(environment.spawned_at.elapsed())
                    ),
                )];
                lines.push((
                    now_ms(),
                    format!("START RequestId: {request_id} Version: $LATEST"),
                ));
                lines.push((now_ms(), message));
                lines.push((now_ms(), format!("END RequestId: {request_id}")));
                lines.push((
                    now_ms(),
                    Report::init_failed(&request_id, memory_mb(spec.memory_mb)).line(),
                ));
                let tail = log_tail.then(|| tail_of(&lines));
                self.logs.send_batch(&environment.log, lines);
                return (
                    InvokeOutcome::Completed {
                        payload: Bytes::from(body.to_string()),
                        function_error: Some("Unhandled"),
                        log_result: tail,
                        request_id,
                    },
                    None,
                );
            }
            let ready_at = environment
                .channel
                .ready_at
                .lock()
                .ok()
                .and_then(|at| *at)
                .unwrap_or_else(Instant::now);
            init_duration = Some(ready_at.duration_since(environment.spawned_at));
            environment.init_pending = false;
        } else {
            self.logs.send_batch(&environment.log, stray);
        }

        // START, whatever the function prints, END and REPORT: usually four lines or fewer.
        let mut log: Vec<(i64, String)> = Vec::with_capacity(4);
        log.push((
            now_ms(),
            format!("START RequestId: {request_id} Version: $LATEST"),
        ));
        let (result_sender, result) = oneshot::channel();
        let (dispatched_sender, mut dispatched) = oneshot::channel();
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| (now + spec.timeout).as_millis() as u64);
        let queued_at = Instant::now();
        let sent = environment
            .events
            .send(PendingInvocation {
                request_id: request_id.clone(),
                payload,
                deadline_ms,
                function_arn: spec.arn.clone(),
                dispatched: dispatched_sender,
                result: result_sender,
            })
            .await;
        let deadline = tokio::time::Instant::now() + spec.timeout;
        let mut exited = environment.exited.clone();
        enum End {
            Result(RuntimeResult),
            Timeout,
            Crash(String),
        }
        let end = if sent.is_err() {
            End::Crash("the runtime API is gone".into())
        } else {
            tokio::select! {
                result = result => match result {
                    Ok(result) => End::Result(result),
                    Err(_) => End::Crash("the runtime API dropped the invocation".into()),
                },
                _ = tokio::time::sleep_until(deadline) => End::Timeout,
                status = wait_exit(&mut exited) => End::Crash(status),
            }
        };
        // An event the runtime never took has no dispatch time; its clock ran from the queue.
        let started = dispatched.try_recv().unwrap_or(queued_at);
        let duration = started.elapsed().min(spec.timeout);
        // The function printed its lines before it answered (or before it timed out or died):
        // they are in its pipes now, and the handshake waits until they have been read.
        if !environment.output.settled(OUTPUT_SETTLE_LIMIT).await {
            tracing::debug!(function = %spec.name, "the function's last lines were late");
        }
        while let Ok(line) = environment.lines.try_recv() {
            log.push(line);
        }
        let max_memory_mb = environment.memory.peak_mb();

        let (payload, function_error, status, keep) = match end {
            End::Result(RuntimeResult::Response(body)) => (body, None, None, true),
            End::Result(RuntimeResult::Error { body, error_type }) => {
                let body = if body.is_empty() {
                    Bytes::from(serde_json::json!({"errorType": error_type.unwrap_or_else(|| "Unknown".into()), "errorMessage": "the function reported an error"}).to_string())
                } else {
                    body
                };
                (body, Some("Unhandled"), None, true)
            }
            End::Timeout => {
                let message = format!(
                    "{} {request_id} Task timed out after {:.2} seconds",
                    hybridlab_wire::now_rfc3339(),
                    spec.timeout.as_secs_f64()
                );
                log.push((now_ms(), message.clone()));
                let body = serde_json::json!({"errorType": "Sandbox.Timedout", "errorMessage": format!("RequestId: {request_id} Error: Task timed out after {:.2} seconds", spec.timeout.as_secs_f64())});
                (
                    Bytes::from(body.to_string()),
                    Some("Unhandled"),
                    Some("timeout"),
                    false,
                )
            }
            End::Crash(status) => {
                let message =
                    format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
                log.push((now_ms(), message.clone()));
                let body =
                    serde_json::json!({"errorType": "Runtime.ExitError", "errorMessage": message});
                (
                    Bytes::from(body.to_string()),
                    Some("Unhandled"),
                    Some("error"),
                    false,
                )
            }
        };

        let now = now_ms();
        log.push((now, format!("END RequestId: {request_id}")));
        log.push((
            now,
            Report::measured(
                &request_id,
                duration,
                init_duration,
                memory_mb(spec.memory_mb),
                u32::try_from(max_memory_mb).unwrap_or(u32::MAX),
            )
            .with_status(status)
            .line(),
        ));
        let tail = log_tail.then(|| tail_of(&log));
        self.logs.send_batch(&environment.log, log);
        let outcome = InvokeOutcome::Completed {
            payload,
            function_error,
            log_result: tail,
            request_id,
        };
        (outcome, keep.then_some(environment))
    }
}

/// Waits for a new environment's first `next`; the reason it will never come otherwise.
async fn wait_ready(environment: &mut Environment) -> Option<String> {
    let channel = environment.channel.clone();
    let ready = async {
        loop {
            let notified = channel.ready.notified();
            if channel.ready_at.lock().ok().is_some_and(|at| at.is_some()) {
                return;
            }
            notified.await;
        }
    };
    let mut exited = environment.exited.clone();
    tokio::select! {
        () = ready => None,
        () = channel.init_failed.notified() => {
            let detail = channel
                .init_error
                .lock()
                .ok()
                .and_then(|error| error.clone())
                .map(|body| String::from_utf8_lossy(&body).into_owned())
                .unwrap_or_default();
            Some(format!("the runtime failed to initialise: {detail}"))
        }
        status = wait_exit(&mut exited) => Some(format!("Runtime exited with error: {status}")),
        _ = tokio::time::sleep(INIT_TIMEOUT) => Some(format!("Init timed out after {:.2} seconds", INIT_TIMEOUT.as_secs_f64())),
    }
}

/// Completes with the exit status once the process has ended.
async fn wait_exit(exited: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(status) = exited.borrow().clone() {
            return status;
        }
        if exited.changed().await.is_err() {
            return "the environment is gone".into();
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The function's configured memory as the REPORT line states it.
fn memory_mb(configured: i32) -> u32 {
    u32::try_from(configured).unwrap_or_default()
}

/// The `LogResult` of the invocation whose log is `lines`.
fn tail_of(lines: &[(i64, String)]) -> String {
    encode_tail(lines.iter().map(|(_, line)| line.as_str()))
}

/// The peak resident memory of an environment's process (`VmHWM`), which is what Lambda's
/// Max Memory Used reports: the environment's high-water mark, exact at each REPORT.
/// `/proc/<pid>/status` stays open and is read with `pread` at offset 0, which makes procfs
/// render it afresh: reading it by name cost an `open`, a `statx` and a `close` on top, about
/// as much as rendering it, on every invocation. The open file keeps naming this process even
/// after it exits (reads then fail), never one that reuses its id.
#[derive(Debug)]
struct PeakMemory {
    status: Option<std::fs::File>,
    buffer: Vec<u8>,
}

impl PeakMemory {
    #[cfg(target_os = "linux")]
    fn open(pid: Option<u32>) -> Self {
        Self {
            status: pid.and_then(|pid| std::fs::File::open(format!("/proc/{pid}/status")).ok()),
            buffer: vec![0; 4096],
        }
    }

    /// Without procfs no peak is read, and REPORT says 0 MB used.
    #[cfg(not(target_os = "linux"))]
    fn open(_pid: Option<u32>) -> Self {
        Self {
            status: None,
            buffer: Vec::new(),
        }
    }

    /// `VmHWM` in MB, rounded up; 0 if it cannot be read.
    fn peak_mb(&mut self) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(status) = &self.status else {
            return 0;
        };
        let mut filled = 0;
        loop {
            if filled == self.buffer.len() {
                self.buffer.resize(filled * 2, 0);
            }
            match status.read_at(&mut self.buffer[filled..], filled as u64) {
                Ok(0) | Err(_) => break,
                Ok(read) => filled += read,
            }
            if let Some(kb) = vm_hwm_kb(&self.buffer[..filled]) {
                return kb.div_ceil(1024);
            }
        }
        0
    }
}

/// The `VmHWM:` value of a `/proc/<pid>/status` text, in kB, once its line is complete.
fn vm_hwm_kb(status: &[u8]) -> Option<u64> {
    const FIELD: &[u8] = b"\nVmHWM:";
    let at = status
        .windows(FIELD.len())
        .position(|window| window == FIELD)?;
    let rest = &status[at + FIELD.len()..];
    let end = rest.iter().position(|&byte| byte == b'\n')?;
    std::str::from_utf8(&rest[..end])
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_names_and_arns() {
        assert_eq!(function_name("proxy"), "proxy");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:proxy"),
            "proxy"
        );
        assert_eq!(
            function_name("arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Aproxy%3A%24LATEST"),
            "proxy"
        );
        assert_eq!(function_name("proxy:$LATEST"), "proxy");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_peak_memory_is_read_again_at_each_call() {
        let by_name = |pid: u32| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
            vm_hwm_kb(status.as_bytes()).expect("a VmHWM line")
        };
        let pid = std::process::id();
        let mut memory = PeakMemory::open(Some(pid));
        let before = memory.peak_mb();
        assert!(before > 0);
        assert!(before <= by_name(pid).div_ceil(1024), "the mark only grows");
        // Touch 64 MB more than the process ever had: the high-water mark must follow.
        let grown = vec![1u8; (before as usize + 64) * 1024 * 1024];
        let after = memory.peak_mb();
        assert!(after >= before + 64, "{before} MB, then {after} MB");
        assert!(after <= by_name(pid).div_ceil(1024));
        drop(grown);
        assert_eq!(PeakMemory::open(None).peak_mb(), 0);
    }

    #[test]
    fn the_high_water_mark_comes_from_its_own_line() {
        let status = b"Name:\tbootstrap\nVmPeak:\t 9000 kB\nVmHWM:\t    2049 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(vm_hwm_kb(status), Some(2049));
        assert_eq!(
            vm_hwm_kb(b"Name:\tx\nVmHWM:\t  20"),
            None,
            "an unfinished line"
        );
    }

    #[test]
    fn invocation_types_parse_from_the_header() {
        assert_eq!(
            InvocationType::parse(None),
            Some(InvocationType::RequestResponse)
        );
        assert_eq!(
            InvocationType::parse(Some("Event")),
            Some(InvocationType::Event)
        );
        assert_eq!(
            InvocationType::parse(Some("DryRun")),
            Some(InvocationType::DryRun)
        );
        assert_eq!(InvocationType::parse(Some("Later")), None);
    }
}
