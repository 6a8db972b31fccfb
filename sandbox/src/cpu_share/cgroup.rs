#![cfg(target_os = "linux")]
//! The cgroup side of the CPU share: which interface this machine offers (found from
//! `/proc/self/cgroup` and `/proc/self/mountinfo` under a root directory, so that tests can
//! hand it a fake tree), the sandbox's parent group `hybridlab-<pid>` in its own group, one
//! group per environment below it, and the removal of groups a killed sandbox left behind.
//!
//! cgroup v2 forbids a group to hold processes and give controllers to its children at once
//! (the "no internal processes" rule), so the environments' groups never sit beside the
//! sandbox's own process: the sandbox's group must already give `cpu` to its children
//! (`cgroup.subtree_control`), the parent group holds no process and gives `cpu` on.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::{CpuQuota, CpuShareError};

/// Serialises making and removing groups under the parent, which several sandboxes of one
/// process share: the parent is removed as soon as its last environment's group is, and must
/// not vanish between its creation and that of a group inside it.
static PARENT_LOCK: Mutex<()> = Mutex::new(());

/// How long an environment's group may stay busy after its processes were killed: they leave
/// it as they exit, within milliseconds.
const REMOVAL_ATTEMPTS: u32 = 40;
const REMOVAL_PAUSE: Duration = Duration::from_millis(25);

/// The cgroup interface that caps CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// `cpu.max` in the unified hierarchy.
    V2,
    /// `cpu.cfs_period_us` and `cpu.cfs_quota_us` of the v1 `cpu` controller.
    V1,
}

/// Where the sandbox makes its environments' groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hierarchy {
    pub(super) version: Version,
    /// The sandbox's own group.
    pub(super) base: PathBuf,
    /// `hybridlab-<pid>` in `base`: one group per environment inside.
    pub(super) parent: PathBuf,
    pid: u32,
}

/// The name of the parent group of sandbox process `pid`.
pub(super) fn parent_name(pid: u32) -> String {
    format!("hybridlab-{pid}")
}

/// The sandbox process whose parent group `name` is.
fn parent_pid(name: &str) -> Option<u32> {
    name.strip_prefix("hybridlab-")?.parse().ok()
}

/// The sandbox's group in the hierarchy of `version`, from a `/proc/<pid>/cgroup` text:
/// `0::/path` in v2, `id:controllers:/path` with `cpu` among the controllers in v1.
pub(super) fn own_group(proc_cgroup: &str, version: Version) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let wanted = match version {
            Version::V2 => id == "0" && controllers.is_empty(),
            Version::V1 => controllers.split(',').any(|name| name == "cpu"),
        };
        wanted.then_some(path)
    })
}

/// One line of `/proc/<pid>/mountinfo`, the fields the detection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    /// The directory of the file system mounted there (a cgroup path for cgroupfs).
    root: String,
    point: String,
    fstype: String,
    super_options: String,
}

/// The mounts of a `/proc/<pid>/mountinfo` text: `id parent dev root point options
/// [optional fields] - fstype source super-options`.
pub(super) fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut left = left.split(' ');
            let root = left.nth(3)?;
            let point = left.next()?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let super_options = right.nth(1).unwrap_or_default();
            Some(Mount {
                root: unescape(root),
                point: unescape(point),
                fstype: fstype.to_owned(),
                super_options: super_options.to_owned(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The mount of the hierarchy of `version` that holds cgroup `path`.
fn mount_of<'a>(mounts: &'a [Mount], version: Version, path: &str) -> Option<&'a Mount> {
    mounts.iter().find(|mount| {
        let kind = match version {
            Version::V2 => mount.fstype == "cgroup2",
            Version::V1 => {
                mount.fstype == "cgroup" && mount.super_options.split(',').any(|o| o == "cpu")
            }
        };
        kind && relative_to_mount(mount, path).is_some()
    })
}

/// `path` (a cgroup path) inside `mount`, which may show only a subtree of its hierarchy
/// (a container's cgroup namespace, a bind mount).
fn relative_to_mount<'a>(mount: &Mount, path: &'a str) -> Option<&'a str> {
    let root = mount.root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
}

