//! The IAM module against the AWS SDK for Rust and the stack's own policies: requests the SDK
//! sends, classified; the stack's roles allowed exactly their calls; refusals parsed back by
//! the SDK as the right errors; garbage never panics.

pub(crate) mod classify_sdk;
mod fuzz;
mod policies;
mod refusals;
pub(crate) mod sdk;
mod stack;

/// The account and region every test request is made in.
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const REGION: &str = "us-east-1";
