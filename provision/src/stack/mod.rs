//! The lab's stack: what it is made of ([`describe`], [`plan`]), bringing it up ([`up`]),
//! looking at it ([`status`]) and tearing it down ([`down`]), on the sandbox or on AWS through
//! one code path ([`target`]), reporting progress as events ([`progress`]); every AWS call of
//! its programs, against which the roles' policies are audited ([`calls`]), and of the
//! operator's commands, with the policy the operator's own IAM user needs
//! ([`operator_policy`]).

pub mod artifacts;
#[cfg(test)]
mod audit;
pub mod calls;
pub mod cost;
pub mod describe;
pub mod down;
pub mod error;
pub mod names;
pub mod operator_policy;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod state;
pub mod status;
pub mod target;
pub mod up;

pub use down::{DownReport, FoundResource, ResourceKind, Scope, down, inventory};
pub use error::StackError;
pub use names::{StackId, StackNames};
pub use operator_policy::{OperatorScope, operator_policy};
pub use plan::{CpuCredits, StackSettings, plan};
pub use progress::{Reporter, Step, StepEvent, StepStatus};
pub use state::StackState;
pub use status::{StackStatus, list_stacks, status, statuses};
pub use target::{StackClients, Target};
pub use up::{UpOptions, UpReport, up};
