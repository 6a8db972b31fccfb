//! The decode budget: how many images are decoded at once (one per core) and how much memory
//! their decodes may hold together, from the instance's memory. Each decode reserves the peak
//! its header promises (`hybridlab_imaging::decode_cost`) before it starts and gives it back
//! when it ends; one larger than the whole budget is refused, others wait their turn for a
//! bounded time, then get the same 503 as an overloaded server.
//!
//! A count alone is not enough: a 64-megapixel 16-bit PNG needs about 800 MB, so two of them
//! at once get the server OOM-killed on a 1 GiB `t3.micro` whatever the number of cores.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hybridlab_imaging::{DecodeCost, ImagingError};
use hybridlab_wire::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

/// The share of the instance's memory the decodes may hold, in percent. The rest is the OS
/// (about 200 MB on Amazon Linux 2023), the server itself and the downloads in flight.
pub const DEFAULT_MEMORY_PERCENT: u64 = 60;

/// The memory assumed when the instance's cannot be read (not Linux): a `t3.micro`'s.
const FALLBACK_MEMORY_BYTES: u64 = 1024 * 1024 * 1024;

/// The reservations are counted in KiB so a budget of terabytes still fits a semaphore.
const UNIT: u64 = 1024;

/// The workers and the memory shared by every decode.
#[derive(Debug)]
pub(crate) struct DecodeBudget {
    workers: Arc<Semaphore>,
    worker_count: usize,
    memory: Arc<Semaphore>,
    memory_bytes: u64,
    wait: Duration,
}

/// What a running decode holds; given back when the decode ends, whoever is still waiting.
#[derive(Debug)]
pub(crate) struct DecodeSlot {
    _worker: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

impl DecodeBudget {
    pub(crate) fn new(worker_count: usize, memory_bytes: u64, wait: Duration) -> Self {
        let units = (memory_bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Self {
            workers: Arc::new(Semaphore::new(worker_count)),
            worker_count,
            memory: Arc::new(Semaphore::new(units as usize)),
            memory_bytes: units * UNIT,
            wait,
        }
    }

    /// The whole budget, in bytes: also the most one decode may need.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Decodes running now, including those whose client has gone.
    pub(crate) fn decoding(&self) -> usize {
        self.worker_count
            .saturating_sub(self.workers.available_permits())
    }

    /// Reserves a worker and `cost.peak_bytes` of memory, waiting at most the configured time
    /// for both. Memory is taken first, then the worker, always in that order, so two
    /// requests never hold one each while waiting for the other.
    pub(crate) async fn acquire(&self, cost: &DecodeCost) -> Result<DecodeSlot, AppError> {
        let units = cost.peak_bytes.div_ceil(UNIT);
        if units * UNIT > self.memory_bytes {
            return Err(AppError::from(ImagingError::TooMuchMemory {
                width: cost.width,
                height: cost.height,
                needed_bytes: cost.peak_bytes,
                max_bytes: self.memory_bytes,
            }));
        }
        // At most the whole budget, which fits a u32 of KiB up to 4 TiB.
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let reserve = async {
            let memory = self.memory.clone().acquire_many_owned(units).await;
            let worker = self.workers.clone().acquire_owned().await;
            match (memory, worker) {
                (Ok(memory), Ok(worker)) => Ok(DecodeSlot {
                    _worker: worker,
                    _memory: memory,
                }),
                // The semaphores are never closed.
                (Err(err), _) | (_, Err(err)) => Err(AppError::internal(err)),
            }
        };
        match tokio::time::timeout(self.wait, reserve).await {
            Ok(slot) => slot,
            Err(_) => {
                let mut err = AppError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "the server's decoders are busy: this image needs {} MiB of the {} MiB \
                         budget and a worker, which did not free up within {} ms; retry shortly",
                        cost.peak_bytes.div_ceil(1024 * 1024),
                        self.memory_bytes / (1024 * 1024),
                        self.wait.as_millis()
                    ),
                );
                err.retry_after = Some(1);
                Err(err)
            }
        }
    }
}