/// The directory of cgroup `path` of `mount`, under `root` (`/` on a real machine).
fn directory(root: &Path, mount: &Mount, path: &str) -> Option<PathBuf> {
    let relative = relative_to_mount(mount, path)?;
    let mut directory = root.join(mount.point.trim_start_matches('/'));
    if !relative.is_empty() {
        directory.push(relative);
    }
    Some(directory)
}

/// Whether a controller list (`cgroup.controllers`, `cgroup.subtree_control`) names `cpu`.
fn lists_cpu(list: &str) -> bool {
    list.split_whitespace().any(|name| name == "cpu")
}

/// How the sandbox (process `pid`) seen from `root` can cap CPU: cgroup v2 if its group has
/// the `cpu` controller, else cgroup v1's `cpu` controller; else why neither, naming what
/// was missing.
pub(super) fn detect(root: &Path, pid: u32) -> Result<Hierarchy, String> {
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path))
            .map_err(|err| format!("cannot read /{path}: {err}"))
    };
    let proc_cgroup = read("proc/self/cgroup")?;
    let mounts = mounts(&read("proc/self/mountinfo")?);
    let v2 = detect_v2(root, pid, &proc_cgroup, &mounts);
    let v2_missing = match v2 {
        Ok(hierarchy) => return Ok(hierarchy),
        Err(why) => why,
    };
    detect_v1(root, pid, &proc_cgroup, &mounts)
        .map_err(|v1_missing| format!("cgroup v2: {v2_missing}; cgroup v1: {v1_missing}"))
}

fn detect_v2(
    root: &Path,
    pid: u32,
    proc_cgroup: &str,
    mounts: &[Mount],
) -> Result<Hierarchy, String> {
    let path = own_group(proc_cgroup, Version::V2)
        .ok_or("the sandbox is in no v2 group (no `0::` line in /proc/self/cgroup)")?;
    let mount = mount_of(mounts, Version::V2, path).ok_or_else(|| {
        format!("no cgroup2 file system holding the sandbox's group {path} is mounted")
    })?;
    let base = directory(root, mount, path).ok_or("unreachable: the mount holds the group")?;
    let listing = base.join("cgroup.controllers");
    let controllers = std::fs::read_to_string(&listing)
        .map_err(|err| format!("cannot read {}: {err}", listing.display()))?;
    if !lists_cpu(&controllers) {
        return Err(format!(
            "{} does not list the cpu controller (it lists: {})",
            listing.display(),
            match controllers.trim() {
                "" => "none",
                listed => listed,
            }
        ));
    }
    Ok(Hierarchy::new(Version::V2, base, pid))
}

fn detect_v1(
    root: &Path,
    pid: u32,
    proc_cgroup: &str,
    mounts: &[Mount],
) -> Result<Hierarchy, String> {
    let path = own_group(proc_cgroup, Version::V1)
        .ok_or("the sandbox is in no group of a cpu hierarchy (/proc/self/cgroup)")?;
    let mount = mount_of(mounts, Version::V1, path).ok_or_else(|| {
        format!("no cgroup v1 cpu hierarchy holding the sandbox's group {path} is mounted")
    })?;
    let base = directory(root, mount, path).ok_or("unreachable: the mount holds the group")?;
    for file in ["cpu.cfs_period_us", "cpu.cfs_quota_us"] {
        if !base.join(file).is_file() {
            return Err(format!(
                "{} is missing (a kernel without CFS bandwidth control)",
                base.join(file).display()
            ));
        }
    }
    Ok(Hierarchy::new(Version::V1, base, pid))
}

impl Hierarchy {
    fn new(version: Version, base: PathBuf, pid: u32) -> Self {
        Self {
            version,
            parent: base.join(parent_name(pid)),
            base,
            pid,
        }
    }

