//! Each Lambda execution environment gets the CPU share Lambda gives its memory: "Lambda
//! allocates CPU power in proportion to the amount of memory configured ... at 1,769 MB, a
//! function has the equivalent of one vCPU" (AWS Lambda Developer Guide, "Configuring Lambda
//! function memory"). Without it every environment could use the whole machine and a memory
//! sweep would show nothing.
//!
//! The cap is a CFS bandwidth quota per environment: `period × memory / 1,769` of CPU time
//! per 100 ms period, through cgroup v2's `cpu.max` where the sandbox's group can give the
//! `cpu` controller to children, else cgroup v1's `cpu.cfs_quota_us` (see `cgroup`). Where
//! neither works there is no cap, and [`CpuShare::status`] says why. The arithmetic lives
//! here; the cgroup files, Linux's alone, in `cgroup`.

#[cfg(target_os = "linux")]
mod cgroup;

use std::path::PathBuf;

use hybridlab_wire::lambda_cpu::{CpuMechanism, LambdaCpuShare, ONE_VCPU_MB};

/// The CFS period of every environment's group, the kernel's default.
pub const PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts.
pub const MIN_QUOTA_US: u64 = 1_000;

/// Why an environment's group could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CpuShareError {
    #[error("cannot {action} {}: {source}", path.display())]
    Group {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, CpuShareError>;

/// An environment's CPU cap: `quota_us` of CPU time per `period_us`; `None` is no cap, for
/// memory worth at least every CPU of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    pub period_us: u64,
    pub quota_us: Option<u64>,
}

impl CpuQuota {
    /// The cap of `memory_mb` on a machine of `machine_cpus` CPUs: `memory_mb / 1,769` CPUs,
    /// at least [`MIN_QUOTA_US`] per period.
    pub fn for_memory(memory_mb: u32, machine_cpus: u32) -> Self {
        let period_us = PERIOD_US;
        let quota_us = if memory_mb >= ONE_VCPU_MB.saturating_mul(machine_cpus.max(1)) {
            None
        } else {
            let share = u64::from(memory_mb) * period_us;
            let one_vcpu = u64::from(ONE_VCPU_MB);
            // Rounded to the nearest microsecond.
            Some(((share + one_vcpu / 2) / one_vcpu).max(MIN_QUOTA_US))
        };
        Self {
            period_us,
            quota_us,
        }
    }

    /// The CPUs the cap allows, `None` for the whole machine.
    pub fn cpus(&self) -> Option<f64> {
        self.quota_us
            .map(|quota| quota as f64 / self.period_us as f64)
    }

    /// cgroup v2's `cpu.max`: `$QUOTA $PERIOD`, `max` for no cap.
    pub fn cpu_max(&self) -> String {
        match self.quota_us {
            Some(quota) => format!("{quota} {}", self.period_us),
            None => format!("max {}", self.period_us),
        }
    }

    /// cgroup v1's `cpu.cfs_quota_us`: `-1` for no cap.
    pub fn cfs_quota_us(&self) -> String {
        self.quota_us
            .map_or_else(|| "-1".to_owned(), |quota| quota.to_string())
    }
}

/// How this sandbox caps its environments' CPU, made once at start.
#[derive(Debug)]
pub struct CpuShare {
    status: LambdaCpuShare,
    machine_cpus: u32,
    #[cfg(target_os = "linux")]
    hierarchy: Option<cgroup::Hierarchy>,
}

impl CpuShare {
    /// Finds the mechanism this machine offers the sandbox's process, after removing the
    /// groups killed sandboxes left.
    pub fn start() -> Self {
        let machine_cpus = std::thread::available_parallelism()
            .map_or(1, |cpus| u32::try_from(cpus.get()).unwrap_or(u32::MAX));
        Self::start_at_root(machine_cpus)
    }

    #[cfg(target_os = "linux")]
    fn start_at_root(machine_cpus: u32) -> Self {
        Self::prepared(
            cgroup::detect(std::path::Path::new("/"), std::process::id()),
            machine_cpus,
            crate::control::alive,
        )
    }

