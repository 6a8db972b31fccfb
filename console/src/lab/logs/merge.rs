//! Turning repeated, overlapping reads of the lab's log groups into one stream in which every
//! event appears once. Pure: the reads come in as entries, what to print goes out.
//!
//! How gaps are avoided. CloudWatch Logs does not deliver events in the order of their
//! timestamps: a line can be ingested seconds after a newer one from another stream. So each
//! poll of a group starts [`OVERLAP_MS`] before the newest timestamp already seen in that
//! group (never before `--since`), and what comes back again is recognised by its event id.
//! An event that arrives late is printed in the batch that finds it, after newer lines already
//! printed; only an event ingested more than the overlap after a newer one of its group was
//! printed can be missed.
//!
//! How duplicates are avoided. Event ids are remembered per group while a poll can still
//! return them: an id whose timestamp falls below the group's next poll start is forgotten,
//! and at most [`MAX_REMEMBERED`] are kept per group (a poll window holding more than that
//! could print some events twice). Live tail events carry no id; where a live session and a
//! poll overlap (the backlog read after a session starts, the poll that bridges to a new
//! session) an event is recognised by its fingerprint, counted, so two identical lines are
//! still printed twice.
//!
//! Order. Within a batch, entries are sorted by timestamp, then source (the function's before
//! the server's); entries with equal keys keep the order the service returned them in.

use std::collections::HashMap;

use super::entry::LogEntry;

/// How far before the newest timestamp seen in a group the next poll of it starts. Lambda's
/// and the agents' lines reach CloudWatch within a few seconds; the sandbox ships every
/// quarter second.
pub const OVERLAP_MS: i64 = 15_000;

/// The most event ids (and fingerprints) remembered per group.
pub const MAX_REMEMBERED: usize = 50_000;

/// A counted set of fingerprints, each with the timestamp of its event.
#[derive(Debug, Default)]
struct Fingerprints(HashMap<u64, (u32, i64)>);

impl Fingerprints {
    fn add(&mut self, fingerprint: u64, timestamp_ms: i64) {
        let slot = self.0.entry(fingerprint).or_insert((0, timestamp_ms));
        slot.0 += 1;
    }

    /// Removes one occurrence; whether there was one.
    fn take(&mut self, fingerprint: u64) -> bool {
        let Some(slot) = self.0.get_mut(&fingerprint) else {
            return false;
        };
        slot.0 -= 1;
        if slot.0 == 0 {
            self.0.remove(&fingerprint);
        }
        true
    }

    fn forget(&mut self, floor_ms: i64, capacity: usize) {
        forget_older(&mut self.0, |slot| slot.1, floor_ms, capacity);
    }
}

/// What one group has had printed.
#[derive(Debug, Default)]
struct GroupMemory {
    latest_ms: Option<i64>,
    /// Event id → timestamp of the polled events printed.
    ids: HashMap<String, i64>,
    /// Polled events a live session may deliver again.
    polled: Fingerprints,
    /// Live events a poll may return again.
    live: Fingerprints,
}

/// The merge state of one `logs` run (or one console view).
#[derive(Debug)]
pub struct LogMerge {
    since_ms: i64,
    overlap_ms: i64,
    capacity: usize,
    groups: HashMap<String, GroupMemory>,
}

impl LogMerge {
    /// Nothing printed yet; reads start at `since_ms`.
    pub fn new(since_ms: i64) -> Self {
        Self::with_limits(since_ms, OVERLAP_MS, MAX_REMEMBERED)
    }

    pub fn with_limits(since_ms: i64, overlap_ms: i64, capacity: usize) -> Self {
        Self {
            since_ms,
            overlap_ms,
            capacity,
            groups: HashMap::new(),
        }
    }

    /// The `startTime` of the next `FilterLogEvents` of `group`.
    pub fn poll_start(&self, group: &str) -> i64 {
        self.groups
            .get(group)
            .and_then(|memory| memory.latest_ms)
            .map_or(self.since_ms, |latest| {
                self.since_ms.max(latest.saturating_sub(self.overlap_ms))
            })
    }

