//! The lab's actions, which return data and never print: the target and the stack resolved
//! once ([`target`], [`choose_stack`], [`Lab`]), and what the command line and the console do
//! with them: invoke, upload, logs, s3, db, status, up and down.
//!
//! A [`Lab`] is the deployed stack a data command talks to: the target's clients and the stack
//! whose function, buckets, table and log groups it means. Resolving it turns the common
//! mistakes (no stack, an unknown stack, a stack that is not deployed, an endpoint that does
//! not answer, expired credentials) into one line that says what to do.

pub mod config;
pub mod db;
pub mod function_config;
pub mod gallery;
pub mod invoke;
pub mod jobs;
pub mod logs;
pub mod reports;
pub mod run_environment;
pub mod s3;
pub mod sandbox;
pub mod stack;
pub mod state_home;
pub mod target;
pub mod tone;
pub mod units;
pub mod upload;

use std::collections::BTreeSet;

use anyhow::{anyhow, bail};
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use hybridlab_provision::stack::error::{Response, is_not_found, sdk_error};
use hybridlab_provision::stack::{StackClients, StackId, StackNames, StackState, Target};

use target::TargetChoice;

/// A stack on a target, with the names of all its resources.
#[derive(Debug, Clone)]
pub struct Lab {
    pub clients: StackClients,
    pub stack: StackId,
    pub names: StackNames,
}

impl Lab {
    /// The stack `named`, or the target's only stack. Does not check that the stack is
    /// complete: each command reports the resource it needs and does not find.
    pub async fn open(target: &TargetChoice, named: Option<&str>) -> anyhow::Result<Self> {
        let clients = target::connect(target).await?;
        Self::on(clients, named).await
    }

    /// Like [`Lab::open`] on clients already connected (the console keeps one set).
    pub async fn on(clients: StackClients, named: Option<&str>) -> anyhow::Result<Self> {
        let known: Vec<StackId> = known_stacks(&clients).await?.into_iter().collect();
        let stack = match choose_stack(&clients, named, &known)? {
            Some(id) if named.is_some() && !known.contains(&id) => bail!(
                "no stack `{id}` on {}{}; create it with `hybridlab up --stack {id}`",
                clients.describe(),
                listing(&known)
            ),
            Some(id) => id,
            None => bail!(
                "no hybridlab stack on {}; create one with `hybridlab up`",
                clients.describe()
            ),
        };
        Ok(Self::of(clients, stack))
    }

    /// The lab of a stack whose id is known (the console's Stack view has read it), without
    /// asking the target; the target's only stack when none is named.
    pub async fn for_listed(clients: StackClients, named: Option<&str>) -> anyhow::Result<Self> {
        match named {
            Some(name) => Ok(Self::of(clients, StackId::parse(name)?)),
            None => Self::on(clients, None).await,
        }
    }

    fn of(clients: StackClients, stack: StackId) -> Self {
        Self {
            names: StackNames::new(&stack),
            clients,
            stack,
        }
    }

    /// An SDK error of `action` as a line a student can act on. `resource` names what a
    /// "not found" means (`the function hybridlab-proxy-x`), so the advice can be to deploy.
    pub fn explain<E>(
        &self,
        action: &str,
        resource: &str,
        err: SdkError<E, Response>,
    ) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        explain(&self.clients, Some(&self.stack), action, resource, err)
    }
}

/// See [`Lab::explain`].
pub fn explain<E>(
    clients: &StackClients,
    stack: Option<&StackId>,
    action: &str,
    resource: &str,
    err: SdkError<E, Response>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let (true, Some(stack)) = (is_not_found(&err), stack) {
        return anyhow!(
            "stack `{stack}` is not deployed on {}: {resource} does not exist; run `hybridlab up --stack {stack}`",
            clients.describe()
        );
    }
    if matches!(
        err,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
    ) {
        let cause = root_cause(&err);
        let what = match &clients.target {
            Target::Sandbox { endpoint } => format!(
                "cannot reach the endpoint {endpoint} ({cause}); start the sandbox with `hybridlab sandbox --detach` or fix --endpoint"
            ),
            Target::Aws { .. } => format!(
                "cannot reach AWS in {} ({cause}); check the network and --region",
                clients.region
            ),
        };
        return anyhow!("{action}: {what}");
    }
    anyhow::Error::new(sdk_error(action, err))
}

/// The innermost error's message ("Connection refused (os error 111)"), which is the part a
/// person can act on; the SDK's own chain repeats itself in debug form.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.is_empty() {
        DisplayErrorContext(err).to_string()
    } else {
        text
    }
}

/// Every stack the target knows: state files and the functions named like the lab's proxy.
async fn known_stacks(clients: &StackClients) -> anyhow::Result<BTreeSet<StackId>> {
    let mut known: BTreeSet<StackId> = StackState::list(&clients.state_key())
        .into_iter()
        .map(|state| state.stack_id)
        .collect();
    let mut pages = clients.lambda.list_functions().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            explain(
                clients,
                None,
                "lambda:ListFunctions",
                "the function list",
                err,
            )
        })?;
        known.extend(
            page.functions()
                .iter()
                .filter_map(|function| function.function_name())
                .filter(|name| name.starts_with("hybridlab-proxy-"))
                .filter_map(StackNames::stack_of),
        );
    }
    Ok(known)
}

/// The stack a command means: the one `named`, else the target's only one (`None` when the
/// target has none; several and none named is an error that lists them).
pub fn choose_stack(
    clients: &StackClients,
    named: Option<&str>,
    known: &[StackId],
) -> anyhow::Result<Option<StackId>> {
    if let Some(name) = named {
        return Ok(Some(StackId::parse(name)?));
    }
    match known {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        several => bail!(
            "{} has several stacks{}; name one with --stack",
            clients.describe(),
            listing(several)
        ),
    }
}

fn listing(known: &[StackId]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(
            " (stacks there: {})",
            known
                .iter()
                .map(StackId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
