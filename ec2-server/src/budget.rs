//! The decode budget: how many images are decoded at once (one per core) and how much memory
//! their decodes may hold together, from the instance's memory. Each decode reserves the peak
//! its header promises (`hybridlab_imaging::decode_cost`) before it starts and gives it back
//! when it ends; one larger than the whole budget is refused, others wait their turn for a
//! bounded time, then get the same 503 as an overloaded server.
//!
//! A count alone is not enough: a 64-megapixel 16-bit PNG needs about 800 MB, so two of them
//! at once get the server OOM-killed on a 1 GiB `t3.micro` whatever the number of cores.
//!
//! The download budget bounds the bytes the downloads hold in memory the same way: each
//! admitted request may download up to `--max-download-bytes` (25 MiB) before its decode, and
//! 64 of them at once would be 1.6 GB. A download reserves its Content-Length before reading
//! the body, or 1 MiB at a time as a body of unknown length grows, and keeps the reservation
//! as long as its bytes live (through the decode and the upload of the original).
//!
//! Downloads have their own share of memory rather than drawing on the decode budget. A
//! request holds its download while it waits for its decode's memory: with one pool, a crowd
//! of downloads could fill it and leave every decode waiting for memory held by requests that
//! are themselves waiting to decode, all ending in 503 with no work done. With two pools a
//! request takes download memory first and decode memory second, and nothing that holds decode
//! memory waits for download memory, so neither waits on the other in a circle. The decode's
//! estimate counts its encoded input too, so an original is counted twice while it decodes:
//! the budgets err on the safe side.
//!
//! `POST /upload` draws on the download budget too, with the same reservation: a download and
//! an uploaded file are both request input held in memory before it is stored, each up to
//! 25 MiB under the same 64-request admission, so one byte budget bounds them together. An
//! upload never decodes, so it holds no decode memory while it waits for input memory and the
//! order above still holds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hybridlab_imaging::{DecodeCost, ImagingError};
use hybridlab_wire::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::download::DownloadError;
use crate::error::AppError;

/// The share of the instance's memory the decodes may hold, in percent. With the downloads'
/// share, what is left (a quarter) is the OS (about 200 MB on Amazon Linux 2023) and the
/// server itself.
pub const DEFAULT_MEMORY_PERCENT: u64 = 60;

/// The share of the instance's memory the downloads in flight may hold, in percent: about
/// 140 MiB on a `t3.micro`, five downloads of the largest size or dozens of ordinary photos
/// at once. Beside the decodes' 60% it leaves a quarter for the OS and the server.
pub const DEFAULT_DOWNLOAD_MEMORY_PERCENT: u64 = 15;

/// What a download (or an upload) of unknown length reserves at a time.
pub(crate) const DOWNLOAD_CHUNK_BYTES: u64 = 1024 * 1024;

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

/// The memory the downloads and uploads in flight hold together.
#[derive(Debug)]
pub(crate) struct DownloadBudget {
    memory: Arc<Semaphore>,
    memory_bytes: u64,
    wait: Duration,
}

/// The memory one download or upload has reserved: grown with its body, given back when
/// dropped.
#[derive(Debug)]
pub(crate) struct DownloadMemory {
    budget: Arc<DownloadBudget>,
    permit: Option<OwnedSemaphorePermit>,
    /// Bytes reserved, a whole number of [`UNIT`]s.
    bytes: u64,
    /// Time spent waiting for memory so far: a download waits at most the budget's `wait`
    /// in all, however many times its body grows.
    waited: Duration,
}

impl DownloadBudget {
    pub(crate) fn new(memory_bytes: u64, wait: Duration) -> Self {
        // Rounded up, so a budget of exactly one largest download holds one.
        let units = memory_bytes
            .div_ceil(UNIT)
            .clamp(1, Semaphore::MAX_PERMITS as u64);
        Self {
            memory: Arc::new(Semaphore::new(units as usize)),
            memory_bytes: units * UNIT,
            wait,
        }
    }

