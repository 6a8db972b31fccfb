//! Starts the agent's child processes (function environments, server instances) so that they
//! never outlive the agent, without holding up the invocations the agent serves meanwhile.
//!
//! Children get a parent-death signal (`PR_SET_PDEATHSIG`), so they die even when the agent is
//! killed with SIGKILL and has no chance to stop them. The kernel sends that signal when the
//! *thread* that forked the child exits, not the process, so every child is forked by threads
//! that live as long as the agent: forked from tokio's blocking pool, whose idle threads exit
//! after ten seconds, function environments were killed in the middle of a benchmark. The
//! hook also makes this a real `fork` of the agent (no `posix_spawn`), which copies its page
//! tables and waits for the child's `exec`: milliseconds that, on a runtime worker, held up
//! every invocation that worker would have served, so that a burst of first invocations
//! queued behind each other's cold starts instead of getting one environment each, as on AWS.

use std::io;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

type Request = (Command, oneshot::Sender<io::Result<Child>>);

/// How many threads fork: a fork waits for its child's `exec`, and a sandbox under test
/// starts dozens of processes at once.
const THREADS: usize = 4;

/// A handle to the spawning threads; cheap to clone. The threads end, and the children they
/// started with them, when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Spawner {
    requests: mpsc::Sender<Request>,
}

impl Spawner {
    /// Starts the spawning threads; must be called within the tokio runtime whose reaper will
    /// wait for the children.
    pub(crate) fn start() -> io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let incoming = Arc::new(Mutex::new(incoming));
        for _ in 0..THREADS {
            let runtime = tokio::runtime::Handle::current();
            let incoming = incoming.clone();
            std::thread::Builder::new()
                // `sandbox_invoke` counts this name's CPU time as the agent's.
                .name("sandbox-spawn".into())
                .spawn(move || {
                    // tokio's `Command::spawn` registers the child with the runtime's reaper.
                    let _runtime = runtime.enter();
                    loop {
                        let request = incoming
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv();
                        let Ok((mut command, reply)) = request else {
                            return; // every handle is gone
                        };
                        let _ = reply.send(command.spawn());
                    }
                })?;
        }
        Ok(Self { requests })
    }

    /// Starts `command` with the parent-death signal set.
    pub(crate) async fn spawn(&self, mut command: Command) -> io::Result<Child> {
        die_with_agent(&mut command);
        let (reply, child) = oneshot::channel();
        let gone = || io::Error::other("the sandbox's spawning threads have stopped");
        self.requests.send((command, reply)).map_err(|_| gone())?;
        child.await.map_err(|_| gone())?
    }
}

/// Makes the kernel kill the process `command` starts when the thread that started it exits.
fn die_with_agent(command: &mut Command) {
    // SAFETY: the hook runs in the forked child before exec and only makes one prctl system
    // call, which is async-signal-safe; it allocates nothing and touches no shared state.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child of a short-lived thread lives on: it was forked by a spawning thread, so the
    /// thread that asked for it may exit (as tokio's idle blocking threads do).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_outlives_the_thread_that_asked_for_it() {
        let spawner = Spawner::start().expect("a thread");
        let mut command = Command::new("sleep");
        command.arg("30").kill_on_drop(true);
        let (asking, runtime) = (spawner.clone(), tokio::runtime::Handle::current());
        let mut child = std::thread::spawn(move || runtime.block_on(asking.spawn(command)))
            .join()
            .expect("no panic")
            .expect("sleep starts");
        // Long enough for a death signal, had the exited thread been the parent.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(child.try_wait().expect("a status"), None, "still running");
        child.kill().await.expect("killed");
    }

    /// Dropping the last handle ends the threads, and the kernel then kills their children.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn children_die_with_the_spawning_thread() {
        let spawner = Spawner::start().expect("a thread");
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = spawner.spawn(command).await.expect("sleep starts");
        drop(spawner);
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
            .await
            .expect("the child dies with the thread")
            .expect("a status");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
}