    /// Makes sure groups can be made here: removes what killed sandboxes left (their
    /// process is not `alive`), lets the sandbox's group give `cpu` to its children (v2),
    /// and makes the parent group once. What failed, naming the file, if they cannot.
    pub(super) fn prepare(&self, alive: impl Fn(u32) -> bool) -> Result<Vec<PathBuf>, String> {
        let removed = self.remove_stale(alive);
        if self.version == Version::V2 {
            let control = self.base.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control)
                .map_err(|err| format!("cannot read {}: {err}", control.display()))?;
            if !lists_cpu(&enabled) {
                // The kernel refuses this for a group that holds processes (the sandbox's own
                // does) unless it is the root: the error says which.
                write(&control, "+cpu").map_err(|err| {
                    format!(
                        "the cpu controller is not enabled for the children of the sandbox's group and writing +cpu to {} failed ({err}); cgroup v2 allows it only in a group without processes, so start the sandbox in a group whose cgroup.subtree_control has cpu",
                        control.display()
                    )
                })?;
            }
        }
        {
            let _lock = PARENT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            self.ensure_parent().map_err(|err| err.to_string())?;
            // Made again with the first environment's group: between environments the
            // sandbox leaves nothing in the hierarchy.
            let _ = std::fs::remove_dir(&self.parent);
        }
        Ok(removed)
    }

    /// Removes the parent groups of sandboxes that are no longer `alive` (killed: a sandbox
    /// that stops removes its own) and the environments' groups inside them; the groups it
    /// removed. A group that still holds a process (one that escaped its environment's
    /// process group) stays: rmdir refuses it.
    pub(super) fn remove_stale(&self, alive: impl Fn(u32) -> bool) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.base) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let Some(pid) = entry.file_name().to_str().and_then(parent_pid) else {
                continue;
            };
            if pid == self.pid || alive(pid) || !entry.path().is_dir() {
                continue;
            }
            let parent = entry.path();
            if let Ok(groups) = std::fs::read_dir(&parent) {
                for group in groups.filter_map(Result::ok) {
                    if group.path().is_dir() && std::fs::remove_dir(group.path()).is_ok() {
                        removed.push(group.path());
                    }
                }
            }
            match std::fs::remove_dir(&parent) {
                Ok(()) => removed.push(parent),
                Err(err) => tracing::warn!(
                    group = %parent.display(),
                    error = %err,
                    "a killed sandbox's cgroup could not be removed"
                ),
            }
        }
        removed
    }

    /// Makes the parent group if it is missing; in v2 it gives `cpu` to its children.
    /// Called with [`PARENT_LOCK`] held.
    fn ensure_parent(&self) -> Result<(), CpuShareError> {
        match std::fs::create_dir(&self.parent) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CpuShareError::Group {
                    action: "create",
                    path: self.parent.clone(),
                    source,
                });
            }
        }
        if self.version == Version::V2 {
            let control = self.parent.join("cgroup.subtree_control");
            write(&control, "+cpu").map_err(|source| CpuShareError::Group {
                action: "write +cpu to",
                path: control,
                source,
            })?;
        }
        Ok(())
    }

    /// Makes group `name` inside the parent with `quota`, ready for a process to enter.
    pub(super) fn group(&self, name: &str, quota: CpuQuota) -> Result<Group, CpuShareError> {
        let _lock = PARENT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure_parent()?;
        let dir = self.parent.join(name);
        std::fs::create_dir(&dir).map_err(|source| CpuShareError::Group {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let settings = match self.version {
            Version::V2 => vec![("cpu.max", quota.cpu_max())],
            // The period first: the quota is checked against it.
            Version::V1 => vec![
                ("cpu.cfs_period_us", quota.period_us.to_string()),
                ("cpu.cfs_quota_us", quota.cfs_quota_us()),
            ],
        };
        let configured = settings.iter().try_for_each(|(file, value)| {
            write(&dir.join(file), value).map_err(|source| CpuShareError::Group {
                action: "write",
                path: dir.join(file),
                source,
            })
        });
        let procs = configured.and_then(|()| {
            open_control(&dir.join("cgroup.procs")).map_err(|source| CpuShareError::Group {
                action: "open",
                path: dir.join("cgroup.procs"),
                source,
            })
        });
        match procs {
            Ok(procs) => Ok(Group {
                dir,
                parent: self.parent.clone(),
                procs: Some(procs),
                removed: false,
            }),
            Err(err) => {
                let _ = std::fs::remove_dir(&dir);
                Err(err)
            }
        }
    }

    /// Removes the parent group once no environment's group is left in it (other sandboxes
    /// of this process may still have some), waiting up to a second for the last ones.
    pub(super) async fn release(&self) {
        for _ in 0..REMOVAL_ATTEMPTS {
            match std::fs::remove_dir(&self.parent) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    tokio::time::sleep(REMOVAL_PAUSE).await;
                }
                _ => return,
            }
        }
        tracing::debug!(group = %self.parent.display(), "the sandbox's cgroup still holds groups");
    }
}