    /// The whole budget, in bytes.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// The bytes the downloads (and the images they fetched) and the uploads hold now.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> u64 {
        self.memory_bytes - self.memory.available_permits() as u64 * UNIT
    }

    /// An empty reservation for one download.
    pub(crate) fn reserve(self: &Arc<Self>) -> DownloadMemory {
        DownloadMemory {
            budget: self.clone(),
            permit: None,
            bytes: 0,
            waited: Duration::ZERO,
        }
    }
}

impl DownloadMemory {
    /// Bytes reserved.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Grows the reservation to at least `bytes`, waiting for the memory to free up for what
    /// is left of the budget's wait; then the download is refused with the 503 of a busy
    /// server. A download that holds part of its memory while it waits for more cannot block
    /// the others for longer than that: it gives up and frees what it holds.
    pub(crate) async fn grow_to(&mut self, bytes: u64) -> Result<(), DownloadError> {
        if bytes <= self.bytes {
            return Ok(());
        }
        let budget = self.budget.clone();
        // The start-up check keeps the budget at least one download of the largest size.
        if bytes > budget.memory_bytes {
            return Err(DownloadError::TooLarge {
                limit: budget.memory_bytes,
            });
        }
        let units = (bytes - self.bytes).div_ceil(UNIT);
        // At most the whole budget, which fits a u32 of KiB up to 4 TiB.
        let units_u32 = u32::try_from(units).unwrap_or(u32::MAX);
        let left = budget.wait.saturating_sub(self.waited);
        let started = Instant::now();
        // The semaphore is fair: a large reservation waiting first is not starved by small
        // ones; one that can be had at once is taken even when no wait is left.
        let acquired =
            tokio::time::timeout(left, budget.memory.clone().acquire_many_owned(units_u32)).await;
        self.waited += started.elapsed();
        match acquired {
            Ok(Ok(permit)) => {
                match &mut self.permit {
                    Some(held) => held.merge(permit),
                    None => self.permit = Some(permit),
                }
                self.bytes += units * UNIT;
                Ok(())
            }
            // The semaphore is never closed; a closed one would refuse every download alike.
            Ok(Err(_)) | Err(_) => Err(DownloadError::Busy {
                needed_bytes: bytes - self.bytes,
                budget_bytes: budget.memory_bytes,
                waited: self.waited,
            }),
        }
    }

    /// Makes room in `body`, which this reservation covers, for `more` bytes: when they do not
    /// fit its capacity, the reservation grows first (see [`next_download_reservation`], never
    /// past `max_bytes`, which the caller checks the body against), then the buffer grows to
    /// exactly the reservation, never doubled as a growing buffer would be.
    pub(crate) async fn make_room(
        &mut self,
        body: &mut Vec<u8>,
        more: usize,
        max_bytes: u64,
    ) -> Result<(), DownloadError> {
        let needed = body.len() as u64 + more as u64;
        if needed <= body.capacity() as u64 {
            return Ok(());
        }
        let target = next_download_reservation(needed, self.bytes, max_bytes);
        self.grow_to(target).await?;
        let target = usize::try_from(target).unwrap_or(usize::MAX);
        body.reserve_exact(target.saturating_sub(body.len()));
        Ok(())
    }

    /// `body` as [`Bytes`] that own this reservation: the memory is given back when the last
    /// copy is dropped, wherever the bytes went meanwhile (a decode, an S3 put).
    pub(crate) fn hold(self, body: Vec<u8>) -> Bytes {
        Bytes::from_owner(HeldBody {
            bytes: body,
            _memory: self,
        })
    }
}

/// Bytes with the memory reserved for them.
struct HeldBody {
    bytes: Vec<u8>,
    _memory: DownloadMemory,
}

