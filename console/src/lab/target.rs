//! The target a command runs against, resolved once from the command line: AWS with a region
//! and profile, an endpoint given, or the local sandbox (started if it is not running), and
//! the clients every lab action then shares.

use hybridlab_provision::stack::{StackClients, Target};

use super::sandbox::Say;

/// Where the stack lives, as the user chose it (the command line's `--aws`, `--region`,
/// `--profile` and `--endpoint`).
#[derive(Debug, Clone)]
pub enum TargetChoice {
    /// AWS with the standard credential chain; `say` hears the one-time move of the
    /// target's records to their name with the account.
    Aws {
        region: Option<String>,
        profile: Option<String>,
        say: Say,
    },
    /// An AWS-compatible endpoint started elsewhere (another sandbox, another emulator).
    Endpoint(String),
    /// The local sandbox, started when a command needs it; `say` hears that it starts.
    LocalSandbox { say: Say },
}

impl TargetChoice {
    /// The AWS region chosen with `--region`, if any.
    pub fn region(&self) -> Option<&str> {
        match self {
            Self::Aws { region, .. } => region.as_deref(),
            _ => None,
        }
    }
}

/// The target `choice` names; the local sandbox is started if needed.
pub async fn resolve_target(choice: &TargetChoice) -> anyhow::Result<Target> {
    Ok(match choice {
        TargetChoice::Aws {
            region, profile, ..
        } => Target::Aws {
            region: region.clone(),
            profile: profile.clone(),
        },
        TargetChoice::Endpoint(endpoint) => Target::Sandbox {
            endpoint: endpoint.clone(),
        },
        TargetChoice::LocalSandbox { say } => Target::Sandbox {
            endpoint: super::sandbox::ensure_running(*say).await?,
        },
    })
}

/// The region AWS commands use without `--region`: `AWS_REGION` (or `AWS_DEFAULT_REGION`), else
/// the profile's in `~/.aws/config` (`profile`, else `AWS_PROFILE`'s or the default). Read from
/// the environment and the files only: the SDK's full chain may also ask an instance metadata
/// service, which a command that needs no AWS should not wait for.
pub async fn configured_region(profile: Option<&str>) -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    let mut from_file = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = profile {
        from_file = from_file.profile_name(profile);
    }
    RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(from_file.build())
    .region()
    .await
    .map(|region| region.to_string())
}

/// The clients of the target `choice` names.
pub async fn connect(choice: &TargetChoice) -> anyhow::Result<StackClients> {
    let target = resolve_target(choice).await?;
    let clients = StackClients::connect(&target).await?;
    if let TargetChoice::Aws { say, .. } = choice
        && let Some(moved) = super::state_home::adopt_legacy_records(&clients)
    {
        say(&moved);
    }
    Ok(clients)
}