/// Writes `value` to a cgroup control file, in one `write` as the kernel expects.
fn write(path: &Path, value: &str) -> io::Result<()> {
    open_control(path)?.write_all(value.as_bytes())
}

/// A cgroup control file, open for writing. cgroupfs makes every file of a group with it; a
/// fake tree in the tests has none, so there the file is made.
fn open_control(path: &Path) -> io::Result<File> {
    File::options()
        .write(true)
        .create(cfg!(test))
        .truncate(cfg!(test))
        .open(path)
}

/// One environment's group.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) dir: PathBuf,
    parent: PathBuf,
    /// `cgroup.procs`, opened before the fork: the child writes its pid to it.
    procs: Option<File>,
    removed: bool,
}

impl Group {
    /// Makes the process `command` starts enter this group between `fork` and `exec`: the
    /// function's code, and whatever it starts, never runs outside it. Writing the child's pid
    /// from the agent after the spawn would let `bootstrap` run uncapped until then, and
    /// leave any process it started meanwhile outside.
    pub(super) fn enter_before_exec(&mut self, command: &mut tokio::process::Command) {
        let Some(procs) = self.procs.take() else {
            return;
        };
        // SAFETY: the hook runs in the forked child before exec. It calls getpid and write(2)
        // on a file opened before the fork (close-on-exec, so it ends with the exec), with
        // digits formatted into a stack buffer: async-signal-safe, no allocation, no lock.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                let mut digits = [0u8; 10];
                let pid = decimal(std::process::id(), &mut digits);
                (&procs).write(pid).map(drop)
            });
        }
    }

    /// Removes the group once its processes have exited (they were killed), retrying
    /// briefly, and the parent if this was its last group.
    pub(super) async fn remove(mut self) {
        self.removed = true;
        for attempt in 1..=REMOVAL_ATTEMPTS {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => break,
                Err(err) if err.kind() == io::ErrorKind::NotFound => break,
                Err(err) if attempt == REMOVAL_ATTEMPTS => {
                    tracing::warn!(group = %self.dir.display(), error = %err, "an environment's cgroup could not be removed");
                    return;
                }
                Err(_) => tokio::time::sleep(REMOVAL_PAUSE).await,
            }
        }
        remove_parent_if_empty(&self.parent);
    }
}

impl Drop for Group {
    /// An environment that never started, or whose task ended with the runtime: one try.
    fn drop(&mut self) {
        if !self.removed && std::fs::remove_dir(&self.dir).is_ok() {
            remove_parent_if_empty(&self.parent);
        }
    }
}

fn remove_parent_if_empty(parent: &Path) {
    let _lock = PARENT_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    // Refused while another environment's group is inside: that one removes it.
    let _ = std::fs::remove_dir(parent);
}