impl AsRef<[u8]> for HeldBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The reservation a download of unknown length grows to when `needed` bytes no longer fit
/// the `reserved` ones: the next [`DOWNLOAD_CHUNK_BYTES`] (or more, for a chunk larger than
/// that), never past the download's cap `max_bytes`.
pub(crate) fn next_download_reservation(needed: u64, reserved: u64, max_bytes: u64) -> u64 {
    needed
        .max(reserved.saturating_add(DOWNLOAD_CHUNK_BYTES))
        .min(max_bytes)
        .max(needed)
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

/// The memory the downloads and uploads may hold: `configured_mib` if given, else
/// [`DEFAULT_DOWNLOAD_MEMORY_PERCENT`] of what this process may use, and at least
/// `largest_bytes` (the larger of the download and upload caps) so that the largest image
/// allowed can be fetched or uploaded at all.
pub(crate) fn download_memory_bytes(configured_mib: Option<u64>, largest_bytes: u64) -> u64 {
    if let Some(mib) = configured_mib {
        return mib.saturating_mul(1024 * 1024);
    }
    let available = available_memory(Path::new("/")).unwrap_or(FALLBACK_MEMORY_BYTES);
    (available / 100 * DEFAULT_DOWNLOAD_MEMORY_PERCENT).max(largest_bytes)
}

/// The smaller of the cgroup v2 limit of this process and the machine's memory, read under
/// `root` (`/` but in tests).
#[cfg(target_os = "linux")]
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

/// Where there is no procfs (the server run by the sandbox on macOS), the fallback budget:
/// the instance the server is written for is Linux.
#[cfg(not(target_os = "linux"))]
fn available_memory(_root: &Path) -> Option<u64> {
    None
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
#[cfg(target_os = "linux")]
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The cgroup v2 path of `/proc/self/cgroup` (its `0::` line).
#[cfg(target_os = "linux")]
fn cgroup_v2_path(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
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

    #[cfg(target_os = "linux")]
    #[test]
    fn a_configured_budget_wins_and_the_default_is_a_share_of_the_machine() {
        assert_eq!(decode_memory_bytes(Some(600)), 600 * 1024 * 1024);
        let machine = available_memory(Path::new("/")).expect("Linux has /proc/meminfo");
        assert_eq!(
            decode_memory_bytes(None),
            machine / 100 * DEFAULT_MEMORY_PERCENT
        );
    }

    const MIB: u64 = 1024 * 1024;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_configured_download_budget_wins_and_the_default_holds_one_largest_download() {
        assert_eq!(download_memory_bytes(Some(100), 25 * MIB), 100 * MIB);
        let machine = available_memory(Path::new("/")).expect("Linux has /proc/meminfo");
        let share = machine / 100 * DEFAULT_DOWNLOAD_MEMORY_PERCENT;
        assert_eq!(download_memory_bytes(None, MIB), share.max(MIB));
        assert_eq!(
            download_memory_bytes(None, machine),
            machine,
            "at least one download of the largest size"
        );
        // A budget of exactly one download of an odd size still holds it.
        let odd = 25 * MIB + 1;
        assert!(DownloadBudget::new(odd, Duration::ZERO).memory_bytes() >= odd);
    }

    #[test]
    fn a_body_of_unknown_length_reserves_a_chunk_at_a_time_up_to_its_cap() {
        let cap = 25 * MIB;
        assert_eq!(next_download_reservation(1, 0, cap), MIB);
        assert_eq!(next_download_reservation(MIB, 0, cap), MIB);
        assert_eq!(next_download_reservation(MIB + 1, MIB, cap), 2 * MIB);
        // A chunk larger than the step reserves what it needs.
        assert_eq!(next_download_reservation(3 * MIB, MIB, cap), 3 * MIB);
        // Never past the cap, which the caller checks the body against first.
        assert_eq!(next_download_reservation(24 * MIB + 1, 24 * MIB, cap), cap);
        assert_eq!(next_download_reservation(cap, 24 * MIB, cap), cap);
    }

    #[tokio::test(start_paused = true)]
    async fn downloads_share_their_memory_and_wait_a_bounded_time_for_it() {
        let wait = Duration::from_secs(10);
        let budget = Arc::new(DownloadBudget::new(3 * MIB, wait));
        let mut first = budget.reserve();
        first.grow_to(2 * MIB).await.expect("fits");
        assert_eq!((first.bytes(), budget.held_bytes()), (2 * MIB, 2 * MIB));

        let mut second = budget.reserve();
        let started = Instant::now();
        let err = second
            .grow_to(2 * MIB)
            .await
            .expect_err("waits, then gives up");
        assert!(started.elapsed() >= wait, "waited the whole wait");
        assert!(matches!(err, DownloadError::Busy { .. }), "{err:?}");
        let answer = AppError::from(err);
        assert_eq!(answer.code, ErrorCode::Overloaded);
        assert_eq!(answer.retry_after, Some(1));
        assert_eq!(budget.held_bytes(), 2 * MIB, "a refusal holds nothing more");

        // Its wait is spent, but memory free now is taken at once.
        second.grow_to(MIB).await.expect("free at once");
        assert_eq!(budget.held_bytes(), 3 * MIB);
        let err = second
            .grow_to(2 * MIB)
            .await
            .expect_err("no wait left for more");
        assert!(matches!(err, DownloadError::Busy { .. }), "{err:?}");

        // A download that waits gets the memory another one gives back.
        let mut third = budget.reserve();
        let queued = tokio::spawn(async move { third.grow_to(2 * MIB).await.map(|()| third) });
        tokio::time::sleep(wait / 2).await;
        assert!(!queued.is_finished(), "waiting for memory");
        drop(first);
        let third = queued.await.expect("joined").expect("memory freed in time");
        assert_eq!(budget.held_bytes(), 3 * MIB);
        drop((second, third));
        assert_eq!(
            budget.held_bytes(),
            0,
            "dropped reservations give it all back"
        );

        let err = budget
            .reserve()
            .grow_to(3 * MIB + 1)
            .await
            .expect_err("more than the whole budget");
        assert!(matches!(err, DownloadError::TooLarge { .. }), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_growing_body_is_reserved_before_its_buffer_grows_and_held_while_its_bytes_live() {
        let budget = Arc::new(DownloadBudget::new(3 * MIB, Duration::from_secs(1)));
        let mut memory = budget.reserve();
        let mut body = Vec::new();
        memory
            .make_room(&mut body, 10, 3 * MIB)
            .await
            .expect("fits");
        assert_eq!((memory.bytes(), body.capacity() as u64), (MIB, MIB));
        body.resize(MIB as usize, 1);
        memory
            .make_room(&mut body, 0, 3 * MIB)
            .await
            .expect("no more needed");
        assert_eq!(budget.held_bytes(), MIB);
        // The next chunk, not a doubled buffer; never past the cap.
        memory.make_room(&mut body, 1, 3 * MIB).await.expect("fits");
        assert_eq!((memory.bytes(), body.capacity() as u64), (2 * MIB, 2 * MIB));
        memory
            .make_room(&mut body, MIB as usize + 1, 2 * MIB + MIB / 2 + 1)
            .await
            .expect("fits");
        assert_eq!(
            memory.bytes(),
            2 * MIB + MIB / 2 + 1024,
            "to the cap, in whole KiB"
        );
        let err = memory
            .make_room(&mut body, 2 * MIB as usize, 4 * MIB)
            .await
            .expect_err("more than the whole budget");
        assert!(matches!(err, DownloadError::TooLarge { .. }), "{err:?}");

        let bytes = memory.hold(body);
        let copy = bytes.slice(..10);
        drop(bytes);
        assert_eq!(
            budget.held_bytes(),
            2 * MIB + MIB / 2 + 1024,
            "held by the copy"
        );
        drop(copy);
        assert_eq!(budget.held_bytes(), 0, "given back with the last copy");
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
