//! What a bench run records about where it ran ([`RunEnvironment`]): the kind of target and
//! its region, the stack's instance type and its list price (from the stack's record, no AWS
//! call), the input and its size when it is a local file, and the hybridlab that ran it.

use hybridlab_bench::model::RunEnvironment;
use hybridlab_provision::stack::cost::instance_hourly_usd;
use hybridlab_provision::stack::{StackClients, StackId, StackState, Target};

/// The commit `console/build.rs` read from git when the binary was built, if any.
pub const BUILD_COMMIT: Option<&str> = option_env!("HYBRIDLAB_GIT_COMMIT");

/// What a run sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunInput {
    Url(String),
    UrlList(std::path::PathBuf),
    Payload(std::path::PathBuf),
    Upload(std::path::PathBuf),
}

impl RunInput {
    fn describe(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::UrlList(path) => format!("URL list {}", path.display()),
            Self::Payload(path) => format!("payload {}", path.display()),
            Self::Upload(path) => format!("upload {}", path.display()),
        }
    }

    /// The size of what is sent, when it is a local file: an image URL is not fetched just to
    /// learn its size, and a URL list's own size says nothing of its images.
    fn bytes(&self) -> Option<u64> {
        match self {
            Self::Payload(path) | Self::Upload(path) => {
                std::fs::metadata(path).ok().map(|meta| meta.len())
            }
            Self::Url(_) | Self::UrlList(_) => None,
        }
    }
}

/// The environment of a run on `clients`' target against `stack` (`None`: a function named
/// by `--function`, whose instance is no stack's).
pub fn run_environment(
    clients: &StackClients,
    stack: Option<&str>,
    input: Option<&RunInput>,
) -> RunEnvironment {
    let settings = stack
        .and_then(|stack| StackId::parse(stack).ok())
        .and_then(|stack| StackState::load(&clients.state_key(), &stack))
        .map(|state| state.settings);
    let instance_type = settings.map(|settings| settings.instance_type);
    RunEnvironment {
        target_kind: match clients.target {
            Target::Sandbox { .. } => "sandbox",
            Target::Aws { .. } => "aws",
        }
        .to_owned(),
        region: Some(clients.region.clone()),
        instance_hourly_usd: instance_type.as_deref().and_then(instance_hourly_usd),
        instance_type,
        input: input.map(RunInput::describe),
        input_bytes: input.and_then(RunInput::bytes),
        hybridlab_version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: BUILD_COMMIT.map(str::to_owned),
    }
}
