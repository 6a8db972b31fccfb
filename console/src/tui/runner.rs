//! The console's runner: performs the lab actions the app asks for ([`Action`]) off the UI
//! loop, each in a task of its own that reports back through a channel as [`Update`]s: stacks
//! read, up and down, bursts with the bench's engine, run files saved, logs followed, the S3
//! and DynamoDB views' reads, the AWS account of the header.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hybridlab_bench::engine::{self, BenchPlan, Progress};
use hybridlab_bench::invocation::url_payload;
use hybridlab_bench::run_file;
use hybridlab_bench::signed::SignedInvoker;
use hybridlab_provision::stack::{Reporter, StackClients};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

use super::action::{Action, BurstSettings, LogsUpdate, Update};
use super::app;
use crate::lab::Lab;
use crate::lab::logs::entry::LogSource;
use crate::lab::logs::tail::{LogTail, POLL_EVERY, TailOptions};
use crate::lab::stack::{account_id, bring_up, read_stacks, tear_down};

/// How far back the Logs view starts.
const LOGS_SINCE: Duration = Duration::from_secs(600);

/// Starts what the console asks for, each in a task of its own that reports back through
/// `updates`.
pub struct Runner {
    clients: StackClients,
    updates: UnboundedSender<Update>,
    burst: Option<Arc<Progress>>,
    log_reader: Option<tokio::task::JoinHandle<()>>,
}

impl Runner {
    pub fn new(clients: StackClients, updates: UnboundedSender<Update>) -> Self {
        Self {
            clients,
            updates,
            burst: None,
            log_reader: None,
        }
    }

    /// On AWS, finds the account for the header.
    pub fn look_up_account(&self) {
        if !self.clients.is_sandbox() {
            spawn_account_lookup(&self.clients, &self.updates);
        }
    }

    pub fn start(&mut self, action: Action) {
        let (clients, updates) = (self.clients.clone(), self.updates.clone());
        match action {
            Action::RefreshStacks => spawn_refresh(&clients, &updates),
            Action::Up { stack, pipeline } => {
                tokio::spawn(async move {
                    let outcome =
                        bring_up(&clients, stack, pipeline, step_reporter(&updates)).await;
                    operation_done(&updates, outcome);
                });
            }
            Action::Down { stack } => {
                tokio::spawn(async move {
                    let outcome = tear_down(&clients, &stack, step_reporter(&updates)).await;
                    operation_done(&updates, outcome);
                });
            }
            Action::StartBurst { settings, stack } => {
                let (live, finished) = burst_forwarder(&updates);
                let progress = Arc::new(Progress {
                    live: Some(live),
                    ..Progress::default()
                });
                self.burst = Some(progress.clone());
                tokio::spawn(run_burst(
                    clients, stack, settings, progress, finished, updates,
                ));
            }
            Action::StopBurst => {
                if let Some(progress) = &self.burst {
                    progress.stop.store(true, Ordering::Relaxed);
                }
            }
            Action::SaveRun {
                path,
                config,
                samples,
            } => {
                // A million samples take a second or two to read back and write.
                tokio::task::spawn_blocking(move || {
                    let result =
                        app::saved_run(*config, &samples).and_then(|file| save_run(&path, &file));
                    let _ = updates.send(Update::Saved { path, result });
                });
            }
            Action::FollowLogs { stack, generation } => {
                if let Some(reader) = self.log_reader.take() {
                    reader.abort();
                }
                self.log_reader = Some(tokio::spawn(follow_logs(
                    clients, stack, generation, updates,
                )));
            }
            Action::S3(request) => {
                tokio::spawn(async move {
                    let update = crate::lab::s3::serve(clients, request).await;
                    let _ = updates.send(Update::S3(update));
                });
            }
            Action::Db(request) => {
                tokio::spawn(async move {
                    let update = crate::lab::db::serve(clients, request).await;
                    let _ = updates.send(Update::Db(update));
                });
            }
            Action::Jobs(request) => {
                tokio::spawn(async move {
                    let update = crate::lab::jobs::serve(clients, request).await;
                    let _ = updates.send(Update::Jobs(update));
                });
            }
            Action::Copy(text) => copy_to_clipboard(&text),
            // The app carries these out itself; the loop ends on `app.quit`.
            Action::ShowObjects { .. } | Action::ShowInvocationLogs { .. } | Action::Quit => {}
        }
    }

