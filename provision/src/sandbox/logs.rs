//! Ships log lines to CloudWatch Logs (moto), batched: one background task collects lines per
//! stream and flushes them in rounds, so a burst of invocations costs a handful of
//! `PutLogEvents` calls rather than one each.
//!
//! moto spends about 5 ms of CPU on any call before it looks at the events, then about 13 µs
//! an event (moto 5.2, measured with single-event and 5,000-event calls). A round makes one
//! call per stream with lines, and Lambda writes one stream per execution environment, so at a
//! fixed quarter-second cadence 64 busy environments would cost 256 calls, well over a core of
//! moto, a second. Rounds are therefore paced by the calls they make: at most
//! [`CALLS_PER_SECOND`] on average, never more often than every [`FLUSH_EVERY`]. A quiet
//! sandbox ships within a quarter second; a busy one ships in bigger, less frequent batches
//! (with 16 busy streams every 1.6 s, with 64 every 6.4 s; CloudWatch itself is seconds late).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// The average rate of `PutLogEvents` calls the shipper keeps to under load: about 5% of a
/// core of moto.
const CALLS_PER_SECOND: u32 = 10;
/// PutLogEvents takes at most 10,000 events a call...
const MAX_BATCH: usize = 10_000;
/// ...of at most 1 MiB, counting each event's message in UTF-8 plus 26 bytes.
const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A log group and one of its streams; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogStream {
    pub group: Arc<str>,
    pub stream: Arc<str>,
}

impl LogStream {
    pub fn new(group: &str, stream: &str) -> Self {
        Self {
            group: group.into(),
            stream: stream.into(),
        }
    }
}

/// Lines for one stream, each with its time in milliseconds since the Unix epoch.
#[derive(Debug)]
struct Batch {
    stream: LogStream,
    lines: Vec<(i64, String)>,
}

/// A handle to the shipper; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogShipper {
    sender: mpsc::UnboundedSender<Batch>,
}

impl LogShipper {
    /// Starts the shipping task on `client`.
    pub fn start(client: aws_sdk_cloudwatchlogs::Client) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(ship(client, receiver));
        Self { sender }
    }

    /// Queues `lines` for `stream`, in their order.
    pub fn send_batch(&self, stream: &LogStream, lines: Vec<(i64, String)>) {
        if lines.is_empty() {
            return;
        }
        let _ = self.sender.send(Batch {
            stream: stream.clone(),
            lines,
        });
    }
}

async fn ship(
    client: aws_sdk_cloudwatchlogs::Client,
    mut receiver: mpsc::UnboundedReceiver<Batch>,
) {
    let mut known = Known::default();
    let mut pending: HashMap<LogStream, Vec<(i64, String)>> = HashMap::new();
    let mut next_round = Instant::now() + FLUSH_EVERY;
    loop {
        tokio::select! {
            batch = receiver.recv() => match batch {
                Some(batch) => pending.entry(batch.stream).or_default().extend(batch.lines),
                None => {
                    flush(&client, &mut pending, &mut known).await;
                    return;
                }
            },
            () = tokio::time::sleep_until(next_round) => {
                let calls = flush(&client, &mut pending, &mut known).await;
                next_round = Instant::now() + FLUSH_EVERY.max(Duration::from_secs(1) * calls / CALLS_PER_SECOND);
            }
        }
    }
}

/// The groups and streams the shipper has made sure exist.
#[derive(Debug, Default)]
struct Known {
    groups: std::collections::HashSet<Arc<str>>,
    streams: std::collections::HashSet<LogStream>,
}

/// Ships everything pending; returns how many `PutLogEvents` calls that took.
async fn flush(
    client: &aws_sdk_cloudwatchlogs::Client,
    pending: &mut HashMap<LogStream, Vec<(i64, String)>>,
    known: &mut Known,
) -> u32 {
    let mut calls = 0;
    for (key, mut events) in std::mem::take(pending) {
        let (group, stream) = (&*key.group, &*key.stream);
        if !known.groups.contains(group) {
            // Already existing is fine: moto makes /aws/lambda/<name> with the function.
            let _ = client.create_log_group().log_group_name(group).send().await;
            known.groups.insert(key.group.clone());
        }
        if !known.streams.contains(&key) {
            let _ = client
                .create_log_stream()
                .log_group_name(group)
                .log_stream_name(stream)
                .send()
                .await;
            known.streams.insert(key.clone());
        }
        // CloudWatch wants each batch in time order; lines of one source come in order.
        if !events.is_sorted_by_key(|(timestamp, _)| *timestamp) {
            events.sort_by_key(|(timestamp, _)| *timestamp);
        }
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some((_, message)) = events.peek() {
                let size = message.len() + EVENT_OVERHEAD;
                if batch.len() == MAX_BATCH || (!batch.is_empty() && bytes + size > MAX_BATCH_BYTES)
                {
                    break;
                }
                bytes += size;
                if let Some((timestamp, message)) = events.next()
                    && let Ok(event) = InputLogEvent::builder()
                        .timestamp(timestamp)
                        .message(message)
                        .build()
                {
                    batch.push(event);
                }
            }
            calls += 1;
            let result = client
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .set_log_events(Some(batch))
                .send()
                .await;
            if let Err(err) = result {
                tracing::warn!(
                    group = %group,
                    stream = %stream,
                    error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&err),
                    "could not ship log lines"
                );
            }
        }
    }
    calls
}
