//! The engine of `logs` (and of the console's log view): reads the stack's log groups and
//! hands out batches of new entries, merged by [`LogMerge`]. The first batch is everything
//! since the start of the window; when following, later batches come from a StartLiveTail
//! session where the endpoint offers one, else from polling `FilterLogEvents`.
//!
//! Live tail is tried once per tail: a session must open and send its `sessionStart` within
//! [`LIVE_PROBE`]; if not (moto has no usable StartLiveTail: the SDK sends it to a `stream-`
//! host name), the tail polls for the rest of its life. The session is opened before the
//! backlog is read, so nothing falls between them; the overlap is recognised by the merge.
//! A session CloudWatch ends (after three hours) is replaced, and a poll bridges the two.
//! When CloudWatch samples a session (more than 500 events a second), lines are missing
//! from it, so the tail turns to polling, which returns every event.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::primitives::event_stream::EventReceiver;
use aws_sdk_cloudwatchlogs::types::StartLiveTailResponseStream;
use aws_sdk_cloudwatchlogs::types::error::StartLiveTailResponseStreamError;
use hybridlab_provision::stack::StackId;
use hybridlab_provision::stack::error::Response;
use tokio::time::Instant;

use super::entry::{LogEntry, LogGroup, LogSource};
use super::merge::LogMerge;
use crate::lab::Lab;

/// How long a StartLiveTail session has to open before the tail polls instead.
pub const LIVE_PROBE: Duration = Duration::from_secs(10);
/// A session that ends sooner than this is not replaced: the endpoint's live tail is not
/// one to rely on, and polling takes over.
const LIVE_SESSION_MIN: Duration = Duration::from_secs(60);
/// The default pause between polls. `FilterLogEvents` allows 5 calls a second per account
/// and region; one poll costs one call per group (more if it pages).
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What to read.
#[derive(Debug, Clone)]
pub struct TailOptions {
    pub sources: Vec<LogSource>,
    /// How far back the first batch reaches.
    pub since: Duration,
    /// A CloudWatch Logs filter pattern.
    pub filter: Option<String>,
    /// Keep reading new events after the first batch.
    pub follow: bool,
    pub poll_every: Duration,
    /// Try StartLiveTail when following.
    pub live_tail: bool,
}

/// How new events are being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailMode {
    Polling,
    LiveTail,
}

type LiveStream = EventReceiver<StartLiveTailResponseStream, StartLiveTailResponseStreamError>;

struct LiveSession {
    stream: LiveStream,
    opened: Instant,
}

enum Phase {
    /// The first batch is still to be read.
    Backlog,
    Polling {
        next: Instant,
    },
    /// Boxed: a session's event stream is large, and phases are moved about.
    Live(Box<LiveSession>),
    Done,
}

/// A tail of the stack's log groups; [`LogTail::next_batch`] gives the next new entries.
pub struct LogTail {
    lab: Lab,
    groups: Vec<LogGroup>,
    options: TailOptions,
    merge: LogMerge,
    phase: Phase,
    notices: Vec<String>,
}