    /// cgroups are Linux's: elsewhere there is no cap.
    #[cfg(not(target_os = "linux"))]
    fn start_at_root(machine_cpus: u32) -> Self {
        Self {
            status: LambdaCpuShare {
                mechanism: CpuMechanism::None,
                detail: format!(
                    "cgroups exist only on Linux, not on {}",
                    std::env::consts::OS
                ),
                groups: None,
            },
            machine_cpus,
        }
    }

    /// The share from a detection's outcome, once the hierarchy is ready for groups.
    #[cfg(target_os = "linux")]
    fn prepared(
        detected: std::result::Result<cgroup::Hierarchy, String>,
        machine_cpus: u32,
        alive: impl Fn(u32) -> bool,
    ) -> Self {
        let ready = detected.and_then(|hierarchy| {
            let removed = hierarchy.prepare(alive)?;
            if !removed.is_empty() {
                tracing::info!(
                    groups = removed.len(),
                    "removed the cgroups of sandboxes that were killed"
                );
            }
            Ok(hierarchy)
        });
        match ready {
            Ok(hierarchy) => {
                let (mechanism, files) = match hierarchy.version {
                    cgroup::Version::V2 => (CpuMechanism::CgroupV2, "cpu.max"),
                    cgroup::Version::V1 => (
                        CpuMechanism::CgroupV1,
                        "cpu.cfs_quota_us per cpu.cfs_period_us",
                    ),
                };
                let status = LambdaCpuShare {
                    mechanism,
                    detail: format!(
                        "a group per environment in {}: memory / {ONE_VCPU_MB} MB of a CPU ({files}, {} ms period), up to the machine's {machine_cpus} CPUs",
                        hierarchy.parent.display(),
                        PERIOD_US / 1000
                    ),
                    groups: Some(hierarchy.parent.display().to_string()),
                };
                Self {
                    status,
                    machine_cpus,
                    hierarchy: Some(hierarchy),
                }
            }
            Err(why) => Self {
                status: LambdaCpuShare {
                    mechanism: CpuMechanism::None,
                    detail: why,
                    groups: None,
                },
                machine_cpus,
                hierarchy: None,
            },
        }
    }

    /// What the sandbox's status says.
    pub fn status(&self) -> &LambdaCpuShare {
        &self.status
    }

    /// The cap of an environment of `memory_mb` here.
    pub fn quota(&self, memory_mb: u32) -> CpuQuota {
        CpuQuota::for_memory(memory_mb, self.machine_cpus)
    }

    /// A group named `name` for an environment of `memory_mb`; `None` without a mechanism.
    pub(crate) fn environment_group(
        &self,
        name: &str,
        memory_mb: u32,
    ) -> Result<Option<EnvironmentGroup>> {
        #[cfg(target_os = "linux")]
        if let Some(hierarchy) = &self.hierarchy {
            let group = hierarchy.group(name, self.quota(memory_mb))?;
            return Ok(Some(EnvironmentGroup { group }));
        }
        let _ = (name, memory_mb);
        Ok(None)
    }

    /// At shutdown: removes the sandbox's parent group once its environments' groups are gone.
    pub async fn release(&self) {
        #[cfg(target_os = "linux")]
        if let Some(hierarchy) = &self.hierarchy {
            hierarchy.release().await;
        }
    }
}

/// The group of one environment: its process enters it before it runs the function's code,
/// and it is removed when the environment ends.
#[derive(Debug)]
pub(crate) struct EnvironmentGroup {
    #[cfg(target_os = "linux")]
    group: cgroup::Group,
}

impl EnvironmentGroup {
    /// Makes the process `command` starts enter the group before it `exec`s.
    pub(crate) fn enter_before_exec(&mut self, command: &mut tokio::process::Command) {
        #[cfg(target_os = "linux")]
        self.group.enter_before_exec(command);
        #[cfg(not(target_os = "linux"))]
        let _ = command;
    }