    pub fn stop(self) {
        if let Some(progress) = self.burst {
            progress.stop.store(true, Ordering::Relaxed);
        }
        if let Some(reader) = self.log_reader {
            reader.abort();
        }
    }
}

/// Reports each step of an `up` or a `down` to the console as it happens.
fn step_reporter(updates: &UnboundedSender<Update>) -> Reporter {
    let updates = updates.clone();
    Arc::new(move |event| {
        let _ = updates.send(Update::Step(event));
    })
}

fn operation_done(updates: &UnboundedSender<Update>, outcome: anyhow::Result<String>) {
    let outcome = outcome.map_err(|err| format!("{err:#}"));
    let _ = updates.send(Update::OperationDone(outcome));
}

/// Reads the logs of `stack` until aborted, as `hybridlab logs all -f --since 10m` does,
/// and sends every batch to the console.
async fn follow_logs(
    clients: StackClients,
    stack: Option<String>,
    generation: u64,
    updates: UnboundedSender<Update>,
) {
    let send = |update| {
        let _ = updates.send(Update::Logs(update));
    };
    let error = read_logs(clients, stack, generation, &send)
        .await
        .err()
        .map(|err| format!("{err:#}"));
    send(LogsUpdate::Ended { generation, error });
}

async fn read_logs(
    clients: StackClients,
    stack: Option<String>,
    generation: u64,
    send: &impl Fn(LogsUpdate),
) -> anyhow::Result<()> {
    let lab = Lab::for_listed(clients, stack.as_deref()).await?;
    let options = TailOptions {
        sources: vec![LogSource::Lambda, LogSource::Ec2],
        since: LOGS_SINCE,
        filter: None,
        follow: true,
        poll_every: POLL_EVERY,
        // As in `hybridlab logs`: moto has no usable StartLiveTail.
        live_tail: !lab.clients.is_sandbox(),
    };
    let mut tail = LogTail::open(&lab, options).await?;
    send(LogsUpdate::Opened {
        generation,
        stack: lab.stack.to_string(),
        groups: tail.groups().iter().map(|g| g.name.clone()).collect(),
    });
    while let Some(entries) = tail.next_batch().await? {
        for text in tail.take_notices() {
            send(LogsUpdate::Notice { generation, text });
        }
        if !entries.is_empty() {
            send(LogsUpdate::Entries {
                generation,
                entries,
                mode: tail.mode(),
            });
        }
    }
    Ok(())
}

/// Writes a run file where `hybridlab report` reads it; never over an existing file.
/// Saves a run file where `hybridlab report` reads it, by the run file's one rule.
fn save_run(path: &str, file: &hybridlab_bench::model::RunFile) -> Result<(), String> {
    run_file::save(Path::new(path), file).map_err(|err| err.to_string())
}

fn spawn_refresh(clients: &StackClients, updates: &UnboundedSender<Update>) {
    let clients = clients.clone();
    let updates = updates.clone();
    tokio::spawn(async move {
        let stacks = read_stacks(&clients)
            .await
            .map_err(|err| format!("reading the stacks: {err}"));
        let _ = updates.send(Update::Stacks(stacks));
    });
}

/// One burst against the stack's proxy function, with the bench's engine and invoker. Its
/// samples and its end reach the console through one task, in that order, so a run saved the
/// moment it is reported finished holds every sample.
async fn run_burst(
    clients: StackClients,
    stack: Option<String>,
    settings: BurstSettings,
    progress: Arc<Progress>,
    finished: oneshot::Sender<Option<String>>,
    updates: UnboundedSender<Update>,
) {
    let error = burst(clients, stack, settings, progress, &updates)
        .await
        .err()
        .map(|err| format!("{err:#}"));
    let _ = finished.send(error);
}

