//! Creates, inspects and deletes the hybridlab stack, and runs the local sandbox.
//! The stack's resources are planned, created, inspected and swept in [`stack`]; the sandbox
//! (moto plus hybridlab's compute agent behind one loopback endpoint) lives in [`sandbox`];
//! the same stack as a Terraform module and a CloudFormation template in [`iac`].

pub mod iac;
pub mod moto;
pub mod paths;
pub mod sandbox;
pub mod stack;
pub mod userdata;
