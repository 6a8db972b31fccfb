//! What `bench --memory` and `bench --cold` do to the function around the runs, for the plain
//! bench and for `bench --upload`: its memory set per level ([`Tuning::set_memory`]), its
//! environment changed before each cold invocation ([`ColdInvoker`]), and both put back as they
//! were at the end, after an error or a Ctrl-C too ([`Tuning::restore`]; after a second Ctrl-C,
//! one quick try, [`Tuning::restore_quickly`]). Also the sweep's table and picks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use hybridlab_bench::engine::Invoke;
use hybridlab_bench::invocation::Invocation;
use hybridlab_bench::memory::{MemoryPoint, Picks, picks};
use hybridlab_bench::signed::SignedInvoker;
use hybridlab_provision::stack::{StackClients, Target};
use serde_json::{Value, json};

use super::output::{paint, stdout_colour};
use crate::lab::function_config::{ConfiguredFunction, FunctionSettings, SettingsChange};
use crate::lab::tone::Tone;

/// The variable `bench --cold` sets to a new value before each invocation: any change of the
/// configuration makes Lambda start new execution environments.
pub const COLD_START_VARIABLE: &str = "HYBRIDLAB_COLD_START";

/// The function whose configuration a bench changes, as it was before, and what to put back.
#[derive(Debug)]
pub struct Tuning {
    pub function: Arc<ConfiguredFunction>,
    pub original: FunctionSettings,
    /// What restoring sets: the memory with `--memory`, the variables with `--cold`.
    undo: SettingsChange,
    /// The memory last set (0 before any): what a failed restore leaves the function at.
    current_memory_mb: AtomicU32,
}

impl Tuning {
    /// Reads the function's settings; `memory` and `cold` say what the bench will change.
    pub async fn read(
        function: ConfiguredFunction,
        memory: bool,
        cold: bool,
    ) -> anyhow::Result<Self> {
        let original = function.settings().await?;
        let changes = SettingsChange {
            memory_mb: memory.then_some(original.memory_mb),
            variables: cold.then(HashMap::new),
        };
        Ok(Self {
            undo: changes.undoing(&original),
            function: Arc::new(function),
            original,
            current_memory_mb: AtomicU32::new(0),
        })
    }

    /// Sets the memory to `memory_mb` and waits until Lambda has applied it.
    pub async fn set_memory(&self, memory_mb: u32) -> anyhow::Result<()> {
        eprintln!(
            "hybridlab: m={memory_mb}: setting the memory of {} to {memory_mb} MB and waiting for the update",
            self.function.name
        );
        // Recorded before the update: if it is cut short, the function may be at either.
        self.current_memory_mb.store(memory_mb, Ordering::Relaxed);
        self.function
            .apply(&SettingsChange {
                memory_mb: Some(memory_mb),
                variables: None,
            })
            .await
    }