/// `value` in decimal in `buffer`, without allocating.
fn decimal(mut value: u32, buffer: &mut [u8; 10]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory tree standing for `/`, removed at the end.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new() -> Self {
            let root = std::env::temp_dir().join(format!(
                "hybridlab-cpu-share-test-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(root.join("proc/self")).expect("a temporary directory");
            Self(root)
        }

        fn file(&self, path: &str, text: &str) -> &Self {
            let path = self.0.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("directories");
            std::fs::write(path, text).expect("written");
            self
        }

        fn dir(&self, path: &str) -> PathBuf {
            let path = self.0.join(path);
            std::fs::create_dir_all(&path).expect("directories");
            path
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// This machine's kind: a v1 cpu hierarchy and a cgroup2 without the cpu controller.
    const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n4:memory:/process_api/af9f\n2:cpuacct:/\n1:cpu:/lab\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    /// A systemd machine: the unified hierarchy only, the sandbox in a session scope.
    const UNIFIED_CGROUP: &str = "0::/user.slice/lab.scope\n";
    const UNIFIED_MOUNTS: &str = "\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn a_v2_group_with_the_cpu_controller_is_used_first() {
        let root = FakeRoot::new();
        root.file("proc/self/cgroup", UNIFIED_CGROUP)
            .file("proc/self/mountinfo", UNIFIED_MOUNTS)
            .file(
                "sys/fs/cgroup/user.slice/lab.scope/cgroup.controllers",
                "cpuset cpu io memory pids\n",
            )
            .file(
                "sys/fs/cgroup/user.slice/lab.scope/cgroup.subtree_control",
                "cpu memory\n",
            );
        let hierarchy = detect(&root.0, 4242).expect("v2");
        assert_eq!(hierarchy.version, Version::V2);
        let base = root.0.join("sys/fs/cgroup/user.slice/lab.scope");
        assert_eq!(hierarchy.base, base);
        assert_eq!(hierarchy.parent, base.join("hybridlab-4242"));

        hierarchy.prepare(|_| true).expect("prepared");
        let quota = CpuQuota::for_memory(128, 2);
        let group = hierarchy.group("env1", quota).expect("a group");
        let read = |file: &str| std::fs::read_to_string(group.dir.join(file)).expect(file);
        assert_eq!(read("cpu.max"), "7236 100000");
        assert_eq!(
            std::fs::read_to_string(hierarchy.parent.join("cgroup.subtree_control"))
                .expect("enabled"),
            "+cpu",
            "the parent gives cpu to the environments' groups"
        );
        assert_eq!(group.dir, base.join("hybridlab-4242/env1"));
    }

    #[test]
    fn a_v2_group_that_cannot_give_cpu_to_children_is_refused_with_the_file_named() {
        let root = FakeRoot::new();
        root.file("proc/self/cgroup", UNIFIED_CGROUP)
            .file("proc/self/mountinfo", UNIFIED_MOUNTS)
            .file(
                "sys/fs/cgroup/user.slice/lab.scope/cgroup.controllers",
                "cpu memory\n",
            );
        // No cgroup.subtree_control and it cannot be written (a directory stands in its way).
        root.dir("sys/fs/cgroup/user.slice/lab.scope/cgroup.subtree_control");
        let hierarchy = detect(&root.0, 4242).expect("v2 is detected");
        let why = hierarchy.prepare(|_| true).expect_err("not usable");
        assert!(why.contains("cgroup.subtree_control"), "{why}");
    }

    #[test]
    fn v1_is_used_where_the_unified_hierarchy_has_no_cpu_controller() {
        let root = FakeRoot::new();
        root.file("proc/self/cgroup", HYBRID_CGROUP)
            .file("proc/self/mountinfo", HYBRID_MOUNTS)
            .file("sys/fs/cgroup/unified/cgroup.controllers", "")
            .file("sys/fs/cgroup/cpu/lab/cpu.cfs_period_us", "100000\n")
            .file("sys/fs/cgroup/cpu/lab/cpu.cfs_quota_us", "-1\n");
        let hierarchy = detect(&root.0, 7).expect("v1");
        assert_eq!(hierarchy.version, Version::V1);
        assert_eq!(hierarchy.base, root.0.join("sys/fs/cgroup/cpu/lab"));

        hierarchy.prepare(|_| true).expect("prepared");
        assert!(
            !hierarchy.parent.exists(),
            "the parent waits for the first environment"
        );
        let group = hierarchy
            .group("env1", CpuQuota::for_memory(1769, 2))
            .expect("a group");
        let read = |file: &str| std::fs::read_to_string(group.dir.join(file)).expect(file);
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.cfs_quota_us"), "100000");
        let unlimited = hierarchy
            .group("env2", CpuQuota::for_memory(10_240, 2))
            .expect("a group");
        assert_eq!(
            std::fs::read_to_string(unlimited.dir.join("cpu.cfs_quota_us")).expect("quota"),
            "-1",
            "more than the machine is the machine"
        );
    }

    #[test]
    fn without_either_the_reason_names_what_is_missing() {
        let root = FakeRoot::new();
        root.file("proc/self/cgroup", HYBRID_CGROUP)
            .file("proc/self/mountinfo", HYBRID_MOUNTS)
            .file("sys/fs/cgroup/unified/cgroup.controllers", "memory pids\n");
        // The cpu hierarchy is mounted but has no bandwidth control files.
        root.dir("sys/fs/cgroup/cpu/lab");
        let why = detect(&root.0, 7).expect_err("no mechanism");
        assert!(
            why.contains("unified/cgroup.controllers does not list the cpu controller (it lists: memory pids)"),
            "{why}"
        );
        assert!(
            why.contains("cpu/lab/cpu.cfs_period_us is missing"),
            "{why}"
        );

        let bare = FakeRoot::new();
        bare.file("proc/self/cgroup", "").file(
            "proc/self/mountinfo",
            "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n",
        );
        let why = detect(&bare.0, 7).expect_err("no cgroups at all");
        assert!(
            why.starts_with("cgroup v2: the sandbox is in no v2 group"),
            "{why}"
        );
        assert!(
            why.contains("cgroup v1: the sandbox is in no group of a cpu hierarchy"),
            "{why}"
        );

        let nothing = FakeRoot::new();
        let why = detect(&nothing.0, 7).expect_err("no procfs");
        assert!(why.starts_with("cannot read /proc/self/cgroup"), "{why}");
    }

    #[test]
    fn a_namespaced_mount_shows_only_its_subtree() {
        let mounts = mounts(
            "40 31 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n50 1 0:1 / /mnt/with\\040space rw - cgroup cgroup rw,cpuacct,cpu\n",
        );
        let v2 = mount_of(&mounts, Version::V2, "/docker/abc/lab").expect("inside");
        assert_eq!(
            directory(Path::new("/"), v2, "/docker/abc/lab"),
            Some(PathBuf::from("/sys/fs/cgroup/lab"))
        );
        assert!(mount_of(&mounts, Version::V2, "/docker/abcd").is_none());
        let v1 = mount_of(&mounts, Version::V1, "/").expect("cpu among the options");
        assert_eq!(v1.point, "/mnt/with space");
        assert_eq!(
            own_group("3:cpuacct,cpu:/a\n0::/b\n", Version::V1),
            Some("/a")
        );
        assert_eq!(
            own_group("3:cpuacct,cpu:/a\n0::/b\n", Version::V2),
            Some("/b")
        );
        assert_eq!(own_group("3:cpuacct,cpuset:/a\n", Version::V1), None);
    }

    #[test]
    fn groups_of_killed_sandboxes_are_removed_and_live_ones_kept() {
        let root = FakeRoot::new();
        let base = root.dir("cpu/lab");
        let dead = root.dir("cpu/lab/hybridlab-111");
        root.dir("cpu/lab/hybridlab-111/env-a");
        root.dir("cpu/lab/hybridlab-111/env-b");
        let living = root.dir("cpu/lab/hybridlab-222");
        root.dir("cpu/lab/hybridlab-222/env-c");
        let own = root.dir("cpu/lab/hybridlab-7");
        let unrelated = root.dir("cpu/lab/hybridlab-tests");
        let hierarchy = Hierarchy::new(Version::V1, base, 7);
        let removed = hierarchy.remove_stale(|pid| pid == 222);
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(!dead.exists());
        assert!(living.join("env-c").exists(), "its sandbox runs");
        assert!(own.exists(), "this sandbox's own");
        assert!(unrelated.exists(), "not a sandbox's");
    }

    #[test]
    fn a_pid_is_written_in_decimal() {
        let mut buffer = [0; 10];
        assert_eq!(decimal(0, &mut buffer), b"0");
        assert_eq!(decimal(4_294_967_295, &mut buffer), b"4294967295");
        assert_eq!(decimal(31_337, &mut buffer), b"31337");
        assert_eq!(parent_pid("hybridlab-31337"), Some(31337));
        assert_eq!(parent_pid("hybridlab-x"), None);
    }
}
