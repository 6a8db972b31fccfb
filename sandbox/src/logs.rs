//! Ships log lines to CloudWatch Logs (moto), batched: one background task collects lines per
//! stream and ships each stream's lines in one `PutLogEvents` call, so a burst of invocations
//! costs a handful of calls rather than one each.
//!
//! moto spends about 5 ms of CPU on any call before it looks at the events, then about 13 µs
//! an event (moto 5.2, measured with single-event and 5,000-event calls). Lambda writes one
//! stream per execution environment, so calls are rationed: at most [`CALLS_PER_SECOND`] on
//! average (about 5% of a core of moto), with a small allowance for bursts. A quiet sandbox
//! ships within a tick (a tenth of a second); a busy one ships each stream in turn, the one
//! with the oldest waiting line first, one call a tick (with 16 busy streams each ships every
//! 1.6 s, with 64 every 6.4 s; CloudWatch itself is seconds late).
//!
//! One call a tick, rather than every stream at once every few seconds, spreads moto's work
//! evenly: shipped in rounds, each round kept moto busy on a whole core for about a second,
//! and a 2-core sandbox under load answered a quarter fewer invocations in that second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::mpsc;

use super::SANDBOX_ACCOUNT;
use super::authorizer::Authorizer;
use super::iam::{RequestContext, Resource};

/// The average rate of `PutLogEvents` calls the shipper keeps to under load.
const CALLS_PER_SECOND: u32 = 10;
/// How often the shipper looks for lines to ship: one call's worth of allowance.
const TICK: Duration = Duration::from_millis(1000 / CALLS_PER_SECOND as u64);
/// Calls a quiet shipper may save up, and make at once when lines come.
const BURST_CALLS: u32 = 10;
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

/// A log group and one of its streams, and the role that writes it; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogStream {
    pub group: Arc<str>,
    pub stream: Arc<str>,
    /// The role whose permissions the lines are written with (a function's execution role,
    /// an instance's role for its CloudWatch agent); `None`: the sandbox's own lines.
    pub writer: Option<Arc<str>>,
}

impl LogStream {
    pub fn new(group: &str, stream: &str) -> Self {
        Self {
            group: group.into(),
            stream: stream.into(),
            writer: None,
        }
    }

    /// The same stream, written with the permissions of role `role_name`: as on AWS, its
    /// lines arrive only if the role may create the stream and put events in it.
    pub fn written_by(mut self, role_name: Option<&str>) -> Self {
        self.writer = role_name.map(Arc::from);
        self
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
    /// Starts the shipping task on `client`; `authorizer` decides what each stream's writer
    /// may do (`None`: anything).
    pub fn start(
        client: aws_sdk_cloudwatchlogs::Client,
        authorizer: Option<Arc<Authorizer>>,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(ship(Shipping { client, authorizer }, receiver));
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

/// Where lines go, and who decides whether their writer may send them.
struct Shipping {
    client: aws_sdk_cloudwatchlogs::Client,
    authorizer: Option<Arc<Authorizer>>,
}

impl Shipping {
    /// Whether `stream`'s writer may do `action` on `resource` (a CloudWatch Logs ARN).
    async fn allows(&self, stream: &LogStream, action: &str, resource: String) -> bool {
        match (&self.authorizer, &stream.writer) {
            (Some(authorizer), Some(role)) => {
                authorizer
                    .role_allows(role, &RequestContext::new(action, Resource::arn(resource)))
                    .await
            }
            _ => true,
        }
    }
}

async fn ship(shipping: Shipping, mut receiver: mpsc::UnboundedReceiver<Batch>) {
    let mut known = Known::default();
    let mut pending = Pending::default();
    let mut allowance = BURST_CALLS;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = receiver.recv() => match batch {
                Some(batch) => pending.add(batch),
                None => {
                    while let Some((stream, events)) = pending.take_oldest() {
                        ship_stream(&shipping, &stream, events, &mut known).await;
                    }
                    return;
                }
            },
            _ = ticks.tick() => {
                allowance = (allowance + 1).min(BURST_CALLS);
                while allowance > 0 {
                    let Some((stream, events)) = pending.take_oldest() else {
                        break;
                    };
                    let calls = ship_stream(&shipping, &stream, events, &mut known).await;
                    allowance = allowance.saturating_sub(calls);
                }
            }
        }
    }
}

/// Lines waiting to be shipped, per stream.
#[derive(Debug, Default)]
struct Pending {
    streams: HashMap<LogStream, Vec<(i64, String)>>,
}

impl Pending {
    fn add(&mut self, batch: Batch) {
        self.streams
            .entry(batch.stream)
            .or_default()
            .extend(batch.lines);
    }

