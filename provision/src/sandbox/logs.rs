//! Ships log lines to CloudWatch Logs (moto), batched: one background task collects lines per
//! stream and flushes them every quarter second, so a burst of invocations costs a handful of
//! `PutLogEvents` calls rather than one each.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::mpsc;

const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// PutLogEvents takes at most 10,000 events a call.
const MAX_BATCH: usize = 10_000;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// One line for one stream of one group.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    pub message: String,
}

/// A handle to the shipper; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogShipper {
    sender: mpsc::UnboundedSender<LogLine>,
}

impl LogShipper {
    /// Starts the shipping task on `client`.
    pub fn start(client: aws_sdk_cloudwatchlogs::Client) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(ship(client, receiver));
        Self { sender }
    }

    pub fn send(&self, line: LogLine) {
        let _ = self.sender.send(line);
    }

    pub fn send_all(&self, lines: impl IntoIterator<Item = LogLine>) {
        for line in lines {
            self.send(line);
        }
    }
}

async fn ship(
    client: aws_sdk_cloudwatchlogs::Client,
    mut receiver: mpsc::UnboundedReceiver<LogLine>,
) {
    let mut known_groups: HashSet<String> = HashSet::new();
    let mut known_streams: HashSet<(String, String)> = HashSet::new();
    let mut pending: BTreeMap<(String, String), Vec<(i64, String)>> = BTreeMap::new();
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            line = receiver.recv() => match line {
                Some(line) => pending
                    .entry((line.group, line.stream))
                    .or_default()
                    .push((line.timestamp_ms, line.message)),
                None => {
                    flush(&client, &mut pending, &mut known_groups, &mut known_streams).await;
                    return;
                }
            },
            _ = ticker.tick() => {
                flush(&client, &mut pending, &mut known_groups, &mut known_streams).await;
            }
        }
    }
}

async fn flush(
    client: &aws_sdk_cloudwatchlogs::Client,
    pending: &mut BTreeMap<(String, String), Vec<(i64, String)>>,
    known_groups: &mut HashSet<String>,
    known_streams: &mut HashSet<(String, String)>,
) {
    for ((group, stream), mut events) in std::mem::take(pending) {
        if !known_groups.contains(&group) {
            // Already existing is fine: moto makes /aws/lambda/<name> with the function.
            let _ = client
                .create_log_group()
                .log_group_name(&group)
                .send()
                .await;
            known_groups.insert(group.clone());
        }
        let key = (group.clone(), stream.clone());
        if !known_streams.contains(&key) {
            let _ = client
                .create_log_stream()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .send()
                .await;
            known_streams.insert(key);
        }
        // CloudWatch wants each batch in time order.
        events.sort_by_key(|(timestamp, _)| *timestamp);
        for chunk in events.chunks(MAX_BATCH) {
            let batch: Vec<InputLogEvent> = chunk
                .iter()
                .filter_map(|(timestamp, message)| {
                    InputLogEvent::builder()
                        .timestamp(*timestamp)
                        .message(message)
                        .build()
                        .ok()
                })
                .collect();
            let result = client
                .put_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
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
}
