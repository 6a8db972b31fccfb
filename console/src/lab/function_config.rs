//! A function's memory and environment as `bench --memory` and `bench --cold` change them:
//! read once, changed with `UpdateFunctionConfiguration`, and waited for until Lambda has
//! applied the change, then put back as they were.
//!
//! Lambda applies a configuration update asynchronously: `GetFunctionConfiguration` says
//! `LastUpdateStatus: InProgress` until it is done (`Successful`, or `Failed` with a reason),
//! invocations meanwhile still run the old configuration, and a second update meanwhile is
//! refused with `ResourceConflictException`
//! (<https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html>). The sandbox models
//! the same, so the same waits serve both targets.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail};
use aws_sdk_lambda::error::ProvideErrorMetadata as _;
use aws_sdk_lambda::types::{Environment, LastUpdateStatus, State};
use hybridlab_provision::stack::StackClients;
use tokio::time::Instant;

use super::explain;

/// How long one update may take to be applied. Lambda applies a memory or environment change
/// in seconds; minutes mean something is wrong.
pub const UPDATE_PATIENCE: Duration = Duration::from_secs(120);

/// How often the function's configuration is read while an update is applied.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// The settings the bench changes, as they were before it changed them.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSettings {
    pub memory_mb: u32,
    /// The environment variables (empty when the function has none).
    pub variables: HashMap<String, String>,
}

/// One `UpdateFunctionConfiguration`: what it sets, and nothing else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsChange {
    pub memory_mb: Option<u32>,
    /// Every variable the function is to have: Lambda replaces the whole set.
    pub variables: Option<HashMap<String, String>>,
}

impl SettingsChange {
    /// What puts back the settings of `original` this change touches.
    pub fn undoing(&self, original: &FunctionSettings) -> Self {
        Self {
            memory_mb: self.memory_mb.map(|_| original.memory_mb),
            variables: self.variables.as_ref().map(|_| original.variables.clone()),
        }
    }
}

/// A function whose configuration the bench changes.
#[derive(Debug, Clone)]
pub struct ConfiguredFunction {
    clients: StackClients,
    pub name: String,
}

impl ConfiguredFunction {
    pub fn new(clients: &StackClients, name: &str) -> Self {
        Self {
            clients: clients.clone(),
            name: name.to_owned(),
        }
    }

    fn resource(&self) -> String {
        format!("the function {}", self.name)
    }

    /// `GetFunctionConfiguration`, a refusal explained.
    async fn configuration(
        &self,
    ) -> anyhow::Result<
        aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
    > {
        self.clients
            .lambda
            .get_function_configuration()
            .function_name(&self.name)
            .send()
            .await
            .map_err(|err| {
                explain(
                    &self.clients,
                    None,
                    "lambda:GetFunctionConfiguration",
                    &self.resource(),
                    err,
                )
            })
    }

    /// The function's memory and environment now.
    pub async fn settings(&self) -> anyhow::Result<FunctionSettings> {
        let config = self.configuration().await?;
        Ok(FunctionSettings {
            // Lambda's default when a function was created without one.
            memory_mb: config
                .memory_size()
                .and_then(|mb| u32::try_from(mb).ok())
                .unwrap_or(128),
            variables: config
                .environment()
                .and_then(|environment| environment.variables())
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// Applies `change` and waits until Lambda has: the next invocation runs with it (in a new
    /// execution environment). An update still in progress (someone else's, or the last one
    /// of ours) is waited for first.
    pub async fn apply(&self, change: &SettingsChange) -> anyhow::Result<()> {
        let deadline = Instant::now() + UPDATE_PATIENCE;
        self.wait_updated(deadline).await?;
        loop {
            match self.send(change).await {
                Ok(()) => break,
                // Another update started between our read and our update.
                Err(err) if err.code() == Some("ResourceConflictException") => {
                    if Instant::now() >= deadline {
                        bail!(
                            "lambda:UpdateFunctionConfiguration of {}: another update kept it busy for {}s",
                            self.name,
                            UPDATE_PATIENCE.as_secs()
                        );
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                    self.wait_updated(deadline).await?;
                }
                Err(err) => {
                    return Err(explain(
                        &self.clients,
                        None,
                        "lambda:UpdateFunctionConfiguration",
                        &self.resource(),
                        err,
                    ));
                }
            }
        }
        self.wait_updated(Instant::now() + UPDATE_PATIENCE).await
    }

    /// Sends `change` once, without waiting for it to be applied or retrying: what a second
    /// Ctrl-C has time for. The error is one line.
    pub async fn send_once(&self, change: &SettingsChange) -> anyhow::Result<()> {
        match tokio::time::timeout(Duration::from_secs(5), self.send(change)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(explain(
                &self.clients,
                None,
                "lambda:UpdateFunctionConfiguration",
                &self.resource(),
                err,
            )),
            Err(_) => Err(anyhow!(
                "lambda:UpdateFunctionConfiguration: no answer in 5s"
            )),
        }
    }

    async fn send(
        &self,
        change: &SettingsChange,
    ) -> Result<
        (),
        aws_sdk_lambda::error::SdkError<
            aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationError,
            hybridlab_provision::stack::error::Response,
        >,
    >{
        let mut update = self
            .clients
            .lambda
            .update_function_configuration()
            .function_name(&self.name);
        if let Some(memory_mb) = change.memory_mb {
            update = update.memory_size(memory_mb as i32);
        }
        if let Some(variables) = &change.variables {
            update = update.environment(
                Environment::builder()
                    .set_variables(Some(variables.clone()))
                    .build(),
            );
        }
        update.send().await.map(|_| ())
    }

    /// Waits until the function is Active with no update in progress; a failed update is an
    /// error with Lambda's reason.
    async fn wait_updated(&self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let config = self.configuration().await?;
            let busy = matches!(config.state(), Some(State::Pending))
                || matches!(
                    config.last_update_status(),
                    Some(LastUpdateStatus::InProgress)
                );
            if let Some(LastUpdateStatus::Failed) = config.last_update_status() {
                bail!(
                    "the last configuration update of {} failed: {} ({})",
                    self.name,
                    config
                        .last_update_status_reason()
                        .unwrap_or("Lambda gave no reason"),
                    config
                        .last_update_status_reason_code()
                        .map_or("no code", |code| code.as_str())
                );
            }
            if !busy {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the configuration update of {} was still in progress after {}s (LastUpdateStatus: InProgress)",
                    self.name,
                    UPDATE_PATIENCE.as_secs()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undoing_a_change_restores_only_what_it_touched() {
        let original = FunctionSettings {
            memory_mb: 256,
            variables: HashMap::from([("A".to_owned(), "1".to_owned())]),
        };
        let memory = SettingsChange {
            memory_mb: Some(1769),
            variables: None,
        };
        assert_eq!(
            memory.undoing(&original),
            SettingsChange {
                memory_mb: Some(256),
                variables: None
            }
        );
        let cold = SettingsChange {
            memory_mb: None,
            variables: Some(HashMap::from([("B".to_owned(), "2".to_owned())])),
        };
        assert_eq!(
            cold.undoing(&original).variables,
            Some(original.variables.clone())
        );
        assert_eq!(cold.undoing(&original).memory_mb, None);
    }
}