/// A sender the engine feeds samples into and the sender of the burst's end: the task
/// between them forwards each sample to the console, then, once the burst has ended and every
/// sample sent before that is forwarded, the end.
fn burst_forwarder(
    updates: &UnboundedSender<Update>,
) -> (
    UnboundedSender<hybridlab_bench::model::Sample>,
    oneshot::Sender<Option<String>>,
) {
    let (sender, mut samples) = unbounded_channel();
    let (finished, mut ended) = oneshot::channel::<Option<String>>();
    let updates = updates.clone();
    tokio::spawn(async move {
        let error = loop {
            tokio::select! {
                biased;
                Some(sample) = samples.recv() => {
                    let _ = updates.send(Update::Sample(Box::new(sample)));
                }
                ended = &mut ended => {
                    break ended.unwrap_or_else(|_| Some("the burst stopped unexpectedly".into()));
                }
            }
        };
        // The engine sent every sample before the burst ended.
        while let Ok(sample) = samples.try_recv() {
            let _ = updates.send(Update::Sample(Box::new(sample)));
        }
        let _ = updates.send(Update::BurstDone { error });
    });
    (sender, finished)
}

async fn burst(
    clients: StackClients,
    stack: Option<String>,
    settings: BurstSettings,
    progress: Arc<Progress>,
    updates: &UnboundedSender<Update>,
) -> anyhow::Result<()> {
    let payload = url_payload(&settings.image_url)?;
    let lab = Lab::on(clients, stack.as_deref()).await?;
    let function = lab.names.function.clone();
    let invoker = SignedInvoker::new(&lab.clients.config, &function)?;
    let started_at = hybridlab_wire::now_rfc3339();
    let _ = updates.send(Update::BurstStarted {
        function,
        stack: lab.stack.to_string(),
        started_at,
    });
    let plan = BenchPlan {
        shape: settings.shape(),
        requests: Some(settings.invocations),
        duration: None,
        warmup: 0,
        payloads: vec![payload],
    };
    engine::run(invoker, &plan, progress).await;
    Ok(())
}

/// Finds which AWS account the credentials are for, so the header can say it: a student with
/// several accounts must see which one is paying.
fn spawn_account_lookup(clients: &StackClients, updates: &UnboundedSender<Update>) {
    let clients = clients.clone();
    let updates = updates.clone();
    tokio::spawn(async move {
        let account = account_id(&clients).await;
        let _ = updates.send(Update::Account(account));
    });
}

/// Asks the terminal to put `text` on the clipboard with an OSC 52 sequence. Terminals that
/// do not support it ignore it; nothing to report either way, the terminal does not answer.
fn copy_to_clipboard(text: &str) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, format!("\x1b]52;c;{encoded}\x07").as_bytes());
    let _ = std::io::Write::flush(&mut out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_bench::model::{Outcome, Sample};

    #[tokio::test]
    async fn a_burst_ends_after_its_last_sample_reached_the_console() {
        let (updates, mut received) = unbounded_channel();
        let (live, finished) = burst_forwarder(&updates);
        for seq in 0..500 {
            live.send(Sample {
                seq,
                intended_us: 0,
                sent_us: 0,
                done_us: 1,
                outcome: Outcome::Ok,
                lambda: None,
                ec2_ms: None,
                ec2_round_trip_ms: None,
                error: None,
            })
            .expect("the forwarder listens");
        }
        // The end comes at once, before the forwarder has had a turn.
        finished.send(None).expect("the forwarder listens");
        let mut samples = 0;
        loop {
            match received.recv().await.expect("updates until the end") {
                Update::Sample(_) => samples += 1,
                Update::BurstDone { error } => {
                    assert_eq!(error, None);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(samples, 500, "every sample before the end");
    }
}