    /// The entries of `read` (any groups, any order, polled or live) not printed before, in
    /// the order to print them; they are remembered as printed.
    pub fn merge(&mut self, mut read: Vec<LogEntry>) -> Vec<LogEntry> {
        read.sort_by_key(|entry| (entry.timestamp_ms, entry.source));
        let fresh: Vec<LogEntry> = read.into_iter().filter(|entry| self.admit(entry)).collect();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            let floor = self.poll_start(&name);
            if let Some(memory) = self.groups.get_mut(&name) {
                forget_older(&mut memory.ids, |ts| *ts, floor, self.capacity);
                memory.polled.forget(floor, self.capacity);
                memory.live.forget(floor, self.capacity);
            }
        }
        fresh
    }

    /// Whether `entry` is new, remembering it.
    fn admit(&mut self, entry: &LogEntry) -> bool {
        let memory = self.groups.entry(entry.group.clone()).or_default();
        memory.latest_ms = Some(
            memory
                .latest_ms
                .map_or(entry.timestamp_ms, |latest| latest.max(entry.timestamp_ms)),
        );
        let fingerprint = entry.fingerprint();
        match &entry.event_id {
            Some(id) => {
                if memory.ids.contains_key(id) {
                    return false;
                }
                memory.ids.insert(id.clone(), entry.timestamp_ms);
                if memory.live.take(fingerprint) {
                    return false;
                }
                memory.polled.add(fingerprint, entry.timestamp_ms);
                true
            }
            None => {
                if memory.polled.take(fingerprint) {
                    return false;
                }
                memory.live.add(fingerprint, entry.timestamp_ms);
                true
            }
        }
    }
}