/// The memory the decodes may hold: `configured_mib` if given, else
/// [`DEFAULT_MEMORY_PERCENT`] of what this process may use (the smaller of its cgroup's
/// `memory.max` and the machine's `MemTotal`).
pub(crate) fn decode_memory_bytes(configured_mib: Option<u64>) -> u64 {
    if let Some(mib) = configured_mib {
        return mib.saturating_mul(1024 * 1024);
    }
    let available = available_memory(Path::new("/")).unwrap_or(FALLBACK_MEMORY_BYTES);
    available / 100 * DEFAULT_MEMORY_PERCENT
}

/// The smaller of the cgroup v2 limit of this process and the machine's memory, read under
/// `root` (`/` but in tests).
fn available_memory(root: &Path) -> Option<u64> {
    let total = std::fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|meminfo| mem_total(&meminfo));
    let limit = std::fs::read_to_string(root.join("proc/self/cgroup"))
        .ok()
        .and_then(|cgroup| cgroup_v2_path(&cgroup))
        .and_then(|path| {
            let relative = path.trim_start_matches('/');
            let file = root.join("sys/fs/cgroup").join(relative).join("memory.max");
            std::fs::read_to_string(file).ok()
        })
        .and_then(|max| max.trim().parse::<u64>().ok());
    match (total, limit) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The cgroup v2 path of `/proc/self/cgroup` (its `0::` line).
fn cgroup_v2_path(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_the_smaller_of_the_cgroup_limit_and_the_machine() {
        let root = std::env::temp_dir().join(format!("hybridlab-budget-{}", std::process::id()));
        let cgroup = root.join("sys/fs/cgroup/system.slice/hybridlab.service");
        std::fs::create_dir_all(root.join("proc/self")).expect("a directory");
        std::fs::create_dir_all(&cgroup).expect("a directory");
        std::fs::write(
            root.join("proc/meminfo"),
            "MemTotal:         949444 kB\nMemFree:  1 kB\n",
        )
        .expect("written");
        std::fs::write(
            root.join("proc/self/cgroup"),
            "0::/system.slice/hybridlab.service\n",
        )
        .expect("written");
        std::fs::write(cgroup.join("memory.max"), "max\n").expect("written");
        assert_eq!(available_memory(&root), Some(949_444 * 1024));
        std::fs::write(cgroup.join("memory.max"), "536870912\n").expect("written");
        assert_eq!(available_memory(&root), Some(512 * 1024 * 1024));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_configured_budget_wins_and_the_default_is_a_share_of_the_machine() {
        assert_eq!(decode_memory_bytes(Some(600)), 600 * 1024 * 1024);
        let machine = available_memory(Path::new("/")).expect("Linux has /proc/meminfo");
        assert_eq!(
            decode_memory_bytes(None),
            machine / 100 * DEFAULT_MEMORY_PERCENT
        );
    }

    fn cost(peak_bytes: u64) -> DecodeCost {
        hybridlab_imaging::DecodeCost {
            format: hybridlab_imaging::SourceFormat::Png,
            width: 10,
            height: 10,
            peak_bytes,
        }
    }

    #[tokio::test]
    async fn decodes_share_the_memory_and_one_larger_than_all_of_it_is_refused() {
        let budget = DecodeBudget::new(4, 100 * 1024 * 1024, Duration::from_millis(100));
        let err = budget
            .acquire(&cost(101 * 1024 * 1024))
            .await
            .expect_err("larger than the budget");
        assert_eq!(err.code, ErrorCode::ImageTooLarge);

        let first = budget.acquire(&cost(60 * 1024 * 1024)).await.expect("fits");
        assert_eq!(budget.decoding(), 1);
        let err = budget
            .acquire(&cost(60 * 1024 * 1024))
            .await
            .expect_err("waits, then gives up");
        assert_eq!(err.code, ErrorCode::Overloaded);
        assert_eq!(err.retry_after, Some(1));
        let small = budget
            .acquire(&cost(30 * 1024 * 1024))
            .await
            .expect("fits beside");
        drop(first);
        let _second = budget
            .acquire(&cost(60 * 1024 * 1024))
            .await
            .expect("freed");
        drop(small);
        assert_eq!(budget.decoding(), 1);
    }
}
