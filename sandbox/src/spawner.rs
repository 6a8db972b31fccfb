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
//!
//! Each child also leads a process group of its own, and [`ProcessGroup`] signals the whole
//! group: what a function or a server starts (a `sleep`, a shell pipeline) ends with it, as it
//! does on AWS when an execution environment is destroyed or systemd stops a unit
//! (`KillMode=control-group`). The parent-death signal reaches the child only, so a grandchild
//! still outlives an agent killed with SIGKILL; a process that leaves the group (`setsid`)
//! escapes both.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
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

    /// Starts `command` with the parent-death signal set, leading a process group of its own.
    pub(crate) async fn spawn(&self, mut command: Command) -> io::Result<Child> {
        die_with_agent(&mut command);
        command.process_group(0);
        let (reply, child) = oneshot::channel();
        let gone = || io::Error::other("the sandbox's spawning threads have stopped");
        self.requests.send((command, reply)).map_err(|_| gone())?;
        child.await.map_err(|_| gone())?
    }
}

/// Makes the kernel kill the process `command` starts when the thread that started it exits.
#[cfg(target_os = "linux")]
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

/// Where there is no parent-death signal (macOS, the BSDs), the child is killed when its
/// handle is dropped: the agent stopping, normally or by a panic, ends it, and its group
/// goes with it ([`ProcessGroup`]); only an agent killed with SIGKILL leaves it running.
#[cfg(not(target_os = "linux"))]
fn die_with_agent(command: &mut Command) {
    command.kill_on_drop(true);
}

/// The process group a spawned child leads: the child and whatever it started.
#[derive(Debug, Clone)]
pub(crate) struct ProcessGroup {
    leader: rustix::process::Pid,
    /// Set once the leader has been waited for and the group killed: the id may then be
    /// reused by an unrelated group and is never signalled again.
    ended: Arc<AtomicBool>,
}

impl ProcessGroup {
    /// The group `child` leads (it was started by [`Spawner::spawn`]); `None` once it has
    /// been waited for.
    pub(crate) fn of(child: &Child) -> Option<Self> {
        let pid = i32::try_from(child.id()?).ok()?;
        Some(Self {
            leader: rustix::process::Pid::from_raw(pid)?,
            ended: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Asks every process of the group to stop (SIGTERM), as systemd does first.
    pub(crate) fn terminate(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Kills every process of the group.
    pub(crate) fn kill(&self) {
        self.signal(rustix::process::Signal::KILL);
    }

    /// Kills what the leader left behind, once the leader has been waited for. The members
    /// still alive keep the group's id in use until then, so the signal cannot reach another
    /// group.
    pub(crate) fn reap(&self) {
        self.kill();
        self.ended.store(true, Ordering::Release);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        // ESRCH: every member has ended already.
        let _ = rustix::process::kill_process_group(self.leader, signal);
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
    #[cfg(target_os = "linux")]
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

    /// Killing a child's group kills what the child started, which killing the child alone
    /// leaves running.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killing_the_group_kills_the_childs_children() {
        use tokio::io::AsyncBufReadExt;
        let spawner = Spawner::start().expect("a thread");
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = spawner.spawn(command).await.expect("sh starts");
        let group = ProcessGroup::of(&child).expect("a group");
        let stdout = child.stdout.take().expect("a pipe");
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("the grandchild's id");
        let grandchild: u32 = line.trim().parse().expect("a pid");
        assert!(crate::control::alive(grandchild), "sleep runs");
        group.kill();
        child.wait().await.expect("sh ends");
        group.reap();
        // The grandchild was re-parented when sh died; its new parent reaps it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while crate::control::alive(grandchild) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let survived = crate::control::alive(grandchild);
        if survived {
            let _ = std::process::Command::new("kill")
                .args(["-9", &grandchild.to_string()])
                .status();
        }
        assert!(!survived, "the child's own child died with its group");
    }
}