/// Drops the entries of `map` older than `floor_ms` (a poll starting there cannot return
/// them), then the oldest beyond `capacity`.
fn forget_older<K, V>(
    map: &mut HashMap<K, V>,
    timestamp: impl Fn(&V) -> i64,
    floor_ms: i64,
    capacity: usize,
) where
    K: Eq + std::hash::Hash,
{
    map.retain(|_, value| timestamp(value) >= floor_ms);
    if capacity == 0 {
        map.clear();
    } else if map.len() > capacity {
        let mut stamps: Vec<i64> = map.values().map(&timestamp).collect();
        stamps.sort_unstable();
        let cut = stamps[map.len() - capacity];
        map.retain(|_, value| timestamp(value) >= cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::logs::entry::{LogGroup, LogSource};

    const FUNCTION: &str = "/aws/lambda/hybridlab-proxy-t";
    const SERVER: &str = "/hybridlab/t/ec2-server";

    fn group(source: LogSource) -> LogGroup {
        let name = match source {
            LogSource::Lambda => FUNCTION,
            LogSource::Ec2 => SERVER,
        };
        LogGroup {
            source,
            name: name.into(),
            arn: None,
        }
    }

    /// A polled event; its id is `<source>-<n>`.
    fn polled(source: LogSource, n: u32, timestamp_ms: i64, message: &str) -> LogEntry {
        LogEntry::new(
            &group(source),
            "stream",
            timestamp_ms,
            Some(timestamp_ms + 10),
            Some(format!("{}-{n}", source.label())),
            message,
        )
    }

    fn live(source: LogSource, timestamp_ms: i64, message: &str) -> LogEntry {
        LogEntry::new(
            &group(source),
            "stream",
            timestamp_ms,
            Some(timestamp_ms + 10),
            None,
            message,
        )
    }

    fn messages(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.message.as_str()).collect()
    }

    use LogSource::{Ec2, Lambda};

    #[test]
    fn two_sources_interleave_by_timestamp_then_source() {
        let mut merge = LogMerge::new(0);
        let read = vec![
            polled(Lambda, 1, 100, "START"),
            polled(Lambda, 2, 300, "END"),
            polled(Lambda, 3, 300, "REPORT"),
            polled(Ec2, 1, 200, "processed"),
            polled(Ec2, 2, 300, "answered"),
            polled(Ec2, 3, 50, "listening"),
        ];
        let printed = merge.merge(read);
        assert_eq!(
            messages(&printed),
            [
                "listening",
                "START",
                "processed",
                "END",
                "REPORT",
                "answered"
            ],
            "timestamps ascend; at 300 the function's lines come first, in the order returned"
        );
    }

    #[test]
    fn overlapping_polls_print_each_event_once() {
        let mut merge = LogMerge::new(0);
        let first = merge.merge(vec![
            polled(Lambda, 1, 1_000, "a"),
            polled(Lambda, 2, 2_000, "b"),
        ]);
        assert_eq!(messages(&first), ["a", "b"]);
        // The next poll starts before "b" and returns it again, with a newer line.
        assert!(merge.poll_start(FUNCTION) <= 2_000);
        let second = merge.merge(vec![
            polled(Lambda, 2, 2_000, "b"),
            polled(Lambda, 3, 2_500, "c"),
        ]);
        assert_eq!(messages(&second), ["c"]);
        let third = merge.merge(vec![
            polled(Lambda, 2, 2_000, "b"),
            polled(Lambda, 3, 2_500, "c"),
        ]);
        assert!(third.is_empty());
    }

    #[test]
    fn identical_lines_with_different_ids_are_both_printed() {
        let mut merge = LogMerge::new(0);
        let printed = merge.merge(vec![polled(Ec2, 1, 7, "tick"), polled(Ec2, 2, 7, "tick")]);
        assert_eq!(messages(&printed), ["tick", "tick"]);
    }

    #[test]
    fn a_late_event_inside_the_overlap_is_printed_in_the_next_batch() {
        let mut merge = LogMerge::with_limits(0, 5_000, 100);
        merge.merge(vec![polled(Lambda, 1, 20_000, "new")]);
        assert_eq!(merge.poll_start(FUNCTION), 15_000);
        // Ingested after the first poll, with an older timestamp than "new".
        let late = merge.merge(vec![
            polled(Lambda, 1, 20_000, "new"),
            polled(Lambda, 2, 16_000, "late"),
        ]);
        assert_eq!(messages(&late), ["late"]);
        // The poll window does not move back: the newest timestamp is still 20 s.
        assert_eq!(merge.poll_start(FUNCTION), 15_000);
    }

    #[test]
    fn polls_start_at_since_until_a_group_has_events_and_each_group_keeps_its_own_start() {
        let mut merge = LogMerge::with_limits(10_000, 5_000, 100);
        assert_eq!(merge.poll_start(FUNCTION), 10_000);
        merge.merge(vec![polled(Lambda, 1, 12_000, "x")]);
        assert_eq!(merge.poll_start(FUNCTION), 10_000, "never before --since");
        merge.merge(vec![polled(Lambda, 2, 40_000, "y")]);
        assert_eq!(merge.poll_start(FUNCTION), 35_000);
        assert_eq!(
            merge.poll_start(SERVER),
            10_000,
            "a quiet group keeps its start"
        );
    }

    #[test]
    fn remembered_ids_are_forgotten_below_the_window_and_capped() {
        let mut merge = LogMerge::with_limits(0, 1_000, 3);
        let read: Vec<LogEntry> = (0..10)
            .map(|n| polled(Lambda, n, 10_000 + i64::from(n), "line"))
            .collect();
        assert_eq!(merge.merge(read).len(), 10);
        let memory = merge.groups.get(FUNCTION).expect("remembered");
        assert_eq!(memory.ids.len(), 3, "capped");
        assert!(memory.ids.contains_key("lambda-9"), "the newest are kept");
        merge.merge(vec![polled(Lambda, 99, 60_000, "much later")]);
        let memory = merge.groups.get(FUNCTION).expect("remembered");
        assert_eq!(
            memory.ids.keys().collect::<Vec<_>>(),
            ["lambda-99"],
            "ids below the next poll start cannot come back"
        );
    }

    #[test]
    fn a_live_session_and_a_poll_that_overlap_print_each_event_once() {
        let mut merge = LogMerge::new(0);
        // A live session started; the backlog poll then returns the first two lines...
        let backlog = merge.merge(vec![
            polled(Lambda, 1, 100, "a"),
            polled(Lambda, 2, 200, "b"),
        ]);
        assert_eq!(messages(&backlog), ["a", "b"]);
        // ...which the session delivers too, with a new one.
        let update = merge.merge(vec![live(Lambda, 200, "b"), live(Lambda, 300, "c")]);
        assert_eq!(messages(&update), ["c"]);
        // The session ends; the bridging poll returns what the session printed.
        let bridge = merge.merge(vec![
            polled(Lambda, 2, 200, "b"),
            polled(Lambda, 3, 300, "c"),
            polled(Lambda, 4, 400, "d"),
        ]);
        assert_eq!(messages(&bridge), ["d"]);
    }

    #[test]
    fn identical_live_lines_are_matched_one_for_one() {
        let mut merge = LogMerge::new(0);
        merge.merge(vec![polled(Ec2, 1, 5, "tick"), polled(Ec2, 2, 5, "tick")]);
        let update = merge.merge(vec![
            live(Ec2, 5, "tick"),
            live(Ec2, 5, "tick"),
            live(Ec2, 5, "tick"),
        ]);
        assert_eq!(
            messages(&update),
            ["tick"],
            "two were polled, the third is new"
        );
    }
}