impl std::fmt::Debug for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogTail")
            .field("groups", &self.groups)
            .field("options", &self.options)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl LogTail {
    /// A tail of the groups of `options.sources`; fails with what to do when a group does
    /// not exist (the stack is not deployed) or cannot be looked at.
    pub async fn open(lab: &Lab, options: TailOptions) -> anyhow::Result<Self> {
        let mut groups = Vec::new();
        for &source in &options.sources {
            groups.push(describe_group(lab, source).await?);
        }
        let since_ms = now_ms().saturating_sub(duration_ms(options.since));
        Ok(Self {
            lab: lab.clone(),
            groups,
            merge: LogMerge::new(since_ms),
            options,
            phase: Phase::Backlog,
            notices: Vec::new(),
        })
    }

    pub fn groups(&self) -> &[LogGroup] {
        &self.groups
    }

    pub fn mode(&self) -> TailMode {
        match self.phase {
            Phase::Live(_) => TailMode::LiveTail,
            _ => TailMode::Polling,
        }
    }

    /// Things worth telling the reader that are not log lines (the tail changed how it
    /// reads); each is handed out once.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The next new entries, in order: first the window since `options.since`, then (when
    /// following) whatever arrives, possibly nothing at one poll. `None` when done.
    ///
    /// Cancel-safe: the future can be dropped while it waits (in a `select!` with a tick or
    /// Ctrl-C) and the next call carries on; a poll cut short is simply read again.
    pub async fn next_batch(&mut self) -> anyhow::Result<Option<Vec<LogEntry>>> {
        loop {
            match &mut self.phase {
                Phase::Done => return Ok(None),
                Phase::Backlog => {
                    let next = if !self.options.follow {
                        Phase::Done
                    } else {
                        match self.open_live().await {
                            Some(session) => Phase::Live(Box::new(session)),
                            None => Phase::Polling {
                                next: Instant::now() + self.options.poll_every,
                            },
                        }
                    };
                    let batch = self.poll().await?;
                    self.phase = next;
                    return Ok(Some(batch));
                }
                Phase::Polling { next } => {
                    tokio::time::sleep_until(*next).await;
                    let batch = self.poll().await?;
                    self.phase = Phase::Polling {
                        next: Instant::now() + self.options.poll_every,
                    };
                    return Ok(Some(batch));
                }
                Phase::Live(session) => {
                    let opened = session.opened;
                    match session.stream.recv().await {
                        Ok(Some(StartLiveTailResponseStream::SessionUpdate(update))) => {
                            let read: Vec<LogEntry> = update
                                .session_results()
                                .iter()
                                .filter_map(|event| LogEntry::from_live(&self.groups, event))
                                .collect();
                            if update.session_metadata().is_some_and(|m| m.sampled()) {
                                self.notices.push(
                                    "CloudWatch sampled the live tail (over 500 events a second); reading by polling instead, which misses nothing".into(),
                                );
                                // Polling at once fills in what the sample left out.
                                self.phase = Phase::Polling {
                                    next: Instant::now(),
                                };
                            }
                            return Ok(Some(self.merge.merge(read)));
                        }
                        Ok(Some(_)) => {}
                        ended => {
                            let why = match ended {
                                Err(err) => format!("{}", DisplayErrorContext(&err)),
                                _ => "it ended".into(),
                            };
                            tracing::debug!(%why, "live tail session over");
                            let replacement = if opened.elapsed() >= LIVE_SESSION_MIN {
                                self.open_live().await
                            } else {
                                None
                            };
                            self.phase = match replacement {
                                Some(next) => Phase::Live(Box::new(next)),
                                None => self.polling_instead(&why),
                            };
                            // Bridges the old session and the new one (or the polls); the
                            // next phase is set first, so a cancelled bridge is not retried
                            // but covered by the overlap of the next poll.
                            return self.poll().await.map(Some);
                        }
                    }
                }
            }
        }
    }

    fn polling_instead(&mut self, why: &str) -> Phase {
        self.notices.push(format!(
            "the live tail stopped ({why}); reading by polling instead"
        ));
        Phase::Polling {
            next: Instant::now() + self.options.poll_every,
        }
    }

    /// One `FilterLogEvents` read of every group, from where the merge says, merged.
    async fn poll(&mut self) -> anyhow::Result<Vec<LogEntry>> {
        let reads = self.groups.iter().map(|group| {
            read_group(
                &self.lab,
                group,
                self.merge.poll_start(&group.name),
                self.options.filter.as_deref(),
            )
        });
        let read = futures::future::try_join_all(reads).await?;
        Ok(self.merge.merge(read.into_iter().flatten().collect()))
    }

    /// A live tail session of every group that has sent its `sessionStart`, or `None`.
    async fn open_live(&self) -> Option<LiveSession> {
        if !self.options.live_tail {
            return None;
        }
        let arns: Option<Vec<String>> = self.groups.iter().map(|g| g.arn.clone()).collect();
        let Some(arns) = arns else {
            tracing::debug!("no live tail: a log group has no ARN");
            return None;
        };
        let open = async {
            let output = self
                .lab
                .clients
                .logs
                .start_live_tail()
                .set_log_group_identifiers(Some(arns))
                .set_log_event_filter_pattern(self.options.filter.clone())
                .send()
                .await
                .map_err(|err| format!("{}", DisplayErrorContext(&err)))?;
            let mut stream = output.response_stream;
            match stream.recv().await {
                Ok(Some(StartLiveTailResponseStream::SessionStart(_))) => Ok(stream),
                Ok(Some(_)) => Err("the session did not begin with sessionStart".to_owned()),
                Ok(None) => Err("the session ended at once".to_owned()),
                Err(err) => Err(format!("{}", DisplayErrorContext(&err))),
            }
        };
        match tokio::time::timeout(LIVE_PROBE, open).await {
            Ok(Ok(stream)) => Some(LiveSession {
                stream,
                opened: Instant::now(),
            }),
            Ok(Err(why)) => {
                tracing::debug!(%why, "no live tail; polling");
                None
            }
            Err(_) => {
                tracing::debug!("no live tail session within {LIVE_PROBE:?}; polling");
                None
            }
        }
    }
}

