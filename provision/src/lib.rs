//! Creates, inspects and deletes the hybridlab stack, runs the local sandbox, and exports the
//! stack as Terraform and CloudFormation ([`iac`]). The stack lives in [`stack`]; the sandbox
//! (moto plus hybridlab's compute agent behind one loopback endpoint) in [`sandbox`].

pub mod iac;
pub mod moto;
pub mod paths;
pub mod sandbox;
pub mod stack;