    /// The invoker of `bench --cold`: `signed`, after a change of the function's environment
    /// before each invocation.
    pub fn cold_invoker(&self, signed: SignedInvoker) -> ColdInvoker {
        ColdInvoker {
            signed,
            function: self.function.clone(),
            variables: Arc::new(self.original.variables.clone()),
            stamp: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    /// Puts back what the bench changed and waits until Lambda has applied it.
    pub async fn restore(&self) -> anyhow::Result<()> {
        if self.undo == SettingsChange::default() {
            return Ok(());
        }
        match self.function.apply(&self.undo).await {
            Ok(()) => {
                eprintln!(
                    "hybridlab: {} is back as it was ({}).",
                    self.function.name,
                    self.what()
                );
                Ok(())
            }
            Err(err) => Err(err.context(self.left_as_is())),
        }
    }

    /// After a second Ctrl-C: one try to put back what was changed, without waiting for it to
    /// be applied; says what the function is left with if it fails.
    pub async fn restore_quickly(&self) {
        if self.undo == SettingsChange::default() {
            return;
        }
        match self.function.send_once(&self.undo).await {
            Ok(()) => eprintln!(
                "hybridlab: the restore of {} is sent ({}); Lambda applies it in seconds.",
                self.function.name,
                self.what()
            ),
            Err(err) => eprintln!("hybridlab: {}: {err:#}", self.left_as_is()),
        }
    }

    fn what(&self) -> String {
        let mut what = Vec::new();
        if self.undo.memory_mb.is_some() {
            what.push(format!("memory {} MB", self.original.memory_mb));
        }
        if self.undo.variables.is_some() {
            let count = self.original.variables.len();
            what.push(format!(
                "{count} environment variable{}, without {COLD_START_VARIABLE}",
                if count == 1 { "" } else { "s" }
            ));
        }
        what.join(", ")
    }

    /// What the function is left with when the restore failed, and the command that restores
    /// it by hand.
    fn left_as_is(&self) -> String {
        let name = &self.function.name;
        let mut left = Vec::new();
        let current = self.current_memory_mb.load(Ordering::Relaxed);
        if self.undo.memory_mb.is_some() && current != 0 {
            left.push(format!(
                "its memory is left at {current} MB (it was {} MB: `aws lambda update-function-configuration --function-name {name} --memory-size {}`)",
                self.original.memory_mb, self.original.memory_mb
            ));
        }
        if self.undo.variables.is_some() {
            left.push(format!(
                "its environment may still hold {COLD_START_VARIABLE} (remove it, keeping the {} others)",
                self.original.variables.len()
            ));
        }
        if left.is_empty() {
            format!("could not restore {name}")
        } else {
            format!("could not restore {name}: {}", left.join("; "))
        }
    }
}

/// `bench --cold`'s invoker: before each invocation, a new value of [`COLD_START_VARIABLE`]
/// beside the function's own variables, applied before the invocation's time is taken (the
/// engine's [`Invoke::prepare`]), so every invocation starts a new execution environment.
#[derive(Debug, Clone)]
pub struct ColdInvoker {
    signed: SignedInvoker,
    function: Arc<ConfiguredFunction>,
    variables: Arc<HashMap<String, String>>,
    /// Makes this run's values differ from any a previous run left.
    stamp: i64,
}

impl Invoke for ColdInvoker {
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Invocation> + Send {
        self.signed.invoke(payload)
    }

    fn prepare(&self, seq: u64) -> impl Future<Output = Result<(), String>> + Send {
        let this = self.clone();
        async move {
            let mut variables = (*this.variables).clone();
            variables.insert(
                COLD_START_VARIABLE.to_owned(),
                format!("{}-{seq}", this.stamp),
            );
            this.function
                .apply(&SettingsChange {
                    memory_mb: None,
                    variables: Some(variables),
                })
                .await
                .map_err(|err| format!("{err:#}"))
        }
    }
}

/// On the sandbox, the one line that says how each Lambda environment gets the CPU share of
/// its memory (as Lambda gives it), or that nothing caps it and durations will not fall with
/// memory; on standard error, before the sweep. Nothing on AWS, where Lambda does it.
pub async fn say_cpu_share(clients: &StackClients) {
    let Target::Sandbox { endpoint } = &clients.target else {
        return;
    };
    match crate::lab::sandbox::lambda_cpu_share(endpoint).await {
        Ok(share) => eprintln!("hybridlab: {}", share.line()),
        Err(err) => eprintln!(
            "hybridlab: CPU share per memory: unknown ({err:#}); durations may not fall with memory"
        ),
    }
}

/// The sweep's points and picks as `--json` prints them.
pub fn memory_json(points: &[MemoryPoint]) -> Value {
    json!({"points": points, "picks": picks(points)})
}

/// What a bench that changed the function ends with: the run's failure, else the restore's.
/// When both failed, the run's is printed and the restore's returned: what the function is
/// left with is what the user must act on.
pub fn failure_or_restore(
    failure: Option<anyhow::Error>,
    restored: anyhow::Result<()>,
) -> anyhow::Result<()> {
    match (failure, restored) {
        (Some(failure), Err(restore)) => {
            eprintln!("hybridlab: {failure:#}");
            Err(restore)
        }
        (Some(failure), Ok(())) => Err(failure),
        (None, restored) => restored,
    }
}

/// The table of a memory sweep, then its picks; `levels` are the sizes run, and those without
/// a point (no REPORT line) are named.
pub fn print_memory(function: &str, points: &[MemoryPoint], levels: &[u32]) {
    let missing = levels
        .iter()
        .filter(|level| !points.iter().any(|point| point.memory_mb == **level));
    let colour = stdout_colour();
    println!(
        "\n{} of {function} (Lambda's REPORT Duration and Billed Duration; cost at Lambda's x86 list prices):",
        paint("Memory sweep", Tone::Accent, colour)
    );
    println!(
        "  {:>9} {:>11} {:>7} {:>9} {:>9} {:>10} {:>13} {:>10}",
        "memory MB",
        "invocations",
        "errors",
        "p50 ms",
        "mean ms",
        "billed ms",
        "$/invocation",
        "$/million"
    );
    for point in points {
        println!(
            "  {:>9} {:>11} {:>7} {:>9.2} {:>9.2} {:>10.2} {:>13.10} {:>10.4}",
            point.memory_mb,
            point.invocations,
            point.errors,
            point.duration_p50_ms,
            point.duration_mean_ms,
            point.billed_mean_ms,
            point.cost_per_invocation_usd,
            point.cost_per_invocation_usd * 1e6
        );
    }
    for level in missing {
        println!("  {level:>9} (no REPORT line: nothing measured)");
    }
    match picks(points) {
        Some(Picks {
            cheapest_mb,
            fastest_mb,
            balanced_mb,
        }) => println!(
            "  cheapest {} MB, fastest {} MB, balanced {} MB",
            paint(&cheapest_mb.to_string(), Tone::Good, colour),
            paint(&fastest_mb.to_string(), Tone::Good, colour),
            paint(&balanced_mb.to_string(), Tone::Good, colour)
        ),
        None => println!(
            "  {}",
            paint("no pick: every memory size had errors", Tone::Bad, colour)
        ),
    }
}