/// The log group of `source` with its ARN, or an error saying the stack is not deployed.
async fn describe_group(lab: &Lab, source: LogSource) -> anyhow::Result<LogGroup> {
    let name = match source {
        LogSource::Lambda => &lab.names.function_log_group,
        LogSource::Ec2 => &lab.names.server_log_group,
    };
    let found = lab
        .clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|err| {
            lab.explain(
                "logs:DescribeLogGroups",
                &format!("the log group {name}"),
                err,
            )
        })?;
    let group = found
        .log_groups()
        .iter()
        .find(|group| group.log_group_name() == Some(name.as_str()))
        .ok_or_else(|| {
            anyhow!(missing_group_message(
                &lab.stack,
                &lab.clients.describe(),
                name
            ))
        })?;
    let arn = group
        .log_group_arn()
        .or_else(|| group.arn().map(|arn| arn.strip_suffix(":*").unwrap_or(arn)))
        .map(str::to_owned);
    Ok(LogGroup {
        source,
        name: name.clone(),
        arn,
    })
}

/// Every event of `group` from `start_ms` on that matches `filter`, in the order returned.
async fn read_group(
    lab: &Lab,
    group: &LogGroup,
    start_ms: i64,
    filter: Option<&str>,
) -> anyhow::Result<Vec<LogEntry>> {
    let mut pages = lab
        .clients
        .logs
        .filter_log_events()
        .log_group_name(&group.name)
        .start_time(start_ms)
        .set_filter_pattern(filter.map(str::to_owned))
        .into_paginator()
        .send();
    let mut entries = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| explain_filter_error(lab, group, filter, err))?;
        entries.extend(
            page.events()
                .iter()
                .filter_map(|event| LogEntry::from_filtered(group, event)),
        );
    }
    Ok(entries)
}

fn explain_filter_error<E>(
    lab: &Lab,
    group: &LogGroup,
    filter: Option<&str>,
    err: SdkError<E, Response>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let (Some(filter), SdkError::ServiceError(service)) = (filter, &err)
        && service.err().code() == Some("InvalidParameterException")
    {
        return anyhow!(bad_filter_message(
            filter,
            service.err().message().unwrap_or("refused")
        ));
    }
    lab.explain(
        "logs:FilterLogEvents",
        &format!("the log group {}", group.name),
        err,
    )
}

/// What to say when a log group of the stack does not exist.
pub fn missing_group_message(stack: &StackId, target: &str, group: &str) -> String {
    format!(
        "stack `{stack}` is not deployed on {target}: the log group {group} does not exist; run `hybridlab up --stack {stack}`"
    )
}

/// What to say when CloudWatch refuses `--filter`.
pub fn bad_filter_message(filter: &str, message: &str) -> String {
    format!(
        "CloudWatch Logs refused the filter pattern `{filter}` ({message}); quote terms with spaces or dashes, e.g. --filter '\"ERROR 42\"' (syntax: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html)"
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ms)
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_group_and_a_bad_filter_say_what_to_do() {
        let stack = StackId::parse("abc123").expect("a stack id");
        let text = missing_group_message(&stack, "the sandbox", "/hybridlab/abc123/ec2-server");
        assert!(text.contains("not deployed"), "{text}");
        assert!(
            text.ends_with("run `hybridlab up --stack abc123`"),
            "{text}"
        );
        assert!(!text.contains('\n'));
        let text = bad_filter_message("{ $.x = ", "Invalid filter pattern");
        assert!(text.contains("`{ $.x = `") && text.contains("Invalid filter pattern"));
        assert!(!text.contains('\n'));
    }
}