    /// Removes the group once the environment's processes have exited.
    pub(crate) async fn remove(self) {
        #[cfg(target_os = "linux")]
        self.group.remove().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_the_memorys_share_of_a_100_ms_period() {
        let at = |memory_mb| CpuQuota::for_memory(memory_mb, 2);
        // 128 / 1769 of 100 ms is 7,235.7 µs.
        assert_eq!(at(128).quota_us, Some(7236));
        assert_eq!(at(128).cpu_max(), "7236 100000");
        assert_eq!(at(128).cfs_quota_us(), "7236");
        assert_eq!(at(1769).quota_us, Some(100_000), "one vCPU");
        assert_eq!(at(1024).quota_us, Some(57_886));
        assert_eq!(at(3000).quota_us, Some(169_587), "1.7 CPUs of 2");
        assert_eq!(at(128).period_us, PERIOD_US);
        let cpus = at(1769).cpus().expect("a cap");
        assert!((cpus - 1.0).abs() < 1e-9, "{cpus}");
    }

    #[test]
    fn the_quota_is_at_least_a_millisecond_and_at_most_the_machine() {
        assert_eq!(CpuQuota::for_memory(1, 2).quota_us, Some(MIN_QUOTA_US));
        assert_eq!(CpuQuota::for_memory(0, 2).quota_us, Some(MIN_QUOTA_US));
        // Two CPUs' worth on a two-CPU machine: the machine, no cap.
        let whole = CpuQuota::for_memory(2 * 1769, 2);
        assert_eq!(whole.quota_us, None);
        assert_eq!(whole.cpu_max(), "max 100000");
        assert_eq!(whole.cfs_quota_us(), "-1");
        assert_eq!(whole.cpus(), None);
        assert_eq!(CpuQuota::for_memory(10_240, 2).quota_us, None);
        // Six vCPUs at 10,240 MB on a machine that has them.
        assert_eq!(CpuQuota::for_memory(10_240, 8).quota_us, Some(578_858));
        // A machine that reports no CPU is taken as one.
        assert_eq!(CpuQuota::for_memory(1769, 0).quota_us, None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn no_mechanism_gives_no_groups_and_says_why() {
        let share = CpuShare::prepared(Err("no cpu controller anywhere".into()), 2, |_| true);
        assert_eq!(share.status().mechanism, CpuMechanism::None);
        assert_eq!(share.status().detail, "no cpu controller anywhere");
        assert!(
            share
                .environment_group("env", 128)
                .expect("no error")
                .is_none()
        );
    }

    /// On the machine running the tests: either a group really caps a process that enters
    /// it, or the status says there is no mechanism, with a reason.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn on_this_machine_a_group_caps_its_process_or_the_status_says_why_not() {
        let share = CpuShare::start();
        let status = share.status().clone();
        eprintln!("{}", status.line());
        let name = format!("unit-{}", uuid::Uuid::new_v4().simple());
        let Some(mut group) = share.environment_group(&name, 128).expect("a group") else {
            assert_eq!(status.mechanism, CpuMechanism::None);
            assert!(!status.detail.is_empty());
            return;
        };
        let parent = PathBuf::from(status.groups.clone().expect("the groups' directory"));
        let mut command = tokio::process::Command::new("sleep");
        command.arg("30").kill_on_drop(true);
        group.enter_before_exec(&mut command);
        let mut child = command.spawn().expect("sleep starts");
        let pid = child.id().expect("a pid");
        let membership =
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroups");
        let quota_file = match status.mechanism {
            CpuMechanism::CgroupV2 => "cpu.max",
            _ => "cpu.cfs_quota_us",
        };
        let quota = std::fs::read_to_string(parent.join(&name).join(quota_file)).expect("quota");
        child.kill().await.expect("killed");
        group.remove().await;
        share.release().await;
        assert!(
            membership.lines().any(|line| line.ends_with(&format!(
                "/{}/{name}",
                cgroup::parent_name(std::process::id())
            ))),
            "{membership}"
        );
        assert!(quota.starts_with("7236"), "{quota}");
        assert!(!parent.join(&name).exists(), "the group is removed");
    }
}
