//! The lab's stack on AWS or the sandbox alike: creates, inspects and deletes it ([`stack`]),
//! and exports it as Terraform and CloudFormation ([`iac`]). The same SDK calls serve both
//! targets; the sandbox itself is the `hybridlab-sandbox` crate.

pub mod iac;
pub mod stack;