    /// The stream whose first waiting line is the oldest, with its lines.
    fn take_oldest(&mut self) -> Option<(LogStream, Vec<(i64, String)>)> {
        let oldest = self
            .streams
            .iter()
            .min_by_key(|(_, lines)| lines.first().map_or(i64::MAX, |(at, _)| *at))
            .map(|(stream, _)| stream.clone())?;
        self.streams.remove_entry(&oldest)
    }
}

/// The groups and streams the shipper has made sure exist.
#[derive(Debug, Default)]
struct Known {
    groups: std::collections::HashSet<Arc<str>>,
    streams: std::collections::HashSet<LogStream>,
}

/// Ships `events` to `key`'s stream, making the group and stream first if need be; returns
/// how many `PutLogEvents` calls that took. Lines whose writer may not create the stream or
/// put events in it are dropped, as Lambda and the CloudWatch agent drop them on AWS (the
/// sandbox's own log says so once per stream).
async fn ship_stream(
    shipping: &Shipping,
    key: &LogStream,
    mut events: Vec<(i64, String)>,
    known: &mut Known,
) -> u32 {
    let client = &shipping.client;
    let mut calls = 0;
    let (group, stream) = (&*key.group, &*key.stream);
    let region = client.config().region().map_or("us-east-1", |r| r.as_ref());
    let group_arn = format!("arn:aws:logs:{region}:{SANDBOX_ACCOUNT}:log-group:{group}");
    let stream_arn = format!("{group_arn}:log-stream:{stream}");
    if !known.groups.contains(group) {
        // Already existing is fine: the stack makes its groups, moto makes /aws/lambda/<name>
        // with the function. A writer without CreateLogGroup finds the group or writes nothing.
        if shipping
            .allows(
                key,
                "logs:CreateLogGroup",
                format!("{group_arn}:log-stream:"),
            )
            .await
        {
            let _ = client.create_log_group().log_group_name(group).send().await;
        }
        known.groups.insert(key.group.clone());
    }
    if !known.streams.contains(key) {
        if !shipping
            .allows(key, "logs:CreateLogStream", stream_arn.clone())
            .await
        {
            tracing::info!(group = %group, stream = %stream, role = ?key.writer, "IAM refused logs:CreateLogStream: the lines are dropped, as on AWS");
            return 0;
        }
        let _ = client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await;
        known.streams.insert(key.clone());
    }
    if !shipping.allows(key, "logs:PutLogEvents", stream_arn).await {
        tracing::info!(group = %group, stream = %stream, role = ?key.writer, "IAM refused logs:PutLogEvents: the lines are dropped, as on AWS");
        return 0;
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
            if batch.len() == MAX_BATCH || (!batch.is_empty() && bytes + size > MAX_BATCH_BYTES) {
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
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(stream: &str, lines: &[(i64, &str)]) -> Batch {
        Batch {
            stream: LogStream::new("/aws/lambda/f", stream),
            lines: lines
                .iter()
                .map(|(at, text)| (*at, (*text).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_stream_that_has_waited_longest_ships_first_with_all_its_lines() {
        let mut pending = Pending::default();
        pending.add(batch("b", &[(20, "b1")]));
        pending.add(batch("a", &[(10, "a1")]));
        pending.add(batch("c", &[(30, "c1")]));
        pending.add(batch("b", &[(40, "b2")]));
        let order: Vec<(String, Vec<String>)> = std::iter::from_fn(|| pending.take_oldest())
            .map(|(stream, lines)| {
                (
                    stream.stream.to_string(),
                    lines.into_iter().map(|(_, text)| text).collect(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("a".to_owned(), vec!["a1".to_owned()]),
                ("b".to_owned(), vec!["b1".to_owned(), "b2".to_owned()]),
                ("c".to_owned(), vec!["c1".to_owned()]),
            ]
        );
        assert!(pending.take_oldest().is_none());
    }
}
